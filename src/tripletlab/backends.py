"""The Keras backends tripletlab runs on, and choosing one before Keras is imported.

Nothing here imports Keras: the configuration (:mod:`tripletlab.train.config`) and the command
line (:mod:`tripletlab.cli`) read these names before the backend is chosen.

Example:
  >>> from tripletlab.backends import BACKENDS
  >>> BACKENDS
  ('tensorflow', 'jax', 'torch')
"""

from __future__ import annotations

import os
import sys

from tripletlab.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends tripletlab supports (``--backend`` and the ``backend`` config key)."""


def select_backend(name: str | None) -> None:
    """Sets ``KERAS_BACKEND`` to ``name`` before Keras is imported.

    Args:
      name: one of :data:`BACKENDS`, or ``None`` to keep Keras' own setting.

    Raises:
      ConfigError: Keras is already imported with another backend.
    """
    if name is None:
        return
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise ConfigError(f"Expected the Keras backend {name!r}, but Keras was already "
                              f"imported with {current!r} in this process.")
        return
    os.environ["KERAS_BACKEND"] = name
