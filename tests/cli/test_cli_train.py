"""``tripletlab train`` end to end on digits, and the errors that must write nothing."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tripletlab.cli.main import main

TINY = ["--dataset", "digits", "--epochs", "2", "--steps-per-epoch", "3", "--eval-samples", "100",
        "--embedding-dim", "8", "--model-options", '{"widths": [8]}', "--verbose", "2",
        "--projections", "pca"]

EXPECTED_FILES = [
    "config.json", "log.csv", "checkpoints/last.keras", "checkpoints/state.json", "best.keras",
    "last.keras", "metrics.json", "embeddings/test_embeddings.npy", "embeddings/test_labels.npy",
    "embeddings/test_images.npy", "plots/training_curves.png", "plots/pca.png",
    "plots/neighbors.png", "plots/live_pca/animation.gif", "report.html",
    "projector/vecs.tsv", "projector/meta.tsv", "projector/sprite.png",
    "projector/projector_config.pbtxt",
]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "run"
    status = main(["train", "--model-dir", str(folder), *TINY, "--live-pca",
                   "--export-samples", "150"])
    assert status == 0
    return folder


def test_train_writes_every_file(experiment, capsys):
    for name in EXPECTED_FILES:
        assert (experiment / name).is_file(), name
    assert any((experiment / "tensorboard").rglob("events.out.tfevents*"))
    assert not list(experiment.rglob(".*.tmp*"))
    config = json.loads((experiment / "config.json").read_text())
    assert config["dataset"] == "digits" and config["epochs"] == 2 and config["margin"] == 1.0
    state = json.loads((experiment / "checkpoints/state.json").read_text())
    assert state["epoch"] == 2 and state["monitor"] == "val_map_at_r"
    with open(experiment / "log.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"loss", "fraction_positive_triplets", "val_map_at_r"} <= set(rows[0])
    metrics = json.loads((experiment / "metrics.json").read_text())
    for protocol in ("test_to_train", "test_leave_one_out"):
        assert 0.0 <= metrics[protocol]["precision_at_1"] <= 1.0
        assert 0.0 <= metrics[protocol]["map_at_r"] <= 1.0
    embeddings = np.load(experiment / "embeddings/test_embeddings.npy")
    images = np.load(experiment / "embeddings/test_images.npy")
    labels = np.load(experiment / "embeddings/test_labels.npy")
    assert embeddings.shape == (150, 8) and images.shape == (150, 8, 8, 1)
    assert images.dtype == np.uint8 and labels.shape == (150,)
    assert len(np.unique(labels)) == 10  # stratified


def test_finished_experiment_is_not_overwritten(experiment, capsys):
    before = (experiment / "metrics.json").read_bytes()
    assert main(["train", "--model-dir", str(experiment), *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (experiment / "metrics.json").read_bytes() == before


def test_visualize_and_report(experiment, tmp_path, capsys):
    assert main(["visualize", "--experiment", str(experiment), "--methods", "pca",
                 "--output", str(tmp_path)]) == 0
    assert (tmp_path / "plots/pca.png").is_file()
    assert (tmp_path / "plots/neighbors.png").is_file()
    assert (tmp_path / "projector/vecs.tsv").is_file()
    assert main(["report", "--experiment", str(experiment), "--output",
                 str(tmp_path / "r.html"), "--tsne-max-points", "0"]) == 0
    assert "<html" in (tmp_path / "r.html").read_text()[:500].lower()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--loss", "semihard"], "Did you mean 'semi-hard'"),
        (["--learning-rat", "0.1"], "unrecognized arguments"),
        (["--epochs", "zero"], "Expected `--epochs` to be an integer"),
        (["--dataset", "npz", "--data-file", "missing.npz"], "missing.npz"),
        (["--model-options", '{"width": [8]}'], "Did you mean 'widths'"),
    ],
    ids=["bad-loss", "unknown-flag", "bad-type", "missing-data", "bad-model-option"],
)
def test_errors_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    folder = tmp_path / "never"
    with pytest.raises(SystemExit) if flags[0] == "--learning-rat" else _no_exit() as raised:
        status = main(["train", "--model-dir", str(folder), "--dataset", "digits",
                       "--no-tensorboard", *flags])
    status = raised.value.code if hasattr(raised, "value") else status
    assert status == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # argparse adds its usage line
    assert not folder.exists()


@pytest.mark.parametrize("triplets", ["random", "hard"])
def test_offline_triplets(tmp_path, triplets):
    folder = tmp_path / "offline"
    assert main(["train", "--model-dir", str(folder), *TINY, "--mode", "offline",
                 "--triplets", triplets, "--batch-size", "16", "--no-plots",
                 "--no-tensorboard"]) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0.0 <= metrics["test_to_train"]["precision_at_1"] <= 1.0
    # best.keras / last.keras hold the single-input embedding model
    assert main(["embed", "--model", str(folder / "last.keras"), "--dataset", "digits",
                 "--output", str(tmp_path / "emb")]) == 0
    assert np.load(tmp_path / "emb/embeddings.npy").shape[1] == 8


def test_unknown_config_key_in_file(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('dataset = "digits"\n[sampler]\nclases_per_batch = 4\n')
    assert main(["train", "--config", str(config), "--model-dir", str(tmp_path / "x")]) == 2
    assert "Did you mean 'classes_per_batch'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


class _no_exit:  # a context manager that lets the status through
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_offline_mean_squared(tmp_path):
    # README's Siamese workflow uses TripletLoss(distance="mean-squared"); the CLI accepts it
    folder = tmp_path / "offline"
    assert main(["train", "--model-dir", str(folder), *TINY, "--mode", "offline",
                 "--distance", "mean-squared", "--batch-size", "16", "--no-plots",
                 "--no-tensorboard"]) == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["distance"] == "mean-squared" and config["mode"] == "offline"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0.0 <= metrics["test_to_train"]["precision_at_1"] <= 1.0
