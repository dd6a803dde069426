"""The one exception the data package raises for user mistakes.

A missing path, an empty class folder or a ground-truth file that does not match the images is the
user's to fix, not a bug: the CLI prints ``str(error)`` (one line naming the path) and exits 2.
"""

from __future__ import annotations


class DataError(Exception):
    """A user mistake in the data set or its configuration; the message names the path."""
