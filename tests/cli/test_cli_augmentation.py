"""``tripletlab train`` with augmentation on a generated RGB image folder: the grid of augmented
samples in plots/ and in the report, and evaluation, scores and exports left unaugmented."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tripletlab.cli.main import main

# Layers that compile quickly on JAX (every transform is tested in tests/data/).
AUGMENT = ["--flip", "horizontal", "--zoom", "0.2", "--brightness", "0.2", "--hue", "0.05"]


def write_shapes(root, classes=4, per_class=6, size=32):
    """A folder of coloured shapes, one colour and shape per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 180, 60), (40, 80, 220), (230, 200, 30)]
    rows, cols = np.mgrid[:size, :size]
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((size, size, 3), 255, np.uint8)
            top, left = rng.integers(2, size // 2, 2)
            side = int(rng.integers(size // 3, size // 2))
            if c % 2:
                mask = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
            else:
                mask = (rows - top - side / 2) ** 2 + (cols - left - side / 2) ** 2 < side**2 / 4
            pixels[mask] = colours[c % len(colours)]
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("augmentation")
    folder = write_shapes(root / "shapes")
    model_dir = root / "run"
    status = main(["train", "--model-dir", str(model_dir), "--image-folder", str(folder),
                   "--epochs", "1", "--steps-per-epoch", "2", "--classes-per-batch", "4",
                   "--samples-per-class", "2", "--embedding-dim", "8", "--model-options",
                   '{"widths": [8]}', "--projections", "pca", "--eval-samples", "8",
                   "--no-tensorboard", "--verbose", "2", *AUGMENT])
    assert status == 0
    return folder, model_dir


def test_train_draws_the_grid_and_the_report_shows_it(run, capsys):
    _, model_dir = run
    picture = model_dir / "plots/augmentation.png"
    assert picture.is_file() and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/augmentation.png" in json.loads((model_dir / "manifest.json").read_text(
        ))["files"]
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["flip"], config["zoom"], config["hue"]) == ("horizontal", 0.2, 0.05)
    page = (model_dir / "report.html").read_text()
    section = page[page.index('<section id="augmentation">'):]
    section = section[:section.index("</section>")]
    assert "flip horizontal" in section and "hue ±0.05 of a turn" in section
    assert 'alt="plots/augmentation.png" src="data:image/png;base64,' in section
    assert page.count('alt="plots/augmentation.png"') == 1  # not repeated under Plots


def test_evaluation_and_exports_are_not_augmented(run):
    import keras

    from tripletlab.data import load_dataset
    from tripletlab.evaluation import evaluate_embeddings
    from tripletlab.inference import embed
    from tripletlab.train.compiled_model import register_classes

    folder, model_dir = run
    data = load_dataset("image-folder", image_folder=folder, seed=0)
    register_classes()
    model = keras.saving.load_model(model_dir / "best.keras", safe_mode=True, compile=False)
    test = embed(model, data.x_test)
    exported = np.load(model_dir / "embeddings/test_embeddings.npy")
    labels = np.load(model_dir / "embeddings/test_labels.npy")
    # the exports are the plain test images' embeddings (in a stratified order)
    for row, label in zip(exported, labels, strict=True):
        candidates = test[data.y_test == label]
        assert np.min(np.max(np.abs(candidates - row), axis=1)) <= 1e-5
    scores = evaluate_embeddings(test, data.y_test, embed(model, data.x_train), data.y_train,
                                 clustering=False)
    saved = json.loads((model_dir / "metrics.json").read_text())["test_to_train"]
    for name, value in scores.items():
        assert value == pytest.approx(saved[name], abs=1e-6, nan_ok=True), name


def test_off_the_report_says_so(tmp_path):
    from tripletlab.visualization import write_report

    (tmp_path / "config.json").write_text(json.dumps({"flip": "none", "rotation": 0.0}))
    page = write_report(tmp_path).read_text()
    assert "Augmentation off" in page
    (tmp_path / "config.json").unlink()
    (tmp_path / "metrics.json").write_text(json.dumps({"model": "best.keras"}))
    assert '<section id="augmentation">' not in write_report(tmp_path).read_text()
