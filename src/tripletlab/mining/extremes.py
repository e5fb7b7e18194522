"""The column and value of each row's smallest (or largest) entry, the way each backend is fastest.

Batch-hard and the sort-free semi-hard path pick columns by a row arg-minimum (or maximum). On
PyTorch that is one ``argmin`` kernel. XLA's CPU code for ``argmin`` is a variadic reduction
(value and index together) that it does not vectorise: on a ``1024 x 1024`` matrix
``jnp.argmin`` took 2.9 ms where ``jnp.min`` took 0.2 ms. On JAX and TensorFlow the column is
therefore found by two single-output reductions: the row's extreme value, then the smallest
column index holding it (column indices as float32, exact below ``2**24`` columns). Both forms
return the first column on ties, as ``argmin`` does, so every backend selects the same entries.

On TensorFlow this was measured in the three ways a loss runs there (B = 1024, value and
gradient, median of 11, alternating): under ``tf.function(jit_compile=True)`` semi-hard with
positive slots 18.1 ms with ``argmin`` and ``top_k`` against 11.3 ms with reductions (B = 4096:
203 against 171 ms), batch-hard 6.7 against 4.1 ms; in a ``tf.function`` without XLA 16.6
against 13.6 ms and 6.6 against 5.9 ms; eagerly 62 against 58 ms.
"""

from __future__ import annotations

import keras
from keras import ops


def selects_by_reductions() -> bool:
    """Whether selections (arg-extremes, positive slots) are made of plain reductions: on JAX
    and TensorFlow, where XLA's CPU ``argmin`` and ``top_k`` are the slow parts of the mining (and
    TensorFlow's own kernels were no faster); PyTorch keeps its ``argmin`` and ``top_k``."""
    return keras.backend.backend() in ("jax", "tensorflow")


def column_indices(keys):
    """``[1, B]`` float32 column numbers ``0 .. B-1`` of the rows of ``keys`` (``[R, B]``)."""
    return ops.expand_dims(ops.arange(ops.shape(keys)[1], dtype="float32"), 0)


def first_column_where(condition):
    """``[R, 1]`` float32: the first column where ``condition`` (``[R, B]`` boolean) holds,
    ``+inf`` in rows where it holds nowhere."""
    columns = column_indices(condition)
    return ops.min(ops.where(condition, columns, ops.full_like(columns, float("inf"))), axis=1,
                   keepdims=True)


def row_extreme(keys, largest: bool):
    """``(column, value)``, both ``[R, 1]``, of each row's largest (or smallest) key.

    ``column`` is int32 and the first such column; ``value`` is the key there. A row holding NaN
    gives a column in range (which one is unspecified) and a NaN value.
    """
    if not selects_by_reductions():
        column = ops.argmax(keys, axis=1) if largest else ops.argmin(keys, axis=1)
        column = ops.expand_dims(ops.cast(column, "int32"), 1)
        return column, ops.take_along_axis(keys, column, axis=1)
    value = ops.max(keys, axis=1, keepdims=True) if largest else ops.min(keys, axis=1,
                                                                          keepdims=True)
    first = first_column_where(keys == value)
    last = ops.cast(ops.shape(keys)[1] - 1, first.dtype)
    return ops.cast(ops.minimum(first, last), "int32"), value
