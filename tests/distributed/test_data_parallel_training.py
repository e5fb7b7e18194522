"""``tripletlab train --distribute data-parallel`` on 4 devices: the same losses and scores as
one device, and a killed run that resumes as if never stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np

from conftest import needs_devices, wait_for
from tripletlab.cli.main import main

pytestmark = needs_devices(4)

FLAGS = ["--dataset", "digits", "--steps-per-epoch", "3", "--classes-per-batch", "4",
         "--samples-per-class", "4", "--eval-samples", "60", "--embedding-dim", "8",
         "--model-options", '{"widths": [8]}', "--no-plots", "--no-tensorboard",
         "--export-samples", "100", "--backend", "jax"]
DISTRIBUTE = ["--distribute", "data-parallel"]


def _log(model_dir):
    with open(model_dir / "log.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def _assert_same_log(actual, expected):
    assert [row["epoch"] for row in actual] == [row["epoch"] for row in expected]
    for column in expected[0]:
        np.testing.assert_allclose([float(row[column]) for row in actual],
                                   [float(row[column]) for row in expected],
                                   rtol=1e-4, atol=1e-5, err_msg=column)


def _scores(model_dir):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return {f"{split}/{name}": value for split in ("test_to_train", "test_leave_one_out")
            for name, value in metrics[split].items()}


def test_four_devices_train_as_one(tmp_path):
    """The same losses, scores and embeddings as one device; with a cross-batch memory
    (docs/losses.md), which is one global queue fed with the global batch: the same memory."""
    memory = ["--memory-size", "40", "--memory-warmup", "2"]
    one, four = tmp_path / "one", tmp_path / "four"
    assert main(["train", "--model-dir", str(one), *FLAGS, *memory, "--epochs", "2",
                 "--verbose", "0"]) == 0
    assert main(["train", "--model-dir", str(four), *FLAGS, *memory, *DISTRIBUTE, "--epochs",
                 "2", "--verbose", "0"]) == 0
    with np.load(one / "checkpoints" / "memory.npz") as expected, \
            np.load(four / "checkpoints" / "memory.npz") as actual:
        assert int(actual["filled"]) == 40  # 4 batches of 16 after the warm-up, wrapped
        for name in expected.files:
            np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    assert json.loads((four / "config.json").read_text())["distribute"] == "data-parallel"
    _assert_same_log(_log(four), _log(one))
    expected, actual = _scores(one), _scores(four)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    embeddings = sorted((four / "embeddings").glob("*.npy"))
    assert embeddings, "no embeddings exported"
    for path in embeddings:
        np.testing.assert_allclose(np.load(path), np.load(one / "embeddings" / path.name),
                                   rtol=1e-4, atol=1e-5, err_msg=path.name)


def test_killed_distributed_run_resumes_as_if_never_stopped(tmp_path):
    epochs = 8
    flags = [*FLAGS, *DISTRIBUTE, "--epochs", str(epochs), "--verbose", "2"]
    model_dir = tmp_path / "run"
    state_file = model_dir / "checkpoints" / "state.json"

    def command(*more):
        return [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir",
                str(model_dir), *more]

    env = {**os.environ, "KERAS_BACKEND": "jax"}  # JAX_NUM_CPU_DEVICES as this run's
    process = subprocess.Popen(command(*flags), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(process, lambda: state_file.is_file()
                 and json.loads(state_file.read_text())["epoch"] >= 1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    killed = json.loads(state_file.read_text())["epoch"]
    assert 1 <= killed < epochs, "the run finished before it could be killed"

    resumed = subprocess.run(command("--resume", "--verbose", "2"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {killed + 1}/{epochs}" in resumed.stdout and "epoch 1/" not in resumed.stdout
    assert (model_dir / "metrics.json").is_file()

    reference = tmp_path / "reference"
    assert main(["train", "--model-dir", str(reference), *flags[:-2], "--verbose", "0"]) == 0
    _assert_same_log(_log(model_dir), _log(reference))
    expected = _scores(reference)
    for key, value in _scores(model_dir).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-5, atol=1e-6, err_msg=key)

