"""omoindrot's batch-all sums for a slice of anchors (rows), without autodiff.

Per anchor: the sum over its valid triplets ``(p, n)`` of the term ``max(d(a,p) - d(a,n) + m, 0)``
(or ``log(1 + exp(d(a,p) - d(a,n)))``), the number of terms above ``1e-16`` and the derivative
of the sum w.r.t. the distances. Three ways, with the same values:

* :func:`batch_all_window_rows` (hinge, any labels, the sort path): each anchor's positives
  sorted (a window at a time), prefix sums over them and a rank search per negative,
  ``O(B log P)`` per anchor for ``P`` positives.
* :func:`soft_batch_all_rows` (soft margin, any labels): every (positive, negative) pair of
  one anchor at a time, ``O(B^2)`` per anchor.
* :func:`batch_all_slot_rows` (few positives per anchor, e.g. P x K batches; hinge or soft):
  one masked sum over the row per positive slot, ``O(B K)`` per anchor and no sort.
"""

from __future__ import annotations

from keras import ops
from keras.backend import standardize_dtype

from tripletlab.distances import is_eager_torch
from tripletlab.mining.positive_windows import (
    for_each_window,
    in_window,
    sorted_positive_window,
)
from tripletlab.mining.rank import count_at_or_below
from tripletlab.mining.row_scatter import row_index, row_segment_sum, take_columns
from tripletlab.mining.select import positive_slots

POSITIVE_LOSS_THRESHOLD = 1e-16
"""omoindrot's threshold: a triplet whose loss exceeds it counts as a positive triplet."""

_SIGNIFICAND_BITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def soft_batch_all_rows(d, positive, negative):
    """Soft-margin sums, positive-triplet counts and ``d sums / d d``, one anchor at a time.

    Same results as :func:`batch_all_window_rows` (without ``margin``); no ``B^3``
    tensor, ``O(B^2)`` memory.
    """

    def one_anchor(row):
        row_distances, row_positive, row_negative = row
        gaps = ops.expand_dims(row_distances, 1) - ops.expand_dims(row_distances, 0)
        valid = ops.logical_and(ops.expand_dims(row_positive, 1), ops.expand_dims(row_negative, 0))
        losses = ops.where(valid, ops.softplus(gaps), ops.zeros_like(gaps))
        slopes = ops.where(valid, ops.sigmoid(gaps), ops.zeros_like(gaps))
        # d loss / d d(a, p) = sum_n slope;  d loss / d d(a, n) = -sum_p slope.
        gradient = ops.sum(slopes, axis=1) - ops.sum(slopes, axis=0)
        count = ops.sum(ops.cast(losses > POSITIVE_LOSS_THRESHOLD, losses.dtype))
        return ops.sum(losses), count, gradient

    return ops.map(one_anchor, (d, positive, negative))


