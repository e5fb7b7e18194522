"""A new user's first run prints tripletlab's lines, not TensorFlow's C++ start-up notices
(docs/training.md, "Output while training"); a user who sets TF_CPP_MIN_LOG_LEVEL keeps it."""

from __future__ import annotations

import os
import subprocess
import sys

from tripletlab.cli.quiet_start import START_UP_NOTICES, filtered_standard_error


def test_first_tensorflow_run_writes_nothing_to_standard_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "tripletlab.cli.main", "train", "--backend", "tensorflow",
               "--dataset", "digits", "--epochs", "1", "--steps-per-epoch", "20",
               "--eval-samples", "60", "--no-plots", "--model-dir", str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # no oneDNN, CPU-feature, absl or graph notices
    assert result.stdout.startswith("Training on the tensorflow backend")


def test_the_filter_drops_only_the_notices_even_from_cpp(capfd):
    with filtered_standard_error(START_UP_NOTICES):
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see...\n")
        os.write(2, b"a line of the user's\n")
    assert capfd.readouterr().err == "a line of the user's\n"


def test_a_users_own_log_level_is_kept(tmp_path):
    script = ("import os; from tripletlab.cli.quiet_start import load_keras; load_keras(); "
              "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    for given, expected in ((None, "2"), ("0", "0")):
        env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
        if given is not None:
            env["TF_CPP_MIN_LOG_LEVEL"] = given
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=300, env={**env, "KERAS_BACKEND": "jax"})
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == expected
