"""How Keras' active distribution splits a batch: into how many slices (one per device), and
which share of it this process feeds (several processes: one per host).

Under ``keras.distribution.DataParallel`` every batch is split along its first axis, one equal
slice per device: ``predict`` needs batches whose size is a multiple of it, and row-wise work on
a global batch runs best in pieces that every device holds a share of.
"""

from __future__ import annotations


def batch_shards() -> int:
    """The number of slices of the batch axis under Keras' active distribution (1 without
    one)."""
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    name = getattr(distribution, "batch_dim_name", None)
    if name not in mesh.axis_names:
        return 1
    return int(mesh.shape[mesh.axis_names.index(name)])


def process_share() -> tuple[int, int]:
    """``(index, count)``: this process and the number of processes that feed one global batch
    together under Keras' active distribution (``(0, 1)`` without one, or on one process)."""
    import keras

    if keras.distribution.distribution() is None or keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()
