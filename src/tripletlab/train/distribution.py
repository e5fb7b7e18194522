"""Data-parallel training (``distribute = "data-parallel"``) on Keras' distribution API.

The model's variables are replicated on every device and each global batch is split along its
first axis, one slice per device (``keras.distribution.DataParallel``). Under JAX's sharded
``jit`` the loss receives the whole global batch as one array, so a mining loss mines every
triplet of the global P×K batch, not those of one device's slice; XLA splits the work and adds
the collectives. The numbers are those of one device, up to the order of float sums.

Nothing is imported from Keras at module level: the configuration
(:mod:`tripletlab.train.config`) runs :func:`check_distribute_options` before the backend is
chosen.

Only the JAX backend is supported: in Keras 3.15 TensorFlow's distribution library is a
prototype and PyTorch's is not released. Several hosts run one process each, started from
:data:`MULTI_HOST_VARIABLES` (:func:`start_processes`); they check that they all run the same
configuration on the same data (:func:`check_same_run`), each feeds its share of every global
batch (:class:`tripletlab.data.process_share.ProcessShare`), and only process 0 writes the
experiment folder (:mod:`tripletlab.train.process_folder`).

Example:
  >>> from tripletlab.train.config import resolve_config
  >>> config = resolve_config({"dataset": "digits", "distribute": "data-parallel",
  ...                          "backend": "jax"})
  >>> with distribution_scope(config):  # doctest: +SKIP
  ...     model.fit(batches)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tripletlab.errors import ConfigError

if TYPE_CHECKING:
    import keras

SUPPORTED_BACKENDS = ("jax",)
"""The Keras backends on which ``distribute`` is accepted."""
MULTI_HOST_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                        "KERAS_DISTRIBUTION_PROCESS_ID")
"""The environment variables with which ``keras.distribution.initialize()`` starts several
processes (``jax.distributed``): the coordinator's address (or every process's, comma-separated),
the number of processes and this process's index."""


def check_distribute_options(values: Mapping[str, Any]) -> None:
    """The configuration's own checks of ``distribute`` (no Keras import): a backend given
    in the configuration must be JAX, and the loss must mine online (offline triplets are
    single-device).

    Args:
      values: the configuration's values by name (``distribute``, ``backend``, ``mode``).

    Raises:
      ConfigError: ``distribute`` with ``backend`` TensorFlow or PyTorch, or with
        ``mode='offline'``.
    """
    distribute = values.get("distribute")
    if distribute is None:
        return
    check_distribute_backend(distribute, values.get("backend"))
    if values.get("mode") == "offline":
        raise ConfigError(f"Expected mode='online' with distribute={distribute!r} (data-"
                          "parallel training mines P×K or shuffled batches; offline triplets "
                          "train on one device). Received: mode='offline'.")


def check_distribute_backend(distribute: str | None, backend: str | None) -> None:
    """Refuses ``distribute`` on a backend other than JAX (``backend=None``: not known yet).

    Raises:
      ConfigError: ``distribute`` is set and ``backend`` is TensorFlow or PyTorch.
    """
    if distribute is None or backend is None or backend in SUPPORTED_BACKENDS:
        return
    raise ConfigError(
        f"Expected the JAX backend with distribute={distribute!r} (Keras' distribution API "
        f"trains data-parallel on JAX only; in Keras {keras_version()} TensorFlow's "
        f"distribution library is a prototype and PyTorch's is not released). Received: "
        f"backend={backend!r}. Use --backend jax, or leave distribute unset for one device.")


def keras_version() -> str:
    """The installed Keras version, read without importing Keras."""
    from importlib import metadata

    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return "3"


