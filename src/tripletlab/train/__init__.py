"""Training workflow: configuration, callbacks, and the ``train`` function.

The experiment folder it fills is described (and read and written) by
:mod:`tripletlab.experiment`.

``tripletlab.train.config`` imports no Keras, so a configuration can be read and checked before
the backend is chosen; :func:`train` (in :mod:`tripletlab.train.run`) is imported on first use.

Example:
  >>> from tripletlab.train import resolve_config
  >>> resolve_config({"dataset": "digits", "epochs": 1}).model
  'small-cnn'
"""

from __future__ import annotations

import lazy_loader

from tripletlab.compat.omoindrot_params import load_params_json
from tripletlab.train.config import (
    ConfigError,
    TrainConfig,
    load_config_file,
    resolve_config,
)

__all__ = [
    "ConfigError",
    "TrainConfig",
    "load_config",
    "load_config_file",
    "load_params_json",
    "resolve_config",
    "train",
]


def load_config(path):
    """Reads a ``.toml`` / ``.json`` file and returns the checked :class:`TrainConfig`."""
    return resolve_config(load_config_file(path))


__getattr__, _, _ = lazy_loader.attach(__name__, submod_attrs={"run": ["train"]})
