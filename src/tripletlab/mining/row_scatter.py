"""Scatters within rows: per-row segment reductions and additions at given columns.

``keras.ops`` has 1-D segment reductions only; each backend has a scatter that does a batch of
rows at once (``.at[]`` on JAX, ``tf.math.unsorted_segment_*`` and ``tf.tensor_scatter_nd_add``
over row-offset ids on TensorFlow, ``scatter_reduce_`` / ``scatter_add`` on PyTorch), used here.
Static shapes, no autodiff (callers pass frozen values).
"""

from __future__ import annotations

import keras
from keras import ops


def row_segment_min(values, ids, segments: int):
    """``[R, segments]``: per row, the minimum of ``values`` ``[R, B]`` with each id in
    ``ids`` ``[R, B]`` (integers in ``[0, segments)``); ``+inf`` for an empty segment."""
    return _row_segments(values, ids, segments, "min")


def row_segment_sum(values, ids, segments: int):
    """``[R, segments]``: per row, the sum of ``values`` with each id (0 for an empty segment)."""
    return _row_segments(values, ids, segments, "sum")


def _row_segments(values, ids, segments, reduction):
    backend = keras.backend.backend()
    values, ids = ops.stop_gradient(values), ops.stop_gradient(ids)
    if backend == "jax":
        import jax.numpy as jnp

        rows = jnp.arange(values.shape[0])[:, None]
        if reduction == "min":
            return jnp.full((values.shape[0], segments), jnp.inf, values.dtype).at[
                rows, ids].min(values)
        return jnp.zeros((values.shape[0], segments), values.dtype).at[rows, ids].add(values)
    if backend == "tensorflow":
        import tensorflow as tf

        rows = tf.shape(values)[0]
        flat_ids = tf.reshape(ids + tf.range(rows, dtype=ids.dtype)[:, None] * segments, [-1])
        flat_values = tf.reshape(values, [-1])
        if reduction == "min":
            reduced = tf.math.unsorted_segment_min(flat_values, flat_ids, rows * segments)
            # An empty segment holds the dtype's largest value: make it +inf.
            reduced = tf.where(reduced >= values.dtype.max, tf.constant(float("inf"), values.dtype),
                               reduced)
        else:
            reduced = tf.math.unsorted_segment_sum(flat_values, flat_ids, rows * segments)
        return tf.reshape(reduced, [rows, segments])
    import torch

    shape = (values.shape[0], segments)
    index = ids.to(torch.int64)
    if reduction == "min":
        output = torch.full(shape, float("inf"), dtype=values.dtype, device=values.device)
        return output.scatter_reduce_(1, index, values, "amin")
    return torch.zeros(shape, dtype=values.dtype, device=values.device).scatter_add_(
        1, index, values)


def row_index(ids):
    """``ids`` in the integer dtype the backend's scatters and gathers take (int64 on PyTorch,
    converted once instead of in every call; unchanged elsewhere)."""
    if keras.backend.backend() == "torch":
        import torch

        return ops.stop_gradient(ids).to(torch.int64)
    return ids


def take_columns(table, index):
    """``table[r, index[r, j]]`` for ``[R, N]`` ``table`` and ``[R, Q]`` ``index`` in range
    (``take_along_axis`` without its negative-index handling, which on PyTorch cost two more
    passes over ``index``)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.gather(table, 1, row_index(index))
    return ops.take_along_axis(table, index, axis=1)


def add_at_columns(matrix, columns, values):
    """``matrix`` ``[R, B]`` plus ``values[r, k]`` at ``(r, columns[r, k])`` (repeated columns
    add up), as a new tensor; ``columns`` and ``values`` are ``[R, K]``."""
    backend = keras.backend.backend()
    matrix, columns, values = (ops.stop_gradient(matrix), ops.stop_gradient(columns),
                               ops.stop_gradient(values))
    if backend == "jax":
        import jax.numpy as jnp

        return matrix.at[jnp.arange(matrix.shape[0])[:, None], columns].add(values)
    if backend == "tensorflow":
        import tensorflow as tf

        rows = tf.broadcast_to(tf.range(tf.shape(columns)[0], dtype=columns.dtype)[:, None],
                               tf.shape(columns))
        indices = tf.reshape(tf.stack([rows, columns], axis=-1), (-1, 2))
        return tf.tensor_scatter_nd_add(matrix, indices, tf.reshape(values, (-1,)))
    import torch

    return matrix.scatter_add(1, columns.to(torch.int64), values)
