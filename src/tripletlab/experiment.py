"""The experiment folder: its layout (file names), its manifest, and what reads and writes it.

```
MODEL_DIR/
  manifest.json               every file this run wrote, recorded before writing it (atomic)
  config.json                 the resolved configuration
  log.csv                     one row per epoch (rewritten atomically each epoch)
  tensorboard/                TensorBoard logs: loss, mining statistics, retrieval metrics
  checkpoints/last.keras      the training state after the last finished epoch (atomic)
  checkpoints/state.json      {"epoch": finished epochs, ...} (atomic, written after last.keras):
                              with last.keras, everything --resume needs
  best.keras, last.keras      the best (by val_map_at_r, else by loss) and the final embedding
                              model, uncompiled: they load with plain Keras
  metrics.json                retrieval scores: test -> train, and leave-one-out on test
  embeddings/test_embeddings.npy, test_labels.npy, test_images.npy
                              a class-stratified sample of up to 2,000 test points
  plots/                      training curves, PCA / t-SNE / UMAP scatter, neighbour grid,
                              live_pca/animation.gif
  projector/                  TensorBoard Embedding Projector files
  report.html                 one offline page with all of it
  .tripletlab.lock            present while a tripletlab command writes here (or left by a
                              killed one, when it locks nothing): see tripletlab.folder_lock
```

This module is the one owner of these names: training (:mod:`tripletlab.train`), the report
(:mod:`tripletlab.visualization.report`) and the command line read them from here. It imports
no Keras.

Every file except the TensorBoard event streams is written to a temporary name and renamed
(:mod:`tripletlab.atomic`), so a killed run leaves either the old file or the new one. A run
writes only into a new or empty folder (``params.json`` may be there) or into a tripletlab
experiment (one with ``manifest.json``); ``--overwrite`` removes only the files the manifest
names. One process at a time writes into a folder: every command that writes here holds its
lock (:meth:`Experiment.lock`, :mod:`tripletlab.folder_lock`) from before its first write.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.atomic import Recorder, save_array, temporary_pattern, write_json
from tripletlab.errors import ConfigError, UserFileExistsError, UserFileNotFoundError
from tripletlab.folder_lock import LOCK_FILE, FolderLock
from tripletlab.stratified import stratified_sample

CONFIG_FILE = "config.json"
LOG_FILE = "log.csv"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.keras"
STATE_FILE = "checkpoints/state.json"
MEMORY_CHECKPOINT = "checkpoints/memory.npz"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
METRICS_FILE = "metrics.json"
EMBEDDINGS_DIR = "embeddings"
TEST_EMBEDDINGS = "embeddings/test_embeddings.npy"
TEST_LABELS = "embeddings/test_labels.npy"
TEST_IMAGES = "embeddings/test_images.npy"
PLOTS_DIR = "plots"
LIVE_PCA_DIR = "plots/live_pca"
PROJECTOR_DIR = "projector"
REPORT_FILE = "report.html"

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "tripletlab experiment"
# Files of the user's that a new experiment folder may already hold (omoindrot's workflow).
USER_INPUTS = ("params.json",)
# What the end of a run draws from its final model (live_pca/ excepted: drawn while training):
# written again by every run that finishes, and stale after a resumed one.
PICTURES = (PLOTS_DIR, PROJECTOR_DIR, REPORT_FILE)
# Outputs of tripletlab 0.1, which kept no manifest: they mark an experiment of that version.
LEGACY_OUTPUTS = (CONFIG_FILE, LOG_FILE, STATE_FILE, METRICS_FILE)
EVENT_FILES = "events.out.tfevents.*"
THUMBNAIL_PIXELS = 64
"""The longest side, in pixels, of the images saved in ``embeddings/test_images.npy`` (and of
the report's hover pictures)."""


class Experiment:
    """The paths of one experiment folder, its manifest, and the checks made before writing.

    The manifest (``manifest.json``) names every file a run wrote into the folder and the
    folders it created. It is rewritten atomically *before* each new file is written (every
    writer of :mod:`tripletlab.atomic` takes ``record=experiment.record``), so it never misses
    a file, even after a kill.
    ``--overwrite`` removes exactly those files (and the folders they leave empty): anything
    else in the folder is the user's and stays.

    Args:
      folder: the model directory (``--model-dir``).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._files: set[str] | None = None
        self._folders: set[str] = set()
        self._lock: FolderLock | None = None

    def lock(self, command: str, *, option: str = "--model-dir") -> FolderLock:
        """The folder's inter-process lock (:class:`tripletlab.folder_lock.FolderLock`): hold
        it (``with experiment.lock("train"):``) from before the first write. One lock object
        per ``Experiment``, so code that takes it again while its caller holds it does not
        block itself.

        Args:
          command: the tripletlab command taking it (shown to a second process).
          option: the argument that named the folder, for error messages.
        """
        if self._lock is None:
            self._lock = FolderLock(self.folder, command=command, option=option)
        return self._lock

    def path(self, name: str) -> Path:
        """The path of ``name`` (one of the module's file constants) inside the folder."""
        return self.folder / name

    # ------------------------------------------------------------------------------ manifest

    def has_manifest(self) -> bool:
        """Whether the folder holds a tripletlab manifest (it is a tripletlab experiment)."""
        return self.path(MANIFEST_FILE).is_file()

    def recorded_files(self) -> list[str]:
        """The files the manifest names (paths relative to the folder), sorted."""
        self._load_manifest()
        return sorted(self._files or ())

    def _load_manifest(self) -> None:
        if self._files is not None:
            return
        path = self.path(MANIFEST_FILE)
        self._files, self._folders = set(), set()
        if not path.is_file():
            return
        try:
            with open(path, encoding="utf-8") as stream:
                manifest = json.load(stream)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"Expected {str(path)!r} to be tripletlab's record of the files "
                              f"of this experiment (JSON). Received: a file that cannot be read "
                              f"({error}).") from None
        if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT
                or not isinstance(manifest.get("files"), list)
                or not isinstance(manifest.get("folders"), list)):
            raise ConfigError(f"Expected {str(path)!r} to be tripletlab's record of the files "
                              f"of this experiment ({{'format': {MANIFEST_FORMAT!r}, 'files': "
                              "[...], 'folders': [...]}). Received: other content.")
        self._files = {str(name) for name in manifest["files"] if _is_inside(str(name))}
        self._folders = {str(name) for name in manifest["folders"] if _is_inside(str(name))}

    def _write_manifest(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.path(MANIFEST_FILE), {
            "format": MANIFEST_FORMAT, "files": sorted(self._files or ()),
            "folders": sorted(self._folders),
        })

    def start_manifest(self) -> None:
        """Creates the folder and its manifest (keeping the records of an existing one)."""
        self._load_manifest()
        self._write_manifest()

    def record(self, path: str | os.PathLike) -> None:
        """Adds ``path`` (a file about to be written) to the manifest, if inside the folder."""
        relative = self._relative(path)
        if relative is None or relative == MANIFEST_FILE:
            return
        self._load_manifest()
        if relative in self._files:
            return
        self._files.add(relative)
        parent = Path(relative).parent
        while parent != Path("."):
            self._folders.add(parent.as_posix())
            parent = parent.parent
        self._write_manifest()

    def record_tensorboard(self) -> None:
        """Records the TensorBoard event files (written by TensorFlow, not through
        :mod:`tripletlab.atomic`)."""
        folder = self.path(TENSORBOARD_DIR)
        if folder.is_dir():
            for events in sorted(folder.rglob(EVENT_FILES)):
                self.record(events)

    @contextlib.contextmanager
    def writing(self, command: str, *, option: str = "--experiment"):
        """A context manager for a command that writes into an existing experiment folder
        (``report``, ``visualize``): holds the folder's lock and yields the recorder to pass
        to the writers (``record=``): :meth:`record` in a tripletlab experiment (every file
        written is named in its manifest first), ``None`` in another folder.

        Raises:
          FileNotFoundError: the folder does not exist (it is not created).
          ExperimentInUseError: another process holds the folder.
        """
        if not self.folder.is_dir():
            raise UserFileNotFoundError(f"Expected `{option}` to be an experiment folder. "
                                        f"Received: {str(self.folder)!r}, which does not exist.")
        with self.lock(command, option=option):
            yield self.record if self.has_manifest() else None

    def contains(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` lies inside the folder (the folder itself included)."""
        root = os.path.abspath(self.folder)
        target = os.path.abspath(path)
        return os.path.commonpath([root, target]) == root

    def _relative(self, path: str | os.PathLike) -> str | None:
        root = os.path.abspath(self.folder)
        target = os.path.abspath(path)
        if os.path.commonpath([root, target]) != root or target == root:
            return None
        return Path(os.path.relpath(target, root)).as_posix()

    # --------------------------------------------------------------------------------- state

    def is_finished(self) -> bool:
        """Whether a run completed here (``metrics.json`` exists)."""
        return self.path(METRICS_FILE).is_file()

    def read_state(self) -> dict[str, Any] | None:
        """The checkpoint state (``checkpoints/state.json``), or ``None`` without one."""
        path = self.path(STATE_FILE)
        if not path.is_file():
            return None
        try:
            with open(path, encoding="utf-8") as stream:
                state = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"Could not read the checkpoint state {str(path)!r}: it is not "
                              f"valid JSON (truncated or damaged?): {error}.") from None
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
            raise ConfigError(f"Expected {str(path)!r} to hold {{'epoch': <int>, ...}}. "
                              f"Received: {state!r}.")
        return state

    def has_checkpoint(self) -> bool:
        """Whether ``checkpoints/last.keras`` and ``checkpoints/state.json`` both exist."""
        return self.path(LAST_CHECKPOINT).is_file() and self.path(STATE_FILE).is_file()

    # ----------------------------------------------------------------------- before writing

    def _foreign_entries(self) -> list[str]:
        """What the folder holds besides the user inputs tripletlab accepts (``params.json``)."""
        if not self.folder.is_dir():
            return []
        return sorted(entry.name for entry in self.folder.iterdir()
                      if entry.name not in (*USER_INPUTS, LOCK_FILE))

    def check_target(self, *, resume: bool, overwrite: bool) -> str:
        """Decides how a run may use the folder; raises if it may not. Writes nothing.

        Returns:
          ``"new"`` (a new or empty folder, or one holding only ``params.json``),
          ``"resume"`` (continue from the checkpoint), ``"restart"`` (``resume`` of a run
          killed before its first checkpoint: its files are removed and it starts again) or
          ``"overwrite"`` (the previous run's files are removed first).

        Raises:
          ValueError: both ``resume`` and ``overwrite``.
          FileExistsError: the folder holds a finished run (and not ``overwrite``) or an
            unfinished one (and neither ``resume`` nor ``overwrite``); it holds other files
            and no manifest (never written into); or it is a file.
        """
        if resume and overwrite:
            raise ConfigError("Expected at most one of --resume and --overwrite. "
                              "Received: both.")
        if self.folder.exists() and not self.folder.is_dir():
            raise UserFileExistsError(f"Expected `model_dir` to be a folder. Received: "
                                      f"{str(self.folder)!r} is a file.")
        foreign = self._foreign_entries()
        if not self.has_manifest():
            if not foreign:
                return "new"
            legacy = [name for name in LEGACY_OUTPUTS if self.path(name).is_file()]
            if legacy and resume and self.has_checkpoint():
                return "resume"  # an experiment of tripletlab 0.1: continue it, record from now
            listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            if legacy:
                raise UserFileExistsError(
                    f"{str(self.folder)!r} holds an experiment without {MANIFEST_FILE} (written "
                    f"by tripletlab 0.1, which kept no record of its files), so tripletlab "
                    f"cannot tell its files from yours and will not write into it or delete "
                    f"anything there ({listed}). Choose a new --model-dir, or remove the "
                    "folder yourself.")
            raise UserFileExistsError(
                f"{str(self.folder)!r} is not empty and is not a tripletlab experiment (no "
                f"{MANIFEST_FILE}; it holds {listed}). tripletlab writes only into a new or "
                f"empty folder (or one holding just params.json) and never deletes files it "
                f"did not write: choose another --model-dir.")
        if resume:
            return "resume" if self.has_checkpoint() else "restart"
        if overwrite:
            return "overwrite"
        if not self.recorded_files() and not [name for name in foreign
                                              if name != MANIFEST_FILE]:
            return "new"
        if self.is_finished():
            raise UserFileExistsError(f"{str(self.folder)!r} already holds a finished experiment; "
                                      "pass --overwrite to replace it (only the files tripletlab "
                                      f"wrote, listed in {MANIFEST_FILE}, are removed).")
        state = self.read_state() if self.has_checkpoint() else None
        progress = (f"{state['epoch']} epoch(s) checkpointed" if state
                    else "stopped before its first checkpoint")
        raise UserFileExistsError(f"{str(self.folder)!r} already holds an unfinished experiment "
                                  f"({progress}; no tripletlab process is running in it, so it "
                                  "was killed or interrupted); pass --resume to continue it "
                                  "(with its saved configuration) or --overwrite to replace it.")

    def clear(self) -> None:
        """Removes the files the manifest names, their temporaries, TensorBoard's event files in
        the recorded ``tensorboard/``, then the recorded folders left empty; other files stay."""
        self._load_manifest()
        for relative in sorted(self._files):
            target = self.folder / relative
            if target.is_file() or target.is_symlink():
                target.unlink()
        self.remove_temporaries()
        if TENSORBOARD_DIR in self._folders and self.path(TENSORBOARD_DIR).is_dir():
            for events in self.path(TENSORBOARD_DIR).rglob(EVENT_FILES):
                if events.is_file():
                    events.unlink()
        for relative in sorted(self._folders, key=lambda name: -name.count("/")):
            with contextlib.suppress(OSError):  # not empty (a user's file) or already gone
                (self.folder / relative).rmdir()
        self._files, self._folders = set(), set()
        if self.has_manifest():
            self._write_manifest()

    def remove_pictures(self) -> list[str]:
        """Removes the recorded files of :data:`PICTURES` (``plots/`` but ``plots/live_pca/``,
        ``projector/``, ``report.html``), drawn from an earlier state of the folder, and their
        records; other files stay.

        Returns:
          The files removed (relative paths).
        """
        self._load_manifest()
        stale = [name for name in sorted(self._files) if _is_picture(name)]
        for relative in stale:
            target = self.folder / relative
            if target.is_file() or target.is_symlink():
                target.unlink()
            self._files.discard(relative)
        for relative in sorted(self._folders, key=lambda name: -name.count("/")):
            if _is_picture(relative):
                with contextlib.suppress(OSError):  # not empty: a user's file, or live_pca/
                    (self.folder / relative).rmdir()
        if stale:
            self._write_manifest()
        return stale

    def remove_temporaries(self) -> None:
        """Removes temporary files left by a killed writer beside each recorded file."""
        self._load_manifest()
        for relative in sorted(self._files):
            target = self.folder / relative
            if target.parent.is_dir():
                for stale in target.parent.glob(temporary_pattern(target)):
                    if stale.is_file():
                        stale.unlink()


def _is_picture(relative: str) -> bool:
    """Whether a recorded path is one of :data:`PICTURES` (and not under ``plots/live_pca/``)."""
    if relative == LIVE_PCA_DIR or relative.startswith(LIVE_PCA_DIR + "/"):
        return False
    return any(relative == name or relative.startswith(name + "/") for name in PICTURES)


def _is_inside(relative: str) -> bool:
    """Whether a manifest entry is a plain relative path inside the folder."""
    path = Path(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts


# --------------------------------------------------------------------------------------------
# The exported test sample: embeddings/
# --------------------------------------------------------------------------------------------


def thumbnails(images: np.ndarray, max_pixels: int = THUMBNAIL_PIXELS) -> np.ndarray:
    """uint8 ``[N, h, w, C]`` copies of float images in ``[0, 1]``, at most ``max_pixels`` a side
    (nearest-neighbour subsampling)."""
    images = np.asarray(images)
    height, width = images.shape[1:3]
    scale = max(height, width) / max_pixels
    if scale > 1:
        rows = np.minimum((np.arange(int(height / scale)) * scale).astype(int), height - 1)
        cols = np.minimum((np.arange(int(width / scale)) * scale).astype(int), width - 1)
        images = images[:, rows][:, :, cols]
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return images


def save_test_exports(experiment: Experiment, embeddings: np.ndarray, labels: np.ndarray,
                      images: np.ndarray, count: int, seed: int = 0, *,
                      record: Recorder | None = None) -> np.ndarray:
    """Writes ``embeddings/test_{embeddings,labels,images}.npy`` for a stratified sample.

    ``record`` is called with each file's path before it is written (the experiment's
    :meth:`Experiment.record`, to name them in its manifest).

    Returns:
      The indices of the test points written.
    """
    keep = stratified_sample(labels, count, seed)
    save_array(experiment.path(TEST_EMBEDDINGS), np.asarray(embeddings[keep], np.float32),
               record=record)
    save_array(experiment.path(TEST_LABELS), np.asarray(labels[keep], np.int64), record=record)
    # chunks: images on disk (ImageFiles) are decoded 256 at a time
    chunks = [thumbnails(images[keep[start:start + 256]]) for start in range(0, len(keep), 256)]
    save_array(experiment.path(TEST_IMAGES), np.concatenate(chunks) if chunks
               else thumbnails(images[keep]), record=record)
    return keep


def load_experiment_embeddings(experiment: Experiment
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reads ``embeddings/test_*.npy`` (``allow_pickle=False``); images may be absent."""
    paths = [experiment.path(TEST_EMBEDDINGS), experiment.path(TEST_LABELS)]
    for path in paths:
        if not path.is_file():
            raise UserFileNotFoundError(f"Expected {str(path)!r} in the experiment folder. "
                                        "Received: no such file (did training finish?).")
    embeddings = np.load(paths[0], allow_pickle=False)
    labels = np.load(paths[1], allow_pickle=False)
    images_path = experiment.path(TEST_IMAGES)
    images = np.load(images_path, allow_pickle=False) if images_path.is_file() else None
    return embeddings, labels, images

