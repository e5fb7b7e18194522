"""Offline triplets: (anchor, positive, negative) batches built in Python, for a Siamese network.

:class:`TripletGenerator` is the data side of the offline workflow (Keras' "Siamese Network with
Triplet Loss" example): it yields ``((anchors, positives, negatives), dummy_targets)`` batches
for :class:`tripletlab.models.TripletNetwork` trained with
:class:`tripletlab.losses.offline.TripletLoss`. Two strategies:

* ``"random"``: a random valid triplet per anchor; every sample of a class with at least two
  samples is an anchor once per epoch (a seeded permutation), its positive is a uniformly drawn
  other sample of its class and its negative a uniformly drawn sample of another class.
* ``"hard"``: offline hard mining. Every ``refresh_every`` batches a random pool of
  ``pool_size`` samples is embedded with the model being trained, and each anchor drawn from the
  pool gets the hardest positive (farthest same-class sample) and the hardest negative (nearest
  other-class sample) of the pool, or with ``semi_hard=True`` the nearest negative farther than
  that positive.

Class index tables are built once in the constructor, so a batch costs O(batch_size) (plus the
pool's O(pool_size²) distances at a refresh in hard mode), never a scan of all labels.
"""

from __future__ import annotations

import math
import threading

import keras
import numpy as np

from tripletlab._checks import check_bool, check_choice, check_number
from tripletlab.data.image_files import ImageFiles
from tripletlab.models.triplet_network import extract_embedding_model
from tripletlab.numpy_distances import DISTANCES, pairwise_distances

STRATEGIES = ("random", "hard")
"""The triplet selection strategies of :class:`TripletGenerator`."""

MINING_DISTANCES = DISTANCES
"""Distances the hard mining can rank by (those of ``TripletLoss``)."""


def pool_distances(embeddings, distance="L2"):
    """NumPy (float64) ``[P, P]`` distance matrix used to rank the mining pool.

    Same definitions as :mod:`tripletlab.distances` and ``TripletLoss``; computed in NumPy (by
    :func:`tripletlab.numpy_distances.pairwise_distances`) so the data pipeline never touches
    the training backend.

    Args:
      embeddings: ``[P, D]`` array.
      distance: one of :data:`MINING_DISTANCES`.

    Returns:
      A float64 ``[P, P]`` array with a zero diagonal.

    Raises:
      ValueError: ``distance`` is unknown or ``embeddings`` is not 2-D.

    Example:
      >>> import numpy as np
      >>> from tripletlab.data.triplets import pool_distances
      >>> pool_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), "L2").tolist()
      [[0.0, 5.0], [5.0, 0.0]]
    """
    return pairwise_distances(embeddings, distance)


def _weights_detached(model):
    """Whether Keras' JAX trainer has detached ``model``'s weights (inside a ``fit`` epoch).

    During a JAX ``fit`` epoch the trained values live in the trainer's state and the variables
    are emptied (``_value is None``); a ``predict`` then silently reads placeholders.
    """
    if keras.backend.backend() != "jax":
        return False
    return any(getattr(v, "_value", 0) is None for v in getattr(model, "variables", ()))


