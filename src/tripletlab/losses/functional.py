"""Triplet losses with online mining as pure functions of ``(labels, embeddings)``.

Each loss is built from two layers:

* ``*_terms(labels, distances, ...)`` works on a ``[B, B]`` distance matrix and returns the
  per-anchor sums of the loss terms and the normaliser, so that
  ``loss = sum(per_anchor) / normalizer``. The Keras classes turn the same terms into
  per-anchor values (so ``sample_weight`` weights anchors) and the compat modules reuse them with
  their own distance functions.
* ``*_triplet_loss(labels, embeddings, margin, *, distance, soft, ...)`` validates the inputs,
  computes the distances in float32 for half-precision inputs and returns the scalar loss in
  the input dtype. Every argument after ``margin`` is keyword-only, in the same order for every
  loss (as in the classes of :mod:`.classes`).

No function builds a ``B x B x B`` tensor. Semi-hard and batch-all have two exact paths,
chosen per batch from the labels (inside the compiled step under ``jit``):

* the **slot path**, while no anchor has more than ``max_positives`` positives (by default
  :data:`DEFAULT_SLOTS`, which P x K batches with ``K <= 4`` meet): one masked reduction over
  the row per positive slot, ``O(B^2 K)`` and no sort;
* the **sort path** otherwise: each anchor's positives sorted (a window at a time, see
  :mod:`tripletlab.mining.positive_windows`) and every column placed among them by a rank
  search, ``O(B^2 log P)`` for ``P`` positives per anchor.

Hard mining is a masked arg-max/min. The mining itself lives in :mod:`tripletlab.mining`.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

from tripletlab._checks import check_bool, check_number
from tripletlab.distances import (
    check_distance,
    distance_geometry,
    min_norm_for,
    power_of_two_scale,
)
from tripletlab.losses.inputs import bounded_distances, is_concrete, prepare_inputs
from tripletlab.losses.margins import BATCH_ALL_MARGIN, HARD_MARGIN, SEMI_HARD_MARGIN
from tripletlab.mining import (
    EmbeddingDistances,
    as_distance_matrix,
    batch_all_slot_rows,
    batch_all_window_rows,
    class_blocks,
    count_true,
    hardest_columns,
    hinge_counts_are_slope_counts,
    in_tensorflow_xla,
    label_masks,
    map_row_chunks,
    semi_hard_slot_rows,
    semi_hard_window_rows,
    soft_batch_all_rows,
    term_and_slope,
    window_plan,
)

DEFAULT_SLOTS = 3
"""The positive slots a loss uses when ``max_positives`` is not given: the slot path serves
batches where no anchor has more than 3 positives (P x K batches with K <= 4, the CLI's
default), the sort path all others."""

# omoindrot's epsilon, added to the denominators so that a batch without (positive) triplets
# gives 0, not NaN.
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


def _scaled_for_mining(distances, margin, soft):
    """``(matrix, margin / scale, scale)``: ``distances`` as a distance matrix object (see
    :mod:`tripletlab.mining.distance_matrix`) divided by :func:`mining_scale`'s ``scale``.

    When ``scale`` is known to be 1 (eager, the usual case) nothing is divided: on PyTorch the
    division and its backward pass were two more ``[B, B]`` passes per step.
    """
    matrix = as_distance_matrix(distances)
    scale = mining_scale(matrix.values, soft)
    if is_concrete(scale) and float(scale) == 1.0:
        return matrix, margin, scale
    return matrix.divided_by(scale), margin / scale, scale


# ---------------------------------------------------------------------------------------------
# Terms on a distance matrix.
# ---------------------------------------------------------------------------------------------


def reference_masks(labels, reference_labels=None, reference_valid=None):
    """``(positive, negative, blocks)`` of anchors against their references.

    Without references the batch mines itself (``[B, B]`` masks). With them, the ``B`` anchors
    mine ``N`` references whose first ``B`` are the anchors themselves (a batch followed by a
    memory of past embeddings, see :class:`tripletlab.losses.CrossBatchMemory`), on a
    ``[B, N]`` distance matrix; references that are not ``reference_valid`` are neither
    positives nor negatives, and their distances must be 0 (so that the row minimum and maximum
    some anchors fall back on are those of the valid references).

    Args:
      labels: ``[B]`` anchor labels.
      reference_labels: ``[N]`` labels of the references, or ``None``.
      reference_valid: ``[N]`` boolean, or ``None`` (all valid).
    """
    positive, negative = label_masks(labels, reference_labels, reference_valid)
    return positive, negative, class_blocks(labels, reference_labels, reference_valid)


def check_max_positives(max_positives):
    """Validates ``max_positives``: ``None`` or an integer ``>= 1``."""
    if max_positives is not None:
        check_number("max_positives", max_positives, minimum=1, integer=True)
    return max_positives


def _fits(blocks, max_positives):
    """Whether no anchor has more than ``max_positives`` positives (a boolean scalar): no class
    of the batch's :class:`tripletlab.mining.ClassBlocks` has more than ``max_positives + 1``
    samples. ``O(B log B)`` from the labels, instead of a row count of the ``[B, B]`` positive
    mask (36 ms at B = 4096 on PyTorch, whose row reductions of booleans are slow)."""
    return blocks.largest <= max_positives + 1


def _fast_path_or_sort_path(fits, fast, sort):
    """``fast()`` if ``fits`` (see :func:`_fits`), else ``sort()``.

    With concrete values (eager) only the branch taken runs; inside compiled code both are
    compiled and ``fits`` decides at run time (``keras.ops.cond``), so a batch with more
    positives per anchor than ``max_positives`` still gets the exact loss, just slower.
    """
    if is_concrete(fits):
        return fast() if bool(fits) else sort()
    return ops.cond(fits, fast, sort)


def _gathered(distances, columns):
    return ops.take_along_axis(distances, columns, axis=1)


def _either_path_per_row_slice(fits, matrix, slot_rows, sort_rows, positive, negative, blocks,
                               columns):
    """Semi-hard's choice between its paths made inside each row slice, where XLA compiles
    TensorFlow (a loop, such as the sort path's windows, inside a differentiated ``tf.cond``
    does not compile there). Both branches return the same closed-form pieces, the other
    branch's being zeros, so the condition is never differentiated; elsewhere the condition
    sits outside the slices, so that the slot path does not carry the sort path's dense
    coefficients (a third more time at B = 4096 on TensorFlow)."""
    frozen = matrix.values
    columns = min(columns, 2 * (frozen.shape[1] or columns))

    def rows(d, p, n, start, end, anchor):
        def slot_branch():
            return (*slot_rows(d, p, n), ops.zeros_like(d))

        def sort_branch():
            sums, coefficients = sort_rows(d, p, n, start, end, anchor)
            empty = ops.zeros((ops.shape(d)[0], columns), dtype="int32")
            return sums, empty, ops.cast(empty, d.dtype), coefficients

        return ops.cond(fits, slot_branch, sort_branch)

    return matrix.attach_columns(*map_row_chunks(rows, frozen, positive, negative, blocks.start,
                                                 blocks.end, blocks.anchor))


def semi_hard_terms(labels, distances, margin=1.0, soft=False, max_positives=None, *,
                    reference_labels=None, reference_valid=None):
    """TF Addons' semi-hard mining on a ``[B, B]`` distance matrix (or ``[B, N]`` against
    references, see :func:`reference_masks`).

    For every ordered positive pair ``(a, p)`` the negative is the nearest one strictly farther
    than ``p``; if none, the farthest negative; if ``a`` has no negatives, the row minimum of
    ``distances``. The mean is over all positive pairs (zero-loss pairs included); a batch
    without positive pairs gives 0. Anchors are processed in row slices without autodiff
    (see :mod:`tripletlab.mining.chunks`), so memory stays a few ``[B, B]`` matrices.

    While no anchor has more than ``max_positives`` positives (default :data:`DEFAULT_SLOTS`)
    the negatives are found by one masked minimum per positive slot
    (:func:`tripletlab.mining.semi_hard_slot_rows`, no sort); other batches take the sort path
    (:func:`tripletlab.mining.semi_hard_window_rows`), decided at run time under jit.
    """
    positive, negative, blocks = reference_masks(labels, reference_labels, reference_valid)
    matrix, margin, scale = _scaled_for_mining(distances, margin, soft)
    frozen = matrix.values
    max_positives = DEFAULT_SLOTS if max_positives is None else max_positives
    fits = _fits(blocks, max_positives)
    width, windows = window_plan(blocks, frozen.shape[1], is_concrete(blocks.largest))

    def slot_rows(d, p, n):
        positive_columns, negative_columns, valid = semi_hard_slot_rows(d, p, n, max_positives)
        gaps = _gathered(d, positive_columns) - _gathered(d, negative_columns)
        terms, slopes = term_and_slope(gaps, margin, soft)
        zeros = ops.zeros_like(terms)
        terms, slopes = ops.where(valid, terms, zeros), ops.where(valid, slopes, zeros)
        return (ops.sum(terms, axis=1),
                ops.concatenate([positive_columns, negative_columns], axis=1),
                ops.concatenate([slopes, -slopes], axis=1))

    def sort_rows(d, p, n, start, end, anchor):
        return semi_hard_window_rows(d, p, n, blocks._replace(start=start, end=end, anchor=anchor),
                                     width=width, windows=windows, margin=margin, soft=soft)

    def slot_path():
        return matrix.attach_columns(*map_row_chunks(slot_rows, frozen, positive, negative))

    def sort_path():
        return matrix.attach(*map_row_chunks(sort_rows, frozen, positive, negative, blocks.start,
                                             blocks.end, blocks.anchor))

    if is_concrete(fits) or not in_tensorflow_xla():
        per_anchor = _fast_path_or_sort_path(fits, slot_path, sort_path)
    else:
        per_anchor = _either_path_per_row_slice(fits, matrix, slot_rows, sort_rows, positive,
                                                negative, blocks, 2 * max_positives)
    num_pairs = ops.cast(count_true(positive), frozen.dtype)
    return TripletTerms(per_anchor, ops.maximum(num_pairs, 1.0), scale=scale)


def hard_terms(labels, distances, margin=1.0, soft=False, *, reference_labels=None,
               reference_valid=None):
    """Batch-hard mining (TF Addons ``TripletHardLoss``, omoindrot ``batch_hard``), on a
    ``[B, B]`` distance matrix or ``[B, N]`` against references (see :func:`reference_masks`).

    Per anchor: hardest positive (an anchor without positives takes the row minimum, 0 for
    distances with a zero diagonal) and hardest negative (none: the row maximum). The mean is
    over all ``B`` anchors. The two columns are found without autodiff and their distances
    gathered, so the backward pass touches only those ``2 B`` entries.
    """
    positive, negative = label_masks(labels, reference_labels, reference_valid)
    matrix, margin, scale = _scaled_for_mining(distances, margin, soft)
    frozen = matrix.values
    positive_columns, negative_columns = map_row_chunks(hardest_columns, frozen, positive,
                                                        negative)
    gaps = _gathered(frozen, positive_columns) - _gathered(frozen, negative_columns)
    terms, slopes = term_and_slope(gaps, margin, soft)
    per_anchor = matrix.attach_columns(
        terms[:, 0], ops.concatenate([positive_columns, negative_columns], axis=1),
        ops.concatenate([slopes, -slopes], axis=1))
    batch = ops.cast(ops.shape(frozen)[0], frozen.dtype)
    return TripletTerms(per_anchor, batch, scale=scale)


def batch_all_terms(labels, distances, margin=0.5, soft=False, max_positives=None, *,
                    reference_labels=None, reference_valid=None):
    """omoindrot's batch-all: every valid triplet, mean over the triplets with a positive loss
    (on a ``[B, B]`` distance matrix, or ``[B, N]`` against references: see
    :func:`reference_masks`).

    With ``soft=True`` each triplet contributes ``softplus(d(a, p) - d(a, n))``; that sum has no
    prefix-sum form, so the sort path computes it anchor by anchor (``O(B^3)`` time, ``O(B^2)``
    memory) with an explicit gradient instead of storing ``B`` intermediate ``[B, B]`` blocks for
    autodiff. While no anchor has more than ``max_positives`` positives (default
    :data:`DEFAULT_SLOTS`) both the hinge and the soft sums come from one masked row sum per
    positive slot (:func:`tripletlab.mining.batch_all_slot_rows`, ``O(B^2 K)``); other batches
    take the sort path (:func:`tripletlab.mining.batch_all_window_rows` for the hinge), decided
    per row slice at run time under jit.
    """
    positive, negative, blocks = reference_masks(labels, reference_labels, reference_valid)
    matrix, margin, scale = _scaled_for_mining(distances, margin, soft)
    frozen = matrix.values
    dtype = frozen.dtype

    max_positives = DEFAULT_SLOTS if max_positives is None else max_positives
    fits = _fits(blocks, max_positives)
    slots = min(max_positives, frozen.shape[1] or max_positives)
    width, windows = window_plan(blocks, frozen.shape[1], is_concrete(blocks.largest))

    def sort_rows(d, p, n, start, end, anchor):
        if soft:
            sums, counts, coefficients = soft_batch_all_rows(d, p, n)
        else:
            sums, counts, coefficients = batch_all_window_rows(
                d, p, n, blocks._replace(start=start, end=end, anchor=anchor), width=width,
                windows=windows, margin=margin)
        # The sort path's coefficients cover every column: its slots are empty.
        empty = ops.zeros((ops.shape(d)[0], slots), dtype="int32")
        return sums, counts, coefficients, empty, ops.cast(empty, d.dtype)

    def slot_rows(d, p, n):
        def with_tiny_gaps(count_tiny_gaps):
            return lambda: batch_all_slot_rows(d, p, n, margin, soft, max_positives,
                                               count_tiny_gaps=count_tiny_gaps)

        if soft:
            return with_tiny_gaps(False)()
        return _fast_path_or_sort_path(hinge_counts_are_slope_counts(margin, d.dtype),
                                       with_tiny_gaps(False), with_tiny_gaps(True))

    def rows(d, p, n, start, end, anchor):
        return _fast_path_or_sort_path(fits, lambda: slot_rows(d, p, n),
                                       lambda: sort_rows(d, p, n, start, end, anchor))

    # Both paths give the derivative in closed form, so the choice between them (a run-time
    # condition under jit) involves no autodiff.
    values, counts, coefficients, columns, positive_coefficients = map_row_chunks(
        rows, frozen, positive, negative, blocks.start, blocks.end, blocks.anchor)
    per_anchor = matrix.attach_columns(values, columns, positive_coefficients, coefficients)
    # Every other valid reference is a positive or a negative.
    num_references = (ops.shape(frozen)[1] if reference_valid is None
                      else count_true(reference_valid))
    num_positives = ops.cast(blocks.end - blocks.start - 1, dtype)
    num_negatives = ops.cast(num_references - 1, dtype) - num_positives
    num_valid = ops.sum(num_positives * num_negatives)
    num_positive_triplets = ops.sum(counts)
    normalizer = num_positive_triplets + _DENOMINATOR_EPSILON
    fraction = num_positive_triplets / (num_valid + _DENOMINATOR_EPSILON)
    return TripletTerms(per_anchor, normalizer, fraction, scale)


# ---------------------------------------------------------------------------------------------
# Public functional forms.
# ---------------------------------------------------------------------------------------------


def mining_distances(embeddings, distance, input_dtype):
    """The distance matrix a mining loss works on: ``distance`` between the rows of
    ``embeddings`` (already in the compute dtype; ``input_dtype`` sets the normalisation floor),
    with the loss's gradient sent to the embeddings in closed form
    (:class:`tripletlab.mining.EmbeddingDistances`).

    Raises:
      ValueError: eagerly, when a distance overflows the dtype (see :func:`bounded_distances`).
    """
    geometry = distance_geometry(embeddings, distance, min_norm=min_norm_for(input_dtype))
    differentiable = geometry.differentiable
    if differentiable is not None:
        differentiable = bounded_distances(differentiable, distance)
    return EmbeddingDistances(geometry, bounded_distances(geometry.matrix, distance),
                              differentiable=differentiable)


def _distances_for(labels, embeddings, distance):
    labels, embeddings, input_dtype = prepare_inputs(labels, embeddings)
    return labels, mining_distances(embeddings, distance, input_dtype), input_dtype


def semi_hard_triplet_loss(labels, embeddings, margin=SEMI_HARD_MARGIN, *, distance="L2",
                           soft=False, max_positives=None):
    r"""Triplet loss with TF Addons' semi-hard negative mining.

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(a, p) \in P}
        \max\bigl(m + d(a, p) - d(a, n^*(a, p)), 0\bigr),\quad
        n^* = \operatorname*{argmin}_{n:\, y_n \ne y_a,\ d(a, n) > d(a, p)} d(a, n)

    where :math:`P` is the set of ordered pairs ``a != p`` with equal labels, :math:`m` is
    ``margin`` and :math:`d` is ``distance``. When no negative is farther than ``p``,
    :math:`n^*` is the farthest negative; when ``a`` has no negatives, :math:`d(a, n^*)` is the
    row minimum of the distance matrix. The margin does not take part in choosing :math:`n^*`.
    With ``soft=True`` each pair contributes :math:`\log(1 + e^{d(a,p) - d(a,n^*)})` and
    ``margin`` is unused. Unlike TF Addons, a batch without positive pairs gives 0, not NaN.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids (float-encoded integers accepted).
      embeddings: ``[B, D]`` embeddings (float16/bfloat16 are computed in float32).
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: use the soft margin.
      max_positives: the number of positive slots of the sort-free path, which serves batches
        where no anchor has more positives (``K - 1`` for P x K batches); ``None`` means 3.
        Other batches get the exact loss through the sort path (chosen at run time under
        ``jit``). Worth setting only for P x K batches with ``K`` from 5 to about 8.

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
    check_max_positives(max_positives)
    labels, distances, input_dtype = _distances_for(labels, embeddings, distance)
    terms = semi_hard_terms(labels, distances, margin, soft, max_positives)
    return ops.cast(terms.loss(), input_dtype)


