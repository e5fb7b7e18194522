"""How many slices Keras' active distribution splits a batch into (1 without one).

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
