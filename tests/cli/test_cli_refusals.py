"""What cannot work is refused before anything is written, and what is ignored is said.

Covered (docs/training.md): one-class data, ``--batch-size 1`` with shuffled batches, options
that other options make unused, and damaged or wrong user files (each must name the file, exit 2
and write nothing).
"""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from tripletlab.cli.main import main
from tripletlab.evaluation import clustering_scores, evaluate_embeddings, precision_at_1
from tripletlab.evaluation.knn import nearest_neighbors
from tripletlab.models import build_model
from tripletlab.train.config import resolve_config

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--eval-samples", "20", "--embedding-dim", "4",
        "--model-options", '{"widths": [4]}', "--verbose", "2", "--projections", "pca",
        "--no-tensorboard"]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run(argv, folder, capsys):
    before = _files(folder)
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    assert _files(folder) == before, "an error must write nothing"
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    return captured.err


def _npz(path, labels_train, labels_test):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (len(labels_train), 8, 8), np.uint8),
             y_train=np.asarray(labels_train), x_test=rng.integers(0, 255, (len(labels_test), 8, 8),
                                                                   np.uint8),
             y_test=np.asarray(labels_test))
    return path


# ------------------------------------------------------------------------------------------
# Item 10: refuse what cannot work, say what is ignored
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["shuffled", "pk"])
def test_train_refuses_one_class(tmp_path, capsys, sampler):
    data = _npz(tmp_path / "one.npz", [3] * 40, [3] * 10)
    err = _run(["train", "--data-file", str(data), "--model-dir", str(tmp_path / "run"),
                "--sampler", sampler, *TINY], tmp_path, capsys)
    assert "at least 2 classes" in err and "one.npz" in err


def test_train_refuses_no_positive_pair(tmp_path, capsys):
    data = _npz(tmp_path / "single.npz", list(range(12)), [0, 1, 2])
    err = _run(["train", "--data-file", str(data), "--model-dir", str(tmp_path / "run"),
                "--sampler", "shuffled", *TINY], tmp_path, capsys)
    assert "positive pair" in err and "single.npz" in err


def test_shuffled_batch_size_1_is_refused(tmp_path, capsys):
    err = _run(["train", "--dataset", "digits", "--model-dir", str(tmp_path / "run"),
                "--sampler", "shuffled", "--batch-size", "1", *TINY], tmp_path, capsys)
    assert "batch_size" in err and "positive pair" in err and "Received: batch_size=1" in err


def test_batch_size_with_pk_sampler_is_reported():
    with pytest.warns(UserWarning, match=r"batch_size=64 is ignored with sampler='pk'.*8 × 4"):
        resolve_config({"batch_size": 64})


def test_margin_with_soft_is_reported():
    with pytest.warns(UserWarning, match=r"margin=0.3 is ignored with soft=True"):
        resolve_config({"soft": True, "margin": 0.3, "loss": "hard"})


def test_used_options_and_saved_configs_are_quiet(recwarn):
    resolve_config({"batch_size": 64, "sampler": "shuffled"})
    resolve_config({"soft": True, "loss": "hard"})
    saved = resolve_config({"soft": True, "loss": "hard"}).to_dict()  # a config.json
    resolve_config(saved)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_shuffled_batches_smaller_than_the_classes_warn(tmp_path, capsys):
    from tripletlab.train.config import check_data

    config = resolve_config({"sampler": "shuffled", "batch_size": 8})
    with pytest.warns(UserWarning, match="may hold no positive pair"):
        check_data(config, np.arange(100) % 10, np.arange(20) % 10)


def test_cli_prints_a_warning_on_one_line(tmp_path, capsys):
    # the warning comes before the data check refuses the one-class file
    data = _npz(tmp_path / "one.npz", [0] * 40, [0] * 10)
    main(["train", "--data-file", str(data), "--model-dir", str(tmp_path / "run"),
          "--batch-size", "64", *TINY])
    err = capsys.readouterr().err
    assert "tripletlab train: warning: batch_size=64 is ignored with sampler='pk'" in err
    assert "warnings.warn" not in err


def test_evaluation_refuses_one_class():
    x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    same = np.zeros(20, int)
    with pytest.raises(ValueError, match="`query_labels` to hold at least 2 classes"):
        evaluate_embeddings(x, same, clustering=False)
    with pytest.raises(ValueError, match="`reference_labels` to hold at least 2 classes"):
        evaluate_embeddings(x[:5], same[:5], x, same, clustering=False)
    with pytest.raises(ValueError, match="`labels` to hold at least 2 classes"):
        clustering_scores(x, same)
    neighbors = nearest_neighbors(x, None, 1, exclude_self=True)
    with pytest.raises(ValueError, match="`query_labels` to hold at least 2 classes"):
        precision_at_1(same, neighbors)
    # queries of one class against references of two classes are meaningful
    mixed = np.arange(20) % 2
    evaluate_embeddings(x[:5], same[:5], x, mixed, clustering=False)


def test_cli_evaluate_refuses_one_class(tmp_path, capsys):
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(20, 3)).astype("float32"))
    np.save(tmp_path / "l.npy", np.zeros(20, np.int64))
    err = _run(["evaluate", "--embeddings", str(tmp_path / "e.npy"), "--labels",
                str(tmp_path / "l.npy"), "--output", str(tmp_path / "m.json")], tmp_path, capsys)
    assert "at least 2 classes" in err


