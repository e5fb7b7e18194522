"""``export_model``: every format the backend exports reloads in its own runtime, in a fresh
process without Keras, and gives the Keras model's outputs within 1e-5; refused pairs, taken
paths and failed checks leave nothing behind; the serving spec says what a server needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tripletlab.errors import ConfigError, MissingExtraError, UserFileExistsError
from tripletlab.serving import artefact_check, export_model, formats
from tripletlab.serving.artefact_check import TOLERANCE, check_artefact
from tripletlab.serving.artefact_files import check_output
from tripletlab.serving.formats import (
    FORMATS,
    REQUIREMENTS,
    backend_formats,
    check_export_support,
    missing_requirements,
)
from tripletlab.serving.serving_spec import last_layer_normalizes, preprocessing, spec_path

BACKEND = keras.backend.backend()
EXPORTED_HERE = [f for f in backend_formats(BACKEND) if not missing_requirements(f, BACKEND)]
REFUSED_HERE = [f for f in FORMATS if (f, BACKEND) not in REQUIREMENTS]
FILE_NAMES = {"onnx": "model.onnx", "tf_saved_model": "saved_model", "litert": "model.tflite"}

# Loads the artefact as a server would, from its serving spec alone: no Keras, no tripletlab.
RELOAD = r"""
import json, sys
import numpy as np
artefact, spec_file, inputs_file, outputs_file = sys.argv[1:5]
with open(spec_file) as stream:
    spec = json.load(stream)
x = np.load(inputs_file).astype(spec["input"]["dtype"])
if spec["format"] == "onnx":
    import onnxruntime
    session = onnxruntime.InferenceSession(artefact, providers=["CPUExecutionProvider"])
    y = session.run([spec["output"]["name"]], {spec["input"]["name"]: x})[0]
elif spec["format"] == "tf_saved_model":
    import tensorflow as tf
    serve = tf.saved_model.load(artefact).signatures[spec["signature"]]
    y = serve(**{spec["input"]["name"]: tf.constant(x)})[spec["output"]["name"]].numpy()
else:
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path=artefact).get_signature_runner(spec["signature"])
    y = runner(**{spec["input"]["name"]: x})[spec["output"]["name"]]
