"""Triplet losses with online mining (functional forms and Keras ``Loss`` classes)."""

from tripletlab.losses.classes import TripletBatchAllLoss, TripletHardLoss, TripletSemiHardLoss
from tripletlab.losses.functional import (
    batch_all_triplet_loss,
    hard_triplet_loss,
    semi_hard_triplet_loss,
)

__all__ = [
    "TripletBatchAllLoss",
    "TripletHardLoss",
    "TripletSemiHardLoss",
    "batch_all_triplet_loss",
    "hard_triplet_loss",
    "semi_hard_triplet_loss",
]
