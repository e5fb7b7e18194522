"""Tests for tripletlab.visualization.LivePCA: one PCA fit, fixed axes, frames and a GIF."""

import keras
import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA

from tripletlab.visualization import LivePCA


def _data(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 12)
    x = (rng.normal(size=(48, 8)) + labels[:, None]).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[labels]
    return x, labels, targets


def _model(normalize=True):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8,)), keras.layers.Dense(4)]
    if normalize:
        layers.append(keras.layers.UnitNormalization())
    return keras.Sequential(layers)


def test_frames_gif_and_one_fixed_pca(tmp_path):
    x, labels, targets = _data()
    model = _model()
    model.compile(keras.optimizers.SGD(0.5), loss="mse")
    before = model.predict(x, verbose=0)
    expected_pca = PCA(n_components=2, random_state=0).fit(before)
    live = LivePCA(x, labels, tmp_path / "pca", class_names=["a", "b", "c", "d"],
                   frame_duration_ms=100)
    model.fit(x, targets, epochs=3, batch_size=16, verbose=0, callbacks=[live])

    names = sorted(p.name for p in (tmp_path / "pca").glob("frame_*.png"))
    assert names == ["frame_0000.png", "frame_0001.png", "frame_0002.png", "frame_0003.png"]
    assert live.frames == [tmp_path / "pca" / name for name in names]
    for frame in live.frames:
        with Image.open(frame) as image:
            assert image.size == (900, 750)
            pixels = np.asarray(image.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 5
        assert np.mean(np.any(pixels < 240, axis=-1)) > 0.005
    with Image.open(live.gif_path) as gif:
        assert gif.format == "GIF" and gif.size == (900, 750)
        assert gif.n_frames == 4

    # The PCA is the one fitted on the untrained model, never refitted.
    np.testing.assert_allclose(live.pca.components_, expected_pca.components_, atol=1e-5)
    np.testing.assert_allclose(live.pca.mean_, expected_pca.mean_, atol=1e-6)
    np.testing.assert_allclose(live.points[0], expected_pca.transform(before), atol=1e-5)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(live.points[-1], expected_pca.transform(after), atol=1e-4)
    assert not np.allclose(live.points[0], live.points[-1], atol=1e-3), "training moved nothing"

    # One box for every frame, and it fits the data (not the ±1 box of unit vectors).
    _assert_limits_fit(live, margin=0.1)
    assert not list((tmp_path / "pca").glob(".*")), "temporary file left behind"


def _assert_limits_fit(live, margin):
    everything = np.concatenate(live.points)
    low, high = everything.min(axis=0), everything.max(axis=0)
    pad = (high - low) * margin
    np.testing.assert_allclose(np.array(live.limits), np.stack([low - pad, high + pad], axis=1),
                               rtol=1e-5, atol=1e-6)
    assert all(limits == live.limits for limits in live.frame_limits)


def test_unnormalised_embeddings_fit_every_frame_with_margin(tmp_path):
    x, labels, _ = _data()
    model = _model(normalize=False)
    live = LivePCA(x, labels, tmp_path, embedding_model=model, margin=0.25)
    live.on_train_begin()
    _assert_limits_fit(live, margin=0.25)
    model.layers[-1].kernel.assign(model.layers[-1].kernel * 3.0)  # the cloud grows
    live.on_epoch_end(0, {"loss": 1.5})
    live.on_train_end()
    _assert_limits_fit(live, margin=0.25)  # frame 0 redrawn in the grown box
    assert [p.name for p in live.frames] == ["frame_0000.png", "frame_0001.png"]
    with Image.open(live.gif_path) as gif:
        assert gif.n_frames == 2


def test_tight_unit_norm_cloud_is_not_a_dot(tmp_path):
    # Unit vectors that all lie near one direction: the old ±1 box made the cloud a blob.
    rng = np.random.default_rng(0)
    x = (np.array([1.0, 0.0, 0.0, 0.0]) + 0.02 * rng.normal(size=(48, 4))).astype(np.float32)
    labels = np.repeat(np.arange(4), 12)
    model = keras.Sequential([keras.Input((4,)), keras.layers.UnitNormalization()])
    live = LivePCA(x, labels, tmp_path, embedding_model=model)
    live.on_train_begin()
    live.on_train_end()
    (x_low, x_high), (y_low, y_high) = live.limits
    spread = np.ptp(live.points[0], axis=0)
    assert x_high - x_low < 2 * spread[0] and y_high - y_low < 2 * spread[1]


@pytest.mark.parametrize("kwargs, error, message",
                         [({"y": np.zeros(5, int)}, ValueError, r"y.*\[48\]"),
                          ({"frame_duration_ms": 0}, ValueError, "frame_duration_ms"),
                          ({"batch_size": 2.5}, TypeError, "batch_size")],
                         ids=["labels", "duration", "batch-size"])
def test_bad_arguments_are_refused(tmp_path, kwargs, error, message):
    x, labels, _ = _data()
    arguments = {"x": x, "y": labels, "folder": tmp_path, **kwargs}
    with pytest.raises(error, match=message):
        LivePCA(**arguments)
