"""What ``tripletlab train`` hands to ``fit``: the batches as served (per epoch, in a TensorFlow
graph where it can) and the callbacks (Ctrl-C guard, held-out retrieval, log, TensorBoard,
checkpoints, throughput, one line per epoch)."""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from typing import Any

import keras

from tripletlab import experiment as ex
from tripletlab.data.image_files import take_rows
from tripletlab.distances import ranking_distance
from tripletlab.models import extract_embedding_model
from tripletlab.stratified import stratified_sample
from tripletlab.train.callbacks import (
    AtomicCSVLogger,
    CheckpointCallback,
    EpochLine,
    InterruptGuard,
    RestoreGlobalRandomState,
)
from tripletlab.train.config import TrainConfig
from tripletlab.train.graph_batches import GraphBatches, serves_in_graph
from tripletlab.train.resume import FitEpochBatches
from tripletlab.train.throughput import Throughput


@dataclasses.dataclass
class FitPlan:
    """The arguments of ``fit`` and the callbacks the run reads back.

    Attributes:
      batches: what ``fit`` iterates (a ``PyDataset`` or a ``tf.data.Dataset``).
      steps_per_epoch: ``fit``'s ``steps_per_epoch`` (``None``: the batches say).
      callbacks: every callback, in order.
      guard: the Ctrl-C guard (a context manager around ``fit``).
      checkpoints: the checkpoint callback (it keeps the training time).
      embedding_model: the embedding part of the model (what is scored and saved).
    """

    batches: Any
    steps_per_epoch: int | None
    callbacks: list[keras.callbacks.Callback]
    guard: InterruptGuard
    checkpoints: CheckpointCallback
    embedding_model: keras.Model


def plan_fit(config: TrainConfig, data, model: keras.Model, batches, experiment: ex.Experiment,
             state: dict[str, Any] | None, verbose: int) -> FitPlan:
    """Serves ``batches`` and builds the callbacks of a run starting at ``state``'s epoch."""
    initial_epoch = int(state["epoch"]) if state else 0
    steps = config.steps_per_epoch if config.sampler == "shuffled" else None
    guard = InterruptGuard()
    callbacks: list[keras.callbacks.Callback] = [guard]
    if state:
        callbacks.append(RestoreGlobalRandomState(state.get("global_random_state")))
    throughput = Throughput()
    if hasattr(batches, "set_epoch"):
        # batches of fit epoch e depend on e alone, so a resumed run draws the same ones
        batches = FitEpochBatches(batches, steps)
        steps = None
        if serves_in_graph(batches):  # TensorFlow: the same batches, no Python per batch
            served = GraphBatches(batches, initial_epoch=initial_epoch, throughput=throughput)
            callbacks.append(served.callback())
            batches = served.dataset
        else:
            callbacks.append(batches.callback())
    embedding_model = extract_embedding_model(model, strict=False)
    callbacks += monitoring_callbacks(config, data, batches, experiment, embedding_model)
    callbacks.append(AtomicCSVLogger(experiment.path(ex.LOG_FILE), initial_epoch,
                                     record=experiment.record))
    if config.tensorboard:
        board = tensorboard_callback(experiment.path(ex.TENSORBOARD_DIR))
        if board is not None:
            callbacks.append(board)
    monitor, mode = ("val_map_at_r", "max") if config.eval_every > 0 else ("loss", "min")
    checkpoints = CheckpointCallback(
        experiment, config.epochs, monitor, mode, best=(state or {}).get("best"),
        export_model=embedding_model, train_seconds=(state or {}).get("train_seconds", 0.0),
        guard=guard, record=experiment.record)
    callbacks.append(checkpoints)
    if isinstance(batches, keras.utils.PyDataset):
        batches = throughput.wrap(process_batches(batches))
    callbacks.append(throughput)
    if verbose:
        # Keras' progress bar only on a terminal: piped, one plain line per epoch.
        callbacks.append(EpochLine(config.epochs, stream=sys.stdout,
                                   defer=verbose == 1 and sys.stdout.isatty(),
                                   throughput=throughput))
    return FitPlan(batches, steps, callbacks, guard, checkpoints, embedding_model)


def process_batches(batches: keras.utils.PyDataset) -> keras.utils.PyDataset:
    """``batches``, or this process's share of each when several processes feed one global
    batch (:class:`tripletlab.data.process_share.ProcessShare`)."""
    from tripletlab.batch_sharding import process_share
    from tripletlab.data.process_share import ProcessShare

    index, count = process_share()
    return batches if count == 1 else ProcessShare(batches, index, count)


def monitoring_callbacks(config: TrainConfig, data, batches, experiment: ex.Experiment,
                         embedding_model: keras.Model) -> list[keras.callbacks.Callback]:
    """The held-out retrieval scores, offline hard mining, and live PCA frames, as configured."""
    callbacks = []
    if config.eval_every > 0:
        callbacks.append(retrieval_callback(config, data, embedding_model))
    if config.mode == "offline" and config.triplets == "hard":
        callbacks.append(batches.mining_callback())
    if config.live_pca:
        from tripletlab.visualization import LivePCA

        keep = stratified_sample(data.y_test, min(500, max(3, config.eval_samples)), config.seed)
        callbacks.append(LivePCA(take_rows(data.x_test, keep), data.y_test[keep],
                                 experiment.path(ex.LIVE_PCA_DIR),
                                 embedding_model=embedding_model,
                                 class_names=data.class_names, record=experiment.record))
    return callbacks


def retrieval_callback(config: TrainConfig, data, embedding_model):
    """Held-out retrieval scores (``val_map_at_r``...) every ``eval_every`` epochs."""
    from tripletlab.evaluation import RetrievalEvaluation

    keep = stratified_sample(data.y_test, config.eval_samples, config.seed)
    return RetrievalEvaluation(take_rows(data.x_test, keep), data.y_test[keep],
                               distance=ranking_distance(config.distance),
                               every=config.eval_every, recall_ks=(1,), clustering=False,
                               embedding_model=embedding_model)


def quiet_tensorflow_start_up() -> None:
    """On backends other than TensorFlow, keeps TensorFlow's start-up log lines (oneDNN, CPU
    features, absl) off the terminal when something imports it anyway: Keras'
    ``set_random_seed`` seeds TensorFlow whenever it is installed, TensorBoard needs it, and
    augmentation runs on its ops. ``TF_CPP_MIN_LOG_LEVEL`` does not hide TensorFlow 2.21's
    "oneDNN custom operations are on" line (printed on CPUs where oneDNN is on by default), so
    oneDNN's own switch is turned off too: there TensorFlow runs no matmul or convolution, only
    seeding, TensorBoard writing and the augmentation's image ops. Values the user set are
    kept."""
    if keras.backend.backend() != "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def tensorboard_callback(folder: str | os.PathLike):
    """Keras' TensorBoard callback, or ``None`` (with a warning) without TensorFlow."""
    quiet_tensorflow_start_up()
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        warnings.warn('TensorBoard logs need TensorFlow and tensorboard (pip install '
                      '"tripletlab[viz]" tensorflow); writing none. Set tensorboard = false '
                      'to silence this.', UserWarning, stacklevel=2)
        return None
    return keras.callbacks.TensorBoard(log_dir=str(folder), write_graph=False)
