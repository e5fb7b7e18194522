"""``tripletlab embed`` then ``tripletlab evaluate``: files, shapes, and the same metrics as the
Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import small_cnn_file
from tripletlab.cli.main import main
from tripletlab.data import load_dataset
from tripletlab.evaluation import evaluate_embeddings


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return small_cnn_file(tmp_path_factory)


def test_embed_then_evaluate(model_file, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main(["embed", "--model", str(model_file), "--dataset", "digits", "--split", "test",
                 "--output", str(out)]) == 0
    embeddings = np.load(out / "embeddings.npy")
    labels = np.load(out / "labels.npy")
    data = load_dataset("digits", seed=0)
    assert embeddings.shape == (len(data.y_test), 8) and embeddings.dtype == np.float32
    np.testing.assert_array_equal(labels, data.y_test)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)

    metrics_file = tmp_path / "metrics.json"
    assert main(["evaluate", "--embeddings", str(out / "embeddings.npy"), "--labels",
                 str(out / "labels.npy"), "--no-clustering", "--output", str(metrics_file)]) == 0
    printed = capsys.readouterr().out
    assert "precision_at_1" in printed and "map_at_r" in printed
    saved = json.loads(metrics_file.read_text())
    expected = evaluate_embeddings(embeddings, labels, clustering=False)
    assert saved == pytest.approx(expected)


def test_evaluate_with_model_test_to_train(model_file, tmp_path):
    metrics_file = tmp_path / "m.json"
    assert main(["evaluate", "--model", str(model_file), "--dataset", "digits",
                 "--no-clustering", "--output", str(metrics_file)]) == 0
    saved = json.loads(metrics_file.read_text())
    assert 0.0 <= saved["precision_at_1"] <= 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "--model", "missing.keras", "--dataset", "digits", "--output", "o"],
         "missing.keras"),
        (["evaluate", "--embeddings", "e.npy"], "--labels"),
        (["evaluate", "--embeddings", "e.npy", "--labels", "l.npy", "--distance", "cosine"],
         "distance"),
    ],
    ids=["missing-model", "no-labels", "bad-distance"],
)
def test_usage_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_embed_shape_mismatch(model_file, tmp_path, capsys):
    assert main(["embed", "--model", str(model_file), "--dataset", "mnist-sample",
                 "--output", str(tmp_path / "o")]) == 2
    assert "Expected images of shape (8, 8, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unknown_flag_names_the_closest_flag(capsys):
    import pytest

    from tripletlab.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model-dir", "unused", "--learning-rat", "0.1"])
    assert exit_info.value.code == 2
    assert "Did you mean '--learning-rate'?" in capsys.readouterr().err
