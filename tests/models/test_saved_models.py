"""Saved models load where users load them: the models an experiment writes with plain Keras and
no tripletlab at all, a user's model compiled with tripletlab losses after a bare
``import tripletlab`` (in either import order). Each load runs in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from tripletlab.cli.main import main

# Makes tripletlab unimportable in the child, whatever sys.path or an editable install holds.
NO_TRIPLETLAB = """
import sys
import zipfile
sys.modules["tripletlab"] = None
try:
    import tripletlab
except ImportError:
    pass
else:
    raise SystemExit("tripletlab is importable")
"""


def _run(script, cwd):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "run"
    # tfa-cnn holds Dropout, small-cnn BatchNormalization: both must load without tripletlab
    assert main(["train", "--model-dir", str(folder), "--dataset", "digits", "--epochs", "1",
                 "--steps-per-epoch", "2", "--eval-samples", "60", "--embedding-dim", "8",
                 "--model", "tfa-cnn", "--model-options", '{"filters": [8]}', "--no-plots",
                 "--no-tensorboard", "--verbose", "0"]) == 0
    return folder


def test_experiment_models_load_with_plain_keras(experiment, tmp_path):
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    script = NO_TRIPLETLAB + f"""
import keras, numpy as np
x = np.load("x.npy")
for name in ("best", "last"):
    model = keras.saving.load_model({str(experiment)!r} + f"/{{name}}.keras", safe_mode=True)
    assert not model.compiled, name
    np.save(f"{{name}}.npy", np.asarray(model.predict(x, verbose=0)))
