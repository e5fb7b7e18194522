"""tripletlab: triplet loss with exact online mining on every Keras 3 backend.

Example:
  >>> import tripletlab as tl
  >>> loss = tl.losses.TripletSemiHardLoss(margin=1.0, distance="L2")

Sub-packages are imported on first attribute access, so ``import tripletlab`` does not import
Keras: the command line can choose the Keras backend (``--backend``) before Keras loads, and the
sub-packages with optional dependencies cost nothing until used.

tripletlab's serialisable classes (losses, metrics, ``TripletNetwork``) are registered with
Keras as soon as both are imported, in either order, so a model compiled with them loads with
``keras.saving.load_model(path, safe_mode=True)`` after a bare ``import tripletlab``: at once if
Keras is already imported, otherwise right after Keras' own import (an import hook that waits
for ``keras``; it imports nothing before).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import warnings

__version__ = "0.1.0"

_SUBMODULES = (
    "allocator",
    "cli",
    "compat",
    "data",
    "distances",
    "errors",
    "evaluation",
    "losses",
    "metrics",
    "mining",
    "mining_metrics",
    "models",
    "train",
    "visualization",
)

# The modules that define classes registered with ``keras.saving.register_keras_serializable``.
SERIALIZABLE_MODULES = (
    "tripletlab.losses.classes",
    "tripletlab.losses.offline",
    "tripletlab.mining_metrics",
    "tripletlab.compat.tfa.losses",
    "tripletlab.compat.compat_loss",
    "tripletlab.models.triplet_network",
    "tripletlab.models.backbone_rate",
)

# Public names of modules stored under another name: ``tl.metrics`` is the Keras mining
# statistics of :mod:`tripletlab.mining_metrics` (retrieval metrics are ``tl.evaluation``).
_ALIASES = {"metrics": "mining_metrics"}

__all__ = [*_SUBMODULES, "SERIALIZABLE_MODULES", "__version__", "register_keras_classes"]

_registration = threading.RLock()
_registered = False


def register_keras_classes() -> None:
    """Registers tripletlab's losses, metrics and ``TripletNetwork`` with Keras (imports Keras).

    Called by itself once Keras and tripletlab are both imported; call it directly only to be
    explicit. Harmless to call again.
    """
    global _registered
    with _registration:
        if _registered:
            return
        for name in SERIALIZABLE_MODULES:
            importlib.import_module(name)
        _registered = True


def _initialising(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _register_when_ready(finished: str) -> None:
    """After the import of ``finished`` (``keras`` or a tripletlab module): registers the
    classes once Keras is imported and no other tripletlab module is half-imported (importing
    them then could meet a partly initialised module)."""
    if _registered or "keras" not in sys.modules or _initialising("keras") and finished != "keras":
        return
    if any(_initialising(name) for name in list(sys.modules)
           if name.startswith("tripletlab.") and name != finished):
        return
    _KerasImportHook.remove()
    try:
        register_keras_classes()
    except Exception as error:  # never break the user's ``import keras``
        warnings.warn(f"tripletlab could not register its Keras classes ({error!r}); call "
                      "tripletlab.register_keras_classes() before loading a model that uses "
                      "them.", UserWarning, stacklevel=2)


class _Loader(importlib.abc.Loader):
    """Runs the wrapped loader, then :func:`_register_when_ready`."""

    def __init__(self, loader, name: str):
        self._loader = loader
        self._name = name

    def __getattr__(self, name):
        # get_code, get_source, is_package, get_resource_reader... (runpy, inspect, resources)
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # the module keeps its own loader (introspection, resources)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _register_when_ready(self._name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Watches the imports of ``keras`` and of tripletlab's modules until registration."""

    @classmethod
    def install(cls) -> None:
        if not any(isinstance(finder, cls) for finder in sys.meta_path):
            sys.meta_path.insert(0, cls())

    @classmethod
    def remove(cls) -> None:
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, cls)]

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("tripletlab."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, fullname)
        return spec


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"tripletlab.{_ALIASES.get(name, name)}")
    raise AttributeError(f"module 'tripletlab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


if "keras" in sys.modules and not _initialising("keras"):
    # Keras is imported already: register now (at the end, so this module is complete).
    try:
        register_keras_classes()
    except Exception as _error:  # never break ``import tripletlab``
        warnings.warn(f"tripletlab could not register its Keras classes ({_error!r}); call "
                      "tripletlab.register_keras_classes() before loading a model that uses "
                      "them.", UserWarning, stacklevel=2)
else:
    _KerasImportHook.install()
