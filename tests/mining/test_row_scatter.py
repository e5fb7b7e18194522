"""The per-row scatters of the sort path (``tripletlab.mining.row_scatter``) against NumPy, on
the process's backend, eagerly and compiled."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import compiled, to_numpy
from tripletlab.mining.row_scatter import add_at_columns, row_segment_min, row_segment_sum


@pytest.fixture(params=["eager", "compiled"])
def run(request):
    return (lambda f: f) if request.param == "eager" else compiled


def case(seed=0, rows=5, columns=9, segments=4):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, columns)).astype(np.float32)
    ids = rng.integers(0, segments - 1, size=(rows, columns)).astype(np.int32)  # last empty
    return values, ids, segments


def test_row_segment_min_and_sum_match_numpy(run):
    values, ids, segments = case()
    minimum = to_numpy(run(lambda v, i: row_segment_min(v, i, segments))(
        keras.ops.convert_to_tensor(values), keras.ops.convert_to_tensor(ids)))
    total = to_numpy(run(lambda v, i: row_segment_sum(v, i, segments))(
        keras.ops.convert_to_tensor(values), keras.ops.convert_to_tensor(ids)))
    for row in range(values.shape[0]):
        for segment in range(segments):
            members = values[row][ids[row] == segment]
            expected_min = members.min() if members.size else np.inf
            assert minimum[row, segment] == expected_min
            np.testing.assert_allclose(total[row, segment], members.sum(), rtol=1e-6, atol=1e-6)


def test_add_at_columns_adds_repeated_columns_up(run):
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(3, 6)).astype(np.float32)
    columns = np.array([[0, 0, 5], [1, 2, 3], [4, 4, 4]], dtype=np.int32)
    values = rng.normal(size=(3, 3)).astype(np.float32)
    result = to_numpy(run(add_at_columns)(*(keras.ops.convert_to_tensor(a)
                                            for a in (matrix, columns, values))))
    expected = matrix.copy()
    for row in range(3):
        np.add.at(expected[row], columns[row], values[row])
    np.testing.assert_allclose(result, expected, rtol=1e-6)
