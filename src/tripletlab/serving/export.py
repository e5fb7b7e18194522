"""``export_model``: a Keras embedding model to a served artefact, checked before it is kept.

The artefact is written by Keras (``model.export(path, format=...)``) under a temporary name,
loaded in its own runtime and compared with the Keras model on a sample of inputs
(:mod:`tripletlab.serving.artefact_check`); only an artefact within the tolerance is renamed
onto the output path, with its serving spec beside it (:mod:`tripletlab.serving.serving_spec`).
On any failure nothing is left at the output path (an export being replaced stays as it was).

Example:
  >>> from tripletlab.serving import export_model
  >>> result = export_model(model, "exports/model.onnx", format="onnx")  # doctest: +SKIP
  >>> result.max_abs_diff < 1e-5  # doctest: +SKIP
  True
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab._checks import check_bool, check_number
from tripletlab.atomic import Recorder
from tripletlab.distance_names import L2
from tripletlab.errors import ConfigError
from tripletlab.serving.artefact_check import TOLERANCE, check_artefact
from tripletlab.serving.artefact_files import check_output, is_directory_format, staged_artefact
from tripletlab.serving.check_sample import (
    DEFAULT_SAMPLES,
    CheckSample,
    check_input_shape,
    uniform_sample,
)
from tripletlab.serving.formats import (
    FORMAT_TITLES,
    RUNTIMES,
    alternatives,
    check_export_support,
)
from tripletlab.serving.serving_spec import (
    UNIT_NORM_TOLERANCE,
    build_spec,
    last_layer_normalizes,
    norm_range,
    spec_path,
    write_spec,
)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
      path: the artefact (file, or SavedModel folder).
      spec_path: its serving spec (``path`` + ``.serving.json``).
      format: the format written.
      backend: the Keras backend that wrote it.
      max_abs_diff: the largest ``|Keras - runtime|`` over the check's outputs.
      samples: the number of inputs the check compared.
      spec: the serving spec written (a dict).
    """

    path: Path
    spec_path: Path
    format: str
    backend: str
    max_abs_diff: float
    samples: int
    spec: dict[str, Any]


