"""``distribute``: the option, its refusals (another backend than JAX, offline triplets, a global
batch the devices cannot share), which environment asks for several processes, each process's
share of a batch and the padding of ``predict`` batches. The runs on 4 devices and on 2
processes are in tests/distributed."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tripletlab.cli.main import main
from tripletlab.data.process_share import ProcessShare
from tripletlab.inference import padded_rows
from tripletlab.train import train
from tripletlab.train.config import ConfigError, resolve_config
from tripletlab.train.distribution import (
    check_global_batch,
    multi_host_requested,
    start_processes,
)

DISTRIBUTE = {"dataset": "digits", "distribute": "data-parallel"}


def test_default_is_one_device():
    assert resolve_config({"dataset": "digits"}).distribute is None
    assert resolve_config(DISTRIBUTE).to_dict()["distribute"] == "data-parallel"


def test_unknown_value_is_refused():
    with pytest.raises(ConfigError, match="distribute"):
        resolve_config({**DISTRIBUTE, "distribute": "model-parallel"})


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_are_refused_naming_jax(backend):
    with pytest.raises(ConfigError, match=f"Expected the JAX backend.*backend='{backend}'"):
        resolve_config({**DISTRIBUTE, "backend": backend})


def test_cli_refuses_another_backend_before_writing(tmp_path, capsys):
    model_dir = tmp_path / "run"
    assert main(["train", "--model-dir", str(model_dir), "--dataset", "digits",
                 "--distribute", "data-parallel", "--backend", "torch"]) == 2
    assert "Expected the JAX backend" in capsys.readouterr().err
    assert not (model_dir / "config.json").exists()


def test_train_refuses_the_running_backend_unless_jax(tmp_path):
    if keras.backend.backend() == "jax":
        pytest.skip("the refusal is TensorFlow's and PyTorch's (scripts/test.sh runs them)")
    with pytest.raises(ConfigError, match=f"backend='{keras.backend.backend()}'"):
        train(resolve_config(DISTRIBUTE), tmp_path / "run")
    assert not (tmp_path / "run" / "config.json").exists()


def test_offline_triplets_are_refused():
    with pytest.raises(ConfigError, match="Expected mode='online' with distribute"):
        resolve_config({**DISTRIBUTE, "mode": "offline"})


def test_global_batch_must_divide_over_the_devices():
    pk = resolve_config({**DISTRIBUTE, "classes_per_batch": 3, "samples_per_class": 3})
    with pytest.raises(ConfigError, match=r"divisible by the 4 devices.*3 × 3 = 9"):
        check_global_batch(pk, 4)
    check_global_batch(pk, 3)
    shuffled = resolve_config({**DISTRIBUTE, "sampler": "shuffled", "batch_size": 30})
    with pytest.raises(ConfigError, match="batch_size=30; choose a batch_size"):
        check_global_batch(shuffled, 4)
    check_global_batch(shuffled, 2)


def test_which_environment_asks_for_several_processes():
    assert not multi_host_requested({})
    assert not multi_host_requested({"KERAS_DISTRIBUTION_NUM_PROCESSES": "1"})
    assert multi_host_requested({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"})
    assert multi_host_requested({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,"
                                                                     "10.0.0.2:1234"})
    start_processes("data-parallel", {})  # one process: nothing to start


def test_each_process_takes_its_share_of_every_global_batch():
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.arange(8) + 10 * index, np.arange(8) % 2

    shares = [ProcessShare(Batches(), index, 2) for index in range(2)]
    for position in range(2):
        x, y = Batches()[position]
        np.testing.assert_array_equal(np.concatenate([s[position][0] for s in shares]), x)
        np.testing.assert_array_equal(np.concatenate([s[position][1] for s in shares]), y)
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        ProcessShare(Batches(), 0, 3)[0]
    with pytest.raises(ValueError, match="process index"):
        ProcessShare(Batches(), 2, 2)


def test_predict_batches_are_padded_to_the_devices():
    rows = np.arange(10).reshape(5, 2)
    assert padded_rows(rows, 1) is rows
    padded = padded_rows(rows, 4)
    assert padded.shape == (8, 2)
    np.testing.assert_array_equal(padded[5:], np.repeat(rows[-1:], 3, axis=0))
