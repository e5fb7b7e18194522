"""The pretrained backbones' names and the Keras applications they wrap (Keras-free).

:mod:`tripletlab.models.backbones` builds the models from this table and the configuration
(:mod:`tripletlab.train.config`) checks the ``model`` option against :data:`BACKBONE_MODELS`
before Keras is imported.

Example:
  >>> from tripletlab.models.backbone_names import BACKBONE_MODELS
  >>> BACKBONE_MODELS[-1]
  'resnet50'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BACKBONE_APPLICATIONS", "BACKBONE_MODELS"]

BACKBONE_APPLICATIONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "mobilenet-v3-small": ("MobileNetV3Small", "include_preprocessing"),
    "mobilenet-v3-large": ("MobileNetV3Large", "include_preprocessing"),
    "efficientnet-v2-b0": ("EfficientNetV2B0", "include_preprocessing"),
    "resnet50": ("ResNet50", "caffe"),
})
"""``name -> (keras.applications attribute, how [0, 1] images are preprocessed)``: the model's
own ``"include_preprocessing"`` after ``Rescaling(255)``, or ``"caffe"`` (see
:mod:`tripletlab.models.backbones`)."""

BACKBONE_MODELS = tuple(BACKBONE_APPLICATIONS)
"""The backbone model names (values of the ``model`` option), in the order they are listed."""
