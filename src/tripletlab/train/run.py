"""What ``tripletlab train`` does, as a sequence of named stages: the folder, the data, the model,
``fit`` with checkpoints, and the finish (metrics, exports, pictures).

Each stage lives in a module named after it: :mod:`~tripletlab.train.training_data`,
:mod:`~tripletlab.train.compiled_model`, :mod:`~tripletlab.train.fit_plan`,
:mod:`~tripletlab.train.backbone_phases` and :mod:`~tripletlab.train.finish`.

Example:
  >>> from tripletlab.train import resolve_config, train
  >>> config = resolve_config({"dataset": "digits", "epochs": 2})  # doctest: +SKIP
  >>> metrics = train(config, "runs/digits")  # doctest: +SKIP
  >>> metrics["test_to_train"]["precision_at_1"]  # doctest: +SKIP
  0.97
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import keras

from tripletlab import experiment as ex
from tripletlab.atomic import write_json
from tripletlab.data.augmentation import describe as describe_augmentation
from tripletlab.train.backbone_phases import fit_in_phases
from tripletlab.train.batch_shape import fit_batch_shape
from tripletlab.train.compiled_model import check_backend, model_and_batches
from tripletlab.train.config import (
    ConfigError,
    TrainConfig,
    check_data,
    data_source,
    resolve_config,
)
from tripletlab.train.distribution import (
    check_distribute_backend,
    check_distribution,
    check_same_run,
    distribution_scope,
    process_index,
)
from tripletlab.train.finish import finish
from tripletlab.train.fit_plan import FitPlan, plan_fit, quiet_tensorflow_start_up
from tripletlab.train.process_folder import process_folder
from tripletlab.train.training_data import describe_data, load_data


def train(config: TrainConfig | Mapping[str, Any], model_dir: str | os.PathLike | ex.Experiment,
          *, resume: bool = False, overwrite: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Trains an embedding model and fills the experiment folder ``model_dir``.

    Everything is checked (configuration, target folder, data, model) before the first file
    is written: a bad option or bad data writes nothing. The folder is locked against other
    processes for the whole run (:mod:`tripletlab.folder_lock`), so a second run, an
    ``overwrite`` or a ``resume`` of it elsewhere is refused while this one runs. Every file
    written is recorded in ``manifest.json`` first; ``overwrite`` removes only recorded files.
    Ctrl-C stops training between two steps (``KeyboardInterrupt``), leaving the last finished
    epoch resumable.

    Args:
      config: a :class:`TrainConfig`, or a dict of options for :func:`resolve_config`.
      model_dir: the experiment folder (see :mod:`tripletlab.experiment`), or an
        :class:`~tripletlab.experiment.Experiment` whose lock the caller may already hold.
      resume: continue from ``checkpoints/last.keras`` at the epoch in ``state.json``, with
        the samplers' and random generators' state, so the run continues as if never
        stopped; a run stopped before its first checkpoint starts again.
      overwrite: replace a previous experiment's outputs in ``model_dir`` (the files its
        ``manifest.json`` names; other files stay).
      verbose: 0 silent, 1 progress bar and one line per epoch, 2 one line per epoch.

    Returns:
      The final metrics of the model in ``best.keras``: ``{"test_to_train": {...},
      "test_leave_one_out": {...}, "model": "best.keras", "best_epoch": ..., "backend": ...,
      "epochs": ..., "train_seconds": ...}`` (also written to ``metrics.json``).

    Raises:
      ConfigError: a bad configuration, or data that cannot train (one class, no positive
        pair; see :func:`tripletlab.train.config.check_data`), or ``distribute`` on a backend
        other than JAX, with several processes or with a global batch the devices cannot share
        evenly (see :mod:`tripletlab.train.distribution`).
      FileExistsError: ``model_dir`` holds an experiment and neither flag was given, or
        holds other files and is not a tripletlab experiment.
      FileNotFoundError: missing data.
      ExperimentInUseError: another process holds ``model_dir``.
      OSError: ``model_dir`` cannot be written (a :class:`~tripletlab.errors.UserFileError`).
      KeyboardInterrupt: Ctrl-C.
    """
    if not isinstance(config, TrainConfig):
        config = resolve_config(config)
    check_backend(config)
    check_distribute_backend(config.distribute, keras.backend.backend())
    # distribute: the model is built (or loaded) and fit under the distribution; with several
    # processes (hosts), process 0 writes model_dir and the others a private folder each
    with distribution_scope(config), process_folder(
            model_dir, resume=resume, overwrite=overwrite) as (experiment, resume, overwrite):
        with experiment.lock("train"):
            return train_in_locked_folder(config, experiment, resume=resume,
                                          overwrite=overwrite,
                                          verbose=verbose if process_index() == 0 else 0)


