"""Evidence bundles: export runs of a real store, import them elsewhere (twice), report from either.

The store is filled the way the executor fills it (tests/storefill.py: the real plan's params and tags,
per-epoch metrics, conv1 weights and predictions, a failed and a diverged run) into a real SQLite store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.evidence import BUDGET_BYTES, folder_bytes
from audit.spec import load_claims
from tests.conftest import REPO
from tests.runlog import store
from tests.storefill import fake_data, fill_store, plan_runs

CLAIMS = REPO / "claims"
pytestmark = pytest.mark.slow   # a store of 32 runs, exported, imported and reported three times: about 2 minutes


def _uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smoke runs of relu (its tuning grid) and colour (conv1 weights); cifar runs of lrn with 3 seeds."""
    root = tmp_path_factory.mktemp("evidence-store")
    claims = {c.id: c for c in load_claims([CLAIMS])}
    data = fake_data(root)
    planned = (plan_runs([claims["relu"], claims["colour_specialisation"]], "smoke", 2, data)
               + plan_runs([claims["lrn"]], "cifar", 3, data))
    failing = next(i for i, (_, run) in enumerate(planned) if run.roles[0].variant == "one_tower")
    last = planned[-1][1].config_hash
    tracker = store(root)
    fill_store(tracker, planned, {failing: "RuntimeError: out of memory"}, lambda run: run.config_hash == last)
    # a data manifest over the budget, as a real run on 50,000 images logs one: listed, never exported
    manifest = root / "manifest.csv"
    manifest.write_text("file,label\n" + "x" * BUDGET_BYTES)
    first = tracker.client.search_runs([tracker.experiment_id], order_by=["attributes.start_time ASC"])[0]
    tracker.log_artifact(first.info.run_id, manifest, "data")
    return root


@pytest.fixture(scope="module")
def bundle(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "cifar-and-smoke"
    said = _cli("export", "--claims", CLAIMS, "--claim", "relu", "--claim", "colour_specialisation",
                "--claim", "lrn", "--tracking-uri", _uri(source), "--out", out)
    assert re.search(r"exported \d+ runs to .* KB per run \(budget 512 KB\)", said), said
    return out


def verdict_rows(html: str) -> list[str]:
    """The summary table's rows as text (claim, measure, paper, measured, verdict, seeds, ...)."""
    table = html[html.index('<table id="summary-table">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def _report(tmp: Path, name: str, *source: str) -> list[str]:
    out = tmp / f"{name}.html"
    _cli("report", "--claims", CLAIMS, "--out", out, *source)
    return verdict_rows(out.read_text())


def test_a_bundle_is_small_portable_and_complete(bundle: Path, source: Path) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    # relu's smoke grid (6 tuning + 4 verdict), colour at smoke (4), lrn's cifar grid (12 tuning + 6 verdict)
    assert manifest["budget_bytes"] == BUDGET_BYTES and len(manifest["runs"]) == 32
    assert all(folder_bytes(bundle / name) <= BUDGET_BYTES for name in manifest["runs"])
    for path in bundle.rglob("*"):
        if path.suffix in (".json", ".csv"):
            text = path.read_text()
            assert str(source) not in text and str(Path.home()) not in text, path
    runs = [json.loads((bundle / n / "run.json").read_text()) for n in manifest["runs"]]
    assert {r["status"] for r in runs} == {"finished", "failed", "diverged"}
    colour = next(r for r in runs if "colour_specialisation:two_tower" in r["tags"]["audit.variants"]
                  and r["status"] == "finished")
    assert colour["artifacts"]["weights/conv1_final.npy"]["exported"]
    assert colour["environment"]["audit.device"] == "NVIDIA H100 80GB HBM3"
    name = manifest["runs"][0]
    header = (bundle / name / "history.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "step" and header[1:] == sorted(header[1:])


def test_import_twice_adds_nothing_the_second_time(bundle: Path, tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    n = len(json.loads((bundle / "bundle.json").read_text())["runs"])
    first = _cli("import", bundle, "--tracking-uri", _uri(target), "--runs-dir", target)
    assert f"imported {n} runs" in first and "0 already there" in first
    second = _cli("import", bundle.parent, "--tracking-uri", _uri(target), "--runs-dir", target)
    assert "imported 0 runs" in second and f"{n} already there" in second
    from audit.track import Tracker

    assert len(Tracker(_uri(target), artifact_root=target / "artifacts").runs_frame()) == n


def test_the_report_from_an_import_equals_the_report_from_the_bundle(bundle: Path, source: Path,
                                                                     tmp_path: Path) -> None:
    target = tmp_path / "imported"
    _cli("import", bundle, "--tracking-uri", _uri(target), "--runs-dir", target)
    from_source = _report(tmp_path, "source", "--tracking-uri", _uri(source))
    from_import = _report(tmp_path, "import", "--tracking-uri", _uri(target))
    from_bundle = _report(tmp_path, "bundle", "--evidence", str(bundle))
    assert any("lrn" in row and "inconclusive" in row for row in from_bundle), from_bundle
    assert from_import == from_bundle == from_source
    assert "evidence bundles in" in (tmp_path / "bundle.html").read_text()


def test_exporting_an_imported_store_gives_the_same_bundle(bundle: Path, tmp_path: Path) -> None:
    target = tmp_path / "again"
    _cli("import", bundle, "--tracking-uri", _uri(target), "--runs-dir", target)
    again = tmp_path / "re-exported"
    _cli("export", "--claims", CLAIMS, "--claim", "relu", "--claim", "colour_specialisation", "--claim", "lrn",
         "--tracking-uri", _uri(target), "--out", again)
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    listings = [json.loads((bundle / f).read_text())["artifacts"] for f in files if f.name == "run.json"]
    left_out = [a for a in listings if a.get("data/manifest.csv", {}).get("exported") is False]
    assert len(left_out) == 1, "the manifest over the budget is listed, not exported"
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((bundle / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_bad_bundles_are_one_line_errors(tmp_path: Path, bundle: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["import", str(tmp_path / "nowhere"), "--tracking-uri", _uri(tmp_path)])
    assert missing.exit_code == 2 and "nowhere: no such folder" in missing.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{not json")
    bad = runner.invoke(main, ["report", "--evidence", str(broken), "--out", str(tmp_path / "r.html")])
    assert bad.exit_code == 2 and "bundle.json: not readable JSON" in bad.output
    assert "Traceback" not in bad.output
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    clash = runner.invoke(main, ["export", "--claim", "lrn", "--claims", str(CLAIMS), "--tracking-uri",
                                 _uri(tmp_path), "--out", str(occupied)])
    assert clash.exit_code == 2 and "is not an evidence bundle" in clash.output
