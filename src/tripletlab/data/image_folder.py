"""Reading a folder of images with one sub-folder per class: paths and labels, pixels on demand.

The layout is the one of ``keras.utils.image_dataset_from_directory``::

    folder/
      cats/  a.png  b.jpg ...
      dogs/  c.png  ...

or, with the train/test split made by the user, the same layout twice::

    folder/
      train/  cats/ ...  dogs/ ...
      test/   cats/ ...  dogs/ ...

Images come from users and the internet, so every image's header is checked when the folder
is read: anything over ``max_image_pixels`` (4096 × 4096 by default) is refused, which also
stops decompression bombs, and files that are not images are skipped with one warning naming
them. Only the headers are read then: :func:`scan_image_folder` returns the files as a lazy
:class:`~tripletlab.data.ImageFiles` array that decodes a batch when it is indexed, so memory
does not grow with the number of images. :func:`read_image_folder` decodes everything into
one array, for small folders.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.data.image_files import (
    MAX_IMAGE_PIXELS,
    ImageFiles,
    check_pixels,
    import_opencv,
    import_pillow,
)
from tripletlab.errors import ConfigError, UserFileNotFoundError, UserNotADirectoryError

COLOR_MODES = ("auto", "rgb", "grayscale")

SPLIT_FOLDERS = ("train", "test")
"""The sub-folder names that, when both hold class sub-folders, give the train/test split."""

_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def read_image_folder(
    folder: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reads every image below ``folder`` into memory; the sub-folder an image is in is its class.

    The folder is read by :func:`scan_image_folder`, then every file is decoded into one
    array (an image that cannot be decoded is an error here). For large folders use
    :func:`scan_image_folder` (or ``load_dataset("image-folder", ...)``), which keeps only the
    paths in memory.

    Args:
      folder: the folder with one sub-folder per class.
      image_size: ``(height, width)``, or one int for a square; default: the size of the first
        image (of the first class, in sorted order).
      color_mode: ``"auto"``, ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
      max_image_pixels: refuse images (and an ``image_size``) with more pixels than this.

    Returns:
      ``(x, y, class_names)``: float32 images ``[N, H, W, C]`` in ``[0, 1]``, int64 labels
      ``[N]`` indexing ``class_names`` (a tuple of str).

    Raises:
      FileNotFoundError: ``folder`` does not exist.
      NotADirectoryError: ``folder`` is not a folder.
      ValueError: fewer than 2 classes, a class without a readable image, an image over
        ``max_image_pixels``, an image that cannot be decoded, or a bad argument.
      ImportError: Pillow or OpenCV is missing (``pip install "tripletlab[data]"``).

    Example:
      >>> from tripletlab.data import read_image_folder
      >>> x, y, class_names = read_image_folder("photos/", image_size=(64, 64))  # doctest: +SKIP
      >>> x.shape  # doctest: +SKIP
      (120, 64, 64, 3)
    """
    files, labels, class_names = scan_image_folder(
        folder, image_size=image_size, color_mode=color_mode,
        max_image_pixels=max_image_pixels, on_error="raise", stacklevel=3)
    return files[:], labels, class_names


