"""Pretrained Keras application backbones: building, --weights, freezing, the backbone's rate.

Building a backbone costs seconds (tens on JAX on a busy 2-core machine, where every random
initializer compiles per weight shape), so MobileNetV3Small at 32x32 carries the end-to-end
tests; the three larger backbones build and embed at 32x32 with random weights on every backend
(marked slow). The command-line runs use a generated image folder of coloured shapes.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from conftest import BACKEND
from tripletlab.errors import ConfigError
from tripletlab.models.backbone_rate import BackboneAdam, BackboneAdamW, BackboneSGD
from tripletlab.models.backbones import (
    BACKBONES,
    MIN_SIZE,
    backbone_model,
    backbone_of,
    is_backbone_variable,
)
from tripletlab.train.config import BACKBONE_MODELS, MODELS

Image = pytest.importorskip("PIL.Image")


def _run(command, timeout=600, **env):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run(command, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def _train(folder, *flags, **env):
    return _run([sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir",
                 str(folder), *flags], **env)


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    """4 classes x 6 PNGs of 32x32: a coloured square, disc, bar or cross per class."""
    from PIL import ImageDraw

    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(11)
    for label, shape in enumerate(("square", "disc", "bar", "cross")):
        (root / shape).mkdir()
        for index in range(6):
            image = Image.new("RGB", (32, 32), tuple(int(c) for c in rng.integers(0, 60, 3)))
            draw = ImageDraw.Draw(image)
            colour = tuple(int(c) for c in rng.integers(120, 256, 3))
            x, y = (int(v) for v in rng.integers(2, 8, 2))
            if shape == "square":
                draw.rectangle((x, y, x + 20, y + 20), fill=colour)
            elif shape == "disc":
                draw.ellipse((x, y, x + 22, y + 22), fill=colour)
            elif shape == "bar":
                draw.rectangle((x, y, x + 22, y + 6), fill=colour)
            else:
                draw.rectangle((x + 8, y, x + 13, y + 22), fill=colour)
                draw.rectangle((x, y + 8, x + 22, y + 13), fill=colour)
            image.save(root / shape / f"{label}_{index}.png")
    return root


# ----------------------------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------------------------


def test_config_names_the_same_backbones():
    assert tuple(BACKBONES) == BACKBONE_MODELS
    assert set(BACKBONE_MODELS) <= set(MODELS)


@pytest.mark.parametrize("shape, match", [
    ((31, 64, 3), f"at least {MIN_SIZE}x{MIN_SIZE}"),
    ((8, 8), f"at least {MIN_SIZE}x{MIN_SIZE}"),
    ((32, 32, 4), "1 or 3 channels"),
], ids=["small", "digits", "rgba"])
def test_refuses_bad_images(shape, match):
    with pytest.raises(ConfigError, match=match):
        backbone_model("mobilenet-v3-small", shape, 8, weights=None)


def test_refuses_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights|Received: weights="):
        backbone_model("mobilenet-v3-small", (32, 32, 3), 8, weights=tmp_path / "nothing.h5")


@pytest.fixture(scope="module")
def gray_small():
    return backbone_model("mobilenet-v3-small", (32, 32, 1), 8, weights=None)


def test_grayscale_gives_unit_norm_embeddings(gray_small):
    x = np.random.default_rng(0).random((3, 32, 32, 1), dtype=np.float32)
    embeddings = keras.ops.convert_to_numpy(gray_small(x, training=False))
    assert embeddings.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert gray_small.get_layer("gray_to_rgb") is not None
    assert backbone_of(gray_small).name == "backbone"
    head = [v.path for v in gray_small.trainable_variables if not is_backbone_variable(v)]
    assert sorted(head) == ["embedding_dense/bias", "embedding_dense/kernel"]


def test_weights_path_loads_into_the_backbone(gray_small, tmp_path):
    path = tmp_path / "backbone.weights.h5"
    backbone_of(gray_small).save_weights(path)
    other = backbone_model("mobilenet-v3-small", (32, 32, 1), 8, weights=str(path))
    for mine, theirs in zip(backbone_of(gray_small).get_weights(),
                            backbone_of(other).get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    fresh = backbone_of(backbone_model("mobilenet-v3-small", (32, 32, 1), 8, weights=None))
    assert any(not np.array_equal(a, b) for a, b in
               zip(backbone_of(gray_small).get_weights(), fresh.get_weights(), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet-v3-large", "efficientnet-v2-b0", "resnet50"])
def test_large_backbones_build_and_embed(name):
    model = backbone_model(name, (32, 32, 3), 8, weights=None)
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    if BACKEND == "jax":  # eager JAX runs the network op by op (10 s); compiled, 2-3 s
        embeddings = model.predict_on_batch(x)
    else:
        embeddings = model(x, training=False)
    embeddings = keras.ops.convert_to_numpy(embeddings)
    assert embeddings.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)


def test_resnet50_caffe_preprocessing_is_keras_own():
    from tripletlab.models.backbones import _caffe_preprocessing  # noqa: PLC2701 (its test)

    x = np.random.default_rng(2).random((2, 4, 4, 3), dtype=np.float32)
    mine = keras.ops.convert_to_numpy(_caffe_preprocessing()(x))
    expected = keras.applications.resnet50.preprocess_input(x * 255.0)
    np.testing.assert_allclose(mine, keras.ops.convert_to_numpy(expected), atol=1e-3)


# ----------------------------------------------------------------------------------------------
# the backbone's learning rate
# ----------------------------------------------------------------------------------------------


def _two_part_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="conv")(inputs)
    outputs = keras.layers.Dense(2, name="embedding_dense")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("optimizer_class", [BackboneSGD, BackboneAdam], ids=["sgd", "adam"])
def test_backbone_updates_are_scaled(optimizer_class):
    model = _two_part_model()
    variables = model.trainable_variables
    before = [np.array(v.numpy()) for v in variables]
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    optimizer = optimizer_class(learning_rate=0.1, backbone_learning_rate_multiplier=0.25)
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    for variable, start, grad in zip(variables, before, grads, strict=True):
        moved = variable.numpy() - start
        if optimizer_class is BackboneSGD:
            plain = -0.1 * grad
        else:  # Adam's first step: -lr * g / (|g| + eps) up to its bias correction
            plain = -0.1 * grad / (np.abs(grad) + 1e-7 / np.sqrt(1 - 0.999))
        ratio = 0.25 if is_backbone_variable(variable) else 1.0
        np.testing.assert_allclose(moved, ratio * plain, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("optimizer_class", [BackboneSGD, BackboneAdamW],
                         ids=["sgd", "adamw"])
def test_backbone_weight_decay_is_scaled(optimizer_class):
    model = _two_part_model()
    variables = model.trainable_variables
    before = [np.array(v.numpy()) for v in variables]
    optimizer = optimizer_class(learning_rate=0.1, weight_decay=0.2,
                                backbone_learning_rate_multiplier=0.25)
    # zero gradients: SGD's and AdamW's first step move the weights by the decay alone
    optimizer.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    for variable, start in zip(variables, before, strict=True):
        rate = 0.1 * (0.25 if is_backbone_variable(variable) else 1.0)
        np.testing.assert_allclose(variable.numpy(), start * (1 - 0.2 * rate), rtol=1e-6)
    assert any(is_backbone_variable(v) for v in variables)
    assert not all(is_backbone_variable(v) for v in variables)


CHECKPOINT_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    import tripletlab  # registers the optimizers

    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    optimizer = model.optimizer
    saved = np.load(sys.argv[2])
    print(type(optimizer).__name__, optimizer.backbone_learning_rate_multiplier,
          int(keras.ops.convert_to_numpy(optimizer.iterations)))
    for index, variable in enumerate(optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), saved[str(index)])
    print("SAME")
""")