np.save(outputs_file, y)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"keras", "tripletlab"})))
"""


def tiny_model(normalize=True, name="images"):
    """Conv → global average pooling → Dense → UnitNormalization: what every backend's ONNX
    converter writes in a form ONNX Runtime runs (JAX's writes MaxPooling2D as a pooling
    ONNX Runtime refuses: ``test_jax_onnx_of_max_pooling_is_checked``)."""
    inputs = keras.Input((8, 8, 1), name=name)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8)(x)
    if normalize:
        x = keras.layers.UnitNormalization()(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return tiny_model()


@pytest.fixture(scope="module")
def sample():
    return np.random.default_rng(1).uniform(size=(16, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module", params=EXPORTED_HERE)
def exported(request, tmp_path_factory, model, sample):
    folder = tmp_path_factory.mktemp(f"export_{request.param}")
    result = export_model(model, folder / FILE_NAMES[request.param], format=request.param,
                          sample_inputs=sample)
    return result


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_backend_exports_something():
    assert "onnx" in EXPORTED_HERE


def test_export_reloads_in_a_fresh_process_with_the_same_outputs(exported, model, sample,
                                                                 tmp_path):
    np.save(tmp_path / "inputs.npy", sample)
    completed = subprocess.run(
        [sys.executable, "-c", RELOAD, str(exported.path), str(exported.spec_path),
         str(tmp_path / "inputs.npy"), str(tmp_path / "outputs.npy")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    imported = json.loads(completed.stdout.strip().splitlines()[-1])
    # no tripletlab, and no Keras but the one TensorFlow imports itself
    assert imported == (["keras"] if exported.format == "tf_saved_model" and "keras" in imported
                        else [])
    outputs = np.load(tmp_path / "outputs.npy")
    expected = keras.ops.convert_to_numpy(model(sample, training=False))
    assert outputs.shape == (16, 8)
    assert np.abs(outputs - expected).max() <= TOLERANCE
    assert exported.max_abs_diff <= TOLERANCE and exported.samples == 16


def test_the_serving_spec_says_what_a_server_needs(exported):
    spec = json.loads(exported.spec_path.read_text(encoding="utf-8"))
    assert spec == exported.spec
    assert exported.spec_path == spec_path(exported.path)
    assert exported.spec_path.name == exported.path.name + ".serving.json"
    assert spec["written_by"] == "tripletlab" and spec["spec_version"] == 1
    assert spec["artefact"] == exported.path.name
    assert spec["format"] == exported.format
    assert spec["artefact_kind"] == ("folder" if exported.format == "tf_saved_model" else "file")
    assert spec["input"]["shape"] == [None, 8, 8, 1]
    assert spec["input"]["dtype"] == "float32"
    assert spec["output"]["shape"] == [None, 8]
    assert spec["embedding_size"] == 8
    assert spec["l2_normalized"] is True
    assert spec["output_norm_range"][0] == pytest.approx(1, abs=1e-4)
    assert spec["distance"] == "L2"
    assert spec["preprocessing"]["color_mode"] == "grayscale"
    assert spec["preprocessing"]["resize"] == [8, 8]
    assert spec["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert spec["preprocessing"]["layout"] == "channels_last"
    assert spec["exported_with"]["backend"] == BACKEND
    assert spec["exported_with"]["keras"] == keras.__version__
    assert spec["exported_with"]["tripletlab"]
    check = spec["check"]
    assert check["samples"] == 16 and check["tolerance"] == TOLERANCE
    assert 0 <= check["max_abs_diff"] <= TOLERANCE
    assert check["inputs"] == "16 inputs given"
    if exported.format != "onnx":
        assert spec["signature"] == "serving_default"
    # nothing else beside the artefact: no temporary left
    assert sorted(p.name for p in exported.path.parent.iterdir()) == sorted(
        [exported.path.name, exported.spec_path.name])


def test_a_failed_check_leaves_the_previous_export_as_it_was(exported, model, sample,
                                                             monkeypatch):
    folder = exported.path.parent
    before = listing(folder)
    spec_before = exported.spec_path.read_bytes()
    monkeypatch.setattr(artefact_check, "max_abs_difference", lambda a, b: 1.0)
    with pytest.raises(ConfigError, match=r"within 1e-05\. Received: max \|Keras - .*\| = 1 "
                                          r"over 16 inputs\. Nothing was written"):
        export_model(model, exported.path, format=exported.format, sample_inputs=sample,
                     overwrite=True)
    assert listing(folder) == before
    assert exported.spec_path.read_bytes() == spec_before


def test_a_failed_check_leaves_nothing(model, sample, tmp_path, monkeypatch):
    format = EXPORTED_HERE[-1]
    monkeypatch.setattr(artefact_check, "max_abs_difference", lambda a, b: float("nan"))
    with pytest.raises(ConfigError, match="Nothing was written"):
        export_model(model, tmp_path / FILE_NAMES[format], format=format, sample_inputs=sample)
    assert listing(tmp_path) == []


def test_overwrite_replaces_only_a_tripletlab_export(model, sample, tmp_path):
    path = tmp_path / "model.onnx"
    first = export_model(model, path, format="onnx", sample_inputs=sample[:4])
    with pytest.raises(UserFileExistsError, match="pass --overwrite"):
        export_model(model, path, format="onnx", sample_inputs=sample)
    second = export_model(model, path, format="onnx", sample_inputs=sample, overwrite=True)
    assert (first.samples, second.samples) == (4, 16)
    assert json.loads(second.spec_path.read_text())["check"]["samples"] == 16
    assert listing(tmp_path) == ["model.onnx", "model.onnx.serving.json"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_users_file_is_never_replaced(model, tmp_path, overwrite):
    for name in ("mine.onnx", "mine.onnx.serving.json"):
        target = tmp_path / name
        target.write_text("the user's")
        with pytest.raises(UserFileExistsError, match="mine.onnx"):
            export_model(model, tmp_path / "mine.onnx", format="onnx", overwrite=overwrite)
        assert target.read_text() == "the user's"
        target.unlink()
    # a spec beside it that tripletlab did not write does not make a file tripletlab's
    (tmp_path / "mine.onnx").write_text("the user's")
    (tmp_path / "mine.onnx.serving.json").write_text(json.dumps({"artefact": "mine.onnx"}))
    with pytest.raises(UserFileExistsError, match="did not write"):
        export_model(model, tmp_path / "mine.onnx", format="onnx", overwrite=True)
    assert (tmp_path / "mine.onnx").read_text() == "the user's"


@pytest.mark.parametrize("format", REFUSED_HERE or [None], ids=str)
def test_a_format_the_backend_cannot_export_names_what_can(model, tmp_path, format):
    if format is None:
        pytest.skip(f"the {BACKEND} backend exports every format")
    with pytest.raises(ConfigError) as raised:
        export_model(model, tmp_path / FILE_NAMES[format], format=format)
    message = str(raised.value)
    assert message.startswith(f"{format} needs the ")
    assert "--backend tensorflow" in message
    assert f"Received: backend={BACKEND!r}, format={format!r}." in message
    assert listing(tmp_path) == []


def test_the_support_table():
    assert formats.exporting_backends("onnx") == ("tensorflow", "jax", "torch")
    assert formats.exporting_backends("tf_saved_model") == ("tensorflow", "jax")
    with pytest.raises(ConfigError, match="needs the tensorflow backend here.*"
                                          "The jax backend exports here: onnx, tf_saved_model"):
        check_export_support("litert", "jax")
    with pytest.raises(ConfigError, match="torch_xla.*The torch backend exports here: onnx"):
        check_export_support("tf_saved_model", "torch")
    with pytest.raises(ConfigError, match="Did you mean 'onnx'"):
        check_export_support("onx", "torch")


def test_a_missing_package_names_the_extra(monkeypatch):
    real = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec",
                        lambda name: None if name in ("onnxruntime", "litert_torch")
                        else real(name))
    with pytest.raises(MissingExtraError, match=r'pip install "tripletlab\[export\]"'):
        check_export_support("onnx", "tensorflow")
    with pytest.raises(MissingExtraError, match="pip install litert-torch"):
        check_export_support("litert", "torch")


def test_litert_with_a_fixed_batch_is_checked_batch_by_batch(model, sample, tmp_path):
    if "litert" not in EXPORTED_HERE or BACKEND != "tensorflow":
        pytest.skip("LiteRT is written by the tensorflow backend here")
    path = tmp_path / "fixed.tflite"
    model.export(str(path), format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=(2, 8, 8, 1), dtype="float32")])
    expected = keras.ops.convert_to_numpy(model(sample[:5], training=False))
    result = check_artefact(path, "litert", sample[:5], expected)
    assert result.samples == 5 and result.signature.input_shape == (2, 8, 8, 1)
    assert result.max_abs_diff <= TOLERANCE


def test_jax_onnx_of_max_pooling_is_checked(tmp_path):
    """jax2onnx writes MaxPooling2D as an NHWC MaxPool that ONNX Runtime refuses: the check
    stops it with a message naming the backends that export ONNX (or passes, once fixed)."""
    if BACKEND != "jax" or "onnx" not in EXPORTED_HERE:
        pytest.skip("ONNX from JAX only")
    from tripletlab.models import build_model

    pooled = build_model("small-cnn", (8, 8, 1), 8, widths=(4,))
    try:
        result = export_model(pooled, tmp_path / "pooled.onnx", format="onnx")
    except ConfigError as error:
        assert "Expected ONNX Runtime to load and run the onnx export" in str(error)
        assert "Export onnx with --backend tensorflow or torch" in str(error)
        assert listing(tmp_path) == []
    else:
        assert result.max_abs_diff <= TOLERANCE


def test_without_a_sample_it_checks_on_uniform_inputs(tmp_path):
    model = tiny_model(normalize=False, name="pixels")
    result = export_model(model, tmp_path / "m.onnx", format="onnx", distance="angular")
    assert result.samples == 32
    assert "drawn uniformly in [0, 1]" in result.spec["check"]["inputs"]
    assert result.spec["input"]["name"] == "pixels"
    assert result.spec["distance"] == "angular"
    assert result.spec["l2_normalized"] is False


def test_bad_arguments_write_nothing(model, sample, tmp_path):
    with pytest.raises(ConfigError, match=r"Expected `--output` to end with '.tflite'"):
        check_output(tmp_path / "m.lite", "litert", overwrite=False, option="--output")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserFileExistsError, match="is a file"):
        check_output(tmp_path / "file" / "m.onnx", "onnx", overwrite=False)
    with pytest.raises(ConfigError, match="distance"):
        export_model(model, tmp_path / "m.onnx", format="onnx", distance="cosine")
    with pytest.raises(ConfigError, match=r"Expected inputs of shape \(8, 8, 1\)"):
        export_model(model, tmp_path / "m.onnx", format="onnx", sample_inputs=sample[:, :4])
    assert listing(tmp_path) == ["file"]


def test_the_preprocessing_of_each_input_shape():
    assert preprocessing((None, 32, 24, 3))["color_mode"] == "rgb"
    assert preprocessing((None, 32, 24, 3))["resize"] == [32, 24]
    assert preprocessing((None, 28, 28))["channels"] == 1
    assert "no channel axis" in preprocessing((None, 28, 28))["layout"]
    assert preprocessing((None, 64)) is None
    assert preprocessing((None, 8, 8, 5)) is None


def test_the_last_layer_says_whether_outputs_are_normalised():
    assert last_layer_normalizes(tiny_model(normalize=True))
    assert not last_layer_normalizes(tiny_model(normalize=False))


def test_max_abs_difference_counts_a_lone_nan_as_infinite():
    """The check's comparison itself (the failed-check tests replace it to test the cleanup)."""
    from tripletlab.serving.artefact_check import max_abs_difference

    a = np.array([[0.0, 1.0], [np.nan, 2.0]])
    assert max_abs_difference(a, a) == 0.0  # NaN in both places: equal
    assert max_abs_difference(a, a + [[0.0, 3e-5], [0.0, 0.0]]) == pytest.approx(3e-5)
    b = a.copy()
    b[0, 0] = np.nan
    assert max_abs_difference(a, b) == float("inf")
    assert max_abs_difference(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0
