"""Batches for online triplet mining, as ``keras.utils.PyDataset`` objects.

Online mining finds triplets inside each batch, so a batch is useful only when it holds several
classes with several samples each. :class:`PKSampler` guarantees that (P classes × K samples);
:class:`ShuffledBatches` is the plain shuffle-and-batch of the TF Addons triplet-loss tutorial,
for comparison.

Both are random-access (``sampler[i]`` is the same batch until the epoch ends, whatever order
Keras' workers ask for it in), reproducible from ``seed`` (NumPy ``Generator``, no global
state) and draw a different epoch after each ``on_epoch_end``: epoch ``e`` is drawn from
``numpy.random.default_rng([seed, e])``, where ``e`` counts the calls of ``on_epoch_end`` (Keras
3 also calls it once when ``fit`` starts, so ``fit``'s first epoch may be the sampler's epoch 1;
the run is reproducible all the same). ``set_epoch`` jumps to an epoch.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
import numpy as np

from tripletlab import _checks
from tripletlab.data.image_files import ImageFiles


def _check_arrays(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as an array ``[N, ...]`` (an ``ImageFiles`` stays lazy), ``y`` as int32 labels
    ``[N]``."""
    if not isinstance(x, ImageFiles):
        x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"Expected `x` to be an array [N, ...] with N >= 1. "
                         f"Received: x with shape {x.shape}.")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"Expected `y` to be an array of labels [N] (or [N, 1]) with "
                         f"N = len(x) = {len(x)}. Received: y with shape {y.shape}.")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "ui":
        raise TypeError(f"Expected `y` to hold integer class labels. Received: y with dtype "
                        f"{y.dtype}.")
    info = np.iinfo(np.int32)
    if y.min() < info.min or y.max() > info.max:
        raise ValueError(f"Expected the labels `y` to fit in int32. Received: labels from "
                         f"{y.min()} to {y.max()}.")
    return x, y.astype(np.int32)


