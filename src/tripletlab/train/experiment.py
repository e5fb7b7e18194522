"""The experiment folder: its layout, the callbacks that fill it, and the final writers.

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
  report.html                 one offline page with all of it
```

Every file except the TensorBoard event streams is written to a temporary name and renamed
(:mod:`tripletlab.atomic`), so a killed run leaves either the old file or the new one. A run
writes only into a new or empty folder (``params.json`` may be there) or into a tripletlab
experiment (one with ``manifest.json``); ``--overwrite`` removes only the files the manifest
names.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tripletlab.atomic import atomic_path, temporary_pattern, write_json, write_text
from tripletlab.atomic import recording as atomic_recording
from tripletlab.errors import ConfigError, UserFileExistsError, UserFileNotFoundError

CONFIG_FILE = "config.json"
LOG_FILE = "log.csv"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.keras"
STATE_FILE = "checkpoints/state.json"
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
# Outputs of tripletlab 0.1, which kept no manifest: they mark an experiment of that version.
LEGACY_OUTPUTS = (CONFIG_FILE, LOG_FILE, STATE_FILE, METRICS_FILE)
EVENT_FILES = "events.out.tfevents.*"
THUMBNAIL_PIXELS = 64


class Experiment:
    """The paths of one experiment folder, its manifest, and the checks made before writing.

    The manifest (``manifest.json``) names every file a run wrote into the folder and the
    folders it created. It is rewritten atomically *before* each new file is written
    (:func:`tripletlab.atomic.recording`), so it never misses a file, even after a kill.
    ``--overwrite`` removes exactly those files (and the folders they leave empty): anything
    else in the folder is the user's and stays.

    Args:
      folder: the model directory (``--model-dir``).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._files: set[str] | None = None
        self._folders: set[str] = set()

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

    def recording(self):
        """A context manager that records every file written through :mod:`tripletlab.atomic`
        into this folder."""
        return atomic_recording(self.record)

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

    def read_config(self) -> dict[str, Any]:
        """The saved ``config.json``."""
        path = self.path(CONFIG_FILE)
        if not path.is_file():
            raise UserFileNotFoundError(f"Expected a saved configuration at {str(path)!r} to "
                                        "resume from. Received: no such file.")
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)

    # ----------------------------------------------------------------------- before writing

    def _foreign_entries(self) -> list[str]:
        """What the folder holds besides the user inputs tripletlab accepts (``params.json``)."""
        if not self.folder.is_dir():
            return []
        return sorted(entry.name for entry in self.folder.iterdir()
                      if entry.name not in USER_INPUTS)

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
                    else "killed before its first checkpoint")
        raise UserFileExistsError(f"{str(self.folder)!r} already holds an unfinished experiment "
                                  f"({progress}); pass --resume to continue it (with its saved "
                                  "configuration) or --overwrite to replace it.")

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

    def remove_temporaries(self) -> None:
        """Removes temporary files left by a killed writer beside each recorded file."""
        self._load_manifest()
        for relative in sorted(self._files):
            target = self.folder / relative
            if target.parent.is_dir():
                for stale in target.parent.glob(temporary_pattern(target)):
                    if stale.is_file():
                        stale.unlink()


