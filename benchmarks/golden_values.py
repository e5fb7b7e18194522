"""Golden values: the original triplet losses' own outputs on fixed inputs, for the compat tests
(tests/compat/test_compat_golden.py compares tripletlab.compat with them on every backend).

Makes deterministic inputs (NumPy seeds), then runs the originals in their own interpreter (a
virtual environment holding them, never a dependency of tripletlab; see
``../shared/peers/make-venvs.sh``) through their documented public API, and writes

* ``tests/compat/golden/inputs.npz``: per input set ``NAME.labels`` (int32 ``[B]``) and
  ``NAME.embeddings`` (float32 ``[B, D]``); loadable with ``allow_pickle=False``;
* ``tests/compat/golden/values.json``: the package versions and one record per case: the input
  set, the original's loss (``library``, ``api``, ``kwargs``) and its float32 value (the
  string ``"nan"`` or ``"inf"`` where the original returned that; ``float()`` reads both).

The originals, called as their users call them:

* TF Addons: ``tfa.losses.TripletSemiHardLoss(margin=, distance_metric=)(y_true, y_pred)``,
  ``tfa.losses.TripletHardLoss(margin=, soft=, distance_metric=)(y_true, y_pred)``, and the
  functions ``tfa.losses.triplet_semihard_loss(y_true, y_pred, margin=, distance_metric=)`` and
  ``tfa.losses.triplet_hard_loss(y_true, y_pred, margin=, soft=, distance_metric=)``, for
  ``"L2"``, ``"squared-L2"`` and ``"angular"``;
* triplet-tools: ``triplet_tools.triplet_batch_semihard_loss(margin=, semi_margin=, metric=)``,
  ``triplet_batch_hard_loss(margin=, metric=)`` and ``triplet_batch_priming_loss(metric=)``, each
  returning ``loss(y_true, y_pred)``, for ``"euclidean_norm"``, ``"euclidean"`` and ``"cosine"``.

omoindrot's tensorflow-triplet-loss is a repository of scripts, not a package on PyPI, so it
has no golden values here (its compat module is checked against tests/oracle.py only).

Usage (tripletlab's Python runs this script; about 15 seconds; a re-run writes the same bytes):
  python benchmarks/golden_values.py --tfa-python ../peers/tfa/bin/python
  python benchmarks/golden_values.py --tfa-python P --triplet-tools-python Q --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "compat" / "golden"

TFA_METRICS = ("L2", "squared-L2", "angular")
TRIPLET_TOOLS_METRICS = ("euclidean_norm", "euclidean", "cosine")


# --- inputs -------------------------------------------------------------------------------------


def _pk_labels(rng, classes, per_class):
    return rng.permutation(np.repeat(np.arange(classes), per_class))


def _near_duplicates(rng, classes, per_class, dim, spread):
    """Each class is one centre plus noise of ``spread``; one row of class 1 is a near-duplicate
    (``spread`` away) of a row of class 0, so a negative sits as close as a positive."""
    centres = rng.normal(size=(classes, dim))
    labels = _pk_labels(rng, classes, per_class)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    first0, first1 = np.flatnonzero(labels == 0)[0], np.flatnonzero(labels == 1)[0]
    x[first1] = x[first0] + spread * rng.normal(size=dim)
    return labels, x


def make_inputs():
    """``{name: (labels int32 [B], embeddings float32 [B, D], margin)}``; the names say the label
    structure (``pkPxK``, ``distinct``, ``single-class``, ``random``), B, D and the scale.

    Most sets share the shape 16 x 8 (on JAX each new shape compiles every operation again, so
    the test stays fast); B = 1, 2 and 64 and D = 2, 3 and 16 have their own sets."""
    sets = {}

    def add(name, margin, labels, x):
        sets[name] = (np.asarray(labels, dtype=np.int32),
                      np.asarray(x, dtype=np.float64).astype(np.float32), float(margin))

    rng = np.random.default_rng(0)
    add("pk4x4-b16-d8", 1.0, _pk_labels(rng, 4, 4), rng.normal(size=(16, 8)))
    rng = np.random.default_rng(1)
    add("pk8x8-b64-d16-x0.05", 0.05, _pk_labels(rng, 8, 8), 0.05 * rng.normal(size=(64, 16)))
    rng = np.random.default_rng(2)  # squared-L2 gaps beyond 88: TF Addons' soft margin overflows
    add("pk8x2-b16-d8-x30", 2.0, _pk_labels(rng, 8, 2), 30.0 * rng.normal(size=(16, 8)))
    rng = np.random.default_rng(3)  # L2-normalised rows, as after the TF Addons tutorial's Lambda
    x = rng.normal(size=(16, 8))
    add("pk4x4-b16-d8-unit", 0.5, _pk_labels(rng, 4, 4),
        x / np.linalg.norm(x, axis=1, keepdims=True))
    rng = np.random.default_rng(4)
    add("pk4x4-b16-d8-near-dup-1e-3", 0.3, *_near_duplicates(rng, 4, 4, 8, 1e-3))
    rng = np.random.default_rng(6)  # exact duplicates: each class is one row repeated
    labels = _pk_labels(rng, 4, 4)
    add("pk4x4-b16-d8-exact-dup", 1.0, labels, rng.normal(size=(4, 8))[labels])
    rng = np.random.default_rng(7)
    add("distinct-b16-d8", 1.0, rng.permutation(16) * 3 - 7, rng.normal(size=(16, 8)))
    rng = np.random.default_rng(9)
    add("single-class-b16-d8-x0.1", 1.0, np.full(16, 3), 0.1 * rng.normal(size=(16, 8)))
    rng = np.random.default_rng(10)
    add("random-b16-d8", 0.7, rng.integers(0, 5, size=16), rng.normal(size=(16, 8)))
    rng = np.random.default_rng(11)  # large, sparse label values, several singleton classes
    add("random-b16-d8-x3", 1.5, rng.choice([-5, 2, 17, 1000, 123456, 99], size=16),
        3.0 * rng.normal(size=(16, 8)))
    rng = np.random.default_rng(12)
    add("single-b1-d3", 1.0, np.array([4]), rng.normal(size=(1, 3)))
    rng = np.random.default_rng(14)
    add("distinct-b2-d2", 1.0, np.array([0, 1]), rng.normal(size=(2, 2)))
    rng = np.random.default_rng(13)
    add("pair-b2-d2", 1.0, np.array([1, 1]), rng.normal(size=(2, 2)))
    return sets


def make_cases(sets):
    """One record per (input set, original loss, arguments).

    Every set gets each TF Addons loss on each metric (hard: soft False and True) and each
    triplet-tools loss on each metric. To keep the test short, TF Addons' class form
    (``TripletSemiHardLoss(...)(y_true, y_pred)``) and its functional form alternate over the
    sets (both give one value in TF Addons; tripletlab reduces them differently), and so does
    triplet-tools' ``semi_margin`` (0, +0.1 margin, -0.1 margin)."""
    cases = []

    def add(name, library, api, **kwargs):
        parts = [f"{k}={v}" for k, v in kwargs.items() if k not in ("distance_metric", "metric")]
        metric = kwargs.get("distance_metric", kwargs.get("metric"))
        case_id = "/".join([name, f"{library}.{api}", metric, *parts])
        cases.append({"id": case_id, "input": name, "library": library, "api": api,
                      "kwargs": kwargs})

    for index, (name, (_, _, margin)) in enumerate(sets.items()):
        semi_hard, hard = (("TripletSemiHardLoss", "TripletHardLoss") if index % 2 == 0
                           else ("triplet_semihard_loss", "triplet_hard_loss"))
        for metric in TFA_METRICS:
            add(name, "tfa", semi_hard, margin=margin, distance_metric=metric)
            for soft in (False, True):
                add(name, "tfa", hard, margin=margin, soft=soft, distance_metric=metric)
        semi_margin = round((0.0, 0.1, -0.1)[index % 3] * margin, 6)
        for metric in TRIPLET_TOOLS_METRICS:
            add(name, "triplet_tools", "triplet_batch_semihard_loss", margin=margin,
                semi_margin=semi_margin, metric=metric)
            add(name, "triplet_tools", "triplet_batch_hard_loss", margin=margin, metric=metric)
            add(name, "triplet_tools", "triplet_batch_priming_loss", metric=metric)
    return cases


