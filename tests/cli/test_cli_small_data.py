"""``tripletlab train`` on small image folders of 2, 3 and 4 classes, as users first try it
(docs/training.md, "Sampler parameters"): the defaults adapt to the data and train; a chosen
value the data cannot fill is refused on one line, before the model is built, writing nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tripletlab.cli.main import main

COLOURS = ((40, 60, 230), (40, 200, 60), (230, 40, 40), (240, 200, 30))


def write_image_folder(root, classes, per_class=6):
    rng = np.random.default_rng(classes)
    for label, colour in enumerate(COLOURS[:classes]):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (24, 24), tuple(rng.integers(0, 60, 3).tolist()))
            x0, y0 = rng.integers(0, 12, 2).tolist()
            ImageDraw.Draw(image).rectangle([x0, y0, x0 + 10, y0 + 10], fill=colour)
            image.save(root / f"class{label}" / f"{i}.png")
    return root


@pytest.mark.parametrize("classes", [2, 3, 4], ids=["2-classes", "3-classes", "4-classes"])
def test_defaults_train_on_a_small_image_folder(tmp_path, capsys, classes):
    folder = write_image_folder(tmp_path / "images", classes)
    run = tmp_path / "run"
    code = main(["train", "--image-folder", str(folder), "--model-dir", str(run), "--epochs",
                 "1", "--verbose", "2", "--no-tensorboard", "--projections", "pca"])
    out = capsys.readouterr().out
    assert code == 0
    assert (f"Batches: classes_per_batch = {classes}: the training data of {str(folder)!r} has "
            f"{classes} classes (the default is 8)") in out
    config = json.loads((run / "config.json").read_text())
    assert (config["classes_per_batch"], config["samples_per_class"]) == (classes, 4)
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()


def test_a_chosen_classes_per_batch_the_data_cannot_fill_is_one_line(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "images", 4)
    run = tmp_path / "run"
    code = main(["train", "--image-folder", str(folder), "--model-dir", str(run),
                 "--classes-per-batch", "8"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [
        f"tripletlab train: error: Expected `classes_per_batch` to be at most the 4 classes of "
        f"the training data of {str(folder)!r}. Received: classes_per_batch=8; choose 2 to 4, "
        "or leave it unset (it then takes every class when there are fewer than 8)."]
    assert not run.exists()


@pytest.mark.parametrize("flags", [
    ["--export-samples", "0"],
    ["--eval-samples", "2", "--live-pca"],
    ["--sampler", "shuffled", "--batch-size", "2"],
    ["--projections", "pca,tsne,umap"],
], ids=["no-export", "live-pca-2-eval", "shuffled-pairs", "every-projection"])
def test_options_a_small_folder_can_fill_train_without_a_traceback(tmp_path, flags):
    folder = write_image_folder(tmp_path / "images", 3)
    run = tmp_path / "run"
    assert main(["train", "--image-folder", str(folder), "--model-dir", str(run), "--epochs",
                 "1", "--verbose", "0", "--no-tensorboard", *flags]) == 0
    assert (run / "metrics.json").is_file()


def test_live_pca_needs_three_test_images(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "images", 2, per_class=4)  # 2 test images
    code = main(["train", "--image-folder", str(folder), "--model-dir", str(tmp_path / "run"),
                 "--live-pca"])
    assert code == 2
    assert "Expected at least 3 test images with live_pca=True" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