"""
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = keras.saving.load_model(experiment / "last.keras").predict(x, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "last.npy"), expected, rtol=1e-5, atol=1e-6)
    assert np.load(tmp_path / "best.npy").shape == (5, 8)


def test_checkpoint_keeps_the_training_state(experiment):
    # --resume needs the compiled loss and the optimizer: they stay in checkpoints/
    import tripletlab.train.run  # noqa: F401  (registers CompatLoss too)

    model = keras.saving.load_model(experiment / "checkpoints/last.keras", safe_mode=True)
    assert model.compiled and int(model.optimizer.iterations.numpy()) == 2


def test_bare_import_does_not_import_keras(tmp_path):
    result = _run("import sys, tripletlab\nprint('keras' in sys.modules)", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "False"


def _as_saved_before_the_move(path, moves):
    """Rewrites ``path``'s config.json with the module paths of the layout before
    ``tripletlab.models`` / ``tripletlab.mining_metrics`` (new -> old), as an older file has."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = entries["config.json"].decode()
    for new, old in moves.items():
        assert f'"module": "{new}"' in config, new  # the rewrite below must change something
        config = config.replace(f'"module": "{new}"', f'"module": "{old}"')
    entries["config.json"] = config.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_public_module_names():
    """``tl.metrics`` (the documented name) is the mining-metrics module; the classes keep their
    Keras registered names; the configuration and the command line import no Keras."""
    import tripletlab as tl
    import tripletlab.mining_metrics

    assert tl.metrics is tripletlab.mining_metrics
    for cls in (tl.models.TripletNetwork, tl.metrics.FractionPositiveTriplets,
                tl.metrics.HardestPositiveDistance, tl.metrics.HardestNegativeDistance):
        assert keras.saving.get_registered_name(cls) == f"tripletlab>{cls.__name__}"
    result = _run("import sys\nimport tripletlab.train.config, tripletlab.cli, tripletlab.data\n"
                  "from tripletlab.data import DATASETS\nprint('keras' in sys.modules)", ".")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Models compiled with tripletlab's classes, saved into one folder on this backend."""
    import shutil

    import tripletlab as tl
    from tripletlab.compat.compat_loss import CompatLoss
    from tripletlab.losses import TripletSemiHardLoss
    from tripletlab.losses.offline import TripletLoss

    folder = tmp_path_factory.mktemp("saved")
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    labels = np.arange(16) % 4
    np.save(folder / "x.npy", x)

    # A user's model compiled with a tripletlab loss and the mining metrics; a copy as saved
    # when the metrics lived in tripletlab.metrics.
    user = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    user.compile("adam", loss=TripletSemiHardLoss(margin=0.5),
                 metrics=tl.metrics.mining_metrics(0.5, "L2"))
    user.fit(x, labels, epochs=1, verbose=0)
    user.save(folder / "user.keras")
    shutil.copy(folder / "user.keras", folder / "user_before_the_move.keras")
    _as_saved_before_the_move(folder / "user_before_the_move.keras", {
        "tripletlab.mining_metrics": "tripletlab.metrics"})

    # A TripletNetwork saved when it lived in tripletlab.triplet_network.
    embedder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    network = tl.models.TripletNetwork(embedder)
    network.compile("adam", loss=TripletLoss(margin=0.5))
    network.predict((x, x, x), verbose=0)  # builds it
    network.save(folder / "network.keras")
    np.save(folder / "expected.npy", embedder.predict(x, verbose=0))
    _as_saved_before_the_move(folder / "network.keras", {
        "tripletlab.models.triplet_network": "tripletlab.triplet_network"})

    # CompatLoss moved from tripletlab.train.run to tripletlab.compat.compat_loss; checkpoints
    # name it "tripletlab.train>CompatLoss" and must keep loading (--resume).
    compat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    compat.compile("adam", loss=CompatLoss("triplet-tools-semihard", 0.3, "angular",
                                           semi_margin=0.1))
    compat.fit(x, labels, epochs=1, verbose=0)
    compat.save(folder / "compat.keras")
    with zipfile.ZipFile(folder / "compat.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert config["compile_config"]["loss"]["registered_name"] == "tripletlab.train>CompatLoss"
    return folder


LOAD_SAVED = """
import numpy as np
x = np.load("x.npy")
user = keras.saving.load_model("user.keras", safe_mode=True)
print(type(user.loss).__name__, user.loss.margin)
old = keras.saving.load_model("user_before_the_move.keras", safe_mode=True)
print(" ".join(sorted(old.evaluate(x, np.arange(16) % 4, verbose=0, return_dict=True))))
network = keras.saving.load_model("network.keras", safe_mode=True)
print(type(network).__module__, type(network).__name__, network.loss.margin)
embedder = tripletlab.models.extract_embedding_model(network)
np.testing.assert_allclose(embedder.predict(x, verbose=0), np.load("expected.npy"), atol=1e-6)
loss = keras.saving.load_model("compat.keras", safe_mode=True).loss
print(type(loss).__module__, loss.loss_name, loss.margin, loss.distance, loss.semi_margin)
"""


@pytest.mark.parametrize("imports", ["import tripletlab, keras", "import keras, tripletlab"])
def test_saved_models_load_after_bare_import(saved, imports):
    """In a fresh process, after a bare ``import tripletlab`` before or after ``import keras``:
    a user's model compiled with a tripletlab loss and the mining metrics; files saved with the
    module paths before ``tripletlab.models`` / ``tripletlab.mining_metrics`` (Keras finds the
    classes by their registered names, which the moves kept); and ``CompatLoss`` under the
    registered name that checkpoints hold. One process per import order loads them all."""
    result = _run(imports + "\n" + LOAD_SAVED, saved)
    assert result.returncode == 0, result.stderr[-3000:]
    user, metrics_line, network_line, compat = result.stdout.strip().splitlines()
    assert user.split() == ["TripletSemiHardLoss", "0.5"]
    assert metrics_line.split() == ["fraction_positive_triplets", "hardest_negative_distance",
                                    "hardest_positive_distance", "loss"]
    assert network_line.split() == ["tripletlab.models.triplet_network", "TripletNetwork", "0.5"]
    assert compat.split() == ["tripletlab.compat.compat_loss", "triplet-tools-semihard", "0.3",
                              "angular", "0.1"]
