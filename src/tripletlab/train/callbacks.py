"""The Keras callbacks of ``tripletlab train``: the epoch log, checkpoints, Ctrl-C, progress.

- :class:`AtomicCSVLogger`: ``log.csv``, rewritten atomically each epoch.
- :class:`CheckpointCallback`: ``checkpoints/last.keras``, ``checkpoints/state.json`` and
  ``best.keras`` after every epoch.
- :class:`RestoreGlobalRandomState`: a resumed run's global random state (PyTorch).
- :class:`InterruptGuard`: Ctrl-C stops ``fit`` between two steps, on every backend.
- :class:`EpochLine`: one readable line per epoch.

The file names are those of :mod:`tripletlab.experiment`; every file is written through
:mod:`tripletlab.atomic`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from tripletlab.atomic import Recorder, save_inference_model, save_model, write_json, write_text
from tripletlab.experiment import (
    BEST_MODEL,
    LAST_CHECKPOINT,
    MEMORY_CHECKPOINT,
    STATE_FILE,
    Experiment,
)
from tripletlab.train.resume import (
    global_random_state,
    restore_global_random_state,
    save_memory,
    seed_generator_states,
)


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
      record: called with ``path`` before each write (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).
    """

    def __init__(self, path: str | os.PathLike, initial_epoch: int = 0, *,
                 record: Recorder | None = None):
        super().__init__()
        self.path = Path(path)
        self.initial_epoch = int(initial_epoch)
        self.record = record
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
        write_text(self.path, buffer.getvalue(), record=self.record)


class CheckpointCallback(keras.callbacks.Callback):
    """Saves ``checkpoints/last.keras`` (with ``checkpoints/memory.npz``, the cross-batch
    memory, when the model carries one) then ``checkpoints/state.json`` after every epoch, and
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
      record: called with each file's path before it is written (the experiment's
        :meth:`~tripletlab.experiment.Experiment.record`, to name it in the manifest).
    """

    def __init__(self, experiment: Experiment, epochs: int, monitor: str, mode: str,
                 best: float | None = None, export_model: keras.Model | None = None,
                 train_seconds: float = 0.0, guard: InterruptGuard | None = None, *,
                 record: Recorder | None = None):
        super().__init__()
        self.experiment = experiment
        self.epochs = int(epochs)
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.export_model = export_model
        self.train_seconds = float(train_seconds)
        self.guard = guard
        self.record = record
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
                                     self.experiment.path(BEST_MODEL), record=self.record)
            save_model(self.model, self.experiment.path(LAST_CHECKPOINT), record=self.record)
            save_memory(self.model, self.experiment.path(MEMORY_CHECKPOINT), record=self.record)
            self.experiment.record_tensorboard()
            write_json(self.experiment.path(STATE_FILE), {
                "epoch": epoch + 1, "epochs": self.epochs, "monitor": self.monitor,
                "best": self.best, "logs": {k: v for k, v in logs.items() if v is not None},
                "train_seconds": self.train_seconds,
                "seed_generators": seed_generator_states(self.model),
                "global_random_state": global_random_state(),
            }, record=self.record)


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


class EpochLine(keras.callbacks.Callback):
    """Prints one readable line per epoch, e.g.
    ``epoch 3/10  loss 0.412  frac+ 0.31  P@1 0.962  MAP@R 0.811  12.3s``.

    With ``defer=True`` (beside Keras' progress bar) the line is printed at the start of the
    next epoch or at the end of training, so it comes after the bar's last update. With a
    :class:`~tripletlab.train.throughput.Throughput` (listed before this callback), the line
    ends with the images per second of the input pipeline and of the training step, e.g.
    ``input 1,850 img/s (4 workers)  step 420 img/s (step-bound)``.
    """

    _SHOWN = (("loss", "loss", "{:.4f}"), ("fraction_positive_triplets", "frac+", "{:.3f}"),
              ("val_precision_at_1", "P@1", "{:.4f}"), ("val_map_at_r", "MAP@R", "{:.4f}"))

    def __init__(self, epochs: int, stream=None, defer: bool = False, throughput=None):
        super().__init__()
        self.throughput = throughput
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
        rates = self.throughput.describe() if self.throughput is not None else ""
        if rates:
            parts.append(rates)
        self._pending = "  ".join(parts)
        if not self.defer:
            self._flush()

    def on_train_end(self, logs=None):
        self._flush()
