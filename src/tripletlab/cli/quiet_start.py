"""Keras loaded by the command line without TensorFlow's C++ start-up notices.

Importing TensorFlow prints notices meant for its own developers to the terminal before a
command has said anything: "oneDNN custom operations are on", a CPU-feature line, absl's
"All log messages before absl::InitializeLog()...", and later, on the first training step, a
"Type inference failed" graph dump. They are harmless, and they are the first thing a new user
sees. Unless the user has set ``TF_CPP_MIN_LOG_LEVEL`` themselves (then TensorFlow logs as they
asked), the command line sets it to 2 (warnings and info off, errors kept) and filters the
start-up lines that TensorFlow prints before that setting takes effect from the standard error
written while Keras is imported. Every other line written then is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from types import ModuleType

# Lines TensorFlow's C++ runtime prints while it loads (any other line is passed on).
START_UP_NOTICES = (
    "oneDNN custom operations are on",
    "All log messages before absl::InitializeLog() is called",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "TF-TRT Warning: Could not find TensorRT",
)


def load_keras() -> ModuleType:
    """Imports Keras for a command (after :func:`tripletlab.backends.select_backend`), with
    TensorFlow's start-up notices kept off the terminal unless ``TF_CPP_MIN_LOG_LEVEL`` is set.

    Returns:
      The ``keras`` module.
    """
    if "keras" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import keras

        return keras
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with filtered_standard_error(START_UP_NOTICES):
        import keras
    return keras


@contextlib.contextmanager
def filtered_standard_error(notices: tuple[str, ...]):
    """Captures what is written to file descriptor 2 inside the block (by Python or by C++
    libraries), then writes it to the real standard error without the lines containing one of
    ``notices``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace")
                    .splitlines(keepends=True)
                    if not any(notice in line for notice in notices)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
