"""The sort path's building blocks (``tripletlab.mining.positive_windows``): row sorting (a
bitonic network under XLA), window widths and running extremes, against NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import compiled, to_numpy
from tripletlab.mining.positive_windows import (
    compiled_window_width,
    running_maximum,
    running_minimum_from_right,
    sort_rows,
)


@pytest.mark.parametrize("compile_it", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("width", [1, 2, 5, 8, 13, 64])
def test_sort_rows_matches_numpy_with_ties_and_padding(width, compile_it):
    rng = np.random.default_rng(width)
    values = rng.integers(0, 6, size=(7, width)).astype(np.float32)  # many ties
    values[:, width // 2:] = np.where(rng.random((7, width - width // 2)) < 0.5, np.inf,
                                      values[:, width // 2:])
    run = compiled(sort_rows) if compile_it else sort_rows
    np.testing.assert_array_equal(to_numpy(run(keras.ops.convert_to_tensor(values))),
                                  np.sort(values, axis=1))


def test_running_extremes_match_numpy():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4, 11)).astype(np.float32)
    values[1, 4] = np.inf
    minimum = to_numpy(running_minimum_from_right(keras.ops.convert_to_tensor(values)))
    np.testing.assert_array_equal(minimum, np.minimum.accumulate(values[:, ::-1], axis=1)[:, ::-1])
    numbers = rng.integers(0, 9, size=(4, 11)).astype(np.int32)
    maximum = to_numpy(running_maximum(keras.ops.convert_to_tensor(numbers)))
    np.testing.assert_array_equal(maximum, np.maximum.accumulate(numbers, axis=1))


@pytest.mark.parametrize("batch, width", [(1, 1), (12, 8), (40, 8), (100, 16), (1024, 128),
                                          (4096, 512), (8192, 1024)])
def test_compiled_window_width_is_a_power_of_two_near_an_eighth_of_the_batch(batch, width):
    assert compiled_window_width(batch) == width
