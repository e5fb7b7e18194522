"""Batch-hard mining for a slice of anchors: the columns of each anchor's hardest pair."""

from __future__ import annotations

from keras import ops

from tripletlab.mining.extremes import row_extreme


def hardest_columns(d, positive, negative):
    """Columns of the hardest positive and the hardest negative of every anchor.

    The hardest positive is the farthest one; an anchor without positives takes the column of
    its row minimum. The hardest negative is the nearest one; an anchor without negatives
    takes the column of its row maximum. Returning columns (not values) lets the loss gather
    the two distances, so the gradient reaches exactly those entries.

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (not differentiated).
      positive: ``[R, B]`` boolean positive mask.
      negative: ``[R, B]`` boolean negative mask.

    Returns:
      ``(positive_columns, negative_columns)``, both ``[R, 1]`` int32.
    """
    infinity = float("inf")  # a scalar: no [R, B] buffer of it (PyTorch allocates each one)
    positive_column, positive_key = row_extreme(ops.where(positive, d, -infinity), True)
    negative_column, negative_key = row_extreme(ops.where(negative, d, infinity), False)
    has_positive = positive_key > -float("inf")
    has_negative = negative_key < float("inf")

    def with_fallbacks():
        nearest, _ = row_extreme(d, False)
        farthest, _ = row_extreme(d, True)
        return (ops.where(has_positive, positive_column, nearest),
                ops.where(has_negative, negative_column, farthest))

    # The fallbacks cost two more passes over the rows; most batches need none.
    every_anchor_has_both = ops.all(ops.logical_and(has_positive, has_negative))
    return ops.cond(every_anchor_has_both, lambda: (positive_column, negative_column),
                    with_fallbacks)
