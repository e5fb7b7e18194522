"""What a person sees when ``tripletlab train`` writes into a pipe: one plain
line per epoch, one line per step after training, no terminal control codes, and no TensorFlow
start-up lines when another backend runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import keras
import pytest

TF_STARTUP = re.compile(r"oneDNN|cpu_feature_guard|absl::InitializeLog|cuda|TF-TRT|"
                        r"This TensorFlow binary", re.IGNORECASE)


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("piped") / "run"
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", str(folder),
         "--dataset", "digits", "--epochs", "3", "--steps-per-epoch", "2", "--eval-samples", "60",
         "--export-samples", "100", "--embedding-dim", "4", "--model-options",
         '{"widths": [4]}', "--projections", "pca", "--backend", keras.backend.backend()],
        capture_output=True, text=True, env=env, timeout=600,
        check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_piped_output_is_plain_lines(piped_run):
    out = piped_run.stdout
    for code in ("\r", "\b", "\x1b"):
        assert code not in out, repr(code)
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "Epoch 1/3" not in out  # Keras' own progress header


def test_first_line_names_the_backend_that_runs(piped_run):
    first = piped_run.stdout.splitlines()[0]
    assert first.startswith(f"Training on the {keras.backend.backend()} backend "), first


def test_each_step_after_training_announces_itself(piped_run):
    lines = piped_run.stdout.splitlines()
    last_epoch = max(i for i, line in enumerate(lines) if line.startswith("epoch "))
    after = "\n".join(lines[last_epoch + 1:])
    for step in ("Saving last.keras", "Loading best.keras", "Embedding ", "Scoring retrieval "
                 "test -> train", "Scoring retrieval leave-one-out", "Writing embeddings/",
                 "Writing TensorBoard projector files", "training_curves.png", "pca.png",
                 "neighbors.png", "Writing report.html", "Scores of best.keras"):
        assert step in after, step


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="TensorFlow's own lines are expected on its backend")
def test_no_tensorflow_startup_lines_on_other_backends(piped_run):
    found = [line for line in piped_run.stderr.splitlines() if TF_STARTUP.search(line)]
    assert not found, found


def test_visualize_experiment_announces_each_step(tmp_path, capsys):
    import numpy as np

    from tripletlab.cli.main import main

    rng = np.random.default_rng(0)
    folder = tmp_path / "run"
    (folder / "embeddings").mkdir(parents=True)
    labels = np.arange(40) % 4
    np.save(folder / "embeddings/test_embeddings.npy",
            (rng.normal(size=(40, 3)) + labels[:, None]).astype("float32"))
    np.save(folder / "embeddings/test_labels.npy", labels)
    np.save(folder / "embeddings/test_images.npy",
            rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8))
    (folder / "log.csv").write_text("epoch,loss,val_map_at_r\n0,1.0,0.3\n1,0.8,0.5\n")
    assert main(["visualize", "--experiment", str(folder), "--methods", "pca"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = ["Reading", "training_curves.png", "pca.png", "neighbors.png",
                "Writing TensorBoard projector files"]
    positions = [next(i for i, line in enumerate(lines) if word in line) for word in expected]
    assert positions == sorted(positions), lines
    assert (folder / "plots/pca.png").is_file()
