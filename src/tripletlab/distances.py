r"""Pairwise distances between embeddings, in ``keras.ops`` (every backend).

One canonical spelling per distance (TF Addons' spellings):

* ``"L2"``: Euclidean distance :math:`\lVert x_i - x_j \rVert_2`.
* ``"squared-L2"``: :math:`\lVert x_i - x_j \rVert_2^2`.
* ``"angular"``: :math:`\max(1 - \cos(x_i, x_j), 0)`.
* ``"normalized-L2"``: Euclidean distance between L2-normalised rows,
  :math:`\sqrt{\max(2 - 2\cos(x_i, x_j), 0)}` (triplet-tools' ``euclidean_norm``).

Numerics (docs/losses.md, "Distances"; tested in ``tests/test_distances.py``):

* Every matrix has an exactly zero diagonal, identical rows are at distance exactly 0, and zero
  entries have a finite, zero gradient (the square root is taken of a safe value and the result
  is masked, so no ``inf * 0 = NaN`` reaches the backward pass).
* The Gram-matrix form :math:`\lVert x_i \rVert^2 + \lVert x_j \rVert^2 - 2 x_i \cdot x_j`
  (a ``[B, B]`` matmul, never ``[B, B, D]``) is computed on the batch shifted by its (rounded)
  mean when that mean is longer than the batch's spread, so cancellation is that of the spread
  of the batch, not of its distance from the origin; the squared norms are the diagonal of the
  same matmul. The rounding error of a squared distance is then at most about
  :math:`(2D + 3)\,u\,(\lVert \tilde x_i \rVert^2 + \lVert \tilde x_j \rVert^2)`
  (:math:`u = 2^{-24}` in float32, :math:`\tilde x` the shifted rows); matmul kernels round
  the diagonal and off-diagonal dot products of two identical rows differently on some backends
  (TensorFlow and PyTorch on CPU), so squared distances within that bound, which carry no
  significant digit, are set to exactly 0.
* The batch is scaled by a power of two (exact) before anything is squared, so every finite
  input gives finite distances whenever the distance itself fits in the dtype; larger distances
  (only for inputs near the top of the float range, or ``squared-L2`` beyond ~1.8e19) are
  ``inf``.
* Rows are normalised after scaling each row by a power of two, so ``angular`` and
  ``normalized-L2`` do not depend on a row's scale down to ``min_norm``.

Keras is imported inside the functions, so the names (:data:`DISTANCES`, defined in
:mod:`tripletlab.distance_names` and re-exported here) can be read before the Keras backend is
chosen.
"""

from __future__ import annotations

from typing import NamedTuple

from tripletlab._checks import check_choice
from tripletlab.distance_names import (
    ANGULAR,
    DISTANCES,
    L2,
    MEAN_SQUARED,
    NORMALIZED_DISTANCES,
    NORMALIZED_L2,
    PAIRED_DISTANCES,
    SQUARED_L2,
)

# The smallest row norm that is normalised; smaller rows are scaled by 1 / min_norm instead (an
# all-zero row stays zero, with gradient 1). The gradient of x / |x| is about 1 / |x|, so the
# floor is where that gradient still fits the dtype the loss's gradient is returned in: for
# float16 (largest 65504) 1e-4 keeps it near 1e4, so a tiny row never turns into an inf gradient
# under mixed precision (found by tests/losses/test_fuzz.py); float32 and bfloat16 hold 2**110.
_MIN_NORM = {"float16": 1e-4}
_DEFAULT_MIN_NORM = 2.0**-110

