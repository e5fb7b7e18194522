"""Exporting embedding models for serving: ONNX, TensorFlow SavedModel and LiteRT.

:func:`export_model` writes a Keras embedding model through Keras' own
``model.export(path, format=...)``, loads the artefact in its runtime (ONNX Runtime,
TensorFlow, LiteRT), compares its outputs with the model's on a sample of inputs, and keeps it
only when they agree within 1e-5; beside it, a serving spec (``PATH.serving.json``) says what a
server needs: input, preprocessing, embedding size, normalisation, distance.

* :mod:`~tripletlab.serving.formats`: the format names, which backend exports which, the extras.
* :mod:`~tripletlab.serving.artefact_check`: loading an artefact in its runtime, the comparison.
* :mod:`~tripletlab.serving.check_sample`: the inputs the check runs on.
* :mod:`~tripletlab.serving.serving_spec`: the JSON beside the artefact.
* :mod:`~tripletlab.serving.artefact_files`: output paths that may be used, atomic placement.
* :mod:`~tripletlab.serving.export`: :func:`export_model`.

Importing this package imports no Keras (its names load on first use); the export runtimes
are optional (``pip install "tripletlab[export]"``, and ``"tripletlab[export-jax]"`` for ONNX
on JAX).

Example:
  >>> from tripletlab.serving import FORMATS
  >>> FORMATS
  ('onnx', 'tf_saved_model', 'litert')
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "artefact_check": ["TOLERANCE", "CheckResult", "check_artefact", "load_artefact"],
    "check_sample": ["CheckSample", "data_sample", "uniform_sample"],
    "export": ["ExportResult", "export_model"],
    "formats": ["FORMATS", "backend_formats", "check_export_support"],
    "serving_spec": ["read_spec", "spec_path"],
})
