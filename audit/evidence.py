"""Evidence bundles: the runs behind a verdict as small, portable, diff-friendly files.

A bundle is a folder: ``bundle.json`` (what was selected, the size budget, the run folders) and one
folder per MLflow run holding ``run.json`` (status, tags, params, environment, the artifacts listed
with their sizes), ``history.csv`` (one row per epoch) and ``artifacts/`` (the small files the
analyses read: conv1 weights, validation predictions, the claim files and a full config). Keys are
sorted and rows ordered, there are no absolute paths, and nothing changes when the same runs are
exported again, so a bundle committed to git diffs cleanly.

``import_bundles`` loads bundles into any MLflow store without duplicating what is already there:
a run is known by its origin (the MLflow run id it was first logged under, kept across imports), and
a completed run is not added beside a completed run of the same config hash (its roles are merged).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.metadata as md
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.record import ENVIRONMENT_TAGS, USABLE, Artifact, Tag
from audit.report.store import local_folder
from audit.report.views import select_runs
from audit.spec import SpecError
from audit.track import Tracker

FORMAT = "alexnet-audit evidence bundle, version 1"
HISTORY = "history.csv"        # a run's per-epoch metrics: one row per epoch, a column per metric
BUDGET_BYTES = 512 * 1024        # per run: run.json + history.csv + the artifacts kept
# The artifacts the analyses read, in the order they are kept while the budget lasts; a group is kept whole.
WANTED = ((Artifact.CONFIG,), (Artifact.CLAIMS + "/",), (Artifact.weights("conv1_init"),),
          (Artifact.weights("conv1_final"),), (Artifact.predictions("val_labels"), Artifact.predictions("val_probs")))
CONFIG_HASH, STATUS, ORIGIN = Tag.CONFIG_HASH, Tag.STATUS, Tag.ORIGIN_RUN   # the run's identity and status
IMPORT_TAGS = (ORIGIN, Tag.UNEXPORTED)   # what an import adds to a run; an export gives it back as it was
COMPLETED = tuple(sorted(USABLE))


class BundleError(SpecError):
    """A missing or malformed bundle: one line naming the file (exit status 2 on the command line)."""


# ---------------------------------------------------------------------------------------- export
def _portable(text: str) -> str:
    """A string without this machine's paths (home, working directory, checkout)."""
    repo = str(Path(__file__).resolve().parents[1])
    for prefix, name in ((repo, "<repo>"), (os.getcwd(), "<cwd>"), (str(Path.home()), "<home>")):
        if prefix not in ("", "/"):
            text = text.replace(prefix, name)
    return text


def _params(params: dict[str, str]) -> dict[str, str]:
    """Params as stored, a data path cut to its folder's name (the dataset fingerprint tag identifies the data)."""
    out = {k: _portable(v) for k, v in params.items()}
    for key, value in params.items():
        if key.endswith(".path") and value.startswith("/"):
            out[key] = Path(value).name
    return dict(sorted(out.items()))


def _artifact_files(client: Any, run_id: str, path: str | None = None) -> Iterator[tuple[str, int]]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifact_files(client, run_id, info.path)
        else:
            yield info.path, int(info.file_size or 0)


def _fetch(tracker: Tracker, run: Any, path: str, dest: Path) -> None:
    """Copy one artifact to ``dest``: read in place from a local store, downloaded from any other."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    root = local_folder(run.info.artifact_uri)
    if root is not None and (root / path).is_file():
        shutil.copyfile(root / path, dest)
        return
    with tempfile.TemporaryDirectory(prefix="audit-export-") as tmp:
        shutil.copyfile(tracker.client.download_artifacts(run.info.run_id, path, tmp), dest)


def _chosen(files: dict[str, int], spare: int) -> set[str]:
    """The wanted artifacts that fit in ``spare`` bytes, group by group in WANTED's order."""
    kept: set[str] = set()
    for group in WANTED:
        members = [p for p in sorted(files) if any(p == w or (w.endswith("/") and p.startswith(w)) for w in group)]
        size = sum(files[p] for p in members)
        if members and size <= spare:
            kept.update(members)
            spare -= size
    return kept


def _metrics_csv(tracker: Tracker, run_id: str, keys: list[str]) -> str:
    """Every logged metric, one row per step, columns sorted; floats written to round-trip exactly."""
    rows: dict[int, dict[str, float]] = {}
    for key in keys:
        for m in tracker.client.get_metric_history(run_id, key):
            rows.setdefault(m.step, {})[key] = m.value
    lines = [",".join(["step", *keys])]
    for step in sorted(rows):
        lines.append(",".join([str(step), *(repr(rows[step][k]) if k in rows[step] else "" for k in keys)]))
    return "\n".join(lines) + "\n"


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=True) + "\n"


