"""What an archive holds and where each member's bytes lie, read once without extracting anything.

- zip: the central directory (names, sizes, local-header offsets, CRCs); members are read by offset.
- tar, uncompressed: the headers (data offsets); a member named ``*.tar`` that is itself a tar is
  indexed too and stands for a folder of its name without ``.tar`` (ILSVRC2012_img_train.tar holds
  ``n01440764.tar`` …, read as ``n01440764/…``); every JPEG is then at a known offset in the file.
- tar, compressed (gzip, bzip2, xz): no random access, so ``kind = "stream"``: members are known by
  their order in the stream and read in one sequential pass; small non-image files (label lists) are
  kept from the indexing pass.

A tar that ends without its end-of-archive marker (truncated, or a damaged header that tarfile would
silently stop at) is an error naming the last member read, never a quietly smaller data set. Indexes
are memoised and kept beside the cache by ``audit.data.index_store``.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import numpy as np

from audit.data.errors import DataError
from audit.data.tree import is_image, join, norm

SMALL = 8 << 20  # non-image members up to this size are kept in memory when a compressed tar is indexed
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")  # gzip, bzip2, xz, zstd
LAST = "\U0010ffff"  # sorts after every character: [p, p + LAST) holds the names starting with p


@dataclass(frozen=True)
class Index:
    """Sorted member paths (as the data set sees them) and per-member arrays."""

    path: Path
    kind: Literal["zip", "tar", "stream"]
    names: list[str]
    sizes: np.ndarray  # int64, bytes of each member (uncompressed)
    offsets: np.ndarray  # int64; zip: local header; tar: data (absolute); stream: in the nested tar, else -1
    aux: np.ndarray  # int64; zip: compressed size; stream: ordinal of the (outer) member in the stream
    method: np.ndarray  # int64; zip: compression method, -1 when encrypted
    crc: np.ndarray  # int64; zip: CRC-32 of the member
    nested: dict[str, str] = field(default_factory=dict)  # folder → the nested tar member it stands for
    originals: dict[str, str] = field(default_factory=dict)  # path → member name as stored, where they differ
    small: dict[str, bytes] = field(default_factory=dict)  # stream: small non-image members' bytes

    def find(self, name: str) -> int | None:
        i = bisect.bisect_left(self.names, name)
        return i if i < len(self.names) and self.names[i] == name else None

    def span(self, folder: str) -> tuple[int, int]:
        """The range of names under ``folder`` (``""``: all)."""
        if not folder:
            return 0, len(self.names)
        lo = bisect.bisect_left(self.names, folder + "/")
        return lo, bisect.bisect_left(self.names, folder + "/" + LAST, lo)

    def member(self, name: str) -> str:
        """The member as stored, for messages: a path inside a nested tar names that tar."""
        parts = name.split("/")
        for k in range(len(parts) - 1, 0, -1):
            outer = self.nested.get("/".join(parts[:k]))
            if outer is not None:
                return f"{outer}:{'/'.join(parts[k:])}"
        return self.originals.get(name, name)


def clean(name: str) -> str | None:
    """A member name as a relative path; None for folders, ``..`` escapes and macOS resource forks."""
    n = norm(name.lstrip("/"))
    if not n or n == ".." or n.startswith("../") or n.startswith("__MACOSX/") or name.endswith("/"):
        return None
    return n


class _Watched(tarfile.TarInfo):
    """Records why tarfile stopped reading headers: it ends silently on a truncated or damaged one."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            tarfile_.audit_stop = exc  # type: ignore[attr-defined]
            raise


READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


@contextlib.contextmanager
def guard(where: str, last: list[str]) -> Iterator[None]:
    """Reading errors → one DataError naming the archive and the last member read."""
    try:
        yield
    except DataError:
        raise
    except READ_ERRORS as exc:
        after = f" after member {last[-1]}" if last else ""
        raise DataError(f"{where}: unreadable{after} ({exc}): the archive is truncated or corrupt") from None


def open_tar(fileobj: IO[bytes], mode: str, where: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=fileobj, mode=mode, tarinfo=_Watched)
    except READ_ERRORS as exc:
        raise DataError(f"{where}: not a readable tar archive ({exc})") from None