def batch_all_slot_rows(d, positive, negative, margin, soft, max_positives, *,
                        count_tiny_gaps=True):
    """Batch-all sums for a slice of anchors, one masked row sum per positive slot (no sort).

    Same values as :func:`batch_all_window_rows` (hinge) and :func:`soft_batch_all_rows` (soft); the
    derivative comes in two parts, so that nothing is scattered here: the ``[R, B]``
    coefficients of the negatives, and per positive slot its column and coefficient (the loss
    gathers those distances).

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (not differentiated).
      positive: ``[R, B]`` boolean positive mask.
      negative: ``[R, B]`` boolean negative mask.
      margin: the hinge's margin (unused when ``soft``).
      soft: use the soft margin.
      max_positives: the number of slots ``K``; anchors must have at most ``K`` positives.
      count_tiny_gaps: for the hinge, make a second pass over the rows for the gaps in
        ``(0, 1e-16]`` (positive slope, not counted); pass ``False`` only where
        :func:`hinge_counts_are_slope_counts` holds (the counts are then the same; a third
        accumulator in the one pass doubled its time under XLA on a CPU).

    Returns:
      ``(sums, counts, coefficients, positive_columns, positive_coefficients)``: ``[R]`` loss
      sums and positive-triplet counts; the ``[R, B]`` derivative of the sums w.r.t. ``d`` at
      the negatives (0 elsewhere); the ``[R, K]`` columns of the positive slots and the
      derivative w.r.t. ``d`` at those columns (0 for unused slots).
    """
    positive_columns, valid = positive_slots(positive, max_positives)
    positive_distance = ops.take_along_axis(d, positive_columns, axis=1)
    # Unused slots and non-negatives get -inf / +inf, so that their terms and slopes are 0
    # without a mask per slot.
    positive_distance = ops.where(valid, positive_distance,
                                  ops.full_like(positive_distance, -float("inf")))
    negative_distance = ops.where(negative, d, float("inf"))
    if not soft:
        positive_distance = positive_distance + margin
    slots = range(positive_columns.shape[1])
    if not soft and not count_tiny_gaps and is_eager_torch():
        sums, counts, coefficients, positive_coefficients = _torch_hinge_slot_sums(
            positive_distance, negative_distance, slots)
        return sums, counts, coefficients, positive_columns, positive_coefficients

    def gaps(slot):
        return positive_distance[:, slot:slot + 1] - negative_distance

    # The sums and counts are needed per anchor only, so the slots are added elementwise before
    # one row reduction each (XLA's CPU code is slow for many sibling row reductions).
    terms_total = counts_total = negative_slopes = None
    positive_coefficients = []
    for slot in slots:
        if soft:
            terms, slopes = ops.softplus(gaps(slot)), ops.sigmoid(gaps(slot))
            counted = ops.cast(terms > POSITIVE_LOSS_THRESHOLD, d.dtype)
            counts_total = counted if counts_total is None else counts_total + counted
        else:
            terms = ops.relu(gaps(slot))
            slopes = ops.cast(gaps(slot) > 0, d.dtype)
        positive_coefficients.append(ops.sum(slopes, axis=1))
        if terms_total is None:
            terms_total, negative_slopes = terms, slopes
        else:
            terms_total, negative_slopes = terms_total + terms, negative_slopes + slopes
    positive_coefficients = ops.stack(positive_coefficients, axis=1)
    if soft:
        counts = ops.sum(counts_total, axis=1)
    else:
        counts = ops.sum(positive_coefficients, axis=1)  # the terms with a positive gap
        if count_tiny_gaps:
            counts = counts - _tiny_gap_counts(gaps, slots, d.dtype)
    return (ops.sum(terms_total, axis=1), counts, -negative_slopes, positive_columns,
            positive_coefficients)


def _torch_hinge_slot_sums(thresholds, negative_distance, slots):
    """The hinge sums of :func:`batch_all_slot_rows` on eager PyTorch, in three reused buffers.

    Same values: the terms are added in the same order, and each slot's slope count is the
    growth of the row sums of the accumulated slopes (whole numbers, exact in float32 below
    2**24), since PyTorch's row sums of booleans were 10x slower than those of floats.

    Returns:
      ``(sums, counts, negative_coefficients, positive_coefficients)``.
    """
    import torch

    with torch.no_grad():
        # The first slot's terms and slopes start the two totals (no zero-filled buffers).
        terms_total = (thresholds[:, :1] - negative_distance).clamp_min_(0.0)
        negative_slopes = terms_total.sign()  # 1 where the gap is positive, else 0
        previous = negative_slopes.sum(dim=1)
        positive_coefficients = [previous]
        gap = torch.empty_like(negative_distance)
        for slot in slots[1:]:
            torch.sub(thresholds[:, slot:slot + 1], negative_distance, out=gap)
            terms_total.add_(gap.clamp_min_(0.0))
            negative_slopes.add_(gap.sign_())
            total = negative_slopes.sum(dim=1)
            positive_coefficients.append(total - previous)
            previous = total
        return (terms_total.sum(dim=1), previous, negative_slopes.neg_(),
                torch.stack(positive_coefficients, dim=1))


def hinge_counts_are_slope_counts(margin, dtype):
    """Whether batch-all's hinge terms above ``POSITIVE_LOSS_THRESHOLD`` are exactly the terms
    with a positive gap (a boolean scalar), so that they need no count of their own.

    A term counts when its gap ``d(a, p) + margin - d(a, n)`` exceeds ``1e-16`` and has slope 1
    when it exceeds 0. A gap in ``(0, 1e-16]`` cannot occur once ``margin >= 2**(p - 53)``
    (``p``: the dtype's significand bits; ``2**-29`` in float32, 1 in float64), since distances
    are ``>= 0`` and a positive difference of floats that large is at least ``2**-53``.
    """
    exact_above = 2.0 ** (_SIGNIFICAND_BITS.get(standardize_dtype(dtype), 53) - 53)
    return ops.convert_to_tensor(margin) >= exact_above


