"""Claim files are untrusted input: `audit validate` never hangs, crashes or silently passes.

- the corpus in tests/untrusted/ (alias bombs, deep nesting, binary and non-UTF-8 files, YAML tags
  that would execute code, duplicate and complex keys) and generated giants: one line, exit 2;
- semantic mistakes are errors at the line of the offending key;
- time and memory of the nastiest cases are measured in a fresh process;
- a property-based fuzz test over mutated and generated documents: always exit 0 or 2, no traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit.designs  # noqa: F401 - PyTorch imported once here: the fuzz test's bound is per file, not per import
from audit.cli import main

from .conftest import REPO

CORPUS = Path(__file__).parent / "untrusted"
EXPECT = re.compile(r"# expect: (\d+): (.+)")
UTF16_EXPECT = ("1", "a binary file (NUL byte)")


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def expectation(path: Path) -> tuple[str, str]:
    if path.name == "utf16.yaml":
        return UTF16_EXPECT
    first = path.read_bytes().split(b"\n", 1)[0].decode("latin-1")
    match = EXPECT.match(first)
    assert match, f"{path.name}: first line must say '# expect: LINE: message'"
    return match.group(1), match.group(2)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_each_hostile_file_is_one_clear_line(path: Path) -> None:
    line, message = expectation(path)
    code, output = validate(path)
    assert code == 2
    assert "Traceback" not in output and output.count("\n") == 1, output
    assert output.startswith(f"error: {path}:{line}: ") and message in output, output


def giants(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files too big to keep in the corpus: over the size limit, and 10⁵ values in 200 KB."""
    big = folder / "big.yaml"
    big.write_text("# " + "x" * 1_200_000 + "\n")
    many = folder / "many.yaml"
    many.write_text("x: [" + ",".join(["1"] * 100_001) + "]\n")
    return {"big": (big, f"{big}: 1,200,003 bytes; a claim file is at most 1,000,000 bytes"),
            "many": (many, f"{many}:1: more than 100,000 values in one file")}


def test_giant_files_are_refused(tmp_path: Path) -> None:
    for path, message in giants(tmp_path).values():
        code, output = validate(path)
        assert code == 2 and output == f"error: {message}\n"


# Peak memory is this process's VmHWM: ru_maxrss would carry over the forking parent's peak across exec.
MEASURE = ("import atexit, re, resource, sys\n"
           "def cost():\n"
           "    use = resource.getrusage(resource.RUSAGE_SELF)\n"
           "    status = open('/proc/self/status').read()\n"
           "    peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
           "    print(f'cost {use.ru_utime + use.ru_stime:.2f} {peak}', file=sys.stderr)\n"
           "atexit.register(cost)\n"
           "from audit.cli import main\n"
           "main()\n")


@pytest.mark.parametrize("name", ["billion_laughs.yaml", "deep_flow.yaml", "recursive_alias.yaml", "big", "many",
                                  "claims/depth.yaml", "claims/full_imagenet.yaml"])
