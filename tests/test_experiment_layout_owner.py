"""One owner of the experiment folder's layout (docs/training.md): the command line's generic I/O
(``embed``, ``visualize``) does not import the training package, and the report reads the
layout module's names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")

SCRIPT = r"""
import argparse, json, sys
import keras
from tripletlab.cli import embed, visualize

def training_modules():
    return sorted(name for name in sys.modules if name.startswith("tripletlab.train"))

folder = sys.argv[1]
inputs = keras.Input((8, 8, 1))
model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
model.save(folder + "/model.keras")
parser = argparse.ArgumentParser()
commands = parser.add_subparsers()
embed.add_parser(commands)
visualize.add_parser(commands)
for argv in (["embed", "--model", folder + "/model.keras", "--dataset", "digits",
              "--output", folder + "/out"],
             ["visualize", "--embeddings", folder + "/out/embeddings.npy", "--labels",
              folder + "/out/labels.npy", "--output", folder + "/pictures", "--methods", "pca"]):
    args = parser.parse_args(argv)
    assert args.handler(args) == 0
alone = training_modules()
# through `tripletlab`: its parser lists the options of `train` (the Keras-free config table)
from tripletlab.cli.main import main
assert main(["visualize", "--experiment", sys.argv[2], "--output", folder + "/again",
             "--methods", "pca"]) == 0
print(json.dumps([alone, training_modules()]))
"""


def test_embed_and_visualize_do_not_import_the_training_package(tmp_path):
    experiment = tmp_path / "experiment"
    embeddings = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    (experiment / "embeddings").mkdir(parents=True)
    np.save(experiment / "embeddings/test_embeddings.npy", embeddings)
    np.save(experiment / "embeddings/test_labels.npy", np.arange(12) % 3)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    completed = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(experiment)],
                               env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    alone, through_main = json.loads(completed.stdout.strip().splitlines()[-1])
    assert alone == []
    # the CLI's parser reads the configuration's fields, which read the Keras-free loss table,
    # default batch shape and checks of `distribute`: none of the training run itself
    assert set(through_main) <= {"tripletlab.train", "tripletlab.train.config",
                                 "tripletlab.train.batch_shape", "tripletlab.train.loss_registry",
                                 "tripletlab.train.distribution"}
    assert np.load(tmp_path / "out/embeddings.npy").shape[1] == 3
    assert (tmp_path / "pictures/pca.png").is_file()
    assert (tmp_path / "again/plots/pca.png").is_file()


def test_report_reads_the_layout_modules_names():
    from tripletlab import experiment
    from tripletlab.visualization import report

    for name in ("CONFIG_FILE", "LOG_FILE", "METRICS_FILE", "PLOTS_DIR", "REPORT_FILE",
                 "TEST_EMBEDDINGS", "TEST_IMAGES", "TEST_LABELS", "THUMBNAIL_PIXELS"):
        assert getattr(report, name) is getattr(experiment, name), name
    source = Path(report.__file__).read_text(encoding="utf-8")
    assert not re.findall(r'^\w+ = "[^"]*\.(?:json|csv|npy|html)"', source, re.M)


def test_layout_module_imports_no_keras():
    """Reading an experiment folder's layout needs neither Keras nor the training package."""
    script = ("import json, sys, tripletlab.experiment; print(json.dumps(sorted(name for name "
              "in sys.modules if name == 'keras' or name.startswith('tripletlab.train'))))")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
