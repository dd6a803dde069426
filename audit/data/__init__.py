"""The data package: sources, deterministic subsets, the paper's preprocessing, a uint8 cache, and
batch augmentation on tensors.

    data = load_dataset(cfg.data, cache_dir, input_size=cfg.model.input_size)
    aug = Augmenter(cfg.data, data, cfg.model.input_size)
    x = aug.train_batch(data.train.x[idx], generator)      # float32 [B, 3, C, C]

Stored size S and crop C: see ``audit.data.dataset``; layouts: ``audit.data.sources``,
``audit.data.tiny`` and ``audit.data.cifar``, each read from a folder or in place from a zip or tar
(``audit.data.tree``, ``audit.data.archive``); val label files: ``audit.data.labels``; the data
that needs no path: ``audit.data.synthetic`` (generated) and the Tiny ImageNet slice in
``audit/data/embedded/``; the cache: ``audit.data.cache`` (built by ``audit.data.pipeline``).
"""

from audit.data.augment import Augmenter
from audit.data.dataset import Dataset, Split, stored_size
from audit.data.errors import DataError
from audit.data.load import detect_source, load_dataset

__all__ = ["Augmenter", "DataError", "Dataset", "Split", "detect_source", "load_dataset", "stored_size"]
