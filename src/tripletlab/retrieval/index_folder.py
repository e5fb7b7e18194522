"""The index folder on disk: what :meth:`Index.save <tripletlab.retrieval.Index.save>` writes
and :meth:`Index.load <tripletlab.retrieval.Index.load>` reads.

::

    INDEX_DIR/
      manifest.json            what the index is, and the name, size and SHA-256 of each file
      index-000002.faiss       the faiss index (its items' embeddings)
      labels-000002.npy        each item's label (strings)
      names-000002.npy         each item's name (file path, or source/split/row)
      model-000001.keras       the embedding model, when the index was built from one
      calibration.json/.png    the last calibration, when ``tripletlab calibrate`` ran

``manifest.json`` is written last, by a rename, and it is what makes a version of the index
current: each save writes its data files under a new generation number, then replaces the
manifest, then removes the files of the previous generation. A run killed at any point
(``tripletlab index --append`` included) therefore leaves the previous index whole: the old
manifest still names the old files. Files of a generation that never became current are
removed by the next save. Nothing else in the folder is touched, and a folder that holds files
but no tripletlab manifest is refused.

While a save runs, the folder is locked (:class:`tripletlab.folder_lock.FolderLock`) so two
processes never write one index.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab import __version__
from tripletlab.atomic import atomic_path, save_array, write_json
from tripletlab.errors import (
    ConfigError,
    UserFileExistsError,
    UserFileNotFoundError,
    UserNotADirectoryError,
)
from tripletlab.folder_lock import LOCK_FILE, FolderLock

MANIFEST = "manifest.json"
"""The index folder's manifest (its commit point)."""

MODEL = "model-{:06d}.keras"
"""The embedding model's copy in an index folder (named by the generation that copied it)."""

FORMAT = "tripletlab-index"
FORMAT_VERSION = 1

_DATA_FILES = {"index": "index-{:06d}.faiss", "labels": "labels-{:06d}.npy",
               "names": "names-{:06d}.npy"}
_GENERATION_FILE = re.compile(
    r"^(index-\d{6}\.faiss|(labels|names)-\d{6}\.npy|model-\d{6}\.keras)$")
# tripletlab.atomic's temporary names for those files and for the manifest
_TEMPORARY_FILE = re.compile(
    r"^\.((index|labels|names|model)-\d{6}|manifest)\.[^/]+\.tmp\.(faiss|npy|keras|json)$")
_HASH_CHUNK = 1 << 22


