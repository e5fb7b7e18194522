"""The P×K batch fitted to the training labels (docs/training.md, "Sampler parameters"):
unset values adapt to small data and say so; chosen values the data cannot fill are refused."""

from __future__ import annotations

import numpy as np
import pytest

from tripletlab.errors import ConfigError
from tripletlab.train.batch_shape import fit_batch_shape
from tripletlab.train.config import resolve_config


def fitted(labels, **options):
    config = resolve_config({"dataset": "digits", **options}, warn_unused=False)
    return fit_batch_shape(config, np.asarray(labels), source="data")


@pytest.mark.parametrize(("classes", "per_class", "expected"), [
    (2, 10, (2, 4)), (3, 10, (3, 4)), (4, 3, (4, 3)), (12, 2, (8, 2)), (10, 100, (8, 4)),
], ids=["2-classes", "3-classes", "4-small-classes", "12-pairs", "mnist-like"])
def test_unset_values_adapt_to_the_data(classes, per_class, expected):
    config, notes = fitted(np.repeat(np.arange(classes), per_class))
    assert (config.classes_per_batch, config.samples_per_class) == expected
    assert len(notes) == (expected[0] < 8) + (expected[1] < 4)
    if expected[0] < 8:
        assert notes[0] == (f"classes_per_batch = {classes}: the training data of 'data' has "
                            f"{classes} classes (the default is 8)")


def test_median_class_size_sets_k_and_a_single_sample_gives_two():
    labels = np.concatenate([np.repeat(np.arange(9), 1), np.repeat([9], 50)])
    config, notes = fitted(labels)
    assert (config.classes_per_batch, config.samples_per_class) == (8, 2)
    assert notes == ["samples_per_class = 2: the median training class of 'data' has 1 sample "
                     "(the default is 4)"]


def test_chosen_values_are_kept_when_the_data_fills_them():
    config, notes = fitted(np.repeat(np.arange(5), 6), classes_per_batch=5, samples_per_class=6)
    assert (config.classes_per_batch, config.samples_per_class, notes) == (5, 6, [])


@pytest.mark.parametrize(("options", "message"), [
    ({"classes_per_batch": 8}, "Expected `classes_per_batch` to be at most the 3 classes of the "
                               "training data of 'data'. Received: classes_per_batch=8; choose "
                               "2 to 3"),
    ({"samples_per_class": 7}, "Expected `samples_per_class` to be at most the 6 samples of the "
                               "largest training class of 'data'. Received: "
                               "samples_per_class=7; choose 2 to 6"),
], ids=["classes", "samples"])
def test_chosen_values_the_data_cannot_fill_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fitted(np.repeat(np.arange(3), 6), **options)


@pytest.mark.parametrize("options", [{"sampler": "shuffled"}, {"mode": "offline"}],
                         ids=["shuffled", "offline"])
def test_other_samplers_are_left_alone(options):
    config, notes = fitted(np.repeat(np.arange(2), 3), **options)
    assert (config.classes_per_batch, config.samples_per_class, notes) == (None, None, [])