class TripletGenerator(keras.utils.PyDataset):
    """Yields ``((anchors, positives, negatives), zeros)`` batches of valid triplets.

    Every triplet satisfies ``label(positive) == label(anchor) != label(negative)`` and
    ``positive`` is a different sample (index) from ``anchor``. Classes with a single sample
    cannot be anchors (they have no positive); their samples still serve as negatives.

    Batches are reproducible: in ``"random"`` mode batch ``index`` depends only on
    ``(seed, epoch, index)`` (so also with ``fit(shuffle=True)`` or several worker threads); the
    counter :attr:`epoch` advances in :meth:`on_epoch_end`, which ``fit`` calls. In ``"hard"``
    mode the pool of refresh ``r`` is drawn from ``(seed, r)`` and the anchors of batch
    ``index`` from ``(seed, epoch, index)``, so the triplets are reproducible for fixed model
    weights.

    **Hard mode** embeds the pool with the model being trained, so the mining adapts as it
    learns. Give it the :class:`~tripletlab.models.TripletNetwork` being fit (or its
    embedding model) and let :meth:`mining_callback` drive the refreshes during ``fit``::

        gen = TripletGenerator(x, y, 64, strategy="hard", embedding_model=net)
        net.fit(gen, epochs=10, callbacks=[gen.mining_callback()])

    The callback re-mines every ``refresh_every`` training steps, between steps, in the main
    thread, with the weights of that step. It is required on JAX: Keras' JAX trainer detaches
    the weights from the variables during an epoch, so the generator cannot embed from inside
    the input pipeline (it raises a ``RuntimeError`` rather than mine with placeholders). On
    TensorFlow and PyTorch the generator can also refresh by itself, every ``refresh_every``
    batches it serves (outside ``fit`` too); batches prefetched by the input pipeline may then
    be mined with weights a few steps old.

    Args:
      x: inputs, an array ``[N, ...]`` (NumPy array, memory map or anything ``np.asarray``
        accepts); batches are ``x[indices]``, in ``x``'s dtype.
      y: labels ``[N]`` or ``[N, 1]`` (integers, or any values ``np.unique`` can sort).
      batch_size: triplets per batch.
      steps_per_epoch: batches per epoch; default ``ceil(number of anchor samples /
        batch_size)``, i.e. every usable sample is an anchor about once per epoch.
      strategy: ``"random"`` or ``"hard"``.
      seed: seed of the ``np.random.Generator`` streams.
      embedding_model: hard mode: the model that embeds the pool (anything with
        ``predict(x, batch_size=..., verbose=0)`` returning ``[P, D]``), or the
        ``TripletNetwork`` whose ``embedding_model`` is used. May be set later with
        :meth:`set_embedding_model` (before the first batch); ignored in random mode.
      refresh_every: hard mode: training steps (with the callback) or served batches (without)
        between two pool refreshes.
      pool_size: hard mode: samples embedded at each refresh (at most ``N``).
      semi_hard: hard mode: pick the nearest negative farther than the (hardest) positive
        instead of the nearest negative; when no negative is farther, fall back to the hardest
        (nearest) negative.
      margin: the loss margin, used only for :attr:`mining_statistics` (``fraction_active``);
        it does not change which triplets are mined.
      distance: the distance that ranks candidates in hard mode, one of :data:`MINING_DISTANCES`
        (use the ``TripletLoss``'s distance).
      **pydataset_kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` for
        ``keras.utils.PyDataset``.

    Attributes:
      driven_by_callback: hard mode: whether a :class:`HardMiningCallback` drives the pool
        refreshes (``True`` from its ``on_train_begin`` to its ``on_train_end``). While it is
        ``True`` the generator never refreshes by itself (it only mines a first pool if it has
        none); set it yourself only to drive :meth:`refresh` by hand.

    Raises:
      ValueError: an argument is out of range, ``x`` and ``y`` differ in length, ``y`` has
        fewer than two classes or no class with two samples, or ``strategy="hard"`` with
        ``use_multiprocessing=True`` (a child process would embed with a stale copy of the
        model).
      TypeError: an argument has the wrong type.

    Example:
      >>> import numpy as np
      >>> from tripletlab.data.triplets import TripletGenerator
      >>> x = np.arange(12, dtype="float32").reshape(6, 2)
      >>> y = np.array([0, 0, 1, 1, 2, 2])
      >>> (a, p, n), targets = TripletGenerator(x, y, batch_size=4, seed=1)[0]
      >>> a.shape, p.shape, n.shape, targets.shape
      ((4, 2), (4, 2), (4, 2), (4,))

      Training a Siamese network with offline hard mining::

          net = TripletNetwork(embedding_model)
          net.compile(optimizer="adam", loss=TripletLoss(margin=0.5))
          gen = TripletGenerator(x, y, 64, strategy="hard", embedding_model=net,
                                 refresh_every=20, pool_size=2048, margin=0.5)
          net.fit(gen, epochs=10, callbacks=[gen.mining_callback()])
          embeddings = net.embedding_model.predict(x)
    """

    def __init__(self, x, y, batch_size, *, steps_per_epoch=None, strategy="random", seed=0,
                 embedding_model=None, refresh_every=10, pool_size=1024, semi_hard=False,
                 margin=1.0, distance="L2", **pydataset_kwargs):
        super().__init__(**pydataset_kwargs)
        self.batch_size = int(check_number("batch_size", batch_size, minimum=1, integer=True))
        if steps_per_epoch is not None:
            steps_per_epoch = int(check_number("steps_per_epoch", steps_per_epoch, minimum=1,
                                               integer=True))
        self.strategy = check_choice("strategy", strategy, STRATEGIES)
        self.seed = int(check_number("seed", seed, minimum=0, integer=True))
        self.refresh_every = int(check_number("refresh_every", refresh_every, minimum=1,
                                              integer=True))
        self.pool_size = int(check_number("pool_size", pool_size, minimum=3, integer=True))
        self.semi_hard = check_bool("semi_hard", semi_hard)
        self.margin = check_number("margin", margin, minimum=0.0)
        self.distance = check_choice("distance", distance, MINING_DISTANCES)
        if self.strategy == "hard" and self.use_multiprocessing:
            raise ValueError("Expected `use_multiprocessing=False` with strategy='hard' (the pool "
                             "is embedded with the model being trained, which a child process "
                             "cannot see). Received: use_multiprocessing=True. Use threads: "
                             "workers=N, use_multiprocessing=False.")

        self._x = x if isinstance(x, (np.ndarray, ImageFiles)) else np.asarray(x)
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise ValueError(f"Expected `y` to have shape [N] or [N, 1]. "
                             f"Received: y with shape {np.asarray(y).shape}.")
        if self._x.ndim == 0 or len(self._x) != len(labels):
            raise ValueError("Expected `x` and `y` to have the same number of samples. "
                             f"Received: x with shape {self._x.shape}, y with shape "
                             f"{np.asarray(y).shape}.")

        # Class index tables, built once: the samples sorted by class, class c being the slice
        # `_order[_starts[c] : _starts[c] + _counts[c]]`; `_rank[i]` is i's slot in its slice.
        self.classes, codes = np.unique(labels, return_inverse=True)
        self._codes = codes.reshape(-1).astype(np.int64)
        self._counts = np.bincount(self._codes, minlength=len(self.classes))
        self._order = np.argsort(self._codes, kind="stable")
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._rank = np.empty_like(self._order)
        sorted_codes = self._codes[self._order]
        self._rank[self._order] = np.arange(len(self._order)) - self._starts[sorted_codes]
        self.anchor_indices = np.flatnonzero(self._counts[self._codes] >= 2)
        self.single_sample_classes = self.classes[self._counts == 1]
        if len(self.classes) < 2:
            raise ValueError("Expected `y` to contain at least 2 classes (a negative must come "
                             f"from another class). Received: {len(self.classes)} class(es).")
        if len(self.anchor_indices) == 0:
            raise ValueError("Expected at least one class with 2 or more samples (an anchor "
                             "needs a positive; single-sample classes serve only as negatives). "
                             f"Received: {len(self.classes)} classes of 1 sample each.")
        self._steps_per_epoch = steps_per_epoch or math.ceil(
            len(self.anchor_indices) / self.batch_size)

        self._epoch = 0
        self._permutation_cache = None
        self._lock = threading.RLock()
        self._served = 0            # hard-mode batches served (self-driven refresh schedule)
        self._served_block = None   # `_served // refresh_every` when the pool was last mined
        self._num_refreshes = 0
        self._pool = None
        self._mining_statistics = None
        self.driven_by_callback = False
        self._model = None
        self.dataset = None  # the loaded Dataset when built by `from_image_folder`
        if embedding_model is not None:
            self.set_embedding_model(embedding_model)

    @classmethod
    def from_image_folder(cls, path, batch_size, *, split="train", split_seed=0,
                          test_fraction=0.2, image_size=None, **kwargs):
        """Builds a generator on a folder with one sub-folder of images per class.

        The folder is read with ``tripletlab.data.load_dataset("image-folder", ...)`` (OpenCV;
        images capped in size, float32 in ``[0, 1]``, ``[N, H, W, C]``) and split into train and
        test sets stratified by class; the generator serves the chosen split and keeps the whole
        :class:`~tripletlab.data.Dataset` in :attr:`dataset` (for example to evaluate on the
        other split).

        Args:
          path: the folder (one sub-folder per class).
          batch_size: triplets per batch.
          split: ``"train"`` or ``"test"``: the split the triplets are drawn from.
          split_seed: the seed of the stratified split.
          test_fraction: the share of each class put in the test split, in ``(0, 1)``.
          image_size: ``(height, width)`` (or one int) every image is resized to; default: the
            first image's size.
          **kwargs: the other :class:`TripletGenerator` arguments (``strategy``, ``seed``,
            ``embedding_model``, ...).

        Returns:
          A :class:`TripletGenerator` whose :attr:`dataset` is the loaded data set.

        Raises:
          ValueError: a bad ``split`` or folder (see ``load_dataset``), or any error of the
            constructor.
          FileNotFoundError: ``path`` does not exist.
          ImportError: Pillow, OpenCV or scikit-learn is missing (``pip install
            "tripletlab[data]"``).

        Example:
          >>> gen = TripletGenerator.from_image_folder("photos/", 32)  # doctest: +SKIP
          >>> gen.dataset.class_names  # doctest: +SKIP
        """
        from tripletlab.data.datasets import load_dataset

        check_choice("split", split, ("train", "test"))
        dataset = load_dataset("image-folder", image_folder=path, seed=split_seed,
                               test_fraction=test_fraction, image_size=image_size)
        generator = cls(getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}"),
                        batch_size, **kwargs)
        generator.dataset = dataset
        return generator

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_lock"] = None  # locks do not pickle (worker processes in random mode)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------- properties
    @property
    def num_samples(self):
        """Number of samples ``N``."""
        return len(self._codes)

    @property
    def epoch(self):
        """The epoch counter that seeds the batches: the number of :meth:`on_epoch_end` calls so
        far (Keras may signal extra boundaries, e.g. before the first epoch of ``fit``, so it
        counts re-draws rather than ``fit``'s epoch number)."""
        return self._epoch

    @property
    def embedding_model(self):
        """What was set to embed the pool in hard mode (``None`` until set)."""
        return self._model

    @property
    def mining_statistics(self):
        """Statistics of the last mined pool, or ``None`` before the first refresh.

        A dict with ``refresh`` (refresh number, from 0), ``pool_size``, ``num_anchors`` (pool
        members with a positive and a negative in the pool), ``mean_positive_distance`` (mean
        d(a, p) over the mined triplets), ``mean_negative_distance`` (mean d(a, n)),
        ``fraction_active`` (fraction with d(a, p) − d(a, n) + margin > 0) and
        ``fraction_semi_hard`` (fraction whose negative is farther than its positive).
        """
        return None if self._mining_statistics is None else dict(self._mining_statistics)

    @property
    def has_pool(self):
        """Whether a mined pool is ready (hard mode): ``False`` before the first
        :meth:`refresh` and after :meth:`set_embedding_model`."""
        return self._pool is not None

    def set_embedding_model(self, model):
        """Sets the model that embeds the mining pool (hard mode); the next batch re-mines.

        Args:
          model: the :class:`~tripletlab.models.TripletNetwork` being trained (its
            ``embedding_model`` embeds) or any model with ``predict(x, batch_size=...,
            verbose=0)`` returning ``[P, D]``.

        Raises:
          TypeError: ``model`` has no callable ``predict``.
        """
        if not callable(getattr(extract_embedding_model(model, strict=False), "predict", None)):
            raise TypeError("Expected `embedding_model` to have a `predict` method (a Keras "
                            f"model). Received: embedding_model of type {type(model).__name__}.")
        with self._lock:
            self._model = model
            self._pool = None

    def mining_callback(self):
        """Returns the Keras callback that re-mines the pool during ``fit`` (hard mode).

        Returns:
          A :class:`HardMiningCallback` for this generator: pass it in ``fit(callbacks=...)``.

        Raises:
          ValueError: the generator's strategy is not ``"hard"``.
        """
        if self.strategy != "hard":
            raise ValueError("Expected strategy='hard' for a mining callback. "
                             f"Received: strategy={self.strategy!r}.")
        return HardMiningCallback(self)

    def refresh(self):
        """Draws a new pool, embeds it with the current model and mines its triplets now.

        Raises:
          RuntimeError: no embedding model is set, the model's weights are detached (JAX inside
            a ``fit`` epoch: use :meth:`mining_callback`), or the pool has no usable anchor.
        """
        with self._lock:
            self._pool = self._mine_pool(self._num_refreshes)
            self._num_refreshes += 1

    # ----------------------------------------------------------------------------- PyDataset
    def __len__(self):
        return self._steps_per_epoch

    def on_epoch_end(self):
        """Advances the epoch counter: the next batches are new triplets."""
        self._epoch += 1

    def __getitem__(self, index):
        """Returns batch ``index``: ``((anchors, positives, negatives), zeros[batch_size])``."""
        anchors, positives, negatives = self.triplet_indices(index)
        targets = np.zeros((self.batch_size,), dtype="float32")
        return (self._x[anchors], self._x[positives], self._x[negatives]), targets

    def triplet_indices(self, index):
        """Like ``self[index]`` but returns the sample indices ``(anchors, positives, negatives)``.

        Consumes a batch (advances the hard-mode refresh schedule) exactly like ``self[index]``.
        """
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"Expected `index` in [0, {len(self)}). Received: index={index}.")
        epoch = self._epoch
        rng = np.random.default_rng((self.seed, 0, epoch, index))
        if self.strategy == "random":
            return self._random_triplets(index, epoch, rng)
        return self._hard_triplets(rng)

    # ----------------------------------------------------------------------------- sampling
    def _anchor_permutation(self, epoch, cycle):
        key = (epoch, cycle)
        cached = self._permutation_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        rng = np.random.default_rng((self.seed, 2, epoch, cycle))
        permutation = rng.permutation(self.anchor_indices)
        self._permutation_cache = (key, permutation)
        return permutation

    def _random_triplets(self, index, epoch, rng):
        # Anchors: consecutive slices of per-epoch permutations of the anchor samples.
        positions = index * self.batch_size + np.arange(self.batch_size)
        cycles, offsets = np.divmod(positions, len(self.anchor_indices))
        anchors = np.empty(self.batch_size, dtype=np.int64)
        for cycle in np.unique(cycles):
            chosen = cycles == cycle
            anchors[chosen] = self._anchor_permutation(epoch, int(cycle))[offsets[chosen]]
        classes = self._codes[anchors]
        counts = self._counts[classes]
        starts = self._starts[classes]
        # Positive: one of the counts - 1 other members of the class (skip the anchor's slot).
        slot = rng.integers(0, counts - 1)
        slot = slot + (slot >= self._rank[anchors])
        positives = self._order[starts + slot]
        # Negative: uniform over the N - count samples outside the class slice.
        other = rng.integers(0, self.num_samples - counts)
        negatives = self._order[np.where(other < starts, other, other + counts)]
        return anchors, positives, negatives

    def _hard_triplets(self, rng):
        with self._lock:
            block = self._served // self.refresh_every
            self._served += 1
            due = not self.driven_by_callback and block != self._served_block
            if self._pool is None or due:
                self.refresh()
                self._served_block = block
            pool = self._pool
        num = len(pool["anchors"])
        rows = rng.choice(num, size=self.batch_size, replace=num < self.batch_size)
        return pool["anchors"][rows], pool["positives"][rows], pool["negatives"][rows]

    def _embed(self, indices):
        if self._model is None:
            raise RuntimeError("strategy='hard' needs the model being trained: pass "
                               "`embedding_model=` to TripletGenerator, call "
                               "`set_embedding_model(model)`, or fit a TripletNetwork with "
                               "`callbacks=[generator.mining_callback()]`.")
        embedder = extract_embedding_model(self._model, strict=False)
        if _weights_detached(embedder):
            raise RuntimeError("The embedding model's weights are detached by Keras' JAX trainer "
                               "during a fit epoch, so the generator cannot embed the pool from "
                               "the input pipeline. Pass `callbacks=[generator.mining_callback()]`"
                               " to fit: it re-mines between steps with the current weights.")
        batch_size = max(32, 3 * self.batch_size)  # the forward size of one training step
        embeddings = embedder.predict(self._x[indices], batch_size=batch_size, verbose=0)
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or len(embeddings) != len(indices):
            raise ValueError("Expected the embedding model to return [P, D] embeddings. "
                             f"Received: shape={embeddings.shape} for P={len(indices)}.")
        return embeddings

    def _mine_pool(self, refresh):
        rng = np.random.default_rng((self.seed, 1, refresh))
        size = min(self.pool_size, self.num_samples)
        pool = np.sort(rng.choice(self.num_samples, size=size, replace=False))
        distances = pool_distances(self._embed(pool), self.distance)
        codes = self._codes[pool]
        same = codes[:, None] == codes[None, :]
        positive_mask = same & ~np.eye(size, dtype=bool)
        negative_mask = ~same
        rows = np.flatnonzero(positive_mask.any(axis=1) & negative_mask.any(axis=1))
        if len(rows) == 0:
            raise RuntimeError(f"The mining pool of {size} samples has no anchor with both a "
                               "positive and a negative in it. Increase `pool_size` (classes "
                               "must recur in the pool).")
        distances = distances[rows]
        positive_mask, negative_mask = positive_mask[rows], negative_mask[rows]
        row = np.arange(len(rows))
        hardest_positive = np.argmax(np.where(positive_mask, distances, -np.inf), axis=1)
        positive_distance = distances[row, hardest_positive]
        chosen_negative = np.argmin(np.where(negative_mask, distances, np.inf), axis=1)
        if self.semi_hard:
            farther = negative_mask & (distances > positive_distance[:, None])
            semi_hard = np.argmin(np.where(farther, distances, np.inf), axis=1)
            chosen_negative = np.where(farther.any(axis=1), semi_hard, chosen_negative)
        negative_distance = distances[row, chosen_negative]
        self._mining_statistics = {
            "refresh": int(refresh),
            "pool_size": int(size),
            "num_anchors": int(len(rows)),
            "mean_positive_distance": float(np.mean(positive_distance)),
            "mean_negative_distance": float(np.mean(negative_distance)),
            "fraction_active": float(np.mean(positive_distance - negative_distance
                                             + self.margin > 0)),
            "fraction_semi_hard": float(np.mean(negative_distance > positive_distance)),
        }
        return {
            "anchors": pool[rows],
            "positives": pool[hardest_positive],
            "negatives": pool[chosen_negative],
        }


