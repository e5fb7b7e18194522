"""Loading an exported artefact in its own runtime, running it, and comparing it with Keras.

Each format is loaded the way a server loads it, without Keras: ONNX with ONNX Runtime
(``onnxruntime.InferenceSession``), a SavedModel with TensorFlow (``tf.saved_model.load`` and
its ``serving_default`` signature), LiteRT with the ``ai_edge_litert`` interpreter (its input
resized to the batch when the batch axis is dynamic, otherwise fed one fixed batch at a time).
:func:`check_artefact` runs a sample of inputs through it and compares the outputs with the
Keras model's: the largest absolute difference must be at most :data:`TOLERANCE`.

Example:
  >>> result = check_artefact("model.onnx", "onnx", inputs, expected)  # doctest: +SKIP
  >>> result.max_abs_diff <= TOLERANCE  # doctest: +SKIP
  True
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tripletlab.errors import ConfigError, MissingExtraError
from tripletlab.serving.formats import (
    EXPORT_EXTRA,
    LITERT,
    ONNX,
    RUNTIMES,
    TENSORFLOW_EXTRA,
    TF_SAVED_MODEL,
    check_format,
)

TOLERANCE = 1e-5
"""The largest absolute difference allowed between the artefact's outputs and Keras'."""

SERVING_SIGNATURE = "serving_default"
"""The signature a SavedModel (and a LiteRT file written from one) serves under."""

CHECK_BATCH = 64
"""Inputs run through the artefact per call (a SavedModel or a LiteRT file with a dynamic batch
axis; ONNX Runtime takes them all at once)."""


@dataclasses.dataclass(frozen=True)
class ArtefactSignature:
    """What a server feeds an artefact and reads back, as its runtime reports it.

    Attributes:
      input_name: the input's name (ONNX input, SavedModel signature argument, LiteRT
        signature input).
      input_shape: its shape, ``None`` for a dynamic axis (the batch, usually).
      input_dtype: its NumPy dtype name (``"float32"``).
      output_name: the embedding output's name.
      output_shape: its shape, ``None`` for a dynamic axis.
      output_dtype: its NumPy dtype name.
      signature: the signature to call (``"serving_default"``) for a SavedModel or a LiteRT
        file that has one; ``None`` for ONNX.
      tensor_names: LiteRT only: the interpreter's ``{"input": ..., "output": ...}`` tensor
        names (``get_input_details()[0]["name"]``); empty otherwise.
    """

    input_name: str
    input_shape: tuple[int | None, ...]
    input_dtype: str
    output_name: str
    output_shape: tuple[int | None, ...]
    output_dtype: str
    signature: str | None = None
    tensor_names: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The figures of a check (:func:`check_artefact`).

    Attributes:
      max_abs_diff: the largest ``|Keras - runtime|`` over every output value.
      samples: the number of inputs compared.
      tolerance: the bound ``max_abs_diff`` was held to.
      runtime: the runtime and its version (``"ONNX Runtime 1.20.1"``).
      signature: what the runtime reports of the artefact's input and output.
    """

    max_abs_diff: float
    samples: int
    tolerance: float
    runtime: str
    signature: ArtefactSignature


class LoadedArtefact:
    """An artefact loaded in its runtime: its :class:`ArtefactSignature` and :meth:`run`.

    Use :func:`load_artefact` to make one.
    """

    def __init__(self, signature: ArtefactSignature, runtime: str,
                 run: Callable[[np.ndarray], np.ndarray]):
        self.signature = signature
        self.runtime = runtime
        self._run = run

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The artefact's outputs for ``inputs`` (``[N, ...]``, cast to its input dtype)."""
        inputs = np.ascontiguousarray(inputs, dtype=self.signature.input_dtype)
        return np.asarray(self._run(inputs))


def load_artefact(path: str | os.PathLike, format: str, *, label: str | None = None,
                  hint: str = "") -> LoadedArtefact:
    """Loads the artefact at ``path`` in the runtime of ``format``.

    Args:
      path: the ONNX or LiteRT file, or the SavedModel folder.
      format: one of :data:`~tripletlab.serving.formats.FORMATS`.
      label: how messages name the artefact (default: ``path``).
      hint: a sentence added to the messages of the runtime's failures.

    Returns:
      The loaded artefact.

    Raises:
      MissingExtraError: the runtime is not installed (the message names the extra).
      ConfigError: the runtime refuses the artefact, or later fails to run it (ONNX Runtime
        or LiteRT).
    """
    check_format(format)
    loader = {ONNX: _load_onnx, TF_SAVED_MODEL: _load_saved_model, LITERT: _load_litert}[format]
    suffix = f" {hint}" if hint else ""

    def refused(error: Exception) -> ConfigError:
        message = " ".join(str(error).split()) or type(error).__name__
        return ConfigError(f"Expected {RUNTIMES[format]} to load and run the {format} export "
                           f"{label or os.fspath(path)!r}. Received: {type(error).__name__}: "
                           f"{message}{suffix}")

    return loader(os.fspath(path), refused)


