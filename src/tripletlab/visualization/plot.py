"""Static pictures of an embedding and its training, drawn with matplotlib into PNG files.

Every function builds its own ``matplotlib.figure.Figure`` (no ``pyplot``, so no global figure
state, no interactive backend and no figures left open) and writes it through
:mod:`tripletlab.atomic`. The output format follows the file suffix (``.png``, ``.svg``,
``.pdf``); PNGs are drawn at 100 dpi so their pixel size is the figure size in inches × 100.

Images are arrays ``[N, H, W, C]`` with ``C = 1`` (greyscale) or ``C = 3`` (RGB), either floats
in ``[0, 1]`` or ``uint8``; ``[N, H, W]`` is read as greyscale.
"""

from __future__ import annotations

import colorsys
import csv
import io
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.atomic import Recorder, atomic_path
from tripletlab.errors import MissingExtraError

DPI = 100
SCATTER_SIZE_INCHES = (9.0, 7.5)
CELL_INCHES = 1.25
HEADER_INCHES = 0.5
CURVE_PANEL_INCHES = (4.0, 3.0)

WRONG_COLOR = "#d62728"
RIGHT_COLOR = "#2ca02c"
QUERY_COLOR = "#1f77b4"

# matplotlib's tab10 and tab20, spelled out so the HTML report uses the same colours without
# importing matplotlib.
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
          "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
          "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
_MAX_LEGEND_CLASSES = 30


def scatter_plot(points2d: Any, labels: Any, path: str | os.PathLike, *, title: str,
                 class_names: Sequence[str] | Mapping[int, str] | None = None,
                 record: Recorder | None = None) -> Path:
    """Draws 2-D points coloured by class, with a legend, into an image file.

    Points are drawn in a fixed random order (not class by class), so no class hides another
    just because it was drawn last. The axes keep equal scales, as distances matter. The
    legend lists up to 30 classes; with more, colours repeat in hue and the legend is replaced
    by a note.

    Args:
      points2d: array-like ``[N, 2]``, e.g. from :func:`tripletlab.visualization.project`.
      labels: integer class labels ``[N]``.
      path: the output file (``.png`` gives 900 × 750 pixels).
      title: the plot's title.
      class_names: names for the legend, either a sequence indexed by label or a mapping
        label → name; by default the label numbers.

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: the shapes do not match or ``class_names`` misses a label.
      ImportError: matplotlib is not installed.

    Example:
      >>> from tripletlab.visualization import project, scatter_plot
      >>> scatter_plot(project(embeddings), labels, "pca.png", title="PCA")  # doctest: +SKIP
    """
    figure = scatter_figure(points2d, labels, title=title, class_names=class_names)
    return save_figure(figure, path, record=record)


