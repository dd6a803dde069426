"""A real MLflow store filled with made-up runs of the real plan, for report tests and the report bench.

Every run gets its RunConfig's params, the executor's tags, 30 epochs of metrics logged in one batch,
conv1 weights and validation predictions; a few runs diverge or fail. Nothing trains: the numbers are
made up to look like training, which is all the report's behaviour and speed depend on.
"""

from __future__ import annotations

import math
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audit.plan import PlannedRun, build_plan
from audit.spec import Claim
from audit.track import Tracker
from tests.archive_trees import cifar_batches, ilsvrc_folder

EPOCHS = 30
# Made-up effects (percentage points of val top-1 error) per variant, roughly the paper's directions.
EFFECT = {"without_lrn": 1.0, "non_overlapping": 0.4, "no_conv3": 2.0, "no_conv4": 1.5, "without_dropout": 1.5,
          "one_tower": 0.3, "tanh": 4.0, "finetune": -1.5, "pretrain": 8.0}


def _history(rng: np.random.Generator, final: float, gap: float, speed: float, diverge_at: int | None) -> list[dict]:
    rows = []
    for epoch in range(1, EPOCHS + 1):
        decay = math.exp(-epoch / speed)
        val = final + (88 - final) * decay + rng.normal(0, 0.3)
        train = val - gap * (1 - decay) + rng.normal(0, 0.3)
        row = {"train_loss": train / 30, "train_top1_error": train, "train_top5_error": train / 2.5,
               "val_loss": val / 28, "val_top1_error": val, "val_top5_error": val / 2.3, "lr": 0.01,
               "epoch_seconds": 40 + rng.normal(0, 2), "train_loss_running": train / 29}
        if diverge_at is not None and epoch == diverge_at:
            rows.append({"train_loss": math.nan, "train_top1_error": 90.0, "lr": 0.01, "epoch_seconds": 40.0})
            break
        rows.append(row)
    return rows


