"""Every configurable loss builds, gives a finite scalar, and survives Keras serialisation (so
``--resume`` can load the checkpoint)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tripletlab.train.compiled_model import build_loss
from tripletlab.train.config import LOSSES, resolve_config
from tripletlab.train.optimizer import build_optimizer


@pytest.mark.parametrize("loss_name", LOSSES, ids=LOSSES)
def test_loss_builds_and_round_trips(loss_name):
    rng = np.random.default_rng(3)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    embeddings = rng.normal(size=(8, 5)).astype("float32")
    loss = build_loss(resolve_config({"loss": loss_name}))
    value = float(keras.ops.convert_to_numpy(loss(labels, embeddings)))
    assert np.isfinite(value) and value >= 0
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert float(keras.ops.convert_to_numpy(restored(labels, embeddings))) == pytest.approx(value)


def test_omoindrot_squared_and_triplet_tools_metric():
    config = resolve_config({"loss": "omoindrot-batch-all", "distance": "squared-L2"})
    assert build_loss(config).get_config()["distance"] == "squared-L2"
    config = resolve_config({"loss": "triplet-tools-semihard", "semi_margin": 0.1,
                             "distance": "normalized-L2"})
    assert build_loss(config).get_config()["semi_margin"] == pytest.approx(0.1)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "exponential"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
def test_optimizers_and_schedules(optimizer, schedule):
    config = resolve_config({"optimizer": optimizer, "schedule": schedule, "epochs": 2})
    built = build_optimizer(config, steps_per_epoch=10)
    assert isinstance(built, keras.optimizers.Optimizer)


@pytest.mark.parametrize("loss_name", ["semi-hard", "batch-all"])
def test_pk_sampler_gives_the_loss_its_positives_per_anchor(loss_name):
    """The P x K sampler's K - 1 positives per anchor select the sort-free mining path."""
    config = resolve_config({"loss": loss_name, "sampler": "pk", "samples_per_class": 5})
    assert build_loss(config).get_config()["max_positives"] == 4
    config = resolve_config({"loss": loss_name, "sampler": "shuffled"})
    assert build_loss(config).get_config()["max_positives"] is None
