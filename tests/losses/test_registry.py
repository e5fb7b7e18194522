"""The loss registry: one entry per CLI loss, its facts read from the real constructors, and the
configuration and ``build_loss`` asking it: one entry is all that adding a loss takes.

``registry`` here is the joined table of the command line (:mod:`tripletlab.train.loss_registry`):
tripletlab's own losses (:mod:`tripletlab.losses.registry`) and the compat ones
(:mod:`tripletlab.compat.loss_specs`)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from conftest import imports_keras
from tripletlab.compat import loss_specs
from tripletlab.compat.loss_options import TRIPLET_TOOLS_METRICS
from tripletlab.distances import DISTANCES, PAIRED_DISTANCES
from tripletlab.losses import registry as core
from tripletlab.train import loss_registry as registry
from tripletlab.train.compiled_model import build_loss
from tripletlab.train.config import LOSSES, resolve_config

# What the command line offered before the registry existed: the move must not change it.
LEGACY_MARGINS = {
    "semi-hard": 1.0, "hard": 1.0, "batch-all": 0.5, "tfa-semi-hard": 1.0, "tfa-hard": 1.0,
    "omoindrot-batch-all": 0.5, "omoindrot-batch-hard": 0.5, "triplet-tools-semihard": 1.0,
    "triplet-tools-hard": 1.0,
}
LEGACY_DISTANCES = {
    "semi-hard": DISTANCES, "hard": DISTANCES, "batch-all": DISTANCES,
    "tfa-semi-hard": ("L2", "squared-L2", "angular"), "tfa-hard": ("L2", "squared-L2", "angular"),
    "omoindrot-batch-all": ("L2", "squared-L2"), "omoindrot-batch-hard": ("L2", "squared-L2"),
    "triplet-tools-semihard": ("L2", "angular", "normalized-L2"),
    "triplet-tools-hard": ("L2", "angular", "normalized-L2"),
}
LEGACY_SOFT = {"semi-hard", "hard", "batch-all", "tfa-hard"}


def test_the_cli_losses_are_unchanged():
    assert LOSSES[:len(LEGACY_MARGINS)] == tuple(LEGACY_MARGINS)  # new losses come after
    assert registry.loss_names("offline") == ("triplet",)
    for name in LOSSES:
        spec = registry.loss_spec(name)
        assert spec.mode == "online"
        assert spec.default_margin == LEGACY_MARGINS[name], name
        assert set(spec.distances) == set(LEGACY_DISTANCES[name]), name
        assert spec.soft == (name in LEGACY_SOFT), name
        assert spec.semi_margin == (name == "triplet-tools-semihard"), name


@pytest.mark.parametrize("name", list(registry.LOSSES), ids=list(registry.LOSSES))
def test_default_margin_is_the_constructors(name):
    spec = registry.LOSSES[name]
    if spec.original is None:  # omoindrot's functions take `margin` without a default
        assert name.startswith("omoindrot") and spec.default_margin == 0.5
        from tripletlab.compat import omoindrot

        function = getattr(omoindrot, name.replace("omoindrot-", "").replace("-", "_")
                           + "_triplet_loss")
        assert (inspect.signature(function).parameters["margin"].default
                is inspect.Parameter.empty)
        return
    module, qualname = spec.original.split(":")
    constructor = getattr(importlib.import_module(module), qualname)
    assert inspect.signature(constructor).parameters["margin"].default == spec.default_margin
    # and the loss built for the CLI is that constructor's
    options = {"mode": spec.mode, "loss": name} if spec.mode == "online" else {"mode": "offline"}
    built = build_loss(resolve_config(options))
    if inspect.isclass(constructor):
        assert type(built) is constructor


def test_accepted_distances_come_from_the_canonical_names():
    import tripletlab.compat.tfa as tfa
    from tripletlab.compat import triplet_tools

    for spec in registry.LOSSES.values():
        allowed = PAIRED_DISTANCES if spec.mode == "offline" else DISTANCES
        assert set(spec.distances) <= set(allowed), spec.name
    assert registry.loss_spec("tfa-hard").distances == tfa.DISTANCE_METRICS
    assert registry.loss_spec("x", mode="offline").distances == PAIRED_DISTANCES
    # every canonical distance triplet-tools has maps onto one of its own metric strings
    assert set(TRIPLET_TOOLS_METRICS.values()) == set(triplet_tools.METRICS)


@pytest.mark.parametrize("name", list(registry.LOSSES), ids=list(registry.LOSSES))
def test_each_entry_builds_its_loss_from_a_config(name):
    spec = registry.LOSSES[name]
    options = {"mode": spec.mode}
    if spec.mode == "online":
        options["loss"] = name
    distance = spec.distances[-1]
    config = resolve_config({**options, "distance": distance})
    assert config.margin == spec.default_margin
    loss = build_loss(config)
    assert loss is not build_loss(config)  # a new loss each time
    got = loss.get_config()
    assert got["margin"] == pytest.approx(spec.default_margin)
    assert got.get("distance", got.get("distance_metric")) == distance
    expected = {"triplet": "TripletLoss", "tfa-semi-hard": "TripletSemiHardLoss",
                "tfa-hard": "TripletHardLoss", "semi-hard": "TripletSemiHardLoss",
                "hard": "TripletHardLoss", "batch-all": "TripletBatchAllLoss"}
    assert type(loss).__name__ == expected.get(name, "CompatLoss")


def test_offline_mean_squared_is_accepted_and_online_refuses_it():
    config = resolve_config({"mode": "offline", "distance": "mean-squared"})
    assert config.margin == 1.0 and config.triplets == "random"
    assert build_loss(config).get_config()["distance"] == "mean-squared"
    with pytest.raises(ValueError, match=r"distance.*with loss='semi-hard'.*mean-squared"):
        resolve_config({"distance": "mean-squared"})
    with pytest.raises(ValueError, match=r"one of \{'L2', 'squared-L2'\} with "
                                         r"loss='omoindrot-batch-all'"):
        resolve_config({"loss": "omoindrot-batch-all", "distance": "angular"})


def test_the_table_joins_the_core_and_compat_tables():
    assert set(core.LOSSES).isdisjoint(loss_specs.LOSSES)
    assert dict(registry.LOSSES) == {**core.LOSSES, **loss_specs.LOSSES}
    assert not any(spec.factory.__module__.startswith("tripletlab.compat")
                   for spec in core.LOSSES.values())
    assert registry.loss_names("online") == (*core.loss_names("online"), *loss_specs.LOSSES)
    assert registry.loss_names("offline") == core.loss_names("offline")
    with pytest.raises(ValueError, match="loss='tfa-hard'"):
        core.loss_spec("tfa-hard")  # the core table alone knows tripletlab's losses only
    with pytest.raises(TypeError):
        registry.LOSSES["x"] = registry.LOSSES["hard"]  # read-only


def test_registry_and_config_do_not_import_keras(tmp_path):
    assert not imports_keras("tripletlab.losses.registry, tripletlab.compat.loss_specs, "
                             "tripletlab.train.loss_registry, tripletlab.train.config, "
                             "tripletlab.cli.main", tmp_path)
