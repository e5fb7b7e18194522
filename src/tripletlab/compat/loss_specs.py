"""The compat losses' entries of the command line's loss table (Keras-free).

:data:`LOSSES` holds TF Addons', omoindrot's and triplet-tools' losses as
:class:`~tripletlab.losses.registry.LossSpec` entries: their ``--loss`` names, default margins
(constants of :mod:`tripletlab.losses.margins`), the distances each accepts (the compat modules'
own Keras-free constants: :data:`tripletlab.compat.tfa.DISTANCE_METRICS`,
:mod:`tripletlab.compat.loss_options`) and factories that import the Keras class when called.
:mod:`tripletlab.train.loss_registry` joins them with tripletlab's own losses
(:data:`tripletlab.losses.registry.LOSSES`).

Example:
  >>> from tripletlab.compat.loss_specs import LOSSES
  >>> LOSSES["omoindrot-batch-all"].distances
  ('L2', 'squared-L2')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tripletlab.compat.loss_options import OMOINDROT_SQUARED, TRIPLET_TOOLS_METRICS
from tripletlab.compat.tfa import DISTANCE_METRICS as TFA_DISTANCES
from tripletlab.losses import margins
from tripletlab.losses.registry import LossSpec, spec_entry

__all__ = ["LOSSES"]


def _tfa_semi_hard(config):
    from tripletlab.compat.tfa import TripletSemiHardLoss

    return TripletSemiHardLoss(margin=config.margin, distance_metric=config.distance)


def _tfa_hard(config):
    from tripletlab.compat.tfa import TripletHardLoss

    return TripletHardLoss(margin=config.margin, soft=config.soft,
                           distance_metric=config.distance)


def _compat(config):
    from tripletlab.compat.compat_loss import CompatLoss

    return CompatLoss(config.loss, config.margin, config.distance,
                      semi_margin=config.semi_margin or 0.0)


LOSSES: Mapping[str, LossSpec] = MappingProxyType(dict([
    spec_entry("tfa-semi-hard", "online", margins.TFA_MARGIN, TFA_DISTANCES, _tfa_semi_hard,
               "tripletlab.compat.tfa.TripletSemiHardLoss",
               original="tripletlab.compat.tfa.losses:TripletSemiHardLoss"),
    spec_entry("tfa-hard", "online", margins.TFA_MARGIN, TFA_DISTANCES, _tfa_hard,
               "tripletlab.compat.tfa.TripletHardLoss", soft=True,
               original="tripletlab.compat.tfa.losses:TripletHardLoss"),
    spec_entry("omoindrot-batch-all", "online", margins.OMOINDROT_MARGIN, OMOINDROT_SQUARED,
               _compat, "tripletlab.compat.omoindrot.batch_all_triplet_loss"),
    spec_entry("omoindrot-batch-hard", "online", margins.OMOINDROT_MARGIN, OMOINDROT_SQUARED,
               _compat, "tripletlab.compat.omoindrot.batch_hard_triplet_loss"),
    spec_entry("triplet-tools-semihard", "online", margins.TRIPLET_TOOLS_MARGIN,
               TRIPLET_TOOLS_METRICS, _compat,
               "tripletlab.compat.triplet_tools.triplet_batch_semihard_loss", semi_margin=True,
               original="tripletlab.compat.triplet_tools:triplet_batch_semihard_loss"),
    spec_entry("triplet-tools-hard", "online", margins.TRIPLET_TOOLS_MARGIN,
               TRIPLET_TOOLS_METRICS, _compat,
               "tripletlab.compat.triplet_tools.triplet_batch_hard_loss",
               original="tripletlab.compat.triplet_tools:triplet_batch_hard_loss"),
]))
"""The compat losses by name, in the order the command line lists them (after tripletlab's)."""
