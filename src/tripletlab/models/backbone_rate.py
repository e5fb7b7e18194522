"""A lower learning rate for a pretrained backbone: optimizers that scale its *updates*.

Scaling the backbone's gradients would not do: Adam's update is invariant to the gradient's
scale. These optimizers (Keras' ``SGD``, ``Adam`` and ``AdamW``, one registered subclass each)
multiply the learning rate given to ``update_step`` by ``backbone_learning_rate_multiplier``
for every variable whose path does not start with ``head_prefix`` (the embedding head of
:mod:`tripletlab.models.backbones`, ``"embedding_"``). With SGD, one step moves a backbone
weight by exactly ``multiplier`` times what plain SGD would. Each runs Keras' own
``update_step`` on every backend (a subclass is never swapped for PyTorch's fused optimizers),
and is saved in a checkpoint's configuration, so it loads with ``safe_mode=True`` once
tripletlab is imported.

Decoupled weight decay (``weight_decay``, AdamW's and the others') is scaled the same way, as
a lower learning rate for a parameter group scales it in PyTorch: a backbone weight decays by
``w * weight_decay * learning_rate * multiplier`` per step, the head's by ``w * weight_decay *
learning_rate``. The backbone's variables are excluded from Keras' own decay
(``exclude_from_weight_decay``) and decayed in the update step, before the gradient update, the
order Keras uses.

Example:
  >>> import keras
  >>> from tripletlab.models.backbone_rate import scaled_optimizer
  >>> optimizer = scaled_optimizer(keras.optimizers.Adam(1e-3), 0.1)
  >>> type(optimizer).__name__, optimizer.backbone_learning_rate_multiplier
  ('BackboneAdam', 0.1)
"""

from __future__ import annotations

from typing import Any

import keras

from tripletlab.models.backbones import HEAD_PREFIX


class _ScaledBackboneRate:
    """The update-step scaling shared by the three optimizers (mixed in before Keras' class)."""

    def __init__(self, *args: Any, backbone_learning_rate_multiplier: float = 1.0,
                 head_prefix: str = HEAD_PREFIX, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.backbone_learning_rate_multiplier = float(backbone_learning_rate_multiplier)
        self.head_prefix = str(head_prefix)

    def build(self, variables):
        backbone = [variable for variable in variables
                    if not str(variable.path).startswith(self.head_prefix)]
        if self.weight_decay is not None:
            # decayed in update_step with the scaled rate instead
            self.exclude_from_weight_decay(var_list=backbone)
        super().build(variables)
        # by index: TensorFlow's update step sees tf.Variables, which have no Keras path
        backbone_ids = {id(variable) for variable in backbone}
        self._backbone_indices = frozenset(
            index for index, variable in enumerate(variables) if id(variable) in backbone_ids)

    def update_step(self, gradient, variable, learning_rate):
        if self._get_variable_index(variable) in self._backbone_indices:
            learning_rate = keras.ops.multiply(
                keras.ops.cast(learning_rate, variable.dtype),
                keras.ops.cast(self.backbone_learning_rate_multiplier, variable.dtype))
            if self.weight_decay is not None:
                decay = keras.ops.multiply(
                    learning_rate, keras.ops.cast(self.weight_decay, variable.dtype))
                self.assign(variable, keras.ops.subtract(
                    variable, keras.ops.multiply(variable, decay)))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(backbone_learning_rate_multiplier=self.backbone_learning_rate_multiplier,
                      head_prefix=self.head_prefix)
        return config


@keras.saving.register_keras_serializable(package="tripletlab", name="BackboneSGD")
class BackboneSGD(_ScaledBackboneRate, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with the backbone's learning rate scaled."""


@keras.saving.register_keras_serializable(package="tripletlab", name="BackboneAdam")
class BackboneAdam(_ScaledBackboneRate, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with the backbone's learning rate scaled."""


@keras.saving.register_keras_serializable(package="tripletlab", name="BackboneAdamW")
class BackboneAdamW(_ScaledBackboneRate, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with the backbone's learning rate and weight decay scaled."""


SCALED = {keras.optimizers.AdamW: BackboneAdamW, keras.optimizers.Adam: BackboneAdam,
          keras.optimizers.SGD: BackboneSGD}
"""Keras' optimizer classes and their backbone-scaled subclasses (AdamW before Adam, its base
class)."""


def scaled_optimizer(optimizer: keras.optimizers.Optimizer,
                     multiplier: float) -> keras.optimizers.Optimizer:
    """The same optimizer (same configuration) with the backbone's learning rate scaled.

    Args:
      optimizer: a fresh (unbuilt) ``SGD``, ``Adam`` or ``AdamW``.
      multiplier: the backbone's learning rate relative to the head's, ``>= 0``.

    Returns:
      The :class:`BackboneSGD`, :class:`BackboneAdam` or :class:`BackboneAdamW`.

    Raises:
      ValueError: another optimizer class.
    """
    for keras_class, scaled in SCALED.items():
        # isinstance: on PyTorch, keras.optimizers.Adam(...) is Keras' TorchAdam subclass
        if isinstance(optimizer, keras_class):
            return scaled.from_config({**optimizer.get_config(),
                                       "backbone_learning_rate_multiplier": float(multiplier)})
    raise ValueError(f"Expected `optimizer` to be SGD, Adam or AdamW. Received: "
                     f"optimizer={type(optimizer).__name__}.")


def copy_optimizer_state(source: keras.optimizers.Optimizer,
                         target: keras.optimizers.Optimizer) -> int:
    """Copies the values of ``source``'s variables into ``target``'s of the same path.

    After a recompile (the backbone unfrozen: more trainable variables), the new optimizer
    keeps the step count, the schedule's position and the head's moments of the old one.

    Returns:
      The number of variables copied.
    """
    values = {variable.path: variable for variable in source.variables}
    copied = 0
    for variable in target.variables:
        old = values.get(variable.path)
        if old is not None and tuple(old.shape) == tuple(variable.shape):
            variable.assign(old.value)
            copied += 1
    return copied