def neighbor_grid(query_images: Any, query_labels: Any, neighbor_images: Any,
                  neighbor_labels: Any, path: str | os.PathLike, *,
                  class_names: Sequence[str] | Mapping[int, str] | None = None,
                  record: Recorder | None = None) -> Path:
    """Draws each query image followed by its nearest neighbours, one row per query.

    The query has a blue frame; a neighbour of the query's class has a thin green frame and
    a neighbour of another class a thick red frame, with its label in red above it.

    Args:
      query_images: ``[Q, H, W, C]`` images.
      query_labels: ``[Q]`` integer labels.
      neighbor_images: ``[Q, K, H, W, C]`` images, nearest first.
      neighbor_labels: ``[Q, K]`` integer labels.
      path: the output file (``.png`` gives ``(K + 1) × 125`` by ``Q × 125 + 50`` pixels).
      class_names: names shown above the images instead of label numbers.

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: the shapes do not match, or the images are not in ``[0, 1]`` / ``uint8``.
      ImportError: matplotlib is not installed.
    """
    queries = as_uint8_images(query_images, "query_images")
    neighbors = np.asarray(neighbor_images)
    if neighbors.ndim == 4 and queries.shape[-1] == 1 and neighbors.shape[-1] != 1:
        neighbors = neighbors[..., None]
    if neighbors.ndim != 5:
        raise ValueError("Expected `neighbor_images` of shape [Q, K, H, W, C]. "
                         f"Received: neighbor_images with shape {neighbors.shape}.")
    num_queries, num_neighbors = neighbors.shape[:2]
    neighbors = as_uint8_images(neighbors.reshape(-1, *neighbors.shape[2:]), "neighbor_images")
    neighbors = neighbors.reshape(num_queries, num_neighbors, *neighbors.shape[1:])
    query_y = as_labels(query_labels, "query_labels", num_queries)
    neighbor_y = np.asarray(neighbor_labels)
    if neighbor_y.shape != (num_queries, num_neighbors):
        raise ValueError(f"Expected `neighbor_labels` of shape {(num_queries, num_neighbors)}, "
                         f"matching neighbor_images. Received: shape {neighbor_y.shape}.")
    neighbor_y = as_labels(neighbor_y.reshape(-1), "neighbor_labels").reshape(neighbor_y.shape)
    if queries.shape[0] != num_queries or queries.shape[1:] != neighbors.shape[2:]:
        raise ValueError("Expected `query_images` [Q, H, W, C] to match `neighbor_images` "
                         f"[Q, K, H, W, C]. Received: shapes {queries.shape} and "
                         f"{neighbors.shape}.")
    names = class_name_lookup(np.concatenate([query_y, neighbor_y.ravel()]), class_names)

    figure_class = import_figure()
    columns = num_neighbors + 1
    figure = figure_class(figsize=(columns * CELL_INCHES, num_queries * CELL_INCHES
                                   + HEADER_INCHES), dpi=DPI)
    height = num_queries * CELL_INCHES + HEADER_INCHES
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.06 * CELL_INCHES / height,
                           top=1 - HEADER_INCHES / height, wspace=0.12, hspace=0.35)
    axes = np.asarray(figure.subplots(num_queries, columns, squeeze=False))
    for row in range(num_queries):
        show_image(axes[row, 0], queries[row], f"query: {names[query_y[row]]}", QUERY_COLOR, 3.0)
        for column in range(num_neighbors):
            label = neighbor_y[row, column]
            wrong = label != query_y[row]
            show_image(axes[row, column + 1], neighbors[row, column], names[label],
                        WRONG_COLOR if wrong else RIGHT_COLOR, 4.0 if wrong else 1.5,
                        title_color=WRONG_COLOR if wrong else "black")
    wrong_total = int(np.sum(neighbor_y != query_y[:, None]))
    figure.suptitle(f"Nearest neighbours (red frame: other class, {wrong_total} of "
                    f"{neighbor_y.size})", fontsize=11)
    return save_figure(figure, path, record=record)


def augmentation_grid(original: Any, augmented: Any, path: str | os.PathLike, *,
                      title: str = "Augmentation", columns: int = 4,
                      record: Recorder | None = None) -> Path:
    """Draws one image and augmented versions of it in a grid (the original first, framed).

    Args:
      original: the image ``[H, W, C]`` (floats in ``[0, 1]`` or ``uint8``).
      augmented: its augmentations ``[N, H, W, C]``.
      path: the output file.
      title: the figure's title (e.g. the transforms).
      columns: images per row.

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: images of other shapes or values outside ``[0, 1]``.
    """
    original = as_uint8_images(np.asarray(original)[None], "original")
    augmented = as_uint8_images(augmented, "augmented")
    if augmented.shape[1:] != original.shape[1:]:
        raise ValueError(f"Expected `augmented` images of the original's shape "
                         f"{original.shape[1:]}. Received: shape {augmented.shape[1:]}.")
    images = np.concatenate([original, augmented])
    rows = math.ceil(len(images) / columns)
    title = textwrap.fill(title, width=int(columns * CELL_INCHES * 11))
    header = HEADER_INCHES + 0.16 * title.count("\n")
    figure_class = import_figure()
    height = rows * CELL_INCHES + header
    figure = figure_class(figsize=(columns * CELL_INCHES, height), dpi=DPI)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - header / height,
                           wspace=0.08, hspace=0.3)
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False)).ravel()
    for position, ax in enumerate(axes):
        if position >= len(images):
            ax.set_axis_off()
            continue
        first = position == 0
        show_image(ax, images[position], "original" if first else None,
                    QUERY_COLOR if first else "#cccccc", 3.0 if first else 0.8)
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path, record=record)


