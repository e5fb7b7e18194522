"""The compat modules give the originals' values (docs/migrating.md), on every backend."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import to_numpy, value_and_gradient
from tripletlab.compat import omoindrot, tfa, triplet_tools


def _batch(seed, size=12):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=size)
    labels[:2] = 0
    return labels, rng.normal(size=(size, 5))


@pytest.mark.parametrize("metric", ["L2", "squared-L2", "angular"])
def test_tfa_semihard_matches_oracle(metric):
    labels, x = _batch(0)
    expected, _ = oracle.semi_hard(labels, oracle.distance_matrix(x, metric), 0.6)
    loss = tfa.TripletSemiHardLoss(margin=0.6, distance_metric=metric)
    np.testing.assert_allclose(to_numpy(loss(labels, x.astype("float32"))), expected, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(tfa.triplet_semihard_loss(labels, x.astype("float32"), 0.6, metric)),
        expected, rtol=1e-5)


@pytest.mark.parametrize("soft", [False, True])
def test_tfa_hard_matches_oracle(soft):
    labels, x = _batch(1)
    expected, _ = oracle.hard(labels, oracle.distance_matrix(x, "L2"), 0.4, soft)
    loss = tfa.TripletHardLoss(margin=0.4, soft=soft)
    np.testing.assert_allclose(to_numpy(loss(labels, x.astype("float32"))), expected, rtol=1e-5)


def test_tfa_golden_value_and_names():
    loss = tfa.TripletSemiHardLoss()
    assert loss.name == "triplet_semihard_loss"
    assert tfa.TripletHardLoss().name == "triplet_hard_loss"
    value = loss(np.array([0, 0]), np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32"))
    np.testing.assert_allclose(to_numpy(value), 2.4142137, rtol=1e-7)


def test_tfa_callable_metric_and_config():
    labels, x = _batch(2)

    def manhattan(embeddings):
        diff = keras.ops.expand_dims(embeddings, 1) - keras.ops.expand_dims(embeddings, 0)
        return keras.ops.sum(keras.ops.abs(diff), axis=-1)

    d = np.abs(x[:, None] - x[None]).sum(-1)
    expected, _ = oracle.semi_hard(labels, d, 1.0)
    loss = tfa.TripletSemiHardLoss(distance_metric=manhattan)
    np.testing.assert_allclose(to_numpy(loss(labels, x.astype("float32"))), expected, rtol=1e-5)
    config = tfa.TripletHardLoss(margin=0.2, soft=True, distance_metric="angular").get_config()
    assert {"margin": 0.2, "soft": True, "distance_metric": "angular"}.items() <= config.items()
    assert tfa.TripletHardLoss.from_config(config).get_config() == config


@pytest.mark.parametrize("squared", [False, True])
def test_omoindrot_matches_oracle(squared):
    labels, x = _batch(3)
    d = oracle.distance_matrix(x, "squared-L2" if squared else "L2")
    margin = 2.0 if squared else 0.5
    loss, fraction, _ = oracle.batch_all(labels, d, margin)
    got_loss, got_fraction = omoindrot.batch_all_triplet_loss(
        labels, x.astype("float32"), margin, squared=squared)
    np.testing.assert_allclose(to_numpy(got_loss), loss, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(got_fraction), fraction, rtol=1e-5)
    hard, _ = oracle.hard(labels, d, margin)
    np.testing.assert_allclose(
        to_numpy(omoindrot.batch_hard_triplet_loss(labels, x.astype("float32"), margin, squared)),
        hard, rtol=1e-5)


def test_omoindrot_no_triplets_gives_zero():
    loss, fraction = omoindrot.batch_all_triplet_loss(np.arange(4), np.eye(4, dtype="float32"), 0.5)
    assert to_numpy(loss) == 0.0 and to_numpy(fraction) == 0.0


# name -> (kind, semi_margin): triplet-tools accepts a semi_margin of either sign (its README:
# negative moves the semi-hard cutoff closer to the anchor, positive farther).
TT_CASES = {
    "semihard": ("semihard", 0.0),
    "semihard-semi-margin": ("semihard", 0.1),
    "semihard-negative-semi-margin": ("semihard", -0.1),
    "semihard-large-negative-semi-margin": ("semihard", -0.6),
    "hard": ("hard", None),
    "priming": ("priming", None),
}


def _triplet_tools_loss(kind, margin, semi_margin, metric):
    if kind == "semihard":
        return triplet_tools.triplet_batch_semihard_loss(margin, semi_margin, metric)
    if kind == "hard":
        return triplet_tools.triplet_batch_hard_loss(margin, metric)
    return triplet_tools.triplet_batch_priming_loss(metric)


def _triplet_tools_batch():
    labels, x = _batch(4, size=16)
    labels[-1] = 9  # an anchor without other positives: its self pair still forms a triplet
    return labels, x


@pytest.mark.parametrize("metric", ["euclidean_norm", "euclidean", "cosine"])
@pytest.mark.parametrize("case", sorted(TT_CASES))
def test_triplet_tools_matches_float64_oracle(case, metric):
    """Against the float64 oracle (triplet-tools' self pair shows float32 rounding: see
    docs/losses.md, triplet-tools losses)."""
    labels, x = _triplet_tools_batch()
    margin = 0.3
    kind, semi_margin = TT_CASES[case]
    d = oracle.triplet_tools_distance_matrix(x, metric)
    expected = oracle.triplet_tools(labels, d, kind, margin, semi_margin or 0.0)
    loss_function = _triplet_tools_loss(kind, margin, semi_margin, metric)
    value, grad = value_and_gradient(lambda t: loss_function(labels, t), x.astype("float32"))
    np.testing.assert_allclose(value, expected, rtol=2e-3, atol=2e-3)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("metric", ["euclidean_norm", "euclidean", "cosine"])
def test_triplet_tools_semi_margin_sign_changes_the_mined_negatives(metric):
    """The batch above tells the signs apart: clamping or ignoring semi_margin would fail."""
    labels, x = _triplet_tools_batch()
    d = oracle.triplet_tools_distance_matrix(x, metric)
    values = {s: oracle.triplet_tools(labels, d, "semihard", 0.3, s)
              for s in (-0.6, -0.1, 0.0, 0.1)}
    assert len({round(v, 4) for v in values.values()}) == len(values)
    for semi_margin, expected in values.items():
        loss_function = triplet_tools.triplet_batch_semihard_loss(0.3, semi_margin, metric)
        got = to_numpy(loss_function(labels, x.astype("float32")))
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)
        others = [v for s, v in values.items() if s != semi_margin]
        assert min(abs(got - v) for v in others) > 5e-3


@pytest.mark.parametrize("semi_margin", [float("nan"), float("inf"), -float("inf")])
def test_triplet_tools_refuses_non_finite_semi_margin(semi_margin):
    with pytest.raises(ValueError, match="semi_margin"):
        triplet_tools.triplet_batch_semihard_loss(1.0, semi_margin)


def test_compat_trains_in_keras():
    labels, x = _batch(5, size=32)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3),
                              keras.layers.UnitNormalization()])
    model.compile(optimizer="adam", loss=triplet_tools.triplet_batch_semihard_loss(0.5))
    history = model.fit(x.astype("float32"), labels, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_tripletlab_compat_namespace():
    assert tl.compat.tfa.TripletSemiHardLoss is tfa.TripletSemiHardLoss
    assert tfa.losses.TripletSemiHardLoss is tfa.TripletSemiHardLoss


# TF Addons' ``tfa.losses`` names for the triplet losses.
TFA_LOSSES_NAMES = ("TripletSemiHardLoss", "TripletHardLoss", "triplet_semihard_loss",
                    "triplet_hard_loss")

NAMESPACE_SCRIPT = """
import sys
import tripletlab as tl
tl.compat
assert "keras" not in sys.modules, "tripletlab.compat imported Keras"
assert sorted(dir(tl.compat)) == ["omoindrot", "tfa", "triplet_tools"], dir(tl.compat)
for name in NAMES:
    assert getattr(tl.compat.tfa.losses, name) is getattr(tl.compat.tfa, name), name
import tripletlab.compat.tfa as tfa
from tripletlab.compat.tfa.losses import TripletSemiHardLoss
assert tfa.losses.TripletSemiHardLoss is TripletSemiHardLoss
assert tfa.losses.TripletSemiHardLoss().name == "triplet_semihard_loss"
assert tl.compat.omoindrot.batch_all_triplet_loss and tl.compat.triplet_tools
print("ok")
"""


def test_compat_modules_reachable_from_a_fresh_import_tripletlab():
    """``import tripletlab as tl; tl.compat.tfa.losses`` in a fresh process, Keras loaded lazily."""
    script = f"NAMES = {TFA_LOSSES_NAMES!r}\n{NAMESPACE_SCRIPT}"
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().endswith("ok")
