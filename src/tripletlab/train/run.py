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
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from tripletlab import experiment as ex
from tripletlab.atomic import save_inference_model, write_json
from tripletlab.data.augmentation import describe as describe_augmentation
from tripletlab.data.image_files import ImageFiles, take_rows
from tripletlab.distances import ranking_distance
from tripletlab.inference import embed
from tripletlab.losses import registry
from tripletlab.models import extract_embedding_model
from tripletlab.stratified import stratified_sample
from tripletlab.train.batch_shape import fit_batch_shape
from tripletlab.train.callbacks import (
    AtomicCSVLogger,
    CheckpointCallback,
    EpochLine,
    InterruptGuard,
    RestoreGlobalRandomState,
)
from tripletlab.train.config import (
    ConfigError,
    TrainConfig,
    check_data,
    data_source,
    resolve_config,
)
from tripletlab.train.graph_batches import GraphBatches, serves_in_graph
from tripletlab.train.resume import FitEpochBatches, restore_seed_generator_states
from tripletlab.train.throughput import Throughput


def build_loss(config: TrainConfig) -> keras.losses.Loss:
    """The Keras loss of ``config``: the factory of its entry in
    :mod:`tripletlab.losses.registry` (online losses, or the offline ``TripletLoss``)."""
    return registry.build_loss(config)


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
        optimizer = keras.optimizers.SGD(learning_rate=rate)
    elif config.optimizer == "adamw":
        kwargs = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        optimizer = keras.optimizers.AdamW(learning_rate=rate, **kwargs)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    if config.backbone_learning_rate_multiplier != 1.0:
        from tripletlab.models.backbone_rate import scaled_optimizer

        optimizer = scaled_optimizer(optimizer, config.backbone_learning_rate_multiplier)
    return optimizer


def load_data(config: TrainConfig):
    """The :class:`tripletlab.data.Dataset` of ``config``."""
    from tripletlab.data import load_dataset

    return load_dataset(config.dataset, data_file=config.data_file,
                        image_folder=config.image_folder, seed=config.seed,
                        test_fraction=config.test_fraction, image_size=config.image_size)


def describe_data(data) -> str:
    """One line on the data: its size, where the images are, how it was split."""
    where = ("streamed from disk" if isinstance(data.x_train, ImageFiles) else "in memory")
    shape = "x".join(str(d) for d in data.input_shape)
    line = (f"Data {data.name}: {len(data.y_train):,} train and {len(data.y_test):,} test "
            f"images of {shape}, {data.num_classes} classes, {where}")
    return line + (f"; split: {data.split}" if data.split else "")


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

    workers = input_workers(data)
    augment = build_augment(config, data)  # training batches only
    if config.sampler == "pk":
        return PKSampler(data.x_train, data.y_train, config.classes_per_batch,
                         config.samples_per_class, steps_per_epoch=config.steps_per_epoch,
                         seed=config.seed, augment=augment, **workers)
    # A last batch of one sample holds no positive pair (no loss): drop it.
    return ShuffledBatches(data.x_train, data.y_train, config.batch_size, seed=config.seed,
                           drop_remainder=len(data.y_train) % config.batch_size == 1,
                           augment=augment, **workers)


def input_workers(data) -> dict[str, Any]:
    """The ``PyDataset`` worker options of the training batches: images on disk
    (:class:`~tripletlab.data.ImageFiles`) are decoded by
    :data:`~tripletlab.inference.DEFAULT_WORKERS` threads (OpenCV releases the GIL while it
    decodes; threads share the path list, processes would copy it); arrays in memory need
    none."""
    from tripletlab.inference import DEFAULT_WORKERS

    if isinstance(data.x_train, ImageFiles):
        return {"workers": DEFAULT_WORKERS, "use_multiprocessing": False}
    return {}


def build_augment(config: TrainConfig, data):
    """The augmentation of the training batches (:mod:`tripletlab.data.augmentation`), or
    ``None`` when the ``[augmentation]`` keys turn nothing on.

    Raises:
      ConfigError: augmentation of inputs that are not images, or ``saturation`` / ``hue`` on
        images without 3 channels.
    """
    from tripletlab.data.augmentation import build_augmentation, check_images

    source = data_source(config)
    check_images(config.augmentation(), data.x_train.shape[1:], source)
    return build_augmentation(config.augmentation())




