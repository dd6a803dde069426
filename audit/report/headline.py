"""Headline numbers: the paper's Tables 1 and 2 beside what this audit measured for the unmodified AlexNet.

The baseline's runs are grouped by everything that makes two numbers comparable (profile, data set,
resolution, epochs, evaluation crops); each group gives a single-net row (mean over seeds) and, where
the runs logged their validation softmax, an ensemble of its seeds (averaged softmax: the paper's
"5 CNNs"). A row is comparable with the paper only at the paper's scale: profile ``full`` on
ILSVRC-2012 at 224 px with 10-crop evaluation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit import record
from audit.analyse.ensemble import error
from audit.analyse.measure import RunStore
from audit.record import Artifact, Tag
from audit.report.views import column, fmt
from audit.spec import Claim

# The paper's Table 1: ILSVRC-2010 test set — (model, top-1, top-5, note)
PAPER_TABLE1 = [
    ("Sparse coding", 47.1, 28.2, "earlier method"),
    ("SIFT + FVs", 45.7, 25.7, "earlier method"),
    ("CNN (this paper)", 37.5, 17.0, "one net, 10 crops"),
]
# The paper's Table 2: ILSVRC-2012 — (model, val top-1, val top-5, test top-5, note)
PAPER_TABLE2 = [
    ("SIFT + FVs", None, None, 26.2, "the competition's second-best entry"),
    ("1 CNN", 40.7, 18.2, None, "one net, 10 crops"),
    ("5 CNNs", 38.1, 16.4, 16.4, "averaged predictions of five nets"),
    ("1 CNN*", 39.0, 16.6, None, "a sixth conv layer, pre-trained on ImageNet Fall 2011"),
    ("7 CNNs*", 36.7, 15.4, 15.3, "five CNNs + two CNN*: the competition entry"),
]
# The paper's net, as MLflow params: a run differing in any of these is a variant, not the baseline.
BASELINE_PARAMS = {"model.arch": "alexnet", "model.activation": "relu", "model.lrn": "true",
                   "model.pooling": "overlapping", "model.dropout": "0.5", "model.remove_conv": "null",
                   "model.towers": "2", "init_from": "null"}
# What makes baseline runs one row of the table: frame column → the row's key.
GROUP = {record.tag_col(Tag.PROFILE): "profile", record.param_col("data.source"): "source",
         record.tag_col(Tag.dataset("name")): "dataset", record.tag_col(Tag.DATASET_FINGERPRINT): "fingerprint",
         record.tag_col(Tag.dataset("classes")): "classes", record.param_col("model.input_size"): "size",
         record.param_col("model.width"): "width", record.param_col("train.epochs"): "epochs",
         record.param_col("data.eval_crops"): "crops", record.param_col("train.lr"): "lr",
         record.param_col("train.weight_decay"): "weight_decay", record.param_col("train.holdout_per_class"): "holdout"}


def unmodified_roles(claims: list[Claim]) -> set[str]:
    """``profile|claim:variant`` for every variant that changes nothing (the paper's net in that claim).

    Not a tuned setting of its own either: a tuned variant trains at the rate (or weight decay) its
    grid chose, so its runs are not the baseline's even where its settings are. Runs that still
    differ in a setting the profile changes are told apart by ``GROUP`` (one row each).
    """
    out = set()
    for claim in claims:
        for name, variant in claim.variants.items():
            if variant.as_dict() or variant.init_from:
                continue
            for pname, prof in claim.profiles.items():
                if name in prof.lr_grid:
                    continue
                extra = prof.variants.get(name)
                if extra is None or not (extra.as_dict() or extra.init_from):
                    out.add(f"{pname}|{claim.id}:{name}")
    return out


def baseline_runs(frame: pd.DataFrame, claims: list[Claim]) -> pd.DataFrame:
    """Completed runs of the unmodified two-tower AlexNet."""
    if frame.empty:
        return frame
    mask = record.usable(frame)
    for name, value in BASELINE_PARAMS.items():
        if record.param_col(name) in frame.columns:
            mask &= record.params(frame, name).isin([value, ""])
        elif name != "init_from":
            return frame.iloc[0:0]
    roles = unmodified_roles(claims)
    profiles = record.tags(frame, Tag.PROFILE)
    served = record.roles(frame)
    mask &= pd.Series([any(f"{p}|{r}" in roles for r in rs) for p, rs in zip(profiles, served)], index=frame.index)
    return frame[mask]


def _not_comparable(key: dict[str, str]) -> list[str]:
    reasons = []
    if key["profile"] == "smoke":
        reasons.append("smoke profile: a few hundred images, small nets")
    if key["source"] != "ilsvrc2012":
        reasons.append(f"data set {key['dataset'] or key['source']}, not ILSVRC-2012")
    if key["size"] != "224":
        reasons.append(f"{key['size']} px input, not 224")
    if key["width"] not in ("1.0", "1", ""):
        reasons.append(f"width ×{key['width']}")
    if key["crops"] != "10":
        reasons.append("centre crop only (the paper averages 10 crops)")
    if not reasons and key["profile"] != "full":
        reasons.append(f"profile {key['profile']}, not the paper's schedule")
    return reasons


def ensemble_errors(store: RunStore, run_ids: list[str]) -> tuple[float, float, int] | str:
    """Top-1/top-5 error (%) of the averaged softmax of runs, or why it cannot be computed."""
    total: np.ndarray | None = None
    labels: np.ndarray | None = None
    used, missing = 0, 0
    for run_id in run_ids:
        try:
            probs = np.load(store.artifact(run_id, Artifact.predictions("val_probs"))).astype(np.float32)
            y = np.load(store.artifact(run_id, Artifact.predictions("val_labels")))
        except Exception:  # noqa: BLE001 - any store: a run without predictions is simply left out
            missing += 1
            continue
        if total is None:
            total, labels = probs, y
        elif probs.shape != total.shape or not np.array_equal(y, labels):
            return "runs predicted different validation sets"
        else:
            total = total + probs
        used += 1
    if total is None or labels is None or used < 2:
        return "needs predictions of ≥ 2 seeds" + (f" ({missing} run(s) logged none)" if missing else "")
    return error(total, labels, 1), error(total, labels, 5), used


def _mean_sd(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "—"
    return fmt(float(v.mean()), 1) + (f" ± {fmt(float(v.std()), 1)}" if len(v) > 1 else "")


def headline_rows(frame: pd.DataFrame, claims: list[Claim], store: RunStore) -> list[dict[str, Any]]:
    """One single-net row and one ensemble row per group of comparable baseline runs."""
    base = baseline_runs(frame, claims)
    if base.empty:
        return []
    keys = pd.DataFrame({name: column(base, col) for col, name in GROUP.items()}, index=base.index)
    rows = []
    for key_values, idx in keys.groupby(list(GROUP.values()), sort=True).groups.items():
        key = dict(zip(GROUP.values(), key_values))
        group = base.loc[idx]
        done = group[record.with_status(group, record.FINISHED)]
        diverged = list(group.loc[record.with_status(group, record.DIVERGED), "run_id"])
        reasons = _not_comparable(key)
        crops = "10 crops" if key["crops"] == "10" else "centre crop"
        dataset = (key["dataset"] or key["source"]) + (f" ({key['classes']} classes)" if key["classes"] else "")
        common = {"profile": key["profile"], "dataset": dataset, "fingerprint": key["fingerprint"], "size": key["size"],
                  "epochs": key["epochs"], "crops": crops, "comparable": not reasons,
                  "why_not": "; ".join(reasons), "diverged": diverged, "note": ""}
        rows.append({**common, "model": "1 net (mean over seeds)", "seeds": len(done),
                     "top1": _mean_sd(record.metrics(done, "val_top1_error")),
                     "top5": _mean_sd(record.metrics(done, "val_top5_error")),
                     "paper": "1 CNN: 40.7 / 18.2", "runs": list(done["run_id"])})
        ens = ensemble_errors(store, list(done["run_id"]))
        if isinstance(ens, str):
            rows.append({**common, "model": "ensemble of the seeds", "seeds": len(done), "top1": "—", "top5": "—",
                         "note": ens, "paper": "5 CNNs: 38.1 / 16.4", "runs": list(done["run_id"])})
        else:
            rows.append({**common, "model": f"ensemble of {ens[2]} seeds (averaged softmax)", "seeds": ens[2],
                         "top1": fmt(ens[0], 1), "top5": fmt(ens[1], 1), "paper": "5 CNNs: 38.1 / 16.4",
                         "runs": list(done["run_id"])})
    return rows
