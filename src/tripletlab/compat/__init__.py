"""Drop-in replacements for the losses of the projects tripletlab replaces.

* :mod:`tripletlab.compat.tfa`: TensorFlow Addons' ``TripletSemiHardLoss`` / ``TripletHardLoss``.
* :mod:`tripletlab.compat.omoindrot`: ``batch_all_triplet_loss`` / ``batch_hard_triplet_loss``.
* :mod:`tripletlab.compat.triplet_tools`: triplet-tools' loss factories.

:mod:`tripletlab.compat.compat_loss` (imported by name, not a drop-in) holds ``CompatLoss``, the
omoindrot and triplet-tools losses as one serialisable Keras loss (what ``tripletlab train``
compiles for them).

Migrating is one import line; names, signatures and values are the originals'. The documented
deviations: no NaN for a batch without positive pairs (TF Addons issues #1676, #2447), a stable
soft margin, O(B^2) memory instead of O(B^3), and a negative ``margin`` is refused (a
negative ``semi_margin`` is accepted, as triplet-tools does).
"""

from __future__ import annotations

import lazy_loader

# Imported on first access, like the sub-packages of ``tripletlab``: ``import tripletlab`` must
# not import Keras (the command line chooses the backend first).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=("omoindrot", "tfa", "triplet_tools"))
