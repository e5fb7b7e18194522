"""``tripletlab export``: checked on the data given, else the experiment's data, else uniform
inputs, with a progress line per step; taken paths, clashing options, formats the backend cannot
export and missing extras are one-line errors (exit 2) that write nothing."""

from __future__ import annotations

import json

import keras
import pytest

from conftest import small_cnn_file
from tripletlab.cli.main import main
from tripletlab.experiment import CONFIG_FILE, MANIFEST_FILE, Experiment
from tripletlab.serving import formats
from tripletlab.train import resolve_config

BACKEND = keras.backend.backend()
# The quickest format each backend exports a small-cnn to (ONNX from JAX refuses MaxPooling2D).
FORMAT = {"tensorflow": "onnx", "jax": "tf_saved_model", "torch": "onnx"}[BACKEND]
NAME = {"onnx": "model.onnx", "tf_saved_model": "saved_model"}[FORMAT]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return small_cnn_file(tmp_path_factory, widths=(4,))


def export(model_file, output, *extra):
    return main(["export", "--model", str(model_file), "--format", FORMAT, "--output",
                 str(output), *extra])


def test_export_checks_on_the_data_refuses_a_taken_path_then_overwrites(model_file, tmp_path,
                                                                        capsys):
    output = tmp_path / "out" / NAME
    assert export(model_file, output, "--dataset", "digits", "--samples", "12") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Loading {model_file} (backend {BACKEND})"
    assert lines[1].startswith("Exporting ") and lines[1].endswith(f"with the {BACKEND} backend")
    assert lines[2].endswith("on 12 test images of digits (class-stratified, seed 0)")
    assert lines[3].startswith("max |Keras - ") and lines[3].endswith(
        "over 12 inputs (tolerance 1e-05)")
    spec = json.loads((tmp_path / "out" / f"{NAME}.serving.json").read_text())
    assert spec["check"]["samples"] == 12 and spec["check"]["max_abs_diff"] <= 1e-5
    assert spec["exported_with"]["model_file"] == str(model_file)

    assert export(model_file, output) == 2
    assert "already exist; pass --overwrite" in capsys.readouterr().err

    assert export(model_file, output, "--overwrite", "--distance", "angular") == 0
    out = capsys.readouterr().out
    assert "no experiment beside the model: checking on 32 inputs drawn uniformly in [0, 1]" in out
    spec = json.loads((tmp_path / "out" / f"{NAME}.serving.json").read_text())
    assert spec["distance"] == "angular" and spec["check"]["samples"] == 32
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [NAME, f"{NAME}.serving.json"]


def test_export_from_an_experiment_folder(model_file, tmp_path, capsys):
    experiment = Experiment(tmp_path / "run")
    experiment.start_manifest()
    config = resolve_config({"dataset": "digits", "distance": "angular", "embedding_dim": 8})
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps(config.to_dict()))
    best = tmp_path / "run" / "best.keras"
    best.write_bytes(model_file.read_bytes())

    assert export(best, tmp_path / "run" / NAME, "--distance", "L2") == 2
    assert "the experiment's distance 'angular'" in capsys.readouterr().err

    assert export(best, tmp_path / "run" / NAME, "--samples", "8") == 0
    out = capsys.readouterr().out
    assert f"Checking on the data of the experiment {tmp_path / 'run'}" in out
    spec = json.loads((tmp_path / "run" / f"{NAME}.serving.json").read_text())
    assert spec["distance"] == "angular"
    assert spec["check"]["inputs"] == "8 test images of digits (class-stratified, seed 0)"
    recorded = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())["files"]
    assert f"{NAME}.serving.json" in recorded
    assert any(name == NAME or name.startswith(f"{NAME}/") for name in recorded)


def test_a_format_the_backend_cannot_export_is_one_line(model_file, tmp_path, capsys):
    refused = [f for f in formats.FORMATS if (f, BACKEND) not in formats.REQUIREMENTS]
    if not refused:
        pytest.skip(f"the {BACKEND} backend exports every format")
    name = "x.tflite" if refused[0] == "litert" else "x"
    assert main(["export", "--model", str(model_file), "--format", refused[0], "--output",
                 str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tripletlab export: error: {refused[0]} needs the ")
    assert err.endswith(f"Received: backend={BACKEND!r}, format={refused[0]!r}.")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_extra_is_named(model_file, tmp_path, capsys, monkeypatch):
    real = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else real(name))
    assert main(["export", "--model", str(model_file), "--format", "onnx", "--output",
                 str(tmp_path / "m.onnx")]) == 2
    assert 'pip install "tripletlab[export]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_values_are_refused_before_loading(model_file, tmp_path, capsys):
    assert export(model_file, tmp_path / NAME, "--samples", "0") == 2
    assert "Expected `--samples` >= 1. Received: 0." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(model_file), "--format", "onx", "--output", "x"])
    assert list(tmp_path.iterdir()) == []
