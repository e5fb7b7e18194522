"""A lazy array of image files: paths in memory, pixels decoded when a batch is indexed.

:class:`ImageFiles` looks like a float32 array ``[N, H, W, C]`` in ``[0, 1]`` (``len``,
``shape``, ``dtype``, ``ndim``, indexing with an int, a slice or an integer index array), but
holds only the file paths: ``files[indices]`` opens, decodes, converts (``"RGB"`` or ``"L"``)
and resizes those files with OpenCV (:func:`decode_image`; large JPEGs decoded at a
reduced scale first), then divides by 255, exactly as :func:`tripletlab.data.read_image_folder`
does. Memory therefore grows with the batch, not with the number of images, and the samplers
(``x[indices]``), :func:`tripletlab.inference.embed` and the test exports take it wherever
they take an array.

A file that cannot be decoded when a batch needs it (it was truncated, damaged or replaced
after the folder was read) does not stop training: with ``on_error="warn"`` (the default) it
is replaced by a black image and named in one ``UserWarning`` (once per file; ``failed`` lists
them); with ``on_error="raise"`` a ``ValueError`` names it.

Example:
  >>> from tripletlab.data import scan_image_folder
  >>> files, y, class_names = scan_image_folder("photos/", image_size=64)  # doctest: +SKIP
  >>> files.shape, files.dtype  # doctest: +SKIP
  ((120, 64, 64, 3), dtype('float32'))
  >>> batch = files[[0, 5, 7]]  # three images decoded now  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.data.mapped_memory import mapped_zeros
from tripletlab.errors import ConfigError, MissingExtraError

MAX_IMAGE_PIXELS = 4096 * 4096
"""The default cap on an image's width × height."""

ON_ERROR = ("warn", "raise")


