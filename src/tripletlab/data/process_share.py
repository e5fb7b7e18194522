"""One process's share of every global batch, when several processes (hosts) train together.

Under ``keras.distribution.DataParallel`` with several processes, Keras' JAX trainer builds
each global batch from the rows every process gives it (``jax.make_array_from_process_local_data``):
process ``i`` of ``n`` must give rows ``i * B / n`` to ``(i + 1) * B / n - 1`` of the same
global batch ``B``. Every process runs the same seeded sampler, so they all draw the same global
batches; :class:`ProcessShare` hands Keras this process's rows of each.
"""

from __future__ import annotations

import keras


class ProcessShare(keras.utils.PyDataset):
    """Serves process ``index``'s rows of each batch of ``batches``; it runs with ``batches``'
    ``workers``, ``use_multiprocessing`` and ``max_queue_size``, and forwards
    ``on_epoch_begin`` / ``on_epoch_end``.

    Args:
      batches: a ``PyDataset`` of global batches (tuples of arrays sharing their first axis).
      index: this process's index, from 0.
      count: the number of processes; it divides every batch's rows.

    Raises:
      ValueError: ``index`` not in ``range(count)``.
    """

    def __init__(self, batches: keras.utils.PyDataset, index: int, count: int):
        if not 0 <= index < count:
            raise ValueError(f"Expected a process index in [0, {count}). Received: "
                             f"index={index}")
        super().__init__(workers=batches.workers,
                         use_multiprocessing=batches.use_multiprocessing,
                         max_queue_size=batches.max_queue_size)
        self.batches = batches
        self.index = int(index)
        self.count = int(count)

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_batches(self):
        return self.batches.num_batches

    def __getitem__(self, position):
        batch = self.batches[position]
        return tuple(self.share(part) for part in batch)

    def share(self, rows):
        """This process's equal share of ``rows`` (``None`` stays ``None``)."""
        if rows is None:
            return None
        size, remainder = divmod(len(rows), self.count)
        if remainder:
            raise ValueError(f"Expected a batch divisible by the {self.count} processes. "
                             f"Received: a batch of {len(rows)} rows")
        return rows[self.index * size:(self.index + 1) * size]

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()