def _retrieval_callback(config: TrainConfig, data, embedding_model):
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


def _tensorboard_callback(folder):
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


def register_classes() -> None:
    """Registers every serialisable tripletlab class with Keras (before ``load_model``): those
    of :func:`tripletlab.register_keras_classes`, ``CompatLoss`` included."""
    import tripletlab

    tripletlab.register_keras_classes()


# Batches per compiled call when the configuration sets none: measured fastest on a CPU
# (benchmarks/bench_training.py; Keras' PyTorch trainer accepts only 1).
DEFAULT_STEPS_PER_EXECUTION = {"tensorflow": 16, "jax": 16, "torch": 1}


def steps_per_execution(config: TrainConfig) -> int:
    """``config.steps_per_execution``, or the measured default of the running backend."""
    if config.steps_per_execution is not None:
        if config.steps_per_execution > 1 and keras.backend.backend() == "torch":
            raise ConfigError("Expected steps_per_execution=1 on the PyTorch backend (Keras "
                              "runs one batch per call there). Received: "
                              f"steps_per_execution={config.steps_per_execution}.")
        return config.steps_per_execution
    return DEFAULT_STEPS_PER_EXECUTION.get(keras.backend.backend(), 1)


def check_backend(config: TrainConfig) -> None:
    """Raises if ``config.backend`` is set and Keras already runs another backend."""
    if config.backend is not None and keras.backend.backend() != config.backend:
        raise ConfigError(
            f"Expected the Keras backend {config.backend!r} (backend={config.backend!r}), but "
            f"Keras was already imported with {keras.backend.backend()!r}. Set "
            "KERAS_BACKEND before importing Keras (the tripletlab command line does this).")