def _conv1(rng: np.random.Generator, out: int, k: int, towers: int, trained: bool) -> np.ndarray:
    """Random kernels; trained two-tower nets get a grey tower A and a colourful tower B (Figure 3)."""
    w = rng.normal(0, 0.01, (out, 3, k, k)).astype(np.float32)
    if trained and towers == 2:
        grey = rng.normal(0, 0.05, (out // 2, 1, k, k)).astype(np.float32)
        w[: out // 2] = grey + 0.1 * w[: out // 2]
    return w


def _predictions(rng: np.random.Generator, labels: np.ndarray, classes: int, error: float) -> np.ndarray:
    logits = rng.normal(0, 1, (len(labels), classes))
    shared = np.random.default_rng(len(labels))       # the same images are hard, and confused alike, in every seed
    hard, confuser = shared.random(len(labels)), shared.integers(0, classes, len(labels))
    right = hard + rng.normal(0, 0.15, len(labels)) > error / 100
    logits[np.arange(len(labels)), np.where(right, labels, confuser)] += 4
    p = np.exp(logits - logits.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float16)


def log_run(tracker: Tracker, run: PlannedRun, profile: str, tmp: Path, failed: str = "",
            diverge: bool = False) -> str:
    """One made-up run as the executor would log it: params, tags, metrics in one batch, artifacts."""
    cfg, role = run.config, run.roles[0]
    rng = np.random.default_rng(zlib.crc32(run.config_hash.encode()))
    run_id = tracker.start(run.config_hash, cfg.flat_params(), run.tags(profile), f"{role.claim}-{role.variant}")
    classes = {"ilsvrc2012": 1000, "synthetic": cfg.data.synthetic.classes}.get(cfg.data.source, 10)
    name = f"{cfg.data.source}:{Path(cfg.data.path).name if cfg.data.path else f'{classes} classes'}"
    name += "-large" if role.variant == "pretrain" and cfg.data.source != "synthetic" else ""
    fingerprint = f"{zlib.crc32((name + cfg.data.model_dump_json(exclude={'path', 'source'})).encode()):08x}"
    tracker.set_tags(run_id, {"audit.dataset_name": name, "audit.dataset_fingerprint": fingerprint,
                              "audit.dataset_classes": str(classes), "audit.dataset_train_images": "50000",
                              "audit.dataset_val_images": "10000", "audit.device": "NVIDIA H100 80GB HBM3"})
    if failed:
        tracker.set_tags(run_id, {"audit.error": failed})
        tracker.finish(run_id, "failed")
        return run_id
    from mlflow.entities import Metric

    effect = sum(EFFECT.get(r.variant, 0.0) for r in run.roles[:1])
    final = (42.0 if classes == 1000 else 25.0) + effect + rng.normal(0, 0.5)
    gap = 14.0 if cfg.model.dropout == 0 else 8.0
    speed = 6.0 if cfg.model.activation == "tanh" else 3.0
    if run.tuning:   # away from the best rate, a tuning run learns more slowly
        speed *= 1 + abs(math.log10(cfg.train.lr / BEST_LR))
    history = _history(rng, final, gap, speed, rng.integers(3, 8) if diverge else None)
    if cfg.train.holdout_per_class:   # the held-out slice (what lrn's cifar tuning reads): the best rate does best
        worse = 1 + abs(math.log10(cfg.train.lr / BEST_LR)) if run.tuning else 1.0
        for row in history:
            if "val_top1_error" in row:
                row["holdout_top1_error"] = min(100.0, row["val_top1_error"] * worse + rng.normal(0, 0.3))
    metrics = [Metric(k, float(v), 0, epoch) for epoch, row in enumerate(history, 1) for k, v in row.items()]
    for i in range(0, len(metrics), 1000):
        tracker.client.log_batch(run_id, metrics=metrics[i:i + 1000])
    out, k = max(2, int(96 * cfg.model.width)) // 2 * 2, 5 if cfg.model.input_size <= 32 else 11
    n_val = 100 if classes == 1000 else 500
    labels = np.random.default_rng(classes).integers(0, classes, n_val)
    arrays = {"weights/conv1_init.npy": _conv1(rng, out, k, cfg.model.towers, False),
              "weights/conv1_final.npy": _conv1(rng, out, k, cfg.model.towers, True)}
    if not diverge:
        arrays["predictions/val_probs.npy"] = _predictions(rng, labels, classes, final)
        arrays["predictions/val_labels.npy"] = labels.astype(np.int64)
    for path, array in arrays.items():
        folder, file = path.split("/")
        local = tmp / file
        np.save(local, array)
        tracker.log_artifact(run_id, local, folder)
    tracker.set_tags(run_id, {"audit.epochs_run": str(len(history))})
    tracker.finish(run_id, "diverged" if diverge else "finished")
    return run_id


def fake_data(root: Path) -> dict[str, str]:
    """Tiny CIFAR-10 and ILSVRC-2012 trees: the plan lists them (their fingerprints are in the config hashes)."""
    cifar = root / "data" / "cifar10"
    cifar_batches(cifar)
    ilsvrc = ilsvrc_folder(root / "data" / "ILSVRC2012")
    return {"cifar": str(cifar), "full": str(ilsvrc), "imagenet": str(ilsvrc)}


BEST_LR = 0.03  # the made-up tuning runs do best at the grid's rate nearest this one


def _best(grid: list[float]) -> float:
    return min(grid, key=lambda lr: abs(math.log(lr / BEST_LR)))


def plan_runs(claims: list[Claim], profile: str, seeds: int, data: dict[str, str]) -> list[tuple[str, PlannedRun]]:
    """The real plan of every claim that has this profile: tuning runs, and the verdict's at the rate they choose."""
    having = [c for c in claims if profile in c.profiles]
    chosen = {(c.id, v): _best(grid) for c in having for v, grid in c.profiles[profile].lr_grid.items()}
    return [(profile, r) for r in build_plan(having, profile, seeds, data.get(profile), chosen).ordered()]


def fill_store(tracker: Tracker, planned: list[tuple[str, PlannedRun]], failed: dict[int, str] | None = None,
               diverge: Callable[[PlannedRun], bool] = lambda run: False, progress: bool = False) -> list[str]:
    """Log every planned run (the i-th fails with failed[i]); return the MLflow run ids."""
    ids = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for i, (profile, run) in enumerate(planned):
            ids.append(log_run(tracker, run, profile, Path(tmp), (failed or {}).get(i, ""), diverge(run)))
            if progress and (i + 1) % 100 == 0:
                print(f"  logged {i + 1} runs", flush=True)
    return ids
