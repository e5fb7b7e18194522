"""TrainConfig: strict loading (unknown keys, types, values), params.json, and flag layering."""

from __future__ import annotations

import json

import pytest

from tripletlab.cli.main import build_parser
from tripletlab.cli.train import build_config
from tripletlab.train.config import (
    ConfigError,
    TrainConfig,
    load_config_file,
    load_params_json,
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
        ({"model_options": [1, 2]}, "model_options"),
    ],
    ids=["typo-key", "typo-key-2", "typo-value", "str-int", "zero-epochs", "negative-lr",
         "bool-type", "semi-margin", "compat-distance", "compat-soft", "npz-no-file",
         "file-wrong-dataset", "weight-decay", "decay-rate", "triplets-online", "jit",
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
    with pytest.warns(UserWarning, match="num_channels"):
        values = load_params_json(path)
    config = resolve_config(values)
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
