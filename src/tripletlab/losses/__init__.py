"""Triplet losses.

Online mining (labels + a batch of embeddings; functional forms and Keras ``Loss`` classes):
``TripletSemiHardLoss``, ``TripletHardLoss``, ``TripletBatchAllLoss``. Offline triplets (the
Siamese-network workflow, explicit (anchor, positive, negative) inputs): ``TripletLoss``.
"""

from tripletlab.losses.classes import TripletBatchAllLoss, TripletHardLoss, TripletSemiHardLoss
from tripletlab.losses.functional import (
    batch_all_triplet_loss,
    hard_triplet_loss,
    semi_hard_triplet_loss,
)
from tripletlab.losses.offline import TripletLoss, offline_triplet_loss

__all__ = [
    "TripletBatchAllLoss",
    "TripletHardLoss",
    "TripletLoss",
    "TripletSemiHardLoss",
    "batch_all_triplet_loss",
    "hard_triplet_loss",
    "offline_triplet_loss",
    "semi_hard_triplet_loss",
]
