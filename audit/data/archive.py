"""An archive as a ``Tree`` rooted at the data set inside it, and the readers the cache builder uses.

The data root is found from the index: the folder whose ``train/`` holds images (ImageFolder,
ILSVRC-2012, Tiny ImageNet; Kaggle's zip keeps it at ``ILSVRC/Data/CLS-LOC``) or that holds CIFAR
python batches. Two such roots in one archive is an error naming both. Paths above the root reach
the archive's parent folders, then the folder the archive sits in (labels kept beside it).

Reading: zip members and plain-tar members by offset (``os.preadv``) from the worker threads, a zip
member's CRC checked; a compressed tar in one sequential pass. A member that cannot be read (short,
bad CRC, unsupported compression) comes back as None: the builder counts it as a bad image.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from audit.data.archive_index import READ_ERRORS, Index, guard, members, open_tar
from audit.data.errors import DataError
from audit.data.index_store import load_index
from audit.data.tree import Batch, FolderTree, Reader, Tree, is_image, join, norm

CIFAR_META = {"batches.meta": "data_batch_1", "meta": "train"}  # meta file → a batch beside it
ARCHIVE_SUFFIX = re.compile(r"(\.tar)?\.(zip|tar|gz|tgz|bz2|tbz2?|xz|txz|zst)$", re.IGNORECASE)


class ArchiveTree(Tree):
    """The members under ``prefix`` of an indexed archive."""

    def __init__(self, index: Index, prefix: str = "") -> None:
        self.index, self.prefix, self.path = index, prefix, index.path
        self.name = posixpath.basename(prefix) or ARCHIVE_SUFFIX.sub("", index.path.name)
        self._beside = FolderTree(index.path.parent)

    def _locate(self, rel: str) -> tuple[FolderTree | None, str]:
        p = join(self.prefix, norm(rel))
        if p == ".." or p.startswith("../"):
            return self._beside, p[3:]
        return None, p

    def is_dir(self, rel: str) -> bool:
        beside, p = self._locate(rel)
        if beside:
            return beside.is_dir(p)
        lo, hi = self.index.span(p)
        return hi > lo

    def size(self, rel: str) -> int | None:
        beside, p = self._locate(rel)
        if beside:
            return beside.size(p)
        i = self.index.find(p)
        return None if i is None else int(self.index.sizes[i])

    def scan(self, rel: str) -> tuple[list[str], list[tuple[str, int]]]:
        beside, p = self._locate(rel)
        if beside:
            return beside.scan(p)
        names, (i, hi) = self.index.names, self.index.span(p)
        cut = len(p) + 1 if p else 0
        dirs, files = [], []
        while i < hi:
            head, sep, _ = names[i][cut:].partition("/")
            if sep:
                dirs.append(head)
                i = self.index.span(names[i][:cut] + head)[1]  # skip the sub-folder's members
            else:
                files.append((head, int(self.index.sizes[i])))
                i += 1
        return sorted(d for d in dirs if not d.startswith(".")), sorted(f for f in files if not f[0].startswith("."))

    def images_under(self, rel: str) -> list[tuple[str, int]]:
        beside, p = self._locate(rel)
        if beside:
            return beside.images_under(p)
        lo, hi = self.index.span(p)
        cut = len(self.prefix) + 1 if self.prefix else 0
        return [(n[cut:], int(self.index.sizes[lo + k])) for k, n in enumerate(self.index.names[lo:hi])
                if is_image(n) and "/." not in "/" + n[len(p):]]

    def read_bytes(self, rel: str) -> bytes:
        return self.read_many([rel])[0]

    def read_many(self, rels: list[str]) -> list[bytes]:
        out: list[bytes | None] = [None] * len(rels)
        inside: dict[int, str] = {}  # position → member path
        for i, rel in enumerate(rels):
            beside, p = self._locate(rel)
            if beside:
                out[i] = beside.read_bytes(p)
            elif p in self.index.small:
                out[i] = self.index.small[p]
            else:
                inside[i] = p
        if inside:
            with self._reader("") as reader:
                got: list[bytearray | None] = [None] * len(inside)
                for pos, load in reader.batches(list(inside.values()), len(inside)):
                    for k, b in zip(pos, load(), strict=True):
                        got[k] = b
            for i, b in zip(inside, got, strict=True):
                if b is None:
                    raise DataError(f"{self.describe(rels[i])}: cannot be read (missing, truncated or corrupt)")
                out[i] = bytes(b)
        return out  # type: ignore[return-value]

    def describe(self, rel: str = "") -> str:
        beside, p = self._locate(rel)
        if beside:
            return beside.describe(p)
        if not p:
            return str(self.index.path)
        tail = "/" if self.index.find(p) is None and self.is_dir(rel) else ""
        return f"{self.index.path}:{self.index.member(p)}{tail}"

    def reader(self) -> contextlib.AbstractContextManager[Reader]:
        return self._reader(self.prefix)

    @contextlib.contextmanager
    def _reader(self, prefix: str) -> Iterator[Reader]:
        kind = {"zip": ZipReader, "tar": TarReader, "stream": StreamReader}[self.index.kind]
        r = kind(self.index, prefix)
        try:
            yield r
        finally:
            r.close()


class _RandomFile:
    """Reads at offsets from many threads: ``os.preadv`` where there is one, else seek + read, locked."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self.lock = threading.Lock()

    def read_at(self, n: int, offset: int) -> bytearray | None:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            if hasattr(os, "preadv"):
                k = os.preadv(self.fd, [view[got:]], offset + got)
            else:
                with self.lock:
                    os.lseek(self.fd, offset + got, os.SEEK_SET)
                    data = os.read(self.fd, n - got)
                view[got:got + len(data)] = data
                k = len(data)
            if k <= 0:
                return None  # the file ends early: a truncated member
            got += k
        return buf

    def close(self) -> None:
        os.close(self.fd)