def multi_host_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks Keras for several processes: more than one in
    ``KERAS_DISTRIBUTION_NUM_PROCESSES``, or several addresses in
    ``KERAS_DISTRIBUTION_JOB_ADDRESSES``."""
    environ = os.environ if environ is None else environ
    processes = environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "").strip()
    addresses = environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES", "")
    return (processes.isdigit() and int(processes) > 1) or "," in addresses


def start_processes(distribute: str, environ: Mapping[str, str] | None = None) -> None:
    """Joins the other hosts' processes when the environment asks for several
    (:func:`multi_host_requested`): ``keras.distribution.initialize()``, which starts
    ``jax.distributed`` from :data:`MULTI_HOST_VARIABLES` and waits for every process. Must run
    before JAX touches a device.

    Raises:
      ConfigError: the processes could not be started (the message names the variables).
    """
    environ = os.environ if environ is None else environ
    if not multi_host_requested(environ):
        return
    import keras

    given = {name: environ[name] for name in MULTI_HOST_VARIABLES if name in environ}
    try:
        keras.distribution.initialize()
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"Expected to start the processes of distribute={distribute!r} from "
                          f"{given}. Received: {error}") from None


def check_same_run(config: Any, labels) -> None:
    """With several processes, refuses a run whose configuration or training labels differ
    between processes (every host must draw the same global batches): their digest is compared
    across processes (``jax.experimental.multihost_utils.assert_equal``). Nothing with one.

    Raises:
      ConfigError: another process has another configuration or other data.
    """
    if jax_process_count() <= 1:
        return
    import hashlib
    import json

    import numpy as np
    from jax.experimental import multihost_utils

    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(np.asarray(labels)).tobytes())
    try:
        multihost_utils.assert_equal(np.frombuffer(digest.digest(), dtype=np.uint8),
                                     "configuration and data")
    except AssertionError:
        raise ConfigError("Expected the same configuration and training data on every host "
                          f"with distribute={config.distribute!r}. Received: process "
                          f"{process_index()} has another one (compare the hosts' config "
                          "files, flags and data).") from None


def process_index() -> int:
    """This process's index among the JAX processes (0 on one process)."""
    import keras

    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def jax_process_count() -> int:
    """The processes JAX runs (``jax.process_count()``; 1 on the other backends)."""
    import keras

    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def global_batch_size(config: Any) -> int:
    """The rows of one training batch of ``config``: P × K with the P×K sampler (P and K
    fitted to the data already), else ``batch_size``."""
    if config.mode == "online" and config.sampler == "pk":
        return int(config.classes_per_batch) * int(config.samples_per_class)
    return int(config.batch_size)


def check_global_batch(config: Any, devices: int) -> None:
    """Refuses a global batch that ``devices`` devices cannot share evenly.

    Args:
      config: the resolved configuration, its P×K batch fitted to the data.
      devices: the number of devices the batch is split over.

    Raises:
      ConfigError: the global batch is not a multiple of ``devices``.
    """
    rows = global_batch_size(config)
    if rows % devices == 0:
        return
    if config.mode == "online" and config.sampler == "pk":
        received = (f"classes_per_batch × samples_per_class = {config.classes_per_batch} × "
                    f"{config.samples_per_class} = {rows}")
        hint = "choose P and K whose product is"
    else:
        received, hint = f"batch_size={rows}", "choose a batch_size that is"
    raise ConfigError(
        f"Expected a global batch divisible by the {devices} devices with distribute="
        f"{config.distribute!r} (each device takes an equal slice). Received: {received}; "
        f"{hint} a multiple of {devices}.")


def training_devices() -> list[str]:
    """Every device Keras' distribution API sees (``keras.distribution.list_devices()``)."""
    import keras

    return keras.distribution.list_devices()


def data_parallel(devices: list[str] | None = None) -> keras.distribution.DataParallel:
    """``keras.distribution.DataParallel`` over ``devices`` (default: every device)."""
    import keras

    # Every process gives Keras its own share of each global batch (ProcessShare): Keras'
    # own sharding of a dataset between processes (tf.data only) stays off.
    return keras.distribution.DataParallel(devices=devices or training_devices(),
                                           auto_shard_dataset=False)


def check_distribution(config: Any) -> None:
    """The start-up checks of a distributed run (nothing when ``config.distribute`` is unset):
    the running backend, and a global batch the devices (of every process) share evenly.

    Raises:
      ConfigError: any check failing.
    """
    if config.distribute is None:
        return
    import keras

    check_distribute_backend(config.distribute, keras.backend.backend())
    check_global_batch(config, len(training_devices()))


@contextlib.contextmanager
def distribution_scope(config: Any) -> Iterator[Any]:
    """Runs the block under ``config.distribute`` (a ``DataParallel`` over every device), or
    as it is when that is unset; yields the distribution or ``None``."""
    if config.distribute is None:
        yield None
        return
    import keras

    check_distribute_backend(config.distribute, keras.backend.backend())
    start_processes(config.distribute)
    distribution = data_parallel()
    with distribution.scope():
        yield distribution
