"""Where a model file comes from: the experiment folder it sits in, and that run's settings.

A model file beside a ``config.json`` (an experiment's ``best.keras`` or ``last.keras``, see
:mod:`tripletlab.experiment`) belongs to that experiment: ``tripletlab export`` checks it on the
experiment's own data set and writes the distance it was trained with into the serving spec.

Example:
  >>> experiment_of("runs/quick/best.keras")  # doctest: +SKIP
  <tripletlab.experiment.Experiment object at ...>
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tripletlab.experiment import CONFIG_FILE, Experiment


def experiment_of(model_file: str | os.PathLike) -> Experiment | None:
    """The experiment folder ``model_file`` sits in (a ``config.json`` beside it), or ``None``."""
    folder = Path(model_file).parent
    return Experiment(folder) if (folder / CONFIG_FILE).is_file() else None


def experiment_config(experiment: Experiment) -> Any:
    """The experiment's resolved configuration (a :class:`tripletlab.train.TrainConfig`).

    Raises:
      ConfigError: ``config.json`` is not a tripletlab configuration (the message names it).
    """
    from tripletlab.train.config import load_config_file, resolve_config

    return resolve_config(load_config_file(experiment.path(CONFIG_FILE)), warn_unused=False)


def experiment_data(config: Any):
    """The :class:`tripletlab.data.Dataset` the experiment of ``config`` trained on (the same
    split, with its seed and test fraction)."""
    from tripletlab.train.training_data import load_data

    return load_data(config)
