"""Pairwise distances between embeddings, in ``keras.ops`` (every backend).

One canonical spelling per distance (TF Addons' spellings):

* ``"L2"``: Euclidean distance :math:`\\lVert x_i - x_j \\rVert_2`.
* ``"squared-L2"``: :math:`\\lVert x_i - x_j \\rVert_2^2`.
* ``"angular"``: :math:`\\max(1 - \\cos(x_i, x_j), 0)`.
* ``"normalized-L2"``: Euclidean distance between L2-normalised rows,
  :math:`\\sqrt{\\max(2 - 2\\cos(x_i, x_j), 0)}` (triplet-tools' ``euclidean_norm``).

Every matrix has an exactly zero diagonal, and entries whose squared distance is ``<= 0`` (the
diagonal, duplicate points) are exactly zero with a finite, zero gradient: the square root is
taken of a safe value and the result is masked, so no ``inf * 0 = NaN`` reaches the backward pass.
"""

from __future__ import annotations

from keras import ops

from tripletlab._checks import check_choice

DISTANCES = ("L2", "squared-L2", "angular", "normalized-L2")
"""The canonical distance names, in the order they are documented."""

# Distances computed on L2-normalised rows (so they lie in [0, 2] or [0, 4]).
NORMALIZED_DISTANCES = frozenset({"angular", "normalized-L2"})

# Clamp of the squared norm in L2 normalisation. The gradient of x / max(|x|, sqrt(eps)) near
# x = 0 is about 1 / sqrt(eps): 1e-8 keeps it near 1e4, inside float16's range (65504), so a
# zero or tiny embedding row never turns into an inf gradient under mixed precision (found by
# tests/losses/test_fuzz.py). Rows with norm below 1e-4 are scaled by 1e4 instead of normalised.
_NORM_EPSILON = 1e-8


def check_distance(distance: str) -> str:
    """Returns ``distance`` if it is a canonical distance name; raises ``ValueError`` otherwise."""
    return check_choice("distance", distance, DISTANCES)


def l2_normalize(x, epsilon: float = _NORM_EPSILON):
    """Scales every row of ``x`` to unit L2 norm (an all-zero row stays zero)."""
    x = ops.convert_to_tensor(x)
    squared_norm = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, epsilon))


def _safe_sqrt(squared):
    """``sqrt`` that is exactly 0 with a zero (finite) gradient where ``squared <= 0``."""
    is_zero = squared <= 0.0
    root = ops.sqrt(ops.where(is_zero, ops.ones_like(squared), squared))
    return ops.where(is_zero, ops.zeros_like(squared), root)


def _zero_diagonal(matrix):
    size = ops.shape(matrix)[0]
    return ops.where(ops.eye(size, dtype="bool"), ops.zeros_like(matrix), matrix)


def pairwise_squared_l2(embeddings):
    """Squared Euclidean distances, clamped at 0, with an exactly zero diagonal.

    Uses :math:`d^2_{ij} = \\lVert x_i \\rVert^2 + \\lVert x_j \\rVert^2 - 2 x_i \\cdot x_j`, which
    needs only a ``[B, B]`` matrix (never ``[B, B, D]``).
    """
    squared_norms = ops.sum(ops.square(embeddings), axis=1)
    gram = ops.matmul(embeddings, ops.transpose(embeddings))
    squared = ops.expand_dims(squared_norms, 1) + ops.expand_dims(squared_norms, 0) - 2.0 * gram
    squared = ops.maximum(squared, 0.0)
    return _zero_diagonal(squared)


def pairwise_distances(embeddings, distance: str = "L2"):
    """Computes the ``[B, B]`` matrix of distances between the rows of ``embeddings``.

    Args:
      embeddings: a ``[B, D]`` floating tensor of any Keras backend.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"``.

    Returns:
      A ``[B, B]`` tensor of the same dtype as ``embeddings`` with a zero diagonal.

    Raises:
      ValueError: ``distance`` is not one of the canonical names.

    Example:
      >>> import numpy as np
      >>> from tripletlab.distances import pairwise_distances
      >>> x = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
      >>> np.round(np.asarray(pairwise_distances(x, "L2")), 4).tolist()
      [[0.0, 1.4142], [1.4142, 0.0]]
    """
    check_distance(distance)
    embeddings = ops.convert_to_tensor(embeddings)
    if distance == "L2":
        return _safe_sqrt(pairwise_squared_l2(embeddings))
    if distance == "squared-L2":
        return pairwise_squared_l2(embeddings)
    normalized = l2_normalize(embeddings)
    cosine = ops.matmul(normalized, ops.transpose(normalized))
    if distance == "angular":
        return _zero_diagonal(ops.maximum(1.0 - cosine, 0.0))
    # normalized-L2
    return _zero_diagonal(_safe_sqrt(ops.maximum(2.0 - 2.0 * cosine, 0.0)))


def paired_distances(first, second, distance: str = "L2"):
    """Distances between matching rows of ``first`` and ``second`` (both ``[B, D]``) -> ``[B]``.

    Accepts the canonical names and, for the Siamese-network workflow, ``"mean-squared"``
    (the mean over embedding dimensions of the squared difference).
    """
    check_choice("distance", distance, DISTANCES + ("mean-squared",))
    first, second = ops.convert_to_tensor(first), ops.convert_to_tensor(second)
    if distance in NORMALIZED_DISTANCES:
        first, second = l2_normalize(first), l2_normalize(second)
    if distance == "angular":
        return ops.maximum(1.0 - ops.sum(first * second, axis=-1), 0.0)
    squared = ops.sum(ops.square(first - second), axis=-1)
    if distance == "mean-squared":
        return squared / ops.cast(ops.shape(first)[-1], squared.dtype)
    if distance == "squared-L2":
        return squared
    return _safe_sqrt(squared)
