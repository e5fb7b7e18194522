"""The per-backend selection pieces of the sort-free mining paths, against NumPy.

On JAX the row arg-extremes and the positive slots are computed by plain reductions instead of
``argmin`` / ``top_k``, and batch-all's hinge counts come from its slope counts; these tests
pin the semantics every backend must share: the first column on ties, the positives in column
order, and the count of terms above 1e-16 even where gaps in ``(0, 1e-16]`` occur.
"""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

import tripletlab as tl
from conftest import to_numpy
from tripletlab.mining import hinge_counts_are_slope_counts, positive_slots, row_extreme


@pytest.mark.parametrize("largest", [False, True], ids=["min", "max"])
def test_row_extreme_is_the_first_column_on_ties(largest):
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 4, size=(64, 37)).astype("float32")  # many ties per row
    keys[5] = -np.inf if largest else np.inf  # a row of one repeated extreme
    column, value = row_extreme(ops.convert_to_tensor(keys), largest)
    expected = keys.argmax(axis=1) if largest else keys.argmin(axis=1)
    np.testing.assert_array_equal(to_numpy(column)[:, 0], expected)
    np.testing.assert_array_equal(to_numpy(value)[:, 0], keys[np.arange(64), expected])


def test_positive_slots_are_the_first_positives():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 9, size=50)
    mask = (labels[:, None] == labels[None, :]) & ~np.eye(50, dtype=bool)
    columns, valid = positive_slots(ops.convert_to_tensor(mask), 3)
    columns, valid = to_numpy(columns), to_numpy(valid)
    for row in range(50):
        positives = np.flatnonzero(mask[row])
        used = min(len(positives), 3)
        np.testing.assert_array_equal(valid[row], np.arange(3) < used)
        # distinct positives; every one of them when there are at most 3 (which 3 of more is
        # the backend's choice: PyTorch's top_k does not keep ties in column order)
        chosen = np.sort(columns[row, :used])
        assert len(set(chosen)) == used and set(chosen) <= set(positives)
        if len(positives) <= 3:
            np.testing.assert_array_equal(chosen, positives)
        assert ((columns[row] >= 0) & (columns[row] < 50)).all()


@pytest.mark.parametrize("margin", [0.0, 1e-30, 2.0**-29, 0.5], ids=str)
def test_batch_all_counts_with_gaps_below_the_threshold(margin):
    """Distances around 1e-17 and a tiny margin give hinge gaps in (0, 1e-16]: slope 1 but not
    counted (docs/losses.md, TripletBatchAllLoss: positive triplets have L > 1e-16). The slot
    path (max_positives) must count by that rule; with margins of at least 2**-29 it also
    agrees with the sort path (which counts gaps > 0, the same triplets there)."""
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(8), 4)
    x = (rng.normal(size=(32, 6)) * 1e-17).astype("float32")
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    same = labels[:, None] == labels[None, :]
    gaps = d[:, :, None] - d[:, None, :] + margin  # [a, p, n]
    valid = (same & ~np.eye(32, dtype=bool))[:, :, None] & ~same[:, None, :]
    tiny = valid & (gaps > 0) & (gaps <= 1e-16)
    if margin < 2.0**-29:
        assert tiny.sum() > 20, "the case must hold gaps in (0, 1e-16]"
    results = {}
    for max_positives in (None, 3):
        loss, fraction = tl.losses.batch_all_triplet_loss(
            ops.convert_to_tensor(labels.astype("int32")), ops.convert_to_tensor(x), margin,
            max_positives=max_positives)
        results[max_positives] = float(to_numpy(fraction))
    if margin >= 2.0**-29:
        assert results[3] == pytest.approx(results[None], rel=1e-6, abs=1e-9)
    gaps32 = (d.astype(np.float32)[:, :, None] - d.astype(np.float32)[:, None, :]
              + np.float32(margin))
    counted = (valid & (gaps32 > 1e-16)).sum()
    # Distances rounded apart from the NumPy ones may move a gap or two across 1e-16.
    assert results[3] == pytest.approx(counted / valid.sum(), abs=2.5 / valid.sum())


def test_slope_counts_rule_by_dtype():
    assert bool(to_numpy(hinge_counts_are_slope_counts(0.5, "float32")))
    assert bool(to_numpy(hinge_counts_are_slope_counts(2.0**-29, "float32")))
    assert not bool(to_numpy(hinge_counts_are_slope_counts(2.0**-30, "float32")))
    assert not bool(to_numpy(hinge_counts_are_slope_counts(0.0, "float32")))