def train(config: TrainConfig | Mapping[str, Any], model_dir: str | os.PathLike | ex.Experiment,
          *, resume: bool = False, overwrite: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Trains an embedding model and fills the experiment folder ``model_dir``.

    Everything is checked (configuration, target folder, data, model) before the first file
    is written: a bad option or bad data writes nothing. The folder is locked against other
    processes for the whole run (:mod:`tripletlab.folder_lock`), so a second run, an
    ``overwrite`` or a ``resume`` of it elsewhere is refused while this one runs. Every file
    written is recorded in ``manifest.json`` first; ``overwrite`` removes only recorded files.
    Ctrl-C stops training between two steps (``KeyboardInterrupt``), leaving the last finished
    epoch resumable.

    Args:
      config: a :class:`TrainConfig`, or a dict of options for :func:`resolve_config`.
      model_dir: the experiment folder (see :mod:`tripletlab.experiment`), or an
        :class:`~tripletlab.experiment.Experiment` whose lock the caller may already hold.
      resume: continue from ``checkpoints/last.keras`` at the epoch in ``state.json``, with
        the samplers' and random generators' state, so the run continues as if never
        stopped; a run stopped before its first checkpoint starts again.
      overwrite: replace a previous experiment's outputs in ``model_dir`` (the files its
        ``manifest.json`` names; other files stay).
      verbose: 0 silent, 1 progress bar and one line per epoch, 2 one line per epoch.

    Returns:
      The final metrics of the model in ``best.keras``: ``{"test_to_train": {...},
      "test_leave_one_out": {...}, "model": "best.keras", "best_epoch": ..., "backend": ...,
      "epochs": ..., "train_seconds": ...}`` (also written to ``metrics.json``).

    Raises:
      ConfigError: a bad configuration, or data that cannot train (one class, no positive
        pair; see :func:`tripletlab.train.config.check_data`).
      FileExistsError: ``model_dir`` holds an experiment and neither flag was given, or
        holds other files and is not a tripletlab experiment.
      FileNotFoundError: missing data.
      ExperimentInUseError: another process holds ``model_dir``.
      OSError: ``model_dir`` cannot be written (a :class:`~tripletlab.errors.UserFileError`).
      KeyboardInterrupt: Ctrl-C.
    """
    if not isinstance(config, TrainConfig):
        config = resolve_config(config)
    check_backend(config)
    experiment = (model_dir if isinstance(model_dir, ex.Experiment)
                  else ex.Experiment(model_dir))
    with experiment.lock("train"):
        return train_in_locked_folder(config, experiment, resume=resume, overwrite=overwrite,
                                      verbose=verbose)


def train_in_locked_folder(config: TrainConfig, experiment: ex.Experiment, *, resume: bool,
                           overwrite: bool, verbose: int) -> dict[str, Any]:
    """:func:`train`, once the folder's lock is held."""
    target = experiment.check_target(resume=resume, overwrite=overwrite)
    resume = target == "resume"
    state = experiment.read_state() if resume else None
    initial_epoch = int(state["epoch"]) if state else 0
    if initial_epoch > config.epochs:
        raise ConfigError(f"Expected `epochs` >= the {initial_epoch} epochs already trained. "
                          f"Received: epochs={config.epochs}.")

    # Everything that can fail on bad input happens before the first write.
    data = load_data(config)
    check_data(config, data.y_train, data.y_test)
    config, notes = fit_batch_shape(config, data.y_train, source=data_source(config))
    if verbose:
        print(describe_data(data), flush=True)
        for note in notes:
            print(f"Batches: {note}", flush=True)
    quiet_tensorflow_start_up()  # before set_random_seed, which imports TensorFlow
    keras.utils.set_random_seed(config.seed)
    if resume:
        register_classes()
        model = keras.saving.load_model(experiment.path(ex.LAST_CHECKPOINT), safe_mode=True)
        restore_seed_generator_states(model, state.get("seed_generators"))
        batches = build_batches(config, data, model)
    else:
        from tripletlab.models import build_model

        try:
            network = build_model(config.model, data.input_shape, config.embedding_dim,
                                  **config.model_arguments())
        except ConfigError:
            raise
        except (TypeError, ValueError) as error:
            raise ConfigError(f"model_options: {error}") from None
        load_initial_weights(config, network)
        set_backbone_trainable(network, config.freeze_backbone_epochs == 0,
                               freeze_batch_norm=config.keeps_batch_norm_frozen())
        if config.mode == "offline":
            from tripletlab.models import TripletNetwork

            model = TripletNetwork(network)
        else:
            model = network
        batches = build_batches(config, data, model)
        metrics = []
        if config.mode == "online":
            from tripletlab.mining_metrics import mining_metrics

            metrics = mining_metrics(config.margin, config.distance)
        model.compile(optimizer=build_optimizer(config, len(batches)), loss=build_loss(config),
                      metrics=metrics, jit_compile=config.jit_compile,
                      steps_per_execution=steps_per_execution(config))
    if resume:
        model.steps_per_execution = steps_per_execution(config)  # the backend may differ
    steps = config.steps_per_epoch if config.sampler == "shuffled" else None
    guard = InterruptGuard()
    callbacks = [guard]
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

    if config.eval_every > 0:
        callbacks.append(_retrieval_callback(config, data, embedding_model))
    if config.mode == "offline" and config.triplets == "hard":
        callbacks.append(batches.mining_callback())
    if config.live_pca:
        from tripletlab.visualization import LivePCA

        keep = stratified_sample(data.y_test, min(500, config.eval_samples), config.seed)
        callbacks.append(LivePCA(take_rows(data.x_test, keep), data.y_test[keep],
                                 experiment.path(ex.LIVE_PCA_DIR),
                                 embedding_model=embedding_model,
                                 class_names=data.class_names))
    callbacks.append(AtomicCSVLogger(experiment.path(ex.LOG_FILE), initial_epoch))
    if config.tensorboard:
        board = _tensorboard_callback(experiment.path(ex.TENSORBOARD_DIR))
        if board is not None:
            callbacks.append(board)
    monitor, mode = ("val_map_at_r", "max") if config.eval_every > 0 else ("loss", "min")
    checkpoints = CheckpointCallback(
        experiment, config.epochs, monitor, mode, best=(state or {}).get("best"),
        export_model=embedding_model, train_seconds=(state or {}).get("train_seconds", 0.0),
        guard=guard)
    callbacks.append(checkpoints)
    if isinstance(batches, keras.utils.PyDataset):
        batches = throughput.wrap(batches)
    callbacks.append(throughput)
    if verbose:
        # Keras' progress bar only on a terminal: piped, one plain line per epoch.
        callbacks.append(EpochLine(config.epochs, stream=sys.stdout,
                                   defer=verbose == 1 and sys.stdout.isatty(),
                                   throughput=throughput))

    if verbose and config.mode == "online" and describe_augmentation(config.augmentation()):
        print("Augmenting the training batches: "
              + ", ".join(describe_augmentation(config.augmentation())), flush=True)

    # From here on, files are written, each recorded in the manifest first.
    if target in ("overwrite", "restart"):
        experiment.clear()
    experiment.start_manifest()
    experiment.remove_temporaries()
    with experiment.recording(), guard:
        write_json(experiment.path(ex.CONFIG_FILE), config.to_dict())
        try:
            if initial_epoch < config.epochs:
                # shuffle=False: the samplers shuffle already; Keras' shuffle of the batch
                # order draws from Python's global `random`, which a resume cannot restore.
                # Keras' progress bar only on a terminal; piped, one plain line per epoch.
                fit_in_phases(model, config, batches, initial_epoch=initial_epoch,
                              steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
                              verbose=1 if verbose == 1 and sys.stdout.isatty() else 0)
                # a Ctrl-C that Keras swallowed after the last epoch's checks still stops here
                guard.check()
        finally:
            experiment.record_tensorboard()
        return finish(experiment, config, data, embedding_model,
                      train_seconds=checkpoints.train_seconds, verbose=verbose)


