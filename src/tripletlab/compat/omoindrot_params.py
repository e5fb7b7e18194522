"""omoindrot's ``params.json`` (tensorflow-triplet-loss's experiment files) read as tripletlab
configuration keys (Keras-free).

omoindrot's ``experiments/batch_all/params.json`` and ``experiments/batch_hard/params.json``
are accepted as they are: ``tripletlab train --model-dir DIR`` reads ``DIR/params.json`` below
``--config`` and the flags (see :mod:`tripletlab.train.config`).

Example:
  >>> import json, pathlib, tempfile
  >>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
  >>> _ = path.write_text(json.dumps({"triplet_strategy": "batch_hard", "margin": 0.5}))
  >>> sorted(load_params_json(path).items())
  [('loss', 'omoindrot-batch-hard'), ('margin', 0.5), ('model', 'omoindrot-cnn')]
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from tripletlab._checks import check_bool, check_choice, closest_key_hint
from tripletlab.distance_names import SQUARED_L2
from tripletlab.errors import ConfigError

__all__ = ["load_params_json"]

# omoindrot/tensorflow-triplet-loss params.json keys -> ours (``None``: mapped by hand).
_PARAMS_MAP = {
    "learning_rate": "learning_rate",
    "batch_size": None,
    "num_epochs": "epochs",
    "margin": "margin",
    "embedding_size": "embedding_dim",
    "triplet_strategy": None,
    "squared": None,
    "num_channels": "num_channels",
    "use_batch_norm": "use_batch_norm",
    "bn_momentum": "bn_momentum",
}
# Keys accepted without a value of ours, and what tripletlab does instead (one note lists them).
_PARAMS_NOTED = {
    "train_size": "the original's shuffle buffer; tripletlab shuffles the whole training set "
                  "every epoch",
    "eval_size": "the original's number of test points in the projector; tripletlab scores the "
                 "whole test split and exports `export_samples` test points",
    "image_size": "read from the data",
    "num_labels": "read from the data",
    "num_parallel_calls": "no counterpart",
    "save_summary_steps": "no counterpart: logs are written once per epoch",
}


def load_params_json(path: str | os.PathLike) -> dict[str, Any]:
    """Reads an omoindrot-style ``params.json`` and maps its keys onto ours.

    omoindrot's ``experiments/batch_all/params.json`` and ``experiments/batch_hard/params.json``
    are accepted as they are. The file selects omoindrot's network, ``model = "omoindrot-cnn"``,
    with its ``num_channels``, ``use_batch_norm`` and ``bn_momentum``; ``learning_rate``,
    ``margin`` keep their names; ``num_epochs`` → ``epochs``, ``embedding_size`` →
    ``embedding_dim``, ``batch_size`` → ``batch_size`` with ``sampler = "shuffled"`` (the
    original trains on plain shuffled batches), ``triplet_strategy`` ``batch_all`` →
    ``loss = "omoindrot-batch-all"``, ``batch_hard`` → ``"omoindrot-batch-hard"``,
    ``squared: true`` → ``distance = "squared-L2"``. The other keys of the originals
    (``train_size``, ``eval_size``, ``image_size``, ``num_labels``, ``num_parallel_calls``,
    ``save_summary_steps``) have no value of ours; one ``UserWarning`` says, for each one
    present, what tripletlab does instead (e.g. ``train_size``, the original's shuffle buffer:
    tripletlab shuffles the whole training set every epoch).

    Raises:
      ConfigError: a malformed file, an unknown key or a bad value.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"Could not parse {str(path)!r}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Expected {str(path)!r} to hold a JSON object. "
                          f"Received: {type(data).__name__}.")
    values: dict[str, Any] = {"model": "omoindrot-cnn"}
    noted = []
    for key, value in data.items():
        if key in _PARAMS_NOTED:
            noted.append(f"{key} ({_PARAMS_NOTED[key]})")
        elif key == "triplet_strategy":
            strategy = _wrap(check_choice, "triplet_strategy", value, ("batch_all", "batch_hard"))
            values["loss"] = {"batch_all": "omoindrot-batch-all",
                              "batch_hard": "omoindrot-batch-hard"}[strategy]
        elif key == "squared":
            if _wrap(check_bool, "squared", value):
                values["distance"] = SQUARED_L2
        elif key == "batch_size":
            values["batch_size"] = value
            values["sampler"] = "shuffled"
        elif key in _PARAMS_MAP:
            values[_PARAMS_MAP[key]] = value
        else:
            hint = closest_key_hint(str(key), [*_PARAMS_MAP, *_PARAMS_NOTED])
            raise ConfigError(f"Unknown key {key!r} in {str(path)!r}.{hint} Known params.json "
                              f"keys: {', '.join([*_PARAMS_MAP, *_PARAMS_NOTED])}.")
    if noted:
        warnings.warn(f"{path.name}: not used: {'; '.join(noted)}.", UserWarning, stacklevel=2)
    return values


def _wrap(check, *args):
    try:
        return check(*args)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None