def check_artefact(path: str | os.PathLike, format: str, inputs: np.ndarray,
                   expected: np.ndarray, *, tolerance: float = TOLERANCE,
                   label: str | None = None, hint: str = "") -> CheckResult:
    """Runs ``inputs`` through the artefact and compares its outputs with ``expected``.

    Args:
      path: the artefact (file or SavedModel folder).
      format: its format, one of :data:`~tripletlab.serving.formats.FORMATS`.
      inputs: ``[N, ...]`` inputs of the model.
      expected: the Keras model's outputs for ``inputs``, ``[N, D]``.
      tolerance: the largest absolute difference allowed.
      label: how messages name the artefact (default: ``path``).
      hint: a sentence added to the error messages (what to try instead).

    Returns:
      The figures of the comparison.

    Raises:
      ConfigError: the runtime refuses the artefact or fails to run it, its outputs have
        another shape than ``expected``, or they differ by more than ``tolerance`` (NaN where
        Keras has a number counts as an infinite difference).
      MissingExtraError: the runtime is not installed.
    """
    loaded = load_artefact(path, format, label=label, hint=hint)
    runtime = RUNTIMES[format]
    outputs = loaded.run(inputs)
    expected = np.asarray(expected)
    suffix = f" {hint}" if hint else ""
    if outputs.shape != expected.shape:
        raise ConfigError(f"Expected the {runtime} outputs of the export to have the Keras "
                          f"model's shape {expected.shape}. Received: {outputs.shape}.{suffix}")
    difference = max_abs_difference(outputs, expected)
    if not difference <= tolerance:
        raise ConfigError(f"Expected the export to reproduce the Keras model within "
                          f"{tolerance:g}. Received: max |Keras - {runtime}| = "
                          f"{difference:.3g} over {len(inputs)} inputs.{suffix}")
    return CheckResult(max_abs_diff=difference, samples=len(inputs), tolerance=tolerance,
                       runtime=loaded.runtime, signature=loaded.signature)


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b|`` in float64; a NaN in one array and not the other counts as infinite."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    difference = np.abs(a - b)
    difference[np.isnan(a) & np.isnan(b)] = 0.0
    difference[np.isnan(difference)] = math.inf
    return float(difference.max())


