"""Row chunking: bound the temporaries of row-wise mining to a fixed number of elements.

Mining is independent per anchor (row), so rows can be processed in slices whose temporaries
hold at most ``max_elements`` values each (8 MB in float32 by default): at B = 8192 the selection
works on ``256 x 8192`` slices instead of ``8192 x 8192`` matrices. The number of slices is a
Python constant when the batch size is static (it always is under ``jit``), so compiled code
stays static-shaped; with an unknown batch size the rows are processed in one piece.

On JAX the equal-sized slices go through one ``jax.lax.map`` (a loop in the compiled code, the
remainder rows after it): XLA scheduled the slices of an unrolled Python loop together and
kept the temporaries of every slice live at once (a 4.4 GB temporary arena for semi-hard at
B = 8192, 1.7 GB with the loop), while a loop body's buffers are reused from slice to slice.
TensorFlow graphs (``tf.function``, ``fit``) loop the same way with ``tf.map_fn`` (sort paths
at B = 8192 under XLA: semi-hard 5.2 GB above the start in one piece, 2.6 GB in the loop;
batch-all 4.0 and 2.3 GB; unrolled slices took more than one piece there). Under XLA, inside a
``tf.cond`` branch of the function being traced, the rows are mined in one piece: when the cond
is differentiated, XLA cannot compile a loop in its branch (the gradient needs the loop's
intermediates as cond outputs). A ``tf.function`` called inside a cond (``fit``'s step with
``steps_per_execution > 1``) is traced on its own and loops. Eager TensorFlow and PyTorch run
the unrolled slices one after another.
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab.batch_sharding import batch_shards
from tripletlab.mining.row_scatter import add_at_columns
from tripletlab.mining.tracing import (
    in_tensorflow_condition_branch,
    in_tensorflow_graph,
    in_tensorflow_xla,
)

DEFAULT_MAX_ELEMENTS = 2**21
"""Slices of at most 8 MB in float32. Against 32 MB slices, at B = 4096 (value and gradient,
10-class batches) the sort path of semi-hard took 0.55 s instead of 0.75 s on JAX and as long
on TensorFlow without XLA, with 25-30 % less peak memory; the slot path as long, with 15-30 %
less; at B = 8192 TensorFlow's semi-hard sort path peaked 2.7 GB above the start instead of
3.0 GB."""

TORCH_MAX_ELEMENTS = 2**21
"""The default on eager PyTorch: slices of at most 8 MB in float32. Each elementwise operation
there allocates its result, and glibc maps blocks of 32 MB and more from the kernel and unmaps
them when freed, so each one would pay for faulting in fresh pages (at B = 4096 an addition into
a new 64 MB buffer took 19 ms, in place 1.7 ms); smaller blocks are reused from the heap and stay
in the cache."""


def map_row_chunks(function, *tensors, max_elements: int | None = None):
    """Applies ``function`` to row slices of ``tensors`` and concatenates its outputs by row.

    Args:
      function: maps row slices of every tensor to a tuple of tensors whose first axis is the
        slice's rows.
      *tensors: tensors that share their first axis (rows); the first one sets the slice size
        from its number of columns.
      max_elements: the most elements a ``rows x columns`` slice of the first tensor may hold
        (default :data:`DEFAULT_MAX_ELEMENTS`).

    Returns:
      The tuple of concatenated outputs.
    """
    if max_elements is None:
        max_elements = (TORCH_MAX_ELEMENTS if keras.backend.backend() == "torch"
                        else DEFAULT_MAX_ELEMENTS)
    rows, columns = tensors[0].shape[0], tensors[0].shape[1]
    if rows is None or columns is None:
        return function(*tensors)
    chunk = max(1, max_elements // max(columns, 1))
    if chunk >= rows:
        return function(*tensors)
    if keras.backend.backend() == "jax":
        return _mapped_row_chunks(function, tensors, chunk)
    if in_tensorflow_graph():
        if in_tensorflow_xla() and in_tensorflow_condition_branch():
            return function(*tensors)
        return _tensorflow_mapped_row_chunks(function, tensors, chunk)
    outputs = [function(*(tensor[start:start + chunk] for tensor in tensors))
               for start in range(0, rows, chunk)]
    return tuple(ops.concatenate(parts, axis=0) for parts in zip(*outputs, strict=True))


def _mapped_row_chunks(function, tensors, chunk):
    """JAX: ``function`` over ``rows // chunk`` slices in a ``jax.lax.map``, then the remainder."""
    import jax

    rows = tensors[0].shape[0]
    shards = batch_shards()
    if shards > 1 and chunk >= shards:
        return _strided_row_chunks(function, tensors, chunk // shards * shards)
    blocks, body = rows // chunk, rows // chunk * chunk
    stacked = tuple(ops.reshape(tensor[:body], (blocks, chunk, *tensor.shape[1:]))
                    for tensor in tensors)
    outputs = jax.lax.map(lambda block: tuple(function(*block)), stacked)
    return _with_remainder(function, tensors, outputs, blocks * chunk)


def _strided_row_chunks(function, tensors, chunk):
    """JAX under a distribution that splits the rows over devices in contiguous pieces: slice
    ``k`` holds rows ``k, k + blocks, k + 2 * blocks, ...`` (``[B] -> [chunk, blocks]``, the
    blocks axis moved first), so each slice takes ``chunk / devices`` rows of every device and
    the ``chunk`` axis stays split like the rows. With contiguous slices the loop's axis was the
    split one, and XLA gathered the stacked ``[blocks, chunk, B]`` inputs whole on every device.
    The outputs are put back in row order."""
    import jax

    rows = tensors[0].shape[0]
    blocks, body = rows // chunk, rows // chunk * chunk
    stacked = tuple(jax.numpy.swapaxes(ops.reshape(tensor[:body],
                                                   (chunk, blocks, *tensor.shape[1:])), 0, 1)
                    for tensor in tensors)
    outputs = jax.lax.map(lambda block: tuple(function(*block)), stacked)
    outputs = tuple(jax.numpy.swapaxes(output, 0, 1) for output in outputs)
    return _with_remainder(function, tensors, outputs, body)


def attach_gradient(distances, values, coefficients):
    """Per-row ``values`` whose gradient w.r.t. ``distances`` is ``coefficients`` (row-wise).

    ``values`` and ``coefficients`` were computed without autodiff (the mining's selections are
    piecewise constant, so ``coefficients = d values / d distances`` is known in closed form).
    The result equals ``values`` and differentiates as ``sum_j coefficients[a, j] * d[a, j]``,
    so the backward pass needs only ``coefficients``, not the mining's temporaries.
    """
    coefficients = ops.stop_gradient(coefficients)
    linear = ops.sum(coefficients * distances, axis=1)
    return linear + ops.stop_gradient(values - linear)


def attach_column_gradient(distances, values, columns, column_coefficients, coefficients=None):
    """Per-row ``values`` whose gradient w.r.t. ``distances`` is known at a few columns per row.

    The gradient is ``column_coefficients[a, j]`` at ``(a, columns[a, j])`` (added up where a
    column repeats), plus ``coefficients[a, :]`` when given, as in :func:`attach_gradient`.
    Everything but ``distances`` is taken without gradient.

    On JAX the column terms are spread into one dense ``[R, B]`` coefficient matrix (one
    comparison with the column numbers per column, fused by XLA) and differentiated as one
    product: under XLA on a CPU, gathering the columns and scattering their gradient back cost
    batch-all 17 ms per value + gradient at B = 1024 against 10 ms this way. On TensorFlow,
    when dense ``coefficients`` are given, the column terms are added into them by one scatter
    (``tf.tensor_scatter_nd_add``): the gathers' gradient was a dense ``[R, B]`` scatter of its
    own, added to the dense one (batch-all at B = 8192: 3.35 GB above the start without XLA,
    2.81 GB this way; 2.35 and 1.80 GB under XLA). Otherwise eager backends gather the
    ``R x K`` distances (a dense pass per column would cost more there).

    Args:
      distances: ``[R, B]`` distances (differentiated).
      values: ``[R]`` the values to return.
      columns: ``[R, K]`` int32 columns.
      column_coefficients: ``[R, K]`` the derivative of ``values`` at those columns.
      coefficients: optional ``[R, B]`` derivative at every column.
    """
    columns = ops.stop_gradient(columns)
    column_coefficients = ops.stop_gradient(column_coefficients)
    backend = keras.backend.backend()
    if backend == "tensorflow" and coefficients is not None:
        dense = add_at_columns(coefficients, columns, column_coefficients)
        linear = ops.sum(dense * distances, axis=1)
    elif backend == "jax":
        numbers = ops.expand_dims(ops.arange(ops.shape(distances)[1], dtype=columns.dtype), 0)
        dense = (ops.zeros_like(distances) if coefficients is None
                 else ops.stop_gradient(coefficients))
        for slot in range(columns.shape[1]):
            dense = dense + ops.where(numbers == columns[:, slot:slot + 1],
                                      column_coefficients[:, slot:slot + 1],
                                      ops.zeros_like(column_coefficients[:, :1]))
        linear = ops.sum(dense * distances, axis=1)
    else:
        linear = ops.sum(column_coefficients
                         * ops.take_along_axis(distances, columns, axis=1), axis=1)
        if coefficients is not None:
            linear = linear + ops.sum(ops.stop_gradient(coefficients) * distances, axis=1)
    return linear + ops.stop_gradient(values - linear)


def _tensorflow_mapped_row_chunks(function, tensors, chunk):
    """TensorFlow graphs: the full slices in one ``tf.map_fn`` over their numbers (one slice at
    a time, each cut inside the loop, so that neither the inputs nor the slices' buffers are
    copied at once), then the remainder rows.

    ``function`` is also traced on the first slice outside the loop, to learn its outputs'
    types and shapes; those operations feed no output, which graph pruning and XLA's dead-code
    elimination are meant to drop (not measured on its own: the B = 8192 timings in the README
    move more from run to run than one slice's cost).
    """
    import tensorflow as tf

    blocks = tensors[0].shape[0] // chunk
    probe = tuple(function(*(tensor[:chunk] for tensor in tensors)))
    signature = tuple(tf.TensorSpec(output.shape, output.dtype) for output in probe)

    def block(number):
        # tf.slice with a constant size: a static shape under XLA too (a dynamic range would
        # give XLA a slice of bounded dynamic size)
        return tuple(function(*(
            tf.slice(tensor, [number * chunk] + [0] * (tensor.shape.rank - 1),
                     [chunk, *tensor.shape[1:]])
            for tensor in tensors)))

    outputs = tf.map_fn(block, tf.range(blocks), fn_output_signature=signature,
                        parallel_iterations=1)
    return _with_remainder(function, tensors, outputs, blocks * chunk)


def _with_remainder(function, tensors, outputs, body):
    """The per-slice ``outputs`` of a loop (``[slices, chunk, ...]`` each, ``body`` rows in all)
    as rows, followed by ``function`` of the rows the full slices left over."""
    rows = tensors[0].shape[0]
    outputs = tuple(ops.reshape(output, (body, *output.shape[2:])) for output in outputs)
    if body == rows:
        return outputs
    rest = function(*(tensor[body:] for tensor in tensors))
    return tuple(ops.concatenate([output, part], axis=0)
                 for output, part in zip(outputs, rest, strict=True))
