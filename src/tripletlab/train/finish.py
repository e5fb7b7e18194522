"""The finishing stage of ``tripletlab train``: the final models saved, ``best.keras`` scored,
the test sample exported with ``metrics.json``, and the pictures and the report drawn."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tripletlab import experiment as ex
from tripletlab.atomic import save_inference_model
from tripletlab.distances import ranking_distance
from tripletlab.evaluation.metrics import format_scores_table, save_metrics
from tripletlab.inference import embed
from tripletlab.models import extract_embedding_model
from tripletlab.stratified import stratified_sample
from tripletlab.train.compiled_model import register_classes
from tripletlab.train.config import TrainConfig
from tripletlab.train.training_data import build_augment

SCORE_COLUMNS = (("test -> train", "test_to_train"), ("leave-one-out", "test_leave_one_out"))
"""The columns of the printed scores table: title and ``metrics.json`` key."""


def finish(experiment: ex.Experiment, config: TrainConfig, data, embedding_model, *,
           train_seconds: float, verbose: int = 1) -> dict[str, Any]:
    """Writes ``last.keras``, the embeddings, ``metrics.json``, the plots and the report.

    The scores in ``metrics.json`` (and the embeddings, plots and report) are those of the
    model in ``best.keras``, the one users keep; ``metrics.json`` says so (``"model"``,
    ``"best_epoch"``) and records the Keras ``"backend"`` that ran. With ``verbose``, each step
    prints one line before it starts.
    """
    def announce(text: str) -> None:
        if verbose:
            print(text, flush=True)

    bar = 1 if verbose == 1 and sys.stdout.isatty() else 0
    best_model, best_epoch = save_final_models(experiment, config, embedding_model, announce)
    test, metrics = score(best_model, config, data, announce, bar)
    metrics.update({"model": ex.BEST_MODEL, "best_epoch": best_epoch,
                    "backend": keras.backend.backend(), "epochs": config.epochs,
                    "train_seconds": round(train_seconds, 2)})
    announce(f"Writing {ex.EMBEDDINGS_DIR}/ (up to {config.export_samples:,} test points) and "
             f"{ex.METRICS_FILE}")
    keep = ex.save_test_exports(experiment, test, data.y_test, data.x_test,
                                config.export_samples, config.seed, record=experiment.record)
    save_metrics(experiment.path(ex.METRICS_FILE), metrics, record=experiment.record)
    stale = experiment.remove_pictures()  # drawn from an earlier model: replaced or removed
    if stale and not config.plots:
        announce(f"Removed {len(stale)} picture file(s) of an earlier state of the folder "
                 "(plots, projector, report.html): plots = false draws no new ones")
    if config.plots and len(keep):
        draw_pictures(experiment, config, data, test[keep], data.y_test[keep], announce)
    if verbose:
        print(f"Scores of {ex.BEST_MODEL}"
              + (f" (epoch {best_epoch} of {config.epochs})" if best_epoch else "") + ":",
              flush=True)
        print(scores_table(metrics), flush=True)
        print(f"backend {metrics['backend']}, {config.epochs} epochs, "
              f"{metrics['train_seconds']:.1f} s of training", flush=True)
    return metrics


def save_final_models(experiment: ex.Experiment, config: TrainConfig, embedding_model,
                      announce: Callable[[str], None]) -> tuple[keras.Model, int | None]:
    """Saves ``last.keras`` (and ``best.keras`` if no epoch saved one), then loads
    ``best.keras`` back, as users will.

    Returns:
      The embedding model of ``best.keras`` and its 1-based epoch (``None`` if unknown).
    """
    announce(f"Saving {ex.LAST_MODEL}")
    save_inference_model(embedding_model, experiment.path(ex.LAST_MODEL),
                         record=experiment.record)
    if not experiment.path(ex.BEST_MODEL).is_file():
        save_inference_model(embedding_model, experiment.path(ex.BEST_MODEL),
                             record=experiment.record)
    best_epoch = best_epoch_of(experiment.path(ex.LOG_FILE), config)
    announce(f"Loading {ex.BEST_MODEL}" + (f" (epoch {best_epoch})" if best_epoch else "")
             + " to score it")
    register_classes()
    best_model = keras.saving.load_model(experiment.path(ex.BEST_MODEL), safe_mode=True,
                                         compile=False)
    return extract_embedding_model(best_model, strict=False), best_epoch


def score(model: keras.Model, config: TrainConfig, data, announce: Callable[[str], None],
          bar: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeds both splits and scores retrieval test -> train and leave-one-out on test (with
    k-means clustering).

    Returns:
      The test embeddings and ``{"test_to_train": {...}, "test_leave_one_out": {...}}``.
    """
    from tripletlab.evaluation import evaluate_embeddings

    announce(f"Embedding {len(data.y_test):,} test and {len(data.y_train):,} train images")
    test = embed(model, data.x_test, verbose=bar)
    train_embeddings = embed(model, data.x_train, verbose=bar)
    announce(f"Scoring retrieval test -> train ({len(data.y_test):,} queries, "
             f"{len(data.y_train):,} references)")
    distance = ranking_distance(config.distance)
    to_train = evaluate_embeddings(test, data.y_test, train_embeddings, data.y_train,
                                   distance=distance, clustering=False, progress=bool(bar))
    announce("Scoring retrieval leave-one-out on test, and k-means clustering (NMI, AMI)")
    leave_one_out = evaluate_embeddings(test, data.y_test, distance=distance, clustering=True,
                                        seed=config.seed)
    return test, {"test_to_train": to_train, "test_leave_one_out": leave_one_out}


