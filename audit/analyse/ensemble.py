"""Ensembles of independently trained nets (the paper's "5 CNNs" against "1 CNN"), from saved predictions.

A variant's verdict seeds are taken in order in disjoint groups of ``members`` (seeds 0-4, 5-9, ...;
a remainder is left out), so that the groups' effects are independent and the usual interval
applies to them. Per group: the error of the averaged softmax minus the mean error of its members,
both computed from the same saved validation predictions (``predictions/val_probs.npy``, written by
every finished run). A diverged member saved none and predicts uniformly: chance, as the verdict
rule counts a diverged run. Nothing trains and nothing is evaluated again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit import record
from audit.analyse.values import RunStore
from audit.record import Artifact


@dataclass(frozen=True)
class Group:
    """One ensemble: its members' seeds and runs, and the two errors (%) the effect compares."""

    seeds: tuple[int, ...]
    run_ids: tuple[str, ...]
    ensemble: float          # the averaged predictions' error
    single: float            # the members' mean error
    resolution: float        # one validation image, in percentage points
    flag: str = ""           # why a group has no value


def error(probs: np.ndarray, labels: np.ndarray, top: int) -> float:
    """Top-``top`` error (%) of per-image class probabilities."""
    ranked = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return 100.0 * (1.0 - float((ranked == labels[:, None]).any(axis=1).mean()))


def _predictions(run: pd.Series, store: RunStore, classes: int, images: int) -> np.ndarray:
    if record.status(run) == record.DIVERGED:   # no predictions saved: a net that guesses
        return np.full((images, classes), 1.0 / classes, dtype=np.float32)
    return np.load(store.artifact(run["run_id"], Artifact.predictions("val_probs"))).astype(np.float32)


def _group(runs: list[pd.Series], store: RunStore, top: int) -> Group:
    seeds = tuple(record.seed(r) for r in runs)
    ids = tuple(str(r["run_id"]) for r in runs)
    finished = [r for r in runs if record.status(r) != record.DIVERGED]
    if not finished:
        return Group(seeds, ids, math.nan, math.nan, 0.0, "every member diverged: no labels saved")
    try:
        labels = np.load(store.artifact(finished[0]["run_id"], Artifact.predictions("val_labels")))
        probs = [_predictions(r, store, record.dataset_count(r, "classes") or 10, len(labels)) for r in runs]
    except Exception as exc:  # noqa: BLE001 - a missing artifact raises OSError or the store's own error
        return Group(seeds, ids, math.nan, math.nan, 0.0, f"no saved predictions ({type(exc).__name__})")
    if any(p.shape != probs[0].shape or len(p) != len(labels) for p in probs):
        return Group(seeds, ids, math.nan, math.nan, 0.0, "the members' predictions differ in shape")
    singles = [error(p, labels, top) for p in probs]
    return Group(seeds, ids, error(np.mean(probs, axis=0), labels, top), float(np.mean(singles)), 100.0 / len(labels))


def ensembles(by_seed: dict[int, pd.Series], members: int, metric: str, store: RunStore) -> list[Group]:
    """The disjoint groups of ``members`` seeds (ascending) and their errors on ``metric``'s top-k."""
    top = 5 if "top5" in metric else 1
    seeds = sorted(by_seed)
    return [_group([by_seed[s] for s in seeds[i:i + members]], store, top)
            for i in range(0, len(seeds) - members + 1, members)]
