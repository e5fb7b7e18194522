r"""Distances in NumPy, for the code that runs outside the training backend.

The offline hard mining (:func:`tripletlab.data.triplets.pool_distances`), the k-nearest-neighbour
search (:mod:`tripletlab.evaluation.knn`) and the clustering scores
(:func:`tripletlab.evaluation.metrics.clustering_scores`) work on NumPy arrays; they share these
functions, so every one of them normalises rows and turns scores into distances the same way.
The definitions are those of :mod:`tripletlab.distances` (the backend version, used by the
losses), plus the offline loss's ``"mean-squared"``:

.. math::

    d_{L2}(u, v) = \lVert u - v \rVert, \quad d_{sq}(u, v) = \lVert u - v \rVert^2, \quad
    d_{ms}(u, v) = \lVert u - v \rVert^2 / D,

    d_{ang}(u, v) = \max(1 - c, 0), \quad d_{nL2}(u, v) = \sqrt{\max(2 - 2c, 0)}, \quad
    c = \hat u \cdot \hat v,

with :math:`\hat u = u / \sqrt{\max(\lVert u \rVert^2, \epsilon)}` and :math:`\epsilon` =
:data:`SQUARED_NORM_FLOOR`.

Nothing here imports Keras.
"""

from __future__ import annotations

import numpy as np

from tripletlab import distance_names as names
from tripletlab._checks import check_choice

DISTANCES = names.PAIRED_DISTANCES
"""The distances computed here (:data:`tripletlab.distance_names.PAIRED_DISTANCES`): the
canonical ones and ``"mean-squared"`` (the mean over the ``D`` dimensions of the squared
difference)."""

_SCORED_DISTANCES = names.DISTANCES  # all but "mean-squared", which needs the dimension

COSINE_DISTANCES = names.NORMALIZED_DISTANCES
"""The distances computed from the cosine of L2-normalised rows."""

SQUARED_NORM_FLOOR = 1e-12
"""The floor of the squared row norm in :func:`normalize_rows`: a row shorter than ``1e-6`` is
scaled by ``1e6`` instead of normalised, so a zero row stays zero (never NaN). It is not the
floor of :func:`tripletlab.distances.l2_normalize`, which depends on the dtype (``2**-110`` for
float32): squared, that floor would underflow float32."""


def normalize_rows(rows: np.ndarray) -> np.ndarray:
    r"""Divides every row by its L2 norm, floored: :math:`x / \sqrt{\max(\lVert x \rVert^2,
    \epsilon)}` with :math:`\epsilon` = :data:`SQUARED_NORM_FLOOR`.

    Args:
      rows: a floating ``[N, D]`` array (float32 stays float32: the k-NN index takes float32).

    Returns:
      An array of the shape and dtype of ``rows``.

    Example:
      >>> import numpy as np
      >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
      [[0.6, 0.8], [0.0, 0.0]]
    """
    rows = np.asarray(rows)
    squared_norm = np.einsum("ij,ij->i", rows, rows)[:, None]
    return rows / np.sqrt(np.maximum(squared_norm, rows.dtype.type(SQUARED_NORM_FLOOR)))


def distances_from_scores(scores: np.ndarray, distance: str) -> np.ndarray:
    """Turns squared L2 distances or cosines into ``distance``.

    Args:
      scores: squared L2 distances for ``"L2"`` and ``"squared-L2"``; cosines of normalised
        rows (see :func:`normalize_rows`) for ``"angular"`` and ``"normalized-L2"``. Any shape;
        rounding may have left squared distances slightly negative or cosines slightly above 1.
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.

    Returns:
      The non-negative distances, of the shape and dtype of ``scores``.

    Raises:
      ValueError: ``distance`` is not one of the four (``"mean-squared"`` needs the dimension:
        use :func:`pairwise_distances`).

    Example:
      >>> import numpy as np
      >>> distances_from_scores(np.array([0.0, 0.5, 1.0]), "angular").tolist()
      [1.0, 0.5, 0.0]
    """
    check_choice("distance", distance, _SCORED_DISTANCES)
    if distance == names.SQUARED_L2:
        return np.maximum(scores, 0.0)
    if distance == names.L2:
        return np.sqrt(np.maximum(scores, 0.0))
    if distance == names.ANGULAR:
        return np.maximum(1.0 - scores, 0.0)
    return np.sqrt(np.maximum(2.0 - 2.0 * scores, 0.0))  # normalized-L2


def pairwise_distances(embeddings, distance: str = "L2") -> np.ndarray:
    """The float64 ``[P, P]`` matrix of distances between the rows of ``embeddings``.

    Args:
      embeddings: ``[P, D]`` array (anything ``np.asarray`` takes); computed in float64.
      distance: one of :data:`DISTANCES`.

    Returns:
      A float64 ``[P, P]`` array, symmetric, non-negative, with a zero diagonal.

    Raises:
      ValueError: ``distance`` is unknown or ``embeddings`` is not 2-D.

    Example:
      >>> import numpy as np
      >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), "L2").tolist()
      [[0.0, 5.0], [5.0, 0.0]]
    """
    check_choice("distance", distance, DISTANCES)
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError("Expected `embeddings` to be 2-D [P, D]. "
                         f"Received: shape={e.shape}.")
    if distance in COSINE_DISTANCES:
        e = normalize_rows(e)
        result = distances_from_scores(e @ e.T, distance)
    else:
        norms = np.einsum("ij,ij->i", e, e)
        squared = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (e @ e.T), 0.0)
        if distance == names.MEAN_SQUARED:
            result = squared / e.shape[1]
        else:
            result = distances_from_scores(squared, distance)
    np.fill_diagonal(result, 0.0)
    return result


def paired_distances(first, second, distance: str = "L2") -> np.ndarray:
    """The float64 distances between the rows of ``first`` and ``second``, pair by pair.

    Args:
      first: ``[P, D]`` array; computed in float64.
      second: ``[P, D]`` array.
      distance: one of :data:`DISTANCES`.

    Returns:
      A float64 ``[P]`` array, non-negative.

    Raises:
      ValueError: ``distance`` is unknown, or the arrays are not 2-D of one shape.

    Example:
      >>> import numpy as np
      >>> paired_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), "L2").tolist()
      [5.0]
    """
    check_choice("distance", distance, DISTANCES)
    u = np.asarray(first, dtype=np.float64)
    v = np.asarray(second, dtype=np.float64)
    if u.ndim != 2 or u.shape != v.shape:
        raise ValueError("Expected `first` and `second` of one shape [P, D]. "
                         f"Received: shapes {u.shape} and {v.shape}.")
    if distance in COSINE_DISTANCES:
        cosines = np.einsum("ij,ij->i", normalize_rows(u), normalize_rows(v))
        return distances_from_scores(cosines, distance)
    difference = u - v
    squared = np.einsum("ij,ij->i", difference, difference)
    if distance == names.MEAN_SQUARED:
        return squared / u.shape[1]
    return distances_from_scores(squared, distance)
