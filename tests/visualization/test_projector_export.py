"""Tests for tripletlab.visualization.projector: the files TensorBoard's projector reads."""

import math
import re

import numpy as np
import pytest
from PIL import Image

from tripletlab.visualization import export_projector, projector


def _data(num=10, dim=5, size=6, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(num, dim)).astype(np.float32)
    labels = rng.integers(0, 3, size=num)
    images = rng.random((num, size, size, channels)).astype(np.float32)
    return embeddings, labels, images


def test_full_export_parses_back(tmp_path):
    embeddings, labels, images = _data(num=10, size=6)
    names = ["zero", "one\ttab", "two"]
    result = export_projector(tmp_path / "logs", embeddings, labels, images=images,
                              class_names=names)
    folder = tmp_path / "logs"
    assert {p.name for p in folder.iterdir()} == {
        "vecs.tsv", "meta.tsv", "sprite.png", "projector_config.pbtxt"}

    vectors = np.loadtxt(folder / "vecs.tsv", delimiter="\t", dtype=np.float64)
    np.testing.assert_array_equal(vectors.astype(np.float32), embeddings)

    meta = (folder / "meta.tsv").read_text().splitlines()
    assert meta[0] == "label\tclass"
    assert len(meta) == 10 + 1
    expected = [f"{y}\t{names[y].replace(chr(9), ' ')}" for y in labels]
    assert meta[1:] == expected

    side = math.ceil(math.sqrt(10))  # 4 x 4 grid
    with Image.open(folder / "sprite.png") as sprite:
        assert sprite.size == (side * 6, side * 6)
        pixels = np.asarray(sprite)
    first = np.round(images[0, ..., 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels[:6, :6], first)
    row, column = divmod(9, side)
    last = np.round(images[9, ..., 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels[row * 6:(row + 1) * 6, column * 6:(column + 1) * 6], last)

    config = (folder / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "vecs.tsv"' in config
    assert 'metadata_path: "meta.tsv"' in config
    assert 'image_path: "sprite.png"' in config
    assert re.findall(r"single_image_dim: (\d+)", config) == ["6", "6"]
    assert re.findall(r"tensor_shape: (\d+)", config) == ["10", "5"]
    assert result.thumbnail_size == (6, 6)
    assert result.config_path == folder / "projector_config.pbtxt"
    np.testing.assert_array_equal(result.indices, np.arange(10))
    assert not list(folder.glob(".*")), "temporary file left behind"


def test_config_parses_with_tensorboard(tmp_path):
    pb2 = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    text_format = pytest.importorskip("google.protobuf.text_format")
    embeddings, labels, images = _data(num=7, size=5, channels=3)
    export_projector(tmp_path, embeddings, labels, images=images)
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(),
                               pb2.ProjectorConfig())
    (embedding,) = config.embeddings
    assert embedding.tensor_path == "vecs.tsv"
    assert embedding.metadata_path == "meta.tsv"
    assert list(embedding.tensor_shape) == [7, 5]
    assert embedding.sprite.image_path == "sprite.png"
    assert list(embedding.sprite.single_image_dim) == [5, 5]
    with Image.open(tmp_path / embedding.sprite.image_path) as sprite:
        assert sprite.mode == "RGB" and sprite.size == (15, 15)


def test_labels_only_export_has_no_header_and_no_sprite(tmp_path):
    embeddings, labels, _ = _data(num=4)
    result = export_projector(tmp_path, embeddings, labels)
    meta = (tmp_path / "meta.tsv").read_text().splitlines()
    # one column: the projector reads a first line without a tab as data, not as a header
    assert meta == [str(y) for y in labels]
    assert result.sprite_path is None and not (tmp_path / "sprite.png").exists()
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert "sprite" not in config


def test_sprite_too_large_shrinks_thumbnails(tmp_path, monkeypatch):
    monkeypatch.setattr(projector, "MAX_SPRITE_PIXELS", 40)
    embeddings, labels, images = _data(num=10, size=16)  # 4 x 4 grid of 16 px = 64 px > 40
    with pytest.warns(UserWarning, match="shrunk from 16x16 to 10x10"):
        result = export_projector(tmp_path, embeddings, labels, images=images)
    assert result.thumbnail_size == (10, 10)
    with Image.open(tmp_path / "sprite.png") as sprite:
        assert sprite.size == (40, 40)
    assert re.findall(r"single_image_dim: (\d+)", result.config_path.read_text()) == ["10", "10"]
    assert len(np.loadtxt(tmp_path / "vecs.tsv", delimiter="\t")) == 10


def test_sprite_far_too_large_subsamples_everything_alike(tmp_path, monkeypatch):
    monkeypatch.setattr(projector, "MAX_SPRITE_PIXELS", 24)
    monkeypatch.setattr(projector, "MIN_THUMBNAIL_PIXELS", 8)
    embeddings, labels, images = _data(num=20, size=16)
    with pytest.warns(UserWarning, match="subsample of 9 of 20"):
        result = export_projector(tmp_path, embeddings, labels, images=images)
    assert len(result.indices) == 9 and result.thumbnail_size == (8, 8)
    vectors = np.loadtxt(tmp_path / "vecs.tsv", delimiter="\t").astype(np.float32)
    np.testing.assert_array_equal(vectors, embeddings[result.indices])
    meta = (tmp_path / "meta.tsv").read_text().splitlines()
    assert meta == [str(y) for y in labels[result.indices]]
    with Image.open(tmp_path / "sprite.png") as sprite:
        assert sprite.size == (24, 24)
    assert re.findall(r"tensor_shape: (\d+)", result.config_path.read_text()) == ["9", "5"]


@pytest.mark.parametrize("kwargs, message",
                         [({"labels": [0, 1]}, r"labels.*\[10\]"),
                          ({"images": np.zeros((3, 4, 4, 1))}, "one per embedding"),
                          ({"class_names": ["a"]}, "no name for label")],
                         ids=["labels", "images", "names"])
def test_bad_input_is_refused(tmp_path, kwargs, message):
    embeddings, labels, _ = _data(num=10)
    arguments = {"labels": labels, **kwargs}
    with pytest.raises(ValueError, match=message):
        export_projector(tmp_path / "out", embeddings, **arguments)
    assert not (tmp_path / "out").exists()