def members(tf: tarfile.TarFile, where: str, last: list[str]) -> Iterator[tarfile.TarInfo]:
    """Every member in order; a DataError if the archive ends without its end-of-archive marker."""
    with guard(where, last):
        for m in tf:
            last.append(m.name)
            yield m
        stop = getattr(tf, "audit_stop", None)
        if stop is not None and not isinstance(stop, tarfile.EOFHeaderError):
            after = f" after member {last[-1]}" if last else ""
            raise DataError(f"{where}: ends{after} without the end-of-archive marker ({stop}): the archive is "
                            "truncated or a header is damaged")


Row = tuple[int, int, int, int, int]  # size, offset, aux, method, crc


def _nested(where: str, m: tarfile.TarInfo, fileobj: IO[bytes] | None) -> list[tuple[str, int, int]] | None:
    """(path, size, data offset inside the nested tar) of a ``*.tar`` member; None if it is no tar."""
    if fileobj is None:
        return None
    try:
        inner = tarfile.open(fileobj=fileobj, mode="r:", tarinfo=_Watched)
    except tarfile.ReadError:
        return None  # named .tar but not a tar: an ordinary file
    inner_where = f"{where}:{m.name}"
    return [(n, im.size, im.offset_data) for im in members(inner, inner_where, [])
            if im.isreg() and (n := clean(im.name)) is not None]


def _tar_rows(path: Path, stream: bool) -> tuple[dict[str, Row], dict[str, str], dict[str, str], dict[str, bytes]]:
    rows: dict[str, Row] = {}
    nested: dict[str, str] = {}
    originals: dict[str, str] = {}
    small: dict[str, bytes] = {}
    where, last = str(path), []
    with open(path, "rb") as fh, open_tar(fh, "r|*" if stream else "r:", where) as tf:
        for ordinal, m in enumerate(members(tf, where, last)):
            name = clean(m.name)
            if not m.isreg() or name is None:
                continue
            with guard(where, last):
                if name.lower().endswith(".tar"):
                    data = tf.extractfile(m)
                    inner = _nested(where, m, io.BytesIO(data.read()) if stream and data else data)
                    if inner is not None:
                        folder = name[:-4]
                        nested[folder] = m.name
                        for n, size, off in inner:
                            rows[join(folder, n)] = (size, off if stream else m.offset_data + off, ordinal, 0, 0)
                        continue
                rows[name] = (m.size, -1 if stream else m.offset_data, ordinal, 0, 0)
                if name != m.name:
                    originals[name] = m.name
                if stream and not is_image(name) and m.size <= SMALL and (f := tf.extractfile(m)) is not None:
                    small[name] = f.read()
    return rows, nested, originals, small


def _zip_rows(path: Path) -> tuple[dict[str, Row], dict[str, str]]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc}): is it truncated?") from None
    total = path.stat().st_size
    rows: dict[str, Row] = {}
    originals: dict[str, str] = {}
    for info in infos:
        name = clean(info.filename)
        if info.is_dir() or name is None:
            continue
        if info.header_offset + info.compress_size > total:
            raise DataError(f"{path}: member {info.filename} runs past the end of the file: the archive is "
                            "truncated")
        method = -1 if info.flag_bits & 1 else info.compress_type
        rows[name] = (info.file_size, info.header_offset, info.compress_size, method, info.CRC)
        if name != info.filename:
            originals[name] = info.filename
    return rows, originals


def _is_tar(path: Path) -> bool:
    with open(path, "rb") as fh:
        block = fh.read(tarfile.BLOCKSIZE)
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.EOFHeaderError:
        return True  # an empty tar: zero blocks only
    except tarfile.HeaderError:
        return False
    return True


def build_index(path: Path) -> Index:
    """Read the archive's directory (zip) or headers (tar); DataError naming it if that fails."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    nested: dict[str, str] = {}
    small: dict[str, bytes] = {}
    kind: Literal["zip", "tar", "stream"]
    if head[:4] in ZIP_MAGIC or (not head.startswith(COMPRESSED_MAGIC) and zipfile.is_zipfile(path)):
        kind = "zip"
        rows, originals = _zip_rows(path)
    else:
        kind = "stream" if head.startswith(COMPRESSED_MAGIC) else "tar"
        if kind == "tar" and not _is_tar(path):
            raise DataError(f"{path}: neither a folder nor a zip or tar archive")
        rows, nested, originals, small = _tar_rows(path, kind == "stream")
    names = sorted(rows)
    cols = np.array([rows[n] for n in names], dtype=np.int64).reshape(-1, 5)
    return Index(path, kind, names, cols[:, 0].copy(), cols[:, 1].copy(), cols[:, 2].copy(), cols[:, 3].copy(),
                 cols[:, 4].copy(), nested, originals, small)
