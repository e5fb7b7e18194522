"""``tl.losses.CrossBatchMemory`` against the NumPy oracle, step after step (docs/losses.md,
"Cross-batch memory"): the loss and its gradient equal the oracle's on the concatenation of the
batch and the memory with the anchors restricted to the batch; the queue holds the last
``memory_size`` embeddings in place order, wrap-around included; the state survives compiled
``fit`` steps on every backend and round-trips through a checkpoint's arrays.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import BACKEND, to_numpy, value_and_gradient

BATCH, MEMORY, DIM, STEPS, WARMUP = 8, 12, 3, 4, 1  # the third call wraps around
MARGINS = {"L2": 0.7, "squared-L2": 3.0, "angular": 0.15, "normalized-L2": 0.25}
LOSSES = {
    "semi-hard": (tl.losses.TripletSemiHardLoss, oracle.semi_hard),
    "hard": (tl.losses.TripletHardLoss, oracle.hard),
    "batch-all": (tl.losses.TripletBatchAllLoss, oracle.batch_all),
}


def batches(seed, steps=STEPS, batch=BATCH):
    """Random labels (3 classes, each batch with a positive pair) and Gaussian embeddings."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        labels = rng.integers(0, 3, size=batch)
        labels[:2] = labels[0]
        yield labels, rng.normal(size=(batch, DIM)).astype("float32")


class QueueMirror:
    """The memory as the docs describe it, in NumPy: places written oldest first, from the
    first call after the warm-up on."""

    def __init__(self, size):
        self.embeddings = np.zeros((size, DIM), dtype=np.float32)
        self.labels = np.zeros(size, dtype=np.int64)
        self.filled = self.position = self.calls = 0

    def references(self):
        active = self.calls >= WARMUP
        count = self.filled if active else 0
        return self.embeddings[:count], self.labels[:count]

    def push(self, labels, embeddings):
        if self.calls >= WARMUP:
            size = len(self.labels)
            for label, row in zip(labels, embeddings, strict=True):
                self.embeddings[self.position], self.labels[self.position] = row, label
                self.position = (self.position + 1) % size
                self.filled = min(self.filled + 1, size)
        self.calls += 1


def oracle_loss(kind, distance, labels, embeddings, mirror, soft):
    """The oracle's loss and embedding gradient (batch rows) on batch + memory."""
    stored, stored_labels = mirror.references()
    x = np.concatenate([embeddings, stored]).astype(np.float64)
    all_labels = np.concatenate([labels, stored_labels])
    d = oracle.distance_matrix(x, distance)
    value, *_, grad_d = LOSSES[kind][1](all_labels, d, MARGINS[distance], soft,
                                        anchors=len(labels))
    return value, oracle.embedding_gradient(x, distance, grad_d)[:len(labels)]


def call_without_update(memory, labels):
    """``embeddings -> loss`` that leaves the memory as it is (a Keras stateless scope maps its
    variables, as the JAX trainer does), so the gradient can be taken on any backend."""
    def function(embeddings):
        mapping = [(v, v.value) for v in memory.queue.variables]
        with keras.StatelessScope(state_mapping=mapping):
            return memory(labels, embeddings)

    return function


# Every distance and every loss, each loss with a plain and a normalised distance (the full
# product of losses and distances runs against the oracle in test_losses_vs_oracle.py).
CASES = [("semi-hard", "L2"), ("semi-hard", "angular"), ("hard", "L2"),
         ("hard", "normalized-L2"), ("batch-all", "squared-L2"), ("batch-all", "normalized-L2")]


@pytest.mark.parametrize("kind, distance", CASES)
def test_steps_match_the_oracle_on_batch_and_memory(kind, distance):
    soft = kind == "hard" and distance == "L2"  # the soft margin through one case
    loss = LOSSES[kind][0](margin=MARGINS[distance], distance=distance, soft=soft)
    memory = tl.losses.CrossBatchMemory(loss, memory_size=MEMORY, warmup_steps=WARMUP,
                                        embedding_dim=DIM)
    mirror = QueueMirror(MEMORY)
    for step, (labels, embeddings) in enumerate(batches(seed=len(kind) + len(distance))):
        expected, expected_grad = oracle_loss(kind, distance, labels, embeddings, mirror, soft)
        value, grad = value_and_gradient(call_without_update(memory, labels), embeddings)
        scale = max(np.abs(expected_grad).max(), 1e-3)
        assert value == pytest.approx(expected, rel=2e-5, abs=1e-6), f"step {step}"
        np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * scale, err_msg=f"step {step}")
        memory(labels, embeddings)
        mirror.push(labels, embeddings)
        queue = memory.queue
        np.testing.assert_allclose(to_numpy(queue.embeddings), mirror.embeddings, atol=0)
        np.testing.assert_array_equal(to_numpy(queue.labels), mirror.labels)
        assert (int(to_numpy(queue.filled)), int(to_numpy(queue.position))) == (
            mirror.filled, mirror.position)


def test_warm_up_calls_are_the_wrapped_loss_alone():
    loss = tl.losses.TripletSemiHardLoss(margin=0.5)
    memory = tl.losses.CrossBatchMemory(loss, memory_size=64, warmup_steps=3)
    for labels, embeddings in batches(seed=3, steps=3):
        assert float(to_numpy(memory(labels, embeddings))) == pytest.approx(
            float(to_numpy(loss(labels, embeddings))), rel=1e-6)
    assert int(to_numpy(memory.queue.filled)) == 0
    labels, embeddings = next(batches(seed=4, steps=1))
    memory(labels, embeddings)  # the first call after the warm-up: an empty memory, then filled
    assert int(to_numpy(memory.queue.filled)) == BATCH


