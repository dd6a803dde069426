"""A read-only file tree that layouts are listed from and images are read from, wherever it lives.

Why: ``--data`` may be a folder, a zip or a tar (``audit.data.archive``), or a folder holding one
archive per split; the layouts (``audit.data.sources``, ``audit.data.tiny``, ``audit.data.cifar``)
should not care which. Paths are POSIX strings relative to the data root (``""`` is the root);
``..`` reaches above it, which label searches use (Kaggle keeps its CSV three levels up).

- ``FolderTree``: a folder on disk. A split folder that is missing may be an archive beside the others
  (``mount_archives``): ImageNet as downloaded, ``ILSVRC2012_img_train.tar`` (a tar of per-class
  tars), ``ILSVRC2012_img_val.tar`` (a flat tar of JPEGs) and ``ILSVRC2012_devkit_t12.tar.gz`` in one
  folder, read as ``train/``, ``val/`` and ``ILSVRC2012_devkit_t12/``.
- ``Reader``: bytes of many members for the cache builder, by offset from worker threads (folders,
  zips, plain tars) or in one sequential pass (compressed tars).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from audit.data.errors import DataError
from audit.data.preprocess import read_bytes

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
ARCHIVE_RE = r"\.(zip|tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz)$"
Batch = tuple[list[int], Callable[[], list[bytearray | None]]]  # (positions in the request, loader)


def is_image(name: str) -> bool:
    """An image file by its extension; hidden files are not (``name`` may be a path)."""
    base = name[name.rfind("/") + 1:]
    dot = base.rfind(".")
    return dot > 0 and base[0] != "." and base[dot:].lower() in IMAGE_EXTS


def norm(rel: str) -> str:
    """``rel`` normalised: no ``.``, no trailing slash, ``""`` for the root."""
    out = posixpath.normpath(rel.replace("\\", "/")) if rel else "."
    return "" if out == "." else out


def join(*parts: str) -> str:
    return norm("/".join(p for p in parts if p))


class Reader:
    """Bytes of members by name; ``None`` for one that cannot be read (missing, short, bad checksum)."""

    random_access = True

    def read(self, names: list[str]) -> list[bytearray | None]:
        """Random-access readers: the bytes of ``names``, safe to call from several threads at once."""
        raise NotImplementedError

    def batches(self, names: list[str], chunk: int) -> Iterator[Batch]:
        """(positions into ``names``, a loader of their bytes) in the order the source reads best; a
        random-access reader gives ``chunk`` names at a time in order, their bytes read by the loader."""
        for start in range(0, len(names), chunk):
            part = names[start:start + chunk]
            yield list(range(start, start + len(part))), partial(self.read, part)


class Tree(ABC):
    """A folder, an archive, or a folder with archives mounted in it, rooted at the data root."""

    path: Path  # the folder or archive on disk
    name: str  # a short name for the data set (the root folder's name, or the archive's stem)

    @abstractmethod
    def is_dir(self, rel: str) -> bool: ...

    @abstractmethod
    def size(self, rel: str) -> int | None:
        """The file's size in bytes; None when it is not a file."""

    @abstractmethod
    def scan(self, rel: str) -> tuple[list[str], list[tuple[str, int]]]:
        """The folder's sub-folders and (file, bytes), by name, hidden entries left out."""

    @abstractmethod
    def images_under(self, rel: str) -> list[tuple[str, int]]:
        """(path relative to the root, bytes) of every image under the folder, recursively, sorted."""

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes: ...

    @abstractmethod
    def describe(self, rel: str = "") -> str:
        """Where ``rel`` is, for messages: a path on disk or ``archive:member``."""

    @abstractmethod
    def reader(self) -> contextlib.AbstractContextManager[Reader]: ...

    def is_file(self, rel: str) -> bool:
        return self.size(rel) is not None

    def read_many(self, rels: list[str]) -> list[bytes]:
        """Several files at once (a compressed tar reads them in one pass)."""
        return [self.read_bytes(r) for r in rels]

    def read_text(self, rel: str) -> str:
        try:
            return self.read_bytes(rel).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.describe(rel)}: not a UTF-8 text file ({exc})") from None


