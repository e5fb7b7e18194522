r"""A memory of past batches for the online mining losses (cross-batch memory, XBM).

Mining finds better triplets among more candidates, but a batch is only as large as one device's
memory. A cross-batch memory (Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR
2020) keeps the embeddings and labels of the last ``M`` training samples, without gradient, so
the anchors of the current batch mine their positives and negatives among the batch **and** the
memory: embeddings drift slowly once training has warmed up, so past ones are still good
candidates.

Where the state lives: the memory's variables belong to a :class:`MemoryQueue`, a Keras metric
that reports nothing and is never reset, attached to the model
(:meth:`CrossBatchMemory.attach`) so that every Keras trainer carries it through its compiled
step (JAX's trainer is stateless: it carries only the model's own variables). Under
``keras.distribution.DataParallel`` the memory is one global queue, replicated and identical on
every device, fed with the global batch.
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab._checks import check_number
from tripletlab.distances import min_norm_for, pairwise_distances
from tripletlab.losses.classes import MiningLoss
from tripletlab.losses.inputs import bounded_distances, check_sample_weight, prepare_inputs
from tripletlab.mining import TensorDistances


@keras.saving.register_keras_serializable(package="tripletlab")
class MemoryQueue(keras.metrics.Metric):
    """The state of a :class:`CrossBatchMemory`: a queue of the last ``memory_size`` embeddings
    and labels, in Keras variables.

    A metric so that Keras' trainers carry it (``Model.metrics_variables``); it reports no value
    and ignores ``reset_state`` (Keras resets metrics at every epoch; the memory must outlive
    epochs). Nothing but :class:`CrossBatchMemory` writes it.

    Args:
      memory_size: ``M``, the number of places.
      embedding_dim: ``D``, the size of an embedding.
      name: the metric's name.

    Attributes:
      embeddings: ``[M, D]`` float32 embeddings, oldest overwritten first.
      labels: ``[M]`` int32 labels.
      filled: scalar int32: the places holding an embedding (the first ``filled``).
      position: scalar int32: the place the next embedding goes to.
      calls: scalar int32: the loss calls so far (warm-up included).
    """

    def __init__(self, memory_size, embedding_dim, name="cross_batch_memory", **kwargs):
        super().__init__(name=name, **kwargs)
        self.memory_size = int(memory_size)
        self.embedding_dim = int(embedding_dim)
        self.embeddings = self.add_variable((self.memory_size, self.embedding_dim),
                                            initializer="zeros", dtype="float32",
                                            name="embeddings")
        self.labels = self.add_variable((self.memory_size,), initializer="zeros", dtype="int32",
                                        name="labels")
        self.filled = self.add_variable((), initializer="zeros", dtype="int32", name="filled")
        self.position = self.add_variable((), initializer="zeros", dtype="int32",
                                          name="position")
        self.calls = self.add_variable((), initializer="zeros", dtype="int32", name="calls")

    def update_state(self, *args, **kwargs):
        """Nothing: the loss writes the queue."""

    def reset_state(self):
        """Nothing: Keras resets metrics every epoch, the memory outlives epochs (see
        :meth:`clear`)."""

    def clear(self):
        """Empties the queue and restarts the warm-up."""
        for variable in self.variables:
            variable.assign(ops.zeros_like(variable))

    def result(self):
        """An empty dict: the queue adds nothing to the logs."""
        return {}

    def state(self) -> dict:
        """The queue as NumPy arrays (for a checkpoint), keyed by variable name."""
        return {variable.name: ops.convert_to_numpy(variable) for variable in self.variables}

    def restore(self, state: dict) -> None:
        """Sets the queue from :meth:`state`'s arrays.

        Raises:
          ValueError: arrays of other shapes (another memory size or embedding size).
        """
        for variable in self.variables:
            value = state[variable.name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Expected the memory's {variable.name!r} of shape {tuple(variable.shape)}. "
                    f"Received: shape {tuple(value.shape)} (another memory_size or embedding "
                    "size).")
            variable.assign(value)

    def get_config(self):
        return {"memory_size": self.memory_size, "embedding_dim": self.embedding_dim,
                "name": self.name}


@keras.saving.register_keras_serializable(package="tripletlab")
class CrossBatchMemory(keras.losses.Loss):
    r"""An online mining loss whose anchors mine the batch and a memory of past batches.

    .. math::
        \mathcal{L}_t = \ell\bigl(\{(x_a, y_a)\}_{a \in B_t} ;\
                        B_t \cup \mathcal{M}_t\bigr)

    where :math:`\ell` is the wrapped loss (semi-hard, hard or batch-all) with its anchors
    :math:`a` in the current batch :math:`B_t` and its positives and negatives taken from the
    batch and the memory :math:`\mathcal{M}_t` of the last ``memory_size`` embeddings (without
    gradient). The normaliser is the wrapped loss's, over those anchors: positive pairs
    ``(a, p)`` for semi-hard, the ``B`` anchors for hard, positive triplets for batch-all. For
    the first ``warmup_steps`` calls the memory is neither used nor filled (the loss is the
    wrapped loss on the batch); from then on each call mines with the memory, then enqueues
    the batch, overwriting the oldest entries once the memory is full. A batch larger than the
    memory leaves its last ``memory_size`` samples.

    The memory costs ``O((B + M) B)`` per step: one ``[B, B + M]`` distance matrix, never a
    ``[B + M, B + M]`` one. Unlike pytorch-metric-learning's ``CrossBatchMemory``, whose
    references are the memory after the batch was added to it, the references here are the
    batch and the whole memory before it: ``B + M`` candidates per anchor.

    The memory is updated at every call of the loss, so a ``model.evaluate`` with this loss
    feeds it the evaluation batches too (as the other implementations do); evaluate with the
    wrapped loss instead.

    Args:
      loss: the wrapped online mining loss: a :class:`tripletlab.losses.TripletSemiHardLoss`,
        :class:`~tripletlab.losses.TripletHardLoss` or
        :class:`~tripletlab.losses.TripletBatchAllLoss` (its margin, distance and soft margin
        apply).
      memory_size: ``M``, the number of past embeddings kept (``>= 1``).
      warmup_steps: the number of first calls that use and fill no memory (``>= 0``).
      embedding_dim: the embedding size, for building the memory before
        :meth:`attach` (which reads it from the model's output otherwise).
      name: the loss's name.
      reduction: a Keras reduction; the default gives the documented value.
      dtype: the dtype Keras casts inputs to before the loss.

    Example:
      >>> import keras, tripletlab as tl
      >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
      >>> memory = tl.losses.CrossBatchMemory(tl.losses.TripletSemiHardLoss(),
      ...                                     memory_size=256, warmup_steps=100)
      >>> model.compile(optimizer="adam", loss=memory)
      >>> memory.attach(model)  # before fit: the model carries the memory's state
    """

    def __init__(self, loss, memory_size, warmup_steps=0, *, embedding_dim=None,
                 name="cross_batch_memory", reduction="sum_over_batch_size", dtype=None):
        check_wrapped_loss(loss)
        check_number("memory_size", memory_size, minimum=1, integer=True)
        check_number("warmup_steps", warmup_steps, minimum=0, integer=True)
        if embedding_dim is not None:
            check_number("embedding_dim", embedding_dim, minimum=1, integer=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.loss = loss
        self.memory_size = int(memory_size)
        self.warmup_steps = int(warmup_steps)
        self.queue = None
        if embedding_dim is not None:
            self.build(int(embedding_dim))

    def build(self, embedding_dim: int) -> MemoryQueue:
        """Creates the memory for embeddings of size ``embedding_dim`` (once)."""
        if self.queue is None:
            self.queue = MemoryQueue(self.memory_size, embedding_dim)
        elif self.queue.embedding_dim != embedding_dim:
            raise ValueError(
                f"Expected embeddings of size {self.queue.embedding_dim}, the size the memory "
                f"was built for. Received: embedding_dim={embedding_dim}")
        return self.queue

    def attach(self, model: keras.Model) -> keras.Model:
        """Makes ``model`` carry the memory's state, and returns ``model``.

        Call it before ``fit``, on the model compiled with this loss (a ``Sequential`` or
        functional model). Keras' JAX trainer carries only the model's variables through its
        compiled step; TensorFlow's and PyTorch's would update the memory anyway, but attaching
        on every backend keeps one way to use it.

        Raises:
          ValueError: ``model`` has no single ``[batch, D]`` output to read ``D`` from, or
            carries another memory.
        """
        embedding_dim = self.queue.embedding_dim if self.queue else output_dim(model)
        queue = self.build(embedding_dim)
        current = getattr(model, "cross_batch_memory", None)
        if current is not None and current is not queue:
            raise ValueError("Expected a model without a cross-batch memory. Received: a "
                             "model that already carries another one (compile a fresh model).")
        model.cross_batch_memory = queue
        return model

    def __call__(self, y_true, y_pred, sample_weight=None):
        check_sample_weight(sample_weight, y_pred)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        labels, embeddings, input_dtype = prepare_inputs(y_true, y_pred)
        queue = self.queue_for(embeddings)
        labels = ops.cast(labels, "int32")
        active = queue.calls.value >= self.warmup_steps
        batch = ops.shape(embeddings)[0]
        filled = ops.where(active, queue.filled.value, 0)
        valid = ops.concatenate([ops.ones((batch,), dtype="bool"),
                                 ops.arange(self.memory_size, dtype="int32") < filled])
        stored = ops.stop_gradient(ops.cast(queue.embeddings.value, embeddings.dtype))
        references = ops.concatenate([embeddings, stored], axis=0)
        distances = pairwise_distances(references, self.loss.distance, rows=batch,
                                       min_norm=min_norm_for(input_dtype))
        distances = ops.where(ops.expand_dims(valid, 0), distances, ops.zeros_like(distances))
        distances = TensorDistances(bounded_distances(distances, self.loss.distance))
        terms = self.loss.terms(labels, distances,
                                reference_labels=ops.concatenate([labels, queue.labels.value]),
                                reference_valid=valid)
        self.enqueue(queue, embeddings, labels, active)
        return ops.cast(terms.per_anchor_losses(), input_dtype)

    def queue_for(self, embeddings) -> MemoryQueue:
        """The memory, built for ``embeddings`` on first use (eager calls without a model).

        Raises:
          RuntimeError: inside a compiled step that does not carry the memory's state (a JAX
            model the memory was not attached to), where its updates would be lost.
        """
        queue = self.build(int(embeddings.shape[1]))
        if not state_is_carried(queue):
            raise RuntimeError(
                "Expected the model to carry the cross-batch memory's state. Received: a "
                "compiled step without it (Keras' JAX trainer drops the updates of variables "
                "the model does not own). Call `memory.attach(model)` before `fit`.")
        return queue

    def enqueue(self, queue: MemoryQueue, embeddings, labels, active) -> None:
        """Writes the batch into the memory (when ``active``), oldest places first."""
        size = self.memory_size
        batch = embeddings.shape[0]
        kept = min(batch, size)
        position, filled = queue.position.value, queue.filled.value
        old_embeddings, old_labels = queue.embeddings.value, queue.labels.value
        places = (position + (batch - kept) + ops.arange(kept, dtype="int32")) % size
        places = ops.expand_dims(places, 1)
        new_embeddings = ops.scatter_update(
            old_embeddings, places,
            ops.cast(ops.stop_gradient(embeddings[batch - kept:]), "float32"))
        new_labels = ops.scatter_update(old_labels, places, labels[batch - kept:])
        queue.embeddings.assign(ops.where(active, new_embeddings, old_embeddings))
        queue.labels.assign(ops.where(active, new_labels, old_labels))
        queue.filled.assign(ops.where(active, ops.minimum(filled + batch, size), filled))
        queue.position.assign(ops.where(active, (position + batch) % size, position))
        queue.calls.assign(ops.minimum(queue.calls.value + 1, self.warmup_steps + 1))

    def get_config(self):
        config = super().get_config()
        config.update({
            "loss": keras.saving.serialize_keras_object(self.loss),
            "memory_size": self.memory_size,
            "warmup_steps": self.warmup_steps,
            "embedding_dim": self.queue.embedding_dim if self.queue else None,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)


def check_wrapped_loss(loss) -> None:
    """Raises ``TypeError`` unless ``loss`` is an online mining loss on a canonical distance."""
    if not isinstance(loss, MiningLoss) or type(loss).distances is not MiningLoss.distances:
        raise TypeError(
            "Expected `loss` to be an online mining loss of tripletlab.losses "
            "(TripletSemiHardLoss, TripletHardLoss or TripletBatchAllLoss). Received: "
            f"loss={loss!r}")


def output_dim(model: keras.Model) -> int:
    """``D`` of ``model``'s single ``[batch, D]`` output.

    Raises:
      ValueError: the model has several outputs, or its output is not ``[batch, D]``.
    """
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2 or not outputs[0].shape[1]:
        shapes = [tuple(output.shape) for output in outputs or []]
        raise ValueError("Expected a model with one [batch, embedding_dim] output (or pass "
                         f"embedding_dim=). Received: a model with outputs of shapes {shapes}")
    return int(outputs[0].shape[1])


def state_is_carried(queue: MemoryQueue) -> bool:
    """Whether the memory's updates survive the current step: always outside Keras' stateless
    scopes (eager code, TensorFlow, PyTorch) and while Keras only traces shapes; inside a
    stateless scope with real state (JAX's compiled step), only if the scope maps the memory's
    variables (the model carries them)."""
    # Keras exports StatelessScope and SymbolicScope but not the functions that find the
    # active ones; these are the trainers' own (stable since Keras 3.0).
    from keras.src.backend.common.stateless_scope import get_stateless_scope
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope

    scope = get_stateless_scope()
    if scope is None or in_symbolic_scope() or not scope.state_mapping:
        return True
    return scope.get_current_value(queue.calls) is not None
