"""What ``tripletlab train`` does: data → model → fit with checkpoints → metrics → pictures.

Example:
  >>> from tripletlab.train import resolve_config, train
  >>> config = resolve_config({"dataset": "digits", "epochs": 2})  # doctest: +SKIP
  >>> metrics = train(config, "runs/digits")  # doctest: +SKIP
  >>> metrics["test_to_train"]["precision_at_1"]  # doctest: +SKIP
  0.97
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from tripletlab.atomic import write_json
from tripletlab.train import experiment as ex
from tripletlab.train.config import ConfigError, TrainConfig, resolve_config

_TRIPLET_TOOLS_METRICS = {"L2": "euclidean", "normalized-L2": "euclidean_norm",
                          "angular": "cosine"}


@keras.saving.register_keras_serializable(package="tripletlab.train")
class CompatLoss(keras.losses.Loss):
    """A ``keras.losses.Loss`` around a compat loss function (serialisable by name).

    omoindrot's ``batch_all_triplet_loss`` returns ``(loss, fraction)``; only the loss is kept.
    triplet-tools' factories return ``loss(y_true, y_pred)``; ``distance`` maps onto its
    ``metric`` (``"L2"`` → ``"euclidean"``, ``"normalized-L2"`` → ``"euclidean_norm"``,
    ``"angular"`` → ``"cosine"``).

    Args:
      loss: ``"omoindrot-batch-all"``, ``"omoindrot-batch-hard"``, ``"triplet-tools-semihard"``
        or ``"triplet-tools-hard"``.
      margin: the margin.
      distance: the distance (see above; omoindrot: ``"L2"`` or ``"squared-L2"``).
      semi_margin: triplet-tools-semihard's ``semi_margin``.
    """

    def __init__(self, loss, margin, distance="L2", semi_margin=0.0, name=None, **kwargs):
        super().__init__(name=name or loss.replace("-", "_"), **kwargs)
        self.loss_name = loss
        self.margin = float(margin)
        self.distance = distance
        self.semi_margin = float(semi_margin)
        if loss.startswith("omoindrot"):
            from tripletlab.compat import omoindrot

            function = (omoindrot.batch_all_triplet_loss if loss == "omoindrot-batch-all"
                        else omoindrot.batch_hard_triplet_loss)
            squared = distance == "squared-L2"

            def compute(y_true, y_pred):
                value = function(keras.ops.reshape(y_true, (-1,)), y_pred, self.margin, squared)
                return value[0] if isinstance(value, tuple) else value
        else:
            from tripletlab.compat import triplet_tools

            metric = _TRIPLET_TOOLS_METRICS[distance]
            if loss == "triplet-tools-semihard":
                compute = triplet_tools.triplet_batch_semihard_loss(
                    margin=self.margin, semi_margin=self.semi_margin, metric=metric)
            else:
                compute = triplet_tools.triplet_batch_hard_loss(margin=self.margin, metric=metric)
        self._compute = compute

    def call(self, y_true, y_pred):
        return self._compute(y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({"loss": self.loss_name, "margin": self.margin, "distance": self.distance,
                       "semi_margin": self.semi_margin})
        return config


def build_loss(config: TrainConfig) -> keras.losses.Loss:
    """The Keras loss of ``config`` (online losses, or the offline ``TripletLoss``)."""
    if config.mode == "offline":
        from tripletlab.losses.offline import TripletLoss

        return TripletLoss(margin=config.margin, distance=config.distance)
    from tripletlab import losses
    from tripletlab.compat import tfa

    m, d, soft = config.margin, config.distance, config.soft
    # A P x K batch has K - 1 positives per anchor: the sort-free mining path applies.
    k = config.samples_per_class - 1 if config.sampler == "pk" else None
    if config.loss == "semi-hard":
        return losses.TripletSemiHardLoss(margin=m, distance=d, soft=soft, max_positives=k)
    if config.loss == "hard":
        return losses.TripletHardLoss(margin=m, soft=soft, distance=d)
    if config.loss == "batch-all":
        return losses.TripletBatchAllLoss(margin=m, distance=d, soft=soft, max_positives=k)
    if config.loss == "tfa-semi-hard":
        return tfa.TripletSemiHardLoss(margin=m, distance_metric=d)
    if config.loss == "tfa-hard":
        return tfa.TripletHardLoss(margin=m, soft=soft, distance_metric=d)
    return CompatLoss(config.loss, m, d, semi_margin=config.semi_margin or 0.0)


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule (schedules step once per batch)."""
    schedules = keras.optimizers.schedules
    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = schedules.CosineDecay(rate, decay_steps=config.epochs * steps_per_epoch)
    elif config.schedule == "exponential":
        rate = schedules.ExponentialDecay(rate, decay_steps=steps_per_epoch,
                                          decay_rate=config.decay_rate)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate)
    if config.optimizer == "adamw":
        kwargs = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        return keras.optimizers.AdamW(learning_rate=rate, **kwargs)
    return keras.optimizers.Adam(learning_rate=rate)


