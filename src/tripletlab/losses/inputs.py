"""Validation and dtype handling of the (labels, embeddings) pair every mining loss receives."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tripletlab.distances import NORMALIZED_DISTANCES
from tripletlab.mining.tracing import is_concrete

HALF_DTYPES = frozenset({"float16", "bfloat16"})
"""The half-precision dtypes, which every loss computes in float32."""


def compute_dtype(dtype: str) -> str:
    """The dtype a loss computes in: float32 for half-precision inputs, else the input's."""
    return "float32" if dtype in HALF_DTYPES else dtype


def prepare_inputs(labels, embeddings):
    """Checks and normalises a mining loss's inputs.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer labels, or float-encoded integers (Keras hands
        ``y_true`` over as floats).
      embeddings: ``[B, D]`` floating embeddings.

    Returns:
      ``(labels, embeddings, input_dtype)``: labels as a ``[B]`` vector, embeddings cast to the
      compute dtype (float32 for float16/bfloat16), and the embeddings' original dtype.

    Raises:
      ValueError: wrong ranks or shapes, an empty batch, mismatched batch sizes, non-floating
        embeddings, or (outside compiled code, where values exist) non-finite embedding values
        or labels that are not integers. Shapes are checked in compiled code too; values are
        not (there, float labels are compared as given).
    """
    embeddings = ops.convert_to_tensor(embeddings)
    labels = ops.convert_to_tensor(labels)
    input_dtype = keras.backend.standardize_dtype(embeddings.dtype)
    if not input_dtype.startswith(("float", "bfloat")):
        raise ValueError(
            "Expected `embeddings` to be a floating tensor. "
            f"Received: embeddings.dtype={input_dtype}"
        )
    if len(embeddings.shape) != 2:
        raise ValueError(
            "Expected `embeddings` of shape [batch_size, embedding_dim]. "
            f"Received: embeddings.shape={tuple(embeddings.shape)}"
        )
    if embeddings.shape[0] == 0:
        raise ValueError(
            "Expected a non-empty batch: `embeddings` of shape [batch_size, embedding_dim] with "
            f"batch_size >= 1. Received: embeddings.shape={tuple(embeddings.shape)}"
        )
    label_shape = tuple(labels.shape)
    if len(label_shape) == 2 and label_shape[1] == 1:
        labels = ops.reshape(labels, (-1,))
    elif len(label_shape) != 1:
        raise ValueError(
            "Expected `labels` of shape [batch_size] or [batch_size, 1] holding integer class "
            f"ids (not one-hot). Received: labels.shape={label_shape}"
        )
    batch, label_batch = embeddings.shape[0], labels.shape[0]
    if batch is not None and label_batch is not None and batch != label_batch:
        raise ValueError(
            "Expected `labels` and `embeddings` to have the same batch size. "
            f"Received: labels.shape={label_shape}, embeddings.shape={tuple(embeddings.shape)}"
        )
    label_dtype = keras.backend.standardize_dtype(labels.dtype)
    if label_dtype.startswith(("float", "bfloat")) and is_concrete(labels):
        whole = ops.logical_and(ops.isfinite(labels), ops.equal(labels, ops.round(labels)))
        if not bool(ops.all(whole)):
            example = ops.convert_to_numpy(labels)[~ops.convert_to_numpy(whole)][0]
            raise ValueError(
                "Expected `labels` to hold integer class ids (integers, or floats with integer "
                f"values as Keras passes them). Received: labels with the non-integer value "
                f"{float(example)!r}"
            )
    embeddings = ops.cast(embeddings, compute_dtype(input_dtype))
    if is_concrete(embeddings) and not bool(ops.all(ops.isfinite(embeddings))):
        raise ValueError(
            "Expected finite `embeddings`. Received: embeddings containing NaN or Inf values "
            "(the model diverged before the loss; lower the learning rate or check the inputs)."
        )
    return labels, embeddings, input_dtype


def bounded_distances(distances, distance):
    """``distances`` with ``inf`` entries (distances beyond the dtype's range) made finite.

    Eagerly, an ``inf`` entry raises ``ValueError`` (the loss would be ``inf`` or NaN); in
    compiled code, where values cannot be checked, such entries are clipped to the dtype's
    largest value so that the loss and its gradient stay finite. Only ``"L2"`` (inputs near the
    top of the float range) and ``"squared-L2"`` (distances above ~1.8e19 in float32) can
    overflow.

    Raises:
      ValueError: an entry is ``inf`` and ``distances`` is concrete.
    """
    if distance in NORMALIZED_DISTANCES:  # bounded: at most 2 or 4
        return distances
    dtype = keras.backend.standardize_dtype(distances.dtype)
    largest = float(np.finfo(dtype).max)
    # Distances are >= 0 (never NaN for finite embeddings): one reduction tells.
    concrete = is_concrete(distances)
    if concrete and not bool(ops.isfinite(ops.max(distances))):
        raise ValueError(
            f"Expected `embeddings` whose {distance} distances fit in {dtype} (at most "
            f"{largest:.3g}). Received: embeddings whose {distance} distances overflow; scale "
            "the embeddings down (e.g. normalise them) or use 'angular' or 'normalized-L2'."
        )
    return distances if concrete else ops.minimum(distances, largest)


def check_sample_weight(sample_weight, embeddings):
    """Raises ``ValueError`` unless ``sample_weight`` holds one weight per anchor.

    Accepted: ``None``, a scalar, ``[B]`` or ``[B, 1]`` for ``embeddings`` of shape ``[B, D]``
    (the mining losses weight anchors). Only shapes are checked, so this works in compiled code.
    """
    if sample_weight is None:
        return
    weight_shape = tuple(ops.shape(ops.convert_to_tensor(sample_weight)))
    batch = tuple(ops.shape(ops.convert_to_tensor(embeddings)))[0]
    if len(weight_shape) == 0:
        return
    if (len(weight_shape) == 1 or (len(weight_shape) == 2 and weight_shape[1] == 1)) and (
            weight_shape[0] is None or batch is None or weight_shape[0] == batch):
        return
    raise ValueError(
        "Expected `sample_weight` of shape [batch_size] or [batch_size, 1] (one weight per "
        f"anchor), or a scalar. Received: sample_weight.shape={weight_shape} for "
        f"embeddings.shape={tuple(ops.shape(ops.convert_to_tensor(embeddings)))}"
    )
