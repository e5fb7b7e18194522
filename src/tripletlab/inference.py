"""Embedding inputs with a trained model: ``model.predict`` as a float32 NumPy array.

Training (the final scores), the retrieval callback and ``tripletlab embed`` all embed through
:func:`embed`, so they get the same numbers from the same model.
"""

from __future__ import annotations

import keras
import numpy as np


def embed(model, x, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
    """``model.predict(x)`` as a float32 NumPy array.

    Args:
      model: a Keras model whose output is the embedding (e.g. ``best.keras``).
      x: its inputs (anything ``model.predict`` accepts).
      batch_size: the ``predict`` batch size.
      verbose: Keras' ``predict`` verbosity (0 silent, 1 progress bar).

    Returns:
      ``[N, D]`` float32 embeddings.
    """
    out = model.predict(x, batch_size=batch_size, verbose=verbose)
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
