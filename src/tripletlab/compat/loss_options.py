"""The names and distances of the losses :class:`~tripletlab.compat.compat_loss.CompatLoss`
wraps (Keras-free).

:mod:`tripletlab.compat.compat_loss` builds the losses from these constants and
:mod:`tripletlab.compat.loss_specs` lists them for the command line; neither imports the
other's module for them. (TF Addons' distances are
:data:`tripletlab.compat.tfa.DISTANCE_METRICS`.)
"""

from __future__ import annotations

from types import MappingProxyType

from tripletlab.distance_names import ANGULAR, L2, NORMALIZED_L2, SQUARED_L2

__all__ = ["COMPAT_LOSSES", "OMOINDROT_SQUARED", "TRIPLET_TOOLS_METRICS"]

COMPAT_LOSSES = ("omoindrot-batch-all", "omoindrot-batch-hard", "triplet-tools-semihard",
                 "triplet-tools-hard")
"""The ``loss`` names :class:`~tripletlab.compat.compat_loss.CompatLoss` wraps."""

OMOINDROT_SQUARED = MappingProxyType({L2: False, SQUARED_L2: True})
"""omoindrot's ``squared`` argument for each canonical distance it computes."""

TRIPLET_TOOLS_METRICS = MappingProxyType({L2: "euclidean", ANGULAR: "cosine",
                                          NORMALIZED_L2: "euclidean_norm"})
"""triplet-tools' ``metric`` for each canonical distance it computes (its ``euclidean`` keeps a
``1e-16`` floor, so it is ``"L2"`` up to that floor)."""