def _is_inside(relative: str) -> bool:
    """Whether a manifest entry is a plain relative path inside the folder."""
    path = Path(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts


# --------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
    return number


class AtomicCSVLogger(keras.callbacks.Callback):
    """``keras.callbacks.CSVLogger``'s format, but the file is rewritten atomically each epoch.

    The columns are ``epoch`` then the sorted keys of the first epoch's logs; a missing value
    is ``NA``. On resume (``initial_epoch > 0``) the rows of epochs ``>= initial_epoch`` (written
    before a crash, and about to be redone) are dropped.

    Args:
      path: the CSV file.
      initial_epoch: the first epoch this ``fit`` runs.
    """

    def __init__(self, path: str | os.PathLike, initial_epoch: int = 0):
        super().__init__()
        self.path = Path(path)
        self.initial_epoch = int(initial_epoch)
        self.columns: list[str] | None = None
        self.rows: list[list[str]] = []

    def on_train_begin(self, logs=None):
        if self.initial_epoch > 0 and self.path.is_file():
            with open(self.path, encoding="utf-8", newline="") as stream:
                table = list(csv.reader(stream))
            if table:
                self.columns = table[0]
                self.rows = [row for row in table[1:] if row and int(row[0]) < self.initial_epoch]
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.columns is None:
            self.columns = ["epoch", *sorted(logs)]
        row = [str(epoch)]
        for column in self.columns[1:]:
            value = _float(logs[column]) if column in logs else None
            row.append("NA" if value is None else repr(value))
        self.rows.append(row)
        self._write()

    def _write(self):
        if self.columns is None:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


class CheckpointCallback(keras.callbacks.Callback):
    """Saves ``checkpoints/last.keras`` then ``checkpoints/state.json`` after every epoch, and
    ``best.keras`` when the monitored value improves; every write is atomic.

    ``state.json`` is written after the checkpoint, so the epoch it names always has its
    checkpoint on disk: ``{"epoch": finished epochs, "epochs": total, "monitor": ...,
    "best": best value so far, "logs": the epoch's logs, "train_seconds": training time of all
    segments so far, "seed_generators": the model's random-generator states,
    "global_random_state": the backend's global one (PyTorch)}``. With an
    :class:`InterruptGuard`, Ctrl-C during these writes takes effect once they are done.

    Args:
      experiment: the :class:`Experiment`.
      epochs: the total number of epochs.
      monitor: the logs key to watch (``val_map_at_r`` or ``loss``).
      mode: ``"max"`` or ``"min"``.
      best: the best value so far (from ``state.json`` on resume).
      export_model: the model saved as ``best.keras`` (default: the model being fit; the
        embedding model when fitting a triplet network), without its training state.
      train_seconds: the training time of earlier segments (from ``state.json`` on resume).
      guard: the :class:`InterruptGuard` of the run, if any.
    """

    def __init__(self, experiment: Experiment, epochs: int, monitor: str, mode: str,
                 best: float | None = None, export_model: keras.Model | None = None,
                 train_seconds: float = 0.0, guard: InterruptGuard | None = None):
        super().__init__()
        self.experiment = experiment
        self.epochs = int(epochs)
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.export_model = export_model
        self.train_seconds = float(train_seconds)
        self.guard = guard
        self._segment_start = time.perf_counter()

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_train_begin(self, logs=None):
        self._segment_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.train_seconds += now - self._segment_start
        self._segment_start = now
        logs = {key: _float(value) for key, value in (logs or {}).items()}
        value = logs.get(self.monitor)
        deferred = self.guard.deferred() if self.guard else contextlib.nullcontext()
        with deferred:
            if value is not None and math.isfinite(value) and self._improved(value):
                self.best = value
                save_inference_model(self.export_model or self.model,
                                     self.experiment.path(BEST_MODEL))
            save_model(self.model, self.experiment.path(LAST_CHECKPOINT))
            self.experiment.record_tensorboard()
            write_json(self.experiment.path(STATE_FILE), {
                "epoch": epoch + 1, "epochs": self.epochs, "monitor": self.monitor,
                "best": self.best, "logs": {k: v for k, v in logs.items() if v is not None},
                "train_seconds": self.train_seconds,
                "seed_generators": seed_generator_states(self.model),
                "global_random_state": global_random_state(),
            })


def seed_generator_states(model: keras.Model) -> list[list[Any]]:
    """``[[variable path, [seed, counter]], ...]``: the state of every ``SeedGenerator`` of
    ``model`` (dropout and other random layers), in ``model.variables`` order.

    A loaded ``.keras`` model starts its generators afresh, so a resumed run restores these
    to draw the same random numbers as an uninterrupted one.
    """
    return [[variable.path, np.asarray(keras.ops.convert_to_numpy(variable.value)).tolist()]
            for variable in model.variables if _is_seed_state(variable)]


def restore_seed_generator_states(model: keras.Model, states: Sequence[Any] | None) -> None:
    """Sets the ``SeedGenerator`` states saved by :func:`seed_generator_states` (in order).

    Raises:
      ValueError: ``states`` does not match the model's generators (another model).
    """
    if states is None:
        return
    # matched by order: generator names get a process-wide counter ("seed_generator_6")
    variables = [variable for variable in model.variables if _is_seed_state(variable)]
    if len(variables) != len(states):
        raise ConfigError(f"Expected {len(variables)} saved random-generator states (those of "
                          f"the model's {[v.path for v in variables]}). Received: "
                          f"{len(states)} ({[path for path, _ in states]}).")
    for variable, (_, value) in zip(variables, states, strict=True):
        variable.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(variable.dtype)))