Refusal = Callable[[Exception], ConfigError]
"""What a loader calls to turn its runtime's failure into the error it raises."""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _dimensions(shape: Any) -> tuple[int | None, ...]:
    """A runtime's shape as ints, with ``None`` for a dynamic axis (ONNX names it, LiteRT
    writes -1, TensorFlow ``None``)."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None
                 for d in shape)


def _batched(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray,
             batch: int) -> np.ndarray:
    parts = [np.asarray(run(inputs[start:start + batch]))
             for start in range(0, len(inputs), batch)]
    return np.concatenate(parts) if parts else np.asarray(run(inputs))


# ----------------------------------------------------------------------------------- ONNX

_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64",
               "tensor(float16)": "float16", "tensor(uint8)": "uint8",
               "tensor(int32)": "int32", "tensor(int64)": "int64"}


def _load_onnx(path: str, refused: Refusal) -> LoadedArtefact:
    try:
        import onnxruntime
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
    except ImportError as error:
        raise MissingExtraError("Checking an ONNX export needs ONNX Runtime: "
                                f"{EXPORT_EXTRA}") from error
    failures = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph,
                ort_errors.InvalidProtobuf, ort_errors.NotImplemented,
                ort_errors.RuntimeException)
    runtime = f"{RUNTIMES[ONNX]} {onnxruntime.__version__}"
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its errors come back as exceptions, not log lines
        ort_session = onnxruntime.InferenceSession(path, options,
                                                   providers=["CPUExecutionProvider"])
    except failures as error:
        raise refused(error) from error
    first_input, first_output = ort_session.get_inputs()[0], ort_session.get_outputs()[0]
    signature = ArtefactSignature(
        input_name=first_input.name, input_shape=_dimensions(first_input.shape),
        input_dtype=_ONNX_TYPES.get(first_input.type, first_input.type),
        output_name=first_output.name, output_shape=_dimensions(first_output.shape),
        output_dtype=_ONNX_TYPES.get(first_output.type, first_output.type))

    quiet = onnxruntime.RunOptions()
    quiet.log_severity_level = 3

    def run(inputs: np.ndarray) -> np.ndarray:
        try:
            return ort_session.run([first_output.name], {first_input.name: inputs}, quiet)[0]
        except failures as error:
            raise refused(error) from error

    return LoadedArtefact(signature, runtime, run)


# ----------------------------------------------------------------------------- SavedModel


def _load_saved_model(path: str, refused: Refusal) -> LoadedArtefact:
    try:
        import tensorflow as tf
    except ImportError as error:
        raise MissingExtraError("Checking a SavedModel export needs TensorFlow: "
                                f"{TENSORFLOW_EXTRA}") from error
    # absl's note that the model's gradients were not saved (JAX) concerns training only
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        loaded = tf.saved_model.load(path)
    finally:
        absl.setLevel(level)
    if SERVING_SIGNATURE not in loaded.signatures:
        raise ConfigError(f"Expected the SavedModel {path!r} to have the signature "
                          f"{SERVING_SIGNATURE!r}. Received: {sorted(loaded.signatures)}.")
    function = loaded.signatures[SERVING_SIGNATURE]
    _, arguments = function.structured_input_signature
    outputs = function.structured_outputs
    input_name, input_spec = next(iter(sorted(arguments.items())))
    output_name, output_spec = next(iter(sorted(outputs.items())))
    signature = ArtefactSignature(
        input_name=input_name, input_shape=_dimensions(input_spec.shape.as_list()),
        input_dtype=input_spec.dtype.name, output_name=output_name,
        output_shape=_dimensions(output_spec.shape.as_list()),
        output_dtype=output_spec.dtype.name, signature=SERVING_SIGNATURE)

    def run(inputs: np.ndarray) -> np.ndarray:
        return _batched(lambda part: function(**{input_name: tf.constant(part)})[output_name]
                        .numpy(), inputs, CHECK_BATCH)

    return LoadedArtefact(signature, f"{RUNTIMES[TF_SAVED_MODEL]} {tf.__version__}", run)


# --------------------------------------------------------------------------------- LiteRT


def _load_litert(path: str, refused: Refusal) -> LoadedArtefact:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise MissingExtraError("Checking a LiteRT export needs the LiteRT interpreter "
                                f"(ai-edge-litert): {EXPORT_EXTRA}") from error
    try:
        interpreter = Interpreter(model_path=path)
    except (ValueError, RuntimeError) as error:
        raise refused(error) from error
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    runners = interpreter.get_signature_list()
    signature_key = SERVING_SIGNATURE if SERVING_SIGNATURE in runners else None
    input_name, output_name = input_detail["name"], output_detail["name"]
    if signature_key is not None and runners[signature_key]["inputs"]:
        input_name = runners[signature_key]["inputs"][0]
        output_name = runners[signature_key]["outputs"][0]
    input_shape = _dimensions(input_detail["shape_signature"])
    signature = ArtefactSignature(
        input_name=input_name, input_shape=input_shape,
        input_dtype=np.dtype(input_detail["dtype"]).name, output_name=output_name,
        output_shape=_dimensions(output_detail["shape_signature"]),
        output_dtype=np.dtype(output_detail["dtype"]).name, signature=signature_key,
        tensor_names={"input": input_detail["name"], "output": output_detail["name"]})

    def invoke(part: np.ndarray) -> np.ndarray:
        try:
            if tuple(interpreter.get_input_details()[0]["shape"]) != part.shape:
                interpreter.resize_tensor_input(input_detail["index"], part.shape)
                interpreter.allocate_tensors()
            interpreter.set_tensor(input_detail["index"], part)
            interpreter.invoke()
        except (ValueError, RuntimeError) as error:
            raise refused(error) from error
        return interpreter.get_tensor(output_detail["index"]).copy()

    def run(inputs: np.ndarray) -> np.ndarray:
        if input_shape and input_shape[0] is None:
            return _batched(invoke, inputs, CHECK_BATCH)
        # a fixed batch (PyTorch's LiteRT converter writes 1): whole batches, the last padded
        fixed = input_shape[0] if input_shape else 1
        padding = (-len(inputs)) % fixed
        padded = np.concatenate([inputs, np.repeat(inputs[-1:], padding, axis=0)])
        return _batched(invoke, padded, fixed)[:len(inputs)]

    interpreter.allocate_tensors()
    return LoadedArtefact(signature, f"{RUNTIMES[LITERT]} {_version('ai-edge-litert')}", run)
