"""The serving spec: the JSON file beside an export that tells a server how to use it.

``tripletlab export --output PATH`` writes ``PATH.serving.json`` (``model.onnx`` →
``model.onnx.serving.json``; a SavedModel folder ``served`` → ``served.serving.json``): the
artefact's input (name, shape, dtype) and output, the preprocessing an image needs before it is
fed (colour mode, size, scaling to [0, 1], channels last), the embedding size, whether the
embeddings are L2-normalised, the distance to compare them with, what exported it (format,
backend, Keras and tripletlab versions) and the figures of the check the export passed.

``"written_by": "tripletlab"`` marks an export tripletlab wrote: ``--overwrite`` replaces only
such an export (:func:`is_tripletlab_export`).

Example:
  >>> spec_path("exports/model.onnx").as_posix()
  'exports/model.onnx.serving.json'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.atomic import Recorder, write_json
from tripletlab.serving.artefact_check import CheckResult
from tripletlab.serving.formats import DIRECTORY_FORMATS, RUNTIMES

SPEC_SUFFIX = ".serving.json"
"""What :func:`spec_path` adds to the artefact's name."""

WRITTEN_BY = "tripletlab"
"""The value of the spec's ``written_by`` key."""

SPEC_VERSION = 1
"""The version of the spec's layout (``spec_version``)."""

UNIT_NORM_TOLERANCE = 1e-4
"""How far from 1 an output row's L2 norm may be for the outputs to count as normalised."""

PIXEL_SCALE = 1.0 / 255.0
"""The factor from 0..255 pixel values to the model's [0, 1] inputs."""


def spec_path(artefact: str | os.PathLike) -> Path:
    """The serving spec's path for the artefact at ``artefact`` (its name + ``.serving.json``)."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + SPEC_SUFFIX)


def read_spec(path: str | os.PathLike) -> dict[str, Any] | None:
    """The serving spec at ``path`` if tripletlab wrote it; ``None`` when the file is absent,
    is not JSON, or was not written by tripletlab.

    Raises:
      OSError: the file exists but cannot be read (e.g. no permission).
    """
    try:
        with open(path, encoding="utf-8") as stream:
            spec = json.load(stream)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError,
            json.JSONDecodeError):
        return None
    if not isinstance(spec, dict) or spec.get("written_by") != WRITTEN_BY:
        return None
    return spec


def is_tripletlab_export(artefact: str | os.PathLike) -> bool:
    """Whether tripletlab's serving spec sits beside ``artefact`` and names it."""
    spec = read_spec(spec_path(artefact))
    return spec is not None and spec.get("artefact") == Path(artefact).name


def last_layer_normalizes(model: Any) -> bool:
    """Whether ``model`` ends in ``keras.layers.UnitNormalization`` over its last axis."""
    import keras

    layer = model.layers[-1] if model.layers else None
    if not isinstance(layer, keras.layers.UnitNormalization):
        return False
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(model.output_shape)
    return [a % rank for a in axis] == [rank - 1]


def norm_range(outputs: np.ndarray) -> tuple[float, float]:
    """The smallest and largest L2 norm of the rows of ``outputs`` (``[N, D]``)."""
    norms = np.linalg.norm(np.asarray(outputs, np.float64).reshape(len(outputs), -1), axis=1)
    return (float(norms.min()), float(norms.max())) if len(norms) else (0.0, 0.0)


def preprocessing(input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
    """How an image becomes an input of shape ``input_shape`` (with the batch axis), as
    tripletlab's data loaders prepare it; ``None`` for inputs that are not images.

    ``[N, H, W, C]`` with ``C`` 1 or 3 (and ``[N, H, W]``, one channel without its axis): decode
    the image in ``color_mode``, resize it to ``H x W`` (bilinear, half-pixel centres: OpenCV's
    ``INTER_LINEAR``, ``tf.image.resize``), multiply its 0..255 values by ``1 / 255`` (float32
    in [0, 1]), channels last.
    """
    shape = tuple(input_shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        return None
    height, width = shape[1], shape[2]
    channels = shape[3] if len(shape) == 4 else 1
    color_mode = "grayscale" if channels == 1 else "rgb"
    layout = ("channels_last" if len(shape) == 4
              else "no channel axis (one channel): [N, H, W]")
    size = f"{height} x {width}" if None not in (height, width) else "the size you trained on"
    return {
        "color_mode": color_mode,
        "channels": channels,
        "resize": [height, width],
        "interpolation": "bilinear",
        "scale": PIXEL_SCALE,
        "pixel_range": [0, 255],
        "input_range": [0.0, 1.0],
        "layout": layout,
        "description": f"decode as {color_mode} ({channels} channel{'s' if channels > 1 else ''}),"
                       f" resize to {size} (bilinear), divide the 0..255 pixel values by 255 "
                       f"(float32 in [0, 1]), {layout}",
    }


def build_spec(*, artefact: str | os.PathLike, format: str, backend: str,
               check: CheckResult, input_shape: tuple[int | None, ...], embedding_size: int,
               l2_normalized: bool, output_norms: tuple[float, float], distance: str,
               sample_source: str, model_file: str | None = None) -> dict[str, Any]:
    """The serving spec of one export (a JSON-ready dict).

    Args:
      artefact: the artefact's final path (its name is written).
      format: one of :data:`~tripletlab.serving.formats.FORMATS`.
      backend: the Keras backend that exported it.
      check: the figures of the check it passed, with the runtime's view of its signature.
      input_shape: the Keras model's input shape (``None`` batch), for the preprocessing.
      embedding_size: ``D``.
      l2_normalized: whether the embeddings have unit L2 norm.
      output_norms: the smallest and largest norm over the check's inputs.
      distance: the distance to compare embeddings with.
      sample_source: where the check's inputs came from, in words.
      model_file: the ``.keras`` file exported, when there is one.

    Returns:
      The spec; keys are described in ``docs/serving.md``.
    """
    import keras

    import tripletlab

    signature = check.signature
    spec = {
        "written_by": WRITTEN_BY,
        "spec_version": SPEC_VERSION,
        "artefact": Path(artefact).name,
        "artefact_kind": "folder" if format in DIRECTORY_FORMATS else "file",
        "format": format,
        "runtime": RUNTIMES[format],
        "signature": signature.signature,
        "input": {"name": signature.input_name, "shape": list(signature.input_shape),
                  "dtype": signature.input_dtype},
        "output": {"name": signature.output_name, "shape": list(signature.output_shape),
                   "dtype": signature.output_dtype},
        "preprocessing": preprocessing(input_shape),
        "embedding_size": int(embedding_size),
        "l2_normalized": bool(l2_normalized),
        "output_norm_range": [round(value, 6) for value in output_norms],
        "distance": distance,
        "exported_with": {"backend": backend, "keras": keras.__version__,
                          "tripletlab": tripletlab.__version__, "model_file": model_file},
        "check": {"max_abs_diff": check.max_abs_diff, "samples": check.samples,
                  "tolerance": check.tolerance, "runtime": check.runtime,
                  "inputs": sample_source},
    }
    if signature.tensor_names:
        spec["input"]["tensor_name"] = signature.tensor_names["input"]
        spec["output"]["tensor_name"] = signature.tensor_names["output"]
    return spec


def write_spec(artefact: str | os.PathLike, spec: dict[str, Any], *,
               record: Recorder | None = None) -> Path:
    """Writes ``spec`` beside ``artefact`` (:func:`spec_path`) atomically; returns its path."""
    return write_json(spec_path(artefact), spec, record=record)
