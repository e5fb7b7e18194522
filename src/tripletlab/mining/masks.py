"""Positive and negative pair masks from a label vector."""

from __future__ import annotations

from keras import ops


def label_masks(labels):
    """Returns the ``[B, B]`` boolean masks ``(positive, negative)`` for a ``[B]`` label vector.

    ``positive[a, p]`` is true when ``p != a`` and ``labels[p] == labels[a]``;
    ``negative[a, n]`` is true when ``labels[n] != labels[a]``.
    """
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    not_self = ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


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
