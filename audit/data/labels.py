"""Labels of a flat val folder, and readable class names, from the files ImageNet ships with.

Val labels: the first of these found, each looked for in the data root, ``val/`` (a val archive may
carry its labels inside), ``ILSVRC2012_devkit_t12/data``, ``devkit/data``, ``devkit`` and up to three
folders above the root (Kaggle keeps its CSV three levels above ``Data/CLS-LOC``; for an archive
these are its own folders, then the folder it sits in):

1. ``LOC_val_solution.csv`` (Kaggle: ``ImageId,PredictionString``, the first token is the wnid);
2. ``val_labels.txt``: one ``filename wnid`` per line, whitespace-separated, the filename with or
   without its extension, further columns ignored, ``#`` comments allowed;
3. ``ILSVRC2012_validation_ground_truth.txt`` (devkit: one 1-based ILSVRC2012_ID per line, in val
   file order; a file named ``ILSVRC2012_val_<n>`` takes line n) plus the ID → wnid map from the
   devkit's ``meta.mat`` (needs scipy) or ``synsets.txt`` (line i = wnid of ID i).
   ``LOC_synset_mapping.txt`` is *not* accepted as that map: it is sorted by wnid, while the devkit
   IDs are not (ID 1 is n02119789), so reading it as ID order would mislabel the whole val set.

A val image without a label is an error, and so is a label (in 1 or 2) for an image that is not
there: the val set would be silently incomplete.

Class names: ``LOC_synset_mapping.txt`` (``wnid words``), ``words.txt`` (``wnid<TAB>words``, Tiny
ImageNet's and WordNet's) or the devkit's ``meta.mat``, found the same way; classes without one keep
their folder name.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re

from audit.data.errors import DataError
from audit.data.tree import Tree, join

SEARCH = ("", "val", "ILSVRC2012_devkit_t12/data", "devkit/data", "devkit", "..", "../..", "../../..")
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


def search_dirs(tree: Tree) -> list[str]:
    return [d for d in SEARCH if tree.is_dir(d)]


def find(tree: Tree, name: str, dirs: list[str]) -> str | None:
    return next((join(d, name) for d in dirs if tree.is_file(join(d, name))), None)


def pairs(tree: Tree, rel: str) -> dict[str, str]:
    """``filename wnid …`` lines → {filename: wnid}."""
    out: dict[str, str] = {}
    for k, line in enumerate(tree.read_text(rel).splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 2:
            raise DataError(f"{tree.describe(rel)}: line {k}: expected 'filename wnid', got {line.strip()!r}")
        out[tokens[0]] = tokens[1]
    return out


def match(labels: dict[str, str], files: list[str], where: str) -> list[str]:
    """The wnid of each file (labels keyed by file name or by stem); every label must be used."""
    out, used = [], set()
    for f in files:
        key = f if f in labels else posixpath.splitext(f)[0]
        if key not in labels:
            raise DataError(f"{where}: no label for val image {f} (ground truth does not match the files)")
        used.add(key)
        out.append(labels[key])
    extra = sorted(k for k in labels if k not in used)
    if extra:
        raise DataError(f"{where}: labels {len(extra)} val image(s) that are not there (first: {extra[0]}): the "
                        "val set is incomplete, or the labels belong to another set")
    return out


def _csv(tree: Tree, rel: str) -> dict[str, str]:
    reader = csv.reader(io.StringIO(tree.read_text(rel)))
    header = next(reader, None)
    if not header or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
        raise DataError(f"{tree.describe(rel)}: expected the header ImageId,PredictionString")
    return {row[0].strip(): row[1].split()[0] for row in reader if len(row) >= 2 and row[1].split()}


def _id_to_wnid(tree: Tree, gt: str, dirs: list[str]) -> dict[int, str]:
    near = [posixpath.dirname(gt), *dirs]
    meta = find(tree, "meta.mat", near)
    if meta is not None:
        try:
            from scipy.io import loadmat  # optional: only needed for the devkit's meta.mat
        except ImportError:
            meta = None
        else:
            synsets = loadmat(io.BytesIO(tree.read_bytes(meta)), squeeze_me=True)["synsets"]
            return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    txt = find(tree, "synsets.txt", near)
    if txt is not None:
        wnids = [ln.split()[0] for ln in tree.read_text(txt).splitlines() if ln.strip()]
        return {i + 1: w for i, w in enumerate(wnids)}
    hint = " (LOC_synset_mapping.txt is sorted by wnid, not by ILSVRC2012_ID, so it cannot serve)" \
        if find(tree, "LOC_synset_mapping.txt", near) else ""
    raise DataError(f"{tree.describe(gt)}: found no ILSVRC2012_ID → wnid map: put the devkit's meta.mat (with "
                    f"scipy) or a synsets.txt (line i = wnid of ID i) beside it{hint}")


def _devkit(tree: Tree, gt: str, files: list[str], dirs: list[str]) -> list[str]:
    where = tree.describe(gt)
    try:
        ids = [int(t) for t in tree.read_text(gt).split()]
    except ValueError as exc:
        raise DataError(f"{where}: expected one integer ILSVRC2012_ID per line ({exc})") from None
    id_map = _id_to_wnid(tree, gt, dirs)
    numbers = [re.search(r"_(\d+)$", posixpath.splitext(f)[0]) for f in files]
    if all(numbers):
        rows = [int(m.group(1)) - 1 for m in numbers if m]
        if max(rows) >= len(ids) or min(rows) < 0:
            raise DataError(f"{where}: {len(ids)} labels, but {files[rows.index(max(rows))]} needs line "
                            f"{max(rows) + 1} (ground truth does not match the files)")
    elif len(ids) == len(files):
        rows = list(range(len(files)))
    else:
        raise DataError(f"{where}: {len(ids)} labels but {len(files)} val images (ground truth does not match)")
    out = []
    for r in rows:
        if ids[r] not in id_map:
            raise DataError(f"{where}: line {r + 1} has ILSVRC2012_ID {ids[r]}, unknown to the ID → wnid map")
        out.append(id_map[ids[r]])
    return out


def val_wnids(tree: Tree, files: list[str]) -> list[str]:
    """The wnid of each image of the flat ``val/`` folder (``files``: names inside it)."""
    dirs = search_dirs(tree)
    if (rel := find(tree, "LOC_val_solution.csv", dirs)) is not None:
        return match(_csv(tree, rel), files, tree.describe(rel))
    if (rel := find(tree, "val_labels.txt", dirs)) is not None:
        return match(pairs(tree, rel), files, tree.describe(rel))
    if (rel := find(tree, GROUND_TRUTH, dirs)) is not None:
        return _devkit(tree, rel, files, dirs)
    raise DataError(f"{tree.describe('val')}: flat val folder but no labels: looked for LOC_val_solution.csv, "
                    f"val_labels.txt or {GROUND_TRUTH} in {', '.join(tree.describe(d) for d in dirs)}")


def _meta_words(tree: Tree, rel: str) -> dict[str, str]:
    try:
        from scipy.io import loadmat  # optional: only needed for the devkit's meta.mat
    except ImportError:
        return {}
    synsets = loadmat(io.BytesIO(tree.read_bytes(rel)), squeeze_me=True)["synsets"]
    return {str(s["WNID"]): str(s["words"]) for s in synsets}


def _names_file(tree: Tree, rel: str) -> dict[str, str]:
    known: dict[str, str] = {}
    for line in tree.read_text(rel).splitlines():
        wnid, _, words = line.strip().partition("\t" if "\t" in line else " ")
        if wnid and words.strip():
            known[wnid] = words.strip()
    return known


def class_names(tree: Tree, classes: list[str], dirs: list[str] | None = None) -> dict[str, str]:
    """{class: readable name} for the classes a names file (or the devkit's meta.mat) knows."""
    dirs = search_dirs(tree) if dirs is None else dirs
    for name, read in (("LOC_synset_mapping.txt", _names_file), ("words.txt", _names_file),
                       ("meta.mat", _meta_words)):
        rel = find(tree, name, dirs)
        if rel is not None:
            known = read(tree, rel)
            return {c: known[c] for c in classes if c in known}
    return {}
