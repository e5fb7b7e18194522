"""Data for triplet-loss training: data set loaders and batch samplers.

The loaders return a :class:`Dataset` of NumPy arrays (float32 images in ``[0, 1]``,
``[N, H, W, C]``; int64 labels); the samplers turn arrays into ``keras.utils.PyDataset``
batches that ``model.fit`` takes on every backend.

mlxtend, scikit-learn and Pillow are optional (``pip install "tripletlab[data]"``) and are
imported only by the loaders that need them.

Example:
  >>> from tripletlab.data import PKSampler, load_dataset
  >>> data = load_dataset("digits", seed=0)
  >>> batches = PKSampler(data.x_train, data.y_train, classes_per_batch=8,
  ...                     samples_per_class=4, seed=0)
  >>> batches[0][0].shape
  (32, 8, 8, 1)
"""

from tripletlab.data.datasets import DATASETS, Dataset, DatasetDownloadError, load_dataset
from tripletlab.data.image_folder import MAX_IMAGE_PIXELS, read_image_folder
from tripletlab.data.samplers import PKSampler, ShuffledBatches
from tripletlab.data.triplets import HardMiningCallback, TripletGenerator

__all__ = [
    "DATASETS",
    "MAX_IMAGE_PIXELS",
    "Dataset",
    "DatasetDownloadError",
    "HardMiningCallback",
    "PKSampler",
    "ShuffledBatches",
    "TripletGenerator",
    "load_dataset",
    "read_image_folder",
]
