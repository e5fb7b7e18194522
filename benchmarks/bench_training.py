"""Seconds per training epoch: ``configs/tfa-tutorial.toml`` against the TF Addons tutorial itself.

One run times, each in a fresh subprocess:

* the TF Addons ``TripletSemiHardLoss`` tutorial, written out here from its description: on
  TensorFlow 2.15 + Keras 2 + TF Addons 0.23 (``--tfa-python``, an interpreter whose environment
  holds them), a ``Sequential`` CNN (Conv2D 64 / pool / dropout, Conv2D 32 / pool / dropout,
  Flatten, Dense 256, ``Lambda`` L2 normalisation), ``tfa.losses.TripletSemiHardLoss()``,
  ``Adam(1e-3)``, the training images in batches of 32 from ``tf.data`` (shuffle 1024, batch,
  map to [0, 1]), ``model.fit``;
* ``tripletlab train --config configs/tfa-tutorial.toml`` on each ``--backends`` entry, on the
  same ``.npz`` file, with ``--eval-every 0 --no-plots --no-tensorboard`` so that an epoch is
  training alone, like the tutorial's (``--tripletlab-flags`` adds more, e.g.
  ``--jit-compile false``).

Both report the wall time of each epoch (tripletlab from its ``epoch N/M ... 12.3s`` lines, the
tutorial from a callback). The first epoch includes tracing / compilation on both sides; with
``--epochs 2`` or more the table also gives the median of the later epochs.

Usage:
  python benchmarks/bench_training.py --data-file mnist.npz \\
      --tfa-python ../peers/tfa/bin/python --backends tensorflow jax torch --epochs 1
  # quick and repeated, alternating (the later epoch after compilation is the figure):
  python benchmarks/bench_training.py --data-file mnist.npz \\
      --tfa-python ../peers/tfa/bin/python --epochs 2 --steps 400 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import results_file

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(os.path.dirname(HERE), "configs", "tfa-tutorial.toml")
# "epoch 1/5  loss 0.60  frac+ 0.71  121.5s  input ... img/s ..." (the seconds end a field)
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\s.*?\s([0-9.]+)s(?:\s|$)")


def tutorial(data_file, epochs, steps=0):
    """Runs in the TF Addons interpreter: the tutorial's training, one time per epoch."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_addons as tfa

    tf.keras.utils.set_random_seed(0)
    with np.load(data_file) as data:
        x_train, y_train = data["x_train"], data["y_train"]

    def normalize(image, label):
        return tf.cast(image, tf.float32) / 255.0, label

    dataset = (tf.data.Dataset.from_tensor_slices((x_train[..., None], y_train))
               .shuffle(1024).batch(32).map(normalize))
    if steps:  # epochs of `steps` batches (the data repeated), as tripletlab's --steps-per-epoch
        dataset = dataset.repeat()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.Conv2D(64, 2, padding="same", activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D(2),
        layers.Dropout(0.3),
        layers.Conv2D(32, 2, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(256, activation=None),
        layers.Lambda(lambda x: tf.math.l2_normalize(x, axis=1)),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.001),
                  loss=tfa.losses.TripletSemiHardLoss())

    class Times(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.losses, self._start = [], [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)
            self.losses.append(float((logs or {}).get("loss", float("nan"))))

    times = Times()
    model.fit(dataset, epochs=epochs, callbacks=[times], verbose=0,
              steps_per_epoch=steps or None)
    return {"epoch_seconds": times.seconds, "losses": times.losses,
            "versions": f"TensorFlow {tf.__version__}, TF Addons {tfa.__version__}"}


def run_tutorial(python, data_file, epochs, timeout, steps=0):
    """The tutorial in a fresh subprocess of ``python``."""
    command = [python, __file__, "--child-tutorial", "--data-file", data_file,
               "--epochs", str(epochs), "--steps", str(steps)]
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                                   timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        return {"error": f"failed: {completed.stderr.strip().splitlines()[-1:]}"}
    return {**json.loads(lines[0][len("RESULT "):]), "process_seconds": time.perf_counter() - start}


def run_tripletlab(backend, data_file, epochs, timeout, extra_flags, steps=0):
    """``tripletlab train`` on ``backend`` in a fresh subprocess; epoch times from its lines."""
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        command = [sys.executable, "-m", "tripletlab.cli.main", "train", "--config", CONFIG,
                   "--data-file", data_file, "--model-dir", os.path.join(folder, "run"),
                   "--epochs", str(epochs), "--eval-every", "0", "--no-plots",
                   "--no-tensorboard", "--verbose", "2", *extra_flags]
        if steps:
            command += ["--steps-per-epoch", str(steps)]
        if backend != "default":
            command += ["--backend", backend]
        environment = dict(os.environ)
        if backend == "default":
            environment.pop("KERAS_BACKEND", None)
        start = time.perf_counter()
        try:
            completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                                       timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"over {timeout:.0f} s"}
        elapsed = time.perf_counter() - start
    out = completed.stdout.splitlines()
    seconds = [float(m.group(3)) for m in map(EPOCH_LINE.match, out) if m]
    if completed.returncode != 0 or not seconds:
        return {"error": f"failed: {completed.stderr.strip().splitlines()[-1:]}"}
    return {"epoch_seconds": seconds, "first_line": out[0] if out else "",
            "process_seconds": elapsed}


