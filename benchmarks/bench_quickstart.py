"""Retrieval quality and training time of the quick start, as a user runs it.

For each ``--backends`` entry and each of ``--repeats`` runs, a fresh process runs
``tripletlab train --config configs/quickstart.toml --model-dir TMP`` (plus ``--backend`` unless
it is ``default``: Keras' own setting) exactly as the README's quick start does, then reads the
run's ``metrics.json``: P@1, R-precision and MAP@R of the test set against the training set
(``test_to_train``) and test leave-one-out, the epoch whose model was kept, and the training time
``tripletlab train`` measured (``train_seconds``: fit alone, without data loading, evaluation
of the final model, projections and report). The process's wall time is reported beside it.

Usage:
  python benchmarks/bench_quickstart.py --output benchmarks/results/quickstart.json
  python benchmarks/bench_quickstart.py --backends tensorflow jax torch --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import results_file

CONFIG = os.path.join("configs", "quickstart.toml")
SCORES = ("precision_at_1", "r_precision", "map_at_r")


def run_quickstart(config, backend, timeout):
    """One ``tripletlab train`` of ``config`` in a fresh process; its metrics, or an error."""
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as folder:
        model_dir = os.path.join(folder, "run")
        command = [sys.executable, "-m", "tripletlab.cli.main", "train", "--config", config,
                   "--model-dir", model_dir]
        environment = dict(os.environ)
        if backend == "default":
            environment.pop("KERAS_BACKEND", None)
        else:
            command += ["--backend", backend]
        start = time.perf_counter()
        try:
            completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                                       timeout=timeout, cwd=results_file.ROOT)
        except subprocess.TimeoutExpired:
            return {"error": f"over {timeout:.0f} s"}
        elapsed = time.perf_counter() - start
        path = os.path.join(model_dir, "metrics.json")
        if completed.returncode != 0 or not os.path.exists(path):
            return {"error": f"failed (exit {completed.returncode}): "
                             f"{completed.stderr.strip().splitlines()[-1:]}"}
        with open(path, encoding="utf-8") as stream:
            metrics = json.load(stream)
    return {"test_to_train": {key: metrics["test_to_train"].get(key) for key in SCORES},
            "test_leave_one_out": {key: metrics.get("test_leave_one_out", {}).get(key)
                                   for key in SCORES},
            "backend": metrics.get("backend"), "epochs": metrics.get("epochs"),
            "best_epoch": metrics.get("best_epoch"),
            "train_s": round(metrics["train_seconds"], 2), "process_s": round(elapsed, 2)}


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG,
                        help="the configuration to train (default configs/quickstart.toml)")
    parser.add_argument("--backends", nargs="+", default=["default"],
                        choices=["default", "tensorflow", "jax", "torch"],
                        help="Keras backends ('default': none given, Keras' own setting)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per backend")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("quickstart")
    config = os.path.abspath(args.config)

    print("| backend | P@1 | MAP@R | training time | process wall time |")
    print("|---|---:|---:|---:|---:|")
    cells = []
    for backend in args.backends:
        runs = []
        for _ in range(args.repeats):
            result = run_quickstart(config, backend, args.timeout)
            runs.append(result)
            if "error" in result:
                print(f"| {backend} | {result['error']} | | | |", flush=True)
                continue
            scores = result["test_to_train"]
            print(f"| {result['backend']} | {scores['precision_at_1']:.4f} "
                  f"| {scores['map_at_r']:.4f} | {result['train_s']:.1f} s "
                  f"| {result['process_s']:.1f} s |", flush=True)
        good = [r for r in runs if "error" not in r]
        cell = {"backend": good[0]["backend"] if good else backend, "requested": backend,
                "errors": [r["error"] for r in runs if "error" in r], "runs": good}
        for protocol in ("test_to_train", "test_leave_one_out"):
            cell[protocol] = {key: _median([r[protocol][key] for r in good]) for key in SCORES}
        cell["train_s"] = _median([r["train_s"] for r in good])
        cell["process_s"] = _median([r["process_s"] for r in good])
        cells.append(cell)
    settings = {"config": os.path.relpath(config, results_file.ROOT), "repeats": args.repeats}
    record.write(args.output, settings=settings, cells=cells)


if __name__ == "__main__":
    main()