def load_data(config: TrainConfig):
    """The :class:`tripletlab.data.Dataset` of ``config``."""
    from tripletlab.data import load_dataset

    return load_dataset(config.dataset, data_file=config.data_file,
                        image_folder=config.image_folder, seed=config.seed,
                        test_fraction=config.test_fraction, image_size=config.image_size)


def build_batches(config: TrainConfig, data, model=None):
    """The training ``PyDataset``: P×K, shuffled, or offline triplets."""
    if config.mode == "offline":
        from tripletlab.data.triplets import TripletGenerator

        return TripletGenerator(data.x_train, data.y_train, config.batch_size,
                                steps_per_epoch=config.steps_per_epoch,
                                strategy=config.triplets, seed=config.seed,
                                embedding_model=model if config.triplets == "hard" else None,
                                margin=config.margin, distance=config.distance)
    from tripletlab.data import PKSampler, ShuffledBatches

    if config.sampler == "pk":
        return PKSampler(data.x_train, data.y_train, config.classes_per_batch,
                         config.samples_per_class, steps_per_epoch=config.steps_per_epoch,
                         seed=config.seed)
    return ShuffledBatches(data.x_train, data.y_train, config.batch_size, seed=config.seed)


def _embedding_model(model):
    return getattr(model, "embedding_model", model)


def embed(model, x, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
    """``model.predict`` as a float32 NumPy array."""
    out = model.predict(x, batch_size=batch_size, verbose=verbose)
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)


def _retrieval_callback(config: TrainConfig, data, embedding_model):
    from tripletlab.evaluation import RetrievalEvaluation

    class _Retrieval(RetrievalEvaluation):
        def _embed(self, inputs):
            return embed(embedding_model, inputs, self.batch_size)

    keep = ex.stratified_indices(data.y_test, config.eval_samples, config.seed)
    return _Retrieval(data.x_test[keep], data.y_test[keep], distance=config.distance,
                      every=config.eval_every, recall_ks=(1,), clustering=False)


def _tensorboard_callback(folder):
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        ex.warn_once('TensorBoard logs need TensorFlow and tensorboard (pip install '
                     '"tripletlab[viz]" tensorflow); writing none. Set tensorboard = false '
                     'to silence this.')
        return None
    return keras.callbacks.TensorBoard(log_dir=str(folder), write_graph=False)


def register_classes() -> None:
    """Imports every module with serialisable tripletlab classes (before ``load_model``)."""
    import importlib

    for name in ("tripletlab.losses", "tripletlab.metrics", "tripletlab.compat.tfa",
                 "tripletlab.losses.offline", "tripletlab.triplet_network"):
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - a module still being written
            pass


def check_backend(config: TrainConfig) -> None:
    """Raises if ``config.backend`` is set and Keras already runs another backend."""
    if config.backend is not None and keras.backend.backend() != config.backend:
        raise ConfigError(
            f"Expected the Keras backend {config.backend!r} (backend={config.backend!r}), but "
            f"Keras was already imported with {keras.backend.backend()!r}. Set "
            "KERAS_BACKEND before importing Keras (the tripletlab command line does this).")