def export_model(model: Any, path: str | os.PathLike, *, format: str,
                 sample_inputs: np.ndarray | CheckSample | None = None, distance: str = L2,
                 overwrite: bool = False, tolerance: float = TOLERANCE,
                 model_file: str | None = None,
                 announce: Callable[[str], None] | None = None,
                 record: Recorder | None = None) -> ExportResult:
    """Exports ``model`` as ``format`` to ``path``, checks it in its runtime, writes its spec.

    Args:
      model: a Keras embedding model with one input (e.g. ``best.keras``, loaded).
      path: the output: a file for ``"onnx"`` and ``"litert"`` (``.tflite``), a folder for
        ``"tf_saved_model"``. Its serving spec is written to ``path`` + ``.serving.json``.
      format: ``"onnx"``, ``"tf_saved_model"`` or ``"litert"``
        (:data:`~tripletlab.serving.formats.FORMATS`; which backend exports which:
        :func:`~tripletlab.serving.formats.check_export_support`).
      sample_inputs: the inputs to check the export on: an array ``[N, ...]``, a
        :class:`~tripletlab.serving.check_sample.CheckSample` (inputs and their description),
        or ``None`` for :data:`~tripletlab.serving.check_sample.DEFAULT_SAMPLES` inputs drawn
        uniformly in [0, 1] with a fixed seed.
      distance: the distance to compare embeddings with, written in the spec (one of
        :data:`tripletlab.distances.DISTANCES`).
      overwrite: replace an export tripletlab wrote at ``path`` (never anything else).
      tolerance: the largest ``|Keras - runtime|`` accepted.
      model_file: the ``.keras`` file ``model`` was loaded from, written in the spec.
      announce: called with a line for each step (e.g. ``print``); silent by default.
      record: called with each file's final path before it is written (an experiment's
        ``record``, to name the files in its manifest).

    Returns:
      An :class:`ExportResult`.

    Raises:
      ConfigError: a format the current backend does not export, a bad argument, a model
        with several inputs, inputs of the wrong shape, or an export that its runtime refuses
        or that differs from the Keras model by more than ``tolerance``.
      MissingExtraError: a package the export or its check needs is not installed.
      UserFileExistsError: ``path`` exists and is not an export tripletlab wrote, or
        ``overwrite`` is not set.
    """
    import keras

    from tripletlab.distances import check_distance
    from tripletlab.inference import embed

    backend = keras.backend.backend()
    check_export_support(format, backend)
    distance = check_distance(distance)
    check_bool("overwrite", overwrite)
    check_number("tolerance", tolerance, minimum=0)
    say = announce or (lambda line: None)
    target = Path(path)
    check_output(target, format, overwrite=overwrite)
    input_spec = single_input_spec(model)
    sample = _check_sample(sample_inputs, input_spec.shape)
    check_input_shape(sample, input_spec.shape)
    expected = embed(model, sample.inputs)
    if expected.ndim != 2:
        raise ConfigError(f"Expected an embedding model with outputs [N, D]. Received: "
                          f"outputs of shape {expected.shape}.")
    title, runtime = FORMAT_TITLES[format], RUNTIMES[format]
    say(f"Exporting {title} to {target} with the {backend} backend")
    with staged_artefact(target, directory=is_directory_format(format),
                         record=record) as temporary:
        with warnings.catch_warnings():
            _quiet_converters(backend)
            model.export(os.fspath(temporary), format=format, verbose=False,
                         input_signature=[input_spec])
        say(f"Checking the export in {runtime} on {sample.source}")
        hint = (f"Nothing was written to {str(target)!r}."
                f"{alternatives(format, backend)}")
        check = check_artefact(temporary, format, sample.inputs, expected,
                               tolerance=tolerance, label=str(target), hint=hint)
        say(f"max |Keras - {runtime}| = {check.max_abs_diff:.1e} over {check.samples} inputs "
            f"(tolerance {tolerance:g})")
        norms = norm_range(expected)
        normalized = last_layer_normalizes(model) or (
            abs(norms[0] - 1) <= UNIT_NORM_TOLERANCE and abs(norms[1] - 1) <= UNIT_NORM_TOLERANCE)
        spec = build_spec(artefact=target, format=format, backend=backend, check=check,
                          input_shape=tuple(input_spec.shape), embedding_size=expected.shape[1],
                          l2_normalized=normalized, output_norms=norms, distance=distance,
                          sample_source=sample.source, model_file=model_file)
        # the spec first: an artefact at the output path always has tripletlab's spec beside it
        write_spec(target, spec, record=record)
    say(f"Wrote {target} and {spec_path(target).name}")
    return ExportResult(path=target, spec_path=spec_path(target), format=format,
                        backend=backend, max_abs_diff=check.max_abs_diff,
                        samples=check.samples, spec=spec)


def single_input_spec(model: Any):
    """The ``keras.InputSpec`` the export is traced with: the model's one input, any batch.

    Raises:
      ConfigError: the model has several inputs (an embedding model has one).
    """
    import keras

    inputs = model.inputs
    if len(inputs) != 1:
        raise ConfigError(f"Expected an embedding model with one input. Received: a model "
                          f"with {len(inputs)} inputs.")
    tensor = inputs[0]
    name = getattr(tensor, "name", None) or "inputs"
    return keras.InputSpec(shape=(None, *tuple(tensor.shape)[1:]),
                           dtype=keras.backend.standardize_dtype(tensor.dtype), name=name)


def _quiet_converters(backend: str) -> None:
    """Hides the converters' notes to their own developers (inside ``catch_warnings``): NumPy
    deprecations in Keras' tf2onnx patch, and PyTorch's tracer warnings, which say a trace may
    not fit other inputs: the check runs the artefact on other inputs and decides."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"keras\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if backend == "torch":
        import torch

        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)


def _check_sample(sample_inputs: Any, input_shape: tuple[int | None, ...]) -> CheckSample:
    if sample_inputs is None:
        return uniform_sample(input_shape, DEFAULT_SAMPLES)
    if isinstance(sample_inputs, CheckSample):
        return sample_inputs
    inputs = np.asarray(sample_inputs, dtype=np.float32)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ConfigError(f"Expected `sample_inputs` to be an array [N, ...] with N >= 1. "
                          f"Received: shape {inputs.shape}.")
    return CheckSample(inputs, f"{len(inputs)} inputs given")
