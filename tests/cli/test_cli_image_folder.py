"""``tripletlab train --image-folder`` as a user runs it, then ``embed`` and ``evaluate`` on the
result: images streamed from disk everywhere, the split and the throughput in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
from PIL import Image, ImageDraw

import tripletlab
from tripletlab.cli.main import main

CLASSES = ("blue", "green", "red", "yellow")
COLOURS = ((40, 60, 230), (40, 200, 60), (230, 40, 40), (240, 200, 30))


def write_split_folder(root):
    rng = np.random.default_rng(11)
    for split, count in (("train", 6), ("test", 3)):
        for name, colour in zip(CLASSES, COLOURS, strict=True):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                image = Image.new("RGB", (32, 32), tuple(rng.integers(0, 60, 3).tolist()))
                x0, y0 = rng.integers(0, 16, 2).tolist()
                ImageDraw.Draw(image).rectangle([x0, y0, x0 + 12, y0 + 12], fill=colour)
                image.save(root / split / name / f"{i}.jpg", quality=90)
    return root


def decode_with_pillow(root, split):
    images = []
    for name in CLASSES:
        for path in sorted((root / split / name).iterdir()):
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return (np.stack(images).astype(np.float32) / np.float32(255.0)).astype(np.float32)


def test_train_embed_evaluate_on_an_image_folder(tmp_path):
    root = write_split_folder(tmp_path / "colours")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tripletlab.cli.main", "train", "--image-folder", str(root),
               "--model-dir", str(run), "--epochs", "1", "--classes-per-batch", "4",
               "--samples-per-class", "2", "--embedding-dim", "8", "--model-options",
               '{"widths": [8]}', "--no-plots", "--no-tensorboard", "--verbose", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert ("24 train and 12 test images of 32x32x3, 4 classes, streamed from disk; "
            "split: the train/ and test/ sub-folders") in out
    epoch_line = next(line for line in out.splitlines() if line.startswith("epoch 1/1"))
    assert "img/s" in epoch_line and "input " in epoch_line and "step " in epoch_line
    assert (run / "best.keras").is_file()
    assert np.load(run / "embeddings" / "test_images.npy").shape == (12, 32, 32, 3)

    emb = tmp_path / "emb"
    assert main(["embed", "--model", str(run / "best.keras"), "--image-folder", str(root),
                 "--split", "test", "--output", str(emb)]) == 0
    embeddings = np.load(emb / "embeddings.npy")
    np.testing.assert_array_equal(np.load(emb / "labels.npy"), np.repeat(np.arange(4), 3))
    tripletlab.register_keras_classes()
    model = keras.saving.load_model(run / "best.keras", compile=False)
    expected = keras.ops.convert_to_numpy(model.predict(decode_with_pillow(root, "test"),
                                                        verbose=0))
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)

    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(run / "best.keras"), "--image-folder", str(root),
                 "--no-clustering", "--output", str(metrics)]) == 0
    assert 0.0 <= json.loads(metrics.read_text())["precision_at_1"] <= 1.0
