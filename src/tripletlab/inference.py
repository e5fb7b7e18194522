"""Embedding inputs with a trained model: ``model.predict`` as a float32 NumPy array.

Training (the final scores), the retrieval callback, the live PCA and ``tripletlab embed`` /
``evaluate`` all embed through :func:`embed`, so they get the same numbers from the same model.
Images that stay on disk (an :class:`~tripletlab.data.ImageFiles`) are decoded batch by batch
(:class:`InputBatches`, with parallel workers), so embedding a large image folder needs memory
for a few batches and the embeddings, not for the images.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from tripletlab.data.image_files import ImageFiles

DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
"""Worker threads that decode image files for ``predict`` (and, in ``tripletlab train``, for
the training batches); threads because Pillow releases the GIL while it decodes (measured with
``benchmarks/bench_input_pipeline.py``)."""


class InputBatches(keras.utils.PyDataset):
    """Inputs ``x`` cut into consecutive batches, for ``model.predict``.

    Args:
      x: an array ``[N, ...]`` or an :class:`~tripletlab.data.ImageFiles` (each batch is
        decoded when it is asked for).
      batch_size: rows per batch (the last batch may be smaller).
      **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
        ``keras.utils.PyDataset``.
    """

    def __init__(self, x: Any, batch_size: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.x = x
        self.batch_size = int(batch_size)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray]:
        start = int(index) * self.batch_size
        return (self.x[start:start + self.batch_size],)


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

    Returns:
      ``[N, D]`` float32 embeddings.
    """
    if isinstance(x, ImageFiles):
        batches = InputBatches(x, batch_size, workers=workers or DEFAULT_WORKERS,
                               use_multiprocessing=False)
        out = model.predict(batches, verbose=verbose)
    else:
        out = model.predict(x, batch_size=batch_size, verbose=verbose)
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