def global_random_state() -> dict[str, Any]:
    """The backend's global random state, which Keras uses for unseeded dropout on PyTorch
    (``torch.nn.functional.dropout``): ``{"torch": base64 bytes, "torch_cuda": [...]}``, or
    ``{}`` on the other backends (their layers draw from their ``SeedGenerator``)."""
    if keras.backend.backend() != "torch":
        return {}
    import torch

    def encode(tensor) -> str:
        return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")

    state: dict[str, Any] = {"torch": encode(torch.get_rng_state())}
    if torch.cuda.is_available():
        state["torch_cuda"] = [encode(item) for item in torch.cuda.get_rng_state_all()]
    return state


def restore_global_random_state(state: Mapping[str, Any] | None) -> None:
    """Sets the state saved by :func:`global_random_state` (nothing for other backends)."""
    if not state or keras.backend.backend() != "torch":
        return
    import torch

    def decode(text: str):
        return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())

    if "torch" in state:
        torch.set_rng_state(decode(state["torch"]))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([decode(item) for item in state["torch_cuda"]])


class RestoreGlobalRandomState(keras.callbacks.Callback):
    """Restores :func:`global_random_state` when the first resumed epoch begins: where the
    uninterrupted run was (``fit``'s start draws from it on PyTorch, e.g. its data loader).

    Args:
      state: the saved state (``state.json``'s ``"global_random_state"``).
    """

    def __init__(self, state: Mapping[str, Any] | None):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        if self.state is not None:
            restore_global_random_state(self.state)
            self.state = None


def _is_seed_state(variable) -> bool:
    return variable.path.endswith("seed_generator_state")


