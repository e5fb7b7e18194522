"""Models: the embedding-model builders and the Siamese :class:`TripletNetwork`.

* :mod:`tripletlab.models.builders`: Keras functional models from images ``[H, W, C]`` to
  embeddings ``[D]`` (:data:`MODELS`, :func:`build_model` and one builder per architecture).
* :mod:`tripletlab.models.backbones`: Keras' pretrained application backbones with an
  embedding head (:data:`BACKBONES`, :func:`backbone_model`).
* :mod:`tripletlab.models.triplet_network`: :class:`TripletNetwork`, the three-branch,
  shared-weight network of the offline-triplet workflow, and :func:`extract_embedding_model`,
  the one way to get the single-input embedding model out of a model.

Example:
  >>> from tripletlab.models import TripletNetwork, build_model, extract_embedding_model
  >>> embedder = build_model("small-cnn", (8, 8, 1), embedding_dim=16, widths=(8,))
  >>> extract_embedding_model(TripletNetwork(embedder)) is embedder
  True
"""

from tripletlab.models.backbones import BACKBONES, backbone_model
from tripletlab.models.builders import (
    MODELS,
    build_model,
    omoindrot_cnn,
    siamese_mlp,
    small_cnn,
    tfa_tutorial_cnn,
)
from tripletlab.models.triplet_network import (
    TRIPLET_INPUT_NAMES,
    TripletNetwork,
    extract_embedding_model,
)

__all__ = [
    "BACKBONES",
    "MODELS",
    "TRIPLET_INPUT_NAMES",
    "TripletNetwork",
    "backbone_model",
    "build_model",
    "extract_embedding_model",
    "omoindrot_cnn",
    "siamese_mlp",
    "small_cnn",
    "tfa_tutorial_cnn",
]