def _per_epoch(result):
    """(first epoch, median of the later epochs or None)."""
    seconds = result["epoch_seconds"]
    return seconds[0], (statistics.median(seconds[1:]) if len(seconds) > 1 else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", required=True, help=".npz in Keras' mnist.npz layout")
    parser.add_argument("--tfa-python", help="Python of an environment with TF 2.15 + TF Addons")
    parser.add_argument("--backends", nargs="+", default=["default"],
                        choices=["default", "tensorflow", "jax", "torch"],
                        help="tripletlab backends ('default': none given)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0,
                        help="batches per epoch on both sides (default 0: the whole training set, "
                             "1,875 batches); e.g. 400 with --epochs 2 for a quick comparison")
    parser.add_argument("--repeats", "--rounds", dest="rounds", type=int, default=1, metavar="N",
                        help="run everything this many times, alternating (noisy machines; "
                             "--rounds is the former name)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--tripletlab-flags", default="",
                        help="extra flags for tripletlab train, one string")
    results_file.add_output_argument(parser, "--json")
    parser.add_argument("--child-tutorial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_file = os.path.abspath(args.data_file)
    if args.child_tutorial:
        print("RESULT " + json.dumps(tutorial(data_file, args.epochs, args.steps)))
        return
    record = results_file.Run("training")

    batches = f"{args.steps} batches of 32 per epoch" if args.steps else "batches of 32"
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, "
          f"{args.epochs} epoch(s) of {os.path.basename(data_file)}, {batches}\n")
    print("| round | run | first epoch | later epochs (median) | process wall time | x tutorial |")
    print("|---:|---|---:|---:|---:|---:|")
    results = {}
    for round_index in range(1, args.rounds + 1):
        reference = None
        if args.tfa_python:
            result = run_tutorial(args.tfa_python, data_file, args.epochs, args.timeout,
                                  args.steps)
            results.setdefault("tutorial", []).append(result)
            if "error" in result:
                print(f"| {round_index} | TF Addons tutorial | {result['error']} | | | |",
                      flush=True)
            else:
                first, later = _per_epoch(result)
                reference = later or first
                print(f"| {round_index} | TF Addons tutorial ({result['versions']}) | "
                      f"{first:.1f} s | {'' if later is None else f'{later:.1f} s'} | "
                      f"{result['process_seconds']:.0f} s | 1.00x |", flush=True)
        for backend in args.backends:
            result = run_tripletlab(backend, data_file, args.epochs, args.timeout,
                                    args.tripletlab_flags.split(), args.steps)
            results.setdefault(f"tripletlab-{backend}", []).append(result)
            if "error" in result:
                print(f"| {round_index} | tripletlab, {backend} | {result['error']} | | | |",
                      flush=True)
                continue
            first, later = _per_epoch(result)
            ratio = f"{(later or first) / reference:.2f}x" if reference else ""
            print(f"| {round_index} | tripletlab, {backend} ({result['first_line']}) | "
                  f"{first:.1f} s | {'' if later is None else f'{later:.1f} s'} | "
                  f"{result['process_seconds']:.0f} s | {ratio} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    settings = {"config": os.path.relpath(CONFIG, results_file.ROOT),
                "data_file": os.path.basename(data_file), "epochs": args.epochs,
                "steps_per_epoch": args.steps or None, "batch_size": 32, "rounds": args.rounds,
                "tripletlab_flags": args.tripletlab_flags.split(),
                "tutorial": bool(args.tfa_python)}
    record.write(args.output, settings=settings, cells=_cells(results))


def _cells(results):
    """The results file's cells: one per run (the tutorial, tripletlab on each backend) with
    every epoch of every round in seconds; ``epoch_s`` is the median over rounds of the later
    epochs (after compilation; the first epoch when there is one epoch), ``ratio_to_tutorial``
    divides it by the tutorial's."""
    cells = []
    for name, rounds in results.items():
        cell = {"run": "tutorial" if name == "tutorial" else "tripletlab",
                "backend": "tensorflow" if name == "tutorial" else name[len("tripletlab-"):]}
        good = [r for r in rounds if "error" not in r]
        cell["errors"] = [r["error"] for r in rounds if "error" in r]
        if name == "tutorial" and good:
            cell["versions"] = good[0]["versions"]
        cell["rounds_epoch_s"] = [[round(s, 3) for s in r["epoch_seconds"]] for r in good]
        cell["process_s"] = [round(r["process_seconds"], 1) for r in good]
        later = [s for r in good for s in r["epoch_seconds"][1:]]
        firsts = [r["epoch_seconds"][0] for r in good]
        cell["first_epoch_s"] = round(statistics.median(firsts), 3) if firsts else None
        cell["later_epochs"] = bool(later)
        cell["epoch_s"] = round(statistics.median(later or firsts), 3) if firsts else None
        cells.append(cell)
    reference = next((c["epoch_s"] for c in cells if c["run"] == "tutorial"), None)
    for cell in cells:
        cell["ratio_to_tutorial"] = (round(cell["epoch_s"] / reference, 3)
                                     if reference and cell["epoch_s"] else None)
    return cells


if __name__ == "__main__":
    main()
