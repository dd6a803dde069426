"""CIFAR-10/100 in torchvision's own format (the python pickle batches), read directly.

``data.path`` is the ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``,
``batches.meta``) or a folder holding it, or the release archive itself (``cifar-10-python.tar.gz``,
read in place); ``cifar-100-python`` (``train``, ``test``, ``meta``, fine labels) works the same way.
Pickles can run code when loaded, so a restricted unpickler admits only the numpy array
reconstruction these files need.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from audit.data.errors import DataError
from audit.data.sources import Item, Listing, as_tree
from audit.data.tree import Tree, join

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}
LAYOUTS = {  # folder name → (train batches, val batches, meta file, label key, names key)
    "cifar-10-batches-py": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta",
                            "labels", "label_names"),
    "cifar-100-python": (["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load(tree: Tree, rel: str, data: bytes | None = None) -> dict[str, Any]:
    where = tree.describe(rel)
    if data is None:
        if not tree.is_file(rel):
            raise DataError(f"{where}: missing CIFAR batch file")
        data = tree.read_bytes(rel)
    try:
        raw = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file, named
        raise DataError(f"{where}: not a readable CIFAR python batch ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{where}: not a readable CIFAR python batch (not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def cifar_folder(tree: Tree) -> tuple[str, tuple[list[str], list[str], str, str, str]] | None:
    """The folder (relative to the root) holding the batches, and its layout; None if there is none."""
    for name, layout in LAYOUTS.items():
        for cand in ("", name):
            if tree.is_file(join(cand, layout[2])):
                return cand, layout
    return None


def _folder(tree: Tree) -> tuple[str, tuple[list[str], list[str], str, str, str]]:
    found = cifar_folder(tree)
    if found is None:
        raise DataError(f"{tree.describe()}: no CIFAR python batches (expected batches.meta of "
                        "cifar-10-batches-py, or meta of cifar-100-python, here or in a sub-folder of that name)")
    return found


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def list_cifar_python(path: str | Tree | None) -> Listing:
    """Read labels and pixels once; items index rows of the concatenated pixel array."""
    tree = as_tree(path)
    folder, (train_b, val_b, meta, label_key, names_key) = _folder(tree)
    classes = [_text(n) for n in _load(tree, join(folder, meta))[names_key]]
    rels = [join(folder, b) for b in train_b + val_b]
    missing = [r for r in rels if not tree.is_file(r)]
    if missing:
        raise DataError(f"{tree.describe(missing[0])}: missing CIFAR batch file")
    batches = dict(zip(rels, tree.read_many(rels), strict=True))  # one pass through a compressed tar
    arrays: list[np.ndarray] = []
    items: dict[str, list[Item]] = {"train": [], "val": []}
    offset = 0
    for split, names in (("train", train_b), ("val", val_b)):
        for b in names:
            rel = join(folder, b)
            d = _load(tree, rel, batches[rel])
            try:
                data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                labels = [int(v) for v in d[label_key]]
            except (KeyError, ValueError) as exc:
                raise DataError(f"{tree.describe(rel)}: malformed CIFAR batch ({exc})") from None
            if len(labels) != len(data) or any(not 0 <= v < len(classes) for v in labels):
                raise DataError(f"{tree.describe(rel)}: labels do not match the images or the class list")
            names_ = [_text(n) for n in d.get("filenames", [])] or [str(i) for i in range(len(data))]
            size = len(batches[rel])
            items[split] += [Item(f"{b}/{n}", lab, size, offset + i)
                             for i, (n, lab) in enumerate(zip(names_, labels, strict=True))]
            arrays.append(data)
            offset += len(data)
    pixels = np.concatenate(arrays)
    name = folder.rpartition("/")[2] or tree.name
    return Listing("cifar_python", f"cifar_python:{name}", tree.path, classes, items, arrays=lambda: pixels,
                   tree=tree)
