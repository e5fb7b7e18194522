"""Each anchor's positives, sorted by distance, a fixed-width window at a time.

The sort paths of semi-hard and batch-all need, per anchor, its positive distances in order.
Sorting whole ``[B, B]`` rows costs several times the distance matrix on a CPU (XLA's CPU sort
is the slowest part: 160 ms for ``1024 x 1024`` on JAX). Only the positives need sorting, and
with the batch in label order (:mod:`tripletlab.mining.class_blocks`) they are one block of
columns per class: a window of ``width`` columns of that block is gathered and sorted
(``[R, width]``), and the negatives are placed among the sorted positives by a rank search.
Blocks wider than the window are covered by several windows, one after another; the work per
window is ``O(B log width)`` per anchor.

Eagerly the window is as wide as the largest class (one window); in compiled code its width
must be static, so it is fixed from the batch size (:func:`compiled_window_width`) and the
number of windows is decided at run time by a loop.
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab.mining.tracing import in_tensorflow_xla

# Under jit, the window covers a class of up to an eighth of the batch in one pass: a batch of
# ten classes or more needs one window (two for a class above B / 8), P x K batches one.
_COMPILED_WINDOW_FRACTION = 8
_SMALLEST_WINDOW = 8


def compiled_window_width(batch: int) -> int:
    """The window width used in compiled code for a batch of ``batch`` rows: a power of two
    near ``batch / 8``, at least 8 and at most ``batch``."""
    target = max(1, batch // _COMPILED_WINDOW_FRACTION)
    width = _SMALLEST_WINDOW
    while width < target:
        width *= 2
    return max(1, min(width, batch))


def window_plan(blocks, batch, concrete: bool):
    """``(width, windows)``: the static window width and the number of windows for the
    :class:`ClassBlocks` ``blocks`` of a batch of ``batch`` rows (``None`` under a dynamic
    shape). ``concrete``: the labels hold values now (eager), so that one window as wide as the
    largest class is used; otherwise the width is :func:`compiled_window_width` and the number
    of windows a scalar tensor."""
    if concrete:
        return max(1, int(blocks.largest)), 1
    width = compiled_window_width(batch) if batch is not None else 64
    windows = (blocks.largest + width - 1) // width
    return width, windows


def for_each_window(step, carry, windows):
    """``carry = step(index, carry)`` for ``index`` in ``range(windows)`` (``windows >= 1``):
    the first window in straight-line code, the others in a Python loop when ``windows`` is an
    int, else in a loop of the compiled code (``keras.ops.fori_loop``) that most batches run
    zero times (the first window's work then fuses with what follows it)."""
    carry = step(0, carry)
    if isinstance(windows, int):
        for index in range(1, windows):
            carry = step(index, carry)
        return carry
    return ops.fori_loop(1, windows, step, carry)


def sorted_positive_window(d, blocks, index, width):
    """The ``index``-th window of each anchor's positive distances, sorted ascending.

    Args:
      d: ``[R, B]`` distances of ``R`` anchors (not differentiated).
      blocks: the rows' :class:`tripletlab.mining.ClassBlocks`.
      index: which window (int or scalar tensor).
      width: the window width (a Python int).

    Returns:
      ``[R, width]``: the window's positive distances ascending, ``+inf`` after the last one.
    """
    last = ops.shape(d)[1] - 1
    positions = (blocks.start + index * width
                 + ops.expand_dims(ops.arange(width, dtype="int32"), 0))
    columns = ops.take(blocks.order, ops.minimum(positions, last))
    valid = ops.logical_and(positions < blocks.end, columns != blocks.anchor)
    return sort_rows(ops.where(valid, ops.take_along_axis(d, columns, axis=1), float("inf")))


def sort_rows(values):
    """``values`` ``[R, N]`` with each row sorted ascending (finite values and ``+inf``).

    Under XLA (JAX, TensorFlow with ``jit_compile=True``) by a bitonic sorting network: XLA's
    CPU sort calls a comparator per comparison, 12 ms for ``1024 x 128`` and 245 ms for
    ``4096 x 512`` on JAX, where the network's ``log2(N) (log2(N) + 1) / 2`` fused passes of
    minima and maxima took 1.5 and 22 ms. Elsewhere the backend's own sort (the network would be
    that many separate kernels there).
    """
    if keras.backend.backend() != "jax" and not in_tensorflow_xla():
        return ops.sort(values, axis=1)
    length = values.shape[1]
    size = 1
    while size < length:
        size *= 2
    if size != length:
        values = ops.concatenate(
            [values, ops.full((ops.shape(values)[0], size - length), float("inf"),
                              dtype=values.dtype)], axis=1)
    merged = 2
    while merged <= size:
        distance = merged // 2
        while distance >= 1:
            values = _compare_and_swap(values, size, merged, distance)
            distance //= 2
        merged *= 2
    return values[:, :length]


def _compare_and_swap(values, size, merged, distance):
    """One stage of the bitonic network: entries ``i`` and ``i + distance`` (``i``'s bit of
    ``distance`` clear) in order, ascending where ``i``'s bit of ``merged`` is clear."""
    blocks = size // (2 * distance)
    pairs = ops.reshape(values, (-1, blocks, 2, distance))
    first, second = pairs[:, :, 0, :], pairs[:, :, 1, :]
    ascending = ops.reshape((ops.arange(blocks) * 2 * distance) % (2 * merged) < merged,
                            (1, blocks, 1))
    low, high = ops.minimum(first, second), ops.maximum(first, second)
    return ops.reshape(ops.stack([ops.where(ascending, low, high),
                                  ops.where(ascending, high, low)], axis=2), (-1, size))


def in_window(positive, position, start, index, width, windows):
    """``[R, B]`` boolean: the positives that window ``index`` holds (all of them when there is
    one window). ``position`` is :class:`ClassBlocks`' ``[1, B]`` position of each column."""
    if isinstance(windows, int) and windows == 1:
        return positive
    return ops.logical_and(positive, (position - start) // width == index)


def running_minimum_from_right(values):
    """``out[r, j] = min(values[r, j:])`` for ``[R, N]`` ``values``: ``ceil(log2 N)`` steps of
    shifted minima (every backend, no scan)."""
    size, shift = values.shape[1], 1
    while shift < size:
        shifted = ops.concatenate(
            [values[:, shift:], ops.full_like(values[:, :shift], float("inf"))], axis=1)
        values = ops.minimum(values, shifted)
        shift *= 2
    return values


def running_maximum(values):
    """``out[r, j] = max(values[r, :j + 1])`` for ``[R, N]`` ``values`` (as above)."""
    size, shift = values.shape[1], 1
    while shift < size:
        shifted = ops.concatenate(
            [ops.full_like(values[:, :shift], -1), values[:, :-shift]], axis=1)
        values = ops.maximum(values, shifted)
        shift *= 2
    return values
