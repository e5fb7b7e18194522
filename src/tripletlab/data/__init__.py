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

import lazy_loader

# Each module and the public names it defines (imported on first access).
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "augmentation": ["Augmentation", "build_augmentation"],
    "datasets": ["DATASETS", "Dataset", "DatasetDownloadError", "load_dataset"],
    "image_folder": ["MAX_IMAGE_PIXELS", "read_image_folder", "scan_image_folder",
                     "scan_split_image_folder", "find_split_folders"],
    "image_files": ["ImageFiles"],
    "samplers": ["PKSampler", "ShuffledBatches"],
    "triplets": ["HardMiningCallback", "TripletGenerator"],
})
