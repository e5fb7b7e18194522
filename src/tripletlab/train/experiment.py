"""The experiment folder: its layout, the callbacks that fill it, and the final writers.

```
MODEL_DIR/
  config.json                 the resolved configuration
  log.csv                     one row per epoch (rewritten atomically each epoch)
  tensorboard/                TensorBoard logs: loss, mining statistics, retrieval metrics
  checkpoints/last.keras      the training state after the last finished epoch (atomic)
  checkpoints/state.json      {"epoch": finished epochs, ...} (atomic, written after last.keras)
  best.keras, last.keras      the best (by val_map_at_r, else by loss) and the final model
  metrics.json                retrieval scores: test -> train, and leave-one-out on test
  embeddings/test_embeddings.npy, test_labels.npy, test_images.npy
                              a class-stratified sample of up to 2,000 test points
  plots/                      training curves, PCA / t-SNE / UMAP scatter, neighbour grid,
                              live_pca/animation.gif
  report.html                 one offline page with all of it
```

Every file except the TensorBoard event streams is written to a temporary name and renamed
(:mod:`tripletlab.atomic`), so a killed run leaves either the old file or the new one.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tripletlab.atomic import atomic_path, write_json, write_text

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

# What ``--overwrite`` removes: only what tripletlab writes, never anything else in the folder.
OUTPUTS = (CONFIG_FILE, LOG_FILE, TENSORBOARD_DIR, CHECKPOINT_DIR, BEST_MODEL, LAST_MODEL,
           METRICS_FILE, EMBEDDINGS_DIR, PLOTS_DIR, PROJECTOR_DIR, REPORT_FILE)
THUMBNAIL_PIXELS = 64


class Experiment:
    """The paths of one experiment folder and the checks made before writing to it.

    Args:
      folder: the model directory (``--model-dir``).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        """The path of ``name`` (one of the module's file constants) inside the folder."""
        return self.folder / name

    def existing_outputs(self) -> list[str]:
        """The tripletlab outputs present in the folder."""
        return [name for name in OUTPUTS if self.path(name).exists()]

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
            raise ValueError(f"Could not read the checkpoint state {str(path)!r}: it is not "
                             f"valid JSON (truncated or damaged?): {error}.") from None
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
            raise ValueError(f"Expected {str(path)!r} to hold {{'epoch': <int>, ...}}. "
                             f"Received: {state!r}.")
        return state

    def read_config(self) -> dict[str, Any]:
        """The saved ``config.json``."""
        path = self.path(CONFIG_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"Expected a saved configuration at {str(path)!r} to resume "
                                    "from. Received: no such file.")
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)

    def check_target(self, *, resume: bool, overwrite: bool) -> None:
        """Raises if the folder cannot be used as asked; writes nothing.

        Raises:
          ValueError: both ``resume`` and ``overwrite``.
          FileExistsError: the folder holds a finished run (and not ``overwrite``) or an
            unfinished one (and neither ``resume`` nor ``overwrite``); or it is a file.
          FileNotFoundError: ``resume`` without a checkpoint.
        """
        if resume and overwrite:
            raise ValueError("Expected at most one of --resume and --overwrite. "
                             "Received: both.")
        if self.folder.exists() and not self.folder.is_dir():
            raise FileExistsError(f"Expected `model_dir` to be a folder. Received: "
                                  f"{str(self.folder)!r} is a file.")
        if resume:
            if self.read_state() is None or not self.path(LAST_CHECKPOINT).is_file():
                raise FileNotFoundError(
                    f"Expected a checkpoint to resume from in {str(self.folder)!r} "
                    f"({LAST_CHECKPOINT} and {STATE_FILE}). Received: none; start without "
                    "--resume.")
            return
        present = self.existing_outputs()
        if present and not overwrite:
            what = "a finished experiment" if self.is_finished() else "an unfinished experiment"
            advice = ("pass --overwrite to replace it" if self.is_finished()
                      else "pass --resume to continue it or --overwrite to replace it")
            raise FileExistsError(f"{str(self.folder)!r} already holds {what} "
                                  f"({', '.join(present)}); {advice}.")

    def clear(self) -> None:
        """Removes tripletlab's outputs (for ``--overwrite``); other files are kept."""
        for name in self.existing_outputs():
            target = self.path(name)
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()

    def remove_temporaries(self) -> None:
        """Removes temporary files left by a killed writer (``.name.*.tmp*``)."""
        for folder in (self.folder, self.path(CHECKPOINT_DIR), self.path(EMBEDDINGS_DIR)):
            if folder.is_dir():
                for stale in folder.glob(".*.tmp*"):
                    if stale.is_file():
                        stale.unlink()


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
    "best": best value so far, "logs": the epoch's logs}``.

    Args:
      experiment: the :class:`Experiment`.
      epochs: the total number of epochs.
      monitor: the logs key to watch (``val_map_at_r`` or ``loss``).
      mode: ``"max"`` or ``"min"``.
      best: the best value so far (from ``state.json`` on resume).
      export_model: the model saved as ``best.keras`` (default: the model being fit; the
        embedding model when fitting a triplet network).
    """

    def __init__(self, experiment: Experiment, epochs: int, monitor: str, mode: str,
                 best: float | None = None, export_model: keras.Model | None = None):
        super().__init__()
        self.experiment = experiment
        self.epochs = int(epochs)
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.export_model = export_model

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: _float(value) for key, value in (logs or {}).items()}
        value = logs.get(self.monitor)
        if value is not None and math.isfinite(value) and self._improved(value):
            self.best = value
            save_model(self.export_model or self.model, self.experiment.path(BEST_MODEL))
        save_model(self.model, self.experiment.path(LAST_CHECKPOINT))
        write_json(self.experiment.path(STATE_FILE), {
            "epoch": epoch + 1, "epochs": self.epochs, "monitor": self.monitor,
            "best": self.best, "logs": {k: v for k, v in logs.items() if v is not None},
        })


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
    """``model.save(path)`` through a temporary file and a rename."""
    with atomic_path(path) as temporary:
        model.save(temporary)
    return Path(path)


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
    for label, take in zip(classes, quota):
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
            raise FileNotFoundError(f"Expected {str(path)!r} in the experiment folder. "
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
