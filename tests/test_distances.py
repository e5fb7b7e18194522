"""Numerics of the distances, as docs/losses.md states them (distances).

Identical rows at distance exactly 0 on every backend (eager and compiled), float32 within 1e-5
of float64 for embeddings with norms up to 100 (also collapsed batches far from the origin),
finite losses and gradients for any finite scale, and ``angular`` / ``normalized-L2``
independent of the scale of the rows.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import BACKEND, compiled, to_numpy, value_and_gradient

DISTANCES = ("L2", "squared-L2", "angular", "normalized-L2")


def with_duplicates(rng, batch, dim, norm_range=(0.0, 100.0), offset=0.0):
    """Rows with norms in ``norm_range`` (plus a common ``offset``), many of them repeated."""
    x = rng.normal(size=(batch, dim))
    x *= rng.uniform(*norm_range, size=(batch, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    x += offset * rng.normal(size=dim) / np.sqrt(dim)
    origin = rng.integers(0, batch, size=batch)
    return x[origin].astype(np.float32), origin[:, None] == origin[None, :]


@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_rows_are_exactly_zero(distance):
    rng = np.random.default_rng(8)
    function = compiled(lambda t: tl.distances.pairwise_distances(t, distance))
    # The cases (values up to ~8 with D = 10; norms ~60), and sizes that leave partial
    # matmul tiles.
    cases = [(rng.uniform(-8, 8, size=(32, 10)).astype(np.float32), None)]
    cases += [with_duplicates(rng, batch, dim, (0.0, 100.0), offset)
              for batch, dim, offset in [(9, 130, 0.0), (33, 17, 60.0), (130, 128, 0.0),
                                         (64, 128, 60.0)]]
    for x, same in cases:
        if same is None:
            x[1::2] = x[::2]
            index = np.arange(len(x)) // 2
            same = index[:, None] == index[None, :]
        for run in (lambda t: tl.distances.pairwise_distances(t, distance), function):
            d = to_numpy(run(keras.ops.convert_to_tensor(x)))
            assert np.all(d[same] == 0.0), (x.shape, np.abs(d[same]).max())
            assert np.all(d[~same] > 0.0)


def test_paired_distances_of_identical_rows_are_exactly_zero():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(16, 128)) * 60).astype(np.float32)
    for distance in DISTANCES + ("mean-squared",):
        d = to_numpy(tl.distances.paired_distances(x, x.copy(), distance))
        assert np.all(d == 0.0), distance


def collapsed(rng, batch, dim, norm=100.0, spread=0.05):
    """Every row near one point of norm ``norm`` (early-training collapse)."""
    center = rng.normal(size=dim)
    center *= norm / np.linalg.norm(center)
    return center + spread * rng.normal(size=(batch, dim))


CASES = {
    "norms-up-to-100": lambda rng: with_duplicates(rng, 48, 128)[0],
    "norms-up-to-100-d10": lambda rng: with_duplicates(rng, 48, 10)[0],
    "cluster-at-60": lambda rng: with_duplicates(rng, 48, 10, (0.0, 3.0), offset=60.0)[0],
    "collapsed-at-100": lambda rng: collapsed(rng, 48, 16),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("distance", DISTANCES)
def test_float32_matches_float64(distance, case):
    x = CASES[case](np.random.default_rng(5)).astype(np.float32)
    expected = oracle.distance_matrix(x.astype(np.float64), distance)
    d = to_numpy(tl.distances.pairwise_distances(x, distance))
    np.testing.assert_allclose(d, expected, rtol=1e-5, atol=1e-5)
    if distance in ("L2", "squared-L2"):
        # Paired distances use differences: float32 rounding of the result only.
        paired = to_numpy(tl.distances.paired_distances(x, x[::-1].copy(), distance))
        np.testing.assert_allclose(paired, np.diag(expected[:, ::-1]), rtol=1e-6, atol=1e-6)


LOSSES = {
    "semi-hard": lambda y, x, d, s: tl.losses.semi_hard_triplet_loss(y, x, distance=d, soft=s),
    "hard": lambda y, x, d, s: tl.losses.hard_triplet_loss(y, x, soft=s, distance=d),
    "batch-all": lambda y, x, d, s: tl.losses.batch_all_triplet_loss(y, x, distance=d, soft=s)[0],
}
SCALES = (1e-30, 1e-10, 1.0, 1e10, 1e19)


def scale_case():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 4))
    x *= rng.uniform(0.5, 2.0, size=(8, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    x[5] = x[4]  # a duplicate across classes
    return np.repeat(np.arange(4), 2), x


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_any_finite_scale_gives_finite_loss_and_gradient(loss, distance, soft):
    labels, x = scale_case()
    results = {}
    for scale in SCALES:
        if distance == "squared-L2" and scale == 1e19:
            continue  # its distances exceed float32: see test_squared_l2_overflow_*
        value, grad = value_and_gradient(
            lambda t: LOSSES[loss](labels, t, distance, soft), (x * scale).astype(np.float32))
        assert np.isfinite(value) and np.all(np.isfinite(grad)), (scale, value)
        results[scale] = value, grad
    if distance in ("angular", "normalized-L2"):
        value_1, grad_1 = results[1.0]
        for scale, (value, grad) in results.items():
            np.testing.assert_allclose(value, value_1, rtol=1e-5, err_msg=str(scale))
            np.testing.assert_allclose(grad * scale, grad_1, rtol=1e-3,
                                       atol=1e-5 * np.abs(grad_1).max(), err_msg=str(scale))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_l2_losses_at_1e19_match_the_rescaled_oracle(loss):
    """Embeddings of scale 1e19: the L2 distances are 1e19 times those of the unscaled rows."""
    labels, x = scale_case()
    margin = 0.7e19
    expected = {"semi-hard": oracle.semi_hard, "hard": oracle.hard,
                "batch-all": oracle.batch_all}[loss](
        labels, oracle.distance_matrix(x, "L2"), 0.7)[0] * 1e19
    function = {
        "semi-hard": lambda: tl.losses.semi_hard_triplet_loss(labels, x32, margin),
        "hard": lambda: tl.losses.hard_triplet_loss(labels, x32, margin),
        "batch-all": lambda: tl.losses.batch_all_triplet_loss(labels, x32, margin)[0],
    }[loss]
    x32 = (x * 1e19).astype(np.float32)
    np.testing.assert_allclose(to_numpy(function()), expected, rtol=1e-5)


def test_squared_l2_overflow_is_a_clear_error_eagerly():
    labels, x = scale_case()
    with pytest.raises(ValueError, match=r"squared-L2 distances fit in float32"):
        tl.losses.hard_triplet_loss(labels, (x * 1e19).astype(np.float32), distance="squared-L2")


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs eagerly: the error above applies")
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_squared_l2_overflow_stays_finite_when_compiled(loss):
    labels, x = scale_case()
    x = keras.ops.convert_to_tensor((x * 1e19).astype(np.float32))
    value = compiled(lambda t: LOSSES[loss](labels, t, "squared-L2", False))(x)
    assert np.isfinite(to_numpy(value))


def test_l2_normalize_is_scale_invariant_and_keeps_zero_rows():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 8)).astype(np.float32)
    x[3] = 0.0
    unit = to_numpy(tl.distances.l2_normalize(x))
    np.testing.assert_allclose(np.linalg.norm(unit[:3], axis=1), 1.0, rtol=1e-6)
    assert np.all(unit[3] == 0.0)
    for scale in (1e-30, 1e-20, 1e20, 1e35):
        np.testing.assert_allclose(to_numpy(tl.distances.l2_normalize(x * np.float32(scale))),
                                   unit, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("distance", ("angular", "normalized-L2"))
def test_zero_row_gives_finite_gradient(distance):
    """A zero row among tiny ones (found by test_fuzz.py): no inf may reach the backward pass."""
    x = np.array([[0.0], [-1.3e-31], [6.4e-31], [1.0e-31]], dtype=np.float32)
    weights = keras.ops.convert_to_tensor(np.arange(16, dtype=np.float32).reshape(4, 4))
    value, grad = value_and_gradient(
        lambda t: keras.ops.sum(tl.distances.pairwise_distances(t, distance) * weights), x)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
