"""Write a bench script's markdown table into its own section of BENCHMARKS.md (never hand-edited)."""

from __future__ import annotations

import platform
from pathlib import Path

from audit.sections import replace_section

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEvery table below is written by the bench script named in its heading (`--write`).\n"


def machine() -> str:
    """One line naming the machine and versions the figures were measured with."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}")


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section between this script's markers."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    BENCHMARKS.write_text(replace_section(text, f"<!-- bench:{name} start -->", f"<!-- bench:{name} end -->",
                                          markdown))
    print(f"wrote the {name} section of {BENCHMARKS}")