def triplet_plot(anchors: Any, positives: Any, negatives: Any, path: str | os.PathLike, *,
                 record: Recorder | None = None) -> Path:
    """Draws triplets as rows of (anchor, positive, negative) images.

    Args:
      anchors: ``[N, H, W, C]`` images.
      positives: ``[N, H, W, C]`` images of the anchors' classes.
      negatives: ``[N, H, W, C]`` images of other classes.
      path: the output file (``.png`` gives 375 by ``N × 125 + 50`` pixels).

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: the three arrays differ in shape, or are not images.
      ImportError: matplotlib is not installed.
    """
    columns = [as_uint8_images(anchors, "anchors"), as_uint8_images(positives, "positives"),
               as_uint8_images(negatives, "negatives")]
    if not columns[0].shape == columns[1].shape == columns[2].shape:
        raise ValueError("Expected `anchors`, `positives` and `negatives` of one shape. "
                         f"Received: shapes {[c.shape for c in columns]}.")
    num_rows = columns[0].shape[0]
    figure_class = import_figure()
    height = num_rows * CELL_INCHES + HEADER_INCHES
    figure = figure_class(figsize=(3 * CELL_INCHES, height), dpi=DPI)
    figure.subplots_adjust(left=0.03, right=0.97, bottom=0.06 * CELL_INCHES / height,
                           top=1 - HEADER_INCHES / height, wspace=0.1, hspace=0.1)
    axes = np.asarray(figure.subplots(num_rows, 3, squeeze=False))
    for column, name in enumerate(("anchor", "positive", "negative")):
        for row in range(num_rows):
            show_image(axes[row, column], columns[column][row], name if row == 0 else None,
                        "#444444", 1.0)
    return save_figure(figure, path, record=record)


def training_curves(csv_path: str | os.PathLike, path: str | os.PathLike, *,
                    record: Recorder | None = None) -> Path:
    """Draws every numeric column of a Keras ``CSVLogger`` file against the epoch.

    One panel per quantity: ``loss`` and each metric, with its ``val_`` counterpart on the same
    axes (solid: training, dashed: validation). Epochs are numbered from 1, as Keras prints
    them. A learning-rate column is drawn on a log scale.

    Args:
      csv_path: the ``CSVLogger`` file (comma separated, header row, one row per epoch).
      path: the output file (``.png`` gives 400 × 300 pixels per panel, three panels a row).

    Returns:
      ``path`` as a ``Path``.

    Raises:
      FileNotFoundError: ``csv_path`` does not exist.
      ValueError: the file has no rows or no numeric column besides ``epoch``.
      ImportError: matplotlib is not installed.
    """
    figure = training_curves_figure(csv_path)
    return save_figure(figure, path, record=record)