class InterruptGuard(keras.callbacks.Callback):
    """Makes Ctrl-C (SIGINT) stop ``fit`` between two steps, on every backend.

    Keras calls its batch-end hooks through ``pythonify_logs``, whose bare ``except`` swallows
    a ``KeyboardInterrupt`` raised while it waits for the step's results (on JAX, with a
    callback that has batch-end hooks such as TensorBoard, that is where the main thread
    waits): Ctrl-C was lost and training ran to the end. The guard's handler records the
    interrupt and raises ``KeyboardInterrupt`` as Python's does; if something swallows it,
    the guard raises it again at the next step or epoch boundary. Inside :meth:`deferred`
    (the checkpoint writes) the interrupt waits until the block ends.

    Use it as a context manager around ``fit`` (it installs the handler only in the main
    thread, and only over Python's own handler or another callable one: an ignored SIGINT,
    as in a background job of a non-interactive shell, stays ignored) and as a callback.
    """

    def __init__(self):
        super().__init__()
        self.requested = False
        self._depth = 0
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            self._previous = previous
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum, frame):
        self.requested = True
        if self._depth == 0:
            self._previous(signum, frame)

    @contextlib.contextmanager
    def deferred(self):
        """A block that Ctrl-C does not interrupt; it takes effect when the block ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.check()

    def check(self) -> None:
        """Raises ``KeyboardInterrupt`` if Ctrl-C was pressed."""
        if self.requested and self._depth == 0:
            raise KeyboardInterrupt

    def on_train_batch_begin(self, batch, logs=None):
        self.check()

    def on_epoch_begin(self, epoch, logs=None):
        self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()


class FitEpochBatches(keras.utils.PyDataset):
    """The batches of ``fit`` epoch ``e`` as a function of ``e`` alone, for exact resumes.

    Keras advances a sampler by calling its ``on_epoch_end``, also once when ``fit`` starts,
    and (with ``steps_per_epoch`` below the sampler's length) keeps its position inside the
    sampler's epoch across ``fit`` epochs: a resumed ``fit`` therefore drew other batches than
    an uninterrupted one. This view serves step ``i`` of ``fit`` epoch ``e`` as batch
    ``(e * steps_per_epoch + i) mod len(batches)`` of the sampler's epoch
    ``(e * steps_per_epoch + i) // len(batches)``; :meth:`callback` tells it the ``fit``
    epoch. Keras' own ``on_epoch_end`` calls do nothing here.

    Args:
      batches: a sampler with ``set_epoch`` and an ``epoch`` property (:class:`PKSampler`,
        :class:`ShuffledBatches`).
      steps_per_epoch: steps per ``fit`` epoch (default ``len(batches)``).
    """

    def __init__(self, batches, steps_per_epoch: int | None = None):
        super().__init__()
        self.batches = batches
        self.steps_per_epoch = int(steps_per_epoch or len(batches))
        self.fit_epoch = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index):
        position = self.fit_epoch * self.steps_per_epoch + int(index)
        epoch, within = divmod(position, len(self.batches))
        if self.batches.epoch != epoch:
            self.batches.set_epoch(epoch)
        return self.batches[within]

    def callback(self) -> keras.callbacks.Callback:
        """The callback that sets the ``fit`` epoch at each epoch's start."""
        view = self

        class _SetFitEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                view.fit_epoch = int(epoch)

        return _SetFitEpoch()


class EpochLine(keras.callbacks.Callback):
    """Prints one readable line per epoch, e.g.
    ``epoch 3/10  loss 0.412  frac+ 0.31  P@1 0.962  MAP@R 0.811  12.3s``.

    With ``defer=True`` (beside Keras' progress bar) the line is printed at the start of the
    next epoch or at the end of training, so it comes after the bar's last update.
    """

    _SHOWN = (("loss", "loss", "{:.4f}"), ("fraction_positive_triplets", "frac+", "{:.3f}"),
              ("val_precision_at_1", "P@1", "{:.4f}"), ("val_map_at_r", "MAP@R", "{:.4f}"))

    def __init__(self, epochs: int, stream=None, defer: bool = False):
        super().__init__()
        self.epochs = int(epochs)
        self.stream = stream
        self.defer = defer
        self._start = 0.0
        self._pending: str | None = None

    def _flush(self):
        if self._pending is not None:
            print(self._pending, file=self.stream, flush=True)
            self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key, label, form in self._SHOWN:
            value = _float(logs[key]) if key in logs else None
            if value is not None:
                parts.append(f"{label} {form.format(value)}")
        parts.append(f"{time.perf_counter() - self._start:.1f}s")
        self._pending = "  ".join(parts)
        if not self.defer:
            self._flush()

    def on_train_end(self, logs=None):
        self._flush()


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save(path)`` through a temporary file and a rename (the full training state)."""
    with atomic_path(path) as temporary:
        model.save(temporary)
    return Path(path)


def save_inference_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Saves ``model`` for inference: an uncompiled copy with the same weights, atomically.

    The file holds no loss, metrics or optimizer, so it loads with plain Keras
    (``keras.saving.load_model(path, safe_mode=True)``) without tripletlab installed, as
    long as the model's own layers are Keras' (every model of :mod:`tripletlab.models`).
    """
    # from_config builds the same layers without the compile configuration (clone_model
    # would compile the copy like the original)
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return save_model(copy, path)


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` through a temporary file and a rename."""
    with atomic_path(path) as temporary:
        np.save(temporary, array, allow_pickle=False)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Final writers
# --------------------------------------------------------------------------------------------


def stratified_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Up to ``count`` sorted indices, a random sample with each class's share kept."""
    labels = np.asarray(labels).reshape(-1)
    if count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts * count / len(labels)).astype(int)
    # hand the remaining places to the classes with the largest remainders
    remainder = counts * count / len(labels) - quota
    quota[np.argsort(-remainder)[: count - quota.sum()]] += 1
    for label, take in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


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
                      images: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Writes ``embeddings/test_{embeddings,labels,images}.npy`` for a stratified sample.

    Returns:
      The indices of the test points written.
    """
    keep = stratified_indices(labels, count, seed)
    save_array(experiment.path(TEST_EMBEDDINGS), np.asarray(embeddings[keep], np.float32))
    save_array(experiment.path(TEST_LABELS), np.asarray(labels[keep], np.int64))
    save_array(experiment.path(TEST_IMAGES), thumbnails(images[keep]))
    return keep


def available_projections() -> tuple[str, ...]:
    """``("pca", "tsne")`` plus ``"umap"`` when umap-learn is installed."""
    methods = ("pca", "tsne")
    if importlib.util.find_spec("umap") is not None:
        methods += ("umap",)
    return methods


def write_plots(folder: str | os.PathLike, embeddings: np.ndarray, labels: np.ndarray, *,
                images: np.ndarray | None = None, log_csv: str | os.PathLike | None = None,
                class_names: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                seed: int = 0, num_queries: int = 8, num_neighbors: int = 6,
                announce: Callable[[str], None] | None = None) -> list[Path]:
    """Draws the pictures of an experiment into ``folder``.

    ``training_curves.png`` (from ``log_csv``), ``{method}.png`` for each projection
    (``pca``, ``tsne``, and ``umap`` if installed), and ``neighbors.png`` (with ``images``): a few
    test queries, one per class, and their nearest other test points (L2).

    ``announce``, if given, is called with one line before each picture is drawn.

    Returns:
      The files written.
    """
    from tripletlab import visualization as viz

    announce = announce or (lambda text: None)

    folder = Path(folder)
    written = []
    labels = np.asarray(labels).reshape(-1)
    names = list(class_names) if class_names is not None else None
    if log_csv is not None and Path(log_csv).is_file():
        announce(f"Drawing {folder / 'training_curves.png'}")
        written.append(viz.training_curves(log_csv, folder / "training_curves.png"))
    titles = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    for method in available_projections() if methods is None else methods:
        if len(labels) < 5:
            break
        announce(f"Drawing {folder / (method + '.png')} ({titles.get(method, method)} of "
                 f"{len(labels):,} points)")
        points = viz.project(embeddings, method, seed=seed)
        written.append(viz.scatter_plot(points, labels, folder / f"{method}.png",
                                        title=f"{titles.get(method, method)} of "
                                              f"{len(labels)} test embeddings",
                                        class_names=names))
    if images is not None and len(labels) > num_neighbors:
        queries = np.array([np.flatnonzero(labels == c)[0] for c in np.unique(labels)])
        queries = queries[:num_queries]
        announce(f"Drawing {folder / 'neighbors.png'}")
        x = np.asarray(embeddings, np.float64)
        squared = np.sum((x[queries, None, :] - x[None, :, :]) ** 2, axis=-1)
        squared[np.arange(len(queries)), queries] = np.inf
        nearest = np.argsort(squared, axis=1, kind="stable")[:, :num_neighbors]
        written.append(viz.neighbor_grid(images[queries], labels[queries], images[nearest],
                                         labels[nearest], folder / "neighbors.png",
                                         class_names=names))
    return written


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


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (for printing a table)."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def warn_once(message: str) -> None:
    """A ``UserWarning`` pointing at the caller of the training function."""
    warnings.warn(message, UserWarning, stacklevel=3)
