"""Augmentation of training batches: every transform on this backend, determinism per
(seed, epoch, batch), the samplers' ``augment=`` hook, and the errors of bad data."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tripletlab.data import PKSampler, ShuffledBatches
from tripletlab.data.augmentation import (
    AUGMENTATION_BACKEND,
    AUGMENTATION_KEYS,
    Augmentation,
    batch_seed,
    build_augmentation,
    check_images,
)
from tripletlab.errors import ConfigError

EVERY = {"flip": "horizontal", "rotation": 0.05, "zoom": 0.2, "translation": 0.1,
         "brightness": 0.2, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}
ONE_AT_A_TIME = [{"flip": mode} for mode in ("horizontal", "vertical",
                                             "horizontal_and_vertical")]
ONE_AT_A_TIME += [{key: 0.3} for key in AUGMENTATION_KEYS if key != "flip"]


def images(count=6, size=16, channels=3, seed=0):
    """Smooth random images in [0, 1] with values near both ends (clipping is exercised)."""
    rng = np.random.default_rng(seed)
    x = rng.random((count, size, size, channels), dtype=np.float32)
    x[:, : size // 4] = 1.0
    x[:, -size // 4:] = 0.0
    return x


@pytest.mark.parametrize("values", [EVERY, *ONE_AT_A_TIME],
                         ids=["every", *(f"{k}={v}" for d in ONE_AT_A_TIME for k, v in d.items())])
def test_each_transform_keeps_shape_dtype_and_range(values):
    augment = build_augmentation(values)
    x = images()
    out = augment(x, seed=(0, 1, 2))
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, x)  # it does something
    assert np.array_equal(x, images())  # the input is not modified


def test_greyscale_and_a_batch_of_one():
    augment = build_augmentation({"flip": "horizontal", "rotation": 0.1, "brightness": 0.2})
    for x in (images(channels=1), images(count=1)):
        out = augment(x, seed=(3, 0, 0))
        assert out.shape == x.shape and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_same_seed_same_batch_other_seed_other_batch():
    augment = build_augmentation(EVERY)
    x = images()
    first = augment(x, seed=(0, 1, 2))
    np.testing.assert_array_equal(augment(x, seed=(0, 1, 2)), first)
    # a fresh object (another process or worker) draws the same
    np.testing.assert_array_equal(build_augmentation(EVERY)(x, seed=(0, 1, 2)), first)
    for other in ((0, 1, 3), (0, 2, 2), (1, 1, 2)):
        assert not np.array_equal(augment(x, seed=other), first), other


def test_images_of_a_batch_get_their_own_transforms():
    augment = build_augmentation({"rotation": 0.2})
    out = augment(np.repeat(images(count=1), 6, axis=0), seed=(0, 0, 0))
    assert len({out[i].tobytes() for i in range(6)}) == 6


def test_concurrent_calls_give_the_serial_results():
    augment = build_augmentation(EVERY)
    x = images()
    serial = [augment(x, seed=(0, 0, i)) for i in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i):
        results[i] = augment(x, seed=(0, 0, i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):
        np.testing.assert_array_equal(results[i], serial[i])


def eager_reference(augment, x, seed):
    """The layers applied op by op (eagerly), drawing from a fresh ``SeedGenerator`` of the
    call's seed, then clipped: what every call computed before the graph."""
    generator = augment.seed_generator(seed)
    ops = augment.layers[0].backend
    y = ops.convert_to_tensor(x)
    for layer in augment.layers:
        transformation = layer.get_random_transformation(y, training=True, seed=generator)
        y = layer.transform_images(y, transformation, training=True)
    return np.clip(np.asarray(ops.convert_to_numpy(y), dtype=np.float32), 0.0, 1.0)


def test_the_graph_computes_what_the_ops_compute_one_by_one():
    """On TensorFlow's ops the layers run as one graph per worker thread: the same draws and,
    for flip, brightness and contrast, the same bits as running the ops one by one; with
    every transform, within float32 rounding (TensorFlow's graph optimizer may reorder)."""
    pytest.importorskip(AUGMENTATION_BACKEND)
    x = images(count=5, size=24)
    fast = build_augmentation({"flip": "horizontal", "brightness": 0.2, "contrast": 0.3})
    every = build_augmentation(EVERY)
    for seed in [(0, 0, 0), (3, 1, 4), (7, 2, 9)]:
        assert fast(x, seed=seed).tobytes() == eager_reference(fast, x, seed).tobytes()
        np.testing.assert_allclose(every(x, seed=seed), eager_reference(every, x, seed),
                                   rtol=0, atol=2e-6)
    # the last batch of an epoch is shorter: a new shape, the same rule
    np.testing.assert_array_equal(fast(x[:2], seed=(1, 1, 1)),
                                  eager_reference(fast, x[:2], (1, 1, 1)))