class HardMiningCallback(keras.callbacks.Callback):
    """Re-mines a hard-mode :class:`TripletGenerator`'s pool every ``refresh_every`` steps of
    ``fit``, between steps, with the weights of that step.

    Create it with :meth:`TripletGenerator.mining_callback`. While it is attached the generator
    does not refresh by itself. On JAX, reading ``self.model`` syncs the trainer's state into
    the variables first (Keras' callback contract), so the pool is embedded with the current
    weights.

    Args:
      generator: a ``TripletGenerator`` with ``strategy="hard"``.

    Raises:
      ValueError: the generator's strategy is not ``"hard"``.

    Example:
      ::

          gen = TripletGenerator(x, y, 64, strategy="hard", embedding_model=net,
                                 refresh_every=20)
          net.fit(gen, epochs=5, callbacks=[gen.mining_callback()])
          print(gen.mining_statistics)
    """

    def __init__(self, generator):
        super().__init__()
        if not isinstance(generator, TripletGenerator) or generator.strategy != "hard":
            raise ValueError("Expected a TripletGenerator with strategy='hard'. Received: "
                             f"generator={generator!r}.")
        self.generator = generator
        self._steps = 0

    def _check_model(self):
        _ = self.model  # on JAX, reading this property syncs the trained weights into variables
        if self.generator.embedding_model is None:
            raise RuntimeError("The generator has no embedding model: pass `embedding_model=` "
                               "(the TripletNetwork being fit) to TripletGenerator.")

    def on_train_begin(self, logs=None):
        self._steps = 0
        self._check_model()
        self.generator.driven_by_callback = True
        if not self.generator.has_pool:
            self.generator.refresh()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self._steps % self.generator.refresh_every == 0:
            self._check_model()
            self.generator.refresh()

    def on_train_end(self, logs=None):
        self.generator.driven_by_callback = False
