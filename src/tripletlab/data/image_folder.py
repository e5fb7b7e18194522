"""Reading a folder of images with one sub-folder per class into NumPy arrays (with Pillow).

The layout is the one of ``keras.utils.image_dataset_from_directory``::

    folder/
      cats/  a.png  b.jpg ...
      dogs/  c.png  ...

Images come from users and the internet, so every image's header is checked before it is
decoded: anything over ``max_image_pixels`` (4096 × 4096 by default) is refused, which also
stops decompression bombs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.errors import (
    ConfigError,
    MissingExtraError,
    UserFileNotFoundError,
    UserNotADirectoryError,
)

MAX_IMAGE_PIXELS = 4096 * 4096
"""The default cap on an image's width × height."""

COLOR_MODES = ("auto", "rgb", "grayscale")

_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def read_image_folder(
    folder: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reads every image below ``folder``; the sub-folder an image is in is its class.

    Classes are the sub-folders' names in sorted order (hidden ones, starting with ``.``, are
    ignored); each class's images are read from its sub-folder and the folders below it, in
    sorted path order. Files that Pillow cannot identify as images are skipped, with one warning
    that says how many. All images get the same mode: ``"L"`` (one channel) when every image is
    grayscale and ``color_mode="auto"``, ``"RGB"`` otherwise (alpha is dropped). Images are
    resized (bilinear) to ``image_size`` when they have another size.

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
      ImportError: Pillow is not installed (``pip install "tripletlab[data]"``).

    Example:
      >>> from tripletlab.data import read_image_folder
      >>> x, y, class_names = read_image_folder("photos/", image_size=(64, 64))  # doctest: +SKIP
      >>> x.shape  # doctest: +SKIP
      (120, 64, 64, 3)
    """
    _checks.check_choice("color_mode", color_mode, COLOR_MODES)
    _checks.check_number("max_image_pixels", max_image_pixels, minimum=1, integer=True)
    size = _check_image_size(image_size, max_image_pixels)
    image_module = _import_pillow()

    root = Path(folder)
    if not root.exists():
        raise UserFileNotFoundError(f"Expected `image_folder` to be an existing folder. "
                                    f"Received: image_folder={str(root)!r} (no such folder).")
    if not root.is_dir():
        raise UserNotADirectoryError(f"Expected `image_folder` to be a folder with one sub-folder "
                                     f"per class. Received: image_folder={str(root)!r} (a file).")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise ConfigError(f"Expected `image_folder` to contain at least 2 class sub-folders. "
                          f"Received: {len(class_dirs)} in {str(root)!r}.")

    # First pass: headers only (Pillow decodes lazily): size cap, mode, non-image files.
    entries: list[tuple[Path, int]] = []
    modes: set[str] = set()
    skipped: list[Path] = []
    for label, class_dir in enumerate(class_dirs):
        found = 0
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in path.relative_to(class_dir).parts):
                continue
            header = _read_header(image_module, path, max_image_pixels)
            if header is None:
                skipped.append(path)
                continue
            mode, (width, height) = header
            if size is None:
                size = (height, width)
            modes.add(mode)
            entries.append((path, label))
            found += 1
        if found == 0:
            raise ConfigError(f"Expected every class folder to contain at least one image. "
                              f"Received: no readable image in {str(class_dir)!r} "
                              f"(class {class_dir.name!r}).")
    if skipped:
        examples = ", ".join(repr(str(p.relative_to(root))) for p in skipped[:3])
        more = ", ..." if len(skipped) > 3 else ""
        warnings.warn(f"Skipped {len(skipped)} file(s) in {str(root)!r} that are not images "
                      f"Pillow can read: {examples}{more}.", UserWarning, stacklevel=2)

    if color_mode == "auto":
        target_mode = "L" if modes <= _GRAYSCALE_MODES else "RGB"
    else:
        target_mode = "RGB" if color_mode == "rgb" else "L"
    height, width = size
    channels = 3 if target_mode == "RGB" else 1
    x = np.empty((len(entries), height, width, channels), dtype=np.uint8)
    y = np.empty(len(entries), dtype=np.int64)
    for i, (path, label) in enumerate(entries):
        x[i] = _decode(image_module, path, target_mode, (width, height),
                       max_image_pixels).reshape(height, width, channels)
        y[i] = label
    images = (x.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return images, y, tuple(d.name for d in class_dirs)


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


def _import_pillow():
    try:
        from PIL import Image
    except ImportError as error:
        raise MissingExtraError('Pillow is needed to read image folders. Install it with: '
                                'pip install "tripletlab[data]"') from error
    return Image


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
    _check_pixels(path, size, max_image_pixels)
    return mode, size


def _check_pixels(path: Path, size: tuple[int, int], max_image_pixels: int) -> None:
    width, height = size
    if width * height > max_image_pixels:
        raise ConfigError(f"Refused {str(path)!r}: {width}x{height} = {width * height} pixels is "
                          f"more than max_image_pixels={max_image_pixels} (a guard against "
                          f"decompression bombs). Shrink the image or raise the cap.")


def _decode(image_module, path: Path, mode: str, size: tuple[int, int],
            max_image_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            image = image_module.open(path)
    except image_module.DecompressionBombError as error:
        raise ConfigError(f"Refused {str(path)!r}: {error}") from error
    except OSError as error:
        raise ConfigError(f"Could not open the image {str(path)!r}: {error}") from error
    with image:
        _check_pixels(path, image.size, max_image_pixels)  # the file may have changed since
        try:
            converted = image.convert(mode)
            if converted.size != size:
                converted = converted.resize(size, image_module.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as error:
            raise ConfigError(f"Could not decode the image {str(path)!r}: {error}") from error
