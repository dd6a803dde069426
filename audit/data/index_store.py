"""Archive indexes memoised in the process and kept beside the cache, so a big tar is parsed once.

Why: listing ILSVRC2012_img_train.tar means reading 1.28M tar headers (a minute or more), and every
run's process lists its data set. With a cache folder, the index is saved as
``<cache_dir>/archives/<archive name>-<key>.npz``, the key hashing the archive's path, size and
modification time, so a changed archive is indexed again. numpy arrays and JSON only, never pickle; an
unreadable saved index is rebuilt. In the process, the last few indexes are memoised on the same key
(``detect_source`` and ``load_dataset`` share one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from audit.data.archive_index import Index, build_index

log = logging.getLogger(__name__)

FORMAT = 1
_MEMO: OrderedDict[tuple[str, int, int], Index] = OrderedDict()
ARRAYS = ("sizes", "offsets", "aux", "method", "crc")


def _pack(strings: list[str]) -> np.ndarray:
    raw = "\0".join(strings).encode("utf-8", "surrogateescape")
    return np.frombuffer(zlib.compress(raw, 1), dtype=np.uint8)


def _unpack(blob: np.ndarray) -> list[str]:
    text = zlib.decompress(blob.tobytes()).decode("utf-8", "surrogateescape")
    return text.split("\0") if text else []


def _write(index: Index, file: Path) -> None:
    small = sorted(index.small)
    maps = json.dumps({"format": FORMAT, "path": str(index.path), "kind": index.kind, "nested": index.nested,
                       "originals": index.originals})
    arrays = {name: getattr(index, name) for name in ARRAYS}
    arrays |= {"names": _pack(index.names), "maps": np.frombuffer(maps.encode(), dtype=np.uint8),
               "small_names": _pack(small), "small_sizes": np.array([len(index.small[n]) for n in small], np.int64),
               "small_data": np.frombuffer(b"".join(index.small[n] for n in small), dtype=np.uint8)}
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, file)  # atomic: a reader sees a whole index or none
    except OSError as exc:
        log.warning("%s: could not save the archive index (%s); it will be rebuilt next time", file, exc)
        tmp.unlink(missing_ok=True)


def _read(file: Path, path: Path) -> Index | None:
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            maps = json.loads(z["maps"].tobytes().decode())
            if maps["format"] != FORMAT or maps["path"] != str(path):
                return None
            names = _unpack(z["names"])
            small_names, sizes = _unpack(z["small_names"]), z["small_sizes"].tolist()
            data, ends = z["small_data"].tobytes(), np.cumsum([0, *sizes]).tolist()
            small = {n: data[ends[i]:ends[i + 1]] for i, n in enumerate(small_names)}
            arrays = {name: z[name] for name in ARRAYS}
    except (OSError, ValueError, KeyError, zlib.error, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable saved archive index (%s); indexing again", file, exc)
        return None
    if any(len(a) != len(names) for a in arrays.values()):
        return None
    return Index(path, maps["kind"], names, nested=maps["nested"], originals=maps["originals"], small=small,
                 **arrays)


def load_index(path: Path, store: Path | None = None) -> Index:
    """The archive's index: memoised, else saved in ``store``, else built (and saved there)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    file = None
    index = None
    if store is not None:
        digest = hashlib.sha256("\n".join(map(str, key)).encode()).hexdigest()[:16]
        file = store / f"{path.name}-{digest}.npz"
        index = _read(file, path)
    if index is None:
        index = build_index(path)
        if file is not None:
            _write(index, file)
    _MEMO[key] = index
    while len(_MEMO) > 4:
        _MEMO.popitem(last=False)
    return index


def forget() -> None:
    """Drop the in-process memo (tests; a long-lived process that wants memory back)."""
    _MEMO.clear()