# --- the originals, in their own interpreter ----------------------------------------------------

# Sent to the peer's Python: calls the originals' public API only (argv: inputs.npz cases.json
# libraries output.json).
PEER_SCRIPT = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import warnings
warnings.simplefilter("ignore")
from importlib import metadata
import numpy as np
import tensorflow as tf

inputs_path, cases_path, libraries, output_path = sys.argv[1:5]
libraries = libraries.split(",")
data = np.load(inputs_path, allow_pickle=False)
cases = [c for c in json.load(open(cases_path)) if c["library"] in libraries]
versions = {"python": sys.version.split()[0], "numpy": np.__version__,
            "tensorflow": tf.__version__}
if "tfa" in libraries:
    import tensorflow_addons as tfa
    versions["tensorflow-addons"] = tfa.__version__
if "triplet_tools" in libraries:
    import triplet_tools
    versions["triplet-tools"] = metadata.version("triplet-tools")


def call(case, y_true, y_pred):
    api, kwargs = case["api"], case["kwargs"]
    if case["library"] == "tfa":
        if api in ("TripletSemiHardLoss", "TripletHardLoss"):
            return getattr(tfa.losses, api)(**kwargs)(y_true, y_pred)
        return getattr(tfa.losses, api)(y_true, y_pred, **kwargs)
    return getattr(triplet_tools, api)(**kwargs)(y_true, y_pred)


