"""Selectors on a ``[B, B]`` distance matrix: hardest positive and negative (with a validity
flag instead of a silent fallback: what happens to an anchor without positives or negatives is
the loss's documented decision, not the selector's), and each anchor's positive slots.
"""

from __future__ import annotations

from keras import ops

from tripletlab.mining.extremes import column_indices, first_column_where, selects_by_reductions
from tripletlab.mining.masks import count_true


def hardest_positive(distances, positive_mask):
    """Largest distance to a positive per anchor.

    Args:
      distances: ``[B, B]`` pairwise distances.
      positive_mask: ``[B, B]`` boolean, true for (anchor, positive) pairs.

    Returns:
      ``(values, has_positive)``: ``[B]`` distances (0 where the anchor has no positive) and the
      ``[B]`` boolean flag.
    """
    has_positive = ops.any(positive_mask, axis=1)
    masked = ops.where(positive_mask, distances, ops.full_like(distances, -float("inf")))
    values = ops.max(masked, axis=1)
    return ops.where(has_positive, values, ops.zeros_like(values)), has_positive


def hardest_negative(distances, negative_mask):
    """Smallest distance to a negative per anchor.

    Returns:
      ``(values, has_negative)``: ``[B]`` distances (0 where the anchor has no negative) and the
      ``[B]`` boolean flag.
    """
    has_negative = ops.any(negative_mask, axis=1)
    masked = ops.where(negative_mask, distances, ops.full_like(distances, float("inf")))
    values = ops.min(masked, axis=1)
    return ops.where(has_negative, values, ops.zeros_like(values)), has_negative


def positive_slots(positive_mask, max_positives: int):
    """Column indices of up to ``max_positives`` positives per anchor (its "positive slots").

    Args:
      positive_mask: ``[R, B]`` boolean, true for (anchor, positive) pairs.
      max_positives: the number of slots ``K`` (a Python int; at most ``B`` are used).

    Returns:
      ``(columns, valid)``, both ``[R, K]``: ``columns[a, j]`` is a positive of anchor ``a`` where
      ``valid[a, j]``; an anchor with fewer than ``K`` positives has invalid slots (pointing at
      arbitrary columns). An anchor with more than ``K`` positives keeps only ``K`` of them: the
      caller must check :func:`positive_counts` first.
    """
    columns = positive_mask.shape[1]
    k = max_positives if columns is None else min(max_positives, columns)
    if not selects_by_reductions():
        # PyTorch's top_k takes bytes (a quarter of the float32 buffer, 3x faster at 4096).
        _, slots = ops.top_k(ops.cast(positive_mask, "uint8"), k)
        slots = ops.cast(slots, "int32")
        return slots, ops.take_along_axis(positive_mask, slots, axis=1)
    # XLA's CPU top_k sorts every row (7 ms at 1024 x 1024); K passes of a masked minimum over
    # the column numbers take 1.6 ms and give the same slots: the positives in column order.
    numbers = column_indices(positive_mask)
    previous = ops.full_like(positive_mask[:, :1], -1.0, dtype="float32")
    slots = []
    for _ in range(k):
        previous = first_column_where(ops.logical_and(positive_mask, numbers > previous))
        slots.append(previous)
    slots = ops.concatenate(slots, axis=1)
    valid = slots < float("inf")
    last = ops.cast(ops.shape(positive_mask)[1] - 1, slots.dtype)
    return ops.cast(ops.minimum(slots, last), "int32"), valid


def positive_counts(positive_mask):
    """``[R]`` int32 number of positives per anchor."""
    return count_true(positive_mask, axis=1)
