"""TF Addons' semi-hard mining for a slice of anchors (rows), without autodiff.

For every ordered positive pair ``(a, p)`` the chosen negative ``n*`` is the nearest negative
strictly farther than ``p``; if none, the farthest negative; if ``a`` has no negatives, the
column of the row minimum. Two ways to find it, with the same values:

* :func:`semi_hard_window_rows` (any labels, the sort path): sorts each anchor's positives
  (a window at a time) and places every column among them by a rank search, ``O(B log P)`` per
  anchor for ``P`` positives, with a closed-form gradient.
* :func:`semi_hard_slot_rows` (few positives per anchor, e.g. P x K batches): one masked
  minimum over the row per positive slot, ``O(B K)`` per anchor and no sort; it returns the
  chosen columns, and the loss gathers the two distances of each pair so that autodiff sends
  the gradient to exactly those entries. Where several negatives tie at ``n*``, this path sends
  the negative's gradient to one of them, the sort path shares it evenly; the values agree.
"""

from __future__ import annotations

from keras import ops

from tripletlab.distances import is_eager_torch
from tripletlab.mining.extremes import row_extreme
from tripletlab.mining.hinge import term_and_slope
from tripletlab.mining.positive_windows import (
    for_each_window,
    in_window,
    running_maximum,
    running_minimum_from_right,
    sorted_positive_window,
)
from tripletlab.mining.rank import count_below
from tripletlab.mining.row_scatter import (
    row_index,
    row_segment_min,
    row_segment_sum,
    take_columns,
)
from tripletlab.mining.select import positive_slots
from tripletlab.mining.tracing import is_concrete


def _take(rows, positions):
    """``rows[r, positions[r, q]]`` with positions clipped into range."""
    last = ops.shape(rows)[1] - 1
    return ops.take_along_axis(rows, ops.clip(positions, 0, last), axis=1)


def _split_evenly(weights, targets):
    """Spreads each row's ``weights`` ``[R]`` evenly over the row's true ``targets`` ``[R, B]``."""
    targets = ops.cast(targets, weights.dtype)
    share = weights / ops.maximum(ops.sum(targets, axis=1), 1.0)
    return targets * ops.expand_dims(share, 1)


def _beyond_keys(distances, threshold):
    """Keys whose row minimum is at the smallest of ``distances`` above ``threshold`` where one
    exists: the distance there, and elsewhere a key above every such distance.

    That is ``where(d > t, d, inf)``; on eager PyTorch ``d + float_max * (d <= t)``, since
    ``torch.where`` and ``masked_fill`` branch per element and ran at a sixth of the speed
    (3.7-4.3 ms against 0.6 ms for a 512 x 4096 slice with an unpredictable mask). Exact for
    distances below the float maximum (the caller checks the chosen entry).
    """
    if not is_eager_torch():
        return ops.where(distances > threshold, distances, float("inf"))
    import torch

    largest = torch.finfo(distances.dtype).max
    return distances + (distances <= threshold) * largest


def semi_hard_slot_rows(d, positive, negative, max_positives):
    """The semi-hard pairs of a slice of anchors, one per positive slot (the sort-free path).

    Per slot ``j`` (see :func:`tripletlab.mining.positive_slots`), the negative is a masked
    arg-minimum over the row: ``O(B)`` elementwise work per slot, static shapes.

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (not differentiated).
      positive: ``[R, B]`` boolean positive mask.
      negative: ``[R, B]`` boolean negative mask.
      max_positives: the number of slots ``K``; anchors must have at most ``K`` positives.

    Returns:
      ``(positive_columns, negative_columns, valid)``, each ``[R, K]``: the pair of slot ``j`` of
      anchor ``a`` is ``(a, positive_columns[a, j])`` with chosen negative
      ``negative_columns[a, j]``; ``valid`` is false for unused slots.
    """
    infinity = float("inf")  # a scalar: no [R, B] buffer of it (PyTorch allocates each one)
    positive_columns, valid = positive_slots(positive, max_positives)
    positive_distance = ops.take_along_axis(d, positive_columns, axis=1)
    negative_distance = ops.where(negative, d, infinity)
    columns, found = [], []
    for slot in range(positive_columns.shape[1]):
        threshold = positive_distance[:, slot:slot + 1]
        column, _ = row_extreme(_beyond_keys(negative_distance, threshold), largest=False)
        # Whether the column holds a negative beyond the threshold (else none exists).
        chosen = ops.take_along_axis(negative_distance, column, axis=1)
        columns.append(column)
        found.append(ops.logical_and(chosen > threshold, chosen < infinity))
    columns, found = ops.concatenate(columns, axis=1), ops.concatenate(found, axis=1)

    def with_fallbacks():
        has_negative = ops.any(negative, axis=1, keepdims=True)
        farthest, _ = row_extreme(ops.where(negative, d, -infinity), largest=True)
        nearest, _ = row_extreme(d, largest=False)
        fallback = ops.where(has_negative, farthest, nearest)
        return ops.where(found, columns, fallback)

    # The fallbacks cost three more passes over the rows; most P x K batches need none.
    every_pair_found = ops.all(ops.logical_or(found, ops.logical_not(valid)))
    negative_columns = ops.cond(every_pair_found, lambda: columns, with_fallbacks)
    return positive_columns, negative_columns, valid