def draw_pictures(experiment: ex.Experiment, config: TrainConfig, data, embeddings: np.ndarray,
                  labels: np.ndarray, announce: Callable[[str], None]) -> None:
    """The projector files, ``plots/`` and ``report.html`` of the exported test sample."""
    from tripletlab.visualization import export_projector, write_plots, write_report
    from tripletlab.visualization.experiment_plots import TRAINING_CURVES

    images = np.load(experiment.path(ex.TEST_IMAGES), allow_pickle=False)
    announce(f"Writing TensorBoard projector files to {ex.PROJECTOR_DIR}/")
    export_projector(experiment.path(ex.PROJECTOR_DIR), embeddings, labels, images=images,
                     class_names=data.class_names, seed=config.seed, record=experiment.record)
    # the projections and curves drawn here go into the report too: each is computed once
    projections: dict[str, np.ndarray] = {}
    written = write_plots(experiment.path(ex.PLOTS_DIR), embeddings, labels, images=images,
                          log_csv=experiment.path(ex.LOG_FILE), class_names=data.class_names,
                          methods=config.projections, seed=config.seed, announce=announce,
                          projections=projections, record=experiment.record)
    augment = build_augment(config, data) if config.mode == "online" else None
    if augment is not None:
        from tripletlab.visualization.experiment_plots import write_augmentation_grid

        announce(f"Drawing {ex.PLOTS_DIR}/augmentation.png (one training image, augmented)")
        image = data.x_train[stratified_sample(data.y_train, 1, config.seed)[0]]
        batch = (config.classes_per_batch * config.samples_per_class
                 if config.sampler == "pk" else config.batch_size)
        written.append(write_augmentation_grid(experiment.path(ex.PLOTS_DIR), image, augment,
                                               seed=config.seed,
                                               batch_size=min(batch, len(data.y_train)),
                                               record=experiment.record))
    curves = [path for path in written if path.name == TRAINING_CURVES]
    tsne = 2000 if "tsne" in config.projections else 0
    announce(f"Writing {ex.REPORT_FILE} (PCA" + (", t-SNE" if tsne else "")
             + " of up to 2,000 points)")
    write_report(experiment.folder, seed=config.seed, tsne_max_points=tsne,
                 projections=projections, training_curves=curves[0] if curves else None,
                 record=experiment.record)


def scores_table(metrics: dict[str, Any]) -> str:
    """The retrieval scores of ``metrics.json`` as a text table: one row per metric, one
    column per protocol (test -> train, leave-one-out), four decimals."""
    return format_scores_table({title: metrics.get(key) or {} for title, key in SCORE_COLUMNS})


def best_epoch_of(log_csv, config: TrainConfig) -> int | None:
    """The 1-based epoch whose model ``best.keras`` holds, read back from ``log.csv``: the
    first epoch with the best ``val_map_at_r`` (else the lowest ``loss``), as
    :class:`~tripletlab.train.callbacks.CheckpointCallback` chose it; ``None`` if unknown."""
    from tripletlab.visualization.plot import read_csv_log

    if not log_csv.is_file():
        return None
    monitor, larger = ("val_map_at_r", True) if config.eval_every > 0 else ("loss", False)
    try:
        epochs, columns = read_csv_log(log_csv)
    except ValueError:  # no rows yet, or no numeric column
        return None
    values = columns.get(monitor)
    if values is None or not np.isfinite(values).any():
        return None
    values = np.where(np.isfinite(values), values, -np.inf if larger else np.inf)
    return int(epochs[int(np.argmax(values) if larger else np.argmin(values))])
