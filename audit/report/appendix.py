"""The report's registration block and its appendix of runs that chose settings (tuning grids).

A reviewer needs to see what was fixed before the runs (the pre-registered family, its commit) and
which runs decided a setting and what they decided — kept in the store, never mixed into a verdict.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from audit import record
from audit.analyse.measure import MeasureResult
from audit.record import Tag
from audit.report.views import fmt, registered


def tuning_appendix(results: list[MeasureResult], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per claim, profile and tuned variant: the grid's scores, the rate chosen and the runs behind them."""
    seen: set[tuple[str, str]] = set()
    out = []
    status, seed = record.tags(frame, Tag.STATUS), record.tags(frame, Tag.SEED)
    for r in results:
        key = (r.claim.id, r.profile)
        if key in seen or not r.tuning:
            continue
        seen.add(key)
        for variant, choice in r.tuning.items():
            runs = frame[frame["run_id"].isin(choice.runs)] if choice.runs else frame.iloc[0:0]
            value = record.params(frame, choice.param)
            out.append({
                "anchor": f"tuning-{r.claim.id}-{r.profile}-{variant}", "claim": r.claim.id, "profile": r.profile,
                "variant": variant, "measure": choice.measure, "better": choice.better, "decided": choice.note,
                "on_edge": choice.on_edge, "chosen": choice.lr,
                "param": "learning rate" if choice.param == "train.lr" else choice.name,
                "grid": [{"lr": f"{row['lr']:g}", "runs": row["runs"], "mean": fmt(row["mean"]),
                          "chosen": row["chosen"]} for row in choice.rows],
                "runs": [{"run_id": rid, "seed": seed[i], "lr": value[i], "status": status[i]}
                         for i, rid in zip(runs.index, runs["run_id"])],
            })
    return out


def probe_appendix(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Probe runs (``audit run --probe NOTE``), grouped by what each was meant to decide."""
    groups: dict[str, list[dict[str, str]]] = {}
    for _, run in frame.iterrows():
        probes = record.run_roles(run, Tag.PROBES)
        if not probes:
            continue
        groups.setdefault(record.tag(run, Tag.PROBE_NOTE) or "—", []).append({
            "roles": ", ".join(probes), "profile": record.profile(run),
            "seed": record.tag(run, Tag.SEED), "lr": record.param(run, "train.lr"),
            "status": record.status(run), "run_id": str(run["run_id"]),
            "val1": fmt(_number(record.metric(run, "val_top1_error"))),
            "train1": fmt(_number(record.metric(run, "train_top1_error")))})
    return [{"note": note, "runs": runs} for note, runs in sorted(groups.items())]


def _number(x: Any) -> float | None:
    value = pd.to_numeric(x, errors="coerce")
    return None if pd.isna(value) else float(value)


def registration_view(registration: Any, frame: pd.DataFrame) -> dict[str, Any] | None:
    """The pre-registered audit behind the report: family, seeds, power, commit, and runs made outside it."""
    if registration is None:
        return None
    spec = registration.spec
    flags = [registered(run, registration.tags) for _, run in frame.iterrows()]
    return {
        "id": spec.id, "title": spec.title, "profile": spec.profile, "alpha": spec.alpha, "power": spec.power,
        "commit": registration.commit(), "digest": registration.digest, "file": str(registration.path),
        "tuning_seeds": spec.tuning_seeds, "notes": spec.notes,
        "rows": [{"claim": row.claim, "measure": row.measure, "primary": row.primary, "seeds": row.seeds,
                  "needed": "no pilot" if row.pilot is None else (str(row.needed) if row.needed else "> 100000"),
                  "underpowered": row.pilot is not None and row.underpowered,
                  "pilot": f"sd {row.pilot.sd:g} ({row.pilot.df} df): {row.pilot.source}" if row.pilot else "—"}
                 for row in registration.power_rows()],
        "outside": sum(f != "yes" for f in flags), "n_runs": len(flags),
    }
