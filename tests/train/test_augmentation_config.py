"""The ``[augmentation]`` keys: off by default, TOML table and flags, bad values named, and
the data they refuse (backend-independent: no Keras computation)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tripletlab.cli.main import build_parser
from tripletlab.cli.train import build_config
from tripletlab.data.augmentation import AUGMENTATION_KEYS, describe
from tripletlab.train.config import ConfigError, ConfigTypeError, load_config_file, resolve_config


def test_off_by_default():
    config = resolve_config()
    assert config.augmentation() == {key: default for key, (default, _)
                                     in AUGMENTATION_KEYS.items()}
    assert describe(config.augmentation()) == []
    assert set(AUGMENTATION_KEYS) <= set(config.to_dict())  # saved in config.json


def test_toml_table_and_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[augmentation]\nflip = "horizontal"\nrotation = 0.05\nzoom = 0.2\n'
                    "brightness = 0.1\n")
    config = resolve_config(load_config_file(path))
    assert config.flip == "horizontal" and config.rotation == 0.05 and config.zoom == 0.2
    assert describe(config.augmentation()) == [
        "flip horizontal", "rotation ±0.05 of a turn", "zoom up to 0.2 (zoom in)",
        "brightness ±0.1"]
    args = build_parser().parse_args(["train", "--model-dir", str(tmp_path / "run"),
                                      "--config", str(path), "--flip", "vertical",
                                      "--hue", "0.02", "--contrast", "0.3"])
    config = build_config(args)
    assert (config.flip, config.hue, config.contrast, config.rotation) == (
        "vertical", 0.02, 0.3, 0.05)
    assert isinstance(config.hue, float)


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ({"flip": "horizontally"}, ConfigError, r"`flip`.*Did you mean 'horizontal'"),
        ({"flip": True}, ConfigError, r"flip"),
        ({"rotation": 0.75}, ConfigError, r"`rotation` <= 0.5.*0.75"),
        ({"rotation": -0.1}, ConfigError, r"`rotation` >= 0"),
        ({"zoom": 1.0}, ConfigError, r"`zoom` <= 0.9"),
        ({"translation": "0.1"}, ConfigTypeError, r"`translation` to be a number"),
        ({"brightness": float("nan")}, ConfigError, r"brightness"),
        ({"contrast": 1.5}, ConfigError, r"`contrast` <= 1"),
        ({"saturation": 1.0}, ConfigError, r"`saturation` <= 0.99"),
        ({"hue": 0.6}, ConfigError, r"`hue` <= 0.5"),
        ({"mode": "offline", "rotation": 0.1}, ConfigError,
         r"\[augmentation\] keys only with mode='online'.*rotation with mode='offline'"),
    ],
    ids=["flip-name", "flip-type", "rotation-high", "rotation-negative", "zoom", "type", "nan",
         "contrast", "saturation", "hue", "offline"],
)
def test_bad_values_are_named(values, error, match):
    with pytest.raises(error, match=match):
        resolve_config(values)


def test_bad_flag_value(tmp_path):
    args = build_parser().parse_args(["train", "--model-dir", str(tmp_path), "--zoom", "big"])
    with pytest.raises(ConfigError, match="Expected `--zoom` to be a number"):
        build_config(args)


def test_help_lists_the_keys():
    result = subprocess.run([sys.executable, "-m", "tripletlab.cli.main", "train", "--help"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Augmentation of the training batches" in result.stdout
    for key in AUGMENTATION_KEYS:
        assert f"--{key} " in result.stdout, key
    assert "horizontal_and_vertical" in result.stdout


def test_training_refuses_data_it_cannot_augment():
    from tripletlab.data import load_dataset
    from tripletlab.train.training_data import build_batches

    data = load_dataset("digits", seed=0)  # 8×8 greyscale
    config = resolve_config({"dataset": "digits", "saturation": 0.2})
    with pytest.raises(ConfigError, match=r"RGB images.*saturation=0.2 with 1-channel"):
        build_batches(config, data)
    batches = build_batches(resolve_config({"dataset": "digits", "flip": "horizontal"}), data)
    x, _ = batches[0]
    assert x.shape[1:] == (8, 8, 1) and not np.array_equal(x, data.x_train[
        batches.batch_indices(0)])
    plain = build_batches(resolve_config({"dataset": "digits"}), data)
    assert plain.augment is None
