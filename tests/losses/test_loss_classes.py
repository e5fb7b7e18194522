"""Keras ``Loss`` classes: equal to the functional forms, serialisable, trainable with and
without ``jit_compile``, under mixed precision, with ``sample_weight`` weighting anchors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import BACKEND, record_slice_rows, to_numpy

CLASSES = {
    "semi-hard": (tl.losses.TripletSemiHardLoss, oracle.semi_hard),
    "hard": (tl.losses.TripletHardLoss, oracle.hard),
    "batch-all": (tl.losses.TripletBatchAllLoss, lambda *a: oracle.batch_all(*a)[::2]),
}


def _batch(seed=0, size=12, classes=4, dim=6):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(classes), size // classes))
    return labels, rng.normal(size=(size, dim)).astype("float32")


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("label_shape", ["[B]", "[B,1] float"])
def test_class_matches_oracle(name, label_shape):
    cls, reference = CLASSES[name]
    labels, x = _batch(seed=1)
    y_true = labels if label_shape == "[B]" else labels.reshape(-1, 1).astype("float32")
    loss = cls(margin=0.8, distance="normalized-L2")
    expected, _ = reference(labels, oracle.distance_matrix(x, "normalized-L2"), 0.8, False)
    np.testing.assert_allclose(to_numpy(loss(y_true, x)), expected, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_sample_weight_weights_anchors(name):
    cls, _ = CLASSES[name]
    labels, x = _batch(seed=2)
    loss = cls(margin=1.2)
    plain = to_numpy(loss(labels, x))
    assert plain > 0
    np.testing.assert_allclose(to_numpy(loss(labels, x, sample_weight=np.ones(12))), plain,
                               rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loss(labels, x, sample_weight=np.full(12, 3.0))),
                               3 * plain, rtol=1e-6)
    # Zero weight on every anchor of class 0 removes exactly those anchors' terms.
    per_anchor = to_numpy(cls(margin=1.2, reduction="none")(labels, x))
    weights = (labels != 0).astype("float32")
    np.testing.assert_allclose(to_numpy(loss(labels, x, sample_weight=weights)),
                               np.mean(per_anchor * weights), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_get_config_round_trip(name):
    cls, _ = CLASSES[name]
    loss = cls(margin=0.3, distance="angular", soft=True, name="custom")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert restored.get_config() == loss.get_config()
    labels, x = _batch(seed=3)
    np.testing.assert_allclose(to_numpy(restored(labels, x)), to_numpy(loss(labels, x)))


def _model(dim_in=6, dim_out=4, dtype=None):
    return keras.Sequential([
        keras.Input((dim_in,)),
        keras.layers.Dense(16, activation="relu", dtype=dtype),
        keras.layers.Dense(dim_out, dtype=dtype),
        keras.layers.UnitNormalization(dtype=dtype),
    ])


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_fit_smoke(name, jit_compile, tmp_path):
    cls, _ = CLASSES[name]
    labels, x = _batch(seed=4, size=64, classes=8)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=cls(margin=0.5),
                  metrics=tl.metrics.mining_metrics(margin=0.5), jit_compile=jit_compile)
    history = model.fit(x, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert 0.0 <= history.history["fraction_positive_triplets"][-1] <= 1.0
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.loss, cls)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_fit_under_mixed_precision_is_finite(name):
    cls, _ = CLASSES[name]
    labels, x = _batch(seed=5, size=64, classes=8)
    policy = "mixed_bfloat16" if BACKEND == "tensorflow" else "mixed_float16"
    keras.config.set_dtype_policy(policy)
    try:
        model = _model()
        model.compile(optimizer="adam", loss=cls(distance="squared-L2", soft=True))
        history = model.fit(x, labels, batch_size=32, epochs=2, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert np.all(np.isfinite(history.history["loss"]))


def test_soft_hard_loss_does_not_overflow():
    """TF Addons' log1p(exp(x)) is inf for gaps above ~88 in float32; softplus is not."""
    labels = np.array([0, 0, 1])
    x = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 0.1]], dtype="float32")  # gap ~ 400 (squared)
    value = to_numpy(tl.losses.TripletHardLoss(soft=True, distance="squared-L2")(labels, x))
    expected, _ = oracle.hard(labels, oracle.distance_matrix(x, "squared-L2"), 1.0, soft=True)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


SLOT_CLASSES = ("semi-hard", "batch-all")


@pytest.mark.parametrize("name", SLOT_CLASSES)
def test_max_positives_matches_oracle_and_round_trips(name):
    cls, reference = CLASSES[name]
    labels, x = _batch(seed=1)  # 4 classes x 3 samples: 2 positives per anchor
    expected, _ = reference(labels, oracle.distance_matrix(x, "normalized-L2"), 0.8, False)
    for max_positives in (2, 1):  # fits; too few (the sort path takes over)
        loss = cls(margin=0.8, distance="normalized-L2", max_positives=max_positives)
        np.testing.assert_allclose(to_numpy(loss(labels, x)), expected, rtol=1e-5)
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert restored.get_config()["max_positives"] == max_positives
        np.testing.assert_allclose(to_numpy(restored(labels, x)), expected, rtol=1e-5)


@pytest.mark.parametrize("name", SLOT_CLASSES)
@pytest.mark.parametrize("value, error", [(0, ValueError), (2.5, TypeError), ("3", TypeError)])
def test_bad_max_positives_is_refused(name, value, error):
    with pytest.raises(error, match=rf"`max_positives`.*Received: max_positives={value!r}"):
        CLASSES[name][0](max_positives=value)


@pytest.mark.parametrize("name", SLOT_CLASSES)
def test_fit_with_max_positives_under_jit(name):
    """Batches of 16 from 8 classes x 8 samples: some anchors have more than 3 positives, so
    compiled training steps take both paths."""
    cls, _ = CLASSES[name]
    labels, x = _batch(seed=4, size=64, classes=8)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=cls(margin=0.5, max_positives=3),
                  jit_compile=True)
    history = model.fit(x, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "jit"])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_fit_mines_in_row_slices_with_the_same_losses(name, jit_compile, monkeypatch):
    """``fit`` with several steps per call where the backend allows it (a TensorFlow step is
    then a function called inside a ``tf.cond``): with slices of 5 rows the losses of every
    batch are those of one piece. The learning rate is 0, so both runs see the same weights."""
    cls, _ = CLASSES[name]
    labels, x = _batch(seed=6, size=48, classes=4)
    slice_rows = record_slice_rows(monkeypatch)

    def batch_losses():
        keras.utils.set_random_seed(0)
        model = _model()
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss=cls(margin=0.5),
                      jit_compile=jit_compile,
                      steps_per_execution=1 if BACKEND == "torch" else 2)
        recorded = []
        callback = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: recorded.append(float(logs["loss"])))
        model.fit(x, labels, batch_size=12, epochs=1, shuffle=False, verbose=0,
                  callbacks=[callback])
        return recorded

    whole = batch_losses()
    assert slice_rows and set(slice_rows) == {12}
    slice_rows = record_slice_rows(monkeypatch, max_elements=5 * 12)
    sliced = batch_losses()
    assert max(slice_rows) == 5 and 2 in slice_rows
    np.testing.assert_allclose(sliced, whole, rtol=1e-5)