def export_run(tracker: Tracker, run_id: str, out: Path, budget: int = BUDGET_BYTES) -> str:
    """Write one run's folder under ``out``; return the folder's name (config hash and origin)."""
    run = tracker.client.get_run(run_id)
    tags = {k: _portable(v) for k, v in run.data.tags.items() if not k.startswith("mlflow.") and k not in IMPORT_TAGS}
    origin = run.data.tags.get(ORIGIN, run.info.run_id)
    name = f"{tags.get(CONFIG_HASH, 'no-config')}-{origin[:8]}"
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "artifacts").mkdir(parents=True)
    metrics = _metrics_csv(tracker, run_id, sorted(run.data.metrics))
    (folder / HISTORY).write_text(metrics)
    files = dict(_artifact_files(tracker.client, run_id))
    kept = _chosen(files, budget - len(metrics.encode()) - 16_384)   # 16 KB kept for run.json
    listed = {}
    for path in sorted(files):
        entry: dict[str, Any] = {"bytes": files[path], "exported": path in kept}
        if path in kept:
            _fetch(tracker, run, path, folder / "artifacts" / path)
            entry["sha256"] = hashlib.sha256((folder / "artifacts" / path).read_bytes()).hexdigest()
        listed[path] = entry
    # an imported run lacks what its bundle left out: list those as the bundle did, so a re-export is the same
    for path, size in _left_out(run.data.tags.get(Tag.UNEXPORTED)).items():
        listed.setdefault(path, {"bytes": size, "exported": False})
    meta = {
        "origin_run_id": origin, "run_name": run.info.run_name, "mlflow_status": run.info.status,
        "start_time": run.info.start_time, "end_time": run.info.end_time,
        "status": tags.get(STATUS, "unknown"), "config_hash": tags.get(CONFIG_HASH, ""),
        "environment": {k: tags[k] for k in ENVIRONMENT_TAGS if k in tags},
        "tags": dict(sorted(tags.items())), "params": _params(run.data.params), "artifacts": listed,
    }
    (folder / "run.json").write_text(_dump(meta))
    return name


def _left_out(tag: str | None) -> dict[str, Any]:
    """The ``audit.unexported_artifacts`` tag as {path: bytes}; empty when absent or not that shape."""
    try:
        value = json.loads(tag or "{}")
    except ValueError:
        return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def exporter() -> dict[str, str]:
    """The versions that wrote a bundle (each run also records those it ran with: ``audit.versions``)."""
    out = {"python": platform.python_version()}
    for name in ("alexnet-audit", "mlflow", "torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def export_bundle(tracker: Tracker, run_ids: list[str], out: Path, selection: dict[str, Any],
                  budget: int = BUDGET_BYTES) -> list[str]:
    """Write a bundle of these runs into ``out`` (replacing a bundle there); return its run folders."""
    if out.exists() and any(out.iterdir()) and not (out / "bundle.json").is_file():
        raise BundleError(f"{out}: exists and is not an evidence bundle; give an empty or new folder")
    old = read_manifest(out)["runs"] if (out / "bundle.json").is_file() else []
    for name in old:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(export_run(tracker, rid, out, budget) for rid in run_ids)
    manifest = {"format": FORMAT, "selection": selection, "budget_bytes": budget, "exported_with": exporter(),
                "runs": names}
    (out / "bundle.json").write_text(_dump(manifest))
    return names


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------- reading
def read_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / "bundle.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file (not an evidence bundle)") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("runs"), list):
        raise BundleError(f"{path}: not an evidence bundle of this format ({FORMAT})")
    return manifest


def find_bundles(root: Path) -> list[Path]:
    """``root`` itself when it is a bundle, else every bundle below it (e.g. ``results/<profile>/``)."""
    if not root.is_dir():
        raise BundleError(f"{root}: no such folder")
    if (root / "bundle.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("bundle.json"))


def bundles_by_audit(root: Path) -> dict[str | None, list[Path]]:
    """Bundles under ``root`` by the audit file they were exported under (None: no pre-registration)."""
    out: dict[str | None, list[Path]] = {}
    for bundle in find_bundles(root):
        out.setdefault(read_manifest(bundle)["selection"].get("audit_file"), []).append(bundle)
    return out


def registration_of(audit_file: str, bundles: list[Path]) -> Any:
    """The registration a bundle was exported under, loaded from its audit file (one clear error if absent)."""
    from audit.registration import load_registration

    if not Path(audit_file).is_file():
        raise BundleError(f"{bundles[0] / 'bundle.json'}: its audit file {audit_file} is not here")
    return load_registration(audit_file)


@dataclass
class BundledRun:
    folder: Path
    meta: dict[str, Any]

    @property
    def origin(self) -> str:
        return self.meta["origin_run_id"]

    def metrics(self) -> list[tuple[str, int, float]]:
        """(key, step, value) of every logged value."""
        path = self.folder / HISTORY
        if not path.is_file():
            raise BundleError(f"{path}: no such file (every bundled run has one)")
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "step":
                raise BundleError(f"{path}: the first column must be 'step'")
            out = []
            for line, row in enumerate(reader, start=2):
                try:
                    step = int(row[0])
                    out += [(k, step, float(v)) for k, v in zip(header[1:], row[1:]) if v != ""]
                except (ValueError, IndexError):
                    raise BundleError(f"{path}:{line}: not a step followed by numbers") from None
            return out


def bundled_runs(bundle: Path) -> list[BundledRun]:
    runs = []
    for name in read_manifest(bundle)["runs"]:
        path = bundle / name / "run.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path}: missing or not JSON ({exc})") from None
        missing = {"origin_run_id", "tags", "params", "status", "config_hash"} - set(meta)
        if missing:
            raise BundleError(f"{path}: lacks {', '.join(sorted(missing))}")
        runs.append(BundledRun(bundle / name, meta))
    return runs


