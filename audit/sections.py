"""Generated sections of a markdown file: text between two marker comments, rewritten, never hand-edited.

BENCHMARKS.md (one section per bench script) and README.md's findings table are written this way, so
a check can regenerate a section and compare it with the committed one.
"""

from __future__ import annotations

import re


def _pattern(start: str, end: str) -> re.Pattern[str]:
    return re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)


def read_section(text: str, start: str, end: str) -> str | None:
    """The body between the markers (stripped), or None when the markers are not both there."""
    found = _pattern(start, end).search(text)
    return None if found is None else found.group(0)[len(start):-len(end)].strip()


def replace_section(text: str, start: str, end: str, body: str) -> str:
    """``text`` with the section's body replaced, or the section appended when it is not there yet."""
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = _pattern(start, end)
    return pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
