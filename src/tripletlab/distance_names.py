"""The distance names: one spelling per distance, defined once (imports nothing).

:mod:`tripletlab.distances` (``keras.ops``), :mod:`tripletlab.numpy_distances` (NumPy), the
losses, the compat modules, the configuration and the command line read them from here.

Example:
  >>> from tripletlab.distance_names import DISTANCES, PAIRED_DISTANCES
  >>> DISTANCES
  ('L2', 'squared-L2', 'angular', 'normalized-L2')
  >>> PAIRED_DISTANCES[-1]
  'mean-squared'
"""

from __future__ import annotations

__all__ = ["ANGULAR", "DISTANCES", "L2", "MEAN_SQUARED", "NORMALIZED_DISTANCES", "NORMALIZED_L2",
           "PAIRED_DISTANCES", "SQUARED_L2"]

L2 = "L2"
"""Euclidean distance."""

SQUARED_L2 = "squared-L2"
"""Squared Euclidean distance."""

ANGULAR = "angular"
"""One minus the cosine similarity."""

NORMALIZED_L2 = "normalized-L2"
"""Euclidean distance between L2-normalised rows (triplet-tools' ``euclidean_norm``)."""

MEAN_SQUARED = "mean-squared"
"""The mean over the embedding dimensions of the squared difference (:data:`SQUARED_L2`
divided by the dimension): the offline ``TripletLoss`` only."""

DISTANCES = (L2, SQUARED_L2, ANGULAR, NORMALIZED_L2)
"""The canonical distance names, in the order they are documented."""

PAIRED_DISTANCES = (*DISTANCES, MEAN_SQUARED)
"""The distances between matching rows (the offline ``TripletLoss``): the canonical ones and
:data:`MEAN_SQUARED`."""

NORMALIZED_DISTANCES = frozenset({ANGULAR, NORMALIZED_L2})
"""The distances computed on L2-normalised rows (so they lie in [0, 2] or [0, 4])."""
