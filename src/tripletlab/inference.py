"""Embedding inputs with a trained model: ``model.predict`` as a float32 NumPy array.

Training (the final scores), the retrieval callback, the live PCA and ``tripletlab embed`` /
``evaluate`` all embed through :func:`embed`, so they get the same numbers from the same model.
Images that stay on disk (an :class:`~tripletlab.data.ImageFiles`) are decoded batch by batch
(:class:`InputBatches`, with parallel workers), so embedding a large image folder needs memory
for a few batches and the embeddings, not for the images.
"""

from __future__ import annotations

import gc
import math
import os
from typing import Any

import keras
import numpy as np

from tripletlab.batch_sharding import batch_shards, process_share
from tripletlab.data.image_files import ImageFiles

DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
"""Worker threads that decode image files for ``predict`` (and, in ``tripletlab train``, for
the training batches); threads because OpenCV releases the GIL while it decodes and resizes
(measured with ``benchmarks/bench_input_pipeline.py``)."""


class InputBatches(keras.utils.PyDataset):
    """Inputs ``x`` cut into consecutive batches, for ``model.predict``.

    Args:
      x: an array ``[N, ...]`` or an :class:`~tripletlab.data.ImageFiles` (each batch is
        decoded when it is asked for).
      batch_size: rows per batch (the last batch may be smaller).
      multiple_of: the last batch is padded with copies of its last row to a multiple of
        this (the devices of a data-parallel ``predict`` each take an equal slice); the
        caller drops the padded rows' outputs.
      **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
        ``keras.utils.PyDataset``.
    """

    def __init__(self, x: Any, batch_size: int, multiple_of: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.x = x
        self.batch_size = int(batch_size)
        self.multiple_of = int(multiple_of)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray]:
        start = int(index) * self.batch_size
        rows = self.x[start:start + self.batch_size]
        return (padded_rows(rows, self.multiple_of),)


def padded_rows(rows: np.ndarray, multiple_of: int) -> np.ndarray:
    """``rows`` with copies of the last row appended up to a multiple of ``multiple_of``."""
    missing = -len(rows) % multiple_of
    if not missing:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], missing, axis=0)])


def embed(model, x, batch_size: int = 256, verbose: int = 0, *,
          workers: int | None = None) -> np.ndarray:
    """``model.predict(x)`` as a float32 NumPy array.

    Args:
      model: a Keras model whose output is the embedding (e.g. ``best.keras``).
      x: its inputs (anything ``model.predict`` accepts), or an
        :class:`~tripletlab.data.ImageFiles`, decoded one batch at a time.
      batch_size: the ``predict`` batch size.
      verbose: Keras' ``predict`` verbosity (0 silent, 1 progress bar).
      workers: threads that decode an ``ImageFiles`` (default :data:`DEFAULT_WORKERS`).

    Under a data-parallel distribution (:mod:`tripletlab.batch_sharding`) every batch is
    padded to a multiple of the devices and the padded rows' embeddings dropped.

    Returns:
      ``[N, D]`` float32 embeddings.
    """
    shards = batch_shards()
    if shards > 1:
        batch_size = -(-batch_size // shards) * shards
    if process_share()[1] > 1:
        return _embed_across_processes(model, x, batch_size, shards)
    if isinstance(x, ImageFiles):
        return _embed_files(model, x, batch_size, verbose, workers or DEFAULT_WORKERS, shards)
    if shards > 1:  # one input array: distribute refuses the offline triplet network
        x = np.asarray(x)
        out = model.predict(padded_rows(x, shards), batch_size=batch_size, verbose=verbose)
        return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)[:len(x)]
    out = model.predict(x, batch_size=batch_size, verbose=verbose)
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)


def _embed_across_processes(model, x, batch_size: int, shards: int) -> np.ndarray:
    """:func:`embed` when several processes (hosts) share the devices: every process runs this
    with the same ``x``; each batch is built from every process's share of its rows (as in
    training), run through the model's compiled forward pass, and gathered back whole on every
    process (``predict`` cannot return arrays that live on other processes' devices)."""
    import jax
    from jax.experimental import multihost_utils

    index, count = process_share()
    distribution = keras.distribution.distribution()
    forward = jax.jit(lambda trainable, other, rows: model.stateless_call(
        trainable, other, rows, training=False)[0])
    trainable = [variable.value for variable in model.trainable_variables]
    other = [variable.value for variable in model.non_trainable_variables]
    batches = InputBatches(x, batch_size, shards)
    parts = []
    for position in range(len(batches)):
        (rows,) = batches[position]
        share = len(rows) // count
        layout = distribution.get_data_layout(rows.shape).backend_layout
        local = np.asarray(rows[index * share:(index + 1) * share])
        out = forward(trainable, other, jax.make_array_from_process_local_data(layout, local))
        parts.append(np.asarray(multihost_utils.process_allgather(out, tiled=True),
                                dtype=np.float32))
    return np.concatenate(parts)[:len(x)]


EMBED_CHUNK_BATCHES = 16
"""Batches of image files embedded per ``model.predict`` call by :func:`embed`."""


def _embed_files(model, files: ImageFiles, batch_size: int, verbose: int,
                 workers: int, shards: int = 1) -> np.ndarray:
    """:func:`embed` of image files, :data:`EMBED_CHUNK_BATCHES` batches per ``predict`` call.

    One ``predict`` call over every file kept its decoded batches alive until it returned
    (measured on JAX: all of them, freed afterwards by Python's cycle collector), so memory
    grew with the number of images. Chunks of whole batches give the same batches, hence the
    same embeddings, and hold at most a chunk of images.
    """
    chunk = batch_size * EMBED_CHUNK_BATCHES
    bar = keras.utils.Progbar(len(files), unit_name="image") if verbose else None
    parts = []
    for start in range(0, len(files), chunk):
        part = files.subset(slice(start, start + chunk))
        batches = InputBatches(part, batch_size, shards, workers=workers,
                               use_multiprocessing=False)
        out = model.predict(batches, verbose=0)
        parts.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)[:len(part)])
        del batches, out
        gc.collect()  # the chunk's batches, held in reference cycles by predict
        if bar is not None:
            bar.update(min(start + chunk, len(files)))
    return np.concatenate(parts)
