"""The scores an experiment reports are those of ``best.keras``, the model users keep, and
``metrics.json`` says so, with the backend that ran."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tripletlab import experiment as ex
from tripletlab.atomic import save_model
from tripletlab.data import load_dataset
from tripletlab.evaluation import evaluate_embeddings
from tripletlab.inference import embed
from tripletlab.models import build_model
from tripletlab.stratified import stratified_sample
from tripletlab.train.config import resolve_config
from tripletlab.train.finish import finish


def _model(seed):
    keras.utils.set_random_seed(seed)
    return build_model("small-cnn", (8, 8, 1), 4, widths=(4,))


@pytest.mark.parametrize("log", [None, [0.3, 0.5, 0.4]], ids=["no-log", "log"])
def test_metrics_describe_best_keras(tmp_path, log):
    config = resolve_config({"dataset": "digits", "epochs": 3, "plots": False,
                             "export_samples": 50})
    data = load_dataset("digits", seed=0)
    experiment = ex.Experiment(tmp_path / "run")
    experiment.folder.mkdir()
    best, last = _model(0), _model(1)
    save_model(best, experiment.path(ex.BEST_MODEL))
    if log is not None:
        rows = "".join(f"{epoch},1.0,{value}\n" for epoch, value in enumerate(log))
        experiment.path(ex.LOG_FILE).write_text("epoch,loss,val_map_at_r\n" + rows)

    metrics = finish(experiment, config, data, last, train_seconds=1.5, verbose=0)

    expected = evaluate_embeddings(embed(best, data.x_test), data.y_test,
                                   embed(best, data.x_train), data.y_train, clustering=False)
    assert metrics["test_to_train"] == pytest.approx(expected)
    last_scores = evaluate_embeddings(embed(last, data.x_test), data.y_test,
                                      embed(last, data.x_train), data.y_train, clustering=False)
    assert metrics["test_to_train"] != pytest.approx(last_scores)
    saved = json.loads(experiment.path(ex.METRICS_FILE).read_text())
    assert saved["model"] == "best.keras"
    assert saved["best_epoch"] == (None if log is None else 2)
    assert saved["backend"] == keras.backend.backend()
    exported = np.load(experiment.path(ex.TEST_EMBEDDINGS))
    keep = stratified_sample(data.y_test, 50, config.seed)
    np.testing.assert_allclose(exported, embed(best, data.x_test)[keep], atol=1e-5)