def write_index(index, directory: str | os.PathLike, *, overwrite: bool = False,
                model_file: str | os.PathLike | None = None,
                extra_files: dict[str, tuple[str, Callable[[Path], Any]]] | None = None
                ) -> Path:
    """Writes ``index`` into ``directory`` as a new generation (see the module's docstring).

    Args:
      index: the :class:`~tripletlab.retrieval.Index`.
      directory: a new or empty folder, or one holding a tripletlab index.
      overwrite: replace an index that ``index`` was not loaded from.
      model_file: a ``.keras`` file to copy in as :data:`MODEL` (refused if the folder
        already holds a different model, unless ``overwrite``).
      extra_files: more files for the folder, ``{role: (file name, writer)}``: each writer is
        called with the file's path while the folder is locked, before the manifest is
        replaced, and must write atomically (:mod:`tripletlab.atomic`); the manifest keeps
        ``{role: file name}`` (e.g. the calibration's numbers and picture), until an
        ``overwrite`` drops them.

    Raises:
      UserFileExistsError: the folder holds files but no tripletlab index, or another index
        and ``overwrite`` is not set, or another model.
      UserNotADirectoryError: ``directory`` is a file.
    """
    folder = Path(directory)
    with FolderLock(folder, command="index", option="--output"):
        previous = _current_manifest(folder)
        _check_replaceable(index, folder, previous, overwrite)
        generation = (previous or {}).get("generation", 0) + 1
        files = _write_data_files(index, folder, generation)
        files.update(_model_entry(folder, previous, model_file, generation, overwrite))
        extras = {} if overwrite else dict((previous or {}).get("extra_files", {}))
        for role, (name, write) in (extra_files or {}).items():
            write(folder / name)
            extras[role] = name
        manifest = _manifest(index, generation, files, extras)
        write_json(folder / MANIFEST, manifest)
        _remove_stale_files(folder, manifest, previous)
    index.origin = (str(folder.resolve()), generation)
    return folder / MANIFEST


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the index in ``directory``.

    Raises:
      UserFileNotFoundError: no such folder.
      UserNotADirectoryError: ``directory`` is a file.
      ValueError: the folder holds no tripletlab index, or its manifest is damaged.
    """
    folder = Path(directory)
    if folder.is_file():
        raise UserNotADirectoryError(f"Expected `--index` to be an index folder. Received: "
                                     f"{str(folder)!r}, which is a file.")
    if not folder.is_dir():
        raise UserFileNotFoundError(f"Expected `--index` to be an index folder. Received: "
                                    f"{str(folder)!r}, which does not exist.")
    manifest = _current_manifest(folder)
    if manifest is None:
        raise ConfigError(f"Expected `--index` to be a folder written by `tripletlab index`. "
                          f"Received: {str(folder)!r}, which has no {MANIFEST}.")
    return manifest


def read_index(directory: str | os.PathLike) -> dict[str, Any]:
    """The parts of the index saved in ``directory``, after checking every file against the
    manifest (size and SHA-256): ``{"manifest", "faiss_index", "labels", "names"}``
    (:meth:`Index.load <tripletlab.retrieval.Index.load>` assembles them).

    Raises:
      ValueError: a missing, modified or damaged file, or files that disagree with each other;
        the message names the file.
    """
    from tripletlab.evaluation.knn import import_faiss

    folder = Path(directory)
    manifest = read_manifest(folder)
    for entry in manifest["files"].values():
        check_file_entry(folder, entry)
    path = folder / manifest["files"]["index"]["name"]
    try:
        faiss_index = import_faiss().read_index(str(path))
    except RuntimeError as error:
        raise ConfigError(f"Could not read the faiss index {str(path)!r}: "
                          f"{' '.join(str(error).split())[:300]}") from error
    labels = _read_strings(folder / manifest["files"]["labels"]["name"])
    names = _read_strings(folder / manifest["files"]["names"]["name"])
    _check_consistent(folder, manifest, faiss_index, labels, names)
    return {"manifest": manifest, "faiss_index": faiss_index, "labels": labels, "names": names}


def model_path(directory: str | os.PathLike) -> Path | None:
    """The embedding model saved in the index folder, or ``None`` if it was built without."""
    entry = read_manifest(directory)["files"].get("model")
    return None if entry is None else Path(directory) / entry["name"]


def check_file_entry(folder: Path, entry: dict[str, Any]) -> None:
    """Raises ``ConfigError`` unless ``folder / entry["name"]`` has the manifest's size and
    SHA-256."""
    path = folder / entry["name"]
    if not path.is_file():
        raise ConfigError(f"Expected the index file {str(path)!r} named by {MANIFEST}. "
                          "Received: no such file (removed by hand?).")
    if path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
        raise ConfigError(f"Expected {str(path)!r} to be the file {MANIFEST} describes "
                          f"({entry['bytes']:,} bytes, SHA-256 {entry['sha256'][:12]}...). "
                          "Received: a different file (modified, truncated or damaged).")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """``{"name", "bytes", "sha256"}`` of a file in the index folder."""
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _current_manifest(folder: Path) -> dict[str, Any] | None:
    if folder.is_file():
        raise UserNotADirectoryError(f"Expected an index folder. Received: {str(folder)!r}, "
                                     "which is a file.")
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"Could not read {str(path)!r}: it is not valid JSON "
                          f"({error}).") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"Expected {str(path)!r} to be a tripletlab index manifest "
                          f"(\"format\": \"{FORMAT}\"). Received: another JSON file.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ConfigError(f"Expected an index of format version <= {FORMAT_VERSION}. Received: "
                          f"version {manifest['format_version']} in {str(path)!r} (written by "
                          f"a newer tripletlab: {manifest.get('tripletlab_version')}).")
    return manifest


def _check_replaceable(index, folder: Path, previous, overwrite: bool) -> None:
    loaded_from_here = previous is not None and getattr(index, "origin", None) == (
        str(folder.resolve()), previous["generation"])
    if not loaded_from_here:
        check_output(folder, overwrite=overwrite)


def check_output(directory: str | os.PathLike, *, overwrite: bool) -> None:
    """Raises unless a new index may be written into ``directory``: a new or empty folder,
    or (with ``overwrite``) one holding a tripletlab index. Called before any work, so a
    refused command costs nothing.

    Raises:
      UserFileExistsError: the folder holds files but no tripletlab index, or an index and
        ``overwrite`` is not set.
      UserNotADirectoryError: ``directory`` is a file.
    """
    folder = Path(directory)
    previous = _current_manifest(folder)
    if previous is None:
        others = ([p.name for p in folder.iterdir() if p.name != LOCK_FILE]
                  if folder.is_dir() else [])
        if others:
            raise UserFileExistsError(
                f"Expected `--output` to be a new or empty folder, or an index folder. Received: "
                f"{str(folder)!r}, which holds files tripletlab did not write "
                f"({', '.join(sorted(others)[:3])}{'...' if len(others) > 3 else ''}).")
    elif not overwrite:
        raise UserFileExistsError(
            f"Expected `--output` to be a new folder. Received: {str(folder)!r}, which holds "
            f"an index of {previous['count']:,} items. Add to it with `--append`, or replace "
            "it with `--overwrite`.")


def _write_data_files(index, folder: Path, generation: int) -> dict[str, Any]:
    from tripletlab.evaluation.knn import import_faiss

    names = {role: pattern.format(generation) for role, pattern in _DATA_FILES.items()}
    with atomic_path(folder / names["index"]) as temporary:
        import_faiss().write_index(index.faiss_index, str(temporary))
    save_array(folder / names["labels"], index.labels)
    save_array(folder / names["names"], index.names)
    return {role: file_entry(folder / name) for role, name in names.items()}


def _model_entry(folder: Path, previous, model_file, generation: int,
                 overwrite: bool) -> dict[str, Any]:
    """The manifest's ``model`` entry: the previous one if the model is the same (or none is
    given to an index that keeps growing), else a copy of ``model_file`` under this
    generation's name (so the previous manifest's model stays intact until the new one is
    current)."""
    kept = (previous or {}).get("files", {}).get("model")
    if model_file is None:
        return {"model": kept} if kept is not None and not overwrite else {}
    source = Path(model_file)
    if kept is not None and kept["sha256"] == file_sha256(source):
        return {"model": kept}
    if kept is not None and not overwrite:
        raise UserFileExistsError(
            f"Expected the model this index was built with ({str(folder / kept['name'])!r}). "
            f"Received: `--model` {str(source)!r}, a different model: its embeddings cannot be "
            "compared with the index's. Use the same model, or `--overwrite` to rebuild.")
    path = folder / MODEL.format(generation)
    with atomic_path(path) as temporary:
        shutil.copyfile(source, temporary)
    return {"model": file_entry(path)}


def _manifest(index, generation: int, files, extras) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tripletlab_version": __version__,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "generation": generation,
        "count": len(index),
        "dimension": index.dimension,
        "distance": index.distance,
        "settings": index.settings.to_dict(),
        "recall": index.recall,
        "calibration": None if index.calibration is None else index.calibration.to_dict(),
        "matching": index.matching,
        "metadata": index.metadata,
        "files": files,
        "extra_files": extras,
    }


def _remove_stale_files(folder: Path, manifest: dict[str, Any], previous) -> None:
    """Removes what tripletlab wrote and the new manifest no longer names: the previous
    generation's files, and the files and temporaries of a save that was killed before its
    manifest became current."""
    current = {entry["name"] for entry in manifest["files"].values()}
    current.update(manifest["extra_files"].values())
    replaced = {entry["name"] for entry in (previous or {}).get("files", {}).values()}
    replaced.update((previous or {}).get("extra_files", {}).values())
    for path in folder.iterdir():
        ours = (path.name in replaced or _GENERATION_FILE.match(path.name)
                or _TEMPORARY_FILE.match(path.name))
        if ours and path.name not in current:
            path.unlink(missing_ok=True)


def _read_strings(path: Path) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ConfigError(f"Could not read {str(path)!r}: {error}.") from error
    if values.ndim != 1 or values.dtype.kind != "U":
        raise ConfigError(f"Expected {str(path)!r} to hold a 1-D array of strings. Received: "
                          f"dtype={values.dtype}, shape={values.shape}.")
    return values


def _check_consistent(folder: Path, manifest, faiss_index, labels, names) -> None:
    counts = {"the manifest": manifest["count"], "the faiss index": int(faiss_index.ntotal),
              "the labels": len(labels), "the names": len(names)}
    if len(set(counts.values())) != 1 or faiss_index.d != manifest["dimension"]:
        found = ", ".join(f"{what}: {count:,}" for what, count in counts.items())
        raise ConfigError(f"Expected the files of {str(folder)!r} to describe the same items. "
                          f"Received: item counts {found}; dimension {faiss_index.d} in the "
                          f"faiss index, {manifest['dimension']} in the manifest.")