values = {}
for case in cases:
    y_true = tf.constant(data[case["input"] + ".labels"])
    y_pred = tf.constant(data[case["input"] + ".embeddings"])
    value = call(case, y_true, y_pred)
    assert value.dtype == tf.float32 and value.shape == (), (case["id"], value)
    value = float(value.numpy())
    values[case["id"]] = value if np.isfinite(value) else str(value)  # "nan", "inf", "-inf"
json.dump({"versions": versions, "values": values}, open(output_path, "w"))
"""


def run_peer(python, libraries, inputs_path, cases_path, workdir):
    output = Path(workdir) / f"{'-'.join(libraries)}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    completed = subprocess.run(
        [python, "-c", PEER_SCRIPT, str(inputs_path), str(cases_path), ",".join(libraries),
         str(output)], env=env, capture_output=True, text=True, timeout=1800)
    if completed.returncode != 0:
        sys.exit(f"{python} failed:\n{completed.stderr[-4000:]}")
    return json.loads(output.read_text())


def write_npz(path, arrays):
    """``numpy.savez_compressed`` with a fixed timestamp, so a re-run gives the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as file:
                np.lib.format.write_array(file, np.ascontiguousarray(array),
                                          allow_pickle=False)


def write_json(path, record):
    """JSON with one case a line (compact, and a re-run's diff names the cases that changed)."""
    head = {key: value for key, value in record.items() if key != "cases"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "cases": [\n'
    text += ",\n".join("  " + json.dumps(case, allow_nan=False) for case in record["cases"])
    path.write_text(text + "\n ]\n}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfa-python", required=True,
                        help="a Python with tensorflow-addons (and TensorFlow)")
    parser.add_argument("--triplet-tools-python",
                        help="a Python with triplet-tools (default: --tfa-python)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    tt_python = args.triplet_tools_python or args.tfa_python

    sets = make_inputs()
    cases = make_cases(sets)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (labels, x, _) in sets.items():
        arrays[f"{name}.labels"], arrays[f"{name}.embeddings"] = labels, x
    inputs_path = args.out / "inputs.npz"
    write_npz(inputs_path, arrays)

    with tempfile.TemporaryDirectory() as workdir:
        cases_path = Path(workdir) / "cases.json"
        cases_path.write_text(json.dumps(cases))
        if Path(tt_python).resolve() == Path(args.tfa_python).resolve():
            runs = [run_peer(args.tfa_python, ["tfa", "triplet_tools"], inputs_path,
                             cases_path, workdir)]
        else:
            runs = [run_peer(args.tfa_python, ["tfa"], inputs_path, cases_path, workdir),
                    run_peer(tt_python, ["triplet_tools"], inputs_path, cases_path, workdir)]
    versions, values = {}, {}
    for run in runs:
        versions.update(run["versions"])
        values.update(run["values"])
    for case in cases:
        case["value"] = values[case["id"]]
    record = {
        "made_by": "benchmarks/golden_values.py --tfa-python PATH",
        "versions": versions,
        "not_produced": {"omoindrot": "tensorflow-triplet-loss is a repository of scripts, "
                                      "not a package on PyPI"},
        "non_finite": 'value "nan" or "inf": what the original returned (float() reads it)',
        "cases": cases,
    }
    write_json(args.out / "values.json", record)
    odd = sum(isinstance(case["value"], str) for case in cases)
    print(f"{len(cases)} cases over {len(sets)} input sets ({odd} NaN or inf) -> {args.out}; "
          f"versions {versions}")


if __name__ == "__main__":
    main()
