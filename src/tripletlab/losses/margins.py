"""The default margin of every loss, one constant each (Keras-free).

The loss signatures use these constants as their defaults and :mod:`tripletlab.losses.registry`
reads them, so the command line's default margin is the constructor's by construction.
"""

from __future__ import annotations

SEMI_HARD_MARGIN = 1.0
"""``TripletSemiHardLoss`` / ``semi_hard_triplet_loss`` (TF Addons' default)."""

HARD_MARGIN = 1.0
"""``TripletHardLoss`` / ``hard_triplet_loss`` (TF Addons' default)."""

BATCH_ALL_MARGIN = 0.5
"""``TripletBatchAllLoss`` / ``batch_all_triplet_loss`` (omoindrot's ``params.json``)."""

OFFLINE_MARGIN = 1.0
"""The offline ``TripletLoss`` / ``offline_triplet_loss``."""

TFA_MARGIN = 1.0
"""``tripletlab.compat.tfa``'s losses: TF Addons' own default."""

TRIPLET_TOOLS_MARGIN = 1.0
"""``tripletlab.compat.triplet_tools``' factories: triplet-tools' own default."""

OMOINDROT_MARGIN = 0.5
"""The omoindrot losses on the command line: the margin of omoindrot's
``experiments/*/params.json`` (its functions take ``margin`` without a default)."""