# ---------------------------------------------------------------------------------------- import
@dataclass
class Imported:
    added: int = 0
    known: int = 0      # the same run (by origin) was already in the store
    merged: int = 0     # a completed run of the same config was there: only its roles were merged


def _store_index(tracker: Tracker) -> tuple[set[str], dict[str, str]]:
    """Origins of every run in the store, and a completed run id per config hash."""
    origins: set[str] = set()
    completed: dict[str, str] = {}
    token = None
    while True:
        page = tracker.client.search_runs([tracker.experiment_id], max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            origins.add(tags.get(ORIGIN, run.info.run_id))
            if tags.get(STATUS) in COMPLETED and CONFIG_HASH in tags:
                completed.setdefault(tags[CONFIG_HASH], run.info.run_id)
        token = page.token
        if not token:
            return origins, completed


def _add_run(tracker: Tracker, run: BundledRun) -> str:
    from mlflow.entities import Metric, Param

    meta, client = run.meta, tracker.client
    start = meta.get("start_time") or 0
    listed = meta.get("artifacts") if isinstance(meta.get("artifacts"), dict) else {}
    left_out = {p: e.get("bytes") for p, e in listed.items() if isinstance(e, dict) and e.get("exported") is False}
    tags = {k: v for k, v in meta["tags"].items() if k not in IMPORT_TAGS} | {ORIGIN: run.origin}
    if left_out:
        tags[Tag.UNEXPORTED] = json.dumps(left_out, sort_keys=True)
    created = client.create_run(tracker.experiment_id, start_time=start or None, run_name=meta.get("run_name"),
                                tags=tags)
    rid = created.info.run_id
    params = [Param(k, str(v)) for k, v in meta["params"].items()]
    for i in range(0, len(params), 100):
        client.log_batch(rid, params=params[i:i + 100])
    metrics = [Metric(k, v, start, step) for k, step, v in run.metrics()]
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    files = run.folder / "artifacts"
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        folder = path.parent.relative_to(files).as_posix()
        tracker.log_artifact(rid, path, None if folder == "." else folder)
    if meta.get("mlflow_status", "FINISHED") != "RUNNING":
        client.set_terminated(rid, meta.get("mlflow_status", "FINISHED"), end_time=meta.get("end_time"))
    return rid


def import_bundles(tracker: Tracker, bundles: list[Path]) -> Imported:
    """Load bundles into the tracker's store; importing the same bundle twice adds nothing the second time."""
    origins, completed = _store_index(tracker)
    result = Imported()
    for bundle in bundles:
        for run in bundled_runs(bundle):
            if run.origin in origins:
                result.known += 1
                continue
            same = completed.get(run.meta["config_hash"]) if run.meta["status"] in COMPLETED else None
            if same is not None:
                tracker.add_roles(same, run.meta["tags"])
                result.merged += 1
                continue
            rid = _add_run(tracker, run)
            origins.add(run.origin)
            if run.meta["status"] in COMPLETED:
                completed.setdefault(run.meta["config_hash"], rid)
            result.added += 1
    return result


def select_run_ids(tracker: Tracker, claims: list[Any], profile: str | None) -> list[str]:
    """The runs a report of these claims (and profile) reads: evidence, tuning and probe runs, any status."""
    frame = tracker.runs_frame()
    return sorted(select_runs(frame, claims, profile)["run_id"]) if not frame.empty else []


class EvidenceStore:
    """What the report reads, from a temporary store holding imported bundles, named after the bundles."""

    def __init__(self, tracker: Tracker, source: Path) -> None:
        self.tracker, self.uri = tracker, f"evidence bundles in {source}"

    def runs_frame(self) -> Any:
        return self.tracker.runs_frame()

    def history(self, run_id: str, keys: list[str]) -> Any:
        return self.tracker.history(run_id, keys)

    def artifact(self, run_id: str, path: str) -> Path:
        return self.tracker.artifact(run_id, path)


@contextlib.contextmanager
def evidence_store(root: Path, bundles: list[Path] | None = None) -> Iterator[EvidenceStore]:
    """Bundles (default: every one under ``root``) imported into a throwaway store, read as any store is read."""
    bundles = find_bundles(root) if bundles is None else bundles
    if not bundles:
        raise BundleError(f"{root}: holds no evidence bundle (no bundle.json)")
    with tempfile.TemporaryDirectory(prefix="audit-evidence-") as tmp:
        tracker = Tracker(f"sqlite:///{Path(tmp) / 'mlflow.db'}", artifact_root=Path(tmp) / "artifacts")
        import_bundles(tracker, bundles)
        yield EvidenceStore(tracker, root)
