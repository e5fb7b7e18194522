"""Where each anchor's positives are: the batch ordered by label, one block of columns per class.

Sorting the ``B`` labels once (``O(B log B)``) puts every class in a contiguous block of that
order, so the positives of anchor ``a`` are the block of ``a``'s class minus ``a`` itself. The
mining paths that work on each anchor's positives (see :mod:`tripletlab.mining.positive_windows`)
read them from there in windows of a fixed width, instead of searching the ``[B, B]`` positive
mask.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops


class ClassBlocks(NamedTuple):
    """The batch ordered by label.

    Attributes:
      order: ``[N]`` int32 columns (the batch, or the references) in label order.
      position: ``[1, N]`` int32: where each column is in ``order`` (its inverse).
      start: ``[B, 1]`` int32: where anchor ``a``'s class starts in ``order``.
      end: ``[B, 1]`` int32: where it ends (exclusive).
      anchor: ``[B, 1]`` int32: each anchor's own column (the row number).
      largest: scalar int32: the largest class size.
    """

    order: object
    position: object
    start: object
    end: object
    anchor: object
    largest: object


def class_blocks(labels, reference_labels=None, reference_valid=None) -> ClassBlocks:
    """The :class:`ClassBlocks` of a ``[B]`` integer label vector.

    With ``reference_labels`` (``[N]``, the first ``B`` of them the anchors themselves, as in
    :func:`tripletlab.mining.label_masks`) the blocks are those of the references, and
    ``start`` / ``end`` say where each anchor's class lies among them. References that are not
    ``reference_valid`` are given a label below every anchor's, so no anchor's block holds them.
    """
    labels = ops.convert_to_tensor(labels)
    references = labels if reference_labels is None else ops.convert_to_tensor(reference_labels)
    if reference_valid is not None:
        outside = ops.cast(ops.min(labels), references.dtype) - 1
        references = ops.where(reference_valid, references, outside)
    order = ops.cast(ops.argsort(references), "int32")
    ordered = ops.take(references, order)
    start = ops.cast(ops.searchsorted(ordered, labels, side="left"), "int32")
    end = ops.cast(ops.searchsorted(ordered, labels, side="right"), "int32")
    anchor = ops.arange(ops.shape(labels)[0], dtype="int32")
    position = ops.expand_dims(ops.cast(ops.argsort(order), "int32"), 0)
    return ClassBlocks(order, position, ops.expand_dims(start, 1), ops.expand_dims(end, 1),
                       ops.expand_dims(anchor, 1), ops.max(end - start))
