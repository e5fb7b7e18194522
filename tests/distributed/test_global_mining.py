"""Under data-parallel training the mining losses see the global batch: on a 4-device mesh
with inputs split along the batch axis, each loss gives the value and gradients of one device,
and ``fit`` hands the loss every row of a P×K batch at once."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tripletlab as tl
from conftest import needs_devices

pytestmark = needs_devices(4)

LOSSES = ("TripletSemiHardLoss", "TripletHardLoss", "TripletBatchAllLoss")


def _batch(size=64, dim=8, classes=16):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), size // classes).astype("int32")
    return labels, rng.standard_normal((size, dim)).astype("float32")


@pytest.mark.parametrize("name", LOSSES)
def test_sharded_value_and_gradients_equal_one_device(name):
    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    labels, embeddings = _batch()
    loss = getattr(tl.losses, name)()
    step = jax.jit(jax.value_and_grad(lambda e, y: loss(y, e)))
    one = jax.devices()[0]
    value, gradient = step(jax.device_put(embeddings, one), jax.device_put(labels, one))

    rows = NamedSharding(Mesh(np.array(jax.devices()[:4]), ("batch",)), P("batch"))
    sharded_value, sharded_gradient = step(jax.device_put(embeddings, rows),
                                           jax.device_put(labels, rows))
    assert len(sharded_gradient.sharding.device_set) == 4
    assert float(value) > 0
    np.testing.assert_allclose(float(sharded_value), float(value), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(sharded_gradient), np.asarray(gradient),
                               rtol=1e-4, atol=1e-6)


def test_fit_mines_the_global_pk_batch():
    # The loss is traced with the global batch (P × K rows), not a device's quarter of it; the
    # variables are replicated on the 4 devices.
    from tripletlab.data import PKSampler
    from tripletlab.train.distribution import data_parallel

    seen = {}

    class Recording(tl.losses.TripletSemiHardLoss):
        def call(self, y_true, y_pred):
            seen["rows"] = y_pred.shape[0]  # traced under jit: the global shape
            return super().call(y_true, y_pred)

    x = np.random.default_rng(0).random((200, 8), dtype="float32")
    y = np.arange(200) % 10
    sampler = PKSampler(x, y, classes_per_batch=4, samples_per_class=4, seed=0)
    with data_parallel().scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        model.compile(optimizer="sgd", loss=Recording())
        model.fit(sampler, epochs=1, steps_per_epoch=2, verbose=0)
        kernel = model.layers[0].kernel.value
    assert seen["rows"] == 16
    assert len(kernel.sharding.device_set) == 4 and kernel.sharding.is_fully_replicated