def _tiny_gap_counts(gaps, slots, dtype):
    """``[R]``: per anchor, the gaps in ``(0, POSITIVE_LOSS_THRESHOLD]`` over every slot."""
    tiny = None
    for slot in slots:
        gap = gaps(slot)
        band = ops.cast(ops.logical_and(gap > 0, gap <= POSITIVE_LOSS_THRESHOLD), dtype)
        tiny = band if tiny is None else tiny + band
    return ops.sum(tiny, axis=1)


def batch_all_window_rows(d, positive, negative, blocks, *, width, windows, margin):
    """Hinge sums, positive-triplet counts and ``d sums / d d`` for a slice of anchors, from
    their positives sorted a window at a time (the sort path; see
    :mod:`tripletlab.mining.positive_windows`).

    With a window's thresholds ``t_k = d(a, p_k) + margin`` sorted, the sum over them of
    ``max(t_k - d(a, n), 0)`` for one negative is ``count * (c - d(a, n))`` plus the centred
    thresholds above ``d(a, n)``, from prefix sums (``c``: the window's mean threshold, which
    keeps float32 cancellation small), with ``count = #{k : t_k > d(a, n)}`` from a rank search.
    The slope is ``-count`` at the negative and, at ``p_k``, the number of negatives below
    ``t_k``: a histogram of the negatives' ranks, summed, read at the positive's own rank. No
    ``B x B x B`` tensor, no sort of whole rows.

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (not differentiated).
      positive: ``[R, B]`` boolean positive mask.
      negative: ``[R, B]`` boolean negative mask.
      blocks, width, windows: as in :func:`tripletlab.mining.semi_hard_window_rows`.
      margin: the hinge's margin.

    Returns:
      ``(sums, counts, coefficients)``: ``[R]`` loss sums, ``[R]`` counts of triplets with a
      positive gap and the ``[R, B]`` derivative of the sums w.r.t. ``d``.
    """
    dtype = d.dtype
    zeros = ops.zeros_like(d)
    negative_weight = ops.cast(negative, dtype)

    def window(index, carry):
        sums, counts, coefficients = carry
        thresholds = sorted_positive_window(d, blocks, index, width) + margin
        valid = thresholds < float("inf")
        in_window_count = ops.sum(ops.cast(valid, dtype), axis=1, keepdims=True)
        center = ops.sum(ops.where(valid, thresholds, 0.0), axis=1,
                         keepdims=True) / ops.maximum(in_window_count, 1.0)
        centered = ops.where(valid, thresholds - center, 0.0)
        prefix = ops.concatenate([ops.zeros_like(centered[:, :1]),
                                  ops.cumsum(centered, axis=1)], axis=1)
        # A negative is searched at its distance, a positive of this window at its own
        # threshold (so that its rank, less one, is its sorted position).
        here = in_window(positive, blocks.position, blocks.start, index, width, windows)
        at_or_below = row_index(count_at_or_below(thresholds, ops.where(here, d + margin, d)))
        above = ops.where(negative, in_window_count - ops.cast(at_or_below, dtype), zeros)
        histogram = row_segment_sum(negative_weight, at_or_below, width + 1)
        below = ops.cumsum(histogram, axis=1)[:, :width]
        # One gather for both sides: a negative reads the prefix sum at its rank, a positive
        # the count of negatives below its threshold.
        table = ops.concatenate([prefix, below], axis=1)
        gathered = take_columns(table, at_or_below + ops.cast(here, at_or_below.dtype) * width)
        hinge = prefix[:, -1:] - gathered + above * (center - d)
        # Rounding can leave a tiny negative remainder where the true sum is 0.
        hinge = ops.where(negative, ops.maximum(hinge, 0.0), zeros)
        sums = sums + ops.sum(hinge, axis=1)
        counts = counts + ops.sum(above, axis=1)
        coefficients = coefficients - above + ops.where(here, gathered, zeros)
        return sums, counts, coefficients

    start_carry = (ops.zeros_like(d[:, 0]), ops.zeros_like(d[:, 0]), zeros)
    return for_each_window(window, start_carry, windows)