def test_scaled_optimizer_checkpoint_round_trips(tmp_path):
    model = _two_part_model()
    model.compile(optimizer=BackboneAdam(1e-2, backbone_learning_rate_multiplier=0.1),
                  loss="mse")
    rng = np.random.default_rng(4)
    model.fit(rng.random((8, 4), dtype=np.float32), rng.random((8, 2), dtype=np.float32),
              epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "state.npz", **{str(i): keras.ops.convert_to_numpy(v)
                                        for i, v in enumerate(model.optimizer.variables)})
    (tmp_path / "load.py").write_text(CHECKPOINT_SCRIPT)
    result = _run([sys.executable, str(tmp_path / "load.py"), str(tmp_path / "model.keras"),
                   str(tmp_path / "state.npz")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BackboneAdam 0.1 4" in result.stdout and "SAME" in result.stdout


# ----------------------------------------------------------------------------------------------
# tripletlab train with a backbone, end to end
# ----------------------------------------------------------------------------------------------

TINY = ["--model", "mobilenet-v3-small", "--weights", "none", "--embedding-dim", "8",
        "--classes-per-batch", "2", "--samples-per-class", "2", "--steps-per-epoch", "2",
        "--eval-samples", "4", "--no-plots", "--no-tensorboard", "--verbose", "2",
        "--freeze-backbone-epochs", "1", "--backbone-learning-rate-multiplier", "0.1",
        "--test-fraction", "0.34", "--eval-every", "0"]

PLAIN_KERAS = textwrap.dedent("""
    import sys
    sys.modules["tripletlab"] = None  # plain Keras: tripletlab cannot be imported here
    import keras
    import numpy as np

    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    images = np.load(sys.argv[2]).astype("float32") / np.float32(255.0)
    embeddings = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(embeddings, np.load(sys.argv[3]), atol=1e-4)
    print("SAME", embeddings.shape)
""")


# The command-line runs use PyTorch whatever this pass's backend: a MobileNet run there takes
# 30 s against 150 s on JAX (XLA compiles) on a 2-core machine. What depends on the backend
# (the build, the optimizers, freezing and resuming) is tested in-process on every backend.
E2E_BACKEND = "torch"


@pytest.fixture(scope="module")
def trained(shapes_folder, tmp_path_factory):
    """Two epochs: the first with the backbone frozen, the second unfrozen (recompiled)."""
    pytest.importorskip(E2E_BACKEND)
    folder = tmp_path_factory.mktemp("backbone") / "run"
    result = _train(folder, "--image-folder", str(shapes_folder), "--epochs", "2", *TINY,
                    "--backend", E2E_BACKEND)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _keras_file_config(path):
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def test_train_freezes_then_unfreezes(trained):
    with open(trained / "log.csv", newline="") as stream:
        assert [row["epoch"] for row in csv.DictReader(stream)] == ["0", "1"]
    config = json.loads((trained / "config.json").read_text())
    assert config["weights"] == "none" and config["freeze_backbone_epochs"] == 1
    state = json.loads((trained / "checkpoints/state.json").read_text())
    assert state["epoch"] == 2
    saved = _keras_file_config(trained / "checkpoints/last.keras")
    backbone = [layer for layer in saved["config"]["layers"] if layer["name"] == "backbone"]
    assert backbone[0]["config"]["trainable"] is True  # unfrozen after epoch 1
    optimizer = saved["compile_config"]["optimizer"]
    assert optimizer["class_name"] == "BackboneAdam"
    assert optimizer["config"]["backbone_learning_rate_multiplier"] == pytest.approx(0.1)


def test_saved_backbone_model_loads_in_plain_keras(trained, tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_KERAS)
    result = _run([sys.executable, str(script), str(trained / "best.keras"),
                   str(trained / "embeddings/test_images.npy"),
                   str(trained / "embeddings/test_embeddings.npy")],
                  KERAS_BACKEND=E2E_BACKEND)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SAME" in result.stdout


def test_imagenet_offline_fails_fast_naming_the_alternatives(shapes_folder, tmp_path,
                                                           monkeypatch, capsys, gray_small):
    from tripletlab.cli.main import main

    # no cached file (an empty Keras home) and no network (a proxy that refuses connections)
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    status = main(["train", "--model-dir", str(tmp_path / "run"), "--image-folder",
                   str(shapes_folder), "--model", "mobilenet-v3-small", "--epochs", "1"])
    error = capsys.readouterr().err
    assert status == 2, error
    assert "--weights PATH" in error and "--weights none" in error, error
    assert "weights='imagenet'" in error
    assert not (tmp_path / "run" / "config.json").exists()


def _tiny_backbone_model():
    """A stand-in for a backbone model: a nested model named "backbone" (Dense + batch norm)
    and the head's layer names, small enough to train in a second."""
    inner_inputs = keras.Input((4,))
    inner = keras.layers.Dense(6, name="conv")(inner_inputs)
    inner = keras.layers.BatchNormalization(name="conv_bn")(inner)
    backbone = keras.Model(inner_inputs, inner, name="backbone")
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="embedding_dense")(backbone(inputs))
    outputs = keras.layers.UnitNormalization(name="embedding_norm")(x)
    return keras.Model(inputs, outputs)


def test_frozen_checkpoint_resumes_unfrozen(tmp_path):
    from tripletlab.train.backbone_phases import fit_in_phases, set_backbone_trainable
    from tripletlab.train.config import resolve_config
    from tripletlab.train.optimizer import build_optimizer

    config = resolve_config({"model": "mobilenet-v3-small", "weights": "none", "epochs": 2,
                             "freeze_backbone_epochs": 1,
                             "backbone_learning_rate_multiplier": 0.5})
    model = _tiny_backbone_model()
    set_backbone_trainable(model, False)
    model.compile(optimizer=build_optimizer(config, 2), loss="mse")
    rng = np.random.default_rng(5)
    x, y = rng.random((8, 4), dtype=np.float32), rng.random((8, 3), dtype=np.float32)
    start = [np.array(w) for w in backbone_of(model).get_weights()]
    # one epoch of two: the backbone frozen, its batch normalisation statistics included
    config_one = resolve_config({**config.to_dict(), "epochs": 1})
    fit_in_phases(model, config_one, x, y=y, initial_epoch=0, batch_size=4, verbose=0)
    for before, after in zip(start, backbone_of(model).get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    model.save(tmp_path / "last.keras")

    resumed = keras.saving.load_model(tmp_path / "last.keras", safe_mode=True)
    assert not backbone_of(resumed).trainable
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 2
    fit_in_phases(resumed, config, x, y=y, initial_epoch=1, batch_size=4, verbose=0)
    assert backbone_of(resumed).trainable
    assert isinstance(resumed.optimizer, BackboneAdam)
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 4
    moved = [not np.array_equal(a, b) for a, b in
             zip(start, backbone_of(resumed).get_weights(), strict=True)]
    assert all(moved)  # kernel, bias, gamma, beta and the moving statistics


@pytest.mark.parametrize("values, match", [
    ({"weights": "imagenet"}, "Expected weights='none' or the path"),
    ({"freeze_backbone_epochs": 1}, "only with a backbone model"),
    ({"backbone_learning_rate_multiplier": 0.1}, "only with a backbone model"),
    ({"model": "resnet50", "backbone_learning_rate_multiplier": -0.1}, ">= 0"),
    ({"model": "resnet50", "freeze_backbone_epochs": 1.5}, "freeze_backbone_epochs"),
], ids=["imagenet-small-cnn", "freeze-small-cnn", "multiplier-small-cnn", "negative",
        "fraction"])
def test_config_refuses(values, match):
    from tripletlab.train.config import resolve_config

    with pytest.raises(ConfigError, match=match):
        resolve_config(values)


def test_config_defaults():
    from tripletlab.train.config import resolve_config

    backbone = resolve_config({"model": "mobilenet-v3-small"})
    assert backbone.weights == "imagenet" and backbone.model_arguments() == {
        "weights": "imagenet"}
    assert resolve_config({"model": "resnet50", "weights": "none"}).model_arguments() == {
        "weights": None}
    assert resolve_config({}).weights == "none"


def test_small_model_loads_a_weights_file(tmp_path):
    from tripletlab.models import build_model
    from tripletlab.train.backbone_phases import load_initial_weights
    from tripletlab.train.config import resolve_config

    first = build_model("small-cnn", (8, 8, 1), 4, widths=[4])
    first.save_weights(tmp_path / "small.weights.h5")
    second = build_model("small-cnn", (8, 8, 1), 4, widths=[4])
    config = resolve_config({"weights": str(tmp_path / "small.weights.h5")})
    load_initial_weights(config, second)
    for mine, theirs in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_initial_weights(resolve_config({"weights": str(tmp_path / "no.h5")}), second)


def test_pretrained_backbone_keeps_batch_norm_frozen_after_unfreezing(tmp_path):
    from tripletlab.train.backbone_phases import fit_in_phases, set_backbone_trainable
    from tripletlab.train.config import resolve_config
    from tripletlab.train.optimizer import build_optimizer

    config = resolve_config({"model": "mobilenet-v3-small", "weights": "pretrained.weights.h5",
                             "epochs": 2, "freeze_backbone_epochs": 1})
    assert config.freeze_batch_norm and config.keeps_batch_norm_frozen()
    model = _tiny_backbone_model()
    set_backbone_trainable(model, False)
    model.compile(optimizer=build_optimizer(config, 2), loss="mse")
    rng = np.random.default_rng(6)
    x, y = rng.random((8, 4), dtype=np.float32), rng.random((8, 3), dtype=np.float32)
    backbone = backbone_of(model)
    dense, norm = backbone.get_layer("conv"), backbone.get_layer("conv_bn")
    statistics = [np.array(w) for w in norm.get_weights()]
    kernel = np.array(dense.get_weights()[0])
    fit_in_phases(model, config, x, y=y, initial_epoch=0, batch_size=4, verbose=0)
    assert backbone.trainable and dense.trainable and not norm.trainable
    assert not np.array_equal(kernel, dense.get_weights()[0])  # the backbone trained
    for before, after in zip(statistics, norm.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # gamma, beta, mean, variance kept
    model.save(tmp_path / "last.keras")
    resumed = keras.saving.load_model(tmp_path / "last.keras", safe_mode=True)
    assert not backbone_of(resumed).get_layer("conv_bn").trainable

    # freeze_batch_norm = false: batch normalisation trains once the backbone does
    trained = resolve_config({**config.to_dict(), "freeze_batch_norm": False})
    assert not trained.keeps_batch_norm_frozen()
    model = _tiny_backbone_model()
    norm = backbone_of(model).get_layer("conv_bn")
    statistics = [np.array(w) for w in norm.get_weights()]
    set_backbone_trainable(model, False)
    model.compile(optimizer=build_optimizer(trained, 2), loss="mse")
    fit_in_phases(model, trained, x, y=y, initial_epoch=0, batch_size=4, verbose=0)
    assert norm.trainable
    assert all(not np.array_equal(a, b) for a, b in zip(statistics, norm.get_weights(),
                                                          strict=True))


def test_batch_norm_trains_from_scratch_and_is_refused_without_a_backbone():
    from tripletlab.train.config import resolve_config

    assert not resolve_config({"model": "mobilenet-v3-small",
                               "weights": "none"}).keeps_batch_norm_frozen()
    with pytest.raises(ConfigError, match="freeze_batch_norm"):
        resolve_config({"model": "small-cnn", "freeze_batch_norm": False})


def test_offline_triplet_network_freezes_its_backbone():
    from tripletlab.models import TripletNetwork
    from tripletlab.train.backbone_phases import set_backbone_trainable

    network = TripletNetwork(_tiny_backbone_model())
    assert set_backbone_trainable(network, False)
    assert not backbone_of(network).trainable
    assert set_backbone_trainable(network, True, freeze_batch_norm=True)
    assert backbone_of(network).trainable
    assert not backbone_of(network).get_layer("conv_bn").trainable
    assert not set_backbone_trainable(network, True, freeze_batch_norm=True)  # nothing to do