def load_initial_weights(config: TrainConfig, network: keras.Model) -> None:
    """Loads ``config.weights`` (a file) into a model that is not a backbone (a backbone's
    builder loads its own ``weights``)."""
    from tripletlab.errors import UserFileNotFoundError
    from tripletlab.models.backbones import BACKBONES

    if config.model in BACKBONES or config.weights in ("none", "imagenet"):
        return
    if not os.path.isfile(config.weights):
        raise UserFileNotFoundError(f"Expected `weights` to be 'none' or the path of a weights "
                                    f"file. Received: weights={config.weights!r}, which does "
                                    "not exist.")
    network.load_weights(config.weights)


def set_backbone_trainable(model: keras.Model, trainable: bool, *,
                           freeze_batch_norm: bool = False) -> bool:
    """Freezes or unfreezes the backbone of ``model`` (Keras' ``trainable``: frozen, its
    batch normalisation runs in inference mode).

    Args:
      model: a model holding a backbone (:func:`tripletlab.models.backbones.backbone_of`);
        other models are left as they are.
      trainable: unfreeze (``True``) or freeze (``False``) the backbone.
      freeze_batch_norm: with ``trainable``, keep the backbone's ``BatchNormalization``
        layers frozen (inference mode, their statistics kept), as Keras' fine-tuning guide
        advises for pretrained weights.

    Returns:
      Whether any layer's ``trainable`` changed; a model that has been compiled must then be
      recompiled (:func:`recompile`).
    """
    from tripletlab.models.backbones import backbone_of, batch_norm_layers

    backbone = backbone_of(model)
    if backbone is None:
        return False
    kept_frozen = batch_norm_layers(backbone) if trainable and freeze_batch_norm else []
    if backbone.trainable == trainable and not any(layer.trainable for layer in kept_frozen):
        return False
    backbone.trainable = trainable  # sets every inner layer's too
    for layer in kept_frozen:
        layer.trainable = False
    return True


def recompile(model: keras.Model) -> None:
    """Compiles ``model`` again from its own compile configuration (after its trainable
    variables changed), carrying the optimizer's state over (step count, schedule position,
    the moments of the variables that were trainable already)."""
    from tripletlab.models.backbone_rate import copy_optimizer_state

    old, steps = model.optimizer, model.steps_per_execution
    model.compile_from_config(model.get_compile_config())
    model.steps_per_execution = steps  # a resumed run's may differ from the saved one
    copy_optimizer_state(old, model.optimizer)


