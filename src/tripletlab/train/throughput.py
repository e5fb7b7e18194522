"""Images per second of the input pipeline and of the training step, per epoch.

:class:`Throughput` wraps the training ``PyDataset`` (:meth:`Throughput.wrap`) to time every
batch it produces, in whichever worker thread produces it, and watches the training batches
(``on_train_batch_begin`` / ``on_train_batch_end``). At the end of each epoch it knows:

- **input**: images per second the input pipeline can deliver, ``images / (seconds spent in
  __getitem__ / workers)``: decoding, resizing (and augmenting) images, or slicing arrays;
- **step**: images per second the training step ran at, ``images / (seconds from the first
  batch's start to the last batch's end, less the time the main thread itself spent
  producing batches)``. With worker threads the step may wait for input: then the two rates
  are about equal and the input limits; when the input rate is clearly higher, the step does.

:class:`~tripletlab.train.callbacks.EpochLine` prints :meth:`Throughput.describe` at the end of
its line, e.g. ``input 1,850 img/s (4 workers)  step 420 img/s (step-bound)``. The first
epoch's step rate includes compiling the step.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import keras

INPUT_BOUND_RATIO = 1.2
"""The input limits when it delivers less than this many times the step's image rate."""


def count_images(batch: Any) -> int:
    """Images in a batch ``(x, y)``: the rows of ``x``, times the number of arrays when ``x`` is
    a tuple (offline triplets: anchors, positives, negatives)."""
    x = batch[0] if isinstance(batch, tuple) else batch
    if isinstance(x, (tuple, list)):
        return sum(len(part) for part in x)
    if isinstance(x, dict):
        return sum(len(part) for part in x.values())
    return len(x)


class TimedBatches(keras.utils.PyDataset):
    """A ``PyDataset`` that serves ``batches`` and reports each batch's time to a
    :class:`Throughput`; it runs with ``batches``' ``workers``, ``use_multiprocessing`` and
    ``max_queue_size``, and forwards ``on_epoch_begin`` / ``on_epoch_end``.

    Args:
      batches: the training ``PyDataset``.
      throughput: the :class:`Throughput` that collects the timings.
    """

    def __init__(self, batches: keras.utils.PyDataset, throughput: Throughput):
        super().__init__(workers=batches.workers,
                         use_multiprocessing=batches.use_multiprocessing,
                         max_queue_size=batches.max_queue_size)
        self.batches = batches
        self.throughput = throughput

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_batches(self):
        return self.batches.num_batches

    def __getitem__(self, index):
        start = time.perf_counter()
        batch = self.batches[index]
        self.throughput.record(time.perf_counter() - start, count_images(batch),
                               threading.current_thread() is threading.main_thread())
        return batch

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()


class Throughput(keras.callbacks.Callback):
    """Measures, per epoch, images per second of the input pipeline and of the training step.

    Use :meth:`wrap` on the dataset given to ``fit`` and pass the object in ``callbacks``.
    After each epoch, :attr:`last` holds ``{"input_images_per_second", "step_images_per_second",
    "images", "workers", "limit"}`` (``limit`` is ``"input"`` or ``"step"``), and
    :meth:`describe` says it in words.

    Example:
      >>> throughput = Throughput()  # doctest: +SKIP
      >>> model.fit(throughput.wrap(batches), callbacks=[throughput])  # doctest: +SKIP
      >>> throughput.describe()  # doctest: +SKIP
      'input 1,850 img/s (4 workers)  step 420 img/s (step-bound)'
    """

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self.workers = 1
        self.in_graph = False
        self._graph_images = 0
        self.last: dict[str, Any] | None = None
        self._reset()

    def wrap(self, batches: keras.utils.PyDataset) -> TimedBatches:
        """``batches`` timed by this object (give the result to ``fit``)."""
        self.workers = max(1, int(batches.workers or 1))
        return TimedBatches(batches, self)

    def _reset(self) -> None:
        with self._lock:
            self._input_seconds = 0.0
            self._main_thread_seconds = 0.0
            self._images = 0
        self._first: float | None = None
        self._last_end: float | None = None

    def record(self, seconds: float, images: int, main_thread: bool) -> None:
        """Adds one batch: ``seconds`` spent producing it, its ``images``, and whether the main
        thread produced it (then the step waited for it)."""
        with self._lock:
            self._input_seconds += seconds
            self._images += images
            if main_thread:
                self._main_thread_seconds += seconds

    def record_in_graph(self, images: int) -> None:
        """Says that the epoch (the one starting, or running) has ``images`` made inside
        ``tf.data``: no Python time to measure, so the step's rate is reported, the input's
        is not."""
        with self._lock:
            self.in_graph = True
            self._graph_images = images

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_train_batch_begin(self, batch, logs=None):
        if self._first is None:
            self._first = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        with self._lock:
            images, input_seconds = self._images, self._input_seconds
            if self.in_graph:
                images = self._graph_images
            main_thread = self._main_thread_seconds
        if not images or self._first is None or self._last_end is None:
            self.last = None
            return
        # threads that all ran share the work: capacity = images per second of one, times them
        workers = self.workers if main_thread < input_seconds else 1
        input_rate = images * workers / input_seconds if input_seconds > 0 else float("inf")
        step_seconds = max(self._last_end - self._first - main_thread, 1e-9)
        step_rate = images / step_seconds
        if self.in_graph:
            self.last = {"input_images_per_second": None, "step_images_per_second": step_rate,
                         "images": images, "workers": None, "limit": "step"}
            return
        self.last = {
            "input_images_per_second": input_rate,
            "step_images_per_second": step_rate,
            "images": images,
            "workers": workers,
            "limit": "input" if input_rate < INPUT_BOUND_RATIO * step_rate else "step",
        }

    def describe(self) -> str:
        """The last epoch's rates in words, or ``""`` before the first epoch ends."""
        if not self.last:
            return ""
        last = self.last
        if last["input_images_per_second"] is None:
            return f"input in tf.data  step {_rate(last['step_images_per_second'])} img/s"
        workers = f" ({last['workers']} worker{'s' if last['workers'] > 1 else ''})"
        return (f"input {_rate(last['input_images_per_second'])} img/s{workers}  "
                f"step {_rate(last['step_images_per_second'])} img/s ({last['limit']}-bound)")


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"
