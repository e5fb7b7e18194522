"""Every loss ``tripletlab train`` can use, in one table (Keras-free).

Each :class:`LossSpec` says what the configuration needs to check a loss's options (its default
margin, the distances it accepts, whether ``soft`` and ``semi_margin`` apply, online or offline
mode) and how to build the Keras loss (a factory that imports Keras only when called). The
configuration (:mod:`tripletlab.train.config`) and :func:`tripletlab.train.run.build_loss` ask
this table and nothing else, so adding a loss to the command line is one entry in
:data:`LOSSES`.

Example:
  >>> from tripletlab.losses.registry import loss_spec
  >>> spec = loss_spec("batch-all")
  >>> spec.default_margin, spec.soft, spec.distances
  (0.5, True, ('L2', 'squared-L2', 'angular', 'normalized-L2'))
  >>> loss_spec("semi-hard", mode="offline").name
  'triplet'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tripletlab._checks import check_choice
from tripletlab.compat.tfa import DISTANCE_METRICS as TFA_DISTANCES
from tripletlab.distances import DISTANCES, PAIRED_DISTANCES
from tripletlab.losses import margins

__all__ = ["LOSSES", "MODES", "OMOINDROT_SQUARED", "TRIPLET_TOOLS_METRICS", "LossSpec",
           "accepted_distances", "build_loss", "loss_names", "loss_spec"]

MODES = ("online", "offline")
"""``"online"``: mining inside P×K (or shuffled) batches; ``"offline"``: given triplets."""

OMOINDROT_SQUARED = {"L2": False, "squared-L2": True}
"""omoindrot's ``squared`` argument for each canonical distance it computes."""

TRIPLET_TOOLS_METRICS = {"L2": "euclidean", "angular": "cosine",
                         "normalized-L2": "euclidean_norm"}
