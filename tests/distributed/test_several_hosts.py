"""``tripletlab train --distribute data-parallel`` over several processes, as on several hosts
(docs/distributed.md, "Several hosts"): two processes of two CPU devices each on this machine,
started from Keras' environment variables, train and resume as one device does; only the first
writes the experiment folder; they refuse to start with different configurations."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np

from conftest import needs_devices
from tripletlab.cli.main import main

pytestmark = needs_devices(4)  # the stage that runs tests/distributed

FLAGS = ["--dataset", "digits", "--steps-per-epoch", "3", "--classes-per-batch", "4",
         "--samples-per-class", "4", "--eval-samples", "60", "--embedding-dim", "8",
         "--model-options", '{"widths": [8]}', "--no-plots", "--no-tensorboard",
         "--export-samples", "100", "--backend", "jax", "--verbose", "0"]


def free_port():
    with socket.socket() as listener:
        listener.bind(("localhost", 0))
        return listener.getsockname()[1]


def run_processes(model_dir, flags, scratch, count=2):
    """Runs ``tripletlab train`` as ``count`` processes of 2 devices; their outputs."""
    port = free_port()
    processes = []
    for index in range(count):
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_NUM_CPU_DEVICES": "2",
               "TMPDIR": str(scratch), "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{port}",
               "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count),
               "KERAS_DISTRIBUTION_PROCESS_ID": str(index)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir",
             str(model_dir), *flags[index]], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return [(process.wait(timeout=600), *process.communicate()) for process in processes]


def losses(model_dir):
    with open(model_dir / "log.csv", newline="") as stream:
        return {column: [float(row[column]) for row in rows]
                for rows in [list(csv.DictReader(stream))] for column in rows[0]}


def test_two_processes_train_and_resume_as_one_device(tmp_path):
    run, reference, scratch = tmp_path / "run", tmp_path / "one", tmp_path / "scratch"
    scratch.mkdir()
    distributed = [*FLAGS, "--distribute", "data-parallel"]
    for flags in ([*distributed, "--epochs", "1"], ["--resume", "--epochs", "2"]):
        for status, _, stderr in run_processes(run, [flags, flags], scratch):
            assert status == 0, stderr[-3000:]
    assert main(["train", "--model-dir", str(reference), *FLAGS, "--epochs", "2"]) == 0
    expected, actual = losses(reference), losses(run)
    assert actual.keys() == expected.keys() and len(actual["loss"]) == 2
    for column, values in expected.items():
        np.testing.assert_allclose(actual[column], values, rtol=1e-4, atol=1e-5,
                                   err_msg=column)
    scores = [json.loads((folder / "metrics.json").read_text())["test_to_train"]
              for folder in (run, reference)]
    for name, value in scores[1].items():
        np.testing.assert_allclose(scores[0][name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    assert not list(scratch.iterdir()), "the second process left its private folder"


def test_processes_with_different_configurations_refuse_to_start(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    flags = [*FLAGS, "--distribute", "data-parallel", "--epochs", "1"]
    results = run_processes(tmp_path / "run", [flags, [*flags, "--learning-rate", "0.01"]],
                            scratch)
    for status, _, stderr in results:
        assert status == 2, stderr[-3000:]
        assert "same configuration and training data on every host" in stderr
    assert not (tmp_path / "run" / "checkpoints").exists()

