"""TrainConfig: strict loading (unknown keys, types, values), params.json, and flag layering."""

from __future__ import annotations

import json

import pytest

from tripletlab.cli.main import build_parser
from tripletlab.cli.train import build_config
from tripletlab.compat.omoindrot_params import load_params_json
from tripletlab.train.config import (
    ConfigError,
    TrainConfig,
    load_config_file,
    resolve_config,
)


def test_defaults_resolve():
    config = resolve_config()
    assert isinstance(config, TrainConfig)
    assert config.dataset == "mnist-sample"
    assert config.margin == 1.0  # semi-hard's own default
    assert resolve_config({"loss": "batch-all"}).margin == 0.5
    assert resolve_config({"data_file": "x.npz"}).dataset == "npz"
    assert resolve_config({"schedule": "exponential"}).decay_rate == 0.9


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"learning_rat": 0.1}, "Did you mean 'learning_rate'"),
        ({"embeding_dim": 8}, "Did you mean 'embedding_dim'"),
        ({"loss": "semihard"}, "Did you mean 'semi-hard'"),
        ({"epochs": "3"}, "Expected `epochs` to be an integer"),
        ({"epochs": 0}, "Expected `epochs` >= 1"),
        ({"learning_rate": -1.0}, "Expected `learning_rate` > 0"),
        ({"soft": "yes"}, "Expected `soft` to be True or False"),
        ({"semi_margin": 0.1}, "only with loss='triplet-tools-semihard'"),
        ({"loss": "omoindrot-batch-all", "distance": "angular"}, "with loss='omoindrot"),
        ({"loss": "tfa-semi-hard", "soft": True}, "Expected `soft` only"),
        ({"dataset": "npz"}, "Expected `data_file`"),
        ({"dataset": "digits", "data_file": "a.npz"}, "only with dataset='npz'"),
        ({"weight_decay": 0.1}, "only with optimizer='adamw'"),
        ({"decay_rate": 0.5}, "only with schedule='exponential'"),
        ({"triplets": "hard"}, "only with mode='offline'"),
        ({"jit_compile": "maybe"}, "jit_compile"),
        ({"steps_per_execution": 0}, "steps_per_execution"),
        ({"model_options": [1, 2]}, "model_options"),
    ],
    ids=["typo-key", "typo-key-2", "typo-value", "str-int", "zero-epochs", "negative-lr",
         "bool-type", "semi-margin", "compat-distance", "compat-soft", "npz-no-file",
         "file-wrong-dataset", "weight-decay", "decay-rate", "triplets-online", "jit", "spe",
         "model-options"],
)
def test_bad_values_are_errors(values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(values)


def test_triplet_tools_semi_margin_allowed():
    config = resolve_config({"loss": "triplet-tools-semihard", "semi_margin": 0.1,
                             "distance": "normalized-L2"})
    assert config.semi_margin == 0.1


@pytest.mark.parametrize("semi_margin", ["-0.25", "0.25", "0"])
def test_triplet_tools_semi_margin_of_either_sign_from_the_command_line(tmp_path, semi_margin):
    """triplet-tools takes a negative semi_margin (a cutoff closer to the anchor): so do we."""
    args = build_parser().parse_args([
        "train", "--model-dir", str(tmp_path / "run"), "--loss", "triplet-tools-semihard",
        "--semi-margin", semi_margin])
    assert build_config(args).semi_margin == float(semi_margin)


@pytest.mark.parametrize("semi_margin", [float("nan"), float("inf")])
def test_semi_margin_must_be_finite(semi_margin):
    with pytest.raises(ConfigError, match="semi_margin"):
        resolve_config({"loss": "triplet-tools-semihard", "semi_margin": semi_margin})


def test_offline_mode_defaults():
    config = resolve_config({"mode": "offline"})
    assert config.triplets == "random" and config.margin == 1.0


def test_toml_tables_flatten_and_unknown_key(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('dataset = "digits"\n[loss]\nloss = "hard"\nmargin = 0.3\n'
                    '[model_options]\nwidths = [8, 16]\n')
    values = load_config_file(good)
    assert values == {"dataset": "digits", "loss": "hard", "margin": 0.3,
                      "model_options": {"widths": [8, 16]}}
    bad = tmp_path / "bad.toml"
    bad.write_text("[optimizer]\nlearnig_rate = 0.1\n")
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        load_config_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("epochs = = 3\n")
    with pytest.raises(ConfigError, match="Could not parse"):
        load_config_file(broken)


def test_json_config(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "sampler": "shuffled"}))
    assert resolve_config(load_config_file(path)).sampler == "shuffled"


def test_params_json_mapping(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps({
        "learning_rate": 1e-3, "batch_size": 64, "num_epochs": 7, "num_channels": 32,
        "use_batch_norm": False, "bn_momentum": 0.9, "margin": 0.5, "embedding_size": 64,
        "triplet_strategy": "batch_all", "squared": True, "image_size": 28,
        "num_labels": 10, "save_summary_steps": 50,
    }))
    with pytest.warns(UserWarning, match="image_size"):
        values = load_params_json(path)
    config = resolve_config(values)
    assert config.model == "omoindrot-cnn"
    assert (config.num_channels, config.use_batch_norm, config.bn_momentum) == (32, False, 0.9)
    assert (config.epochs, config.batch_size, config.embedding_dim, config.margin) == (7, 64, 64,
                                                                                       0.5)
    assert config.loss == "omoindrot-batch-all" and config.distance == "squared-L2"
    assert config.sampler == "shuffled"
    path.write_text(json.dumps({"triplet_strategy": "batch_hard"}))
    assert resolve_config(load_params_json(path)).loss == "omoindrot-batch-hard"
    path.write_text(json.dumps({"num_epoch": 3}))
    with pytest.raises(ConfigError, match="Did you mean 'num_epochs'"):
        load_params_json(path)
    path.write_text(json.dumps({"triplet_strategy": "batch_semi"}))
    with pytest.raises(ConfigError, match="batch_all"):
        load_params_json(path)


