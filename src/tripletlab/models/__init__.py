"""Models: the embedding-model builders and the Siamese :class:`TripletNetwork`.

* :mod:`tripletlab.models.builders`: Keras functional models from images ``[H, W, C]`` to
  embeddings ``[D]`` (:data:`MODELS`, :func:`build_model` and one builder per architecture).
* :mod:`tripletlab.models.backbones`: Keras' pretrained application backbones with an
  embedding head (:data:`BACKBONES`, :func:`backbone_model`); their names without Keras:
  :mod:`tripletlab.models.backbone_names`.
* :mod:`tripletlab.models.triplet_network`: :class:`TripletNetwork`, the three-branch,
  shared-weight network of the offline-triplet workflow, and :func:`extract_embedding_model`,
  the one way to get the single-input embedding model out of a model.

The names are imported on first access, so the Keras-free module (``backbone_names``) can be
read before the Keras backend is chosen.

Example:
  >>> from tripletlab.models import TripletNetwork, build_model, extract_embedding_model
  >>> embedder = build_model("small-cnn", (8, 8, 1), embedding_dim=16, widths=(8,))
  >>> extract_embedding_model(TripletNetwork(embedder)) is embedder
  True
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=("backbone_names", "backbone_rate", "backbones", "builders", "triplet_network"),
    submod_attrs={
        "backbones": ["BACKBONES", "backbone_model"],
        "builders": ["MODELS", "build_model", "omoindrot_cnn", "siamese_mlp", "small_cnn",
                     "tfa_tutorial_cnn"],
        "triplet_network": ["TRIPLET_INPUT_NAMES", "TripletNetwork", "extract_embedding_model"],
    },
)
