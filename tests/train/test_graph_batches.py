"""On TensorFlow, in-memory training batches are gathered by ``tf.data`` (no Python per batch):
the same batches as the ``PyDataset``, bit for bit, in every ``fit`` epoch, resumes included."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from tripletlab.cli.main import main
from tripletlab.data import PKSampler, ShuffledBatches, load_dataset
from tripletlab.train.graph_batches import GraphBatches, serves_in_graph
from tripletlab.train.resume import FitEpochBatches

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="the tf.data path exists on TensorFlow only")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _samplers(data):
    # 1,437 images: 45 shuffled batches of 32, the last one of 29; 7 steps per fit epoch cross
    # the sampler's epochs (the short batch included); P×K with 3 steps per sampler epoch.
    return {
        "shuffled": (ShuffledBatches(data.x_train, data.y_train, 32, seed=3), 7),
        "pk": (PKSampler(data.x_train, data.y_train, 4, 3, steps_per_epoch=3, seed=5), 2),
    }


@tensorflow_only
@pytest.mark.parametrize("kind", ["shuffled", "pk"])
def test_graph_batches_are_the_pydataset_batches(digits, kind):
    sampler, steps = _samplers(digits)[kind]
    served = GraphBatches(FitEpochBatches(sampler, steps))
    reference = FitEpochBatches(sampler, steps)
    sizes = set()
    for fit_epoch in [4, 0, 6, 5]:  # any order: an epoch depends on its number alone
        served.select_epoch(fit_epoch)
        reference.fit_epoch = fit_epoch
        got = [(x.numpy(), y.numpy()) for x, y in served.dataset]
        assert len(got) == steps == len(reference)
        for index, (x, y) in enumerate(got):
            x_expected, y_expected = reference[index]
            assert x.dtype == x_expected.dtype and y.dtype == y_expected.dtype
            np.testing.assert_array_equal(x, x_expected)
            np.testing.assert_array_equal(y, y_expected)
            sizes.add(len(y))
    if kind == "shuffled":
        assert sizes == {32, 29}  # the sampler's short last batch came up and was kept


def test_only_in_memory_batches_without_augmentation_are_served_in_graph(digits):
    sampler, steps = _samplers(digits)["pk"]
    assert serves_in_graph(FitEpochBatches(sampler, steps)) == (
        keras.backend.backend() == "tensorflow")
    assert not serves_in_graph(sampler)  # no view: fit epochs would not be exact
    augmented = PKSampler(digits.x_train, digits.y_train, 4, 3, seed=5,
                          augment=lambda images, seed: images)
    assert not serves_in_graph(FitEpochBatches(augmented))
    if keras.backend.backend() != "tensorflow":
        with pytest.raises(ValueError, match="TensorFlow backend"):
            GraphBatches(FitEpochBatches(sampler, steps))


def _log(folder):
    with open(folder / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_same_losses(log, reference):
    assert [row["epoch"] for row in log] == [row["epoch"] for row in reference]
    for row, expected in zip(log, reference, strict=True):
        assert float(row["loss"]) == pytest.approx(float(expected["loss"]), rel=1e-6, abs=1e-7)


FLAGS = ["--dataset", "digits", "--model", "tfa-cnn", "--model-options", '{"filters": [8]}',
         "--sampler", "shuffled", "--batch-size", "32", "--steps-per-epoch", "5",
         "--eval-samples", "60", "--embedding-dim", "8", "--no-plots", "--no-tensorboard"]


@tensorflow_only
def test_training_through_tf_data_matches_the_pydataset_and_resumes(tmp_path, monkeypatch,
                                                                       capsys):
    graph, resumed, pydataset = tmp_path / "graph", tmp_path / "resumed", tmp_path / "pydataset"
    assert main(["train", "--model-dir", str(graph), *FLAGS, "--epochs", "4",
                 "--verbose", "2"]) == 0
    assert "input in tf.data  step" in capsys.readouterr().out  # the path that ran
    assert main(["train", "--model-dir", str(resumed), *FLAGS, "--epochs", "2",
                 "--verbose", "0"]) == 0
    assert main(["train", "--model-dir", str(resumed), "--resume", "--epochs", "4",
                 "--verbose", "0"]) == 0
    _assert_same_losses(_log(resumed), _log(graph))

    import tripletlab.train.fit_plan as fit_plan

    monkeypatch.setattr(fit_plan, "serves_in_graph", lambda batches: False)
    assert main(["train", "--model-dir", str(pydataset), *FLAGS, "--epochs", "4",
                 "--verbose", "2"]) == 0
    assert "input in tf.data" not in capsys.readouterr().out
    _assert_same_losses(_log(pydataset), _log(graph))