def test_any_file_ends_within_5_s_and_300_mb(name: str, tmp_path: Path) -> None:
    """The nastiest files and valid claim files alike. CPU seconds (user + system) of the whole process,
    imports included: wall time on a shared 2-core machine measures the neighbours."""
    path = (giants(tmp_path)[name][0] if name in ("big", "many") else
            REPO / name if name.startswith("claims/") else CORPUS / name)
    done = subprocess.run([sys.executable, "-c", MEASURE, "validate", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    cpu_seconds, rss_kb = done.stderr.rsplit("cost ", 1)[1].split()
    assert done.returncode == (0 if name.startswith("claims/") else 2) and "Traceback" not in done.stderr
    assert float(cpu_seconds) < 5.0, f"{cpu_seconds} CPU seconds"
    assert int(rss_kb) < 300 * 1024, f"{int(rss_kb) // 1024} MB"


# ---------------------------------------------------------------- semantic errors at their line

def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


SEMANTIC = [
    # (claim file, text replaced, its replacement, the key the error names, the message)
    ("relu.yaml", "metric: train_top1_error ", "metric: train_top7_error ", "measure.0.metric",
     "no run logs 'train_top7_error'"),
    ("relu.yaml", "threshold: 25.0", "threshold: 250.0", "measure.0.threshold",
     "250 is outside train_top1_error's range 0 to 100 (a percentage)"),
    ("relu.yaml", "baseline: relu", "baseline: tanh", "measure.0.baseline",
     "compares tanh with itself on the same metric"),
    ("relu.yaml", "threshold: 25.0", "threshold: 25.0\n    tolerance: 1.0", "measure.0.tolerance",
     "only epochs_to_converge reads a tolerance; kind epochs_to_threshold ignores it"),
    ("relu.yaml", "treatment: tanh", "treatment: sigmoid", "measure.0.treatment", "'sigmoid' is not a variant"),
    ("relu.yaml", "lr_grid: {relu: [0.01, 0.03, 0.1], tanh:", "lr_grid: {relu: [0.01, 0.03, 0.1], tahn:",
     "profiles.smoke.lr_grid.tahn", "not a variant"),
    ("lrn.yaml", "tune_metric: holdout_top1_error", "tune_metric: holdout_top9_error", "profiles.cifar.tune_metric",
     "no run logs 'holdout_top9_error'"),
    ("lrn.yaml", "smallest_effect: {top1: 1.0}", "smallest_effect: {top9: 1.0}", "profiles.cifar.smallest_effect.top9",
     "not a measure id"),
    ("depth.yaml", "  smoke: {extends: alexnet}", "  smokey: {extends: alexnet}", "profiles.smokey.extends",
     "has no profile 'smokey'"),
    ("dropout.yaml", "kind: overfitting_gap", "kind: overfitting_gap\n    metric: val_top5_error", "measure.0.metric",
     "kind overfitting_gap ignores metric"),
]


@pytest.mark.parametrize(("claim", "old", "new", "key", "message"), SEMANTIC, ids=[s[3] for s in SEMANTIC])
def test_semantic_mistakes_point_at_their_line(claim: str, old: str, new: str, key: str, message: str,
                                               tmp_path: Path) -> None:
    text = (REPO / "claims" / claim).read_text()
    assert old in text, f"{claim} no longer contains {old!r}"
    bad = tmp_path / claim
    bad.write_text(text.replace(old, new, 1))
    code, output = validate(bad)
    line = _line_of(bad.read_text(), new.splitlines()[-1].strip())
    assert code == 2, output
    assert output.startswith(f"error: {bad}:{line}: {key}: ") and message in output, output


def test_an_init_from_chain_must_name_variants(tmp_path: Path) -> None:
    text = (REPO / "claims/full_imagenet.yaml").read_text()
    parent = re.search(r"init_from: (\w+)", text).group(1)
    bad = tmp_path / "full_imagenet.yaml"
    bad.write_text(text.replace(f"init_from: {parent}", "init_from: pretrian", 1))
    code, output = validate(bad)
    line = _line_of(bad.read_text(), "init_from: pretrian")
    assert code == 2 and output.startswith(f"error: {bad}:{line}: variants."), output
    assert "'pretrian' is not a variant" in output


# ---------------------------------------------------------------- fuzz: never a traceback

CLAIM_KEYS = ["id", "title", "paper", "variants", "measure", "profiles", "base", "model", "data", "train",
              "kind", "metric", "threshold", "treatment", "baseline", "expect", "seeds", "lr_grid", "extends",
              "init_from", "epochs", "lr", "section", "quote", "smallest_effect", "scale", "tune_metric"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["relu", "tanh", "cifar", "smoke", "alexnet", "-1e999"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(CLAIM_KEYS), st.text(max_size=8)), inner, max_size=5)), max_leaves=25)
REAL = [p.read_text() for p in sorted((REPO / "claims").glob("*.yaml"))]


@st.composite
def mutated_claims(draw: st.DrawFn) -> str:
    """A real claim file with a few lines deleted, duplicated or cut, or characters replaced."""
    lines = draw(st.sampled_from(REAL)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "cut", "char", "indent"]))
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif how == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        elif lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + draw(st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t0"))) + lines[i][j + 1:]
        if not lines:
            lines = ["x"]
    return "\n".join(lines) + "\n"


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(text=st.one_of(mutated_claims(), documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                      st.text(max_size=200)))
def test_fuzzed_claim_files_exit_0_or_2_without_a_traceback(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    start = time.process_time()   # CPU seconds: the machine's neighbours do not count
    code, output = validate(path)
    assert code in (0, 2) and "Traceback" not in output, output
    assert time.process_time() - start < 5.0
    if code == 2:
        assert output.startswith(f"error: {path}") and output.count("\n") == 1, output
