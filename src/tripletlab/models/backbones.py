"""Keras' own pretrained application backbones with an embedding head.

Each model is ``images [H, W, C] in [0, 1]`` → the backbone's preprocessing (built-in Keras
layers only) → the Keras application without its classifier (a nested model named
``"backbone"``) → ``GlobalAveragePooling2D`` → ``Dense(embedding_dim)`` → ``UnitNormalization``.
No ``Lambda`` layer, so a saved model loads with plain Keras and
``keras.saving.load_model(path, safe_mode=True)``, without tripletlab.

==========================  =======================  =========================================
name                        Keras application        preprocessing of ``[0, 1]`` images
==========================  =======================  =========================================
``"mobilenet-v3-small"``    ``MobileNetV3Small``     ``Rescaling(255)``, then the model's own
                                                     ``include_preprocessing`` (to ``[-1, 1]``)
``"mobilenet-v3-large"``    ``MobileNetV3Large``     the same
``"efficientnet-v2-b0"``    ``EfficientNetV2B0``     ``Rescaling(255)``, then the model's own
                                                     ``include_preprocessing`` (ImageNet mean
                                                     and variance)
``"resnet50"``              ``ResNet50``             Caffe's: RGB → BGR, ×255, minus the
                                                     ImageNet mean, as one frozen 1×1
                                                     ``Conv2D`` (``caffe_preprocessing``)
==========================  =======================  =========================================

Plain ``ResNet50`` is kept (rather than ``ResNet50V2``) because its Caffe preprocessing is an
affine map per output channel of a channel permutation: exactly a 1×1 convolution with fixed,
non-trainable weights, a built-in layer.

Grayscale images (``C = 1``, e.g. MNIST) are repeated to 3 channels with a ``Concatenate``
layer. Images must be at least :data:`MIN_SIZE` pixels on each side.

``weights``: ``"imagenet"`` (Keras downloads the file once into ``~/.keras/models``; offline
and not cached, :class:`~tripletlab.errors.ConfigError` names the alternatives), ``None``
(random initialisation) or the path of a local weights file of the backbone without its top
(``.weights.h5`` saved by ``backbone.save_weights``, or Keras' application ``_notop.h5``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from tripletlab import _checks
from tripletlab.errors import ConfigError, UserFileNotFoundError
from tripletlab.models.backbone_names import BACKBONE_APPLICATIONS

MIN_SIZE = 32
"""The smallest image side the backbones accept (Keras' own minimum for these applications)."""

BACKBONE_LAYER = "backbone"
"""The name of the nested application model inside every backbone embedding model."""

HEAD_PREFIX = "embedding_"
"""The prefix of the head's layer names (pooling, dense, normalisation): every trainable
variable whose path does not start with it belongs to the backbone."""

DOWNLOAD_TIMEOUT_S = 20.0
"""Seconds the ImageNet weight download may wait on the network before it counts as offline."""

BACKBONES: MappingProxyType[str, str] = MappingProxyType(
    {name: application for name, (application, _) in BACKBONE_APPLICATIONS.items()})
"""The backbone model names and the Keras application each wraps (read-only; the names and
applications are :data:`tripletlab.models.backbone_names.BACKBONE_APPLICATIONS`')."""

# ImageNet's mean in BGR order, on [0, 255] (Keras' "caffe" preprocessing)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def backbone_model(name: str, input_shape: Sequence[int], embedding_dim: int = 128,
                   weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """The embedding model of backbone ``name``: preprocessing → backbone → embedding head.

    Args:
      name: one of :data:`BACKBONES` (``"mobilenet-v3-small"``, ``"mobilenet-v3-large"``,
        ``"efficientnet-v2-b0"``, ``"resnet50"``).
      input_shape: ``(H, W, C)`` with ``C`` 1 or 3, or ``(H, W)`` for one channel; ``H`` and
        ``W`` at least :data:`MIN_SIZE`. Images are float32 in ``[0, 1]``.
      embedding_dim: the embedding size ``D``.
      weights: ``"imagenet"``, ``None`` (or ``"none"``) for random weights, or the path of a
        local weights file of the backbone without its top.

    Returns:
      A ``keras.Model`` from ``[B, *input_shape]`` to unit-norm ``[B, embedding_dim]``; its
      layer :data:`BACKBONE_LAYER` is the Keras application.

    Raises:
      ConfigError: ``"imagenet"`` weights that cannot be downloaded (no network) and are not
        cached.
      FileNotFoundError: a weights path that does not exist.
      ConfigError: images too small or with neither 1 nor 3 channels (a ``ValueError``).
      ValueError: an unknown name or a bad shape.

    Example:
      >>> from tripletlab.models.backbones import backbone_model
      >>> model = backbone_model("mobilenet-v3-small", (32, 32, 3), 16, weights=None)
      >>> model.output_shape
      (None, 16)
    """
    _checks.check_choice("name", name, BACKBONES)
    shape = _check_input_shape(input_shape)
    _checks.check_number("embedding_dim", embedding_dim, minimum=1, integer=True)
    application, preprocessing = BACKBONE_APPLICATIONS[name]
    weights = _check_weights(weights)

    inputs = keras.Input(shape=shape, name="images")
    x = inputs
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1), name="add_channel")(x)
    if (shape[2] if len(shape) == 3 else 1) == 1:
        x = keras.layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    height, width = shape[:2]
    builder = getattr(keras.applications, application)
    arguments: dict[str, Any] = {"include_top": False, "input_shape": (height, width, 3),
                                 "pooling": None}
    if preprocessing == "include_preprocessing":
        x = keras.layers.Rescaling(255.0, name="to_0_255")(x)
        arguments["include_preprocessing"] = True
    else:
        x = _caffe_preprocessing()(x)
    backbone = _application(builder, arguments, weights, name)
    # (EfficientNetV2 reads its own name to pick its blocks: renamed after building)
    backbone.name = BACKBONE_LAYER
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(x)
    x = keras.layers.Dense(int(embedding_dim), name=f"{HEAD_PREFIX}dense")(x)
    outputs = keras.layers.UnitNormalization(axis=-1, name=f"{HEAD_PREFIX}norm")(x)
    return keras.Model(inputs, outputs, name=name.replace("-", "_"))


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The nested application model (layer :data:`BACKBONE_LAYER`) of ``model``, or ``None``."""
    for layer in getattr(model, "layers", ()):
        if layer.name == BACKBONE_LAYER and isinstance(layer, keras.Model):
            return layer
        if isinstance(layer, keras.Model):
            inner = backbone_of(layer)
            if inner is not None:
                return inner
    return None


def batch_norm_layers(model: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """Every ``BatchNormalization`` layer inside ``model``, nested models included."""
    found = []
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        else:
            found.extend(batch_norm_layers(layer))
    return found


def is_backbone_variable(variable: Any) -> bool:
    """Whether a trainable variable belongs to a backbone (not to the embedding head)."""
    return not str(variable.path).startswith(HEAD_PREFIX)


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (2, 3)
            or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                   for d in input_shape)):
        raise ValueError(f"Expected `input_shape` to be (height, width, channels) or (height, "
                         f"width). Received: input_shape={input_shape!r}.")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3 and shape[2] not in (1, 3):
        raise ConfigError(f"Expected images with 1 or 3 channels for a pretrained backbone. "
                         f"Received: input_shape={input_shape!r}.")
    if min(shape[:2]) < MIN_SIZE:
        raise ConfigError(f"Expected images of at least {MIN_SIZE}x{MIN_SIZE} pixels for a "
                         f"pretrained backbone (resize them, e.g. --image-size {MIN_SIZE}). "
                         f"Received: input_shape={input_shape!r}.")
    return shape


def _check_weights(weights: Any) -> str | None:
    if weights is None or weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"Expected `weights` to be 'imagenet', 'none' or the path of a weights "
                         f"file. Received: weights={weights!r}.")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserFileNotFoundError(f"Expected `weights` to be 'imagenet', 'none' or the path "
                                    f"of a weights file. Received: weights={str(weights)!r}, "
                                    "which does not exist.")
    return str(path)


def _application(builder, arguments: dict[str, Any], weights: str | None,
                 name: str) -> keras.Model:
    if weights != "imagenet":
        model = builder(weights=None, **arguments)
        if weights is not None:
            model.load_weights(weights)
        return model
    # Keras reads ~/.keras/models first and downloads only a missing file. Offline, the
    # download fails with Keras' "URL fetch failure" Exception; a short socket timeout keeps
    # a network that drops packets from hanging.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return builder(weights="imagenet", **arguments)
    except Exception as error:  # Keras raises a bare Exception for a failed download
        if not (str(error).startswith("URL fetch failure")
                or isinstance(error, (TimeoutError, ConnectionError))):
            raise
        raise ConfigError(
            f"Expected the ImageNet weights of {name!r} in ~/.keras/models or a network to "
            f"download them. Received: weights='imagenet', and the download failed ({error}). "
            "Use --weights PATH (a local weights file of the backbone without its top, e.g. "
            "Keras' *_notop.h5 copied from a machine with network) or --weights none (random "
            "initialisation).") from None
    finally:
        socket.setdefaulttimeout(previous)


def _caffe_preprocessing() -> keras.layers.Layer:
    """A frozen 1×1 ``Conv2D``: ``out[c] = 255 · in[2 - c] - mean[c]`` (RGB [0, 1] → Caffe)."""
    kernel = np.zeros((1, 1, 3, 3), dtype="float32")
    for out_channel in range(3):
        kernel[0, 0, 2 - out_channel, out_channel] = 255.0
    bias = -np.asarray(_CAFFE_MEAN_BGR, dtype="float32")
    layer = keras.layers.Conv2D(3, 1, name="caffe_preprocessing", trainable=False)
    layer.build((None, None, None, 3))
    layer.set_weights([kernel, bias])
    return layer
