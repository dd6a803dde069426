"""CIFAR-10/100 in torchvision's own format (the python pickle batches), read directly.

``data.path`` is the ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``,
``batches.meta``) or a folder holding it; ``cifar-100-python`` (``train``, ``test``, ``meta``, fine
labels) works the same way. Pickles can run code when loaded, so a restricted unpickler admits only
the numpy array reconstruction these files need.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from audit.data.errors import DataError
from audit.data.sources import Item, Listing, existing_dir

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


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = _SafeUnpickler(fh, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: missing CIFAR batch file") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file, named
        raise DataError(f"{path}: not a readable CIFAR python batch ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: not a readable CIFAR python batch (not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _folder(root: Path) -> tuple[Path, tuple[list[str], list[str], str, str, str]]:
    for name, layout in LAYOUTS.items():
        for cand in (root, root / name):
            if (cand / layout[2]).is_file():
                return cand, layout
    raise DataError(f"{root}: no CIFAR python batches (expected batches.meta of cifar-10-batches-py, "
                    "or meta of cifar-100-python, here or in a sub-folder of that name)")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def list_cifar_python(path: str | None) -> Listing:
    """Read labels and pixels once; items index rows of the concatenated pixel array."""
    folder, (train_b, val_b, meta, label_key, names_key) = _folder(existing_dir(path))
    classes = [_text(n) for n in _load(folder / meta)[names_key]]
    arrays: list[np.ndarray] = []
    items: dict[str, list[Item]] = {"train": [], "val": []}
    offset = 0
    for split, batches in (("train", train_b), ("val", val_b)):
        for b in batches:
            d = _load(folder / b)
            try:
                data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                labels = [int(v) for v in d[label_key]]
            except (KeyError, ValueError) as exc:
                raise DataError(f"{folder / b}: malformed CIFAR batch ({exc})") from None
            if len(labels) != len(data) or any(not 0 <= v < len(classes) for v in labels):
                raise DataError(f"{folder / b}: labels do not match the images or the class list")
            names = [_text(n) for n in d.get("filenames", [])] or [str(i) for i in range(len(data))]
            size = (folder / b).stat().st_size
            items[split] += [Item(f"{b}/{n}", lab, size, offset + i)
                             for i, (n, lab) in enumerate(zip(names, labels, strict=True))]
            arrays.append(data)
            offset += len(data)
    pixels = np.concatenate(arrays)
    return Listing("cifar_python", f"cifar_python:{folder.name}", folder, classes, items,
                   arrays=lambda: pixels)
