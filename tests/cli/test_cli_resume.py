"""Stop ``tripletlab train`` (SIGKILL, Ctrl-C) and ``--resume``: every epoch logged once, no
temporary file left behind, and the same losses and metrics as a run never stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np

from conftest import wait_for
from tripletlab.cli.main import main

# The kill lands within about 50 ms of the first checkpoint and the epochs after it must last
# longer: 25 on JAX (about 0.1 s an epoch), 6 on TensorFlow and PyTorch (several times slower
# an epoch, and each epoch is paid twice: resumed and in the reference run).
EPOCHS = 25 if keras.backend.backend() == "jax" else 6
FLAGS = ["--dataset", "digits", "--epochs", str(EPOCHS), "--steps-per-epoch", "4",
         "--eval-samples", "60", "--embedding-dim", "8", "--model-options", '{"widths": [8]}',
         "--no-plots", "--no-tensorboard", "--verbose", "2"]


def _env():
    return {**os.environ, "KERAS_BACKEND": keras.backend.backend()}


def _command(model_dir, *flags):
    return [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", str(model_dir),
            *flags]


def _default_sigint():
    # As in a terminal: a test suite started as a background job of a non-interactive shell
    # (nohup ... &) inherits an ignored SIGINT, which tripletlab rightly leaves ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(model_dir, flags, **kwargs):
    return subprocess.Popen(_command(model_dir, *flags), env=_env(),
                            preexec_fn=_default_sigint, **kwargs)


def _state(model_dir):
    return json.loads((model_dir / "checkpoints" / "state.json").read_text())


def _log(model_dir):
    with open(model_dir / "log.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def _assert_same_log(resumed, reference):
    assert [row["epoch"] for row in resumed] == [row["epoch"] for row in reference]
    assert set(resumed[0]) == set(reference[0])
    for column in reference[0]:
        np.testing.assert_allclose([float(row[column]) for row in resumed],
                                   [float(row[column]) for row in reference],
                                   rtol=1e-5, atol=1e-6, err_msg=column)


def test_kill_then_resume_matches_an_uninterrupted_run(tmp_path):
    model_dir = tmp_path / "run"
    process = _start(model_dir, FLAGS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = model_dir / "checkpoints" / "state.json"
    try:
        wait_for(process, lambda: state_file.is_file() and _state(model_dir)["epoch"] >= 1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    killed = _state(model_dir)
    assert 1 <= killed["epoch"] < EPOCHS, "the run finished before it could be killed"
    assert not (model_dir / "metrics.json").exists()

    # Without --resume the unfinished folder is refused.
    refused = subprocess.run(_command(model_dir, *FLAGS), env=_env(), capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = subprocess.run(_command(model_dir, "--resume", "--verbose", "2"), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {killed['epoch'] + 1}/{EPOCHS}" in resumed.stdout
    assert "epoch 1/" not in resumed.stdout  # it did not start over

    log = _log(model_dir)
    assert [int(row["epoch"]) for row in log] == list(range(EPOCHS))
    final = _state(model_dir)
    assert final["epoch"] == EPOCHS
    assert (model_dir / "metrics.json").is_file() and (model_dir / "last.keras").is_file()
    assert not [p for p in model_dir.rglob("*") if ".tmp" in p.name]

    # The same batches, weights and random numbers as a run that was never stopped.
    reference = tmp_path / "reference"
    assert main(["train", "--model-dir", str(reference), *FLAGS, "--verbose", "0"]) == 0
    _assert_same_log(log, _log(reference))

    # train_seconds adds up the segments before and after the kill.
    seconds = json.loads((model_dir / "metrics.json").read_text())["train_seconds"]
    assert final["train_seconds"] > killed["train_seconds"] > 0
    assert seconds == round(final["train_seconds"], 2)


def test_resume_restores_dropout_and_shuffled_batches(tmp_path):
    # tfa-cnn draws dropout masks; shuffled batches with steps_per_epoch below the number of
    # batches continue through the shuffled order across epochs.
    flags = ["--dataset", "digits", "--model", "tfa-cnn", "--model-options", '{"filters": [8]}',
             "--sampler", "shuffled", "--batch-size", "32", "--steps-per-epoch", "5",
             "--eval-samples", "60", "--embedding-dim", "8", "--no-plots", "--no-tensorboard",
             "--verbose", "0"]
    first, reference = tmp_path / "first", tmp_path / "reference"
    assert main(["train", "--model-dir", str(first), *flags, "--epochs", "1"]) == 0
    assert main(["train", "--model-dir", str(first), "--resume", "--epochs", "3",
                 "--verbose", "0"]) == 0
    assert main(["train", "--model-dir", str(reference), *flags, "--epochs", "3"]) == 0
    _assert_same_log(_log(first), _log(reference))

    # Resuming a finished run adds no epoch and keeps its training time.
    seconds = json.loads((first / "metrics.json").read_text())["train_seconds"]
    assert seconds > 0
    assert main(["train", "--model-dir", str(first), "--resume", "--verbose", "0"]) == 0
    assert json.loads((first / "metrics.json").read_text())["train_seconds"] == seconds


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(tmp_path):
    model_dir = tmp_path / "run"
    flags = [*FLAGS[:FLAGS.index("--epochs")], "--epochs", "2",
             *FLAGS[FLAGS.index("--epochs") + 2:]]
    process = _start(model_dir, flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(process, (model_dir / "config.json").is_file)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert (model_dir / "config.json").is_file()
    assert not (model_dir / "checkpoints" / "state.json").exists(), "killed too late"

    refused = subprocess.run(_command(model_dir, *flags), env=_env(), capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = subprocess.run(_command(model_dir, "--resume", "--verbose", "2"), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "epoch 1/2" in resumed.stdout and "epoch 2/2" in resumed.stdout
    assert [row["epoch"] for row in _log(model_dir)] == ["0", "1"]
    assert (model_dir / "metrics.json").is_file()


def test_ctrl_c_stops_training_and_resume_completes(tmp_path):
    # JAX with TensorBoard (the default) lost Ctrl-C: Keras' batch-end hook swallowed the
    # KeyboardInterrupt while waiting for a step. Steps of real MNIST images with the default
    # CNN take long enough for Ctrl-C to land there. That wait is JAX's asynchronous dispatch;
    # TensorFlow and PyTorch train the small digits model instead (with TensorBoard): there
    # the resumed run would spend most of its time embedding MNIST's 5,000 images with the
    # default CNN at the end (about 20 s on PyTorch).
    model_dir = tmp_path / "run"
    if keras.backend.backend() == "jax":
        epochs = 2
        flags = ["--dataset", "mnist-sample", "--epochs", str(epochs), "--steps-per-epoch", "6",
                 "--eval-samples", "100", "--no-plots", "--verbose", "2"]
    else:
        epochs = 3
        flags = [*FLAGS[:FLAGS.index("--epochs")], "--epochs", str(epochs),
                 *FLAGS[FLAGS.index("--epochs") + 2:]]
        flags.remove("--no-tensorboard")
    process = _start(model_dir, flags, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
    state_file = model_dir / "checkpoints" / "state.json"
    try:
        assert wait_for(process, state_file.is_file), "no checkpoint was written"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    assert _state(model_dir)["epoch"] < epochs, "Ctrl-C did not stop training"
    assert not (model_dir / "metrics.json").exists()

    resumed = subprocess.run(_command(model_dir, "--resume", "--verbose", "2"), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [int(row["epoch"]) for row in _log(model_dir)] == list(range(epochs))
    assert (model_dir / "metrics.json").is_file()