# omoindrot/tensorflow-triplet-loss experiments/batch_hard/params.json, key for key.
OMOINDROT_BATCH_HARD = {
    "learning_rate": 1e-4, "batch_size": 64, "num_epochs": 20,
    "num_channels": 32, "use_batch_norm": False, "bn_momentum": 0.9, "margin": 0.5,
    "embedding_size": 64, "triplet_strategy": "batch_hard", "squared": False,
    "image_size": 28, "num_labels": 10, "train_size": 50000, "eval_size": 10000,
    "num_parallel_calls": 4, "save_summary_steps": 50,
}


def test_omoindrot_params_json_as_is(tmp_path):
    """train_size / eval_size are accepted, with a note saying what tripletlab does instead."""
    path = tmp_path / "params.json"
    path.write_text(json.dumps(OMOINDROT_BATCH_HARD))
    with pytest.warns(UserWarning) as caught:
        config = resolve_config(load_params_json(path))
    (note,) = [str(w.message) for w in caught]
    assert "train_size (the original's shuffle buffer; tripletlab shuffles the whole" in note
    assert "eval_size" in note and "export_samples" in note
    assert (config.model, config.loss, config.epochs, config.learning_rate) == (
        "omoindrot-cnn", "omoindrot-batch-hard", 20, 1e-4)
    assert (config.num_channels, config.use_batch_norm, config.bn_momentum,
            config.embedding_dim) == (32, False, 0.9, 64)
    assert config.model_arguments() == {"num_channels": 32, "use_batch_norm": False,
                                        "bn_momentum": 0.9}


def test_omoindrot_model_keys():
    config = resolve_config({"model": "omoindrot-cnn"})
    assert (config.num_channels, config.use_batch_norm, config.bn_momentum) == (32, False, 0.9)
    config = resolve_config({"model": "omoindrot-cnn", "num_channels": 8, "use_batch_norm": True,
                             "bn_momentum": 0.99, "model_options": {}})
    assert config.model_arguments() == {"num_channels": 8, "use_batch_norm": True,
                                        "bn_momentum": 0.99}
    assert resolve_config({"model": "small-cnn"}).num_channels is None
    assert resolve_config({"model": "small-cnn", "model_options": {"widths": [8]}}
                          ).model_arguments() == {"widths": [8]}


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"num_channels": 32}, "Expected `num_channels` only with model='omoindrot-cnn'"),
        ({"model": "tfa-cnn", "use_batch_norm": True}, "`use_batch_norm` only with"),
        ({"model": "siamese-mlp", "bn_momentum": 0.9}, "`bn_momentum` only with"),
        ({"model": "omoindrot-cnn", "num_channels": 0}, "Expected `num_channels` >= 1"),
        ({"model": "omoindrot-cnn", "num_channels": 2.5}, "num_channels"),
        ({"model": "omoindrot-cnn", "use_batch_norm": "yes"}, "use_batch_norm"),
        ({"model": "omoindrot-cnn", "bn_momentum": 1.5}, "Expected `bn_momentum` <= 1.0"),
        ({"model": "omoindrot-cnn", "model_options": {"num_channels": 8}},
         "`num_channels` as a config key of its own"),
    ],
    ids=["channels-other-model", "bn-other-model", "momentum-other-model", "channels-0",
         "channels-float", "bn-type", "momentum-1.5", "in-model-options"],
)
def test_omoindrot_model_keys_errors(values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(values)


def test_omoindrot_model_flags(tmp_path):
    args = build_parser().parse_args([
        "train", "--model-dir", str(tmp_path / "run"), "--model", "omoindrot-cnn",
        "--num-channels", "16", "--use-batch-norm", "--bn-momentum", "0.8"])
    config = build_config(args)
    assert (config.num_channels, config.use_batch_norm, config.bn_momentum) == (16, True, 0.8)


def test_layers_defaults_params_file_flags(tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "params.json").write_text(json.dumps({"num_epochs": 9, "margin": 0.2,
                                                       "learning_rate": 0.5}))
    config_file = tmp_path / "c.toml"
    config_file.write_text("epochs = 4\nmargin = 0.3\n")
    args = build_parser().parse_args([
        "train", "--config", str(config_file), "--model-dir", str(model_dir),
        "--margin", "0.7", "--no-plots", "--model-options", '{"widths": [8]}'])
    config = build_config(args)
    assert config.learning_rate == 0.5  # params.json
    assert config.epochs == 4  # the file over params.json
    assert config.margin == 0.7  # the flag over the file
    assert config.plots is False
    assert config.model_options == {"widths": [8]}


def test_flag_with_bad_type(tmp_path):
    args = build_parser().parse_args(["train", "--model-dir", str(tmp_path), "--epochs", "x"])
    with pytest.raises(ConfigError, match="Expected `--epochs` to be an integer"):
        build_config(args)


def test_resume_refuses_config_changes(tmp_path):
    args = build_parser().parse_args(["train", "--model-dir", str(tmp_path), "--resume",
                                      "--loss", "hard"])
    with pytest.raises(ConfigError, match="--loss"):
        build_config(args)
