"""Hypothesis fuzzing: any label structure, duplicate or zero rows, scales from 1e-30 to 1e19,
every loss/distance/margin kind and dtype -> a finite loss and a finite gradient."""

from __future__ import annotations

import keras
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tripletlab as tl
from conftest import value_and_gradient

LOSSES = {
    "semi-hard": lambda y, x, m, d, s: tl.losses.semi_hard_triplet_loss(y, x, m, distance=d,
                                                                        soft=s),
    "hard": lambda y, x, m, d, s: tl.losses.hard_triplet_loss(y, x, m, distance=d, soft=s),
    "batch-all": lambda y, x, m, d, s: tl.losses.batch_all_triplet_loss(y, x, m, distance=d,
                                                                        soft=s)[0],
}


@st.composite
def batches(draw):
    # A few sizes only, so compiled backend kernels are reused across examples.
    size = draw(st.sampled_from([2, 3, 8, 16]))
    classes = draw(st.integers(1, size))
    labels = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=size, max_size=size)))
    dim = draw(st.sampled_from([1, 4]))
    scale = draw(st.sampled_from([1e-30, 1e-3, 1.0, 30.0, 1e19]))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).normal(size=(size, dim)) * scale
    duplicates = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)),
                               max_size=4))
    for i, j in duplicates:
        x[i] = x[j]
    if draw(st.booleans()):
        x[draw(st.integers(0, size - 1))] = 0.0  # a zero row (normalisation edge case)
    return labels, x


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=batches(),
    loss=st.sampled_from(sorted(LOSSES)),
    distance=st.sampled_from(["L2", "squared-L2", "angular", "normalized-L2"]),
    margin=st.sampled_from([0.0, 0.2, 1.0, 5.0]),
    soft=st.booleans(),
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
)
def test_no_nan_or_inf(batch, loss, distance, margin, soft, dtype):
    labels, x = batch
    if dtype == "float16":
        assume(np.abs(x).max() < 1e4)  # float16 holds neither 1e19 nor 1e-30
    # squared-L2 distances of 1e19 embeddings exceed float32: a ValueError (test_distance_numerics)
    assume(not (distance == "squared-L2" and np.abs(x).max() > 1e15))
    tensor = keras.ops.convert_to_tensor(x.astype(np.float32), dtype=dtype)
    value, grad = value_and_gradient(
        lambda t: LOSSES[loss](labels, t, margin, distance, soft), tensor)
    assert np.isfinite(value), value
    assert np.all(np.isfinite(grad))
