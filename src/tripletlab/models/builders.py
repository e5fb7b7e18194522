"""The embedding-model builders: Keras functional models from images ``[H, W, C]`` to ``[D]``.

Every model ends in ``keras.layers.UnitNormalization`` (rows of length 1), except
``siamese_mlp(normalize=False)``, which reproduces a notebook exactly, and ``omoindrot-cnn``,
which reproduces omoindrot/tensorflow-triplet-loss's network (no normalisation). No model
contains a ``Lambda`` layer, so a saved model loads with
``keras.saving.load_model(path, safe_mode=True)``.

===================  ===========================  ==============================================
name                 builder                      architecture
===================  ===========================  ==============================================
``"tfa-cnn"``        :func:`tfa_tutorial_cnn`     the CNN of the TF Addons triplet-loss tutorial
``"siamese-mlp"``    :func:`siamese_mlp`          the MLP of the notebook "Create a Siamese
                                                  Network with Triplet Loss in Keras"
``"small-cnn"``      :func:`small_cnn`            Conv-BN-ReLU blocks + global average pooling
``"omoindrot-cnn"``  :func:`omoindrot_cnn`        the CNN of omoindrot/tensorflow-triplet-loss
                                                  (``model/model_fn.py``)
===================  ===========================  ==============================================

and the pretrained Keras application backbones of :mod:`tripletlab.models.backbones`
(``"mobilenet-v3-small"``, ``"mobilenet-v3-large"``, ``"efficientnet-v2-b0"``, ``"resnet50"``),
built by :func:`~tripletlab.models.backbones.backbone_model` (option ``weights``).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import keras

from tripletlab import _checks
from tripletlab.models.backbones import BACKBONES, backbone_model


def tfa_tutorial_cnn(
    input_shape: Sequence[int],
    embedding_dim: int = 256,
    filters: Sequence[int] = (64, 32),
    kernel_size: int = 2,
    dropout: float = 0.3,
    name: str = "tfa_cnn",
) -> keras.Model:
    """The CNN of the TF Addons triplet-loss tutorial (with ``UnitNormalization`` for its Lambda).

    Per entry of ``filters``: ``Conv2D(f, kernel_size, padding="same", activation="relu")`` →
    ``MaxPooling2D(2)`` → ``Dropout(dropout)``; then ``Flatten`` → ``Dense(embedding_dim)``
    (no activation) → ``UnitNormalization``. With the defaults this is the tutorial's model.
    A pooling step is skipped along a side shorter than 2 pixels (never the case for 28×28
    or 8×8 inputs).

    Args:
      input_shape: ``(H, W, C)``, or ``(H, W)`` for one channel.
      embedding_dim: the embedding size ``D``.
      filters: the convolutions' widths, one block each (the tutorial: ``(64, 32)``).
      kernel_size: the convolutions' kernel size.
      dropout: the dropout rate after each block, in ``[0, 1)``.
      name: the model's name.

    Returns:
      A ``keras.Model`` from ``[B, *input_shape]`` to unit-norm ``[B, embedding_dim]``.

    Raises:
      ValueError: a bad shape, size, width or rate.
      TypeError: an argument of the wrong type.

    Example:
      >>> from tripletlab.models import tfa_tutorial_cnn
      >>> model = tfa_tutorial_cnn((28, 28, 1))
      >>> model.output_shape
      (None, 256)
    """
    input_shape = _check_image_shape(input_shape)
    _check_positive_int("embedding_dim", embedding_dim)
    filters = _check_widths("filters", filters, allow_empty=False)
    _check_positive_int("kernel_size", kernel_size)
    _checks.check_number("dropout", dropout, minimum=0)
    if dropout >= 1:
        raise ValueError(f"Expected `dropout` < 1. Received: dropout={dropout!r}.")

    inputs, x, (height, width) = _image_input(input_shape)
    for f in filters:
        x = keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu")(x)
        x, height, width = _pool(x, height, width)
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(embedding_dim, activation=None)(x)
    outputs = keras.layers.UnitNormalization(axis=-1)(x)
    return keras.Model(inputs, outputs, name=name)


def siamese_mlp(
    input_shape: Sequence[int],
    embedding_dim: int = 64,
    widths: Sequence[int] = (64,),
    output_activation: str | None = "sigmoid",
    normalize: bool = True,
    name: str = "siamese_mlp",
) -> keras.Model:
    """The MLP of the notebook "Create a Siamese Network with Triplet Loss in Keras".

    That notebook flattens MNIST to 784 values and embeds them with
    ``Dense(64, relu)`` → ``Dense(64, sigmoid)``. Here: ``Flatten`` → ``Dense(w, relu)`` per
    entry of ``widths`` → ``Dense(embedding_dim, output_activation)`` → ``UnitNormalization``
    when ``normalize``. With the defaults and ``normalize=False`` this is the notebook's model
    exactly (for comparisons with its offline triplets); the default ``normalize=True`` adds
    the normalisation that the mining losses expect.

    Args:
      input_shape: any input shape; it is flattened.
      embedding_dim: the embedding size ``D`` (the notebook: 64).
      widths: the hidden layers' widths (the notebook: ``(64,)``); may be empty.
      output_activation: the last ``Dense`` layer's activation, a Keras activation name, or
        ``None`` for none (the notebook: ``"sigmoid"``).
      normalize: end in ``UnitNormalization``.
      name: the model's name.

    Returns:
      A ``keras.Model`` from ``[B, *input_shape]`` to ``[B, embedding_dim]``.

    Raises:
      ValueError: a bad shape, size, width or activation name.
      TypeError: an argument of the wrong type.

    Example:
      >>> from tripletlab.models import siamese_mlp
      >>> notebook = siamese_mlp((28, 28, 1), normalize=False)
      >>> [layer.units for layer in notebook.layers if hasattr(layer, "units")]
      [64, 64]
    """
    input_shape = _check_shape(input_shape)
    _check_positive_int("embedding_dim", embedding_dim)
    widths = _check_widths("widths", widths, allow_empty=True)
    if output_activation is not None:
        if not isinstance(output_activation, str):
            raise TypeError(f"Expected `output_activation` to be a Keras activation name or "
                            f"None. Received: output_activation={output_activation!r}.")
        try:
            keras.activations.get(output_activation)
        except ValueError as error:
            raise ValueError(f"Expected `output_activation` to be a Keras activation name. "
                             f"Received: output_activation={output_activation!r}.") from error
    _checks.check_bool("normalize", normalize)

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Flatten()(inputs)
    for w in widths:
        x = keras.layers.Dense(w, activation="relu")(x)
    x = keras.layers.Dense(embedding_dim, activation=output_activation)(x)
    if normalize:
        x = keras.layers.UnitNormalization(axis=-1)(x)
    return keras.Model(inputs, x, name=name)


def small_cnn(
    input_shape: Sequence[int],
    embedding_dim: int = 64,
    widths: Sequence[int] = (32, 64, 128),
    name: str = "small_cnn",
) -> keras.Model:
    """A small, strong default CNN for small images.

    Per entry of ``widths``: ``(Conv2D(w, 3, same, no bias) → BatchNormalization → ReLU) × 2``
    → ``MaxPooling2D(2)``; then ``GlobalAveragePooling2D`` → ``Dense(embedding_dim)`` →
    ``UnitNormalization``. Pooling stops along a side once it is shorter than 2 pixels, so
    8×8 digits work with any number of blocks (8 → 4 → 2 → 1 → 1 ...).

    Args:
      input_shape: ``(H, W, C)``, or ``(H, W)`` for one channel.
      embedding_dim: the embedding size ``D``.
      widths: the blocks' widths, at least one.
      name: the model's name.

    Returns:
      A ``keras.Model`` from ``[B, *input_shape]`` to unit-norm ``[B, embedding_dim]``.

    Raises:
      ValueError: a bad shape, size or width.
      TypeError: an argument of the wrong type.

    Example:
      >>> from tripletlab.models import small_cnn
      >>> model = small_cnn((8, 8, 1), embedding_dim=32)
      >>> model.output_shape
      (None, 32)
    """
    input_shape = _check_image_shape(input_shape)
    _check_positive_int("embedding_dim", embedding_dim)
    widths = _check_widths("widths", widths, allow_empty=False)

    inputs, x, (height, width) = _image_input(input_shape)
    for w in widths:
        for _ in range(2):
            x = keras.layers.Conv2D(w, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        x, height, width = _pool(x, height, width)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(embedding_dim)(x)
    outputs = keras.layers.UnitNormalization(axis=-1)(x)
    return keras.Model(inputs, outputs, name=name)


def omoindrot_cnn(
    input_shape: Sequence[int],
    embedding_dim: int = 64,
    num_channels: int = 32,
    use_batch_norm: bool = False,
    bn_momentum: float = 0.9,
    name: str = "omoindrot_cnn",
) -> keras.Model:
    """The network of omoindrot/tensorflow-triplet-loss (``model/model_fn.py``).

    Two blocks, with ``num_channels`` then ``2 * num_channels`` filters, each
    ``Conv2D(filters, 3, padding="same")`` → ``BatchNormalization(momentum=bn_momentum)`` (only
    when ``use_batch_norm``) → ``ReLU`` → ``MaxPooling2D(2)``; then ``Flatten`` →
    ``Dense(embedding_dim)``. No normalisation of the embeddings, as in the original. The
    defaults are the values of the original's ``experiments/*/params.json`` files
    (``num_channels`` 32, ``use_batch_norm`` false, ``bn_momentum`` 0.9, ``embedding_size`` 64).

    ``bn_momentum`` has the same meaning in TensorFlow 1's ``tf.layers.batch_normalization``
    (the original) and in ``keras.layers.BatchNormalization`` on every backend:
    ``moving = momentum * moving + (1 - momentum) * batch``; it is passed on unchanged (both
    use ``epsilon=1e-3``). The original expects 28×28 images (two poolings to 7×7); here any
    image size works (a pooling step is skipped along a side shorter than 2 pixels).

    Args:
      input_shape: ``(H, W, C)``, or ``(H, W)`` for one channel.
      embedding_dim: the embedding size ``D`` (the original's ``embedding_size``).
      num_channels: the first block's filters; the second block has twice as many.
      use_batch_norm: batch normalisation after each convolution.
      bn_momentum: the batch normalisation's moving-average momentum, in ``[0, 1]``.
      name: the model's name.

    Returns:
      A ``keras.Model`` from ``[B, *input_shape]`` to ``[B, embedding_dim]``.

    Raises:
      ValueError: a bad shape, size, channel count or momentum.
      TypeError: an argument of the wrong type.

    Example:
      >>> from tripletlab.models import omoindrot_cnn
      >>> model = omoindrot_cnn((28, 28, 1))
      >>> [layer.filters for layer in model.layers if hasattr(layer, "filters")]
      [32, 64]
    """
    input_shape = _check_image_shape(input_shape)
    _check_positive_int("embedding_dim", embedding_dim)
    _check_positive_int("num_channels", num_channels)
    _checks.check_bool("use_batch_norm", use_batch_norm)
    _checks.check_number("bn_momentum", bn_momentum, minimum=0, maximum=1)

    inputs, x, (height, width) = _image_input(input_shape)
    for block, filters in enumerate((int(num_channels), 2 * int(num_channels)), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"block_{block}_conv")(x)
        if use_batch_norm:
            x = keras.layers.BatchNormalization(momentum=float(bn_momentum),
                                                name=f"block_{block}_bn")(x)
        x = keras.layers.ReLU(name=f"block_{block}_relu")(x)
        x, height, width = _pool(x, height, width)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(embedding_dim, name="fc_1")(x)
    return keras.Model(inputs, outputs, name=name)


MODELS: MappingProxyType[str, Callable[..., keras.Model]] = MappingProxyType({
    "tfa-cnn": tfa_tutorial_cnn,
    "siamese-mlp": siamese_mlp,
    "small-cnn": small_cnn,
    "omoindrot-cnn": omoindrot_cnn,
    **{name: functools.partial(backbone_model, name) for name in BACKBONES},
})
"""Model names and their builders (read-only)."""


def build_model(name: str, input_shape: Sequence[int], embedding_dim: int | None = None,
                **options: Any) -> keras.Model:
    """Builds the embedding model ``name``.

    Args:
      name: one of :data:`MODELS` (``"tfa-cnn"``, ``"siamese-mlp"``, ``"small-cnn"``,
        ``"omoindrot-cnn"``, or a backbone of :mod:`tripletlab.models.backbones`). The
        Keras model gets the builder's default name; call the builder itself to choose one.
      input_shape: the shape of one input, ``(H, W, C)``.
      embedding_dim: the embedding size; ``None`` for the builder's default.
      **options: the builder's other arguments (``widths``, ``filters``, ``dropout``,
        ``normalize``, ``num_channels``...).

    Returns:
      The ``keras.Model``.

    Raises:
      ValueError: an unknown ``name`` or a bad argument.
      TypeError: an option the builder does not take (the message lists those it takes).

    Example:
      >>> from tripletlab.models import build_model
      >>> model = build_model("small-cnn", (8, 8, 1), embedding_dim=16, widths=(8, 16))
      >>> model.output_shape
      (None, 16)
    """
    _checks.check_choice("name", name, MODELS)
    builder = MODELS[name]
    accepted = [p for p in inspect.signature(builder).parameters
                if p not in ("input_shape", "embedding_dim", "name")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = _checks.closest_key_hint(unknown[0], accepted)
        raise TypeError(f"Expected the options of model {name!r} to be among "
                        f"{{{', '.join(repr(a) for a in accepted)}}}. Received: "
                        f"{', '.join(repr(u) for u in unknown)}.{hint}")
    if embedding_dim is not None:
        options["embedding_dim"] = embedding_dim
    return builder(input_shape, **options)


def _check_positive_int(name: str, value: Any) -> int:
    return _checks.check_number(name, value, minimum=1, integer=True)


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    if (not isinstance(input_shape, (tuple, list)) or not input_shape
            or any(not _is_int(d) or d < 1 for d in input_shape)):
        raise ValueError(f"Expected `input_shape` to be a tuple of positive ints. "
                         f"Received: input_shape={input_shape!r}.")
    return tuple(int(d) for d in input_shape)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_image_shape(input_shape: Any) -> tuple[int, ...]:
    shape = _check_shape(input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"Expected `input_shape` to be (height, width, channels) or "
                         f"(height, width). Received: input_shape={input_shape!r}.")
    return shape


def _check_widths(name: str, widths: Any, *, allow_empty: bool) -> tuple[int, ...]:
    if (not isinstance(widths, (tuple, list)) or (not widths and not allow_empty)
            or any(not _is_int(w) or w < 1 for w in widths)):
        least = "" if allow_empty else " (at least one)"
        raise ValueError(f"Expected `{name}` to be a tuple of positive ints{least}. "
                         f"Received: {name}={widths!r}.")
    return tuple(int(w) for w in widths)


def _image_input(shape: tuple[int, ...]):
    """The ``Input`` and an ``[H, W, C]`` tensor (a ``Reshape`` adds the channel to ``[H, W]``)."""
    inputs = keras.Input(shape=shape, name="images")
    x = inputs
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1))(x)
    return inputs, x, shape[:2]


def _pool(x, height: int, width: int):
    """``MaxPooling2D`` by 2 along each side that is at least 2 pixels long."""
    pool = (2 if height >= 2 else 1, 2 if width >= 2 else 1)
    if pool == (1, 1):
        return x, height, width
    return keras.layers.MaxPooling2D(pool)(x), height // pool[0], width // pool[1]