# Unit roundoff of each floating dtype (the bound on the rounding of identical rows' distances).
_UNIT_ROUNDOFF = {
    "float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}

# The batch mean is rounded to multiples of 1 / _CENTRE_GRID of the scaled values (|x| < 2).
_CENTRE_GRID = 256.0

# Exponent range of the power-of-two scales: normal float32 numbers (XLA and TensorFlow flush
# subnormals to zero on CPU).
_MIN_EXPONENT, _MAX_EXPONENT = -126, 127


def check_distance(distance: str) -> str:
    """Returns ``distance`` if it is a canonical distance name; raises ``ValueError`` otherwise."""
    return check_choice("distance", distance, DISTANCES)


def ranking_distance(distance: str) -> str:
    """The canonical distance that orders neighbours as ``distance`` does.

    ``"mean-squared"`` (``"squared-L2"`` divided by the dimension) ranks as ``"squared-L2"``;
    a canonical name is its own. Retrieval metrics depend on that order alone, so a model
    trained with the offline ``"mean-squared"`` loss is scored with ``"squared-L2"``.

    Raises:
      ValueError: ``distance`` is not one of :data:`PAIRED_DISTANCES`.
    """
    check_choice("distance", distance, PAIRED_DISTANCES)
    return SQUARED_L2 if distance == MEAN_SQUARED else distance


def min_norm_for(dtype) -> float:
    """The smallest row norm :func:`l2_normalize` normalises for embeddings of ``dtype``.

    Below it the gradient of the normalisation (about ``1 / norm``) would overflow the dtype the
    gradient is returned in: ``1e-4`` for float16, ``2**-110`` (about ``7.7e-34``) otherwise.
    """
    import keras

    return _MIN_NORM.get(keras.backend.standardize_dtype(dtype), _DEFAULT_MIN_NORM)


def _power_of_two_at_most(value):
    """``2**floor(log2(value))`` for positive ``value`` (exact; clipped to normal numbers)."""
    from keras import ops

    exponent = ops.clip(ops.floor(ops.log2(value)), _MIN_EXPONENT, _MAX_EXPONENT)
    return ops.ldexp(ops.ones_like(value), ops.cast(exponent, "int32"))


def power_of_two_scale(peak):
    """``2**floor(log2(peak))`` (1 where ``peak`` is 0), without gradient.

    Dividing by it is exact and brings values whose largest magnitude is ``peak`` into
    ``[1, 2)``, so they can be squared and summed without overflow or underflow.
    """
    from keras import ops

    peak = ops.stop_gradient(peak)
    return _power_of_two_at_most(ops.where(peak > 0, peak, ops.ones_like(peak)))


def _normalize_rows(x, min_norm):
    """``(normalized, weight)``: the rows of :func:`l2_normalize` and their exact squared norms.

    ``weight`` is ``[..., 1]``: exactly 1 for rows that were normalised, ``(|x| / min_norm)**2``
    for rows below ``min_norm`` and 0 for zero rows.
    """
    from keras import ops

    x = ops.convert_to_tensor(x)
    if min_norm is None:
        min_norm = min_norm_for(x.dtype)
    peak = ops.max(ops.abs(x), axis=-1, keepdims=True)
    scale = power_of_two_scale(peak)
    scaled = x / scale
    is_zero = peak == 0
    squared_norm = ops.sum(ops.square(scaled), axis=-1, keepdims=True)  # >= 1 unless zero
    floor = ops.square(min_norm / scale)  # inf for rows far below min_norm: they become 0
    # Zero rows divide by 1 (the result is replaced below; no inf may reach their gradient).
    divisor = ops.maximum(ops.where(is_zero, ops.ones_like(squared_norm), squared_norm), floor)
    normalized = scaled * ops.rsqrt(divisor)
    frozen = ops.stop_gradient(squared_norm)
    weight = ops.where(frozen >= floor, ops.ones_like(frozen),
                       frozen / ops.where(floor > 0, floor, ops.ones_like(floor)))
    return ops.where(is_zero, x, normalized), ops.where(is_zero, ops.zeros_like(weight), weight)


def l2_normalize(x, min_norm: float | None = None):
    """Scales every row of ``x`` to unit L2 norm, independently of the row's scale.

    Each row is first divided by a power of two near its largest magnitude (exact), so nothing
    overflows or underflows when it is squared. Rows whose norm is below ``min_norm`` are scaled
    by ``1 / min_norm`` instead; an all-zero row stays zero (with gradient 1).

    Args:
      x: ``[..., D]`` floating tensor.
      min_norm: the smallest norm that is normalised (default: :func:`min_norm_for` the dtype).

    Returns:
      A tensor like ``x``.
    """
    return _normalize_rows(x, min_norm)[0]


def _safe_sqrt(squared):
    """``sqrt`` that is exactly 0 with a zero (finite) gradient where ``squared <= 0``."""
    from keras import ops

    is_zero = squared <= 0.0
    root = ops.sqrt(ops.where(is_zero, ops.ones_like(squared), squared))
    return ops.where(is_zero, ops.zeros_like(squared), root)


def _zero_diagonal(matrix):
    """``matrix`` (``[R, N]``, ``R <= N``) with its entries ``(i, i)`` set to 0."""
    from keras import ops

    rows, columns = ops.shape(matrix)[0], ops.shape(matrix)[1]
    return ops.where(ops.eye(rows, columns, dtype="bool"), ops.zeros_like(matrix), matrix)


def _static_or_dynamic(tensor, axis):
    from keras import ops

    size = tensor.shape[axis]
    return size if size is not None else ops.shape(tensor)[axis]


def _gram_coordinates(x):
    """``(coordinates, scale)``: ``x`` divided by a power-of-two ``scale`` (so ``|.| < 2``) and,
    for a batch away from the origin, shifted by its rounded mean.

    Differences of rows are those of ``x / scale``; ``scale`` and the shift carry no gradient.
    The squared distances are ``scale**2`` times those of the coordinates.
    """
    from keras import ops

    scale = power_of_two_scale(ops.max(ops.abs(x)))
    x = x / scale  # |x| < 2: nothing below overflows
    # When the batch sits away from the origin (its mean is longer than its RMS spread), shift
    # it by its mean rounded to multiples of 2**-8 of the scaled values: distances do not
    # change, cancellation shrinks to the spread of the batch, and inputs with few significant
    # bits (dyadic test data) stay exact. A batch around the origin is left as it is, so small
    # rows among large ones keep errors relative to their own norms.
    frozen = ops.stop_gradient(x)
    centre = ops.mean(frozen, axis=0)
    spread = ops.mean(ops.sum(ops.square(frozen - centre), axis=1))
    offset = ops.where(ops.sum(ops.square(centre)) > spread, centre, ops.zeros_like(centre))
    return x - ops.round(offset * _CENTRE_GRID) / _CENTRE_GRID, scale


def _squared_from_coordinates(x, scale, rounding=0.0, rows=None):
    """Squared distances of the rows ``x`` from :func:`_gram_coordinates`, ``>= 0``, with an
    exactly zero diagonal and exact zeros for identical rows.

    ``rounding``: how far apart (squared, in units of the unscaled rows) identical rows may
    already be by rounding before this function (0 when they are bitwise equal). ``rows``: only
    the first ``rows`` rows of the matrix (``[rows, N]``; all of them when ``None``).
    """
    import keras
    from keras import ops

    roundoff = _UNIT_ROUNDOFF.get(keras.backend.standardize_dtype(x.dtype), 2.0**-24)
    if rows is None:
        gram = ops.matmul(x, ops.transpose(x))
        norms = ops.diagonal(gram)  # the same dot products as the off-diagonal entries
        total = ops.expand_dims(norms, 1) + ops.expand_dims(norms, 0)
        squared = total - 2.0 * gram  # the diagonal is exactly 0
    else:
        squared, total = _leading_rows_squared(x, rows)
    # For identical rows i, j, |squared_ij| <= (2 D + 3) u (n_i + n_j) whatever order the
    # matmul sums in (u: unit roundoff), and matmul kernels of TensorFlow and PyTorch on CPU do
    # round the diagonal and off-diagonal entries differently. Entries within that bound carry
    # no significant digit: they are set to exactly 0 (as are negative entries).
    bound = (2.0 * _static_or_dynamic(x, 1) + 6.0) * roundoff
    threshold = ops.stop_gradient(total) * bound
    if rounding:
        threshold = threshold + rounding / ops.square(scale)
    return ops.where(squared <= threshold, ops.zeros_like(squared), squared)


# Columns per block of a [rows, N] product: XLA on a CPU (jaxlib 0.10) crashed compiling the
# gradient of the whole product once N reached 4,096; blocks of 2,048 columns compile.
_COLUMN_BLOCK = 2048


def _leading_rows_squared(x, rows):
    """``(squared, total)``: the unthresholded squared distances of the first ``rows`` rows of
    ``x`` to all of them, ``[rows, N]`` with a zero diagonal, and the sums of squared norms
    they were computed from, a block of :data:`_COLUMN_BLOCK` columns at a time."""
    from keras import ops

    norms = ops.sum(ops.square(x), axis=1)
    anchors, anchor_norms = x[:rows], ops.expand_dims(norms[:rows], 1)
    size = x.shape[0]
    block = _COLUMN_BLOCK if size is not None else None  # a dynamic size: one block
    starts = range(0, size, block) if block else [0]
    squared, totals = [], []
    for start in starts:
        stop = start + block if block else None
        total = anchor_norms + ops.expand_dims(norms[start:stop], 0)
        squared.append(total - 2.0 * ops.matmul(anchors, ops.transpose(x[start:stop])))
        totals.append(total)
    if len(squared) == 1:
        return _zero_diagonal(squared[0]), totals[0]
    return (_zero_diagonal(ops.concatenate(squared, axis=1)),
            ops.concatenate(totals, axis=1))


def pairwise_squared_l2(embeddings):
    """Squared Euclidean distances, ``>= 0``, with an exactly zero diagonal.

    Identical rows are at distance exactly 0; the result is ``inf`` only where the squared
    distance exceeds the dtype's range. Needs only ``[B, B]`` matrices (never ``[B, B, D]``).
    """
    return pairwise_distances(embeddings, SQUARED_L2)


def pairwise_distances(embeddings, distance: str = "L2", *, min_norm: float | None = None,
                       rows: int | None = None):
    """Computes the ``[B, B]`` matrix of distances between the rows of ``embeddings``.

    Args:
      embeddings: a ``[B, D]`` floating tensor of any Keras backend.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"``.
      min_norm: for ``"angular"`` and ``"normalized-L2"``, the smallest row norm that is
        normalised (see :func:`l2_normalize`; default :func:`min_norm_for` the dtype). A zero
        row has cosine 0 with every row.
      rows: compute only the first ``rows`` rows of the matrix, ``[rows, B]``: the distances
        from those embeddings to every embedding (what a cross-batch memory needs, with the
        batch first and the memory after it), in ``O(rows * B)`` memory. ``None``: all rows.

    Returns:
      A ``[B, B]`` (or ``[rows, B]``) tensor of the same dtype as ``embeddings`` with a zero
      diagonal, exact zeros between identical (nonzero) rows, and ``inf`` only where a distance
      exceeds the dtype's range.

    Raises:
      ValueError: ``distance`` is not one of the canonical names.

    Example:
      >>> import numpy as np
      >>> from tripletlab.distances import pairwise_distances
      >>> x = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
      >>> np.round(np.asarray(pairwise_distances(x, "L2"), dtype=float), 4).tolist()
      [[0.0, 1.4142], [1.4142, 0.0]]
    """
    if rows is None:
        return _geometry(embeddings, distance, min_norm, differentiable=True).differentiable
    return _leading_rows(embeddings, distance, min_norm, rows)


class DistanceGeometry(NamedTuple):
    r"""A distance matrix computed without autodiff, and what its derivative needs.

    Every canonical distance is a function of the squared differences of ``coordinates``, so

    .. math::
        \frac{\partial d_{ij}}{\partial r_i} = c(d_{ij})\,(y_i - y_j)

    where :math:`r` are ``rows`` and :math:`y` are ``coordinates``; :meth:`slope` gives
    :math:`c`. A loss with a known derivative :math:`W = \partial L / \partial d` can then send
    its gradient to the embeddings through ``rows`` (``O(B D)`` autodiff for a few entries per
    row) instead of through the ``[B, B]`` matrix (see :mod:`tripletlab.mining.distance_matrix`).

    Attributes:
      distance: the canonical distance name.
      matrix: ``[B, B]`` distances, equal to :func:`pairwise_distances` (no gradient).
      rows: ``[B, D]`` the embeddings (``"L2"``, ``"squared-L2"``) or their normalised rows
        (``"angular"``, ``"normalized-L2"``), differentiable as the embeddings are.
      coordinates: ``[B, D]`` ``rows / scale`` shifted by a constant, ``|.| < 2`` (no gradient):
        the rows the Gram form was computed from.
      scale: the power of two ``rows`` were divided by (no gradient).
      differentiable: the same ``[B, B]`` distances with autodiff (``matrix`` is this without
        gradient, so under ``jit`` nothing is computed twice, and it is dropped when unused);
        ``None`` on eager PyTorch, where ``matrix`` is computed in place instead.
    """

    distance: str
    matrix: object
    rows: object
    coordinates: object
    scale: object
    differentiable: object = None

    def slope(self, distances):
        """:math:`c(d)` for entries ``distances`` of :attr:`matrix` (any shape); 0 where ``d`` is 0
        (exact zeros, identical rows included, have a zero gradient)."""
        from keras import ops

        positive = distances > 0
        if self.distance in (L2, NORMALIZED_L2):
            # d = scale * sqrt(q(y)) with y = rows / scale + constant: c = scale / d.
            safe = ops.where(positive, distances, ops.ones_like(distances))
            return ops.where(positive, self.scale / safe, ops.zeros_like(distances))
        # squared-L2: d = scale**2 q(y), c = 2 scale; angular: d = w + scale**2 q(y) / 2, c = scale.
        factor = 2.0 * self.scale if self.distance == SQUARED_L2 else self.scale
        return ops.where(positive, factor * ops.ones_like(distances), ops.zeros_like(distances))


def distance_geometry(embeddings, distance: str = "L2", *, min_norm: float | None = None):
    """The :class:`DistanceGeometry` of ``embeddings``: the same matrix as
    :func:`pairwise_distances` (computed without autodiff) and the rows its gradient goes to."""
    return _geometry(embeddings, distance, min_norm, differentiable=not is_eager_torch())


def _rows_to_compare(embeddings, distance, min_norm):
    """``(rows, weight, rounding)``: the rows the distance compares (the embeddings, or their
    normalised rows with their exact squared norms ``weight``), and how far apart identical
    rows may be after normalising (see :func:`_squared_from_coordinates`)."""
    import keras

    if distance not in NORMALIZED_DISTANCES:
        return embeddings, None, 0.0
    rows, weight = _normalize_rows(embeddings, min_norm)
    # Two normalisations of one row differ by at most ~2 (D + 2) u per unit of norm (the row
    # sums may be taken in different orders at different positions).
    dim = _static_or_dynamic(embeddings, 1)
    roundoff = _UNIT_ROUNDOFF.get(keras.backend.standardize_dtype(embeddings.dtype), 2.0**-24)
    return rows, weight, (4.0 * (dim + 2.0) * roundoff) ** 2


def _leading_rows(embeddings, distance, min_norm, rows):
    """The first ``rows`` rows of :func:`pairwise_distances`, differentiable."""
    from keras import ops

    check_distance(distance)
    embeddings = ops.convert_to_tensor(embeddings)
    compared, weight, rounding = _rows_to_compare(embeddings, distance, min_norm)
    coordinates, scale = _gram_coordinates(compared)
    squared = _squared_from_coordinates(coordinates, scale, rounding, rows=rows)
    return _from_squared(distance, squared, scale, weight, rows=rows)


def _geometry(embeddings, distance, min_norm, differentiable):
    from keras import ops

    check_distance(distance)
    embeddings = ops.convert_to_tensor(embeddings)
    if embeddings.shape[0] == 0:
        empty = ops.zeros((0, 0), dtype=embeddings.dtype)
        return DistanceGeometry(distance, empty, embeddings, embeddings,
                                ops.ones((), dtype=embeddings.dtype), empty)
    rows, weight, rounding = _rows_to_compare(embeddings, distance, min_norm)
    coordinates, scale = _gram_coordinates(rows)
    frozen = ops.stop_gradient(coordinates)
    if differentiable:
        squared = _squared_from_coordinates(coordinates, scale, rounding)
        matrix = _from_squared(distance, squared, scale, weight)
        return DistanceGeometry(distance, ops.stop_gradient(matrix), rows, frozen, scale, matrix)
    if distance in (L2, SQUARED_L2):
        matrix = _torch_frozen_distances(frozen, scale, distance)
    else:
        matrix = _from_squared(distance, _squared_from_coordinates(frozen, scale, rounding),
                               scale, weight)
    return DistanceGeometry(distance, matrix, rows, frozen, scale)


def is_eager_torch() -> bool:
    """Whether code runs on the PyTorch backend outside ``torch.compile``, where in-place fast
    paths on buffers without autodiff are possible (and pay off: see
    :func:`_torch_frozen_distances`)."""
    import keras

    if keras.backend.backend() != "torch":
        return False
    import torch

    return not torch.compiler.is_compiling()


# Rows per block of the in-place PyTorch distances: blocks of at most 2**21 entries (8 MB).
_TORCH_BLOCK_ELEMENTS = 2**21


def _torch_frozen_distances(x, scale, distance):
    """``"L2"`` or ``"squared-L2"`` distances of the coordinates ``x`` on eager PyTorch, with the
    same operations (and values) as :func:`_squared_from_coordinates` and :func:`_from_squared`,
    done in place on one ``[B, B]`` buffer, a block of rows at a time.

    Eager PyTorch allocates every intermediate ``[B, B]`` result anew, and from B = 2,900 (32 MB
    in float32) glibc maps each one from the kernel and unmaps it when freed, so every
    elementwise operation also pays for faulting in fresh pages: at B = 4096 an addition took
    19 ms against 1.7 ms in place. Without autodiff nothing needs the intermediate results.
    """
    import torch

    with torch.no_grad():
        size, dim = x.shape
        roundoff = _UNIT_ROUNDOFF.get(str(x.dtype).removeprefix("torch."), 2.0**-24)
        bound = (2.0 * dim + 6.0) * roundoff
        squared = x @ x.T
        norms = squared.diagonal().clone()
        block = max(1, _TORCH_BLOCK_ELEMENTS // max(size, 1))
        for start in range(0, size, block):
            rows = squared[start:start + block]
            total = norms[start:start + block, None] + norms[None, :]
            torch.add(total, rows, alpha=-2.0, out=rows)  # total - 2 gram (2 gram is exact)
            rows.masked_fill_(rows <= total.mul_(bound), 0.0)
            rows.sqrt_().mul_(scale)
            if distance == SQUARED_L2:
                rows.square_()
        return squared


def _from_squared(distance, squared, scale, weight, rows=None):
    """The distances from the thresholded squared distances of the scaled rows (the first
    ``rows`` rows of the matrix when given)."""
    from keras import ops

    if distance == L2:
        return scale * _safe_sqrt(squared)
    if distance == SQUARED_L2:
        # Squaring the distance (not scale**2 * squared) keeps the backward pass's intermediate
        # values near the true gradient, 2 (x_i - x_j), so they overflow no sooner than it does.
        return ops.square(scale * _safe_sqrt(squared))
    # 1 - cos_ij = 1 - (w_i + w_j - |u_i - u_j|^2) / 2 with the rows' exact squared norms w
    # (1 for normalised rows), so identical rows give exactly 0 and zero rows cosine 0.
    weight = ops.reshape(weight, (-1,))
    row_weight = weight if rows is None else weight[:rows]
    offset = 1.0 - 0.5 * (ops.expand_dims(row_weight, 1) + ops.expand_dims(weight, 0))
    angular = _zero_diagonal(offset + (0.5 * scale) * (scale * squared))
    if distance == ANGULAR:
        return angular
    return _safe_sqrt(2.0 * angular)


def paired_distances(first, second, distance: str = "L2", *, min_norm: float | None = None):
    """Distances between matching rows of ``first`` and ``second`` (both ``[B, D]``) -> ``[B]``.

    Accepts the canonical names and, for the Siamese-network workflow, ``"mean-squared"``
    (the mean over embedding dimensions of the squared difference). Identical rows give exactly
    0; rows are scaled by powers of two before squaring, as in :func:`pairwise_distances`.
    """
    from keras import ops

    check_choice("distance", distance, PAIRED_DISTANCES)
    first, second = ops.convert_to_tensor(first), ops.convert_to_tensor(second)
    if distance in NORMALIZED_DISTANCES:
        first, first_weight = _normalize_rows(first, min_norm)
        second, second_weight = _normalize_rows(second, min_norm)
        squared = ops.sum(ops.square(first - second), axis=-1)
        offset = 1.0 - 0.5 * ops.reshape(first_weight + second_weight, ops.shape(squared))
        angular = offset + 0.5 * squared
        return angular if distance == ANGULAR else _safe_sqrt(2.0 * angular)
    peak = ops.maximum(ops.max(ops.abs(first), axis=-1), ops.max(ops.abs(second), axis=-1))
    scale = power_of_two_scale(peak)
    row_scale = ops.expand_dims(scale, -1)
    squared = ops.sum(ops.square(first / row_scale - second / row_scale), axis=-1)
    distance_ = scale * _safe_sqrt(squared)
    if distance == L2:
        return distance_
    squared = ops.square(distance_)
    if distance == MEAN_SQUARED:
        return squared / ops.cast(ops.shape(first)[-1], squared.dtype)
    return squared