def fit_in_phases(model: keras.Model, config: TrainConfig, batches, *, initial_epoch: int,
                  **fit_arguments: Any) -> None:
    """``model.fit`` up to ``config.epochs``: with ``freeze_backbone_epochs = N``, epochs
    ``[0, N)`` with the backbone frozen, then the backbone unfrozen, the model recompiled
    (same optimizer state) and the rest from ``initial_epoch=N``. A resumed run continues
    in the phase of its epoch."""
    frozen_until = min(config.freeze_backbone_epochs, config.epochs)
    if initial_epoch < frozen_until:
        if set_backbone_trainable(model, False):
            recompile(model)
        model.fit(batches, epochs=frozen_until, initial_epoch=initial_epoch, **fit_arguments)
        initial_epoch = frozen_until
    if initial_epoch < config.epochs:
        if set_backbone_trainable(model, True,
                                  freeze_batch_norm=config.keeps_batch_norm_frozen()):
            recompile(model)
        model.fit(batches, epochs=config.epochs, initial_epoch=initial_epoch, **fit_arguments)


def finish(experiment: ex.Experiment, config: TrainConfig, data, embedding_model, *,
           train_seconds: float, verbose: int = 1) -> dict[str, Any]:
    """Writes ``last.keras``, the embeddings, ``metrics.json``, the plots and the report.

    The scores in ``metrics.json`` (and the embeddings, plots and report) are those of the
    model in ``best.keras``, the one users keep; ``metrics.json`` says so (``"model"``,
    ``"best_epoch"``) and records the Keras ``"backend"`` that ran. With ``verbose``, each step
    prints one line before it starts.
    """
    from tripletlab.evaluation import evaluate_embeddings

    def announce(text: str) -> None:
        if verbose:
            print(text, flush=True)

    announce(f"Saving {ex.LAST_MODEL}")
    save_inference_model(embedding_model, experiment.path(ex.LAST_MODEL))
    if not experiment.path(ex.BEST_MODEL).is_file():
        save_inference_model(embedding_model, experiment.path(ex.BEST_MODEL))
    best_epoch = _best_epoch(experiment.path(ex.LOG_FILE), config)
    announce(f"Loading {ex.BEST_MODEL}" + (f" (epoch {best_epoch})" if best_epoch else "")
             + " to score it")
    register_classes()
    best_model = keras.saving.load_model(experiment.path(ex.BEST_MODEL), safe_mode=True,
                                         compile=False)
    best_model = extract_embedding_model(best_model, strict=False)
    bar = 1 if verbose == 1 and sys.stdout.isatty() else 0
    announce(f"Embedding {len(data.y_test):,} test and {len(data.y_train):,} train images")
    test = embed(best_model, data.x_test, verbose=bar)
    train_embeddings = embed(best_model, data.x_train, verbose=bar)
    announce(f"Scoring retrieval test -> train ({len(data.y_test):,} queries, "
             f"{len(data.y_train):,} references)")
    to_train = evaluate_embeddings(test, data.y_test, train_embeddings, data.y_train,
                                   distance=ranking_distance(config.distance), clustering=False,
                                   progress=bool(bar))
    announce("Scoring retrieval leave-one-out on test, and k-means clustering (NMI, AMI)")
    leave_one_out = evaluate_embeddings(test, data.y_test,
                                        distance=ranking_distance(config.distance),
                                        clustering=True, seed=config.seed)
    metrics: dict[str, Any] = {
        "test_to_train": to_train,
        "test_leave_one_out": leave_one_out,
        "model": ex.BEST_MODEL,
        "best_epoch": best_epoch,
        "backend": keras.backend.backend(),
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 2),
    }
    announce(f"Writing {ex.EMBEDDINGS_DIR}/ (up to {config.export_samples:,} test points) and "
             f"{ex.METRICS_FILE}")
    keep = ex.save_test_exports(experiment, test, data.y_test, data.x_test,
                                config.export_samples, config.seed)
    write_json(experiment.path(ex.METRICS_FILE), metrics, nan_as_null=True)
    stale = experiment.remove_pictures()  # drawn from an earlier model: replaced or removed
    if stale and not config.plots:
        announce(f"Removed {len(stale)} picture file(s) of an earlier state of the folder "
                 "(plots, projector, report.html): plots = false draws no new ones")
    if config.plots and len(keep):
        from tripletlab.visualization import export_projector, write_plots, write_report
        from tripletlab.visualization.experiment_plots import TRAINING_CURVES

        images = np.load(experiment.path(ex.TEST_IMAGES), allow_pickle=False)
        announce(f"Writing TensorBoard projector files to {ex.PROJECTOR_DIR}/")
        export_projector(experiment.path(ex.PROJECTOR_DIR), test[keep], data.y_test[keep],
                         images=images, class_names=data.class_names, seed=config.seed)
        # the projections and curves drawn here go into the report too: each is computed once
        projections: dict[str, np.ndarray] = {}
        written = write_plots(experiment.path(ex.PLOTS_DIR), test[keep], data.y_test[keep],
                              images=images, log_csv=experiment.path(ex.LOG_FILE),
                              class_names=data.class_names, methods=config.projections,
                              seed=config.seed, announce=announce, projections=projections)
        augment = build_augment(config, data) if config.mode == "online" else None
        if augment is not None:
            from tripletlab.visualization.experiment_plots import write_augmentation_grid

            announce(f"Drawing {ex.PLOTS_DIR}/augmentation.png (one training image, "
                     "augmented)")
            image = data.x_train[stratified_sample(data.y_train, 1, config.seed)[0]]
            batch = (config.classes_per_batch * config.samples_per_class
                     if config.sampler == "pk" else config.batch_size)
            written.append(write_augmentation_grid(experiment.path(ex.PLOTS_DIR), image,
                                                   augment, seed=config.seed,
                                                   batch_size=min(batch, len(data.y_train))))
        curves = [path for path in written if path.name == TRAINING_CURVES]
        tsne = 2000 if "tsne" in config.projections else 0
        announce(f"Writing {ex.REPORT_FILE} (PCA" + (", t-SNE" if tsne else "")
                 + " of up to 2,000 points)")
        write_report(experiment.folder, seed=config.seed, tsne_max_points=tsne,
                     projections=projections, training_curves=curves[0] if curves else None)
    if verbose:
        print(f"Scores of {ex.BEST_MODEL}"
              + (f" (epoch {best_epoch} of {config.epochs})" if best_epoch else "") + ":",
              flush=True)
        print(scores_table(metrics), flush=True)
        print(f"backend {metrics['backend']}, {config.epochs} epochs, "
              f"{metrics['train_seconds']:.1f} s of training", flush=True)
    return metrics