def read_csv_log(csv_path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reads a Keras ``CSVLogger`` file into epochs (from 1) and numeric columns.

    Args:
      csv_path: the file written by ``keras.callbacks.CSVLogger``.

    Returns:
      ``(epochs, columns)``: ``epochs`` ``[E]`` numbered from 1, and a dict name → ``[E]``
      float64 values (empty cells are NaN) for every numeric column other than ``epoch``, in
      file order.

    Raises:
      FileNotFoundError: ``csv_path`` does not exist.
      ValueError: the file has no data rows or no numeric column besides ``epoch``.
    """
    with open(csv_path, newline="", encoding="utf-8") as stream:
        header = stream.readline()
        stream.seek(0)
        delimiter = "\t" if "\t" in header else ";" if ";" in header and "," not in header else ","
        rows = list(csv.DictReader(stream, delimiter=delimiter))
    if not rows:
        raise ValueError(f"Expected a CSVLogger file with a header and at least one row. "
                         f"Received: csv_path={str(csv_path)!r} with no data rows.")
    columns: dict[str, np.ndarray] = {}
    for name in rows[0]:
        if name is None:
            continue
        values = [_parse_float(row.get(name)) for row in rows]
        if all(value is not None for value in values) and any(v != "" for v in values):
            columns[name] = np.array([np.nan if v == "" else v for v in values], dtype=np.float64)
    if "epoch" in columns:
        epochs = columns.pop("epoch") + 1
    else:
        epochs = np.arange(1, len(rows) + 1, dtype=np.float64)
    if not columns:
        raise ValueError("Expected at least one numeric column besides `epoch` in the "
                         f"CSVLogger file. Received: csv_path={str(csv_path)!r} with columns "
                         f"{list(rows[0])}.")
    return epochs, columns


# --- building blocks, shared with live.py, projector.py and report.py --------------------------

def class_colors(num_classes: int) -> list[str]:
    """Returns ``num_classes`` distinct colours as ``#rrggbb``: tab10, tab20, then golden-angle
    hues."""
    if num_classes <= len(_TAB10):
        return list(_TAB10[:num_classes])
    if num_classes <= len(_TAB20):
        return list(_TAB20[:num_classes])
    colors = []
    for index in range(num_classes):
        hue = (index * 0.618033988749895) % 1.0
        lightness = (0.42, 0.55, 0.68)[index % 3]
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colors.append(f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}")
    return colors


def scatter_figure(points2d: Any, labels: Any, *, title: str,
                   class_names: Sequence[str] | Mapping[int, str] | None,
                   limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
                   classes: np.ndarray | None = None,
                   axis_labels: tuple[str, str] | None = None) -> Any:
    """Builds the scatter ``Figure``; ``limits`` fixes the axes, ``classes`` fixes colours."""
    points = np.asarray(points2d, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError("Expected `points2d` of shape [N, 2]. "
                         f"Received: points2d with shape {points.shape}.")
    y = as_labels(labels, "labels", points.shape[0])
    if classes is None:
        classes = np.unique(y)
    names = class_name_lookup(classes, class_names)
    colors = class_colors(len(classes))
    color_of = {int(label): colors[index] for index, label in enumerate(classes)}

    figure_class = import_figure()
    figure = figure_class(figsize=SCATTER_SIZE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.subplots()
    order = np.random.default_rng(0).permutation(points.shape[0])
    size = float(np.clip(20000.0 / max(points.shape[0], 1), 4.0, 40.0))
    axes.scatter(points[order, 0], points[order, 1], s=size, linewidths=0, alpha=0.8,
                 c=[color_of[int(label)] for label in y[order]])
    if limits is None:
        axes.set_aspect("equal", adjustable="datalim")
    else:
        axes.set_xlim(*limits[0])
        axes.set_ylim(*limits[1])
        axes.set_aspect("equal", adjustable="box")
    axes.set_title(title)
    if axis_labels is not None:
        axes.set_xlabel(axis_labels[0], fontsize=9)
        axes.set_ylabel(axis_labels[1], fontsize=9)
    axes.grid(True, linewidth=0.4, alpha=0.4)
    axes.tick_params(labelsize=8)
    if len(classes) <= _MAX_LEGEND_CLASSES:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="", marker="o", markersize=7,
                          markerfacecolor=color_of[int(label)], markeredgewidth=0,
                          label=names[int(label)]) for label in classes]
        figure.legend(handles=handles, loc="outside right upper", fontsize=9,
                      title="class", frameon=False,
                      ncols=1 if len(classes) <= 15 else 2)
    else:
        axes.text(0.01, 0.01, f"{len(classes)} classes: legend omitted",
                  transform=axes.transAxes, fontsize=8, color="#555555")
    return figure


def training_curves_figure(csv_path: str | os.PathLike) -> Any:
    """Builds the ``Figure`` of :func:`training_curves` (not saved), e.g. to embed it elsewhere
    with :func:`figure_png_bytes`."""
    epochs, columns = read_csv_log(csv_path)
    groups: dict[str, list[str]] = {}
    for name in columns:
        base = name[4:] if name.startswith("val_") and len(name) > 4 else name
        groups.setdefault(base, []).append(name)
    # loss first, the learning rate last, the rest in file order
    rank = {base: (base != "loss") + 2 * (base in ("lr", "learning_rate")) for base in groups}
    groups = dict(sorted(groups.items(), key=lambda item: rank[item[0]]))
    figure_class = import_figure()
    num_columns = min(len(groups), 3)
    num_rows = math.ceil(len(groups) / num_columns)
    figure = figure_class(figsize=(CURVE_PANEL_INCHES[0] * num_columns,
                                   CURVE_PANEL_INCHES[1] * num_rows), dpi=DPI,
                          layout="constrained")
    axes = np.asarray(figure.subplots(num_rows, num_columns, squeeze=False)).ravel()
    marker = "o" if len(epochs) <= 30 else None
    for panel, (base, names) in zip(axes, groups.items(), strict=False):
        for name in sorted(names, key=lambda n: n.startswith("val_")):
            validation = name.startswith("val_") and name != base
            panel.plot(epochs, columns[name], linestyle="--" if validation else "-",
                       marker=marker, markersize=3, color="#ff7f0e" if validation else "#1f77b4",
                       label="held-out test (val_)" if validation else "training batches")
        values = np.concatenate([columns[name] for name in names])
        if base in ("lr", "learning_rate") and np.all(values[np.isfinite(values)] > 0):
            panel.set_yscale("log")
        panel.set_title(base, fontsize=10)
        panel.set_xlabel("epoch", fontsize=8)
        panel.tick_params(labelsize=8)
        panel.grid(True, linewidth=0.4, alpha=0.5)
        if len(names) > 1 or any(name.startswith("val_") and name != base for name in names):
            panel.legend(fontsize=8)
        if len(epochs) <= 12:
            panel.set_xticks(epochs)
    for panel in axes[len(groups):]:
        panel.set_visible(False)
    return figure


def as_uint8_images(images: Any, name: str) -> np.ndarray:
    """Returns images as ``uint8 [N, H, W, C]`` with ``C`` 1 or 3.

    Floats must lie in ``[0, 1]``; ``uint8`` is taken as is; ``[N, H, W]`` gains ``C = 1``.
    ``name`` is the argument's name, for the error message.

    Raises:
      ValueError: another shape, or values outside ``[0, 1]``.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or min(array.shape[:3]) < 1:
        raise ValueError(f"Expected `{name}` of shape [N, H, W, C] with C = 1 or 3. "
                         f"Received: {name} with shape {array.shape}.")
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"Expected `{name}` to hold numbers. Received: dtype {array.dtype}.")
    array = array.astype(np.float32)
    low, high = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"Expected `{name}` to be floats in [0, 1] or uint8. Received: values "
                         f"in [{low:g}, {high:g}] (divide 0-255 pixel values by 255).")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def as_labels(labels: Any, name: str, length: int | None = None) -> np.ndarray:
    """Returns integer labels ``[N]`` (an ``[N, 1]`` column is flattened).

    Args:
      labels: class labels, integers or integer-valued floats.
      name: the argument's name, for the error message.
      length: the required ``N``, if any.

    Raises:
      ValueError: another shape, or labels that are not integers.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        expected = f"[{length}]" if length is not None else "[N]"
        raise ValueError(f"Expected `{name}` of shape {expected}. "
                         f"Received: {name} with shape {array.shape}.")
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) \
            and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise ValueError(f"Expected `{name}` to hold integer class labels. "
                     f"Received: {name} with dtype {array.dtype}.")


def class_name_lookup(labels: np.ndarray,
                      class_names: Sequence[str] | Mapping[int, str] | None) -> dict[int, str]:
    """Returns label → display name for every label in ``labels``.

    Args:
      labels: integer labels.
      class_names: a sequence indexed by label, a mapping label → name, or ``None`` (the
        label numbers).

    Raises:
      ValueError: ``class_names`` has no name for one of the labels.
    """
    unique = [int(label) for label in np.unique(labels)]
    if class_names is None:
        return {label: str(label) for label in unique}
    lookup: dict[int, str] = {}
    for label in unique:
        try:
            if isinstance(class_names, Mapping):
                lookup[label] = str(class_names[label])
            else:
                if label < 0:
                    raise IndexError(label)
                lookup[label] = str(class_names[label])
        except (KeyError, IndexError) as error:
            raise ValueError(f"Expected `class_names` to name every label. Received: no name "
                             f"for label {label} (class_names has {len(class_names)} "
                             "entries).") from error
    return lookup


def show_image(axes: Any, image: np.ndarray, title: str | None, frame_color: str,
               frame_width: float, title_color: str = "black") -> None:
    """Draws a ``uint8 [H, W, C]`` image on ``axes`` without ticks, in a frame of
    ``frame_color`` and ``frame_width`` points, with ``title`` above it."""
    if image.shape[-1] == 1:
        axes.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(image, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_edgecolor(frame_color)
        spine.set_linewidth(frame_width)
    if title is not None:
        axes.set_title(title, fontsize=8, color=title_color, pad=3)


def _parse_float(text: str | None) -> float | str | None:
    """Returns the float in ``text``, ``""`` for an empty cell, ``None`` if not a number."""
    if text is None or text.strip() == "":
        return ""
    try:
        return float(text)
    except ValueError:
        return None


def import_figure() -> Any:
    """matplotlib's ``Figure`` class (no pyplot state); ``MissingExtraError`` without it."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingExtraError('Plotting needs matplotlib: pip install "tripletlab[viz]"'
                                ) from error
    return Figure


def save_figure(figure: Any, path: str | os.PathLike, *, record: Recorder | None = None) -> Path:
    """Saves a matplotlib ``Figure`` atomically at :data:`DPI`, in the format of ``path``'s
    suffix (PNG without one); returns ``path`` as a ``Path``. ``record`` (every drawing
    function here takes it): called with the path before it is written
    (:func:`tripletlab.atomic.atomic_path`)."""
    target = Path(path)
    file_format = target.suffix.lstrip(".").lower() or "png"
    with atomic_path(target, record=record) as temporary:
        figure.savefig(temporary, format=file_format, dpi=DPI)
    return target


def figure_png_bytes(figure: Any) -> bytes:
    """The PNG bytes of a matplotlib ``Figure`` at :data:`DPI` (as :func:`save_figure` writes
    them)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