def import_pillow():
    """``PIL.Image``, or an ``ImportError`` that says how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as error:
        raise MissingExtraError('Pillow is needed to read image folders. Install it with: '
                                'pip install "tripletlab[data]"') from error
    return Image


def import_opencv():
    """``cv2`` (OpenCV), or an ``ImportError`` that says how to install it."""
    try:
        import cv2
    except ImportError as error:
        raise MissingExtraError('OpenCV is needed to decode image files. Install it with: '
                                'pip install "tripletlab[data]" (opencv-python-headless)'
                                ) from error
    return cv2


def check_pixels(path: str | os.PathLike, size: tuple[int, int], max_image_pixels: int) -> None:
    """Raises ``ValueError`` when an image of ``size`` ``(width, height)`` is over the cap."""
    width, height = size
    if width * height > max_image_pixels:
        raise ConfigError(f"Refused {str(path)!r}: {width}x{height} = {width * height} pixels is "
                          f"more than max_image_pixels={max_image_pixels} (a guard against "
                          f"decompression bombs). Shrink the image or raise the cap.")


DRAFT_GAP = 2
"""A JPEG at least ``2 ×`` this many times the target size (in both directions) is decoded at a
reduced scale (1/2, 1/4 or 1/8, libjpeg's DCT scaling) that still leaves it at least
``DRAFT_GAP ×`` the target, then resized as any other image (Pillow's ``thumbnail`` rule)."""

AREA_FACTOR = 2
"""An image shrunk by at least this factor in both directions is resized by area averaging
(OpenCV's ``INTER_AREA``, which does not alias); otherwise bilinearly (``INTER_LINEAR``)."""


def decode_image(path: str | os.PathLike, mode: str, size: tuple[int, int],
                 max_image_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """One image file as uint8 ``[H, W, C]``: converted to ``mode``, resized to ``size``.

    Every reader of image files (the in-memory :func:`tripletlab.data.read_image_folder` and
    the streamed :class:`ImageFiles`) decodes through this function, so both give the same
    pixels.

    The header is read by Pillow (format, size: a file over ``max_image_pixels`` is refused
    before it is decoded); the pixels are decoded and resized by OpenCV, which releases the GIL
    and is 2–3× faster than Pillow here (decoding a 256 × 256 JPEG 0.25 ms against 0.52 ms;
    resizing it to 224 × 224 0.16 ms against Pillow's antialiased 0.91 ms). A format OpenCV
    cannot decode (e.g. ICO, TGA, PCX) is decoded by Pillow, then resized the same way. The
    EXIF orientation is ignored, as Keras' ``image_dataset_from_directory`` does. Greyscale
    (``"L"``) is the ITU-R 601 luma, for a JPEG its own luma channel.

    Resizing: bilinear with half-pixel centres (``INTER_LINEAR``, as ``tf.image.resize``
    without antialiasing) for enlargements and for shrinking by less than ``AREA_FACTOR``; area
    averaging (``INTER_AREA``) for shrinking by ``AREA_FACTOR`` or more in both directions,
    where bilinear sampling would skip pixels and alias. A JPEG at least
    ``2 × DRAFT_GAP`` times the target size in both directions (e.g. a 1024 × 768 photo for
    224 × 224) is first decoded by libjpeg at a reduced scale (1/2, 1/4 or 1/8, keeping it at
    least ``DRAFT_GAP ×`` the target), as Pillow's ``thumbnail`` does: several times faster
    for large photos, with pixels a few levels of 255 from resizing the full-scale decode.

    Args:
      path: the image file.
      mode: ``"RGB"`` or ``"L"`` (Pillow's names).
      size: ``(width, height)`` (Pillow's order); resized when different.
      max_image_pixels: refuse a file with more pixels (checked again: files change).

    Returns:
      uint8 ``[height, width, 3 or 1]``.

    Raises:
      ValueError: the file is over ``max_image_pixels`` or cannot be opened or decoded.
    """
    image_module = import_pillow()
    cv2 = import_opencv()
    try:
        encoded = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ConfigError(f"Could not open the image {str(path)!r}: {error}") from error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            header = image_module.open(io.BytesIO(encoded))
    except image_module.DecompressionBombError as error:
        raise ConfigError(f"Refused {str(path)!r}: {error}") from error
    except OSError as error:
        raise ConfigError(f"Could not open the image {str(path)!r}: {error}") from error
    with header:
        check_pixels(path, header.size, max_image_pixels)
        reduction = 1
        if header.format == "JPEG":
            while (reduction < 8 and header.size[0] >= 2 * DRAFT_GAP * reduction * size[0]
                   and header.size[1] >= 2 * DRAFT_GAP * reduction * size[1]):
                reduction *= 2
        colour = "COLOR" if mode == "RGB" else "GRAYSCALE"
        flags = getattr(cv2, f"IMREAD_REDUCED_{colour}_{reduction}" if reduction > 1
                        else f"IMREAD_{colour}") | cv2.IMREAD_IGNORE_ORIENTATION
        try:
            pixels = cv2.imdecode(encoded, flags) if encoded.size else None
        except cv2.error:  # some damaged files raise instead of returning None
            pixels = None
        blue_first = pixels is not None and mode == "RGB"  # OpenCV decodes colour as BGR
        if pixels is None:  # a format OpenCV does not decode (or a damaged file)
            try:
                pixels = np.asarray(header if header.mode == mode else header.convert(mode),
                                    dtype=np.uint8)
            except (OSError, SyntaxError, ValueError) as error:
                raise ConfigError(f"Could not decode the image {str(path)!r}: "
                                  f"{error}") from error
    height, width = pixels.shape[:2]
    if (width, height) != size:
        shrunk = width >= AREA_FACTOR * size[0] and height >= AREA_FACTOR * size[1]
        pixels = cv2.resize(pixels, size,
                            interpolation=cv2.INTER_AREA if shrunk else cv2.INTER_LINEAR)
    if blue_first:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels.reshape(size[1], size[0], -1)


class ImageFiles:
    """Image files as a lazy float32 array ``[N, H, W, C]`` in ``[0, 1]``.

    Indexing decodes: ``files[i]`` is one image ``[H, W, C]``; ``files[a:b]``, ``files[[i, j]]``
    and ``files[index_array]`` (integers or a boolean mask) are batches ``[n, H, W, C]``;
    ``numpy.asarray(files)`` decodes everything (only for small sets). :meth:`subset` selects
    files without decoding. Safe to index from several threads (Keras ``PyDataset`` workers)
    and picklable (process workers).

    Args:
      paths: the image files, in order.
      image_size: ``(height, width)`` of every image (resized when different).
      color_mode: ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
      max_image_pixels: refuse files with more pixels than this.
      on_error: a file that cannot be decoded: ``"warn"`` (a black image, one warning naming
        the file) or ``"raise"`` (``ValueError`` naming it).

    Raises:
      ValueError: an empty ``paths`` or a bad argument.

    Example:
      >>> from tripletlab.data import ImageFiles
      >>> files = ImageFiles(["a.png", "b.jpg"], image_size=(32, 32))
      >>> files.shape, files.dtype.name
      ((2, 32, 32, 3), 'float32')
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, paths: Sequence[str | os.PathLike], *, image_size: tuple[int, int],
                 color_mode: str = "rgb", max_image_pixels: int = MAX_IMAGE_PIXELS,
                 on_error: str = "warn"):
        _checks.check_choice("color_mode", color_mode, ("rgb", "grayscale"))
        _checks.check_choice("on_error", on_error, ON_ERROR)
        _checks.check_number("max_image_pixels", max_image_pixels, minimum=1, integer=True)
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                       for v in image_size)):
            raise ConfigError(f"Expected `image_size` to be a pair of positive ints (height, "
                              f"width). Received: image_size={image_size!r}.")
        self._paths = tuple(os.fspath(p) for p in paths)
        if not self._paths:
            raise ConfigError("Expected `paths` to name at least one image file. Received: 0.")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.color_mode = color_mode
        self.max_image_pixels = int(max_image_pixels)
        self.on_error = on_error
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def paths(self) -> tuple[str, ...]:
        """The files, in index order."""
        return self._paths

    @property
    def channels(self) -> int:
        """3 for ``"rgb"``, 1 for ``"grayscale"``."""
        return 3 if self.color_mode == "rgb" else 1

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, H, W, C)``."""
        return (len(self._paths), *self.image_size, self.channels)

    @property
    def failed(self) -> dict[str, str]:
        """``{path: error}`` of the files that could not be decoded so far (replaced by
        black images)."""
        with self._lock:
            return dict(self._failed)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, shape={self.shape}, dtype=float32)"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __array__(self, dtype=None, copy=None):
        images = self[:]
        return images if dtype is None else images.astype(dtype)

    def indices(self, key: Any) -> np.ndarray | int:
        """The int64 file indices ``key`` selects (an int for an int ``key``).

        Raises:
          IndexError: an index out of range.
          TypeError: a key that is not an int, a slice or an integer / boolean array.
        """
        count = len(self._paths)
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            index = int(key)
            if not -count <= index < count:
                raise IndexError(f"Expected an image index in [-{count}, {count}). "
                                 f"Received: {index}.")
            return index % count
        if isinstance(key, slice):
            return np.arange(count, dtype=np.int64)[key]
        array = np.asarray(key)
        if array.dtype == bool:
            if array.shape != (count,):
                raise IndexError(f"Expected a boolean mask of shape ({count},). Received: "
                                 f"shape {array.shape}.")
            return np.flatnonzero(array)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "ui"):
            raise TypeError(f"Expected an int, a slice or a 1-D integer index array. Received: "
                            f"{key!r:.80}.")
        array = array.astype(np.int64)
        if array.size and (array.min() < -count or array.max() >= count):
            raise IndexError(f"Expected image indices in [-{count}, {count}). Received: "
                             f"indices from {array.min()} to {array.max()}.")
        return array % count

    def subset(self, key: Any) -> ImageFiles:
        """The files ``key`` selects (as for indexing), as a new ``ImageFiles``; nothing is
        decoded."""
        selected = self.indices(key)
        selected = [selected] if isinstance(selected, int) else selected.tolist()
        view = ImageFiles.__new__(ImageFiles)
        view.__dict__.update(self.__getstate__())
        view._paths = tuple(self._paths[i] for i in selected)
        view._failed = {}
        view._lock = threading.Lock()
        return view

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            head = self[key[0]] if key else self[:]
            rest = key[1:]
            return head[rest] if head.ndim == 3 else head[(slice(None), *rest)]
        selected = self.indices(key)
        if isinstance(selected, int):
            return self._decode_many([selected])[0]
        return self._decode_many(selected.tolist())

    def _decode_many(self, indices: list[int]) -> np.ndarray:
        height, width = self.image_size
        mode = "RGB" if self.color_mode == "rgb" else "L"
        # Its own memory map: a batch made in a worker thread and freed in another would
        # otherwise stay in malloc's arenas (tripletlab.data.mapped_memory); zero-filled, so a
        # file that fails to decode is a black image.
        images = mapped_zeros((len(indices), height, width, self.channels), np.float32)
        for row, index in enumerate(indices):
            path = self._paths[index]
            try:
                pixels = decode_image(path, mode, (width, height), self.max_image_pixels)
            except ConfigError as error:
                if self.on_error == "raise":
                    raise
                self._warn_once(path, error)
                continue
            # uint8 -> float32, then / 255 in float32 (the arithmetic the whole-folder reader
            # always used, bitwise), written straight into the batch while the image is in cache
            np.divide(pixels, np.float32(255.0), out=images[row], dtype=np.float32)
        return images

    def _warn_once(self, path: str, error: Exception) -> None:
        with self._lock:
            if path in self._failed:
                return
            self._failed[path] = str(error)
        warnings.warn(f"Skipped the image {path!r} (replaced by a black image in every batch "
                      f"that draws it): {error}", UserWarning, stacklevel=3)


def take_rows(x: Any, rows: Any) -> Any:
    """``x[rows]``, except that an :class:`ImageFiles` is subset without decoding.

    Args:
      x: an array ``[N, ...]`` or an ``ImageFiles``.
      rows: an integer index array (or a slice / boolean mask).

    Returns:
      An array, or an ``ImageFiles`` of the selected files.
    """
    return x.subset(rows) if isinstance(x, ImageFiles) else x[rows]
