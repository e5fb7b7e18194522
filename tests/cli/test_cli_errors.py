"""The command line reports user errors (tripletlab.errors) on one line with exit status 2, and
lets every other exception (a bug) through with its traceback."""

from __future__ import annotations

import pytest

import tripletlab.cli.train
from tripletlab import errors
from tripletlab.cli.main import main


def _train(tmp_path):
    return ["train", "--dataset", "digits", "--model-dir", str(tmp_path / "run")]


@pytest.mark.parametrize("error", [ValueError("internal bug"), KeyError("internal"),
                                   TypeError("internal bug"), OSError("internal bug"),
                                   ImportError("internal bug")],
                         ids=["ValueError", "KeyError", "TypeError", "OSError", "ImportError"])
def test_an_internal_error_propagates_with_its_traceback(tmp_path, monkeypatch, capsys, error):
    def broken(args):
        raise error

    monkeypatch.setattr(tripletlab.cli.train, "build_config", broken)
    with pytest.raises(type(error)) as raised:
        main(_train(tmp_path))
    assert raised.value is error
    assert raised.traceback[-1].name == "broken"  # the traceback reaches the faulty code
    assert "error:" not in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("error", [
    errors.ConfigError("Expected `x` >= 1. Received: x=0."),
    errors.ConfigTypeError("Expected `x` to be a number. Received: x='a'."),
    errors.MissingExtraError('Plotting needs matplotlib: pip install "tripletlab[viz]"'),
    errors.UserFileNotFoundError("Expected `--model` to be a file. Received: 'm.keras'."),
    errors.UserFileExistsError("'run' already holds a finished experiment."),
], ids=lambda e: type(e).__name__)
def test_a_user_error_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, error):
    def refused(args):
        raise error

    monkeypatch.setattr(tripletlab.cli.train, "build_config", refused)
    assert main(_train(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"tripletlab train: error: {error}"


def test_traceback_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPLETLAB_TRACEBACK", "1")
    with pytest.raises(errors.ConfigError, match="Unknown config key"):
        main([*_train(tmp_path), "--config", str(_bad_config(tmp_path))])


def _bad_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("lerning_rate = 0.1\n")
    return path


def test_real_refusals_raise_the_dedicated_classes(tmp_path):
    from tripletlab._checks import check_bool, check_choice, check_file, check_number
    from tripletlab.train.config import ConfigError, load_config_file, resolve_config

    assert ConfigError is errors.ConfigError  # still importable where it was defined first
    with pytest.raises(errors.ConfigError):
        resolve_config({"loss": "semi-hrad"})
    with pytest.raises(errors.ConfigTypeError):
        resolve_config({"epochs": "ten"})
    with pytest.raises(errors.ConfigError):
        load_config_file(_bad_config(tmp_path))
    with pytest.raises(errors.UserFileNotFoundError):
        load_config_file(tmp_path / "missing.toml")
    with pytest.raises(errors.UserIsADirectoryError):
        check_file("--model", tmp_path, "a .keras model file")
    with pytest.raises(errors.ConfigError):
        check_choice("distance", "cosine", ("L2",))
    with pytest.raises(errors.ConfigTypeError):
        check_number("margin", "1")
    with pytest.raises(errors.ConfigTypeError):
        check_bool("soft", 1)


def test_the_dedicated_classes_are_the_builtins_users_catch():
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ConfigTypeError, TypeError)
    assert issubclass(errors.ConfigTypeError, errors.ConfigError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert issubclass(errors.UserFileNotFoundError, FileNotFoundError)
    assert issubclass(errors.UserIsADirectoryError, IsADirectoryError)
    assert issubclass(errors.UserNotADirectoryError, NotADirectoryError)
    assert issubclass(errors.UserFileExistsError, FileExistsError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TripletlabError)
