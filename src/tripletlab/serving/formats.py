"""The export formats: their names, which Keras backend exports which, and what each needs.

Keras writes every format (``model.export(path, format=...)``); this table says which
backend × format pairs tripletlab exports and checks, and which packages each pair needs, so a
pair that cannot work is refused before anything is loaded or written. Imports nothing.

========================  ==========  ===========  ====================================
format                    tensorflow  jax          torch
========================  ==========  ===========  ====================================
``"onnx"``                tf2onnx     jax2onnx     torch.onnx (onnxscript)
``"tf_saved_model"``      yes         jax2tf       refused (Keras needs torch_xla)
``"litert"``              yes         refused      only with ``litert-torch`` installed
========================  ==========  ===========  ====================================

Example:
  >>> from tripletlab.serving.formats import exporting_backends
  >>> exporting_backends("litert")
  ('tensorflow', 'torch')
"""

from __future__ import annotations

import dataclasses
import importlib.util

from tripletlab._checks import check_choice
from tripletlab.backends import BACKENDS
from tripletlab.errors import ConfigError, MissingExtraError

ONNX = "onnx"
TF_SAVED_MODEL = "tf_saved_model"
LITERT = "litert"
FORMATS = (ONNX, TF_SAVED_MODEL, LITERT)
"""The ``format`` values of :func:`tripletlab.serving.export_model` and ``tripletlab export``."""

FORMAT_TITLES = {ONNX: "ONNX", TF_SAVED_MODEL: "TensorFlow SavedModel", LITERT: "LiteRT"}
"""Each format's name in messages."""

RUNTIMES = {ONNX: "ONNX Runtime", TF_SAVED_MODEL: "TensorFlow", LITERT: "LiteRT"}
"""The runtime each format is loaded and checked with."""

DIRECTORY_FORMATS = frozenset({TF_SAVED_MODEL})
"""The formats whose artefact is a folder (the others are one file)."""

REQUIRED_SUFFIX = {LITERT: ".tflite"}
"""File name endings a format requires (Keras' LiteRT writer refuses any other)."""

EXPORT_EXTRA = 'pip install "tripletlab[export]"'
EXPORT_JAX_EXTRA = 'pip install "tripletlab[export-jax]"'
TENSORFLOW_EXTRA = 'pip install "tripletlab[tensorflow]"'
LITERT_TORCH = "pip install litert-torch"


@dataclasses.dataclass(frozen=True)
class Requirement:
    """A module an export needs and how to install it.

    Attributes:
      module: the importable name (``"tf2onnx"``).
      install: the command that installs it (``pip install "tripletlab[export]"``).
      purpose: what it does, for the message (``"writes ONNX on TensorFlow"``).
    """

    module: str
    install: str
    purpose: str


_ONNX_RUNTIME = Requirement("onnxruntime", EXPORT_EXTRA, "runs the check of an ONNX file")
_ONNX = Requirement("onnx", EXPORT_EXTRA, "reads and writes ONNX files")
_LITERT = Requirement("ai_edge_litert", EXPORT_EXTRA,
                      "runs the check of a LiteRT file (ai-edge-litert)")

REQUIREMENTS: dict[tuple[str, str], tuple[Requirement, ...]] = {
    (ONNX, "tensorflow"): (Requirement("tf2onnx", EXPORT_EXTRA, "writes ONNX on TensorFlow"),
                           _ONNX, _ONNX_RUNTIME),
    (ONNX, "jax"): (Requirement("jax2onnx", EXPORT_JAX_EXTRA, "writes ONNX on JAX"),
                    _ONNX, _ONNX_RUNTIME),
    (ONNX, "torch"): (Requirement("onnxscript", EXPORT_EXTRA, "writes ONNX on PyTorch"),
                      _ONNX, _ONNX_RUNTIME),
    (TF_SAVED_MODEL, "tensorflow"): (),
    (TF_SAVED_MODEL, "jax"): (Requirement("tensorflow", TENSORFLOW_EXTRA,
                                          "writes and checks a SavedModel (jax2tf)"),),
    (LITERT, "tensorflow"): (_LITERT,),
    (LITERT, "torch"): (Requirement("litert_torch", LITERT_TORCH,
                                    "converts PyTorch models to LiteRT"), _LITERT),
}
"""The modules each supported (format, backend) pair needs, beyond Keras and its backend."""