# ------------------------------------------------------------------------------------------
# Item 11: messages that name the file and what is wrong with it
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.keras"
    keras.utils.set_random_seed(0)
    build_model("small-cnn", (8, 8, 1), 4, widths=(4,)).save(path)
    return path.read_bytes()


def _random(path, size=3000):
    path.write_bytes(np.random.default_rng(1).bytes(size))
    return path


@pytest.mark.parametrize("kind", ["random", "truncated", "zip-not-model", "folder"])
def test_bad_model_file(tmp_path, capsys, model_bytes, kind):
    path = tmp_path / "model.keras"
    if kind == "random":
        _random(path)
    elif kind == "truncated":
        path.write_bytes(model_bytes[: len(model_bytes) // 2])
    elif kind == "zip-not-model":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
    else:
        path.mkdir()
    for argv in (["embed", "--model", str(path), "--dataset", "digits", "--output",
                  str(tmp_path / "out")],
                 ["evaluate", "--model", str(path), "--dataset", "digits"]):
        err = _run(argv, tmp_path, capsys)
        assert str(path) in err
        assert "File not found" not in err and "does not exist" not in err
        expected = {"random": "not a zip archive", "truncated": "not a zip archive",
                    "zip-not-model": "not a Keras model", "folder": "is a folder"}[kind]
        assert expected in err


@pytest.mark.parametrize("kind", ["random", "truncated", "folder", "npz"])
def test_bad_npy_file(tmp_path, capsys, kind):
    labels = tmp_path / "labels.npy"
    np.save(labels, np.arange(100) % 3)
    path = tmp_path / "emb.npy"
    if kind == "random":
        _random(path)
    elif kind == "truncated":
        np.save(path, np.zeros((100, 4), np.float32))
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "npz":
        np.savez(tmp_path / "emb.npz", a=np.zeros(3))
        (tmp_path / "emb.npz").rename(path)
    else:
        path.mkdir()
    err = _run(["evaluate", "--embeddings", str(path), "--labels", str(labels), "--output",
                str(tmp_path / "m.json")], tmp_path, capsys)
    assert str(path) in err and "pickled" not in err
    expected = {"random": "not a NumPy .npy file", "truncated": "truncated or damaged",
                "folder": "is a folder", "npz": ".npz archive"}[kind]
    assert expected in err


@pytest.mark.parametrize("kind", ["random", "truncated", "folder"])
def test_bad_data_file(tmp_path, capsys, kind):
    path = tmp_path / "data.npz"
    if kind == "random":
        _random(path)
    elif kind == "truncated":
        _npz(path, np.arange(40) % 4, np.arange(8) % 4)
        path.write_bytes(path.read_bytes()[:-200])
    else:
        path.mkdir()
    err = _run(["train", "--data-file", str(path), "--model-dir", str(tmp_path / "run"), *TINY],
               tmp_path, capsys)
    assert str(path) in err and "pickled" not in err and "no such file" not in err
    expected = {"random": "not a zip archive", "truncated": "data.npz",
                "folder": "is a folder"}[kind]
    assert expected in err


def test_config_folder(tmp_path, capsys):
    (tmp_path / "conf.toml").mkdir()
    err = _run(["train", "--config", str(tmp_path / "conf.toml"), "--model-dir",
                str(tmp_path / "run")], tmp_path, capsys)
    assert "conf.toml" in err and "is a folder" in err and "does not exist" not in err


def test_truncated_checkpoint_state(tmp_path, capsys):
    from tripletlab.experiment import Experiment

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "digits"}))
    (run / "checkpoints" / "last.keras").write_bytes(b"")
    (run / "checkpoints" / "state.json").write_text('{"epoch": 3, "epo')
    with pytest.raises(ValueError, match=r"state\.json.*not valid JSON"):
        Experiment(run).read_state()
    err = _run(["train", "--model-dir", str(run), "--resume"], tmp_path, capsys)
    assert "state.json" in err


def test_visualize_images_of_the_wrong_length(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "e.npy", rng.normal(size=(30, 4)).astype("float32"))
    np.save(tmp_path / "l.npy", np.arange(30) % 3)
    np.save(tmp_path / "i.npy", rng.random((20, 8, 8, 1)).astype("float32"))
    err = _run(["visualize", "--embeddings", str(tmp_path / "e.npy"), "--labels",
                str(tmp_path / "l.npy"), "--images", str(tmp_path / "i.npy"), "--output",
                str(tmp_path / "out"), "--methods", "pca"], tmp_path, capsys)
    assert "i.npy" in err and "one image per embedding (30)" in err


def test_missing_image_folder_is_refused_before_a_backend_loads(tmp_path):
    import os
    import subprocess
    import sys

    # a fresh process: the refusal must come before Keras (and its backend) is imported
    script = ("import sys\nfrom tripletlab.cli.main import main\n"
              "status = main(sys.argv[1:])\n"
              "print('STATUS', status, 'keras' in sys.modules)\n")
    missing = tmp_path / "no-such-photos"
    result = subprocess.run(
        [sys.executable, "-c", script, "train", "--image-folder", str(missing), "--model-dir",
         str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert "STATUS 2 False" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "Training on" not in result.stdout
    assert "image_folder" in result.stderr and str(missing) in result.stderr
    assert not (tmp_path / "run").exists()
