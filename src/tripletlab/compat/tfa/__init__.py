"""Drop-in replacement for ``tensorflow_addons.losses`` triplet losses (TF Addons 0.23).

Change ``import tensorflow_addons as tfa`` into ``import tripletlab.compat.tfa as tfa`` and
``tfa.losses.TripletSemiHardLoss()`` keeps working; ``from tensorflow_addons.losses import
TripletSemiHardLoss`` becomes ``from tripletlab.compat.tfa import TripletSemiHardLoss`` (or
``from tripletlab.compat.tfa.losses import ...``). Same names (``TripletSemiHardLoss``,
``TripletHardLoss``, ``triplet_semihard_loss``, ``triplet_hard_loss``), arguments, in TF Addons'
positional order (``distance_metric=``, including a callable that maps ``[B, D]`` embeddings to
a ``[B, B]`` distance matrix) and values, on every Keras 3 backend.

Deviations on purpose: ``TripletSemiHardLoss`` on a batch without positive pairs gives 0
instead of NaN; ``soft=True`` uses a stable softplus (TF Addons' ``log1p(exp(x))`` overflows
to inf in float32); memory is O(B^2)
(TF Addons' semi-hard tiles a ``B^2 x B`` tensor); ``"angular"`` has an exactly zero diagonal
(TF Addons leaves rounding noise of about 1e-7 there).

The losses are imported on first access (``DISTANCE_METRICS`` is readable without Keras).

Example:
  >>> import tripletlab.compat.tfa as tfa
  >>> tfa.losses.TripletSemiHardLoss().name
  'triplet_semihard_loss'
"""

from __future__ import annotations

import lazy_loader

from tripletlab.distance_names import ANGULAR, L2, SQUARED_L2

DISTANCE_METRICS = (L2, SQUARED_L2, ANGULAR)
"""The distance names TF Addons accepts (besides a callable)."""

__getattr__, __dir__, _lazy_all = lazy_loader.attach(
    __name__, submodules=("losses",),
    submod_attrs={"losses": ["TripletHardLoss", "TripletSemiHardLoss", "triplet_hard_loss",
                             "triplet_semihard_loss"]})
__all__ = ["DISTANCE_METRICS", *_lazy_all]
