"""The report's read access to runs: the tracker, with a local store's artifacts read in place.

``ReportStore`` is ``audit.record.RunFiles``: the run record owns where a run's artifacts lie.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from audit.analyse.measure import RunStore
from audit.record import RunFiles as ReportStore
from audit.record import local_folder

__all__ = ["ReportStore", "Store", "local_folder"]


class Store(RunStore, Protocol):
    """What the report reads: the one frame of runs, plus the histories and artifacts analyse needs."""

    uri: str

    def runs_frame(self) -> pd.DataFrame: ...
