"""What went wrong with the run store, in one line a user can act on.

MLflow reports a damaged or locked SQLite file, or a tracking server that does not answer, as a
deep SQLAlchemy or HTTP traceback. The CLI asks :func:`store_fault` whether an exception is one of
those; if so it prints the store's name and the reason, and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterator

# (a fragment of the underlying error, what it means for the user)
_SQLITE = [
    ("file is not a database", "not an SQLite database (damaged, or another kind of file): move it aside, and the "
     "next run starts a new store"),
    ("database disk image is malformed", "damaged (database disk image is malformed): restore it from a copy, or "
     "move it aside to start a new store"),
    ("database is locked", "locked by another process (another `audit run`, or `mlflow ui` writing): wait for it "
     "to finish, or stop it"),
    ("unable to open database file", "cannot be opened (its folder is missing or not writable)"),
    ("attempt to write a readonly database", "is read-only: give this user write access, or copy it"),
]
_SERVER = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
           "API request to", "Read timed out")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def store_fault(exc: BaseException, uri: str) -> str | None:
    """``"STORE: reason"`` when ``exc`` comes from an unusable run store at ``uri``, else None."""
    store = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri
    for link in _chain(exc):
        text = str(link)
        for fragment, reason in _SQLITE:
            if fragment in text:
                return f"{store}: {reason}"
        if uri.startswith("http") and any(fragment in text for fragment in _SERVER):
            return f"{store}: the tracking server does not answer ({type(link).__name__}); start it, or check the URI"
    return None
