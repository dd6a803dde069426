"""A run's identity: what changes its result and nothing else. The data count by content, not by path."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from audit.cli import main
from audit.plan import build_plan
from audit.spec import load_claims
from audit.track import Tracker

from .archive_trees import imagefolder
from .test_resilience import runs_by_hash, write_claim


def _hashes(claim: Path, data: Path) -> set[str]:
    return set(build_plan(load_claims([claim]), "smoke", data_path=str(data)).runs)


def test_a_moved_data_folder_finds_its_finished_runs(workdir: Path) -> None:
    """Train on a folder, move and rename it, run again with the new --data: nothing trains again."""
    claim = write_claim(workdir, epochs=1)
    first = imagefolder(workdir / "data" / "mine", train=3, val=2)
    runner = CliRunner()
    trained = runner.invoke(main, ["run", str(claim), "--data", str(first)])
    assert trained.exit_code == 0, trained.output
    assert "2 finished" in trained.output

    moved = workdir / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(first, moved)
    again = runner.invoke(main, ["run", str(claim), "--data", str(moved)])
    assert again.exit_code == 0, again.output
    assert "2 reused" in again.output and "0 finished" in again.output
    assert len(runs_by_hash(Tracker())) == 2, "no second run of either config"


def test_other_data_are_another_run(workdir: Path) -> None:
    """The same layout with one more image is other data: another config hash."""
    claim = write_claim(workdir, epochs=1)
    one = imagefolder(workdir / "one", train=3, val=2)
    copy = shutil.copytree(one, workdir / "copy")
    other = shutil.copytree(one, workdir / "other")
    shutil.copy(other / "train" / "a" / sorted(p.name for p in (other / "train" / "a").iterdir())[0],
                other / "train" / "a" / "extra.jpg")
    assert _hashes(claim, one) == _hashes(claim, copy)
    assert not _hashes(claim, one) & _hashes(claim, other)
