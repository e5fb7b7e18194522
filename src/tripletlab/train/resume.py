"""What makes a resumed run continue as if it had never stopped.

A ``.keras`` checkpoint holds the weights and the optimizer, but not the model's random
generators, the backend's global random state, nor where ``fit`` was inside the sampler's
epochs. :func:`seed_generator_states` and :func:`global_random_state` are saved in
``checkpoints/state.json`` and restored on resume; :class:`FitEpochBatches` makes the batches
of a ``fit`` epoch a function of the epoch alone.
"""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from tripletlab.errors import ConfigError


def seed_generator_states(model: keras.Model) -> list[list[Any]]:
    """``[[variable path, [seed, counter]], ...]``: the state of every ``SeedGenerator`` of
    ``model`` (dropout and other random layers), in ``model.variables`` order.

    A loaded ``.keras`` model starts its generators afresh, so a resumed run restores these
    to draw the same random numbers as an uninterrupted one.
    """
    return [[variable.path, np.asarray(keras.ops.convert_to_numpy(variable.value)).tolist()]
            for variable in model.variables if _is_seed_state(variable)]


def restore_seed_generator_states(model: keras.Model, states: Sequence[Any] | None) -> None:
    """Sets the ``SeedGenerator`` states saved by :func:`seed_generator_states` (in order).

    Raises:
      ValueError: ``states`` does not match the model's generators (another model).
    """
    if states is None:
        return
    # matched by order: generator names get a process-wide counter ("seed_generator_6")
    variables = [variable for variable in model.variables if _is_seed_state(variable)]
    if len(variables) != len(states):
        raise ConfigError(f"Expected {len(variables)} saved random-generator states (those of "
                          f"the model's {[v.path for v in variables]}). Received: "
                          f"{len(states)} ({[path for path, _ in states]}).")
    for variable, (_, value) in zip(variables, states, strict=True):
        variable.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(variable.dtype)))


def cross_batch_memory(model: keras.Model):
    """The :class:`tripletlab.losses.MemoryQueue` ``model`` carries, or ``None``."""
    return getattr(model, "cross_batch_memory", None)


def save_memory(model: keras.Model, path, *, record=None) -> bool:
    """Writes the cross-batch memory ``model`` carries to the ``.npz`` file ``path``
    (atomically); ``False`` (nothing written) when it carries none."""
    from tripletlab.atomic import atomic_path

    queue = cross_batch_memory(model)
    if queue is None:
        return False
    with atomic_path(path, record=record) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **queue.state())
    return True


def restore_memory(model: keras.Model, path) -> None:
    """Sets the cross-batch memory ``model`` carries from :func:`save_memory`'s file.

    Raises:
      ConfigError: the file is missing or holds another memory (size, embedding size).
    """
    queue = cross_batch_memory(model)
    if queue is None:
        return
    try:
        with np.load(path, allow_pickle=False) as stored:
            queue.restore({name: stored[name] for name in stored.files})
    except FileNotFoundError:
        raise ConfigError(f"Expected the cross-batch memory's checkpoint {path} next to the "
                          "model's. Received: no such file (it is written with every "
                          "checkpoint of a run with memory_size > 0).") from None
    except (KeyError, ValueError) as error:
        raise ConfigError(f"Expected {path} to hold this run's cross-batch memory. Received: "
                          f"{error}") from None


def global_random_state() -> dict[str, Any]:
    """The backend's global random state, which Keras uses for unseeded dropout on PyTorch
    (``torch.nn.functional.dropout``): ``{"torch": base64 bytes, "torch_cuda": [...]}``, or
    ``{}`` on the other backends (their layers draw from their ``SeedGenerator``)."""
    if keras.backend.backend() != "torch":
        return {}
    import torch

    def encode(tensor) -> str:
        return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")

    state: dict[str, Any] = {"torch": encode(torch.get_rng_state())}
    if torch.cuda.is_available():
        state["torch_cuda"] = [encode(item) for item in torch.cuda.get_rng_state_all()]
    return state