def train_in_locked_folder(config: TrainConfig, experiment: ex.Experiment, *, resume: bool,
                           overwrite: bool, verbose: int) -> dict[str, Any]:
    """:func:`train`, once the folder's lock is held. Everything that can fail on bad input
    happens before the first write."""
    target, state = folder_state(experiment, config, resume=resume, overwrite=overwrite)
    config, data = prepared_data(config, verbose)
    check_distribution(config)  # a global batch the devices share evenly
    check_same_run(config, data.y_train)  # several processes: the same run on every host
    quiet_tensorflow_start_up()  # before set_random_seed, which imports TensorFlow
    keras.utils.set_random_seed(config.seed)
    model, batches = model_and_batches(config, data, experiment, state)
    plan = plan_fit(config, data, model, batches, experiment, state, verbose)
    if verbose and config.mode == "online" and describe_augmentation(config.augmentation()):
        print("Augmenting the training batches: "
              + ", ".join(describe_augmentation(config.augmentation())), flush=True)

    # From here on, files are written, each recorded in the manifest first.
    start_writing(experiment, target)
    with plan.guard:
        write_json(experiment.path(ex.CONFIG_FILE), config.to_dict(), record=experiment.record)
        try:
            fit(model, config, plan, initial_epoch=int(state["epoch"]) if state else 0,
                verbose=verbose)
        finally:
            experiment.record_tensorboard()
        return finish(experiment, config, data, plan.embedding_model,
                      train_seconds=plan.checkpoints.train_seconds, verbose=verbose)


def folder_state(experiment: ex.Experiment, config: TrainConfig, *, resume: bool,
                 overwrite: bool) -> tuple[str, dict[str, Any] | None]:
    """How the run may use the folder (:meth:`~tripletlab.experiment.Experiment.check_target`)
    and the checkpoint state it resumes from (``None`` for a new run).

    Raises:
      ConfigError: ``epochs`` below the epochs already trained.
    """
    target = experiment.check_target(resume=resume, overwrite=overwrite)
    state = experiment.read_state() if target == "resume" else None
    if state and int(state["epoch"]) > config.epochs:
        raise ConfigError(f"Expected `epochs` >= the {int(state['epoch'])} epochs already "
                          f"trained. Received: epochs={config.epochs}.")
    return target, state


def prepared_data(config: TrainConfig, verbose: int) -> tuple[TrainConfig, Any]:
    """The data, checked, and the configuration with its P×K batch fitted to it; says both."""
    data = load_data(config)
    check_data(config, data.y_train, data.y_test)
    config, notes = fit_batch_shape(config, data.y_train, source=data_source(config))
    if verbose:
        print(describe_data(data), flush=True)
        for note in notes:
            print(f"Batches: {note}", flush=True)
    return config, data


def start_writing(experiment: ex.Experiment, target: str) -> None:
    """Clears a replaced run's files (``overwrite``, ``restart``), then starts the manifest."""
    if target in ("overwrite", "restart"):
        experiment.clear()
    experiment.start_manifest()
    experiment.remove_temporaries()


def fit(model: keras.Model, config: TrainConfig, plan: FitPlan, *, initial_epoch: int,
        verbose: int) -> None:
    """``fit`` from ``initial_epoch`` to ``config.epochs`` (in the backbone's phases)."""
    if initial_epoch >= config.epochs:
        return
    # shuffle=False: the samplers shuffle already; Keras' shuffle of the batch order draws
    # from Python's global `random`, which a resume cannot restore. Keras' progress bar only
    # on a terminal; piped, one plain line per epoch.
    fit_in_phases(model, config, plan.batches, initial_epoch=initial_epoch,
                  steps_per_epoch=plan.steps_per_epoch, callbacks=plan.callbacks,
                  shuffle=False, verbose=1 if verbose == 1 and sys.stdout.isatty() else 0)
    # a Ctrl-C that Keras swallowed after the last epoch's checks still stops here
    plan.guard.check()
