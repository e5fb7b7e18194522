"""The optimizer of ``tripletlab train``: Adam, SGD or AdamW, with its learning-rate schedule and
the backbone's learning-rate multiplier."""

from __future__ import annotations

from typing import Any

import keras

from tripletlab.train.config import TrainConfig


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule (schedules step once per batch)."""
    schedules = keras.optimizers.schedules
    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = schedules.CosineDecay(rate, decay_steps=config.epochs * steps_per_epoch)
    elif config.schedule == "exponential":
        rate = schedules.ExponentialDecay(rate, decay_steps=steps_per_epoch,
                                          decay_rate=config.decay_rate)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=rate)
    elif config.optimizer == "adamw":
        kwargs = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        optimizer = keras.optimizers.AdamW(learning_rate=rate, **kwargs)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    if config.backbone_learning_rate_multiplier != 1.0:
        from tripletlab.models.backbone_rate import scaled_optimizer

        optimizer = scaled_optimizer(optimizer, config.backbone_learning_rate_multiplier)
    return optimizer
