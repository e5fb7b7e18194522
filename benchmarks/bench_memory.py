"""What a cross-batch memory buys at a small batch, at equal training time.

For each data set and each memory size (0: no memory), ``tripletlab train`` runs in a fresh
process with P×K batches of 8 classes × 4 samples (B = 32), the semi-hard loss and the small CNN,
for the same training time: two calibration runs (``n`` and ``2 n`` steps, ``n`` =
``--calibration-steps``; their difference leaves compiling out) measure each setting's seconds
per step, and the measured run gets as many steps as fit ``--budget`` seconds, in ``--epochs``
epochs. The held-out evaluation runs once, after the last epoch, so the scores
are those of the final model: P@1 and MAP@R of the test set against the training set from its
``metrics.json``, with the training time ``tripletlab train`` measured (``train_seconds``).

Data sets: ``mnist`` (the full 70,000 images, from ``--mnist-file``, an ``.npz`` in Keras'
layout) and ``digits`` (scikit-learn's 1,797 8×8 digits, bundled with scikit-learn).

Usage::

    python benchmarks/bench_memory.py --mnist-file mnist.npz \
        --output benchmarks/results/memory.json
    python benchmarks/bench_memory.py --datasets digits --budget 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import results_file

SCORES = ("precision_at_1", "map_at_r")


def train_command(dataset, mnist_file, memory_size, warmup, steps, epochs, model_dir, seed):
    """The ``tripletlab train`` command of one run."""
    data = (["--data-file", mnist_file] if dataset == "mnist" else ["--dataset", dataset])
    memory = (["--memory-size", str(memory_size), "--memory-warmup", str(warmup)]
              if memory_size else [])
    return [sys.executable, "-m", "tripletlab.cli.main", "train", "--model-dir", model_dir,
            *data, "--loss", "semi-hard", "--classes-per-batch", "8", "--samples-per-class", "4",
            "--epochs", str(epochs), "--steps-per-epoch", str(steps),
            "--eval-every", str(epochs), "--seed", str(seed), *memory, "--no-plots",
            "--no-tensorboard", "--verbose", "0"]


def run(command, timeout):
    """Runs one ``tripletlab train``; its ``metrics.json`` and wall time, or an error."""
    model_dir = command[command.index("--model-dir") + 1]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                               cwd=results_file.ROOT)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:] or ["failed"]}
    with open(os.path.join(model_dir, "metrics.json")) as stream:
        metrics = json.load(stream)
    return {"metrics": metrics, "process_s": elapsed}


def seconds_per_step(dataset, memory_size, args, folder):
    """The training seconds of one more step (memory in use from the first step): the
    difference of two runs of ``n`` and ``2 n`` steps, so that compiling does not count."""
    times = []
    for steps in (args.calibration_steps, 2 * args.calibration_steps):
        model_dir = os.path.join(folder, f"{dataset}-{memory_size}-calibration-{steps}")
        result = run(train_command(dataset, args.mnist_file, memory_size, 0, steps, 1,
                                   model_dir, args.seed), args.timeout)
        if "error" in result:
            return result
        times.append(result["metrics"]["train_seconds"])
    return {"seconds": (times[1] - times[0]) / args.calibration_steps}


def measured_cell(dataset, memory_size, args, folder):
    """Calibrates the seconds per step of one setting, then trains for the budget."""
    calibration = seconds_per_step(dataset, memory_size, args, folder)
    if "error" in calibration:
        return {"dataset": dataset, "memory_size": memory_size, "error": calibration["error"]}
    per_step = calibration["seconds"]
    steps = max(1, round(args.budget / per_step / args.epochs))
    print(f"{dataset}, memory {memory_size}: {per_step * 1000:.1f} ms a step, "
          f"{args.epochs} x {steps} steps", flush=True)
    result = run(train_command(dataset, args.mnist_file, memory_size, args.warmup, steps,
                               args.epochs, os.path.join(folder, f"{dataset}-{memory_size}"),
                               args.seed), args.timeout)
    cell = {"dataset": dataset, "memory_size": memory_size,
            "warmup_steps": args.warmup if memory_size else 0,
            "calibration_ms_per_step": per_step * 1000, "steps": steps * args.epochs}
    if "error" in result:
        return {**cell, "error": result["error"]}
    metrics = result["metrics"]
    scores = metrics["test_to_train"]
    print(f"  P@1 {scores['precision_at_1']:.4f}, MAP@R {scores['map_at_r']:.4f}, "
          f"{metrics['train_seconds']:.0f} s", flush=True)
    return {**cell, "train_s": metrics["train_seconds"], "process_s": result["process_s"],
            "backend": metrics["backend"],
            "test_to_train": {name: scores[name] for name in SCORES}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "digits"],
                        choices=("mnist", "digits"))
    parser.add_argument("--mnist-file", help="mnist.npz in Keras' layout (for mnist)")
    parser.add_argument("--memory-sizes", nargs="+", type=int, default=[0, 4096])
    parser.add_argument("--warmup", type=int, default=300, help="memory warm-up steps")
    parser.add_argument("--budget", type=float, default=240.0,
                        help="training seconds per run (mnist; digits gets a quarter)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--calibration-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    results_file.add_output_argument(parser)
    args = parser.parse_args(argv)
    if "mnist" in args.datasets and not args.mnist_file:
        parser.error("--mnist-file is required for the mnist data set")
    record = results_file.Run("memory")
    cells = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        for dataset in args.datasets:
            budget = args.budget if dataset == "mnist" else args.budget / 4
            for memory_size in args.memory_sizes:
                cells.append(measured_cell(dataset, memory_size,
                                           argparse.Namespace(**{**vars(args), "budget": budget}),
                                           folder))
    record.write(args.output, settings={
        "loss": "semi-hard", "batch": "8 classes x 4 samples (32)", "model": "small-cnn",
        "budget_s": args.budget, "epochs": args.epochs, "warmup_steps": args.warmup,
        "calibration_steps": args.calibration_steps, "seed": args.seed}, cells=cells)


if __name__ == "__main__":
    main()
