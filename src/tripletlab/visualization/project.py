"""Two-dimensional projections of embeddings (PCA, t-SNE, UMAP); nothing is drawn here.

The projection is separate from the rendering: :func:`project` returns an ``[N, 2]`` array that
:func:`tripletlab.visualization.scatter_plot`, the HTML report or any other tool can draw.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.errors import ConfigError, MissingExtraError

METHODS = ("pca", "tsne", "umap")


def project(embeddings: Any, method: str = "pca", *, seed: int | None = 0,
            **options: Any) -> np.ndarray:
    """Projects embeddings to two dimensions.

    ``"pca"`` is linear and fast and keeps global geometry (distances between class centres);
    ``"tsne"`` and ``"umap"`` keep local neighbourhoods (which points are close) and show
    clusters more clearly, but distances between clusters and cluster sizes carry little meaning.

    Defaults that differ from the libraries' own: t-SNE uses ``init="pca"`` and a perplexity of
    ``min(30, (N - 1) / 3)`` so that small samples work; UMAP uses
    ``n_neighbors=min(15, N - 1)`` and, when ``seed`` is set, ``n_jobs=1`` (a seeded UMAP runs
    on one thread anyway). Any of them can be overridden through ``options``.

    Args:
      embeddings: array-like ``[N, D]`` of finite numbers, ``N >= 3``, ``D >= 2``.
      method: ``"pca"`` (``sklearn.decomposition.PCA``), ``"tsne"``
        (``sklearn.manifold.TSNE``) or ``"umap"`` (``umap.UMAP`` from umap-learn).
      seed: the random state handed to the estimator, or ``None`` for an unseeded run.
      **options: further keyword arguments for the estimator's constructor (for example
        ``perplexity=50`` for t-SNE or ``min_dist=0.3`` for UMAP).

    Returns:
      A float32 array ``[N, 2]``.

    Raises:
      ValueError: ``method`` is unknown, or ``embeddings`` is not a finite ``[N, D]`` array
        with ``N >= 3`` and ``D >= 2``.
      TypeError: ``seed`` is not an integer or ``None``.
      ImportError: scikit-learn (PCA, t-SNE) or umap-learn (UMAP) is not installed.

    Example:
      >>> import numpy as np
      >>> from tripletlab.visualization import project
      >>> x = np.random.default_rng(0).normal(size=(100, 16))
      >>> project(x, "pca").shape
      (100, 2)
    """
    _checks.check_choice("method", method, METHODS)
    if seed is not None:
        _checks.check_number("seed", seed, minimum=0, integer=True)
        seed = int(seed)
    data = as_embedding_matrix(embeddings, "embeddings")
    if data.shape[0] < 3 or data.shape[1] < 2:
        raise ConfigError("Expected `embeddings` with at least 3 rows and 2 columns. "
                          f"Received: embeddings with shape {data.shape}.")
    num_points = data.shape[0]
    if method == "pca":
        decomposition = _import_sklearn("decomposition")
        estimator = decomposition.PCA(n_components=2, random_state=seed, **options)
    elif method == "tsne":
        manifold = _import_sklearn("manifold")
        options.setdefault("perplexity", min(30.0, (num_points - 1) / 3.0))
        options.setdefault("init", "pca")
        estimator = manifold.TSNE(n_components=2, random_state=seed, **options)
    else:
        umap = _import_umap()
        options.setdefault("n_neighbors", min(15, num_points - 1))
        if seed is not None:
            options.setdefault("n_jobs", 1)
        estimator = umap.UMAP(n_components=2, random_state=seed, **options)
    points = estimator.fit_transform(data)
    return np.asarray(points, dtype=np.float32)


def as_embedding_matrix(values: Any, name: str) -> np.ndarray:
    """Returns ``values`` as a finite float32 ``[N, D]`` array; raises ``ValueError`` otherwise.

    Args:
      values: array-like (NumPy array, list, backend tensor with ``__array__``).
      name: the argument's name, used in the message.

    Returns:
      A float32 NumPy array with two dimensions.
    """
    array = np.asarray(values)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        raise ConfigError(f"Expected `{name}` to be a numeric array of shape [N, D]. "
                          f"Received: {name} with shape {array.shape} and dtype {array.dtype}.")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ConfigError(f"Expected `{name}` to contain only finite numbers. "
                          f"Received: {name} with {bad} NaN or infinite entries.")
    return array


def _import_sklearn(submodule: str) -> Any:
    try:
        return importlib.import_module(f"sklearn.{submodule}")
    except ImportError as error:
        raise MissingExtraError('This projection needs scikit-learn: pip install "tripletlab[viz]"'
                                ) from error


def _import_umap() -> Any:
    try:
        import umap
    except ImportError as error:
        raise MissingExtraError('method="umap" needs umap-learn: pip install "tripletlab[umap]"'
                                ) from error
    return umap
