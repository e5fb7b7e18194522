"""TripletBatchAllLoss (docs/losses.md): float32 prefix sums at B = 8192 against float64.

Runs on the PyTorch pass only (about a minute there; several on eager JAX/TensorFlow on 2 CPU
cores). The prefix-sum code is the same ``keras.ops`` code on every backend, and the rank
searches each backend uses are tested against NumPy in ``test_rank_search.py``.
"""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import tripletlab as tl
from conftest import BACKEND, to_numpy

_SCRIPT = pathlib.Path(__file__).parents[2] / "benchmarks" / "check_batch_all_precision.py"


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "torch", reason="B = 8192 check runs on the PyTorch pass only")
def test_batch_all_at_8192_matches_float64():
    spec = importlib.util.spec_from_file_location("check_batch_all_precision", _SCRIPT)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(2048), 4))
    x = rng.normal(size=(8192, 128))  # distances ~16: the hard case for cancellation
    loss, fraction = tl.losses.batch_all_triplet_loss(labels, x.astype("float32"), 0.5)
    expected, expected_fraction = check.float64_batch_all(labels, x, 0.5)
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=2e-6)
    np.testing.assert_allclose(to_numpy(fraction), expected_fraction, rtol=1e-6)