class FolderTree(Tree):
    """A folder on disk; ``mounts`` are archives read as its split folders."""

    def __init__(self, root: Path, mounts: dict[str, Tree] | None = None) -> None:
        self.path, self.name, self.mounts = root, root.name, dict(mounts or {})

    def _route(self, rel: str) -> tuple[Tree | None, str]:
        rel = norm(rel)
        head, _, rest = rel.partition("/")
        return (self.mounts[head], rest) if head in self.mounts else (None, rel)

    def _disk(self, rel: str) -> Path:
        return Path(os.path.normpath(self.path / rel)) if rel else self.path

    def is_dir(self, rel: str) -> bool:
        tree, sub = self._route(rel)
        return tree.is_dir(sub) if tree else self._disk(sub).is_dir()

    def size(self, rel: str) -> int | None:
        tree, sub = self._route(rel)
        if tree:
            return tree.size(sub)
        p = self._disk(sub)
        return p.stat().st_size if p.is_file() else None

    def scan(self, rel: str) -> tuple[list[str], list[tuple[str, int]]]:
        tree, sub = self._route(rel)
        if tree:
            return tree.scan(sub)
        dirs, files = [], []
        with os.scandir(self._disk(sub)) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir():
                    dirs.append(e.name)
                elif e.is_file():
                    files.append((e.name, e.stat().st_size))
        if not sub:
            dirs += [m for m in self.mounts if m not in dirs]
        return sorted(dirs), sorted(files)

    def images_under(self, rel: str) -> list[tuple[str, int]]:
        tree, sub = self._route(rel)
        if tree:
            head = norm(rel).partition("/")[0]
            return [(join(head, n), b) for n, b in tree.images_under(sub)]
        found: list[tuple[str, int]] = []
        stack = [self._disk(sub)]
        while stack:
            d = stack.pop()
            with os.scandir(d) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    if e.is_dir():
                        stack.append(Path(e.path))
                    elif is_image(e.name) and e.is_file():
                        found.append((Path(e.path).relative_to(self.path).as_posix(), e.stat().st_size))
        if not sub:
            found += [(join(m, n), b) for m, t in self.mounts.items() for n, b in t.images_under("")]
        return sorted(found)

    def read_bytes(self, rel: str) -> bytes:
        tree, sub = self._route(rel)
        if tree:
            return tree.read_bytes(sub)
        try:
            return self._disk(sub).read_bytes()
        except OSError as exc:
            raise DataError(f"{self._disk(sub)}: cannot read ({exc.strerror or exc})") from None

    def describe(self, rel: str = "") -> str:
        tree, sub = self._route(rel)
        return tree.describe(sub) if tree else str(self._disk(sub))

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader]:
        with contextlib.ExitStack() as stack:
            yield _FolderReader(self.path, {m: stack.enter_context(t.reader()) for m, t in self.mounts.items()})


class _FolderReader(Reader):
    """Files read whole by the worker threads; names under a mount go to that archive's reader."""

    def __init__(self, root: Path, mounts: dict[str, Reader]) -> None:
        self.root, self.mounts = root, mounts
        self.random_access = all(r.random_access for r in mounts.values())

    def _split(self, names: list[str]) -> dict[str | None, list[int]]:
        parts: dict[str | None, list[int]] = {}
        for i, n in enumerate(names):
            head = n.partition("/")[0]
            parts.setdefault(head if head in self.mounts else None, []).append(i)
        return parts

    def read(self, names: list[str]) -> list[bytearray | None]:
        out: list[bytearray | None] = [None] * len(names)
        for head, idx in self._split(names).items():
            if head is None:
                got = [read_bytes(self.root / names[i]) for i in idx]
            else:
                got = self.mounts[head].read([names[i].partition("/")[2] for i in idx])
            for i, b in zip(idx, got, strict=True):
                out[i] = b
        return out

    def batches(self, names: list[str], chunk: int) -> Iterator[Batch]:
        if self.random_access:
            yield from super().batches(names, chunk)
            return
        for head, idx in self._split(names).items():  # a compressed tar among the splits: part by part
            if head is None:
                sub: Reader = _FolderReader(self.root, {})
                part = [names[i] for i in idx]
            else:
                sub, part = self.mounts[head], [names[i].partition("/")[2] for i in idx]
            for pos, load in sub.batches(part, chunk):
                yield [idx[p] for p in pos], load


DEVKIT = "ILSVRC2012_devkit_t12"


def mount_archives(root: Path, open_archive: Callable[[Path, str], Tree]) -> dict[str, Tree]:
    """Archives in ``root`` that stand for a missing folder: ``train/`` from a file named ``train.<ext>``
    or ``<anything>_train.<ext>`` (``-`` and ``.`` also separate), ``val/`` the same way, and
    ``ILSVRC2012_devkit_t12/`` (the val ground truth) from ``ILSVRC2012_devkit_t12.tar.gz``."""
    files = [e.name for e in os.scandir(root) if e.is_file() and not e.name.startswith(".")]
    mounts: dict[str, Tree] = {}
    for folder, pattern in (("train", r"(^|[_.-])train"), ("val", r"(^|[_.-])val"), (DEVKIT, f"^{DEVKIT}")):
        if (root / folder).is_dir():
            continue
        found = sorted(f for f in files if re.search(pattern + ARCHIVE_RE, f, re.IGNORECASE))
        if len(found) > 1:
            raise DataError(f"{root}: two archives could be the {folder} folder: {', '.join(found)} "
                            f"(keep one, or extract it to {folder}/)")
        if found:
            mounts[folder] = open_archive(root / found[0], folder)
    return mounts


def open_tree(path: str | os.PathLike[str] | None, index_store: Path | None = None) -> Tree:
    """``--data``: a folder (split archives inside it mounted) or an archive, rooted at its data set;
    ``index_store``: where archive indexes are kept between processes (``audit.data.index_store``)."""
    from audit.data.archive import archive_tree  # the archive module imports this one

    if not path:
        raise DataError("data path is not set")
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise DataError(f"{p}: data path does not exist")
    if p.is_dir():
        return FolderTree(p, mount_archives(p, partial(archive_tree, store=index_store)))
    if p.is_file():
        return archive_tree(p, store=index_store)
    raise DataError(f"{p}: data path is neither a folder nor an archive")