class _EpochBatches(keras.utils.PyDataset):
    """Epoch bookkeeping shared by the samplers: epoch ``e``'s batches are drawn from
    ``(seed, e)`` by ``_draw_epoch``; subclasses set ``_num_batches`` and define
    ``batch_indices``."""

    _num_batches: int

    def _start_epochs(self) -> None:
        self._epoch = 0
        self._plan = self._draw_epoch(0)

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        return self._num_batches

    def __len__(self) -> int:
        return self._num_batches

    @property
    def epoch(self) -> int:
        """The epoch whose batches ``__getitem__`` returns (0 at first)."""
        return self._epoch

    @property
    def inputs(self) -> Any:
        """The ``x`` the batches are taken from (an array, or an ``ImageFiles``)."""
        return self._x

    @property
    def labels(self) -> np.ndarray:
        """The int32 labels ``[N]`` the batches are taken from."""
        return self._y

    def set_epoch(self, epoch: int) -> None:
        """Jumps to epoch ``epoch`` (for example to resume training reproducibly).

        Args:
          epoch: an integer >= 0.
        """
        _checks.check_number("epoch", epoch, minimum=0, integer=True)
        # the plan first: a worker thread that sees the new epoch reads the new plan
        self._plan = self._draw_epoch(int(epoch))
        self._epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Draws the next epoch's batches (called by Keras after each epoch)."""
        self.set_epoch(self._epoch + 1)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.batch_indices(index)
        x_batch, y_batch = self._x[indices], self._y[indices]
        if self.augment is not None:
            x_batch = self.augment(x_batch, seed=self.augment_seed(index))
        return x_batch, y_batch

    def augment_seed(self, index: int) -> tuple[int, int, int]:
        """``(seed, epoch, batch index)``: what the augmentation of batch ``index`` of the
        current epoch is drawn from (the same batch drawn again is augmented the same way)."""
        return self.seed, self._epoch, _check_index(index, self._num_batches)

    def _set_augment(self, augment: Any) -> None:
        if augment is not None and not callable(augment):
            raise TypeError(f"Expected `augment` to be None or a callable "
                            f"augment(images, seed=...) (e.g. a tripletlab.data.augmentation."
                            f"Augmentation). Received: augment={augment!r}.")
        self.augment = augment

    def batch_indices(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw_epoch(self, epoch: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class PKSampler(_EpochBatches):
    """Batches of P classes × K samples each, for online triplet mining.

    Every batch holds ``classes_per_batch`` (P) distinct classes and ``samples_per_class``
    (K) samples of each, in class blocks, so it always contains valid triplets (P >= 2, K >= 2).
    The classes of a batch are the next P of a stream of shuffled permutations of all classes
    (so every class is used equally often, and never twice in a batch); the samples of a class
    are the next K of its own stream of shuffled permutations (so every sample of a class is
    used once before any is used again). Classes with fewer than K samples are drawn with
    replacement: with the default ``replace=None`` that happens with one warning, at
    construction; with ``replace=False`` it is an error; ``replace=True`` draws every class
    with replacement.

    Args:
      x: the inputs, an array ``[N, ...]`` (batches are ``x[indices]``), or an
        :class:`~tripletlab.data.ImageFiles` (each batch is decoded when it is drawn; pass
        ``workers`` to decode several batches in parallel).
      y: integer class labels ``[N]`` (or ``[N, 1]``); at least P distinct classes.
      classes_per_batch: P, an integer >= 2.
      samples_per_class: K, an integer >= 2.
      steps_per_epoch: batches per epoch; default ``max(1, N // (P * K))``.
      seed: the seed (an integer >= 0); epoch ``e`` uses ``default_rng([seed, e])``.
      replace: ``None`` (small classes with replacement, with a warning), ``False`` (small
        classes are an error) or ``True`` (every class with replacement).
      augment: ``None``, or a callable ``augment(x_batch, seed=(seed, epoch, index))`` that
        returns the batch transformed (a :class:`tripletlab.data.augmentation.Augmentation`):
        applied to every batch this sampler returns, so give it to training batches only.
      **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``, passed to
        ``keras.utils.PyDataset``.

    Returns:
      A ``PyDataset`` whose items are ``(x_batch, y_batch)`` with ``P * K`` rows; ``y_batch``
      is int32.

    Raises:
      ValueError: P or K below 2, fewer than P classes, ``x`` and ``y`` of different lengths,
        a bad ``steps_per_epoch``, or (``replace=False``) classes with fewer than K samples
        (the message names them).
      TypeError: non-integer labels or arguments of the wrong type.

    Example:
      >>> import numpy as np
      >>> from tripletlab.data import PKSampler
      >>> x = np.random.default_rng(0).random((100, 8, 8, 1), dtype="float32")
      >>> y = np.arange(100) % 5
      >>> sampler = PKSampler(x, y, classes_per_batch=4, samples_per_class=3, seed=0)
      >>> x_batch, y_batch = sampler[0]
      >>> x_batch.shape, np.unique(y_batch, return_counts=True)[1].tolist()
      ((12, 8, 8, 1), [3, 3, 3, 3])
      >>> # model.fit(sampler, epochs=10)
    """

    def __init__(self, x: Any, y: Any, classes_per_batch: int, samples_per_class: int, *,
                 steps_per_epoch: int | None = None, seed: int = 0,
                 replace: bool | None = None, augment: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_augment(augment)
        _checks.check_number("classes_per_batch", classes_per_batch, minimum=2, integer=True)
        _checks.check_number("samples_per_class", samples_per_class, minimum=2, integer=True)
        _checks.check_number("seed", seed, minimum=0, integer=True)
        if replace is not None:
            _checks.check_bool("replace", replace)
        self._x, self._y = _check_arrays(x, y)
        self.classes_per_batch = int(classes_per_batch)
        self.samples_per_class = int(samples_per_class)
        self.seed = int(seed)
        self.replace = replace

        # Index tables, built once: the samples of class ``classes[c]`` are
        # ``order[starts[c]:starts[c] + counts[c]]``.
        self.classes, counts = np.unique(self._y, return_counts=True)
        if len(self.classes) < self.classes_per_batch:
            raise ValueError(f"Expected at least classes_per_batch={self.classes_per_batch} "
                             f"distinct classes in `y`. Received: {len(self.classes)} "
                             f"class(es).")
        order = np.argsort(self._y, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._class_indices = tuple(order[s:s + n] for s, n in zip(starts, counts, strict=True))

        small = counts < self.samples_per_class
        if small.any() and replace is False:
            raise ValueError(
                f"Expected every class to have at least samples_per_class="
                f"{self.samples_per_class} samples with replace=False. Received: classes "
                f"{self.classes[small].tolist()} with {counts[small].tolist()} samples. Pass "
                f"replace=None or True to sample them with replacement.")
        if small.any() and replace is None:
            warnings.warn(
                f"{int(small.sum())} class(es) have fewer than samples_per_class="
                f"{self.samples_per_class} samples and are drawn with replacement: "
                f"{self.classes[small][:10].tolist()}{' ...' if small.sum() > 10 else ''}. "
                f"Pass replace=True to silence this, or replace=False to forbid it.",
                UserWarning, stacklevel=2)
        self._with_replacement = np.ones_like(small) if replace else small

        batch = self.classes_per_batch * self.samples_per_class
        if steps_per_epoch is None:
            steps_per_epoch = max(1, len(self._y) // batch)
        _checks.check_number("steps_per_epoch", steps_per_epoch, minimum=1, integer=True)
        self.steps_per_epoch = int(steps_per_epoch)
        self._num_batches = self.steps_per_epoch
        self._start_epochs()

    def batch_indices(self, index: int) -> np.ndarray:
        """The rows of ``x`` in batch ``index`` of the current epoch, ``[P * K]``."""
        return self._plan[_check_index(index, self.steps_per_epoch)].copy()

    def _draw_epoch(self, epoch: int) -> np.ndarray:
        """The index plan ``[steps_per_epoch, P * K]`` of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        num_classes = len(self.classes)
        p, k = self.classes_per_batch, self.samples_per_class
        plan = np.empty((self.steps_per_epoch, p * k), dtype=np.int64)

        class_cycle = rng.permutation(num_classes)
        class_cursor = 0
        sample_cycles: dict[int, np.ndarray] = {}
        sample_cursors: dict[int, int] = {}
        for step in range(self.steps_per_epoch):
            if class_cursor + p > num_classes:
                class_cycle = _next_cycle(rng, class_cycle[class_cursor:], num_classes, p)
                class_cursor = 0
            chosen = class_cycle[class_cursor:class_cursor + p]
            class_cursor += p
            for slot, c in enumerate(chosen.tolist()):
                members = self._class_indices[c]
                if self._with_replacement[c]:
                    picked = rng.choice(members, size=k, replace=True)
                else:
                    cursor = sample_cursors.get(c, len(members))
                    if cursor + k > len(members):
                        rest = sample_cycles[c][cursor:] if c in sample_cycles else []
                        rest = np.asarray(rest, dtype=np.int64)
                        sample_cycles[c] = _next_cycle(rng, rest, len(members), k)
                        cursor = 0
                    picked = members[sample_cycles[c][cursor:cursor + k]]
                    sample_cursors[c] = cursor + k
                plan[step, slot * k:(slot + 1) * k] = picked
        return plan


class ShuffledBatches(_EpochBatches):
    """Plain shuffled batches, as in the TF Addons triplet-loss tutorial.

    Each epoch is one random permutation of the data cut into batches of ``batch_size``; the
    last batch is smaller unless ``drop_remainder``. Nothing guarantees that a batch has
    several samples of a class: with many classes and small batches, online mining finds few
    valid triplets (use :class:`PKSampler` then).

    Args:
      x: the inputs, an array ``[N, ...]``, or an :class:`~tripletlab.data.ImageFiles`.
      y: integer class labels ``[N]`` (or ``[N, 1]``).
      batch_size: an integer >= 1.
      seed: the seed (an integer >= 0); epoch ``e`` uses ``default_rng([seed, e])``.
      drop_remainder: drop the last, smaller batch.
      augment: ``None``, or a callable ``augment(x_batch, seed=(seed, epoch, index))`` that
        returns the batch transformed (a :class:`tripletlab.data.augmentation.Augmentation`):
        applied to every batch this sampler returns, so give it to training batches only.
      **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``, passed to
        ``keras.utils.PyDataset``.

    Returns:
      A ``PyDataset`` whose items are ``(x_batch, y_batch)``; ``y_batch`` is int32.

    Raises:
      ValueError: ``x`` and ``y`` of different lengths, ``batch_size`` below 1, or
        ``drop_remainder`` with fewer than ``batch_size`` samples.
      TypeError: non-integer labels or arguments of the wrong type.

    Example:
      >>> import numpy as np
      >>> from tripletlab.data import ShuffledBatches
      >>> batches = ShuffledBatches(np.zeros((10, 4)), np.arange(10) % 2, batch_size=4)
      >>> len(batches), [len(batches[i][1]) for i in range(len(batches))]
      (3, [4, 4, 2])
    """

    def __init__(self, x: Any, y: Any, batch_size: int, *, seed: int = 0,
                 drop_remainder: bool = False, augment: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_augment(augment)
        _checks.check_number("batch_size", batch_size, minimum=1, integer=True)
        _checks.check_number("seed", seed, minimum=0, integer=True)
        _checks.check_bool("drop_remainder", drop_remainder)
        self._x, self._y = _check_arrays(x, y)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_remainder = drop_remainder
        rounding = math.floor if drop_remainder else math.ceil
        self._num_batches = rounding(len(self._y) / self.batch_size)
        if self._num_batches == 0:
            raise ValueError(f"Expected at least batch_size={self.batch_size} samples with "
                             f"drop_remainder=True. Received: {len(self._y)} samples.")
        self._start_epochs()

    def batch_indices(self, index: int) -> np.ndarray:
        """The rows of ``x`` in batch ``index`` of the current epoch."""
        index = _check_index(index, self._num_batches)
        return self._plan[index * self.batch_size:(index + 1) * self.batch_size].copy()

    def _draw_epoch(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self._y))


def _next_cycle(rng: np.random.Generator, rest: np.ndarray, size: int, take: int) -> np.ndarray:
    """The unused ``rest`` of a cycle over ``range(size)``, then a fresh permutation of it.

    The fresh permutation is reordered so that its first ``take - len(rest)`` entries avoid
    ``rest``: the next ``take`` entries are then distinct. The stream of entries stays a
    concatenation of whole permutations, so every entry is used equally often.
    """
    fresh = rng.permutation(size)
    front = np.flatnonzero(~np.isin(fresh, rest))[:take - len(rest)]
    back = np.ones(size, dtype=bool)
    back[front] = False
    return np.concatenate([rest, fresh[front], fresh[back]]).astype(np.int64)


def _check_index(index: Any, length: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"Expected a batch index of type int. Received: {index!r}.")
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"Expected a batch index in [0, {length}). Received: {index}.")
    return index
