"""The picture of ``tripletlab query``: each query beside its nearest gallery items.

One row per query: the query (blue frame, titled with its label when known and the match it
got), then its neighbours nearest first, each titled with its label and distance; a green
frame when the label is the query's, a thick red frame when not (grey when the query has no
label). A neighbour whose image is not available (a gallery built from saved embeddings) is
a grey tile with its title.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.atomic import Recorder
from tripletlab.visualization.plot import (
    CELL_INCHES,
    DPI,
    HEADER_INCHES,
    QUERY_COLOR,
    RIGHT_COLOR,
    WRONG_COLOR,
    as_uint8_images,
    import_figure,
    save_figure,
    show_image,
)

UNKNOWN_COLOR = "#7f7f7f"


def query_grid(query_images: Any, query_titles: Sequence[str],
               neighbor_images: Sequence[Any | None], neighbor_titles: Sequence[Sequence[str]],
               neighbor_same: np.ndarray | None, path: str | os.PathLike, *, title: str,
               record: Recorder | None = None) -> Path:
    """Draws each query followed by its neighbours, one row per query.

    Args:
      query_images: ``[Q, H, W, C]`` images (floats in ``[0, 1]`` or ``uint8``).
      query_titles: ``[Q]`` text above each query.
      neighbor_images: ``Q * k`` entries, row by row: an image ``[h, w, c]`` or ``None``.
      neighbor_titles: ``[Q][k]`` text above each neighbour.
      neighbor_same: ``[Q, k]`` bool, whether each neighbour has the query's label, or
        ``None`` for unlabelled queries.
      path: the output file (PNG).
      title: the figure's title.
      record: see :func:`tripletlab.atomic.atomic_path`.

    Returns:
      ``path`` as a ``Path``.
    """
    queries = as_uint8_images(query_images, "query_images")
    num_queries, k = len(neighbor_titles), len(neighbor_titles[0])
    figure = import_figure()(figsize=((k + 1) * CELL_INCHES,
                                      num_queries * CELL_INCHES + HEADER_INCHES), dpi=DPI)
    height = num_queries * CELL_INCHES + HEADER_INCHES
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.06 * CELL_INCHES / height,
                           top=1 - HEADER_INCHES / height, wspace=0.12, hspace=0.45)
    axes = np.asarray(figure.subplots(num_queries, k + 1, squeeze=False))
    blank = np.full(queries.shape[1:], 230, np.uint8)
    for row in range(num_queries):
        show_image(axes[row, 0], queries[row], query_titles[row], QUERY_COLOR, 3.0)
        for column in range(k):
            image = neighbor_images[row * k + column]
            tile = blank if image is None else as_uint8_images(image[None], "neighbor")[0]
            if neighbor_same is None:
                color, width, text = UNKNOWN_COLOR, 1.5, "black"
            elif neighbor_same[row, column]:
                color, width, text = RIGHT_COLOR, 1.5, "black"
            else:
                color, width, text = WRONG_COLOR, 4.0, WRONG_COLOR
            show_image(axes[row, column + 1], tile, neighbor_titles[row][column], color, width,
                       title_color=text)
    figure.suptitle(title, fontsize=11)
    return save_figure(figure, path, record=record)
