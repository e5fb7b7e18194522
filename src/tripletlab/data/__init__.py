"""Data for triplet-loss training: data set loaders and batch samplers.

The loaders return a :class:`Dataset` of NumPy arrays (float32 images in ``[0, 1]``,
``[N, H, W, C]``; int64 labels), or, for image folders, of :class:`ImageFiles` (a lazy array
that decodes the images a batch indexes); the samplers turn arrays into ``keras.utils.PyDataset``
batches that ``model.fit`` takes on every backend.

mlxtend, scikit-learn, Pillow and OpenCV are optional (``pip install "tripletlab[data]"``) and are
imported only by the loaders that need them. The names below are imported on first use, so
``tripletlab.data.datasets`` (and :data:`DATASETS`) can be read without importing Keras.

Example:
  >>> from tripletlab.data import PKSampler, load_dataset
  >>> data = load_dataset("digits", seed=0)
  >>> batches = PKSampler(data.x_train, data.y_train, classes_per_batch=8,
  ...                     samples_per_class=4, seed=0)
  >>> batches[0][0].shape
  (32, 8, 8, 1)
"""

from __future__ import annotations

import importlib

# Each public name and the module that defines it (imported on first access).
_EXPORTS = {
    "Augmentation": "augmentation",
    "build_augmentation": "augmentation",
    "DATASETS": "datasets",
    "Dataset": "datasets",
    "DatasetDownloadError": "datasets",
    "load_dataset": "datasets",
    "MAX_IMAGE_PIXELS": "image_folder",
    "read_image_folder": "image_folder",
    "scan_image_folder": "image_folder",
    "scan_split_image_folder": "image_folder",
    "find_split_folders": "image_folder",
    "ImageFiles": "image_files",
    "PKSampler": "samplers",
    "ShuffledBatches": "samplers",
    "HardMiningCallback": "triplets",
    "TripletGenerator": "triplets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"tripletlab.data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tripletlab.data' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_EXPORTS})