_REFUSED = {
    (TF_SAVED_MODEL, "torch"): "Keras exports a SavedModel from PyTorch only through torch_xla, "
                               "which tripletlab does not support",
    (LITERT, "jax"): "Keras converts to LiteRT from TensorFlow (or from PyTorch with the "
                     "litert-torch package), not from JAX",
}


def check_format(format: str) -> str:
    """Returns ``format`` if it is one of :data:`FORMATS`; raises ``ConfigError`` otherwise."""
    return check_choice("format", format, FORMATS)


def exporting_backends(format: str) -> tuple[str, ...]:
    """The backends that may export ``format`` (:data:`REQUIREMENTS`' pairs), in
    :data:`~tripletlab.backends.BACKENDS` order."""
    check_format(format)
    return tuple(backend for backend in BACKENDS if (format, backend) in REQUIREMENTS)


def backend_formats(backend: str) -> tuple[str, ...]:
    """The formats ``backend`` may export (whether or not their packages are installed), in
    :data:`FORMATS` order."""
    check_choice("backend", backend, BACKENDS)
    return tuple(format for format in FORMATS if (format, backend) in REQUIREMENTS)


def missing_requirements(format: str, backend: str) -> tuple[Requirement, ...]:
    """The requirements of a supported pair whose module is not installed here (all of them
    for a pair tripletlab does not export)."""
    if (format, backend) not in REQUIREMENTS:
        return (Requirement("", "", "not supported"),)
    return tuple(requirement for requirement in REQUIREMENTS[(format, backend)]
                 if importlib.util.find_spec(requirement.module) is None)


def check_export_support(format: str, backend: str) -> None:
    """Raises unless ``backend`` can export ``format`` with the packages installed here.

    Args:
      format: one of :data:`FORMATS`.
      backend: the Keras backend that will export (one of
        :data:`~tripletlab.backends.BACKENDS`).

    Raises:
      ConfigError: an unknown format, or a pair tripletlab does not export; the message
        names the backends that export ``format`` here and the formats ``backend`` exports.
      MissingExtraError: a package the pair needs is not installed; the message names the
        pip command (the extra ``tripletlab[export]``, ``tripletlab[export-jax]``...) and
        what works without it.
    """
    check_format(format)
    check_choice("backend", backend, BACKENDS)
    if (format, backend) not in REQUIREMENTS:
        ready = _ready_backends(format, backend) or list(exporting_backends(format))
        raise ConfigError(f"{format} needs the {' or '.join(ready)} backend here: "
                          f"{_REFUSED[(format, backend)]}.{alternatives(format, backend)} "
                          f"Received: backend={backend!r}, format={format!r}.")
    missing = missing_requirements(format, backend)
    if missing:
        requirement = missing[0]
        note = (" (a large package with its own dependencies, which no tripletlab extra "
                "installs)" if requirement.install == LITERT_TORCH else "")
        raise MissingExtraError(
            f"Exporting {FORMAT_TITLES[format]} with the {backend} backend needs the module "
            f"{requirement.module!r}, which {requirement.purpose}{note}. Install it with: "
            f"{requirement.install}.{alternatives(format, backend)}")


def _ready_backends(format: str, backend: str) -> list[str]:
    """The other backends that export ``format`` with the packages installed here."""
    return [other for other in exporting_backends(format)
            if other != backend and not missing_requirements(format, other)]


def alternatives(format: str, backend: str) -> str:
    """What works here instead of ``format`` on ``backend``, as sentences (or nothing)."""
    backends = _ready_backends(format, backend)
    formats = [other for other in backend_formats(backend)
               if other != format and not missing_requirements(other, backend)]
    text = ""
    if backends:
        text += f" Export {format} with --backend {' or '.join(backends)}."
    if formats:
        text += f" The {backend} backend exports here: {', '.join(formats)}."
    return text
