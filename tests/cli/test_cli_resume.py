"""Kill ``tripletlab train`` mid-run (SIGKILL) and ``--resume``: every epoch logged once, no
temporary file left behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras

EPOCHS = 25


def _command(model_dir, *extra):
    return [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", str(model_dir),
            "--dataset", "digits", "--epochs", str(EPOCHS), "--steps-per-epoch", "4",
            "--eval-samples", "60", "--embedding-dim", "8", "--model-options",
            '{"widths": [8]}', "--no-plots", "--no-tensorboard", "--verbose", "2", *extra]


def test_kill_then_resume(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    model_dir = tmp_path / "run"
    state_file = model_dir / "checkpoints" / "state.json"
    process = subprocess.Popen(_command(model_dir), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 1:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 1 <= killed_at < EPOCHS, "the run finished before it could be killed"
    assert not (model_dir / "metrics.json").exists()

    # Without --resume the unfinished folder is refused.
    refused = subprocess.run(_command(model_dir), env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = subprocess.run(
        [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", str(model_dir),
         "--resume", "--verbose", "2"],
        env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {killed_at + 1}/{EPOCHS}" in resumed.stdout
    assert "epoch 1/" not in resumed.stdout  # it did not start over

    with open(model_dir / "log.csv", newline="") as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == list(range(EPOCHS))
    assert json.loads(state_file.read_text())["epoch"] == EPOCHS
    assert (model_dir / "metrics.json").is_file() and (model_dir / "last.keras").is_file()
    assert not [p for p in model_dir.rglob("*") if ".tmp" in p.name]
