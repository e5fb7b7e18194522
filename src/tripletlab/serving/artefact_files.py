"""The export's place on disk: which output paths may be used, and writing there atomically.

Users' files are never replaced: an output path that exists (or whose serving spec exists) is
refused unless ``overwrite`` is set *and* the existing artefact is an export tripletlab wrote
(its serving spec beside it says so, :func:`tripletlab.serving.serving_spec.is_tripletlab_export`).

The artefact is written under a temporary name in the output's folder (a file through
:func:`tripletlab.atomic.atomic_path`; a SavedModel folder into a new temporary folder), checked
there, and renamed onto the output path only when the block that wrote and checked it ends
without an exception; otherwise the temporary is removed and the output path keeps what it held.
A previous export being replaced is moved aside first and removed after the rename.

Example:
  >>> with staged_artefact("exports/model.onnx", directory=False) as temporary:  # doctest: +SKIP
  ...     model.export(temporary, format="onnx")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tripletlab.atomic import Recorder, atomic_path, current_umask
from tripletlab.errors import ConfigError, UserFileExistsError
from tripletlab.serving.formats import DIRECTORY_FORMATS, REQUIRED_SUFFIX, check_format
from tripletlab.serving.serving_spec import is_tripletlab_export, spec_path


def check_output(path: str | os.PathLike, format: str, *, overwrite: bool,
                 option: str = "path") -> None:
    """Raises unless an export of ``format`` may be written at ``path``. Writes nothing.

    Args:
      path: the output path (a file, or a folder for a SavedModel).
      format: one of :data:`~tripletlab.serving.formats.FORMATS`.
      overwrite: whether an export tripletlab wrote there before may be replaced.
      option: the argument that named ``path``, for messages (``"--output"``).

    Raises:
      ConfigError: ``path`` lacks the ending the format requires (``.tflite`` for LiteRT).
      UserFileExistsError: ``path`` or its serving spec exists and ``overwrite`` is not set,
        or they are not an export tripletlab wrote; or the folder ``path`` should be in is a
        file.
    """
    check_format(format)
    target = Path(path)
    suffix = REQUIRED_SUFFIX.get(format)
    if suffix is not None and target.suffix != suffix:
        raise ConfigError(f"Expected `{option}` to end with {suffix!r} for format={format!r}. "
                          f"Received: {str(target)!r}.")
    for parent in (target.parent, *target.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UserFileExistsError(f"Expected `{option}` inside a folder. Received: "
                                          f"{str(target)!r}, but {str(parent)!r} is a file.")
            break
    spec = spec_path(target)
    taken = [str(p) for p in (target, spec) if p.exists() or p.is_symlink()]
    if not taken:
        return
    if not overwrite:
        raise UserFileExistsError(f"Expected `{option}` to be a new path. Received: "
                                  f"{' and '.join(repr(p) for p in taken)} already exist"
                                  f"{'s' if len(taken) == 1 else ''}; pass --overwrite to "
                                  "replace an export tripletlab wrote.")
    if not is_tripletlab_export(target) or target.is_symlink():
        raise UserFileExistsError(f"Expected `{option}` to be a new path or an export "
                                  f"tripletlab wrote. Received: {taken[0]!r}, which tripletlab "
                                  f"did not write (no tripletlab {spec.name!r} naming it); "
                                  "tripletlab never replaces files it did not write: choose "
                                  "another path or remove it yourself.")


def is_directory_format(format: str) -> bool:
    """Whether ``format``'s artefact is a folder (a SavedModel)."""
    return check_format(format) in DIRECTORY_FORMATS


@contextlib.contextmanager
def staged_artefact(path: str | os.PathLike, *, directory: bool,
                    record: Recorder | None = None) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` to write the artefact to; renames it onto
    ``path`` when the block ends without an exception.

    Args:
      path: the artefact's final path (checked with :func:`check_output` first).
      directory: the artefact is a folder: the temporary is a new empty folder (a file name
        otherwise, keeping ``path``'s endings, which some writers read).
      record: called with each final file path before it is renamed into place (a file's
        path before its temporary is created; a folder's files when it is complete).

    Yields:
      The temporary ``Path``.
    """
    target = Path(path)
    if directory:
        with _staged_directory(target, record) as temporary:
            yield temporary
        return
    aside = None
    try:
        with atomic_path(target, record=record) as temporary:
            yield temporary
            if target.is_dir() and not target.is_symlink():  # an earlier SavedModel export
                aside = _move_aside(target)
    except BaseException:
        if aside is not None and not target.exists():
            os.replace(aside, target)
        _remove_aside(aside)
        raise
    _remove_aside(aside)


@contextlib.contextmanager
def _staged_directory(target: Path, record: Recorder | None) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                      dir=target.parent))
    try:
        yield temporary
        # mkdtemp creates the folder private (0700): give it the permissions mkdir would have
        os.chmod(temporary, 0o777 & ~current_umask())
        if record is not None:
            for item in sorted(temporary.rglob("*")):
                if item.is_file():
                    record(target / item.relative_to(temporary))
        aside = _move_aside(target) if target.exists() or target.is_symlink() else None
        try:
            os.replace(temporary, target)
        except BaseException:
            if aside is not None:
                os.replace(aside, target)
            raise
        _remove_aside(aside)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _move_aside(target: Path) -> Path:
    """Moves ``target`` into a new hidden folder beside it; returns its new path."""
    holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    moved = holder / target.name
    os.replace(target, moved)
    return moved


def _remove_aside(moved: Path | None) -> None:
    """Removes what :func:`_move_aside` moved, and its holder folder."""
    if moved is None:
        return
    try:
        shutil.rmtree(moved.parent)
    except OSError as error:
        import warnings

        warnings.warn(f"The export replaced was kept in {str(moved.parent)!r}: it could not be "
                      f"removed ({error}). Remove it by hand.", stacklevel=2)
