"""Pretrained backbones in ``tripletlab train``: initial weights, freezing and unfreezing the
backbone, and ``fit`` in two phases (the head alone for ``freeze_backbone_epochs``, then all)."""

from __future__ import annotations

import os
from typing import Any

import keras

from tripletlab.train.config import TrainConfig


def load_initial_weights(config: TrainConfig, network: keras.Model) -> None:
    """Loads ``config.weights`` (a file) into a model that is not a backbone (a backbone's
    builder loads its own ``weights``)."""
    from tripletlab.errors import UserFileNotFoundError
    from tripletlab.models.backbones import BACKBONES

    if config.model in BACKBONES or config.weights in ("none", "imagenet"):
        return
    if not os.path.isfile(config.weights):
        raise UserFileNotFoundError(f"Expected `weights` to be 'none' or the path of a weights "
                                    f"file. Received: weights={config.weights!r}, which does "
                                    "not exist.")
    network.load_weights(config.weights)


def set_backbone_trainable(model: keras.Model, trainable: bool, *,
                           freeze_batch_norm: bool = False) -> bool:
    """Freezes or unfreezes the backbone of ``model`` (Keras' ``trainable``: frozen, its
    batch normalisation runs in inference mode).

    Args:
      model: a model holding a backbone (:func:`tripletlab.models.backbones.backbone_of`);
        other models are left as they are.
      trainable: unfreeze (``True``) or freeze (``False``) the backbone.
      freeze_batch_norm: with ``trainable``, keep the backbone's ``BatchNormalization``
        layers frozen (inference mode, their statistics kept), as Keras' fine-tuning guide
        advises for pretrained weights.

    Returns:
      Whether any layer's ``trainable`` changed; a model that has been compiled must then be
      recompiled (:func:`recompile`).
    """
    from tripletlab.models.backbones import backbone_of, batch_norm_layers

    backbone = backbone_of(model)
    if backbone is None:
        return False
    kept_frozen = batch_norm_layers(backbone) if trainable and freeze_batch_norm else []
    if backbone.trainable == trainable and not any(layer.trainable for layer in kept_frozen):
        return False
    backbone.trainable = trainable  # sets every inner layer's too
    for layer in kept_frozen:
        layer.trainable = False
    return True


def recompile(model: keras.Model) -> None:
    """Compiles ``model`` again from its own compile configuration (after its trainable
    variables changed), carrying the optimizer's state over (step count, schedule position,
    the moments of the variables that were trainable already)."""
    from tripletlab.models.backbone_rate import copy_optimizer_state

    old, steps = model.optimizer, model.steps_per_execution
    model.compile_from_config(model.get_compile_config())
    model.steps_per_execution = steps  # a resumed run's may differ from the saved one
    copy_optimizer_state(old, model.optimizer)


def fit_in_phases(model: keras.Model, config: TrainConfig, batches, *, initial_epoch: int,
                  **fit_arguments: Any) -> None:
    """``model.fit`` up to ``config.epochs``: with ``freeze_backbone_epochs = N``, epochs
    ``[0, N)`` with the backbone frozen, then the backbone unfrozen, the model recompiled
    (same optimizer state) and the rest from ``initial_epoch=N``. A resumed run continues
    in the phase of its epoch."""
    frozen_until = min(config.freeze_backbone_epochs, config.epochs)
    if initial_epoch < frozen_until:
        if set_backbone_trainable(model, False):
            recompile(model)
        model.fit(batches, epochs=frozen_until, initial_epoch=initial_epoch, **fit_arguments)
        initial_epoch = frozen_until
    if initial_epoch < config.epochs:
        if set_backbone_trainable(model, True,
                                  freeze_batch_norm=config.keeps_batch_norm_frozen()):
            recompile(model)
        model.fit(batches, epochs=config.epochs, initial_epoch=initial_epoch, **fit_arguments)