def scan_image_folder(
    folder: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    on_error: str = "warn",
    stacklevel: int = 2,
) -> tuple[ImageFiles, np.ndarray, tuple[str, ...]]:
    """Lists the images below ``folder`` (headers only); the sub-folder of an image is its class.

    Classes are the sub-folders' names in sorted order (hidden ones, starting with ``.``, are
    ignored); each class's images are taken from its sub-folder and the folders below it, in
    sorted path order. Files that Pillow cannot identify as images are skipped, with one
    warning that names them. All images get the same mode: ``"L"`` (one channel) when every
    image is grayscale and ``color_mode="auto"``, ``"RGB"`` otherwise (alpha is dropped).
    Images are resized (bilinear) to ``image_size`` when they have another size, when a batch
    is indexed.

    Args:
      folder: the folder with one sub-folder per class.
      image_size: ``(height, width)``, or one int for a square; default: the size of the first
        image (of the first class, in sorted order).
      color_mode: ``"auto"``, ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
      max_image_pixels: refuse images (and an ``image_size``) with more pixels than this.
      on_error: what indexing does with a file that cannot be decoded (see
        :class:`~tripletlab.data.ImageFiles`): ``"warn"`` or ``"raise"``.
      stacklevel: the ``stacklevel`` of the skipped-files warning.

    Returns:
      ``(files, y, class_names)``: a lazy :class:`~tripletlab.data.ImageFiles` (float32
      ``[N, H, W, C]`` in ``[0, 1]`` when indexed), int64 labels ``[N]`` indexing
      ``class_names`` (a tuple of str).

    Raises:
      FileNotFoundError: ``folder`` does not exist.
      NotADirectoryError: ``folder`` is not a folder.
      ValueError: fewer than 2 classes, a class without a readable image, an image over
        ``max_image_pixels``, or a bad argument.
      ImportError: Pillow or OpenCV is missing (``pip install "tripletlab[data]"``).

    Example:
      >>> from tripletlab.data import scan_image_folder
      >>> files, y, names = scan_image_folder("photos/", image_size=64)  # doctest: +SKIP
      >>> files[y == 0].shape  # decodes the images of class 0  # doctest: +SKIP
      (30, 64, 64, 3)
    """
    _check_arguments(image_size, color_mode, max_image_pixels)
    root = check_image_folder(folder)
    class_dirs = _class_dirs(root)
    (files, labels), = _scan([root], [class_dirs], image_size=image_size,
                             color_mode=color_mode, max_image_pixels=max_image_pixels,
                             on_error=on_error, stacklevel=stacklevel + 1)
    return files, labels, tuple(d.name for d in class_dirs)


def find_split_folders(folder: str | os.PathLike) -> tuple[Path, Path] | None:
    """``(folder/train, folder/test)`` when the split is given by the folder, else ``None``.

    The split is given when ``folder``'s only (non-hidden) sub-folders are ``train`` and
    ``test`` and both hold sub-folders (the classes). A folder whose two classes happen to be
    named ``train`` and ``test`` (with the images directly inside) is an ordinary folder.
    """
    root = Path(folder)
    if not root.is_dir():
        return None
    names = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if names != set(SPLIT_FOLDERS):
        return None
    train, test = root / "train", root / "test"
    if not (_class_dirs(train, check=False) and _class_dirs(test, check=False)):
        return None
    return train, test


def scan_split_image_folder(
    folder: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    on_error: str = "warn",
) -> tuple[tuple[ImageFiles, np.ndarray], tuple[ImageFiles, np.ndarray], tuple[str, ...]]:
    """:func:`scan_image_folder` for ``folder/train`` and ``folder/test`` (see
    :func:`find_split_folders`), with the same classes, image size and mode in both.

    Returns:
      ``((x_train, y_train), (x_test, y_test), class_names)``.

    Raises:
      ValueError: ``folder`` has no ``train/`` and ``test/`` class sub-folders, or they name
        different classes; and the errors of :func:`scan_image_folder`.
    """
    _check_arguments(image_size, color_mode, max_image_pixels)
    root = check_image_folder(folder)
    split = find_split_folders(root)
    if split is None:
        raise ConfigError(f"Expected `image_folder` to hold exactly the sub-folders 'train' "
                          f"and 'test', each with one sub-folder per class. Received: "
                          f"image_folder={str(root)!r}.")
    train_dirs, test_dirs = (_class_dirs(path) for path in split)
    train_names = [d.name for d in train_dirs]
    test_names = [d.name for d in test_dirs]
    if train_names != test_names:
        only_train = sorted(set(train_names) - set(test_names))
        only_test = sorted(set(test_names) - set(train_names))
        raise ConfigError(f"Expected the same class sub-folders in 'train' and 'test' of "
                          f"{str(root)!r}. Received: only in train: {only_train}; only in "
                          f"test: {only_test}.")
    train, test = _scan(list(split), [train_dirs, test_dirs], image_size=image_size,
                        color_mode=color_mode, max_image_pixels=max_image_pixels,
                        on_error=on_error, stacklevel=3)
    return train, test, tuple(train_names)


def _check_arguments(image_size: Any, color_mode: str, max_image_pixels: int) -> None:
    _checks.check_choice("color_mode", color_mode, COLOR_MODES)
    _checks.check_number("max_image_pixels", max_image_pixels, minimum=1, integer=True)
    _check_image_size(image_size, max_image_pixels)
    import_pillow()
    import_opencv()


