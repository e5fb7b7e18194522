"""Triplet losses.

Online mining (labels + a batch of embeddings; functional forms and Keras ``Loss`` classes):
``TripletSemiHardLoss``, ``TripletHardLoss``, ``TripletBatchAllLoss``. Offline triplets (the
Siamese-network workflow, explicit (anchor, positive, negative) inputs): ``TripletLoss``.
``CrossBatchMemory`` wraps an online loss so that its anchors also mine a memory of past
batches.
:mod:`tripletlab.losses.registry` lists every loss the command line can use.

The names are imported on first access, so the Keras-free modules (``registry``, ``margins``)
can be read before the Keras backend is chosen.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=("classes", "cross_batch_memory", "functional", "inputs", "margins", "offline",
                "registry"),
    submod_attrs={
        "classes": ["TripletBatchAllLoss", "TripletHardLoss", "TripletSemiHardLoss"],
        "cross_batch_memory": ["CrossBatchMemory", "MemoryQueue"],
        "functional": ["batch_all_triplet_loss", "hard_triplet_loss", "semi_hard_triplet_loss"],
        "offline": ["TripletLoss", "offline_triplet_loss"],
    },
)
