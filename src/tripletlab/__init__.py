"""tripletlab: triplet loss with exact online mining on every Keras 3 backend.

Example:
  >>> import tripletlab as tl
  >>> loss = tl.losses.TripletSemiHardLoss(margin=1.0, distance="L2")

Sub-packages are imported on first attribute access, so ``import tripletlab`` does not import
Keras: the command line can choose the Keras backend (``--backend``) before Keras loads, and the
sub-packages with optional dependencies cost nothing until used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "cli",
    "compat",
    "data",
    "distances",
    "evaluation",
    "losses",
    "metrics",
    "mining",
    "models",
    "train",
    "visualization",
)

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"tripletlab.{name}")
    raise AttributeError(f"module 'tripletlab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