def check_image_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a ``Path`` if it is an existing folder (no Keras import: the command
    line checks it before loading a backend).

    Raises:
      UserFileNotFoundError: nothing exists at ``folder``.
      UserNotADirectoryError: ``folder`` is a file.
    """
    root = Path(folder)
    if not root.exists():
        raise UserFileNotFoundError(f"Expected `image_folder` to be an existing folder. "
                                    f"Received: image_folder={str(root)!r} (no such folder).")
    if not root.is_dir():
        raise UserNotADirectoryError(f"Expected `image_folder` to be a folder with one sub-folder "
                                     f"per class. Received: image_folder={str(root)!r} (a file).")
    return root


def _class_dirs(root: Path, check: bool = True) -> list[Path]:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if check and len(class_dirs) < 2:
        raise ConfigError(f"Expected `image_folder` to contain at least 2 class sub-folders. "
                          f"Received: {len(class_dirs)} in {str(root)!r}.")
    return class_dirs


def _scan(roots: list[Path], class_dirs_per_root: list[list[Path]], *, image_size: Any,
          color_mode: str, max_image_pixels: int, on_error: str,
          stacklevel: int) -> list[tuple[ImageFiles, np.ndarray]]:
    """The header pass over one or more roots sharing one image size and mode."""
    size = _check_image_size(image_size, max_image_pixels)
    image_module = import_pillow()

    found_per_root: list[tuple[list[str], list[int]]] = []
    modes: set[str] = set()
    skipped: list[str] = []
    for root, class_dirs in zip(roots, class_dirs_per_root, strict=True):
        paths: list[str] = []
        labels: list[int] = []
        for label, class_dir in enumerate(class_dirs):
            found = 0
            for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in path.relative_to(class_dir).parts):
                    continue
                header = _read_header(image_module, path, max_image_pixels)
                if header is None:
                    skipped.append(str(path.relative_to(roots[0].parent if len(roots) > 1
                                                        else root)))
                    continue
                mode, (width, height) = header
                if size is None:
                    size = (height, width)
                modes.add(mode)
                paths.append(str(path))
                labels.append(label)
                found += 1
            if found == 0:
                raise ConfigError(f"Expected every class folder to contain at least one image. "
                                  f"Received: no readable image in {str(class_dir)!r} "
                                  f"(class {class_dir.name!r}).")
        found_per_root.append((paths, labels))
    if skipped:
        where = roots[0].parent if len(roots) > 1 else roots[0]
        examples = ", ".join(repr(p) for p in skipped[:3])
        more = ", ..." if len(skipped) > 3 else ""
        warnings.warn(f"Skipped {len(skipped)} file(s) in {str(where)!r} that are not images "
                      f"Pillow can read: {examples}{more}.", UserWarning, stacklevel=stacklevel)

    if color_mode == "auto":
        color_mode = "grayscale" if modes <= _GRAYSCALE_MODES else "rgb"
    return [(ImageFiles(paths, image_size=size, color_mode=color_mode,
                        max_image_pixels=max_image_pixels, on_error=on_error),
             np.asarray(labels, dtype=np.int64))
            for paths, labels in found_per_root]


def _check_image_size(image_size: Any, max_image_pixels: int) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                   for v in image_size)):
        raise ConfigError(f"Expected `image_size` to be None, a positive int or a pair of "
                          f"positive ints (height, width). Received: image_size={image_size!r}.")
    height, width = int(image_size[0]), int(image_size[1])
    if height * width > max_image_pixels:
        raise ConfigError(f"Expected `image_size` with at most {max_image_pixels} pixels. "
                          f"Received: image_size={image_size!r}.")
    return height, width


def _read_header(image_module, path: Path, max_image_pixels: int):
    """``(mode, (width, height))`` from the header, ``None`` for a non-image file."""
    try:
        with warnings.catch_warnings():
            # Pillow's own (higher) limit only warns; ``max_image_pixels`` is checked below.
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            with image_module.open(path) as image:
                mode, size = image.mode, image.size
    except image_module.DecompressionBombError as error:
        raise ConfigError(f"Refused {str(path)!r}: {error}") from error
    except (image_module.UnidentifiedImageError, OSError):
        return None
    check_pixels(path, size, max_image_pixels)
    return mode, size