def scores_table(metrics: Mapping[str, Any]) -> str:
    """The retrieval scores of ``metrics.json`` as a text table: one row per metric, one
    column per protocol (test -> train, leave-one-out), four decimals."""
    columns = [("test -> train", metrics.get("test_to_train") or {}),
               ("leave-one-out", metrics.get("test_leave_one_out") or {})]
    names = list(dict.fromkeys(name for _, scores in columns for name in scores))
    rows = [["metric", *(title for title, _ in columns)]]
    for name in names:
        cells = []
        for _, scores in columns:
            value = scores.get(name)
            cells.append("-" if value is None or not np.isfinite(value) else f"{value:.4f}")
        rows.append([name, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join([row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width
                                                   in zip(row[1:], widths[1:], strict=True))])
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _best_epoch(log_csv, config: TrainConfig) -> int | None:
    """The 1-based epoch whose model ``best.keras`` holds, read back from ``log.csv``: the
    first epoch with the best ``val_map_at_r`` (else the lowest ``loss``), as
    :class:`~tripletlab.train.callbacks.CheckpointCallback` chose it; ``None`` if unknown."""
    import csv
    import math

    monitor, larger = ("val_map_at_r", True) if config.eval_every > 0 else ("loss", False)
    if not os.path.isfile(log_csv):
        return None
    best = None
    with open(log_csv, encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            try:
                value, epoch = float(row.get(monitor, "nan")), int(row["epoch"]) + 1
            except (TypeError, ValueError, KeyError):
                continue
            if not math.isfinite(value):
                continue
            if best is None or (value > best[0] if larger else value < best[0]):
                best = (value, epoch)
    return None if best is None else best[1]


