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
from tripletlab.distances import check_distance, pairwise_distances
from tripletlab.losses.inputs import prepare_inputs
from tripletlab.mining import (
    hardest_negative,
    hardest_positive,
    label_masks,
    negative_hinge_sums,
    semi_hard_negative,
    sorted_negatives,
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
    """

    per_anchor: object
    normalizer: object
    fraction_positive: object = None

    def loss(self):
        """The reduced scalar loss."""
        return ops.sum(self.per_anchor) / self.normalizer


def check_loss_arguments(margin, soft, *, distance=None):
    """Validates the arguments shared by every mining loss (errors in Keras' form)."""
    check_number("margin", margin, minimum=0.0)
    check_bool("soft", soft)
    if distance is not None:
        check_distance(distance)


def _hinge_or_soft(gap, margin, soft):
    # soft: log(1 + exp(gap)) with a stable softplus (TF Addons' log1p(exp(.)) overflows in
    # float32 for gaps above ~88, e.g. with squared-L2); the margin does not take part.
    return ops.softplus(gap) if soft else ops.relu(gap + margin)


# ---------------------------------------------------------------------------------------------
# Terms on a distance matrix.
# ---------------------------------------------------------------------------------------------


def semi_hard_terms(labels, distances, margin=1.0, soft=False):
    """TF Addons' semi-hard mining on a ``[B, B]`` distance matrix.

    For every ordered positive pair ``(a, p)`` the negative is the nearest one strictly farther
    than ``p``; if none, the farthest negative; if ``a`` has no negatives, the row minimum of
    ``distances``. The mean is over all positive pairs (zero-loss pairs included); a batch
    without positive pairs gives 0.
    """
    positive, negative = label_masks(labels)
    sorted_negative = sorted_negatives(distances, negative)
    negative_distance, _ = semi_hard_negative(distances, distances, sorted_negative)
    has_negative = ops.expand_dims(sorted_negative[2] > 0, 1)
    row_minimum = ops.min(distances, axis=1, keepdims=True)
    negative_distance = ops.where(has_negative, negative_distance, row_minimum)
    pair_loss = _hinge_or_soft(distances - negative_distance, margin, soft)
    pair_loss = ops.where(positive, pair_loss, ops.zeros_like(pair_loss))
    num_pairs = ops.sum(ops.cast(positive, distances.dtype))
    return TripletTerms(ops.sum(pair_loss, axis=1), ops.maximum(num_pairs, 1.0))


def hard_terms(labels, distances, margin=1.0, soft=False):
    """Batch-hard mining (TF Addons ``TripletHardLoss``, omoindrot ``batch_hard``).

    Per anchor: hardest positive (an anchor without positives takes the row minimum, 0 for
    distances with a zero diagonal) and hardest negative (none: the row maximum). The mean is
    over all ``B`` anchors.
    """
    positive, negative = label_masks(labels)
    positive_distance, has_positive = hardest_positive(distances, positive)
    negative_distance, has_negative = hardest_negative(distances, negative)
    positive_distance = ops.where(has_positive, positive_distance, ops.min(distances, axis=1))
    negative_distance = ops.where(has_negative, negative_distance, ops.max(distances, axis=1))
    per_anchor = _hinge_or_soft(positive_distance - negative_distance, margin, soft)
    batch = ops.cast(ops.shape(distances)[0], distances.dtype)
    return TripletTerms(per_anchor, batch)


def batch_all_terms(labels, distances, margin=0.5, soft=False):
    """omoindrot's batch-all: every valid triplet, mean over the triplets with a positive loss.

    With ``soft=True`` each triplet contributes ``softplus(d(a, p) - d(a, n))``; that sum has no
    prefix-sum form, so it is computed anchor by anchor (``O(B^3)`` time, ``O(B^2)`` memory) with
    an explicit gradient instead of storing ``B`` intermediate ``[B, B]`` blocks for autodiff.
    """
    positive, negative = label_masks(labels)
    dtype = distances.dtype
    num_positives = ops.sum(ops.cast(positive, dtype), axis=1)
    num_negatives = ops.sum(ops.cast(negative, dtype), axis=1)
    num_valid = ops.sum(num_positives * num_negatives)
    if soft:
        per_anchor, num_positive_triplets = _soft_batch_all_per_anchor(distances, positive, negative)
    else:
        sums, counts = negative_hinge_sums(
            distances, distances + margin, sorted_negatives(distances, negative)
        )
        zeros = ops.zeros_like(sums)
        per_anchor = ops.sum(ops.where(positive, sums, zeros), axis=1)
        num_positive_triplets = ops.sum(ops.where(positive, ops.cast(counts, dtype), zeros))
    normalizer = num_positive_triplets + _DENOMINATOR_EPSILON
    fraction = num_positive_triplets / (num_valid + _DENOMINATOR_EPSILON)
    return TripletTerms(per_anchor, normalizer, fraction)


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
    # Value = sums, gradient w.r.t. ``distances`` = ``gradient`` (row by row).
    linear = ops.sum(gradient * distances, axis=1)
    per_anchor = linear + ops.stop_gradient(sums - linear)
    return per_anchor, ops.sum(counts)


# ---------------------------------------------------------------------------------------------
# Public functional forms.
# ---------------------------------------------------------------------------------------------


def _distances_for(labels, embeddings, distance):
    labels, embeddings, input_dtype = prepare_inputs(labels, embeddings)
    return labels, pairwise_distances(embeddings, distance), input_dtype


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
