"""One run per experiment folder, in real processes (docs/training.md, "One run per folder"):
two ``train`` started together, ``--overwrite``, ``--resume``, ``report`` and ``visualize``
against a live run, a run killed with -9, and ``report`` on an unfinished run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import keras

from conftest import wait_for
from tripletlab.folder_lock import LOCK_FILE

FLAGS = ["--dataset", "digits", "--steps-per-epoch", "4", "--eval-samples", "60",
         "--embedding-dim", "8", "--model-options", '{"widths": [8]}', "--no-plots",
         "--no-tensorboard", "--verbose", "2"]


def _env():
    return {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _command(*arguments):
    return [sys.executable, "-m", "tripletlab.cli.main", *arguments]


def _start(*arguments):
    return subprocess.Popen(_command(*arguments), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(*arguments):
    return subprocess.run(_command(*arguments), env=_env(), capture_output=True, text=True,
                          timeout=300)


def _checkpointed(model_dir):
    state = model_dir / "checkpoints" / "state.json"
    return state.is_file() and json.loads(state.read_text())["epoch"] >= 1


def _manifest(model_dir):
    return json.loads((model_dir / "manifest.json").read_text())["files"]


def _assert_refused_in_use(result, command, pid):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"tripletlab {command}: error: ")
    assert f"is in use by a running `tripletlab train` (process {pid} on host " in lines[0]
    assert "Wait for it to finish" in lines[0]


def test_two_trains_started_together_one_runs_and_the_folder_is_consistent(tmp_path):
    model_dir = tmp_path / "run"
    runs = {seed: _start("train", "--model-dir", str(model_dir), *FLAGS, "--epochs", "2",
                         "--seed", str(seed)) for seed in (1, 2)}
    outcomes = {seed: (process.wait(timeout=300), *process.communicate())
                for seed, process in runs.items()}
    codes = sorted(code for code, _, _ in outcomes.values())
    assert codes == [0, 2], {seed: err[-1500:] for seed, (_, _, err) in outcomes.items()}
    winner = next(seed for seed, (code, _, _) in outcomes.items() if code == 0)
    loser_code, loser_out, loser_err = outcomes[3 - winner]
    assert "is in use by a running `tripletlab train`" in loser_err
    assert len(loser_err.splitlines()) == 1
    assert "Data digits" not in loser_out  # refused before any work
    config = json.loads((model_dir / "config.json").read_text())
    assert config["seed"] == winner
    assert json.loads((model_dir / "metrics.json").read_text())["epochs"] == 2
    assert all((model_dir / name).is_file() for name in _manifest(model_dir))
    assert not (model_dir / LOCK_FILE).exists()


def test_overwrite_resume_report_and_visualize_of_a_live_run_are_refused(tmp_path):
    model_dir = tmp_path / "run"
    live = _start("train", "--model-dir", str(model_dir), *FLAGS, "--epochs", "3")
    try:
        assert wait_for(live, lambda: _checkpointed(model_dir)), live.stderr.read()[-2000:]
        live.send_signal(signal.SIGSTOP)  # alive, holding the lock, while the others try
        refusals = {
            "train": [_run("train", "--model-dir", str(model_dir), *FLAGS, "--epochs", "3",
                           "--overwrite"),
                      _run("train", "--model-dir", str(model_dir), "--resume"),
                      _run("train", "--model-dir", str(model_dir), *FLAGS)],
            "report": [_run("report", "--experiment", str(model_dir))],
            "visualize": [_run("visualize", "--experiment", str(model_dir))],
        }
        config_before = (model_dir / "config.json").read_text()
    finally:
        live.send_signal(signal.SIGCONT)
    code, out, err = live.wait(timeout=300), *live.communicate()
    for command, results in refusals.items():
        for result in results:
            _assert_refused_in_use(result, command, live.pid)
    assert code == 0, err[-2000:]
    assert "Experiment written to" in out
    assert (model_dir / "config.json").read_text() == config_before
    assert json.loads((model_dir / "metrics.json").read_text())["epochs"] == 3
    assert all((model_dir / name).is_file() for name in _manifest(model_dir))
    assert "report.html" not in _manifest(model_dir)
    assert not (model_dir / LOCK_FILE).exists()


def test_killed_run_report_is_recorded_and_resume_takes_the_folder_over(tmp_path):
    model_dir = tmp_path / "run"
    live = _start("train", "--model-dir", str(model_dir), *FLAGS, "--epochs", "50")
    try:
        assert wait_for(live, lambda: _checkpointed(model_dir)), live.stderr.read()[-2000:]
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=60)
    assert (model_dir / LOCK_FILE).is_file()  # left by the killed run: locks nothing

    again = _run("train", "--model-dir", str(model_dir), *FLAGS)
    assert again.returncode == 2
    assert "unfinished experiment" in again.stderr
    assert "no tripletlab process is running in it, so it was killed or interrupted" in (
        again.stderr)

    report = _run("report", "--experiment", str(model_dir), "--tsne-max-points", "0")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "no metrics yet: the run has not finished" in report.stdout
    assert "PCA" not in report.stdout  # no embeddings yet: not announced
    assert "report.html" in _manifest(model_dir)

    state = json.loads((model_dir / "checkpoints" / "state.json").read_text())
    resumed = _run("train", "--model-dir", str(model_dir), "--resume", "--epochs",
                   str(state["epoch"] + 1))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # plots = false: the report drawn before the run finished is stale, and removed
    assert "Removed 1 picture file(s) of an earlier state of the folder" in resumed.stdout
    assert not (model_dir / "report.html").exists()
    assert "report.html" not in _manifest(model_dir)
    assert all((model_dir / name).is_file() for name in _manifest(model_dir))
    assert not (model_dir / LOCK_FILE).exists()