def train(config: TrainConfig | Mapping[str, Any], model_dir: str | os.PathLike, *,
          resume: bool = False, overwrite: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Trains an embedding model and fills the experiment folder ``model_dir``.

    Everything is checked (configuration, target folder, data, model) before the first file
    is written: a bad option or bad data writes nothing.

    Args:
      config: a :class:`TrainConfig`, or a dict of options for :func:`resolve_config`.
      model_dir: the experiment folder (see :mod:`tripletlab.train.experiment`).
      resume: continue from ``checkpoints/last.keras`` at the epoch in ``state.json``.
      overwrite: replace a previous experiment's outputs in ``model_dir``.
      verbose: 0 silent, 1 progress bar and one line per epoch, 2 one line per epoch.

    Returns:
      The final metrics: ``{"test_to_train": {...}, "test_leave_one_out": {...}, "epochs":
      ..., "train_seconds": ...}`` (also written to ``metrics.json``).

    Raises:
      ConfigError: a bad configuration.
      FileExistsError: ``model_dir`` holds an experiment and neither flag was given.
      FileNotFoundError: ``resume`` without a checkpoint, or missing data.
    """
    if not isinstance(config, TrainConfig):
        config = resolve_config(config)
    check_backend(config)
    experiment = ex.Experiment(model_dir)
    experiment.check_target(resume=resume, overwrite=overwrite)
    state = experiment.read_state() if resume else None
    initial_epoch = int(state["epoch"]) if state else 0
    if initial_epoch > config.epochs:
        raise ConfigError(f"Expected `epochs` >= the {initial_epoch} epochs already trained. "
                          f"Received: epochs={config.epochs}.")

    # Everything that can fail on bad input happens before the first write.
    data = load_data(config)
    keras.utils.set_random_seed(config.seed)
    if resume:
        register_classes()
        model = keras.saving.load_model(experiment.path(ex.LAST_CHECKPOINT), safe_mode=True)
        batches = build_batches(config, data, model)
    else:
        from tripletlab.models import build_model

        try:
            network = build_model(config.model, data.input_shape, config.embedding_dim,
                                  **config.model_arguments())
        except (TypeError, ValueError) as error:
            raise ConfigError(f"model_options: {error}") from None
        if config.mode == "offline":
            from tripletlab.triplet_network import TripletNetwork

            model = TripletNetwork(network)
        else:
            model = network
        batches = build_batches(config, data, model)
        metrics = []
        if config.mode == "online":
            from tripletlab.metrics import mining_metrics

            metrics = mining_metrics(config.margin, config.distance)
        model.compile(optimizer=build_optimizer(config, len(batches)), loss=build_loss(config),
                      metrics=metrics, jit_compile=config.jit_compile)
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(initial_epoch)
    embedding_model = _embedding_model(model)

    callbacks = []
    if config.eval_every > 0:
        callbacks.append(_retrieval_callback(config, data, embedding_model))
    if config.mode == "offline" and config.triplets == "hard":
        callbacks.append(batches.mining_callback())
    if config.live_pca:
        from tripletlab.visualization import LivePCA

        keep = ex.stratified_indices(data.y_test, min(500, config.eval_samples), config.seed)
        callbacks.append(LivePCA(data.x_test[keep], data.y_test[keep],
                                 experiment.path(ex.LIVE_PCA_DIR),
                                 embedding_model=embedding_model,
                                 class_names=data.class_names))
    callbacks.append(ex.AtomicCSVLogger(experiment.path(ex.LOG_FILE), initial_epoch))
    if config.tensorboard:
        board = _tensorboard_callback(experiment.path(ex.TENSORBOARD_DIR))
        if board is not None:
            callbacks.append(board)
    monitor, mode = ("val_map_at_r", "max") if config.eval_every > 0 else ("loss", "min")
    callbacks.append(ex.CheckpointCallback(
        experiment, config.epochs, monitor, mode, best=(state or {}).get("best"),
        export_model=embedding_model))
    if verbose:
        callbacks.append(ex.EpochLine(config.epochs, stream=sys.stdout, defer=verbose == 1))

    # From here on, files are written.
    if overwrite:
        experiment.clear()
    experiment.folder.mkdir(parents=True, exist_ok=True)
    experiment.remove_temporaries()
    write_json(experiment.path(ex.CONFIG_FILE), config.to_dict())

    steps = config.steps_per_epoch if config.sampler == "shuffled" else None
    start = time.perf_counter()
    if initial_epoch < config.epochs:
        model.fit(batches, epochs=config.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps, callbacks=callbacks,
                  verbose=1 if verbose == 1 else 0)
    train_seconds = time.perf_counter() - start

    return finish(experiment, config, data, embedding_model, train_seconds=train_seconds,
                  verbose=verbose)


def finish(experiment: ex.Experiment, config: TrainConfig, data, embedding_model, *,
           train_seconds: float, verbose: int = 1) -> dict[str, Any]:
    """Writes ``last.keras``, the embeddings, ``metrics.json``, the plots and the report."""
    from tripletlab.evaluation import evaluate_embeddings, format_metrics_table

    ex.save_model(embedding_model, experiment.path(ex.LAST_MODEL))
    if not experiment.path(ex.BEST_MODEL).is_file():
        ex.save_model(embedding_model, experiment.path(ex.BEST_MODEL))
    test = embed(embedding_model, data.x_test)
    train_embeddings = embed(embedding_model, data.x_train)
    metrics: dict[str, Any] = {
        "test_to_train": evaluate_embeddings(test, data.y_test, train_embeddings, data.y_train,
                                             distance=config.distance, clustering=False),
        "test_leave_one_out": evaluate_embeddings(test, data.y_test, distance=config.distance,
                                                  clustering=True, seed=config.seed),
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 2),
    }
    keep = ex.save_test_exports(experiment, test, data.y_test, data.x_test,
                                config.export_samples, config.seed)
    write_json(experiment.path(ex.METRICS_FILE), _finite(metrics))
    if config.plots and len(keep):
        from tripletlab.visualization import export_projector, write_report

        images = np.load(experiment.path(ex.TEST_IMAGES), allow_pickle=False)
        export_projector(experiment.path(ex.PROJECTOR_DIR), test[keep], data.y_test[keep],
                         images=images, class_names=data.class_names, seed=config.seed)
        ex.write_plots(experiment.path(ex.PLOTS_DIR), test[keep], data.y_test[keep],
                       images=images, log_csv=experiment.path(ex.LOG_FILE),
                       class_names=data.class_names, methods=config.projections,
                       seed=config.seed)
        write_report(experiment.folder, seed=config.seed,
                     tsne_max_points=2000 if "tsne" in config.projections else 0)
    if verbose:
        print(format_metrics_table(ex.flatten_metrics(metrics)), flush=True)
    return metrics


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
