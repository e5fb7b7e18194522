"""The experiment folder's manifest: ``--overwrite`` removes only what a run wrote, and a folder
that is not a tripletlab experiment is never written into."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tripletlab import atomic
from tripletlab import experiment as ex
from tripletlab.cli.main import main

TINY = ["--dataset", "digits", "--epochs", "1", "--steps-per-epoch", "2", "--eval-samples",
        "60", "--embedding-dim", "8", "--model-options", '{"widths": [8]}', "--verbose", "0",
        "--projections", "pca"]


def _user_files(folder):
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    (folder / "embeddings").mkdir(parents=True, exist_ok=True)
    (folder / "plots/my_figure.png").write_bytes(b"my figure")
    np.save(folder / "embeddings/my_vectors.npy", np.arange(3))
    (folder / "notes.txt").write_text("mine")


def _assert_user_files_intact(folder):
    assert (folder / "plots/my_figure.png").read_bytes() == b"my figure"
    assert np.load(folder / "embeddings/my_vectors.npy").tolist() == [0, 1, 2]
    assert (folder / "notes.txt").read_text() == "mine"


def test_manifest_records_before_writing_and_clear_removes_only_those(tmp_path):
    folder = tmp_path / "run"
    experiment = ex.Experiment(folder)
    experiment.start_manifest()
    seen = []

    def record(path):
        experiment.record(path)
        seen.append((path, json.loads((folder / ex.MANIFEST_FILE).read_text())["files"]))

    atomic.write_text(folder / "plots/pca.png", "ours", record=record)
    atomic.write_text(folder / "report.html", "ours", record=record)
    atomic.write_text(tmp_path / "elsewhere.txt", "not in the folder", record=record)
    # the manifest named each file before it was written
    assert "plots/pca.png" in seen[1][1]
    assert experiment.recorded_files() == ["plots/pca.png", "report.html"]
    (folder / "plots/.pca.abc123.tmp.png").write_text("a killed writer's temporary")
    _user_files(folder)

    ex.Experiment(folder).clear()
    _assert_user_files_intact(folder)
    assert not (folder / "plots/pca.png").exists() and not (folder / "report.html").exists()
    assert not list(folder.rglob("*.tmp*"))
    assert (tmp_path / "elsewhere.txt").read_text() == "not in the folder"
    assert ex.Experiment(folder).recorded_files() == []


def test_clear_removes_the_folders_it_emptied(tmp_path):
    folder = tmp_path / "run"
    experiment = ex.Experiment(folder)
    atomic.write_text(folder / "projector/vecs.tsv", "1\n", record=experiment.record)
    atomic.write_text(folder / "plots/live_pca/frame_0000.png", "x", record=experiment.record)
    experiment.clear()
    assert sorted(p.name for p in folder.iterdir()) == [ex.MANIFEST_FILE]


@pytest.mark.parametrize("overwrite", [False, True])
def test_foreign_folder_is_refused(tmp_path, capsys, overwrite):
    folder = tmp_path / "mine"
    _user_files(folder)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    status = main(["train", "--model-dir", str(folder), *TINY, "--no-tensorboard",
                   *(["--overwrite"] if overwrite else [])])
    assert status == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "not a tripletlab experiment" in err
    assert "--model-dir" in err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    _assert_user_files_intact(folder)


def test_experiment_of_tripletlab_0_1_is_refused(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "metrics.json").write_text("{}")
    assert main(["train", "--model-dir", str(folder), *TINY, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert ex.MANIFEST_FILE in err and "tripletlab 0.1" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json"]


def test_overwrite_keeps_the_users_files(tmp_path):
    folder = tmp_path / "run"
    assert main(["train", "--model-dir", str(folder), *TINY, "--live-pca"]) == 0
    assert (folder / "plots/pca.png").is_file()
    assert any((folder / "tensorboard").rglob("events.out.tfevents*"))
    _user_files(folder)
    # the second run writes no plots and no TensorBoard logs: the first run's go, the user's stay
    assert main(["train", "--model-dir", str(folder), *TINY, "--overwrite", "--no-plots",
                 "--no-tensorboard"]) == 0
    _assert_user_files_intact(folder)
    assert not (folder / "plots/pca.png").exists()
    assert not (folder / "plots/live_pca").exists() and not (folder / "tensorboard").exists()
    assert (folder / "metrics.json").is_file() and (folder / "best.keras").is_file()
    recorded = ex.Experiment(folder).recorded_files()
    assert "metrics.json" in recorded and "plots/my_figure.png" not in recorded
    assert "embeddings/my_vectors.npy" not in recorded
