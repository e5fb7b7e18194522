"""``tripletlab train --memory-size N --memory-warmup W`` (docs/losses.md, "Cross-batch memory";
docs/training.md): the memory is checkpointed with the model and ``--resume`` continues with
it, giving the losses and the memory of a run never stopped; the options are refused where no
memory applies."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tripletlab.cli.main import main
from tripletlab.train.config import ConfigError, resolve_config

FLAGS = ["--dataset", "digits", "--steps-per-epoch", "4", "--eval-samples", "60",
         "--embedding-dim", "8", "--model-options", '{"widths": [8]}', "--memory-size", "96",
         "--memory-warmup", "3", "--loss", "batch-all", "--no-plots", "--no-tensorboard",
         "--verbose", "0"]


def losses(model_dir):
    with open(model_dir / "log.csv", newline="") as stream:
        return [float(row["loss"]) for row in csv.DictReader(stream)]


def memory(model_dir):
    with np.load(model_dir / "checkpoints" / "memory.npz") as stored:
        return {name: stored[name] for name in stored.files}


def test_resume_continues_with_the_checkpointed_memory(tmp_path):
    first, reference = tmp_path / "first", tmp_path / "reference"
    assert main(["train", "--model-dir", str(first), *FLAGS, "--epochs", "2"]) == 0
    stored = memory(first)
    # 8 steps after a warm-up of 3: 5 batches of 32 went in, the last 96 are kept, wrapped.
    assert (int(stored["filled"]), int(stored["position"]), int(stored["calls"])) == (96, 64, 4)
    assert main(["train", "--model-dir", str(first), "--resume", "--epochs", "3",
                 "--verbose", "0"]) == 0
    assert main(["train", "--model-dir", str(reference), *FLAGS, "--epochs", "3"]) == 0
    np.testing.assert_allclose(losses(first), losses(reference), rtol=1e-5, atol=1e-6)
    for name, value in memory(reference).items():
        np.testing.assert_allclose(memory(first)[name], value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_resume_without_the_memory_file_names_it(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--model-dir", str(run), *FLAGS, "--epochs", "1"]) == 0
    (run / "checkpoints" / "memory.npz").unlink()
    with pytest.raises(ConfigError, match="memory.npz"):
        from tripletlab.train import train

        train({"dataset": "digits", "epochs": 2}, run, resume=True, verbose=0)


@pytest.mark.parametrize("options, message", [
    ({"memory_size": 64, "loss": "tfa-semi-hard"}, "memory_size` only with mode='online'"),
    ({"memory_size": 64, "mode": "offline"}, "mode='offline'"),
    ({"memory_warmup": 10}, "memory_warmup` only with a memory"),
])
def test_memory_options_only_where_a_memory_applies(options, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config({"dataset": "digits", **options})
