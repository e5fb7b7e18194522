"""The loss table's entry type and the tripletlab losses' entries (Keras-free).

Each :class:`LossSpec` says what the configuration needs to check a loss's options (its default
margin, the distances it accepts, whether ``soft`` and ``semi_margin`` apply, online or offline
mode) and how to build the Keras loss (a factory that imports Keras only when called).

This module holds tripletlab's own losses (:data:`LOSSES`); the drop-in compat losses have their
entries in :mod:`tripletlab.compat.loss_specs`, and :mod:`tripletlab.train.loss_registry` joins
the two tables into every loss ``tripletlab train`` can use (this layer imports nothing from
``compat``). The functions read any such table (``losses=``, default: :data:`LOSSES`).

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
from types import MappingProxyType
from typing import Any

from tripletlab._checks import check_choice
from tripletlab.distances import DISTANCES, PAIRED_DISTANCES
from tripletlab.losses import margins

__all__ = ["LOSSES", "MODES", "LossSpec", "accepted_distances", "build_loss", "join_tables",
           "loss_names", "loss_spec", "spec_entry"]

MODES = ("online", "offline")
"""``"online"``: mining inside P×K (or shuffled) batches; ``"offline"``: given triplets."""


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
      memory: whether a cross-batch memory (``memory_size``,
        :class:`tripletlab.losses.CrossBatchMemory`) can wrap the loss.
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
    memory: bool = False


def spec_entry(name: str, mode: str, margin: float, distances, factory: Callable[[Any], Any],
               summary: str, *, soft: bool = False, semi_margin: bool = False,
               original: str | None = None, memory: bool = False) -> tuple[str, LossSpec]:
    """``(name, LossSpec(...))``: one entry of a loss table (``distances``: any iterable of
    canonical names, e.g. a mapping's keys)."""
    return name, LossSpec(name, mode, margin, tuple(distances), soft, semi_margin, factory,
                          summary, original, memory)


def join_tables(*tables: Mapping[str, LossSpec]) -> Mapping[str, LossSpec]:
    """One read-only table of the entries of ``tables``: the online losses first, then the
    offline ones, each in the order of ``tables`` and of their entries.

    Raises:
      ValueError: two tables name the same loss.
    """
    names = [name for table in tables for name in table]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Expected each loss in one table. Received: {repeated} in several.")
    return MappingProxyType({name: spec for mode in MODES for table in tables
                             for name, spec in table.items() if spec.mode == mode})


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


def _offline(config):
    from tripletlab.losses.offline import TripletLoss

    return TripletLoss(margin=config.margin, distance=config.distance)


LOSSES: Mapping[str, LossSpec] = MappingProxyType(dict([
    spec_entry("semi-hard", "online", margins.SEMI_HARD_MARGIN, DISTANCES, _semi_hard,
               "TF Addons' semi-hard mining", soft=True,
               original="tripletlab.losses.classes:TripletSemiHardLoss", memory=True),
    spec_entry("hard", "online", margins.HARD_MARGIN, DISTANCES, _hard, "batch-hard mining",
               soft=True, original="tripletlab.losses.classes:TripletHardLoss", memory=True),
    spec_entry("batch-all", "online", margins.BATCH_ALL_MARGIN, DISTANCES, _batch_all,
               "every valid triplet (omoindrot's batch-all)", soft=True,
               original="tripletlab.losses.classes:TripletBatchAllLoss", memory=True),
    spec_entry("triplet", "offline", margins.OFFLINE_MARGIN, PAIRED_DISTANCES, _offline,
               "the offline TripletLoss on given (anchor, positive, negative) triplets",
               original="tripletlab.losses.offline:TripletLoss"),
]))
"""tripletlab's own losses by name (the compat losses: :mod:`tripletlab.compat.loss_specs`)."""


def loss_names(mode: str = "online", *, losses: Mapping[str, LossSpec] = LOSSES
               ) -> tuple[str, ...]:
    """The names of the losses of ``mode`` in ``losses`` (``"online"``: values of ``--loss``)."""
    check_choice("mode", mode, MODES)
    return tuple(name for name, spec in losses.items() if spec.mode == mode)


def accepted_distances(*, losses: Mapping[str, LossSpec] = LOSSES) -> tuple[str, ...]:
    """Every distance some loss of ``losses`` accepts, canonical names first."""
    return tuple(dict.fromkeys(d for spec in losses.values() for d in spec.distances))


def loss_spec(loss: str, mode: str = "online", *,
              losses: Mapping[str, LossSpec] = LOSSES) -> LossSpec:
    """The :class:`LossSpec` of ``loss`` in ``mode`` (an entry of ``losses``).

    The offline mode has one loss (``"triplet"``), whatever ``loss`` names: the configuration's
    ``loss`` option selects among the online losses only.

    Raises:
      ValueError: ``mode`` is not a mode, or ``loss`` not an online loss in online mode.
    """
    check_choice("mode", mode, MODES)
    if mode == "offline":
        return next(spec for spec in losses.values() if spec.mode == "offline")
    return losses[check_choice("loss", loss, loss_names("online", losses=losses))]


def build_loss(config, *, losses: Mapping[str, LossSpec] = LOSSES) -> Any:
    """The Keras loss of ``config`` (imports Keras), built by its entry of ``losses``.

    A ``memory_size`` above 0 wraps the loss in a
    :class:`tripletlab.losses.CrossBatchMemory` of that size (``memory_warmup`` calls without
    it); the model must then carry the memory (:meth:`CrossBatchMemory.attach`).

    Args:
      config: a checked :class:`tripletlab.train.config.TrainConfig` (or any object with its
        ``loss``, ``mode``, ``margin``, ``distance``, ``soft``, ``semi_margin``, ``sampler``
        and ``samples_per_class`` attributes, and optionally ``memory_size`` and
        ``memory_warmup``).
      losses: the loss table.

    Returns:
      A ``keras.losses.Loss``.
    """
    loss = loss_spec(config.loss, config.mode, losses=losses).factory(config)
    if not getattr(config, "memory_size", 0):
        return loss
    from tripletlab.losses.cross_batch_memory import CrossBatchMemory

    return CrossBatchMemory(loss, memory_size=config.memory_size,
                            warmup_steps=getattr(config, "memory_warmup", 0))
