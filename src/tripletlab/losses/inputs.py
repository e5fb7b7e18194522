"""Validation and dtype handling of the (labels, embeddings) pair every mining loss receives."""

from __future__ import annotations

import keras
from keras import ops

_HALF_DTYPES = ("float16", "bfloat16")


def compute_dtype(dtype: str) -> str:
    """The dtype a loss computes in: float32 for half-precision inputs, else the input's."""
    return "float32" if dtype in _HALF_DTYPES else dtype


def is_concrete(tensor) -> bool:
    """Whether ``tensor`` holds values now (eager), as opposed to a tracer inside a compiled graph.

    Value checks (non-finite embeddings) run only on concrete tensors; inside ``jit`` the values
    do not exist yet.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer)
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True


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
      ValueError: wrong ranks or shapes, mismatched batch sizes, non-floating embeddings, or
        (outside compiled code) non-finite embedding values.
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
    embeddings = ops.cast(embeddings, compute_dtype(input_dtype))
    if is_concrete(embeddings) and not bool(ops.all(ops.isfinite(embeddings))):
        raise ValueError(
            "Expected finite `embeddings`. Received: embeddings containing NaN or Inf values "
            "(the model diverged before the loss; lower the learning rate or check the inputs)."
        )
    return labels, embeddings, input_dtype
