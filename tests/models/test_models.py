"""Embedding models: shapes, unit-norm outputs, safe ``.keras`` round trips, a fit smoke test."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from conftest import to_numpy
from tripletlab.atomic import atomic_path
from tripletlab.models import (
    BACKBONES,
    MODELS,
    build_model,
    omoindrot_cnn,
    siamese_mlp,
    small_cnn,
    tfa_tutorial_cnn,
)

# Small, repeated widths keep every test fast: on JAX each new weight shape costs an XLA
# compilation of its initializer, so the tests share as few shapes as possible.
DIM = 4
TINY = {
    "tfa-cnn": {"filters": (4, 4)},
    "siamese-mlp": {"widths": (4,)},
    "small-cnn": {"widths": (4, 4)},
    "omoindrot-cnn": {"num_channels": 2, "use_batch_norm": True},
}
# Models that reproduce an original without normalised embeddings.
UNNORMALIZED = ("omoindrot-cnn",)
SHAPES = {"digits": (8, 8, 1), "rgb": (6, 10, 3), "hw": (8, 8)}


def images(shape, count=5, seed=0):
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


# the backbones (32x32 at least, slow to build) are tested in tests/models/test_backbones.py
SMALL_MODELS = [name for name in MODELS if name not in BACKBONES]


def test_names():
    assert tuple(MODELS) == ("tfa-cnn", "siamese-mlp", "small-cnn", "omoindrot-cnn",
                             *BACKBONES)
    with pytest.raises(TypeError):
        MODELS["other"] = small_cnn  # read-only
    # the Keras-free configuration lists the same names (it validates before Keras loads)
    from tripletlab.train import config

    assert config.MODELS == tuple(MODELS)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name", SMALL_MODELS, ids=SMALL_MODELS)
def test_output_shape_and_unit_norm(name, shape):
    model = build_model(name, shape, embedding_dim=DIM, **TINY[name])
    assert model.output_shape == (None, DIM)
    out = to_numpy(model(images(shape), training=False))
    assert out.shape == (5, DIM)
    if name in UNNORMALIZED:
        assert not any(isinstance(layer, keras.layers.UnitNormalization)
                       for layer in model.layers)
        return
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert isinstance(model.layers[-1], keras.layers.UnitNormalization)


@pytest.mark.parametrize(
    ("name", "dim"),
    [("tfa-cnn", 256), ("siamese-mlp", 64), ("small-cnn", 64), ("omoindrot-cnn", 64)],
    ids=["tfa-cnn", "siamese-mlp", "small-cnn", "omoindrot-cnn"])
def test_default_embedding_sizes(name, dim):
    # Read from the signature: building the default models is slow on JAX (see DIM); the
    # tfa-cnn and siamese-mlp defaults are built in the tests below.
    parameter = inspect.signature(MODELS[name]).parameters["embedding_dim"]
    assert parameter.default == dim


def test_tfa_tutorial_architecture():
    model = tfa_tutorial_cnn((28, 28, 1))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D",
                     "Dropout", "Flatten", "Dense", "UnitNormalization"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [(64, (2, 2), "same"),
                                                                       (32, (2, 2), "same")]
    assert model.layers[-2].activation is keras.activations.linear
    assert model.count_params() == 410_208  # the tutorial's summary


def test_siamese_mlp_without_normalisation_is_the_notebook_model():
    model = siamese_mlp((28, 28, 1), normalize=False)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [(d.units, d.activation.__name__) for d in dense] == [(64, "relu"), (64, "sigmoid")]
    assert not any(isinstance(layer, keras.layers.UnitNormalization) for layer in model.layers)
    out = to_numpy(model(images((28, 28, 1))))
    assert np.all((out > 0) & (out < 1))


def test_small_cnn_pools_down_to_one_pixel_only():
    model = small_cnn((8, 8, 1), DIM, widths=(4,) * 5)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 3  # 8 -> 4 -> 2 -> 1, then no more
    model = small_cnn((1, 6, 1), DIM, widths=(4, 4))
    assert [p.pool_size for p in model.layers if isinstance(p, keras.layers.MaxPooling2D)] == [
        (1, 2), (1, 2)]


@pytest.mark.parametrize("use_batch_norm", [False, True], ids=["no-bn", "bn"])
def test_omoindrot_architecture(use_batch_norm):
    """omoindrot's model/model_fn.py: 2 x (3x3 conv 'same' -> [BN] -> ReLU -> 2x2 max-pool)."""
    model = omoindrot_cnn((28, 28, 1), embedding_dim=64, num_channels=32,
                          use_batch_norm=use_batch_norm, bn_momentum=0.9)
    block = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
    if not use_batch_norm:
        block.remove("BatchNormalization")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", *block, *block, "Flatten", "Dense"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides, c.padding, c.use_bias) for c in convs] == [
        (32, (3, 3), (1, 1), "same", True), (64, (3, 3), (1, 1), "same", True)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [(p.pool_size, p.strides) for p in pools] == [((2, 2), (2, 2))] * 2
    assert model.layers[-2].output.shape == (None, 7 * 7 * 64)  # the original's 7x7x64 reshape
    dense = model.layers[-1]
    assert dense.units == 64 and dense.activation is keras.activations.linear
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [(n.momentum, n.epsilon) for n in norms] == ([(0.9, 1e-3)] * 2 if use_batch_norm
                                                        else [])