def test_new_threads_and_shorter_batches_trace_no_new_graph(caplog):
    """Keras may start new worker threads each epoch and an epoch's last batch is shorter:
    neither builds a new TensorFlow graph (TensorFlow would warn about frequent retracing)."""
    pytest.importorskip(AUGMENTATION_BACKEND)
    augment = build_augmentation({"flip": "horizontal", "brightness": 0.2})
    results = {}

    def work(count):
        results[count] = augment(images(count=count), seed=(0, 0, count))

    for count in (6, 5, 4, 3, 2, 1, 6, 2, 5, 3, 4, 1):
        thread = threading.Thread(target=work, args=(count,))
        thread.start()
        thread.join()
    assert "retracing" not in caplog.text
    for count, out in results.items():
        np.testing.assert_array_equal(out, eager_reference(augment, images(count=count),
                                                           (0, 0, count)))


def test_a_pickled_augmentation_augments_alike():
    """Process workers get the augmentation pickled: the copy stays on the same ops and gives
    the same batches (unpickled Keras layers would otherwise fall back to the training
    backend)."""
    import pickle

    augment = build_augmentation(EVERY)
    x = images()
    expected = augment(x, seed=(2, 0, 5))
    copy = pickle.loads(pickle.dumps(augment))
    assert copy.backend == augment.backend
    assert all(layer.backend.name == augment.backend for layer in copy.layers)
    np.testing.assert_array_equal(copy(x, seed=(2, 0, 5)), expected)


def test_all_off_builds_nothing():
    assert build_augmentation({}) is None
    assert build_augmentation({"flip": "none", "rotation": 0, "hue": 0.0}) is None


def test_batch_seed_is_stable_and_31_bit():
    assert batch_seed((0, 1, 2)) == batch_seed([0, 1, 2])
    assert batch_seed((0, 1, 2)) != batch_seed((0, 2, 1))
    assert 0 <= batch_seed((2**40, 7, 9)) < 2**31


def test_check_images_refuses_what_cannot_be_augmented():
    check_images({"rotation": 0.1}, (8, 8, 1), "digits")
    check_images({}, (64,), "vectors")  # off: anything goes
    with pytest.raises(ConfigError, match=r"images \[H, W, C\].*\(64,\).*'vectors'"):
        check_images({"rotation": 0.1}, (64,), "vectors")
    with pytest.raises(ConfigError, match=r"RGB images.*hue=0.1 with 1-channel images"):
        check_images({"hue": 0.1}, (8, 8, 1), "digits")


def test_bad_arguments_name_themselves():
    with pytest.raises(ConfigError, match="rotation"):
        Augmentation(rotation=2.0)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        build_augmentation({"flip": "horizontal"})(np.zeros((4, 4)), seed=0)


# --------------------------------------------------------------------------------- the samplers

def labelled(count=36, classes=6):
    return images(count=count), np.arange(count) % classes


@pytest.mark.parametrize("kind", ["pk", "shuffled"])
def test_sampler_without_augment_is_unchanged_and_with_it_deterministic(kind):
    x, y = labelled()

    def make(augment):
        if kind == "pk":
            return PKSampler(x, y, 3, 2, seed=5, augment=augment)
        return ShuffledBatches(x, y, 6, seed=5, augment=augment)

    plain, default = make(None), (PKSampler(x, y, 3, 2, seed=5) if kind == "pk"
                                  else ShuffledBatches(x, y, 6, seed=5))
    augment = build_augmentation(EVERY)
    augmented = make(augment)
    for i in range(len(plain)):
        xb, yb = plain[i]
        np.testing.assert_array_equal(xb, default[i][0])  # off by default: bitwise the same
        np.testing.assert_array_equal(xb, x[plain.batch_indices(i)])
        xa, ya = augmented[i]
        np.testing.assert_array_equal(ya, yb)  # same rows, same labels
        assert xa.shape == xb.shape and xa.dtype == np.float32
        assert not np.array_equal(xa, xb)
        np.testing.assert_array_equal(augmented[i][0], xa)  # drawn again: the same
        assert augmented.augment_seed(i) == (5, 0, i)
    # another epoch augments differently; a resumed sampler (set_epoch) draws the same
    first = augmented[0][0]
    augmented.on_epoch_end()
    second_epoch = augmented[0][0]
    resumed = make(augment)
    resumed.set_epoch(1)
    np.testing.assert_array_equal(resumed[0][0], second_epoch)
    assert not np.array_equal(second_epoch, first)
    assert augmented.augment_seed(-1) == (5, 1, len(augmented) - 1)


def test_sampler_refuses_a_non_callable_augment():
    x, y = labelled()
    with pytest.raises(TypeError, match=r"augment.*Received: augment='flip'"):
        PKSampler(x, y, 3, 4, augment="flip")