def restore_global_random_state(state: Mapping[str, Any] | None) -> None:
    """Sets the state saved by :func:`global_random_state` (nothing for other backends)."""
    if not state or keras.backend.backend() != "torch":
        return
    import torch

    def decode(text: str):
        return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())

    if "torch" in state:
        torch.set_rng_state(decode(state["torch"]))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([decode(item) for item in state["torch_cuda"]])


def _is_seed_state(variable) -> bool:
    return variable.path.endswith("seed_generator_state")


class FitEpochBatches(keras.utils.PyDataset):
    """The batches of ``fit`` epoch ``e`` as a function of ``e`` alone, for exact resumes.

    Keras advances a sampler by calling its ``on_epoch_end``, also once when ``fit`` starts,
    and (with ``steps_per_epoch`` below the sampler's length) keeps its position inside the
    sampler's epoch across ``fit`` epochs: a resumed ``fit`` therefore drew other batches than
    an uninterrupted one. This view serves step ``i`` of ``fit`` epoch ``e`` as batch
    ``(e * steps_per_epoch + i) mod len(batches)`` of the sampler's epoch
    ``(e * steps_per_epoch + i) // len(batches)``; :meth:`callback` tells it the ``fit``
    epoch. Keras' own ``on_epoch_end`` calls do nothing here.

    The view runs with the sampler's ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` (Keras reads them from the dataset it is given). With worker threads,
    batches of two sampler epochs may be drawn at once: each sampler epoch is then served by
    its own shallow copy of a :class:`~tripletlab.data.samplers.PKSampler` /
    :class:`~tripletlab.data.ShuffledBatches` (the index plan differs, the data is shared),
    so a thread never reads another epoch's plan.

    Args:
      batches: a sampler with ``set_epoch`` and an ``epoch`` property (:class:`PKSampler`,
        :class:`ShuffledBatches`).
      steps_per_epoch: steps per ``fit`` epoch (default ``len(batches)``).
    """

    def __init__(self, batches, steps_per_epoch: int | None = None):
        super().__init__(workers=batches.workers,
                         use_multiprocessing=batches.use_multiprocessing,
                         max_queue_size=batches.max_queue_size)
        self.batches = batches
        self.steps_per_epoch = int(steps_per_epoch or len(batches))
        self.fit_epoch = 0
        self._lock = threading.Lock()
        self._views: dict[int, Any] = {}

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __getitem__(self, index):
        position = self.fit_epoch * self.steps_per_epoch + int(index)
        epoch, within = divmod(position, len(self.batches))
        return self._epoch_batches(epoch)[within]

    def epoch_plan(self, fit_epoch: int) -> list[np.ndarray]:
        """The rows of the sampler's ``x`` in each step of ``fit`` epoch ``fit_epoch``, in
        order: in that epoch, ``self[i]`` is ``x[rows[i]]`` (augmented if the sampler
        augments). Needs a sampler with ``batch_indices`` (:class:`PKSampler`,
        :class:`ShuffledBatches`)."""
        rows = []
        for index in range(self.steps_per_epoch):
            epoch, within = divmod(int(fit_epoch) * self.steps_per_epoch + index,
                                   len(self.batches))
            rows.append(self._epoch_batches(epoch).batch_indices(within))
        return rows

    def _epoch_batches(self, epoch: int):
        """The sampler (or a copy of it) that serves sampler epoch ``epoch``."""
        from tripletlab.data.samplers import PKSampler, ShuffledBatches

        with self._lock:
            if not isinstance(self.batches, (PKSampler, ShuffledBatches)):
                if self.batches.epoch != epoch:
                    self.batches.set_epoch(epoch)
                return self.batches
            view = self._views.get(epoch)
            if view is None:
                if self.batches.epoch != epoch:
                    self.batches.set_epoch(epoch)
                view = copy.copy(self.batches)
                self._views = {e: v for e, v in self._views.items() if e >= epoch - 1}
                self._views[epoch] = view
            return view

    def callback(self) -> keras.callbacks.Callback:
        """The callback that sets the ``fit`` epoch at each epoch's start."""
        view = self

        class _SetFitEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                view.fit_epoch = int(epoch)

        return _SetFitEpoch()