class _IndexedReader(Reader):
    def __init__(self, index: Index, prefix: str) -> None:
        self.index, self.prefix = index, prefix
        self.file = _RandomFile(index.path)

    def read(self, names: list[str]) -> list[bytearray | None]:
        out: list[bytearray | None] = []
        for n in names:
            i = self.index.find(join(self.prefix, n))
            out.append(None if i is None else self.one(i))
        return out

    def one(self, i: int) -> bytearray | None:
        raise NotImplementedError

    def close(self) -> None:
        self.file.close()


class TarReader(_IndexedReader):
    """Plain tars (nested ones included): every member is a run of bytes at a known offset."""

    def one(self, i: int) -> bytearray | None:
        return self.file.read_at(int(self.index.sizes[i]), int(self.index.offsets[i]))


class ZipReader(_IndexedReader):
    """Stored and deflated members by offset with their CRC checked; other methods through zipfile."""

    def __init__(self, index: Index, prefix: str) -> None:
        super().__init__(index, prefix)
        self._zip: zipfile.ZipFile | None = None

    def one(self, i: int) -> bytearray | None:
        ix = self.index
        method, size = int(ix.method[i]), int(ix.sizes[i])
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return self._other(i) if method >= 0 else None  # -1: encrypted
        off = int(ix.offsets[i])
        head = self.file.read_at(30, off)
        if head is None or head[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        raw = self.file.read_at(int(ix.aux[i]), off + 30 + name_len + extra_len)
        if raw is not None and method == zipfile.ZIP_DEFLATED:
            try:  # at most one byte more than the directory promises: a lying member is bad, not a memory hog
                raw = bytearray(zlib.decompressobj(-15).decompress(raw, size + 1))
            except zlib.error:
                return None
        if raw is None or len(raw) != size or zlib.crc32(raw) != int(ix.crc[i]):
            return None
        return raw

    def _other(self, i: int) -> bytearray | None:
        with self.file.lock:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.index.path)
        name = self.index.names[i]
        try:
            return bytearray(self._zip.read(self.index.originals.get(name, name)))
        except (*READ_ERRORS, RuntimeError, NotImplementedError):
            return None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        super().close()