def semi_hard_window_rows(d, positive, negative, blocks, *, width, windows, margin, soft):
    """Semi-hard loss sums and ``d sums / d d`` for a slice of anchors, from their positives
    sorted a window at a time (the sort path; see :mod:`tripletlab.mining.positive_windows`).

    Within a window of sorted positive distances ``s_0 <= s_1 <= ...``, each column's rank
    ``r = #{k : s_k < d(a, n)}`` puts a negative in bucket ``r``; the positive ``s_k`` chooses
    the smallest negative of the first non-empty bucket after ``k`` (bucket minima, then a
    running minimum from the right). The gradient sends each pair's slope to its positive (+),
    found by the positive's own rank, and to its chosen negative (-): a bucket's minimum is
    chosen by the positives between the previous non-empty bucket and its own, a difference of
    prefix sums of the slopes (tied minima share). Positives without a negative beyond them fall
    back to the farthest negative, anchors without negatives to the row minimum, as in TF
    Addons.

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (no gradient flows through this function).
      positive: ``[R, B]`` boolean positive mask.
      negative: ``[R, B]`` boolean negative mask.
      blocks: the rows' :class:`tripletlab.mining.ClassBlocks` (``start``, ``end`` and
        ``anchor`` sliced to the same rows).
      width: window width (a Python int).
      windows: number of windows (int or scalar tensor).
      margin: the hinge's margin.
      soft: use the soft margin.

    Returns:
      ``(sums, coefficients)``: ``[R]`` loss sums per anchor and their ``[R, B]`` derivative
      w.r.t. ``d``.
    """
    dtype = d.dtype
    zeros = ops.zeros_like(d)
    negative_distance = ops.where(negative, d, float("inf"))
    has_negative = ops.any(negative, axis=1, keepdims=True)
    farthest = ops.max(ops.where(negative, d, -float("inf")), axis=1, keepdims=True)
    row_minimum = ops.min(d, axis=1, keepdims=True)
    fallback_distance = ops.where(has_negative, farthest, row_minimum)
    buckets = width + 1
    bucket_numbers = ops.expand_dims(ops.arange(buckets, dtype="int32"), 0)

    def window(index, carry):
        sums, fallback_slopes, coefficients = carry
        positive_distance = sorted_positive_window(d, blocks, index, width)
        valid = positive_distance < float("inf")
        rank = row_index(count_below(positive_distance, d))
        bucket_minimum = row_segment_min(negative_distance, rank, buckets)
        beyond = running_minimum_from_right(bucket_minimum)[:, 1:]
        found = beyond < float("inf")
        chosen = ops.where(found, beyond, fallback_distance)
        values, slopes = term_and_slope(positive_distance - chosen, margin, soft)
        no_term = ops.zeros_like(values)
        values, slopes = ops.where(valid, values, no_term), ops.where(valid, slopes, no_term)
        sums = sums + ops.sum(values, axis=1)
        fallback_slopes = fallback_slopes + ops.sum(ops.where(found, no_term, slopes), axis=1)

        # Bucket b's minimum is chosen by the positives k with previous(b) <= k < b.
        found_slopes = ops.where(found, slopes, no_term)
        prefix = ops.concatenate([no_term[:, :1], ops.cumsum(found_slopes, axis=1)], axis=1)
        nonempty = bucket_minimum < float("inf")
        previous = running_maximum(ops.where(nonempty, bucket_numbers, 0))
        previous = ops.concatenate([ops.zeros_like(previous[:, :1]), previous[:, :-1]], axis=1)
        chosen_by = prefix - take_columns(prefix, previous)
        is_minimum = ops.logical_and(negative, d == take_columns(bucket_minimum, rank))
        ties = row_segment_sum(ops.cast(is_minimum, dtype), rank, buckets)
        # One gather for both sides: a negative reads its bucket's share, a positive of this
        # window its own slope (its rank is its sorted position), from one table.
        here = in_window(positive, blocks.position, blocks.start, index, width, windows)
        table = ops.concatenate([chosen_by / ops.maximum(ties, 1.0), slopes, no_term[:, :1]],
                                axis=1)
        gathered = take_columns(table, rank + ops.cast(here, rank.dtype) * buckets)
        coefficients = coefficients + ops.where(here, gathered,
                                                ops.where(is_minimum, -gathered, zeros))
        return sums, fallback_slopes, coefficients

    start_carry = (ops.zeros_like(d[:, 0]), ops.zeros_like(d[:, 0]), zeros)
    sums, fallback_slopes, coefficients = for_each_window(window, start_carry, windows)

    if is_concrete(fallback_slopes) and not bool(ops.any(fallback_slopes != 0)):
        return sums, coefficients  # no pair fell back (the usual case): skip five passes
    farthest_columns = ops.logical_and(negative, d == farthest)
    fallback_targets = ops.where(has_negative, farthest_columns, d == row_minimum)
    coefficients = coefficients - _split_evenly(fallback_slopes, fallback_targets)
    return sums, coefficients
