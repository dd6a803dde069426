"""Shared fixtures: an isolated working directory per test, and where the shared CIFAR-10 and ImageNet subsets live."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CIFAR10 = REPO.parent / "shared" / "data" / "cifar10"
IMAGENET = REPO.parent / "shared" / "data" / "imagenet"  # development data: tests skip without it
TINY_IMAGENET = IMAGENET / "tiny-imagenet-100.zip"
IMAGENETTE = IMAGENET / "imagenette-mini.zip"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder so runs/ and reports/ land in tmp, never in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return tmp_path


def needs_cifar() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not CIFAR10.exists(), reason=f"real CIFAR-10 not found at {CIFAR10}")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $AUDIT_TEST_ARTIFACTS when set, else the test's tmp folder (never the repo)."""
    folder = Path(os.environ.get("AUDIT_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs it: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, path: Path) -> tuple[object, list[str], list[str]]:  # noqa: ANN001 - a playwright Browser
    """A page showing the report, with the console errors and dialogs it produced."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_dialog(dialog) -> None:  # noqa: ANN001
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, errors, dialogs


def load_edited(claim_file: Path, folder: Path, old: str, new: str) -> object:
    """Load a copy of a claim file with ``old`` (which must be there) replaced once by ``new``."""
    text = claim_file.read_text()
    assert old in text, f"{claim_file.name} no longer has {old!r}"
    edited = folder / claim_file.name
    edited.write_text(text.replace(old, new, 1))
    from audit.spec import load_claim
    return load_claim(edited)
