"""omoindrot's own experiment files train as they are, with omoindrot's network.

omoindrot/tensorflow-triplet-loss's workflow: put a ``params.json`` like
``experiments/batch_hard/params.json`` in a folder and train with ``--model_dir`` on it. Here
``tripletlab train --model-dir DIR`` runs in a subprocess on folders holding exactly the keys and
values of the original ``experiments/batch_hard/params.json`` and
``experiments/batch_all/params.json``; only the run length is cut by flags (and one run turns
batch normalisation on with ``--use-batch-norm``, to check the momentum). The saved model is then
loaded by plain Keras with ``safe_mode=True`` in a process where tripletlab cannot be imported,
and its layers are checked against omoindrot's ``model/model_fn.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# The two originals, key for key and value for value.
BATCH_HARD = {
    "learning_rate": 1e-4, "batch_size": 64, "num_epochs": 20,
    "num_channels": 32, "use_batch_norm": False, "bn_momentum": 0.9, "margin": 0.5,
    "embedding_size": 64, "triplet_strategy": "batch_hard", "squared": False,
    "image_size": 28, "num_labels": 10, "train_size": 50000, "eval_size": 10000,
    "num_parallel_calls": 4, "save_summary_steps": 50,
}
BATCH_ALL = {**BATCH_HARD, "learning_rate": 1e-3, "triplet_strategy": "batch_all"}

# A few seconds of training instead of 20 epochs; everything else comes from params.json.
SHORT = ["--epochs", "1", "--steps-per-epoch", "2", "--eval-every", "0", "--no-plots",
         "--no-tensorboard", "--verbose", "2"]

INSPECT = """
import json
import sys

sys.modules["tripletlab"] = None  # plain Keras: tripletlab cannot be imported here
import keras

# compile=False: the training compile state is tested with --resume; the network must load.
for path in sys.argv[1:]:
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    layers = []
    for layer in model.layers:
        entry = {"kind": type(layer).__name__}
        for attribute in ("filters", "kernel_size", "padding", "momentum", "units", "pool_size"):
            if hasattr(layer, attribute):
                entry[attribute] = getattr(layer, attribute)
        layers.append(entry)
    print("RESULT " + json.dumps({"layers": layers, "output_shape": list(model.output_shape),
                                  "flatten": model.layers[-2].output.shape[-1]}))
"""


def _tripletlab_train(folder, flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", str(folder),
               *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module", params=["batch_hard", "batch_all+bn"])
def experiment(request, tmp_path_factory):
    original = BATCH_HARD if request.param == "batch_hard" else BATCH_ALL
    folder = tmp_path_factory.mktemp("omoindrot") / request.param
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps(original, indent=4))
    flags = SHORT + (["--use-batch-norm"] if request.param.endswith("+bn") else [])
    completed = _tripletlab_train(folder, flags)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return request.param, folder, completed


def test_originals_are_accepted_and_mapped(experiment):
    name, folder, completed = experiment
    config = json.loads((folder / "config.json").read_text())
    original = BATCH_HARD if name == "batch_hard" else BATCH_ALL
    assert config["model"] == "omoindrot-cnn"
    assert config["loss"] == "omoindrot-" + original["triplet_strategy"].replace("_", "-")
    assert config["learning_rate"] == original["learning_rate"]
    assert (config["batch_size"], config["sampler"]) == (64, "shuffled")
    assert (config["margin"], config["distance"], config["embedding_dim"]) == (0.5, "L2", 64)
    assert (config["num_channels"], config["bn_momentum"]) == (32, 0.9)
    assert config["use_batch_norm"] is name.endswith("+bn")
    assert config["epochs"] == 1  # the flag over num_epochs
    # train_size and eval_size are accepted, and a note says what tripletlab does instead.
    assert "train_size" in completed.stderr and "eval_size" in completed.stderr
    assert "Unknown key" not in completed.stderr


def test_the_network_is_omoindrots_and_loads_in_plain_keras(experiment, tmp_path):
    name, folder, _ = experiment
    script = tmp_path / "load_saved_model.py"
    script.write_text(textwrap.dedent(INSPECT))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    paths = [str(folder / "best.keras"), str(folder / "last.keras")]
    completed = subprocess.run([sys.executable, str(script), *paths], env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = [json.loads(x[len("RESULT "):]) for x in completed.stdout.splitlines()
               if x.startswith("RESULT ")]
    assert len(results) == 2, completed.stdout[-3000:]
    for result in results:
        layers = result["layers"]
        use_batch_norm = name.endswith("+bn")
        block = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
        if not use_batch_norm:
            block.remove("BatchNormalization")
        assert [layer["kind"] for layer in layers] == ["InputLayer", *block, *block, "Flatten",
                                                       "Dense"]
        convs = [layer for layer in layers if layer["kind"] == "Conv2D"]
        assert [(c["filters"], c["kernel_size"], c["padding"]) for c in convs] == [
            (32, [3, 3], "same"), (64, [3, 3], "same")]
        norms = [layer["momentum"] for layer in layers if layer["kind"] == "BatchNormalization"]
        assert norms == ([0.9, 0.9] if use_batch_norm else [])
        assert [p["pool_size"] for p in layers if p["kind"] == "MaxPooling2D"] == [[2, 2]] * 2
        assert result["flatten"] == 7 * 7 * 64  # 28x28 MNIST digits, as in the original
        assert layers[-1]["units"] == 64 and result["output_shape"] == [None, 64]
