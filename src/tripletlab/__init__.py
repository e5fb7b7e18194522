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
Keras is already imported, otherwise as soon as Keras' import and every tripletlab module being
imported with it have finished (an import hook of the standard ``importlib.abc`` kind that waits
for ``keras``; it imports nothing before, and reads no private state of the interpreter).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import warnings

import lazy_loader

__version__ = "0.1.0"

# Sub-packages and modules, imported on first attribute access (lazy_loader). ``metrics`` is
# the public name of :mod:`tripletlab.mining_metrics` (retrieval metrics are ``evaluation``).
_MODULES = ("allocator", "cli", "compat", "data", "distances", "errors", "evaluation", "losses",
            "mining", "mining_metrics", "models", "retrieval", "serving", "train",
            "visualization")
_ALIASES = {"metrics": "mining_metrics"}

# The modules that define classes registered with ``keras.saving.register_keras_serializable``.
SERIALIZABLE_MODULES = (
    "tripletlab.losses.classes",
    "tripletlab.losses.cross_batch_memory",
    "tripletlab.losses.offline",
    "tripletlab.mining_metrics",
    "tripletlab.compat.tfa.losses",
    "tripletlab.compat.compat_loss",
    "tripletlab.models.triplet_network",
    "tripletlab.models.backbone_rate",
)

_lazy_getattr, _lazy_dir, _lazy_all = lazy_loader.attach(__name__, submodules=_MODULES)
__all__ = [*_lazy_all, *_ALIASES, "SERIALIZABLE_MODULES", "__version__",
           "register_keras_classes"]


def __getattr__(name: str):
    if name in _ALIASES:
        return importlib.import_module(f"tripletlab.{_ALIASES[name]}")
    try:
        return _lazy_getattr(name)
    except AttributeError:
        raise AttributeError(f"module 'tripletlab' has no attribute {name!r}") from None


def __dir__():
    return sorted(__all__)


def register_keras_classes() -> None:
    """Registers tripletlab's losses, metrics and ``TripletNetwork`` with Keras (imports Keras):
    imports the modules that define them, whose decorators register them.

    Called by itself once Keras and tripletlab are both imported; call it directly only to be
    explicit. Harmless to call again.
    """
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


def _register_or_warn() -> None:
    try:
        register_keras_classes()
    except Exception as error:  # never break the user's ``import keras`` / ``import tripletlab``
        warnings.warn(f"tripletlab could not register its Keras classes ({error!r}); call "
                      "tripletlab.register_keras_classes() before loading a model that uses "
                      "them.", UserWarning, stacklevel=3)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Registers tripletlab's classes once ``keras`` has been imported and no tripletlab module
    is still running its code (registering imports tripletlab modules, which must not meet a
    half-initialised one). It counts those modules itself, through the loaders it wraps, and
    removes itself from ``sys.meta_path`` when done."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0  # tripletlab modules whose code is running now
        self._keras_imported = False

    @classmethod
    def install(cls) -> None:
        if not any(isinstance(finder, cls) for finder in sys.meta_path):
            sys.meta_path.insert(0, cls())

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
            spec.loader = _Loader(spec.loader, fullname, self)
        return spec

    def started(self, name: str) -> None:
        if name != "keras":
            with self._lock:
                self._running += 1

    def finished(self, name: str, succeeded: bool) -> None:
        with self._lock:
            if name == "keras":
                self._keras_imported = self._keras_imported or succeeded
            else:
                self._running -= 1
            ready = self._keras_imported and self._running == 0 and self in sys.meta_path
            if ready:
                sys.meta_path.remove(self)
        if ready:
            _register_or_warn()


class _Loader(importlib.abc.Loader):
    """Runs the wrapped loader between :meth:`_KerasImportHook.started` and ``finished``."""

    def __init__(self, loader, name: str, hook: _KerasImportHook):
        self._loader = loader
        self._name = name
        self._hook = hook

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
        self._hook.started(self._name)
        succeeded = False
        try:
            self._loader.exec_module(module)
            succeeded = True
        finally:
            self._hook.finished(self._name, succeeded)


if "keras" in sys.modules:
    _register_or_warn()  # Keras is imported already: register now
else:
    _KerasImportHook.install()
