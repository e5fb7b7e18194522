"""Shared fixtures: the Keras backend of this run, seeds, and gradient helpers per backend.

The Keras backend is fixed per process (``KERAS_BACKEND``); ``scripts/test.sh`` runs the suite
once per backend. Tests that do not depend on the backend run in every pass; they are cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


@pytest.fixture(autouse=True)
def _fixed_seeds():
    keras.utils.set_random_seed(1234)
    yield


def wait_for(process, ready, timeout=300):
    """Polls ``ready()`` while ``process`` runs; whether it became true within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            return True
        time.sleep(0.05)
    return False


def small_cnn_file(tmp_path_factory, widths=(8,)):
    """A seeded ``small-cnn`` for 8x8x1 digits with 8-dimensional embeddings, saved as
    ``.keras`` in a new temporary folder; returns its path."""
    from tripletlab.models import build_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    keras.utils.set_random_seed(0)
    build_model("small-cnn", (8, 8, 1), 8, widths=widths).save(path)
    return path


def needs_devices(count):
    """The marks of a test that runs on ``count`` JAX devices (``multi_device``): skipped, with
    the command that runs it, on another backend or with fewer devices (the main test run
    starts JAX with one)."""
    reason = (f"needs {count} JAX devices: JAX_NUM_CPU_DEVICES={count} KERAS_BACKEND=jax "
              "python -m pytest tests/distributed (scripts/test.sh runs it)")
    found = 0
    if BACKEND == "jax":
        import jax

        found = jax.device_count()
    return [pytest.mark.multi_device, pytest.mark.skipif(found < count, reason=reason)]


def imports_keras(modules, cwd):
    """Whether importing ``modules`` (a comma-separated list) in a fresh interpreter, with no
    ``KERAS_BACKEND`` set, imports Keras."""
    script = f"import sys, {modules}\nprint('keras' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {"True": True, "False": False}[result.stdout.strip()]


def to_numpy(tensor):
    tensor = keras.ops.convert_to_tensor(tensor)
    if keras.backend.standardize_dtype(tensor.dtype) == "bfloat16":
        # TensorFlow's bfloat16 does not convert to NumPy with every ml_dtypes version.
        tensor = keras.ops.cast(tensor, "float32")
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def value_and_gradient(function, x):
    """Evaluates ``function(x)`` (a scalar) and its gradient w.r.t. ``x`` on the active backend.

    Returns NumPy float64 arrays ``(value, gradient)``.
    """
    if BACKEND == "jax":
        import jax

        value, gradient = jax.value_and_grad(function)(keras.ops.convert_to_tensor(x))
    elif BACKEND == "torch":
        import torch

        tensor = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        value = function(tensor)
        (gradient,) = torch.autograd.grad(value, tensor)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = function(tensor)
        gradient = tape.gradient(value, tensor)
    else:  # pragma: no cover - only the three backends are supported
        raise RuntimeError(f"Unsupported backend {BACKEND!r}")
    return to_numpy(value), to_numpy(gradient)


def compiled(function):
    """``function`` compiled as ``fit`` compiles it: ``jax.jit``, ``tf.function`` with XLA
    (PyTorch: eager, as Keras runs it)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    return function


def record_slice_rows(monkeypatch, max_elements=None):
    """Records the rows of every slice the losses mine (``map_row_chunks`` as the losses call
    it), optionally with slices of at most ``max_elements`` elements; returns the list."""
    from tripletlab.losses import functional
    from tripletlab.mining import chunks

    if max_elements is not None:
        monkeypatch.setattr(chunks, "DEFAULT_MAX_ELEMENTS", max_elements)
        monkeypatch.setattr(chunks, "TORCH_MAX_ELEMENTS", max_elements)
    slice_rows = []
    original = chunks.map_row_chunks

    def recording(function, *tensors, **kwargs):
        def wrapped(*parts):
            slice_rows.append(parts[0].shape[0])
            return function(*parts)
        return original(wrapped, *tensors, **kwargs)

    monkeypatch.setattr(functional, "map_row_chunks", recording)
    return slice_rows


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Tests whose behaviour depends on the Keras backend; with TRIPLETLAB_BACKEND_TESTS_ONLY=1
# (scripts/test.sh on TensorFlow and PyTorch) only these run. Everything runs on JAX.
BACKEND_DEPENDENT = (
    "tests/losses/",
    "tests/mining/",
    "tests/compat/",
    "tests/models/test_models.py",
    "tests/test_distances.py",
    "tests/test_mining_metrics.py",
    "tests/cli/test_cli_train.py",
    "tests/data/test_augmentation.py",
    "tests/train/test_graph_batches.py",
    "tests/train/test_steps_per_execution.py",
    # what `tripletlab export` writes and refuses depends on the backend that exports
    "tests/serving/",
    "tests/cli/test_cli_export.py",
)
# Single tests (node-id prefixes) that rerun on TensorFlow and PyTorch where their module's
# other tests need not: a backbone's build and optimizer on each backend, not its CLI runs;
# what the docs promise of the command line and saved files on every backend.
BACKEND_DEPENDENT_TESTS = (
    "tests/train/test_distribute_config.py::test_train_refuses_the_running_backend_unless_jax",
    "tests/models/test_backbones.py::test_grayscale_gives_unit_norm_embeddings",
    "tests/models/test_backbones.py::test_large_backbones_build_and_embed",
    "tests/models/test_backbones.py::test_backbone_updates_are_scaled",
    "tests/models/test_backbones.py::test_scaled_optimizer_checkpoint_round_trips",
    "tests/models/test_backbones.py::test_frozen_checkpoint_resumes_unfrozen",
    # What the docs promise on every backend: kill -9 or Ctrl-C and --resume (the same losses
    # and metrics as a run never stopped), plain lines into a pipe, and a saved model that loads
    # after a bare import in either order. A run killed before its first checkpoint is folder
    # logic, the same on every backend, and stays on JAX.
    "tests/cli/test_cli_resume.py::test_kill_then_resume_matches_an_uninterrupted_run",
    "tests/cli/test_cli_resume.py::test_resume_restores_dropout_and_shuffled_batches",
    "tests/cli/test_cli_resume.py::test_ctrl_c_stops_training_and_resume_completes",
    "tests/cli/test_cli_progress.py::test_piped_output_is_plain_lines",
    "tests/cli/test_cli_progress.py::test_first_line_names_the_backend_that_runs",
    "tests/cli/test_cli_progress.py::test_each_step_after_training_announces_itself",
    "tests/cli/test_cli_progress.py::test_no_tensorflow_startup_lines_on_other_backends",
    "tests/models/test_saved_models.py::test_experiment_models_load_with_plain_keras",
    "tests/models/test_saved_models.py::test_checkpoint_keeps_the_training_state",
    "tests/models/test_saved_models.py::test_saved_models_load_after_bare_import",
    # docs/training.md's default of retain_freed_memory per backend (kept on JAX and TensorFlow).
    "tests/test_allocator.py::test_train_retains_freed_memory_as_configured",
)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TRIPLETLAB_BACKEND_TESTS_ONLY") != "1":
        return
    root = str(config.rootpath)
    selected, deselected = [], []
    for item in items:
        relative = str(item.path)[len(root) + 1:]
        dependent = (relative.startswith(BACKEND_DEPENDENT)
                     or item.nodeid.startswith(BACKEND_DEPENDENT_TESTS))
        (selected if dependent else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