def test_parameters_span_the_documented_ranges():
    """Each key's draws fill its documented two-sided range (Keras' single-float factors are
    one-sided for some layers: RandomContrast(0.2) only raises contrast)."""
    x = images(count=256, size=4)

    def draws(key, value, name):
        augment = build_augmentation({key: value})
        (layer,) = augment.layers
        transformation = layer.get_random_transformation(x, training=True,
                                                         seed=augment.seed_generator(0))
        return np.asarray(layer.backend.convert_to_numpy(transformation[name])).ravel()

    checks = {
        "rotation": ("angle", -0.05 * 360, 0.05 * 360, 0.0),
        "zoom": ("height_zoom", 0.8, 1.0, 0.9),
        "brightness": ("rgb_delta", -0.2, 0.2, 0.0),
        "contrast": ("contrast_factor", 0.7, 1.3, 1.0),
        "saturation": ("factor", 0.7 / 1.3, 1.3 / 0.7, 1.0),
        "hue": ("factor", -0.05, 0.05, 0.0),
    }
    values = {"rotation": 0.05, "zoom": 0.2, "brightness": 0.2, "contrast": 0.3,
              "saturation": 0.3, "hue": 0.05}
    for key, (name, low, high, middle) in checks.items():
        drawn = draws(key, values[key], name)
        assert low - 1e-5 <= drawn.min() < middle < drawn.max() <= high + 1e-5, (key, drawn)


# ------------------------------------------------------------------------ one backend for all

BACKENDS = ("tensorflow", "jax", "torch")
AUGMENTED = {"images": (4, 24, 24, 3), "seed": (7, 1, 2)}
# A fresh process on another training backend prints the bytes of the augmented batch (hex).
CHILD = f"""
import numpy as np
from tripletlab.data.augmentation import build_augmentation
x = np.random.default_rng(0).random({AUGMENTED['images']}, dtype=np.float32)
augment = build_augmentation({EVERY!r})
print(augment.backend, augment(x, seed={AUGMENTED['seed']}).tobytes().hex())
"""


def test_layers_are_bound_to_the_fixed_backend():
    """The layers run on TensorFlow's ops whatever the training backend (this fails loudly if
    Keras changes the ``backend`` attribute that ``bind_backend`` sets)."""
    pytest.importorskip(AUGMENTATION_BACKEND)
    augment = build_augmentation(EVERY)
    assert augment.backend == AUGMENTATION_BACKEND
    assert len(augment.layers) == len(EVERY)
    for layer in augment.layers:
        assert layer.backend.name == AUGMENTATION_BACKEND
    # still bound after calls, from several threads
    x = images()
    threads = [threading.Thread(target=augment, args=(x,), kwargs={"seed": i}) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(layer.backend.name == AUGMENTATION_BACKEND for layer in augment.layers)


def test_same_seed_same_batch_on_every_backend():
    """The same (seed, epoch, batch) gives the same augmented batch, bit for bit, on TensorFlow,
    JAX and PyTorch: this process's backend, and a fresh process on each of the two others.
    It covers every backend itself, so it runs in the full pass only (not again in
    ``scripts/test.sh``'s backend-dependent passes)."""
    if os.environ.get("TRIPLETLAB_BACKEND_TESTS_ONLY") == "1":
        pytest.skip("covers every backend itself; runs in the full (JAX) pass")
    pytest.importorskip(AUGMENTATION_BACKEND)
    for backend in BACKENDS:
        pytest.importorskip(backend)
    import keras

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    children = {
        backend: subprocess.Popen([sys.executable, "-c", CHILD], text=True,
                                  env={**env, "KERAS_BACKEND": backend},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for backend in BACKENDS if backend != keras.backend.backend()}
    x = np.random.default_rng(0).random(AUGMENTED["images"], dtype=np.float32)
    here = build_augmentation(EVERY)(x, seed=AUGMENTED["seed"])
    assert not np.array_equal(here, x)  # it augments
    for backend, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        bound, data = out.strip().splitlines()[-1].split()
        assert bound == AUGMENTATION_BACKEND, backend
        there = np.frombuffer(bytes.fromhex(data), dtype=np.float32).reshape(x.shape)
        np.testing.assert_array_equal(there, here, err_msg=backend)


def test_without_tensorflow_the_fallback_to_the_training_backend_is_announced(monkeypatch):
    import importlib.util

    import keras

    from tripletlab.data import augmentation

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(augmentation.importlib.util, "find_spec",
                        lambda name, *args: None if name == augmentation.AUGMENTATION_BACKEND
                        else real_find_spec(name, *args))
    with pytest.warns(UserWarning, match="not installed"):
        assert augmentation.augmentation_backend() == keras.backend.backend()
