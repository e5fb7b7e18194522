"""Positive and negative pair masks from a label vector."""

from __future__ import annotations

from keras import ops


def label_masks(labels, reference_labels=None, reference_valid=None):
    """Returns the boolean masks ``(positive, negative)`` of anchors against references.

    Without references the anchors are their own references (``[B, B]``). With them, the
    ``[R, N]`` masks compare ``R`` anchors with ``N`` references whose first ``R`` are the
    anchors themselves (a batch followed by a memory of past embeddings).

    ``positive[a, p]`` is true when ``p != a``, ``labels[p] == labels[a]`` and ``p`` is valid;
    ``negative[a, n]`` is true when ``labels[n] != labels[a]`` and ``n`` is valid.

    Args:
      labels: ``[R]`` anchor labels.
      reference_labels: ``[N]`` reference labels (``None``: ``labels``).
      reference_valid: ``[N]`` boolean, false for references that take no part (empty places
        of a memory); ``None``: all valid.
    """
    if reference_labels is None:
        reference_labels = labels
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(reference_labels, 0))
    not_self = ops.logical_not(ops.eye(ops.shape(labels)[0], ops.shape(reference_labels)[0],
                                       dtype="bool"))
    positive, negative = ops.logical_and(same, not_self), ops.logical_not(same)
    if reference_valid is None:
        return positive, negative
    valid = ops.expand_dims(reference_valid, 0)
    return ops.logical_and(positive, valid), ops.logical_and(negative, valid)


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
