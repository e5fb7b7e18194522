"""Argument conventions (CONTRIBUTING.md, Rules): the core ``tl.losses`` API takes everything
after ``margin`` by keyword, in one order; ``tripletlab.compat.tfa`` keeps TF Addons'
positional order (docs/migrating.md); each ``get_config`` holds exactly the constructor's
arguments; math docstrings are raw strings."""

from __future__ import annotations

import inspect
import pathlib

import numpy as np
import pytest

import tripletlab as tl
import tripletlab.compat.tfa as tfa
from conftest import to_numpy

CORE = {
    "TripletSemiHardLoss": ["margin", "distance", "soft", "max_positives", "name", "reduction",
                            "dtype"],
    "TripletHardLoss": ["margin", "distance", "soft", "name", "reduction", "dtype"],
    "TripletBatchAllLoss": ["margin", "distance", "soft", "max_positives", "name", "reduction",
                            "dtype"],
    "TripletLoss": ["margin", "distance", "name", "reduction", "dtype"],
    "semi_hard_triplet_loss": ["labels", "embeddings", "margin", "distance", "soft",
                               "max_positives"],
    "hard_triplet_loss": ["labels", "embeddings", "margin", "distance", "soft"],
    "batch_all_triplet_loss": ["labels", "embeddings", "margin", "distance", "soft",
                               "max_positives"],
    "offline_triplet_loss": ["anchors", "positives", "negatives", "margin", "distance"],
}
LABELS = np.array([0, 0, 1, 1, 2, 2])
X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")


@pytest.mark.parametrize("name", sorted(CORE))
def test_core_arguments_after_margin_are_keyword_only(name):
    parameters = inspect.signature(getattr(tl.losses, name)).parameters
    assert list(parameters) == CORE[name]
    after = list(parameters)[list(parameters).index("margin") + 1:]
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in after), name


@pytest.mark.parametrize("name", ["TripletSemiHardLoss", "TripletHardLoss",
                                  "TripletBatchAllLoss"])
def test_core_positional_distance_is_refused(name):
    with pytest.raises(TypeError):
        getattr(tl.losses, name)(0.5, "angular")


def test_core_functions_refuse_positional_options():
    with pytest.raises(TypeError):
        tl.losses.hard_triplet_loss(LABELS, X, 1.0, True)  # once (margin, soft, distance)
    with pytest.raises(TypeError):
        tl.losses.semi_hard_triplet_loss(LABELS, X, 1.0, "angular")


def test_tfa_keeps_tf_addons_positional_order():
    # TripletSemiHardLoss(margin, distance_metric, name); TripletHardLoss(margin, soft,
    # distance_metric, name); the functions take (y_true, y_pred, margin, ...) in that order
    semi = tfa.TripletSemiHardLoss(0.3, "angular", "semi")
    assert (semi.margin, semi.distance_metric, semi.name) == (0.3, "angular", "semi")
    hard = tfa.TripletHardLoss(0.4, True, "squared-L2", "hard")
    assert (hard.margin, hard.soft, hard.distance_metric, hard.name) == (
        0.4, True, "squared-L2", "hard")
    np.testing.assert_allclose(
        to_numpy(tfa.triplet_semihard_loss(LABELS, X, 0.3, "angular")),
        to_numpy(tl.losses.semi_hard_triplet_loss(LABELS, X, 0.3, distance="angular")),
        rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(tfa.triplet_hard_loss(LABELS, X, 0.4, True, "squared-L2")),
        to_numpy(tl.losses.hard_triplet_loss(LABELS, X, 0.4, distance="squared-L2", soft=True)),
        rtol=1e-6)
    assert list(inspect.signature(tfa.TripletHardLoss).parameters)[:4] == [
        "margin", "soft", "distance_metric", "name"]
    assert list(inspect.signature(tfa.TripletSemiHardLoss).parameters)[:3] == [
        "margin", "distance_metric", "name"]


@pytest.mark.parametrize("name", ["TripletSemiHardLoss", "TripletHardLoss",
                                  "TripletBatchAllLoss", "TripletLoss"])
def test_get_config_holds_the_constructor_arguments(name):
    cls = getattr(tl.losses, name)
    options = {"margin": 0.25, "distance": "angular", "name": "custom", "reduction": "sum"}
    if "soft" in CORE[name]:
        options["soft"] = True
    if "max_positives" in CORE[name]:
        options["max_positives"] = 3
    config = cls(**options).get_config()
    assert set(config) <= set(CORE[name])
    for key, value in options.items():
        assert config[key] == value, key
    assert cls(**config).get_config() == config


LOSS_SOURCES = ["losses/classes.py", "losses/functional.py", "losses/offline.py",
                "compat/tfa/losses.py", "compat/omoindrot.py", "compat/triplet_tools.py",
                "distances.py"]


@pytest.mark.parametrize("path", LOSS_SOURCES)
def test_math_docstrings_are_raw_strings(path):
    source = (pathlib.Path(tl.__file__).parent / path).read_text(encoding="utf-8")
    assert "\\\\" not in source, "a doubled backslash: make the docstring r\"\"\"...\"\"\""


@pytest.mark.parametrize("name", ["TripletSemiHardLoss", "TripletHardLoss",
                                  "TripletBatchAllLoss", "TripletLoss", "semi_hard_triplet_loss",
                                  "hard_triplet_loss", "batch_all_triplet_loss",
                                  "offline_triplet_loss"])
def test_each_loss_has_a_math_line(name):
    assert ".. math::" in inspect.getdoc(getattr(tl.losses, name))
