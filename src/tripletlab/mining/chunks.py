"""Row chunking: bound the temporaries of row-wise mining to a fixed number of elements.

Mining is independent per anchor (row), so rows can be processed in slices whose temporaries
hold at most ``max_elements`` values each (32 MB in float32 by default): at B = 8192 the selection
works on ``1024 x 8192`` slices instead of ``8192 x 8192`` matrices. The number of slices is a
Python constant when the batch size is static (it always is under ``jit``), so compiled code
stays static-shaped; with an unknown batch size the rows are processed in one piece.
"""

from __future__ import annotations

from keras import ops

DEFAULT_MAX_ELEMENTS = 2**23


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
        max_elements = DEFAULT_MAX_ELEMENTS
    rows, columns = tensors[0].shape[0], tensors[0].shape[1]
    if rows is None or columns is None:
        return function(*tensors)
    chunk = max(1, max_elements // max(columns, 1))
    if chunk >= rows:
        return function(*tensors)
    outputs = [function(*(tensor[start:start + chunk] for tensor in tensors))
               for start in range(0, rows, chunk)]
    return tuple(ops.concatenate(parts, axis=0) for parts in zip(*outputs, strict=True))


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
