"""Row chunks under a data-parallel distribution: each slice takes rows from every device (the
loop's slices follow the rows' split), and the outputs come back in row order, equal to the
rows mined in one piece."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import needs_devices
from tripletlab.mining.chunks import map_row_chunks

pytestmark = needs_devices(4)


def _rows(matrix, numbers):
    # two outputs of different shapes, one of them depending on the row's own values
    import jax.numpy as jnp

    return (jnp.min(matrix, axis=1) + numbers.astype(matrix.dtype),
            jnp.stack([jnp.argmax(matrix, axis=1), numbers], axis=1))


@pytest.mark.parametrize(("rows", "max_elements"), [
    (64, 16 * 32),  # 4 slices of 16 rows
    (64, 10 * 32),  # 10 rows: 8 per slice, no remainder
    (72, 12 * 32),  # 6 slices of 12 rows
    (68, 16 * 32),  # 4 slices of 16 rows and 4 rows left over
])
def test_sharded_chunks_equal_one_piece(rows, max_elements):
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from tripletlab.train.distribution import data_parallel

    matrix = np.random.default_rng(0).standard_normal((rows, 32)).astype("float32")
    numbers = np.arange(rows, dtype="int32")
    expected = _rows(matrix, numbers)
    distribution = data_parallel()
    split = NamedSharding(distribution.device_mesh.backend_mesh, P("batch"))
    with distribution.scope():
        step = jax.jit(lambda m, n: map_row_chunks(_rows, m, n, max_elements=max_elements))
        got = step(jax.device_put(matrix, split), jax.device_put(numbers, split))
    for value, reference in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(value), np.asarray(reference))
