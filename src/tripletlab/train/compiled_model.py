"""The model stage of ``tripletlab train``: the network built (or a checkpoint loaded for
``--resume``) and compiled with its loss, mining statistics, optimizer and steps per call."""

from __future__ import annotations

from typing import Any

import keras

from tripletlab import experiment as ex
from tripletlab.train import loss_registry as registry
from tripletlab.train.backbone_phases import load_initial_weights, set_backbone_trainable
from tripletlab.train.config import ConfigError, TrainConfig
from tripletlab.train.optimizer import build_optimizer
from tripletlab.train.resume import restore_memory, restore_seed_generator_states
from tripletlab.train.training_data import build_batches


def build_loss(config: TrainConfig) -> keras.losses.Loss:
    """The Keras loss of ``config``: the factory of its entry in
    :mod:`tripletlab.losses.registry` (online losses, or the offline ``TripletLoss``)."""
    return registry.build_loss(config)


def register_classes() -> None:
    """Registers every serialisable tripletlab class with Keras (before ``load_model``): those
    of :func:`tripletlab.register_keras_classes`, ``CompatLoss`` included."""
    import tripletlab

    tripletlab.register_keras_classes()


# Batches per compiled call when the configuration sets none: measured fastest on a CPU
# (benchmarks/bench_training.py; Keras' PyTorch trainer accepts only 1).
DEFAULT_STEPS_PER_EXECUTION = {"tensorflow": 16, "jax": 16, "torch": 1}


def steps_per_execution(config: TrainConfig) -> int:
    """``config.steps_per_execution``, or the measured default of the running backend."""
    if config.steps_per_execution is not None:
        if config.steps_per_execution > 1 and keras.backend.backend() == "torch":
            raise ConfigError("Expected steps_per_execution=1 on the PyTorch backend (Keras "
                              "runs one batch per call there). Received: "
                              f"steps_per_execution={config.steps_per_execution}.")
        return config.steps_per_execution
    return DEFAULT_STEPS_PER_EXECUTION.get(keras.backend.backend(), 1)


def check_backend(config: TrainConfig) -> None:
    """Raises if ``config.backend`` is set and Keras already runs another backend."""
    if config.backend is not None and keras.backend.backend() != config.backend:
        raise ConfigError(
            f"Expected the Keras backend {config.backend!r} (backend={config.backend!r}), but "
            f"Keras was already imported with {keras.backend.backend()!r}. Set "
            "KERAS_BACKEND before importing Keras (the tripletlab command line does this).")


def build_network(config: TrainConfig, data) -> keras.Model:
    """A new embedding network for ``data`` (with its initial weights and the backbone frozen
    or not), wrapped in a :class:`~tripletlab.models.TripletNetwork` in offline mode.

    Raises:
      ConfigError: ``model_options`` the builder does not accept.
    """
    from tripletlab.models import build_model

    try:
        network = build_model(config.model, data.input_shape, config.embedding_dim,
                              **config.model_arguments())
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model_options: {error}") from None
    load_initial_weights(config, network)
    set_backbone_trainable(network, config.freeze_backbone_epochs == 0,
                           freeze_batch_norm=config.keeps_batch_norm_frozen())
    if config.mode == "offline":
        from tripletlab.models import TripletNetwork

        return TripletNetwork(network)
    return network


def compile_for_training(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    """Compiles ``model`` with the loss of ``config``, the mining statistics (online mode), the
    optimizer and the steps per compiled call."""
    metrics: list[Any] = []
    if config.mode == "online":
        from tripletlab.mining_metrics import mining_metrics

        metrics = mining_metrics(config.margin, config.distance)
    model.compile(optimizer=build_optimizer(config, steps_per_epoch), loss=build_loss(config),
                  metrics=metrics, jit_compile=config.jit_compile,
                  steps_per_execution=steps_per_execution(config))
    attach_memory(model)


def attach_memory(model: keras.Model) -> None:
    """Makes ``model`` carry the state of its loss's cross-batch memory, if it has one
    (:meth:`tripletlab.losses.CrossBatchMemory.attach`)."""
    from tripletlab.losses.cross_batch_memory import CrossBatchMemory

    if isinstance(getattr(model, "loss", None), CrossBatchMemory):
        model.loss.attach(model)


def model_and_batches(config: TrainConfig, data, experiment: ex.Experiment,
                      state: dict[str, Any] | None):
    """The compiled model and its training batches: from ``checkpoints/last.keras`` when
    resuming (``state``), else new.

    Returns:
      ``(model, batches)``.
    """
    if state is not None:
        register_classes()
        model = keras.saving.load_model(experiment.path(ex.LAST_CHECKPOINT), safe_mode=True)
        restore_seed_generator_states(model, state.get("seed_generators"))
        attach_memory(model)
        restore_memory(model, experiment.path(ex.MEMORY_CHECKPOINT))
        model.steps_per_execution = steps_per_execution(config)  # the backend may differ
        return model, build_batches(config, data, model)
    model = build_network(config, data)
    batches = build_batches(config, data, model)
    compile_for_training(model, config, len(batches))
    return model, batches
