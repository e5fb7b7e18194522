"""Triplet losses with online mining as pure functions of ``(labels, embeddings)``.

Each loss is built from two layers:

* ``*_terms(labels, distances, ...)`` works on a ``[B, B]`` distance matrix and returns the
  per-anchor sums of the loss terms and the normaliser, so that
  ``loss = sum(per_anchor) / normalizer``. The Keras classes turn the same terms into
  per-anchor values (so ``sample_weight`` weights anchors) and the compat modules reuse them with
  their own distance functions.
* ``*_triplet_loss(labels, embeddings, ...)`` validates the inputs, computes the distances in
  float32 for half-precision inputs and returns the scalar loss in the input dtype.

No function builds a ``B x B x B`` tensor: semi-hard and batch-all sort each anchor's negatives
once and search them (``O(B^2 log B)`` time, ``O(B^2)`` memory); hard mining is a masked max/min.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

from tripletlab._checks import check_bool, check_number
from tripletlab.distances import (
    check_distance,
    min_norm_for,
    pairwise_distances,
    power_of_two_scale,
)
from tripletlab.losses.inputs import bounded_distances, prepare_inputs
from tripletlab.mining import (
    attach_gradient,
    count_at_or_below,
    count_below,
    hardest_negative,
    hardest_positive,
    label_masks,
    map_row_chunks,
    negative_hinge_sums,
)

# omoindrot's epsilons: a triplet is "positive" when its loss exceeds this, and it is added to
# the denominators so that a batch without (positive) triplets gives 0, not NaN.
_POSITIVE_LOSS_THRESHOLD = 1e-16
_DENOMINATOR_EPSILON = 1e-16


class TripletTerms(NamedTuple):
    """A mining loss before reduction: ``loss = sum(per_anchor) / normalizer``.

    Attributes:
      per_anchor: ``[B]`` sum of each anchor's loss terms.
      normalizer: scalar the sum is divided by (already safe: never 0).
      fraction_positive: scalar fraction of valid triplets with a positive loss (batch-all
        only; ``None`` for the other losses).
      scale: the power of two the distances were divided by while mining (see
        :func:`mining_scale`); ``per_anchor`` is in those units.
    """

    per_anchor: object
    normalizer: object
    fraction_positive: object = None
    scale: object = 1.0

    def loss(self):
        """The reduced scalar loss."""
        return ops.sum(self.per_anchor) / self.normalizer * self.scale

    def per_anchor_losses(self):
        """``[B]`` values whose mean is :meth:`loss` (what the Keras classes return)."""
        batch = ops.cast(ops.shape(self.per_anchor)[0], self.per_anchor.dtype)
        return self.per_anchor * (batch / self.normalizer) * self.scale


def check_loss_arguments(margin, soft, *, distance=None):
    """Validates the arguments shared by every mining loss (errors in Keras' form)."""
    check_number("margin", margin, minimum=0.0)
    check_bool("soft", soft)
    if distance is not None:
        check_distance(distance)


# Hinge losses mine on distances divided by a power of two when they exceed 2**64, so that the
# sums over pairs and triplets stay finite for any finite distance (exact: the hinge is
# positively homogeneous when the margin is scaled too). The scaled distances stay below 2**33,
# which keeps the backward pass (multiplied by the scale before it is divided again) finite.
_MINING_SCALE_ABOVE = 2.0**64
_MINING_HEADROOM = 2.0**-32


def mining_scale(distances, soft):
    """The power of two by which a hinge loss divides ``distances`` (and the margin) while mining.

    1 unless the largest distance exceeds ``2**64``; always 1 for the soft margin, which is not
    homogeneous (soft losses on distances near the top of the float range can overflow).
    """
    if soft:
        return 1.0
    peak = ops.stop_gradient(ops.max(distances))
    large = peak > _MINING_SCALE_ABOVE
    return ops.where(large, power_of_two_scale(peak) * _MINING_HEADROOM, ops.ones_like(peak))


def _hinge_or_soft(gap, margin, soft):
    # soft: log(1 + exp(gap)) with a stable softplus (TF Addons' log1p(exp(.)) overflows in
    # float32 for gaps above ~88, e.g. with squared-L2); the margin does not take part.
    return ops.softplus(gap) if soft else ops.relu(gap + margin)


# ---------------------------------------------------------------------------------------------
# Terms on a distance matrix.
# ---------------------------------------------------------------------------------------------


def _take(rows, positions):
    """``rows[r, positions[r, q]]`` with positions clipped into range."""
    last = ops.shape(rows)[1] - 1
    return ops.take_along_axis(rows, ops.clip(positions, 0, last), axis=1)


def _split_evenly(weights, targets):
    """Spreads each row's ``weights`` ``[R]`` evenly over the row's true ``targets`` ``[R, B]``."""
    targets = ops.cast(targets, weights.dtype)
    share = weights / ops.maximum(ops.sum(targets, axis=1), 1.0)
    return targets * ops.expand_dims(share, 1)


def _term_and_slope(gap, margin, soft):
    """A pair's loss term for ``gap = d(a,p) - d(a,n)`` and its derivative w.r.t. ``gap``."""
    if soft:
        return ops.softplus(gap), ops.sigmoid(gap)
    value = ops.relu(gap + margin)
    return value, ops.cast(value > 0, gap.dtype)


def _semi_hard_rows(d, positive, negative, margin, soft):
    """Semi-hard loss sums and ``d sums / d d`` for a slice of anchors, without autodiff.

    The chosen negative of a positive at distance ``t`` is a function of ``t`` alone (the
    nearest negative strictly beyond ``t``), found by a rank search over the sorted negatives.
    The gradient sends each pair's slope to its positive (+) and to its chosen negative (-).
    Negative ``n`` is chosen by the positives with ``prev(n) <= d(a,p) < d(a,n)``, ``prev(n)``
    being the next smaller negative distance; prefix sums of the slopes over the sorted positive
    distances give that total, so no index is gathered or scattered.
    """
    dtype = d.dtype
    infinity = ops.full_like(d, float("inf"))
    zeros = ops.zeros_like(d)
    negative_count = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
    positive_count = ops.sum(ops.cast(positive, "int32"), axis=1, keepdims=True)
    has_negative = negative_count > 0
    sorted_negative = ops.sort(ops.where(negative, d, infinity), axis=1)
    row_minimum = ops.min(d, axis=1, keepdims=True)

    def chosen_negative(thresholds, rank=None):
        if rank is None:
            rank = count_at_or_below(sorted_negative, thresholds)
        found = rank < negative_count
        # found: the first negative beyond the threshold; else the farthest negative.
        value = _take(sorted_negative, ops.minimum(rank, negative_count - 1))
        return ops.where(has_negative, value, row_minimum), found

    # Loss and positive-side slopes, per (anchor, column).
    at_or_below = count_at_or_below(sorted_negative, d)
    negative_distance, found = chosen_negative(d, at_or_below)
    values, slopes = _term_and_slope(d - negative_distance, margin, soft)
    values, slopes = ops.where(positive, values, zeros), ops.where(positive, slopes, zeros)

    # Slopes of the positives that found a negative beyond them, in sorted-distance order.
    sorted_positive = ops.sort(ops.where(positive, d, infinity), axis=1)
    is_positive_slot = ops.expand_dims(ops.arange(ops.shape(d)[1], dtype="int32"), 0) < positive_count
    sorted_negative_distance, sorted_found = chosen_negative(sorted_positive)
    _, sorted_slopes = _term_and_slope(sorted_positive - sorted_negative_distance, margin, soft)
    sorted_slopes = ops.where(ops.logical_and(is_positive_slot, sorted_found), sorted_slopes, zeros)
    prefix = ops.concatenate([zeros[:, :1], ops.cumsum(sorted_slopes, axis=1)], axis=1)
    # slope_below[a, k]: the slopes of the positives closer than the k-th sorted negative.
    slope_below = _take(prefix, count_below(sorted_positive, sorted_negative))

    # A negative at sorted position k (the first of its ties) is chosen by the positives with
    # sorted_negative[k - 1] <= d(a, p) < sorted_negative[k].
    below = count_below(sorted_negative, d)
    chosen_by = _take(slope_below, below) - ops.where(below > 0, _take(slope_below, below - 1), zeros)
    ties = ops.cast(at_or_below - below, dtype)
    chosen_by = chosen_by / ops.maximum(ties, 1.0)  # tied negatives share
    negative_slopes = ops.where(negative, chosen_by, zeros)

    # Positives without a negative beyond them fall back to the farthest negative; anchors
    # without negatives to the row minimum.
    fallback = ops.sum(ops.where(found, zeros, slopes), axis=1)
    farthest = ops.logical_and(negative, d == _take(sorted_negative, negative_count - 1))
    nearest = d == row_minimum
    fallback_targets = ops.where(has_negative, farthest, nearest)
    negative_slopes = negative_slopes + _split_evenly(fallback, fallback_targets)

    return ops.sum(values, axis=1), slopes - negative_slopes


def semi_hard_terms(labels, distances, margin=1.0, soft=False):
    """TF Addons' semi-hard mining on a ``[B, B]`` distance matrix.

    For every ordered positive pair ``(a, p)`` the negative is the nearest one strictly farther
    than ``p``; if none, the farthest negative; if ``a`` has no negatives, the row minimum of
    ``distances``. The mean is over all positive pairs (zero-loss pairs included); a batch
    without positive pairs gives 0. Anchors are processed in row slices without autodiff
    (see :mod:`tripletlab.mining.chunks`), so memory stays a few ``[B, B]`` matrices.
    """
    positive, negative = label_masks(labels)
    scale = mining_scale(distances, soft)
    distances, margin = distances / scale, margin / scale
    values, coefficients = map_row_chunks(
        lambda d, p, n: _semi_hard_rows(d, p, n, margin, soft),
        ops.stop_gradient(distances), positive, negative)
    num_pairs = ops.sum(ops.cast(positive, distances.dtype))
    per_anchor = attach_gradient(distances, values, coefficients)
    return TripletTerms(per_anchor, ops.maximum(num_pairs, 1.0), scale=scale)


def hard_terms(labels, distances, margin=1.0, soft=False):
    """Batch-hard mining (TF Addons ``TripletHardLoss``, omoindrot ``batch_hard``).

    Per anchor: hardest positive (an anchor without positives takes the row minimum, 0 for
    distances with a zero diagonal) and hardest negative (none: the row maximum). The mean is
    over all ``B`` anchors.
    """
    positive, negative = label_masks(labels)
    scale = mining_scale(distances, soft)
    distances, margin = distances / scale, margin / scale
    positive_distance, has_positive = hardest_positive(distances, positive)
    negative_distance, has_negative = hardest_negative(distances, negative)
    positive_distance = ops.where(has_positive, positive_distance, ops.min(distances, axis=1))
    negative_distance = ops.where(has_negative, negative_distance, ops.max(distances, axis=1))
    per_anchor = _hinge_or_soft(positive_distance - negative_distance, margin, soft)
    batch = ops.cast(ops.shape(distances)[0], distances.dtype)
    return TripletTerms(per_anchor, batch, scale=scale)


def batch_all_terms(labels, distances, margin=0.5, soft=False):
    """omoindrot's batch-all: every valid triplet, mean over the triplets with a positive loss.

    With ``soft=True`` each triplet contributes ``softplus(d(a, p) - d(a, n))``; that sum has no
    prefix-sum form, so it is computed anchor by anchor (``O(B^3)`` time, ``O(B^2)`` memory) with
    an explicit gradient instead of storing ``B`` intermediate ``[B, B]`` blocks for autodiff.
    """
    positive, negative = label_masks(labels)
    scale = mining_scale(distances, soft)
    distances, margin = distances / scale, margin / scale
    dtype = distances.dtype
    num_positives = ops.sum(ops.cast(positive, dtype), axis=1)
    num_negatives = ops.sum(ops.cast(negative, dtype), axis=1)
    num_valid = ops.sum(num_positives * num_negatives)
    if soft:
        per_anchor, num_positive_triplets = _soft_batch_all_per_anchor(distances, positive, negative)
    else:
        values, counts, coefficients = map_row_chunks(
            lambda d, p, n: _batch_all_rows(d, p, n, margin),
            ops.stop_gradient(distances), positive, negative)
        per_anchor = attach_gradient(distances, values, coefficients)
        num_positive_triplets = ops.sum(counts)
    normalizer = num_positive_triplets + _DENOMINATOR_EPSILON
    fraction = num_positive_triplets / (num_valid + _DENOMINATOR_EPSILON)
    return TripletTerms(per_anchor, normalizer, fraction, scale)


def _batch_all_rows(d, positive, negative, margin):
    """Batch-all hinge sums, positive-triplet counts and ``d sums / d d`` for a slice of anchors.

    With the anchor's negatives sorted, ``sum_n max(t - d(a,n), 0)`` for ``t = d(a,p) + margin``
    is ``count * t - (sum of the negatives below t)`` from prefix sums; the slope is ``+count``
    at ``(a, p)`` and ``-#{p : d(a,p) + margin > d(a,n)}`` at ``(a, n)``, a rank search over the
    sorted thresholds. No autodiff, no ``B x B x B`` tensor.
    """
    dtype = d.dtype
    zeros = ops.zeros_like(d)
    infinity = ops.full_like(d, float("inf"))
    thresholds = d + margin
    sorted_negative = ops.sort(ops.where(negative, d, infinity), axis=1)
    negative_count = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
    sums, counts = negative_hinge_sums(sorted_negative, negative_count, thresholds)
    counts = ops.where(positive, ops.cast(counts, dtype), zeros)
    positive_count = ops.sum(ops.cast(positive, dtype), axis=1, keepdims=True)
    sorted_thresholds = ops.sort(ops.where(positive, thresholds, infinity), axis=1)
    not_violating = ops.cast(count_at_or_below(sorted_thresholds, d), dtype)
    negative_slopes = ops.where(negative, positive_count - not_violating, zeros)
    values = ops.sum(ops.where(positive, sums, zeros), axis=1)
    return values, ops.sum(counts, axis=1), counts - negative_slopes


def _soft_batch_all_per_anchor(distances, positive, negative):
    """Soft batch-all by rows: the loss sums and their gradient, without a ``B^3`` tensor."""
    frozen = ops.stop_gradient(distances)

    def one_anchor(row):
        row_distances, row_positive, row_negative = row
        gaps = ops.expand_dims(row_distances, 1) - ops.expand_dims(row_distances, 0)
        valid = ops.logical_and(ops.expand_dims(row_positive, 1), ops.expand_dims(row_negative, 0))
        losses = ops.where(valid, ops.softplus(gaps), ops.zeros_like(gaps))
        slopes = ops.where(valid, ops.sigmoid(gaps), ops.zeros_like(gaps))
        # d loss / d d(a, p) = sum_n slope;  d loss / d d(a, n) = -sum_p slope.
        gradient = ops.sum(slopes, axis=1) - ops.sum(slopes, axis=0)
        count = ops.sum(ops.cast(losses > _POSITIVE_LOSS_THRESHOLD, losses.dtype))
        return ops.sum(losses), count, gradient

    sums, counts, gradient = ops.map(one_anchor, (frozen, positive, negative))
    return attach_gradient(distances, sums, gradient), ops.sum(counts)


# ---------------------------------------------------------------------------------------------
# Public functional forms.
# ---------------------------------------------------------------------------------------------


def _distances_for(labels, embeddings, distance):
    labels, embeddings, input_dtype = prepare_inputs(labels, embeddings)
    distances = pairwise_distances(embeddings, distance, min_norm=min_norm_for(input_dtype))
    return labels, bounded_distances(distances, distance), input_dtype


def semi_hard_triplet_loss(labels, embeddings, margin=1.0, distance="L2", soft=False):
    """Triplet loss with TF Addons' semi-hard negative mining.

    .. math::
        \\mathcal{L} = \\frac{1}{|P|} \\sum_{(a, p) \\in P}
        \\max\\bigl(m + d(a, p) - d(a, n^*(a, p)), 0\\bigr),\\quad
        n^* = \\operatorname*{argmin}_{n:\\, y_n \\ne y_a,\\ d(a, n) > d(a, p)} d(a, n)

    where :math:`P` is the set of ordered pairs ``a != p`` with equal labels, :math:`m` is
    ``margin`` and :math:`d` is ``distance``. When no negative is farther than ``p``,
    :math:`n^*` is the farthest negative; when ``a`` has no negatives, :math:`d(a, n^*)` is the
    row minimum of the distance matrix. The margin does not take part in choosing :math:`n^*`.
    With ``soft=True`` each pair contributes :math:`\\log(1 + e^{d(a,p) - d(a,n^*)})` and
    ``margin`` is unused. Unlike TF Addons, a batch without positive pairs gives 0, not NaN.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids (float-encoded integers accepted).
      embeddings: ``[B, D]`` embeddings (float16/bfloat16 are computed in float32).
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: use the soft margin.

    Returns:
      The scalar loss, in the dtype of ``embeddings``.

    Example:
      >>> import numpy as np
      >>> import tripletlab as tl
      >>> labels = np.array([0, 0])
      >>> embeddings = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
      >>> round(float(tl.losses.semi_hard_triplet_loss(labels, embeddings)), 5)
      2.41421
    """
    check_loss_arguments(margin, soft, distance=distance)
    labels, distances, input_dtype = _distances_for(labels, embeddings, distance)
    return ops.cast(semi_hard_terms(labels, distances, margin, soft).loss(), input_dtype)


def hard_triplet_loss(labels, embeddings, margin=1.0, soft=False, distance="L2"):
    """Triplet loss with batch-hard mining (TF Addons' ``TripletHardLoss``).

    .. math::
        \\mathcal{L} = \\frac{1}{B} \\sum_{a=1}^{B}
        \\max\\bigl(\\max_{p \\in P(a)} d(a, p) - \\min_{n \\in N(a)} d(a, n) + m, 0\\bigr)

    with :math:`P(a)` the other samples of ``a``'s class, :math:`N(a)` the samples of other
    classes and :math:`m` = ``margin``. An anchor without positives uses the row minimum of the
    distance matrix (0 with a zero diagonal) as its positive distance and stays in the mean; one
    without negatives uses the row maximum. ``soft=True`` replaces the hinge by
    :math:`\\log(1 + e^{x})` of the same gap (``margin`` unused), computed stably.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m` (``>= 0``).
      soft: use the soft margin.
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.

    Returns:
      The scalar loss, in the dtype of ``embeddings``.

    Example:
      >>> import numpy as np
      >>> import tripletlab as tl
      >>> labels = np.array([0, 0, 1])
      >>> embeddings = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 2.5]], dtype="float32")
      >>> round(float(tl.losses.hard_triplet_loss(labels, embeddings, margin=1.0)), 4)
      0.5316
    """
    check_loss_arguments(margin, soft, distance=distance)
    labels, distances, input_dtype = _distances_for(labels, embeddings, distance)
    return ops.cast(hard_terms(labels, distances, margin, soft).loss(), input_dtype)


def batch_all_triplet_loss(labels, embeddings, margin=0.5, distance="L2", soft=False):
    """Triplet loss over all valid triplets (omoindrot's ``batch_all_triplet_loss``).

    .. math::
        \\mathcal{L} = \\frac{\\sum_{(a,p,n) \\in T} \\ell_{apn}}
                            {|\\{(a,p,n) \\in T : \\ell_{apn} > 10^{-16}\\}| + 10^{-16}},\\quad
        \\ell_{apn} = \\max(d(a, p) - d(a, n) + m, 0)

    where :math:`T` holds every triplet of distinct ``a, p, n`` with ``y_p = y_a != y_n`` and
    :math:`m` = ``margin``: the mean over triplets that still violate the margin, 0 when none.
    ``soft=True`` uses :math:`\\ell_{apn} = \\log(1 + e^{d(a,p) - d(a,n)})` (``margin`` unused).

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: use the soft margin.

    Returns:
      ``(loss, fraction_positive)``: the scalar loss and the fraction of valid triplets whose
      loss is positive, both in the dtype of ``embeddings``.

    Example:
      >>> import numpy as np
      >>> import tripletlab as tl
      >>> labels = np.array([0, 0, 1])
      >>> embeddings = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.2]], dtype="float32")
      >>> loss, fraction = tl.losses.batch_all_triplet_loss(labels, embeddings, margin=0.5)
      >>> round(float(loss), 4), float(fraction)
      (0.3, 0.5)
    """
    check_loss_arguments(margin, soft, distance=distance)
    labels, distances, input_dtype = _distances_for(labels, embeddings, distance)
    terms = batch_all_terms(labels, distances, margin, soft)
    return ops.cast(terms.loss(), input_dtype), ops.cast(terms.fraction_positive, input_dtype)
