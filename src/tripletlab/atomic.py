"""Atomic file output: write to a temporary name in the same folder, then rename.

An interrupted run (Ctrl-C, a killed process, a full disk) therefore never leaves a half-written
checkpoint, metrics file or export behind: the file either has its old content or its new one.

Every writer takes ``record``: a function called with the final path before the file (or its
temporary) is created, so a caller learns every file it writes before it is written (the
experiment folder keeps such a record, :meth:`tripletlab.experiment.Experiment.record`, so
``--overwrite`` removes only what a run wrote). A run killed in between leaves no file that its
record does not name; an exception in ``record`` stops that write.

Example:
  >>> written = []
  >>> write_text("out/a.txt", "a", record=written.append)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

Recorder = Callable[[Path], None]
"""What the writers' ``record`` argument takes: a function of the final ``Path`` (as given)."""


def temporary_pattern(path: str | os.PathLike) -> str:
    """The ``glob`` pattern of the temporary files :func:`atomic_path` makes for ``path``
    (in ``path``'s folder), e.g. ``".model.*.tmp.keras"`` for ``model.keras``."""
    target = Path(path)
    return f".{target.stem}.*.tmp{''.join(target.suffixes)}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, record: Recorder | None = None) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success renames it onto ``path``.

    Use it for writers that want a file name (``model.save``, ``np.save``, ``savefig``). The
    temporary name keeps the final suffix, because some writers (Keras, matplotlib) choose the
    format from it. On an exception the temporary file is removed and ``path`` is untouched.

    Args:
      path: the final file name.
      record: called with ``Path(path)`` before anything is created (see the module's
        docstring).

    Yields:
      The temporary ``Path`` to write to.
    """
    target = Path(path)
    if record is not None:
        record(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{''.join(target.suffixes)}", dir=target.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp creates the file private (0600); give it the permissions open() would have.
        os.chmod(temporary_path, 0o666 & ~current_umask())
        os.replace(temporary_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary_path.unlink()
        raise


def current_umask() -> int:
    """The process's umask (read without changing it): what ``open`` and ``mkdir`` leave out of
    a new file's or folder's permissions."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, record: Recorder | None = None,
                **kwargs: Any) -> Iterator[IO]:
    """Opens a temporary file beside ``path`` for writing; renames it onto ``path`` on success.

    Args:
      path: the final file name.
      mode: ``"w"`` (text) or ``"wb"`` (binary).
      record: see :func:`atomic_path`.
      **kwargs: passed to ``open`` (``encoding``, ``newline``...).

    Yields:
      The open file object.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"Expected `mode` to be one of {{'w', 'wb'}}. Received: mode={mode!r}.")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, record=record) as temporary, open(temporary, mode, **kwargs) as stream:
        yield stream


def write_text(path: str | os.PathLike, text: str, *, record: Recorder | None = None) -> Path:
    """Writes ``text`` to ``path`` atomically (UTF-8) and returns the path (``record``: see
    :func:`atomic_path`)."""
    with atomic_open(path, "w", record=record) as stream:
        stream.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, *, nan_as_null: bool = False,
               record: Recorder | None = None) -> Path:
    """Writes ``data`` as indented JSON (sorted keys) to ``path`` atomically; returns the path.

    NumPy scalars and arrays are written as numbers and lists.

    Args:
      path: the final file name.
      data: the value to write.
      nan_as_null: write NaN and infinite floats (Python's or NumPy's, at any depth of dicts,
        lists and tuples) as ``null``; strict JSON has no such numbers. Without it they are
        written as Python's ``json`` writes them (``NaN``, ``Infinity``).
      record: see :func:`atomic_path`.
    """
    if nan_as_null:
        data = _nan_as_null(data)
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default)
    return write_text(path, text + "\n", record=record)


def save_array(path: str | os.PathLike, array: np.ndarray, *,
               record: Recorder | None = None) -> Path:
    """``np.save`` through a temporary file and a rename (``allow_pickle=False``; ``record``:
    see :func:`atomic_path`)."""
    with atomic_path(path, record=record) as temporary:
        np.save(temporary, array, allow_pickle=False)
    return Path(path)


def save_model(model: Any, path: str | os.PathLike, *, record: Recorder | None = None) -> Path:
    """``model.save(path)`` (a Keras model: the full training state) through a temporary file
    and a rename (``record``: see :func:`atomic_path`)."""
    with atomic_path(path, record=record) as temporary:
        model.save(temporary)
    return Path(path)


def save_inference_model(model: Any, path: str | os.PathLike, *,
                         record: Recorder | None = None) -> Path:
    """Saves a Keras ``model`` for inference: an uncompiled copy with the same weights, atomically.

    The file holds no loss, metrics or optimizer, so it loads with plain Keras
    (``keras.saving.load_model(path, safe_mode=True)``) without tripletlab installed, as
    long as the model's own layers are Keras' (every model of :mod:`tripletlab.models`).
    ``record``: see :func:`atomic_path`.
    """
    # from_config builds the same layers without the compile configuration (clone_model
    # would compile the copy like the original)
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return save_model(copy, path, record=record)


def _nan_as_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _nan_as_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_as_null(item) for item in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays appear in metrics dictionaries.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable: {value!r}")