def test_a_batch_larger_than_the_memory_leaves_its_last_samples():
    memory = tl.losses.CrossBatchMemory(tl.losses.TripletHardLoss(), memory_size=5)
    labels, embeddings = next(batches(seed=5, steps=1))
    memory(labels, embeddings)
    places = np.arange(BATCH - 5, BATCH) % 5  # where they would be, enqueued one by one
    np.testing.assert_array_equal(to_numpy(memory.queue.embeddings)[places], embeddings[-5:])
    assert int(to_numpy(memory.queue.position)) == BATCH % 5


def dense_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(DIM)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=None)
    return model


def test_compiled_fit_steps_carry_the_memory():
    """Compiled train steps (learning rate 0, so the embeddings are the model's outputs) give the
    eager loss sequence and leave the same queue: the trainer carries the memory."""
    rng = np.random.default_rng(7)
    inputs = [rng.normal(size=(BATCH, 4)).astype("float32") for _ in range(5)]
    labels = [next(batches(seed=10 + i, steps=1))[0] for i in range(5)]
    model = dense_model()
    memory = tl.losses.CrossBatchMemory(tl.losses.TripletBatchAllLoss(margin=0.3),
                                        memory_size=MEMORY, warmup_steps=WARMUP)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=memory,
                  jit_compile=BACKEND != "torch")  # torch.compile: 60 s; checked by hand
    memory.attach(model)
    reference = tl.losses.CrossBatchMemory(tl.losses.TripletBatchAllLoss(margin=0.3),
                                           memory_size=MEMORY, warmup_steps=WARMUP)
    for x, y in zip(inputs, labels, strict=True):
        model.reset_metrics()
        compiled_loss = model.train_on_batch(x, y)
        expected = float(to_numpy(reference(y, model(x))))
        assert compiled_loss == pytest.approx(expected, rel=1e-5, abs=1e-6)
    for name, value in reference.queue.state().items():
        np.testing.assert_allclose(memory.queue.state()[name], value, rtol=1e-6, atol=1e-6)


def test_state_round_trips_and_the_loss_serialises():
    loss = tl.losses.TripletSemiHardLoss(margin=0.4, distance="angular")
    memory = tl.losses.CrossBatchMemory(loss, memory_size=MEMORY, warmup_steps=2,
                                        embedding_dim=DIM)
    for labels, embeddings in batches(seed=8, steps=4):
        memory(labels, embeddings)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(memory))
    assert (copy.memory_size, copy.warmup_steps, copy.loss.distance) == (MEMORY, 2, "angular")
    copy.queue.restore(memory.queue.state())
    labels, embeddings = next(batches(seed=9, steps=1))
    assert float(to_numpy(copy(labels, embeddings))) == pytest.approx(
        float(to_numpy(memory(labels, embeddings))), rel=1e-6)
    with pytest.raises(ValueError, match="memory_size or embedding"):
        tl.losses.CrossBatchMemory(tl.losses.TripletHardLoss(), memory_size=3,
                                   embedding_dim=DIM).queue.restore(memory.queue.state())


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(TypeError, match="online mining loss"):
        tl.losses.CrossBatchMemory(keras.losses.MeanSquaredError(), memory_size=8)
    with pytest.raises(ValueError, match="memory_size"):
        tl.losses.CrossBatchMemory(tl.losses.TripletHardLoss(), memory_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        tl.losses.CrossBatchMemory(tl.losses.TripletHardLoss(), memory_size=8, warmup_steps=-1)
    inputs = keras.Input((3,))
    two_outputs = keras.Model(inputs, [keras.layers.Dense(2)(inputs),
                                       keras.layers.Dense(2)(inputs)])
    with pytest.raises(ValueError, match="one \\[batch, embedding_dim\\] output"):
        tl.losses.CrossBatchMemory(tl.losses.TripletHardLoss(), memory_size=8).attach(two_outputs)


@pytest.mark.skipif(BACKEND != "jax", reason="only JAX's trainer drops unowned state")
def test_jax_fit_without_attach_is_an_error_not_a_silent_no_op():
    model = dense_model()
    model.compile(optimizer="sgd", loss=tl.losses.CrossBatchMemory(
        tl.losses.TripletHardLoss(), memory_size=16))
    x = np.zeros((BATCH, 4), dtype="float32")
    with pytest.raises(RuntimeError, match="attach"):
        model.fit(x, np.arange(BATCH) % 2, batch_size=BATCH, verbose=0)


@pytest.mark.skipif(BACKEND != "jax", reason="XLA's memory analysis of the compiled step")
def test_memory_grows_with_batch_times_memory_not_its_square():
    """``O((B + M) B)``: doubling M at B = 64 doubles the compiled value-and-gradient's
    temporaries (about 2.0x), where a ``[B + M, B + M]`` matrix would quadruple them."""
    import jax

    batch = 64
    labels = np.arange(batch) % 8
    embeddings = np.random.default_rng(0).normal(size=(batch, 32)).astype("float32")

    def temporaries(size, run=False):
        memory = tl.losses.CrossBatchMemory(tl.losses.TripletSemiHardLoss(), memory_size=size,
                                            embedding_dim=32)
        step = jax.jit(jax.value_and_grad(call_without_update(memory, labels)))
        if run:  # 4,096 columns and more: compiled in column blocks (docs/losses.md)
            assert np.isfinite(float(step(embeddings)[0]))
        return step.lower(embeddings).compile().memory_analysis().temp_size_in_bytes

    assert temporaries(4096, run=True) / temporaries(2048) < 2.5
