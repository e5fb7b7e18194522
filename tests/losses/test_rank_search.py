"""The backend-native batched search and the portable binary search agree with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import to_numpy
from tripletlab.mining import rank


@pytest.mark.parametrize("length", [1, 2, 7, 64])
@pytest.mark.parametrize("strictly_below", [True, False], ids=["left", "right"])
def test_native_and_portable_search_match_numpy(length, strictly_below):
    rng = np.random.default_rng(length)
    # Few distinct values so that queries hit exact ties; +inf padding as in the miners.
    rows = np.sort(rng.integers(0, 5, size=(6, length)).astype("float32"), axis=1)
    rows[:, length - length // 3:] = np.inf
    queries = rng.integers(-1, 7, size=(6, 9)).astype("float32")
    side = "left" if strictly_below else "right"
    expected = np.stack([np.searchsorted(r, q, side=side) for r, q in zip(rows, queries)])
    native = rank.count_below if strictly_below else rank.count_at_or_below
    np.testing.assert_array_equal(to_numpy(native(rows, queries)), expected)
    np.testing.assert_array_equal(
        to_numpy(rank.binary_search(rows, queries, strictly_below)), expected)
