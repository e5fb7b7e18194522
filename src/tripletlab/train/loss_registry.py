"""Every loss ``tripletlab train`` can use, in one table (Keras-free).

The join of tripletlab's own losses (:data:`tripletlab.losses.registry.LOSSES`) and the compat
losses (:data:`tripletlab.compat.loss_specs.LOSSES`): the online losses in that order, then the
offline one. The configuration (:mod:`tripletlab.train.config`) and
:func:`tripletlab.train.run.build_loss` ask this table and nothing else, so adding a loss to the
command line is one entry in one of those two tables.

Example:
  >>> from tripletlab.train.loss_registry import loss_names
  >>> loss_names("online")[:4]
  ('semi-hard', 'hard', 'batch-all', 'tfa-semi-hard')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tripletlab.compat import loss_specs as compat_specs
from tripletlab.losses import registry as core
from tripletlab.losses.registry import MODES, LossSpec

__all__ = ["LOSSES", "MODES", "LossSpec", "accepted_distances", "build_loss", "loss_names",
           "loss_spec"]

LOSSES: Mapping[str, LossSpec] = core.join_tables(core.LOSSES, compat_specs.LOSSES)
"""Every loss by name, in the order the command line lists them (read-only)."""


def loss_names(mode: str = "online") -> tuple[str, ...]:
    """The names of the losses of ``mode`` (``"online"``: the values of ``--loss``)."""
    return core.loss_names(mode, losses=LOSSES)


def accepted_distances() -> tuple[str, ...]:
    """Every distance some loss accepts, canonical names first."""
    return core.accepted_distances(losses=LOSSES)


def loss_spec(loss: str, mode: str = "online") -> LossSpec:
    """The :class:`LossSpec` of ``loss`` in ``mode`` (see
    :func:`tripletlab.losses.registry.loss_spec`)."""
    return core.loss_spec(loss, mode, losses=LOSSES)


def build_loss(config) -> Any:
    """The Keras loss of ``config`` (imports Keras; see
    :func:`tripletlab.losses.registry.build_loss`)."""
    return core.build_loss(config, losses=LOSSES)
