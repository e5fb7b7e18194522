"""The P×K batch a training set can fill: defaults that adapt to small data, chosen values checked.

A P×K batch holds ``classes_per_batch`` (P) classes and ``samples_per_class`` (K) samples of
each. Left unset, both adapt to the training labels, and one line says so when they differ from
the usual defaults:

* P is :data:`DEFAULT_CLASSES_PER_BATCH`, or every class when the data has fewer;
* K is :data:`DEFAULT_SAMPLES_PER_CLASS`, or the median class size when smaller (at least 2;
  classes smaller than K are drawn with replacement, as :class:`tripletlab.data.PKSampler`
  warns).

A value the user chose that the data cannot fill (more classes per batch than the data has, or
more samples per class than its largest class holds) is a :class:`~tripletlab.errors.ConfigError`
naming the option, the data's count and the values that would work. Keras-free.

Example:
  >>> import numpy as np
  >>> from tripletlab.train.config import resolve_config
  >>> config, notes = fit_batch_shape(resolve_config({"dataset": "digits"}),
  ...                                 np.repeat([0, 1, 2], 10), source="digits")
  >>> config.classes_per_batch, config.samples_per_class
  (3, 4)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tripletlab.errors import ConfigError

DEFAULT_CLASSES_PER_BATCH = 8
"""P when ``classes_per_batch`` is unset and the training data has at least that many classes."""
DEFAULT_SAMPLES_PER_CLASS = 4
"""K when ``samples_per_class`` is unset and the median training class is at least that big."""


def fit_batch_shape(config: Any, y_train: Any, *, source: str) -> tuple[Any, list[str]]:
    """Fills ``classes_per_batch`` and ``samples_per_class`` of a P×K configuration from the
    training labels, and checks the values the user chose.

    Args:
      config: a resolved :class:`tripletlab.train.config.TrainConfig`.
      y_train: the training labels.
      source: the data's name in messages (the data set, file or folder).

    Returns:
      The configuration with both filled in (unchanged without the P×K sampler), and one line
      for each default that adapted to the data.

    Raises:
      ConfigError: a chosen value that the data cannot fill.
    """
    if config.mode != "online" or config.sampler != "pk":
        return config, []
    counts = np.unique(np.asarray(y_train), return_counts=True)[1]
    classes, notes = _classes_per_batch(config.classes_per_batch, len(counts), source)
    samples, note = _samples_per_class(config.samples_per_class, counts, source)
    notes += note
    return dataclasses.replace(config, classes_per_batch=classes,
                               samples_per_class=samples), notes


def _classes_per_batch(chosen: int | None, num_classes: int,
                       source: str) -> tuple[int, list[str]]:
    if chosen is None:
        if num_classes >= DEFAULT_CLASSES_PER_BATCH:
            return DEFAULT_CLASSES_PER_BATCH, []
        return num_classes, [f"classes_per_batch = {num_classes}: the training data of "
                             f"{source!r} has {num_classes} classes (the default is "
                             f"{DEFAULT_CLASSES_PER_BATCH})"]
    if chosen > num_classes:
        raise ConfigError(f"Expected `classes_per_batch` to be at most the {num_classes} classes "
                          f"of the training data of {source!r}. Received: classes_per_batch="
                          f"{chosen}; choose 2 to {num_classes}, or leave it unset (it then "
                          f"takes every class when there are fewer than "
                          f"{DEFAULT_CLASSES_PER_BATCH}).")
    return chosen, []


def _samples_per_class(chosen: int | None, counts: np.ndarray,
                       source: str) -> tuple[int, list[str]]:
    if chosen is None:
        median = int(np.median(counts))
        if median >= DEFAULT_SAMPLES_PER_CLASS:
            return DEFAULT_SAMPLES_PER_CLASS, []
        samples = max(2, median)
        return samples, [f"samples_per_class = {samples}: the median training class of "
                         f"{source!r} has {median} sample{'' if median == 1 else 's'} (the "
                         f"default is {DEFAULT_SAMPLES_PER_CLASS})"]
    largest = int(counts.max())
    if chosen > largest:
        raise ConfigError(f"Expected `samples_per_class` to be at most the {largest} samples of "
                          f"the largest training class of {source!r}. Received: "
                          f"samples_per_class={chosen}; choose 2 to {max(2, largest)}, or leave "
                          "it unset (it then follows the median class size when that is "
                          f"below {DEFAULT_SAMPLES_PER_CLASS}).")
    return chosen, []
