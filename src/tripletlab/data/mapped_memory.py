"""Arrays in their own memory map, so that the memory goes back to the system when they are freed.

Batches of images are decoded by ``PyDataset`` worker threads and freed by the thread that
trains or embeds with them. With glibc's ``malloc``, a block a worker thread allocates comes
from that thread's arena; large blocks are memory-mapped at first, but each one freed raises
``malloc``'s mapping threshold (up to 32 MiB), so later batches come from the arenas, and
blocks freed from another thread leave holes the arenas keep. Measured on JAX: predicting on
16,000 images of 64 × 64 (batches of 256 made by four worker threads, 12 MiB each) ended 660
MiB above where it started, and ``malloc_trim`` then gave back all but 10 MiB of it: freed
memory that glibc's arenas held. :func:`mapped_zeros` gives each batch its own anonymous
memory map, unmapped when the last reference to the array goes: no ``malloc`` setting of the
process is changed.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numpy as np

MAPPED_MIN_BYTES = 1 << 20
"""Arrays of at least this many bytes get their own memory map; smaller ones come from
NumPy's allocator (a map costs a system call and rounds up to whole pages)."""


def mapped_zeros(shape: Sequence[int], dtype=np.float32) -> np.ndarray:
    """A new zero-filled, writable array; when it holds at least :data:`MAPPED_MIN_BYTES`, in
    its own anonymous memory map, returned to the operating system when the array (and every
    view of it) is freed.

    Args:
      shape: the array's shape.
      dtype: its NumPy dtype.

    Returns:
      The array, zero-filled (a new anonymous map is zero pages).

    Example:
      >>> batch = mapped_zeros((256, 64, 64, 3))
      >>> batch.shape, batch.dtype.name, float(batch.max()), batch.flags.writeable
      ((256, 64, 64, 3), 'float32', 0.0, True)
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(size) for size in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MAPPED_MIN_BYTES:
        return np.zeros(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)