def test_omoindrot_bn_momentum_is_tensorflow_1s_convention():
    """TF 1's batch_normalization(momentum=m): moving = m * moving + (1 - m) * batch mean."""
    model = omoindrot_cnn((4, 4, 1), embedding_dim=DIM, num_channels=2, use_batch_norm=True,
                          bn_momentum=0.75)
    norm = model.get_layer("block_1_bn")
    x = np.random.default_rng(0).normal(2.0, 1.0, size=(6, 4, 4, 2)).astype(np.float32)
    norm(x, training=True)
    np.testing.assert_allclose(to_numpy(norm.moving_mean), 0.25 * x.mean(axis=(0, 1, 2)),
                               rtol=1e-5)


@pytest.mark.parametrize("name", SMALL_MODELS, ids=SMALL_MODELS)
def test_save_and_load_with_safe_mode(tmp_path, name):
    model = build_model(name, (8, 8, 1), embedding_dim=DIM, **TINY[name])
    x = images((8, 8, 1))
    path = tmp_path / f"{name}.keras"
    with atomic_path(path) as temporary:
        model.save(temporary)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(to_numpy(loaded(x, training=False)),
                                  to_numpy(model(x, training=False)))
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded.layers)


def test_fit_smoke():
    model = build_model("small-cnn", (8, 8, 1), embedding_dim=DIM, **TINY["small-cnn"])
    model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    x = images((8, 8, 1), count=8)
    targets = np.random.default_rng(1).normal(size=(8, DIM)).astype(np.float32)
    history = model.fit(x, targets, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: build_model("resnet", (8, 8, 1)), ValueError, "Expected `name`"),
        (lambda: build_model("small-cnn", (8, 8, 1), width=(4,)), TypeError,
         "Did you mean 'widths'"),
        (lambda: build_model("tfa-cnn", (8, 8, 1), normalize=False), TypeError, "'normalize'"),
        (lambda: small_cnn((8, 8, 1, 1)), ValueError, "input_shape"),
        (lambda: small_cnn((8, 0, 1)), ValueError, "input_shape"),
        (lambda: small_cnn((8, 8, 1), widths=()), ValueError, "widths"),
        (lambda: small_cnn((8, 8, 1), embedding_dim=0), ValueError, "embedding_dim"),
        (lambda: tfa_tutorial_cnn((8, 8, 1), dropout=1.0), ValueError, "dropout"),
        (lambda: siamese_mlp((4,), output_activation="sigmoidal"), ValueError,
         "output_activation"),
        (lambda: siamese_mlp((4,), normalize="yes"), TypeError, "normalize"),
        (lambda: omoindrot_cnn((8, 8, 1), num_channels=0), ValueError, "num_channels"),
        (lambda: omoindrot_cnn((8, 8, 1), use_batch_norm=1), TypeError, "use_batch_norm"),
        (lambda: omoindrot_cnn((8, 8, 1), bn_momentum=1.5), ValueError, "bn_momentum"),
    ],
    ids=["name", "option-typo", "option-of-other-model", "rank", "zero-side", "no-widths",
         "dim-0", "dropout-1", "activation", "normalize", "channels-0", "bn-type",
         "bn-momentum"],
)
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_ints_and_keyword_name():
    model = build_model(name="siamese-mlp", input_shape=(np.int64(2), np.int64(2)),
                        embedding_dim=DIM, widths=(np.int64(4),))
    assert model.name == "siamese_mlp" and model.output_shape == (None, DIM)
    assert siamese_mlp((2, 2), DIM, (4,), name="encoder").name == "encoder"


def test_mlp_takes_any_shape_and_no_hidden_layer():
    model = siamese_mlp((2, 2), embedding_dim=DIM, widths=(), output_activation=None)
    assert to_numpy(model(images((2, 2)))).shape == (5, DIM)
