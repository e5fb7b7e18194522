"""``steps_per_execution``: the measured default per backend, and PyTorch's limit of 1."""

from __future__ import annotations

import keras
import pytest

from tripletlab.train.compiled_model import DEFAULT_STEPS_PER_EXECUTION, steps_per_execution
from tripletlab.train.config import ConfigError, resolve_config


def test_default_follows_the_backend():
    config = resolve_config({"dataset": "digits"})
    assert config.steps_per_execution is None
    expected = DEFAULT_STEPS_PER_EXECUTION[keras.backend.backend()]
    assert steps_per_execution(config) == expected
    assert (expected == 1) == (keras.backend.backend() == "torch")


def test_explicit_value():
    config = resolve_config({"dataset": "digits", "steps_per_execution": 4})
    if keras.backend.backend() == "torch":
        with pytest.raises(ConfigError, match="steps_per_execution=4"):
            steps_per_execution(config)
    else:
        assert steps_per_execution(config) == 4
    one = resolve_config({"dataset": "digits", "steps_per_execution": 1})
    assert steps_per_execution(one) == 1