class StreamReader(Reader):
    """Compressed tars: one pass through the stream, wanted members collected in stream order."""

    random_access = False

    def __init__(self, index: Index, prefix: str) -> None:
        self.index, self.prefix = index, prefix

    def batches(self, names: list[str], chunk: int) -> Iterator[Batch]:
        wanted: dict[int, list[tuple[int, int, int]]] = {}  # ordinal → (position, offset in it, size)
        ready: list[tuple[int, bytearray | None]] = []
        for pos, n in enumerate(names):
            i = self.index.find(join(self.prefix, n))
            if i is None:
                ready.append((pos, None))
            else:
                wanted.setdefault(int(self.index.aux[i]), []).append(
                    (pos, int(self.index.offsets[i]), int(self.index.sizes[i])))
        where, last = str(self.index.path), []
        with open(self.index.path, "rb") as fh, open_tar(fh, "r|*", where) as tf:
            for ordinal, m in enumerate(members(tf, where, last)):
                if ordinal not in wanted:
                    continue
                with guard(where, last):
                    f = tf.extractfile(m)
                    data = f.read() if f is not None else b""
                for pos, off, size in wanted.pop(ordinal):
                    piece = data if off < 0 else data[off:off + size]
                    ready.append((pos, bytearray(piece) if len(piece) == size else None))
                while len(ready) >= chunk:
                    yield _batch(ready[:chunk])
                    del ready[:chunk]
                if not wanted:
                    break
        ready += [(pos, None) for group in wanted.values() for pos, _, _ in group]  # gone since indexing
        for start in range(0, len(ready), chunk):
            yield _batch(ready[start:start + chunk])

    def close(self) -> None:
        pass


def _batch(pairs: list[tuple[int, bytearray | None]]) -> Batch:
    bufs = [b for _, b in pairs]
    return [p for p, _ in pairs], lambda: bufs


def data_roots(index: Index) -> tuple[list[str], list[str]]:
    """(outermost folders whose train/ holds images, folders holding CIFAR python batches)."""
    trains: set[str] = set()
    previous = None
    for n in index.names:
        folder = n.rpartition("/")[0]
        if folder == previous or not is_image(n):
            continue
        previous = folder
        parts = folder.split("/")
        trains.update("/".join(parts[:k]) for k, part in enumerate(parts) if part == "train")
    cifar = {n.rpartition("/")[0] for n in index.names
             if (base := n.rpartition("/")[2]) in CIFAR_META
             and index.find(join(n.rpartition("/")[0], CIFAR_META[base])) is not None}
    both = trains | cifar

    def outermost(roots: set[str]) -> list[str]:
        return sorted(r for r in roots if not any(r != o and (o == "" or r.startswith(o + "/")) for o in both))

    return outermost(trains), outermost(cifar)


def _shown(root: str) -> str:
    return f"{root}/" if root else "its top level"


def archive_tree(path: Path, mount: str | None = None, store: Path | None = None) -> ArchiveTree:
    """The archive rooted at its data set; ``mount``: it stands for the folder of that name, and a single
    top folder of that name is that folder itself. ``store``: where its index is kept (``index_store``)."""
    index = load_index(path, store)
    if mount is not None:
        lo, hi = index.span(mount)
        return ArchiveTree(index, mount if index.names and (lo, hi) == (0, len(index.names)) else "")
    trains, cifar = data_roots(index)
    roots = sorted(set(trains) | set(cifar))
    if len(roots) > 1 or set(trains) & set(cifar):
        kinds = [f"{_shown(r)} ({'CIFAR python batches' if r in cifar else 'a train/ folder of images'})"
                 for r in roots] if len(roots) > 1 else [f"{_shown(roots[0])} (both CIFAR python batches and "
                                                         "a train/ folder of images)"]
        raise DataError(f"{path}: holds more than one data set: {'; '.join(kinds)}; pass an archive with one")
    if not roots:
        hint = (" It looks like ILSVRC2012_img_train.tar (one tar per class): put it in a folder with "
                "ILSVRC2012_img_val.tar and the val labels (LOC_val_solution.csv or val_labels.txt) and pass "
                "that folder." if index.nested else "")
        raise DataError(f"{path}: found no data set inside: expected a folder with train/ (and val/ or test/) "
                        f"folders of images, or CIFAR python batches.{hint}")
    return ArchiveTree(index, roots[0])