def hard_triplet_loss(labels, embeddings, margin=HARD_MARGIN, *, distance="L2", soft=False):
    r"""Triplet loss with batch-hard mining (TF Addons' ``TripletHardLoss``).

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_{a=1}^{B}
        \max\bigl(\max_{p \in P(a)} d(a, p) - \min_{n \in N(a)} d(a, n) + m, 0\bigr)

    with :math:`P(a)` the other samples of ``a``'s class, :math:`N(a)` the samples of other
    classes and :math:`m` = ``margin``. An anchor without positives uses the row minimum of the
    distance matrix (0 with a zero diagonal) as its positive distance and stays in the mean; one
    without negatives uses the row maximum. ``soft=True`` replaces the hinge by
    :math:`\log(1 + e^{x})` of the same gap (``margin`` unused), computed stably.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: use the soft margin.

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


def batch_all_triplet_loss(labels, embeddings, margin=BATCH_ALL_MARGIN, *, distance="L2",
                           soft=False, max_positives=None):
    r"""Triplet loss over all valid triplets (omoindrot's ``batch_all_triplet_loss``).

    .. math::
        \mathcal{L} = \frac{\sum_{(a,p,n) \in T} \ell_{apn}}
                            {|\{(a,p,n) \in T : \ell_{apn} > 10^{-16}\}| + 10^{-16}},\quad
        \ell_{apn} = \max(d(a, p) - d(a, n) + m, 0)

    where :math:`T` holds every triplet of distinct ``a, p, n`` with ``y_p = y_a != y_n`` and
    :math:`m` = ``margin``: the mean over triplets that still violate the margin, 0 when none.
    ``soft=True`` uses :math:`\ell_{apn} = \log(1 + e^{d(a,p) - d(a,n)})` (``margin`` unused).

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer class ids.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: use the soft margin.
      max_positives: the number of positive slots of the sort-free path, which serves batches
        where no anchor has more positives (``K - 1`` for P x K batches); ``None`` means 3.
        Other batches get the exact loss through the sort path (chosen at run time under
        ``jit``). Worth setting only for P x K batches with ``K`` from 5 to about 8.

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
    check_max_positives(max_positives)
    labels, distances, input_dtype = _distances_for(labels, embeddings, distance)
    terms = batch_all_terms(labels, distances, margin, soft, max_positives)
    return ops.cast(terms.loss(), input_dtype), ops.cast(terms.fraction_positive, input_dtype)
