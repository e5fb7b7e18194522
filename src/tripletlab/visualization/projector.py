"""Export embeddings for TensorBoard's Embedding Projector (``tensorboard --logdir log_dir``).

The projector reads a ``projector_config.pbtxt`` in the log folder (or in a run folder below it)
that points at tab-separated vectors, a metadata table and optionally a sprite image: one big
PNG holding every point's thumbnail in a square grid, row by row, in the order of the vectors.
No TensorFlow checkpoint is needed. Paths in the config are relative to the config's folder
(TensorBoard refuses paths that lead outside it).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.atomic import Recorder, atomic_open, atomic_path, write_text
from tripletlab.errors import MissingExtraError
from tripletlab.visualization.plot import as_labels, as_uint8_images, class_name_lookup
from tripletlab.visualization.project import as_embedding_matrix

CONFIG_FILE = "projector_config.pbtxt"
TENSOR_FILE = "vecs.tsv"
METADATA_FILE = "meta.tsv"
SPRITE_FILE = "sprite.png"
MAX_SPRITE_PIXELS = 8192
"""The projector refuses sprites wider or taller than this ("exceeds maximum dimensions")."""
MIN_THUMBNAIL_PIXELS = 8
"""Thumbnails are shrunk to fit the sprite, but not below this; beyond that, points are
subsampled."""


@dataclasses.dataclass(frozen=True)
class ProjectorExport:
    """What :func:`export_projector` wrote.

    Attributes:
      config_path: ``projector_config.pbtxt``.
      tensor_path: ``vecs.tsv``, one embedding a line, values separated by tabs.
      metadata_path: ``meta.tsv``.
      sprite_path: ``sprite.png``, or ``None`` without images.
      thumbnail_size: ``(height, width)`` of one thumbnail in the sprite, or ``None``.
      indices: the rows of the input that were exported, in file order (all of them unless
        the sprite limit forced a subsample).
    """

    config_path: Path
    tensor_path: Path
    metadata_path: Path
    sprite_path: Path | None
    thumbnail_size: tuple[int, int] | None
    indices: np.ndarray


def export_projector(log_dir: str | os.PathLike, embeddings: Any, labels: Any, *,
                     images: Any = None,
                     class_names: Sequence[str] | Mapping[int, str] | None = None,
                     seed: int = 0, record: Recorder | None = None) -> ProjectorExport:
    """Writes the TensorBoard Embedding Projector files for ``embeddings`` into ``log_dir``.

    Files (existing ones are replaced, each written atomically):

    - ``vecs.tsv``: ``N`` lines of ``D`` tab-separated numbers (9 significant digits, so
      float32 values read back exactly).
    - ``meta.tsv``: with ``class_names``, a header row ``label<TAB>class`` then one row per
      point; without, a single column of labels and **no** header (the projector takes the
      first line as a header only when it contains a tab).
    - ``sprite.png`` (only with ``images``): the thumbnails in a ``ceil(sqrt(N))``-wide grid.
      The projector accepts at most 8192 × 8192 pixels; when the grid would be larger the
      thumbnails are shrunk (down to 8 pixels), and if that is not enough a random subsample
      of points is exported (vectors, metadata and sprite together). Both cases emit a
      ``UserWarning`` saying so.
    - ``projector_config.pbtxt``: protobuf text format naming the three files with paths
      relative to ``log_dir``, the tensor shape and the sprite's ``single_image_dim``.

    Args:
      log_dir: the folder to pass to ``tensorboard --logdir``.
      embeddings: ``[N, D]`` vectors.
      labels: ``[N]`` integer class labels.
      images: optional ``[N, H, W, C]`` images (floats in ``[0, 1]`` or ``uint8``, ``C`` 1 or
        3) for the sprite.
      class_names: optional names (a sequence indexed by label or a mapping label → name),
        written as a second metadata column.
      seed: seed of the subsample, used only when the sprite limit forces one.
      record: called with each file's path before it is written (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).

    Returns:
      A :class:`ProjectorExport` with the paths written.

    Raises:
      ValueError: the shapes do not match, or ``class_names`` misses a label.
      ImportError: Pillow is missing (only needed with ``images``).

    Example:
      >>> export_projector("runs/mnist", embeddings, labels, images=x_test)  # doctest: +SKIP
      >>> # then: tensorboard --logdir runs/mnist  (tab "Projector")
    """
    vectors = as_embedding_matrix(embeddings, "embeddings")
    num_points = vectors.shape[0]
    if num_points < 1:
        raise ValueError("Expected at least one embedding. Received: embeddings with shape "
                         f"{vectors.shape}.")
    y = as_labels(labels, "labels", num_points)
    names = class_name_lookup(y, class_names) if class_names is not None else None
    pictures = None
    if images is not None:
        pictures = as_uint8_images(images, "images")
        if pictures.shape[0] != num_points:
            raise ValueError(f"Expected `images` with {num_points} rows, one per embedding. "
                             f"Received: images with shape {pictures.shape}.")

    indices = np.arange(num_points)
    thumbnail_size = None
    if pictures is not None:
        indices, thumbnail_size = _sprite_layout(pictures.shape[1:3], num_points, seed)

    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tensor_path = folder / TENSOR_FILE
    with atomic_open(tensor_path, "w", record=record) as stream:
        np.savetxt(stream, vectors[indices], fmt="%.9g", delimiter="\t")
    metadata_path = folder / METADATA_FILE
    with atomic_open(metadata_path, "w", record=record) as stream:
        if names is None:
            stream.writelines(f"{label}\n" for label in y[indices])
        else:
            stream.write("label\tclass\n")
            stream.writelines(f"{label}\t{_tsv_cell(names[int(label)])}\n"
                              for label in y[indices])
    sprite_path = None
    if pictures is not None and thumbnail_size is not None:
        sprite_path = folder / SPRITE_FILE
        _write_sprite(sprite_path, pictures[indices], thumbnail_size, record)

    lines = ["embeddings {", '  tensor_name: "embeddings"',
             f'  tensor_path: "{TENSOR_FILE}"',
             f"  tensor_shape: {len(indices)}", f"  tensor_shape: {vectors.shape[1]}",
             f'  metadata_path: "{METADATA_FILE}"']
    if sprite_path is not None and thumbnail_size is not None:
        height, width = thumbnail_size
        lines += ["  sprite {", f'    image_path: "{SPRITE_FILE}"',
                  f"    single_image_dim: {width}", f"    single_image_dim: {height}", "  }"]
    lines.append("}")
    config_path = write_text(folder / CONFIG_FILE, "\n".join(lines) + "\n", record=record)
    return ProjectorExport(config_path=config_path, tensor_path=tensor_path,
                           metadata_path=metadata_path, sprite_path=sprite_path,
                           thumbnail_size=thumbnail_size, indices=indices)


def _sprite_layout(image_size: tuple[int, int], num_points: int,
                   seed: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Chooses the exported points and the thumbnail size so the sprite fits the limit."""
    height, width = int(image_size[0]), int(image_size[1])
    indices = np.arange(num_points)
    side = math.ceil(math.sqrt(num_points))
    largest = max(height, width)
    if side * largest <= MAX_SPRITE_PIXELS:
        return indices, (height, width)
    # Largest edge that lets `side` thumbnails fit in MAX_SPRITE_PIXELS.
    edge = MAX_SPRITE_PIXELS // side
    subsample = ""
    if edge < MIN_THUMBNAIL_PIXELS:
        edge = MIN_THUMBNAIL_PIXELS
        side = MAX_SPRITE_PIXELS // edge
        keep = side * side
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(num_points, size=keep, replace=False))
        subsample = (f"; exporting a random subsample of {keep} of {num_points} points "
                     "(vectors, metadata and sprite alike)")
    scale = edge / largest
    thumbnail = (max(1, math.floor(height * scale)), max(1, math.floor(width * scale)))
    warnings.warn(f"The projector's sprite is limited to {MAX_SPRITE_PIXELS}x{MAX_SPRITE_PIXELS} "
                  f"pixels: thumbnails shrunk from {height}x{width} to {thumbnail[0]}x"
                  f"{thumbnail[1]} pixels{subsample}.", UserWarning, stacklevel=3)
    return indices, thumbnail


def _write_sprite(path: Path, images: np.ndarray, thumbnail_size: tuple[int, int],
                  record: Recorder | None) -> None:
    try:
        from PIL import Image
    except ImportError as error:
        raise MissingExtraError('The sprite image needs Pillow: pip install "tripletlab[viz]"'
                                ) from error
    height, width = thumbnail_size
    side = math.ceil(math.sqrt(images.shape[0]))
    channels = images.shape[-1]
    sprite = np.full((side * height, side * width, channels), 255, dtype=np.uint8)
    resize = images.shape[1:3] != (height, width)
    for index, image in enumerate(images):
        if resize:
            picture = Image.fromarray(image[..., 0] if channels == 1 else image)
            image = np.asarray(picture.resize((width, height), Image.Resampling.BOX))
            image = image.reshape(height, width, channels)
        row, column = divmod(index, side)
        sprite[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    picture = Image.fromarray(sprite[..., 0] if channels == 1 else sprite)
    with atomic_path(path, record=record) as temporary:
        picture.save(temporary, format="PNG")


def _tsv_cell(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").splitlines())
