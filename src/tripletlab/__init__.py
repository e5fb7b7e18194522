"""tripletlab: triplet loss with exact online mining on every Keras 3 backend.

Example:
  >>> import tripletlab as tl
  >>> loss = tl.losses.TripletSemiHardLoss(margin=1.0, distance="L2")

Sub-packages with optional dependencies (``data``, ``evaluation``, ``visualization``, ``models``,
``train``, ``cli``) are imported on first attribute access, so ``import tripletlab`` needs only
Keras and NumPy.
"""

from __future__ import annotations

import importlib

from tripletlab import distances, losses, metrics

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("compat", "data", "evaluation", "models", "train", "visualization", "cli")

__all__ = ["distances", "losses", "metrics", *_LAZY_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"tripletlab.{name}")
    raise AttributeError(f"module 'tripletlab' has no attribute {name!r}")
