"""The pictures of an experiment folder's ``plots/``: training curves, projections, neighbours.

``tripletlab train`` (at the end of a run) and ``tripletlab visualize`` draw them with
:func:`write_plots`; the file names are those of :mod:`tripletlab.experiment` (``plots/``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path

import numpy as np

from tripletlab.atomic import Recorder
from tripletlab.visualization.plot import (
    augmentation_grid,
    neighbor_grid,
    scatter_plot,
    training_curves,
)
from tripletlab.visualization.project import project

TRAINING_CURVES = "training_curves.png"
NEIGHBORS = "neighbors.png"
AUGMENTATION = "augmentation.png"
AUGMENTED_SAMPLES = 15
PROJECTION_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def available_projections() -> tuple[str, ...]:
    """``("pca", "tsne")`` plus ``"umap"`` when umap-learn is installed."""
    methods = ("pca", "tsne")
    if importlib.util.find_spec("umap") is not None:
        methods += ("umap",)
    return methods


def write_plots(folder: str | os.PathLike, embeddings: np.ndarray, labels: np.ndarray, *,
                images: np.ndarray | None = None, log_csv: str | os.PathLike | None = None,
                class_names: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                seed: int = 0, num_queries: int = 8, num_neighbors: int = 6,
                announce: Callable[[str], None] | None = None,
                projections: MutableMapping[str, np.ndarray] | None = None,
                record: Recorder | None = None) -> list[Path]:
    """Draws the pictures of an experiment into ``folder``.

    ``training_curves.png`` (from ``log_csv``), ``{method}.png`` for each projection
    (``pca``, ``tsne``, and ``umap`` if installed), and ``neighbors.png`` (with ``images``): a few
    test queries, one per class, and their nearest other test points (L2).

    Args:
      folder: the output folder (an experiment's ``plots/``).
      embeddings: ``[N, D]`` embeddings.
      labels: ``[N]`` integer labels.
      images: ``[N, H, W, C]`` images of the points, for the neighbour grid.
      log_csv: a Keras ``CSVLogger`` file, for the training curves.
      class_names: legend names, indexed by label.
      methods: the projections to draw (default :func:`available_projections`).
      seed: seed of the projections.
      num_queries: the most rows of the neighbour grid.
      num_neighbors: neighbours per row.
      announce: called with one line before each picture is drawn.
      projections: a dict method → ``[N, 2]`` points of ``embeddings``, or ``None``. The
        methods it holds are drawn from it, not computed again; the ones computed here are
        added to it, so the caller can hand them on (``tripletlab train`` gives them to
        :func:`tripletlab.visualization.write_report`).
      record: called with each file's path before it is written (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).

    Returns:
      The files written.
    """
    announce = announce or (lambda text: None)
    folder = Path(folder)
    written = []
    labels = np.asarray(labels).reshape(-1)
    names = list(class_names) if class_names is not None else None
    if log_csv is not None and Path(log_csv).is_file():
        announce(f"Drawing {folder / TRAINING_CURVES}")
        written.append(training_curves(log_csv, folder / TRAINING_CURVES, record=record))
    for method in available_projections() if methods is None else methods:
        if len(labels) < 5:
            break
        title = PROJECTION_TITLES.get(method, method)
        announce(f"Drawing {folder / (method + '.png')} ({title} of {len(labels):,} points)")
        if projections is not None and method in projections:
            points = projections[method]
        else:
            points = project(embeddings, method, seed=seed)
            if projections is not None:
                projections[method] = points
        written.append(scatter_plot(points, labels, folder / f"{method}.png",
                                    title=f"{title} of {len(labels)} test embeddings",
                                    class_names=names, record=record))
    if images is not None and len(labels) > num_neighbors:
        queries = np.array([np.flatnonzero(labels == c)[0] for c in np.unique(labels)])
        queries = queries[:num_queries]
        announce(f"Drawing {folder / NEIGHBORS}")
        x = np.asarray(embeddings, np.float64)
        squared = np.sum((x[queries, None, :] - x[None, :, :]) ** 2, axis=-1)
        squared[np.arange(len(queries)), queries] = np.inf
        nearest = np.argsort(squared, axis=1, kind="stable")[:, :num_neighbors]
        written.append(neighbor_grid(images[queries], labels[queries], images[nearest],
                                     labels[nearest], folder / NEIGHBORS, class_names=names,
                                     record=record))
    return written


def write_augmentation_grid(folder: str | os.PathLike, image: np.ndarray, augment: Callable,
                            *, seed: int = 0, count: int = AUGMENTED_SAMPLES,
                            batch_size: int | None = None, title: str | None = None,
                            record: Recorder | None = None) -> Path:
    """Draws ``folder/augmentation.png``: one training image and ``count`` augmentations of it
    (what ``tripletlab train`` writes when the ``[augmentation]`` keys turn a transform on).

    Args:
      folder: the output folder (an experiment's ``plots/``).
      image: one image ``[H, W, C]``, floats in ``[0, 1]``.
      augment: the augmentation, called as ``augment(images, seed=...)``
        (:class:`tripletlab.data.augmentation.Augmentation`).
      seed: the seed of the draws.
      count: the number of augmented copies.
      batch_size: images per call of ``augment`` (default ``count``); the training batch size
        reuses the kernels the backend compiled for training (JAX compiles per shape, seconds).
      title: the figure's title (default: the transforms, if ``augment`` describes them).
      record: called with the file's path before it is written.

    Returns:
      The file written.
    """
    image = np.asarray(image, dtype=np.float32)
    batch_size = int(batch_size or count)
    calls = -(-count // batch_size)
    copies = np.repeat(image[None], batch_size, axis=0)
    augmented = np.concatenate([augment(copies, seed=(seed, count, call))
                                for call in range(calls)])[:count]
    if title is None:
        lines = augment.describe() if hasattr(augment, "describe") else []
        title = "Augmented training image: " + (", ".join(lines) or "augmentation")
    return augmentation_grid(image, augmented, Path(folder) / AUGMENTATION, title=title,
                             record=record)
