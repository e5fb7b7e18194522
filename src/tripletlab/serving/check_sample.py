"""The inputs an export is checked on: real images of a data set, or a fixed uniform sample.

An export is compared with its Keras model on a small sample of inputs
(:func:`tripletlab.serving.artefact_check.check_artefact`). Real inputs are best: a
class-stratified sample of a data set split (:func:`data_sample`, the sampler of
:mod:`tripletlab.stratified`); without data, :func:`uniform_sample` draws values uniformly in
[0, 1] (the range of tripletlab's image inputs) with a fixed seed, and its description says so.

Example:
  >>> sample = uniform_sample((None, 8, 8, 1), count=4)
  >>> sample.inputs.shape, sample.inputs.dtype.name
  ((4, 8, 8, 1), 'float32')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tripletlab._checks import check_choice, check_number
from tripletlab.errors import ConfigError
from tripletlab.stratified import stratified_sample

DEFAULT_SAMPLES = 32
"""Inputs compared by default."""

UNIFORM_SEED = 0
"""The seed of :func:`uniform_sample`."""

SPLITS = ("test", "train")


@dataclasses.dataclass(frozen=True, eq=False)
class CheckSample:
    """Inputs to check an export on, and where they came from.

    Attributes:
      inputs: float32 ``[N, ...]`` model inputs.
      source: where they came from, in words (printed, and written in the serving spec).
    """

    inputs: np.ndarray
    source: str


def uniform_sample(input_shape: tuple[int | None, ...], count: int = DEFAULT_SAMPLES,
                   seed: int = UNIFORM_SEED) -> CheckSample:
    """``count`` inputs drawn uniformly in [0, 1] with ``seed``.

    Args:
      input_shape: the model's input shape, batch axis first (its value is ignored).
      count: the number of inputs.
      seed: the seed of ``numpy.random.default_rng``.

    Raises:
      ConfigError: the shape has an undefined axis besides the batch (no size to draw).
    """
    check_number("count", count, minimum=1, integer=True)
    shape = tuple(input_shape)[1:]
    if any(dimension is None for dimension in shape):
        raise ConfigError(f"Expected a model input shape without undefined axes to draw a "
                          f"uniform sample from. Received: {tuple(input_shape)}; give a data "
                          "set (--dataset, --data-file or --image-folder) to check the export "
                          "on.")
    inputs = np.random.default_rng(seed).uniform(size=(count, *shape)).astype(np.float32)
    return CheckSample(inputs, f"{count} inputs drawn uniformly in [0, 1] (seed {seed}): no "
                               "data set given")


def data_sample(data: Any, split: str = "test", count: int = DEFAULT_SAMPLES,
                seed: int = 0) -> CheckSample:
    """A class-stratified sample of ``count`` images of ``data``'s ``split``.

    Args:
      data: a :class:`tripletlab.data.Dataset`.
      split: ``"test"`` or ``"train"``.
      count: the sample size cap (the whole split when smaller).
      seed: the seed of the sample (:func:`tripletlab.stratified.stratified_sample`).
    """
    from tripletlab.data.image_files import take_rows

    check_choice("split", split, SPLITS)
    check_number("count", count, minimum=1, integer=True)
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    if len(y) == 0:
        raise ConfigError(f"Expected images in the {split} split of {data.name!r} to check "
                          "the export on. Received: an empty split.")
    keep = stratified_sample(y, count, seed)
    inputs = np.asarray(take_rows(x, keep), dtype=np.float32)
    return CheckSample(inputs, f"{len(keep)} {split} images of {data.name} (class-stratified, "
                               f"seed {seed})")


def check_input_shape(sample: CheckSample, input_shape: tuple[int | None, ...]) -> None:
    """Raises unless ``sample``'s inputs fit a model of ``input_shape`` (batch axis first)."""
    expected = tuple(input_shape)[1:]
    received = tuple(sample.inputs.shape[1:])
    if len(expected) != len(received) or any(
            e is not None and e != r for e, r in zip(expected, received, strict=True)):
        raise ConfigError(f"Expected inputs of shape {expected} for this model. Received: "
                          f"{received} from {sample.source}.")
