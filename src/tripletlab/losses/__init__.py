"""Triplet losses.

Online mining (labels + a batch of embeddings; functional forms and Keras ``Loss`` classes):
``TripletSemiHardLoss``, ``TripletHardLoss``, ``TripletBatchAllLoss``. Offline triplets (the
Siamese-network workflow, explicit (anchor, positive, negative) inputs): ``TripletLoss``.
:mod:`tripletlab.losses.registry` lists every loss the command line can use.

The names are imported on first access, so the Keras-free modules (``registry``, ``margins``)
can be read before the Keras backend is chosen.
"""

from __future__ import annotations

import importlib

# Each public name and the module that defines it.
_EXPORTS = {
    "TripletBatchAllLoss": "classes",
    "TripletHardLoss": "classes",
    "TripletSemiHardLoss": "classes",
    "batch_all_triplet_loss": "functional",
    "hard_triplet_loss": "functional",
    "semi_hard_triplet_loss": "functional",
    "TripletLoss": "offline",
    "offline_triplet_loss": "offline",
}
_SUBMODULES = ("classes", "functional", "inputs", "margins", "offline", "registry")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tripletlab.losses.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"tripletlab.losses.{name}")
    raise AttributeError(f"module 'tripletlab.losses' has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, *_SUBMODULES])
