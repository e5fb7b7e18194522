"""Batched rank search: for each row, how many sorted values lie below each query.

``keras.ops.searchsorted`` takes a 1-D sequence only. TensorFlow (``tf.searchsorted``), PyTorch
(``torch.searchsorted``) and JAX (``vmap`` of ``jnp.searchsorted``) each have a batched search;
``benchmarks/bench_losses.py --component rank`` measured them 2x (JAX) to 5-7x (TensorFlow,
PyTorch) faster than the portable version here, so they are used on their backend, except
inside XLA-compiled TensorFlow code (``tf.function(jit_compile=True)``, which Keras' ``fit`` uses
on TensorFlow): XLA lowers ``tf.searchsorted`` to a broadcast comparison of every query with
every entry, an ``R x Q x N`` tensor (16 GB at B = 1024). Every other case gets
:func:`binary_search`, a vectorised binary search over all rows at once with
``take_along_axis``: ``ceil(log2(N + 1))`` steps of ``O(R x Q)`` work and memory, static
shapes. Both paths are tested to agree.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tripletlab.mining.tracing import in_tensorflow_xla

# Used when the row length is not known while tracing (a dynamic batch dimension): enough
# binary-search steps for rows of up to 2**32 - 1 entries.
_STEPS_FOR_UNKNOWN_LENGTH = 32


def binary_search(sorted_rows, queries, strictly_below: bool):
    """Portable batched search in ``keras.ops`` (see the module docstring)."""
    sorted_rows, queries = _frozen(sorted_rows), _frozen(queries)
    length = sorted_rows.shape[1]
    steps = (_STEPS_FOR_UNKNOWN_LENGTH if length is None
             else max(1, math.ceil(math.log2(length + 1))))
    dynamic_length = ops.shape(sorted_rows)[1]
    low = ops.zeros_like(queries, dtype="int32")
    high = ops.full_like(queries, dynamic_length, dtype="int32")
    last = dynamic_length - 1

    def step(_, bounds):
        low, high = bounds
        middle = (low + high) // 2
        probe = ops.take_along_axis(sorted_rows, ops.minimum(middle, last), axis=1)
        go_right = probe < queries if strictly_below else probe <= queries
        go_right = ops.logical_and(go_right, middle < high)
        return ops.where(go_right, middle + 1, low), ops.where(go_right, high, middle)

    # A loop rather than unrolled steps: a small graph compiles fast and reuses its buffers.
    low, _ = ops.fori_loop(0, steps, step, (low, high))
    return low


def _frozen(tensor):
    return ops.stop_gradient(ops.convert_to_tensor(tensor))


def _native_search(sorted_rows, queries, strictly_below: bool):
    backend = keras.backend.backend()
    side = "left" if strictly_below else "right"
    if backend == "tensorflow":
        import tensorflow as tf

        if in_tensorflow_xla():
            return binary_search(sorted_rows, queries, strictly_below)
        return tf.searchsorted(sorted_rows, queries, side=side, out_type=tf.int32)
    if backend == "torch":
        import torch

        return torch.searchsorted(sorted_rows.contiguous(), queries.contiguous(),
                                  right=not strictly_below, out_int32=True)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def search_row(row, row_queries):
            return jnp.searchsorted(row, row_queries, side=side, method="scan")

        return jax.vmap(search_row)(sorted_rows, queries).astype("int32")
    return binary_search(sorted_rows, queries, strictly_below)


def count_below(sorted_rows, queries):
    """Counts, per query, the entries of its row that are strictly smaller than the query.

    Args:
      sorted_rows: ``[R, N]``, each row sorted ascending (``+inf`` padding allowed at the end).
      queries: ``[R, Q]`` finite values; row ``r`` of ``queries`` searches row ``r``.

    Returns:
      ``[R, Q]`` int32 counts in ``[0, N]`` (NumPy's ``searchsorted(side="left")`` per row).
    """
    return _native_search(_frozen(sorted_rows), _frozen(queries), True)


def count_at_or_below(sorted_rows, queries):
    """Like :func:`count_below` but counts entries ``<=`` the query (``side="right"``)."""
    return _native_search(_frozen(sorted_rows), _frozen(queries), False)