"""triplet-tools' ``metric`` for each canonical distance it computes (its ``euclidean`` keeps a
``1e-16`` floor, so it is ``"L2"`` up to that floor)."""


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What the configuration and the command line know about one loss.

    Attributes:
      name: the ``loss`` option's value (``--loss NAME``).
      mode: ``"online"`` or ``"offline"`` (see :data:`MODES`).
      default_margin: the margin when none is given: the constructor's default (a constant of
        :mod:`tripletlab.losses.margins` that the constructor's signature uses too).
      distances: the ``distance`` values the loss accepts (canonical names).
      soft: whether the ``soft`` option applies.
      semi_margin: whether the ``semi_margin`` option applies.
      factory: ``factory(config)`` builds the ``keras.losses.Loss`` from a configuration (an
        object with the attributes of :class:`tripletlab.train.config.TrainConfig`); it imports
        Keras only when called.
      summary: one line for help texts.
      original: ``"module:name"`` of the callable whose ``margin`` default ``default_margin``
        is (checked by the tests); ``None`` when that callable has no default.
    """

    name: str
    mode: str
    default_margin: float
    distances: tuple[str, ...]
    soft: bool
    semi_margin: bool
    factory: Callable[[Any], Any] = dataclasses.field(repr=False, compare=False)
    summary: str = ""
    original: str | None = None


# ---------------------------------------------------------------------------------------------
# Factories: each imports its Keras class when called.
# ---------------------------------------------------------------------------------------------


def _max_positives(config) -> int | None:
    # A P x K batch has K - 1 positives per anchor: the sort-free mining path applies. K is
    # None until fitted to the data (tripletlab.train.batch_shape): then the exact sort path.
    if config.sampler != "pk" or config.samples_per_class is None:
        return None
    return config.samples_per_class - 1


def _semi_hard(config):
    from tripletlab.losses.classes import TripletSemiHardLoss

    return TripletSemiHardLoss(margin=config.margin, distance=config.distance, soft=config.soft,
                               max_positives=_max_positives(config))


def _hard(config):
    from tripletlab.losses.classes import TripletHardLoss

    return TripletHardLoss(margin=config.margin, distance=config.distance, soft=config.soft)


def _batch_all(config):
    from tripletlab.losses.classes import TripletBatchAllLoss

    return TripletBatchAllLoss(margin=config.margin, distance=config.distance, soft=config.soft,
                               max_positives=_max_positives(config))


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


def _offline(config):
    from tripletlab.losses.offline import TripletLoss

    return TripletLoss(margin=config.margin, distance=config.distance)


def _spec(name, mode, margin, distances, factory, summary, *, soft=False, semi_margin=False,
          original=None):
    return name, LossSpec(name, mode, margin, tuple(distances), soft, semi_margin, factory,
                          summary, original)


LOSSES: Mapping[str, LossSpec] = dict([
    _spec("semi-hard", "online", margins.SEMI_HARD_MARGIN, DISTANCES, _semi_hard,
          "TF Addons' semi-hard mining", soft=True,
          original="tripletlab.losses.classes:TripletSemiHardLoss"),
    _spec("hard", "online", margins.HARD_MARGIN, DISTANCES, _hard, "batch-hard mining",
          soft=True, original="tripletlab.losses.classes:TripletHardLoss"),
    _spec("batch-all", "online", margins.BATCH_ALL_MARGIN, DISTANCES, _batch_all,
          "every valid triplet (omoindrot's batch-all)", soft=True,
          original="tripletlab.losses.classes:TripletBatchAllLoss"),
    _spec("tfa-semi-hard", "online", margins.TFA_MARGIN, TFA_DISTANCES, _tfa_semi_hard,
          "tripletlab.compat.tfa.TripletSemiHardLoss",
          original="tripletlab.compat.tfa.losses:TripletSemiHardLoss"),
    _spec("tfa-hard", "online", margins.TFA_MARGIN, TFA_DISTANCES, _tfa_hard,
          "tripletlab.compat.tfa.TripletHardLoss", soft=True,
          original="tripletlab.compat.tfa.losses:TripletHardLoss"),
    _spec("omoindrot-batch-all", "online", margins.OMOINDROT_MARGIN, OMOINDROT_SQUARED, _compat,
          "tripletlab.compat.omoindrot.batch_all_triplet_loss"),
    _spec("omoindrot-batch-hard", "online", margins.OMOINDROT_MARGIN, OMOINDROT_SQUARED,
          _compat, "tripletlab.compat.omoindrot.batch_hard_triplet_loss"),
    _spec("triplet-tools-semihard", "online", margins.TRIPLET_TOOLS_MARGIN,
          TRIPLET_TOOLS_METRICS, _compat,
          "tripletlab.compat.triplet_tools.triplet_batch_semihard_loss", semi_margin=True,
          original="tripletlab.compat.triplet_tools:triplet_batch_semihard_loss"),
    _spec("triplet-tools-hard", "online", margins.TRIPLET_TOOLS_MARGIN, TRIPLET_TOOLS_METRICS,
          _compat, "tripletlab.compat.triplet_tools.triplet_batch_hard_loss",
          original="tripletlab.compat.triplet_tools:triplet_batch_hard_loss"),
    _spec("triplet", "offline", margins.OFFLINE_MARGIN, PAIRED_DISTANCES, _offline,
          "the offline TripletLoss on given (anchor, positive, negative) triplets",
          original="tripletlab.losses.offline:TripletLoss"),
])
"""Every loss by name, in the order the command line lists them."""


def loss_names(mode: str = "online") -> tuple[str, ...]:
    """The names of the losses of ``mode`` (``"online"``: the values of ``--loss``)."""
    check_choice("mode", mode, MODES)
    return tuple(name for name, spec in LOSSES.items() if spec.mode == mode)


def accepted_distances() -> tuple[str, ...]:
    """Every distance some loss accepts, canonical names first."""
    return tuple(dict.fromkeys(d for spec in LOSSES.values() for d in spec.distances))


def loss_spec(loss: str, mode: str = "online") -> LossSpec:
    """The :class:`LossSpec` of ``loss`` in ``mode``.

    The offline mode has one loss (``"triplet"``), whatever ``loss`` names: the configuration's
    ``loss`` option selects among the online losses only.

    Raises:
      ValueError: ``mode`` is not a mode, or ``loss`` not an online loss in online mode.
    """
    check_choice("mode", mode, MODES)
    if mode == "offline":
        return next(spec for spec in LOSSES.values() if spec.mode == "offline")
    return LOSSES[check_choice("loss", loss, loss_names("online"))]


def build_loss(config) -> Any:
    """The Keras loss of ``config`` (imports Keras).

    Args:
      config: a checked :class:`tripletlab.train.config.TrainConfig` (or any object with its
        ``loss``, ``mode``, ``margin``, ``distance``, ``soft``, ``semi_margin``, ``sampler``
        and ``samples_per_class`` attributes).

    Returns:
      A ``keras.losses.Loss``.
    """
    return loss_spec(config.loss, config.mode).factory(config)
