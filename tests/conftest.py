"""Shared fixtures: an isolated working directory per test, and where the shared CIFAR-10 lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CIFAR10 = REPO.parent / "shared" / "data" / "cifar10"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder so runs/ and reports/ land in tmp, never in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return tmp_path


def needs_cifar() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not CIFAR10.exists(), reason=f"real CIFAR-10 not found at {CIFAR10}")
