"""Positive and negative pair masks from a label vector."""

from __future__ import annotations

from keras import ops

from tripletlab.distances import is_eager_torch


def label_masks(labels):
    """Returns the ``[B, B]`` boolean masks ``(positive, negative)`` for a ``[B]`` label vector.

    ``positive[a, p]`` is true when ``p != a`` and ``labels[p] == labels[a]``;
    ``negative[a, n]`` is true when ``labels[n] != labels[a]``.
    """
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    not_self = ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


def positive_counts_of(labels, positive):
    """``[B]`` int32: the number of positives of each anchor (samples sharing its label, itself
    excluded), from the ``[B, B]`` ``positive`` mask, or on eager PyTorch from the sorted
    ``labels`` (two binary searches: counting the rows of a boolean mask took 38 ms at
    B = 4096 there, against well under a millisecond)."""
    if not is_eager_torch():
        return count_true(positive, axis=1)
    import torch

    labels = ops.convert_to_tensor(labels)
    ordered = torch.sort(labels).values
    same = (torch.searchsorted(ordered, labels, right=True)
            - torch.searchsorted(ordered, labels, right=False))
    return (same - 1).to(torch.int32)


def count_true(mask, axis=None):
    """The int32 number of true entries of the boolean ``mask`` (along ``axis``, default all).

    On PyTorch the mask is counted as it is: Keras' ``count_nonzero`` warns there about ``.T`` of
    a tensor that is not 2-D, and summing first converts the mask to an integer tensor of four
    times its size.
    """
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.count_nonzero(mask, dim=axis).to(torch.int32)
    return ops.cast(ops.count_nonzero(mask, axis=axis), "int32")
