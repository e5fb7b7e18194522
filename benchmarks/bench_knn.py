"""Time and peak memory of exact kNN search and retrieval evaluation (faiss, CPU).

10,000 random queries against 10k, 100k and 1M random references (float32, 128 dims by
default), test -> train protocol, labels drawn uniformly from ``--classes`` classes (so MAP@R
needs ``k = R ~ references / classes`` neighbours). Each measurement runs in a fresh process, so
its peak RSS (``ru_maxrss``) is its own; "RSS at start" is the same process after the imports and
before any data exists. The baseline is a plain NumPy brute force (matmul for the squared
distances, ``argpartition`` + sort for the top k) on the 10k case; the last column divides each
time by it.

Usage::

    nice python benchmarks/bench_knn.py                     # the full table (a few minutes)
    nice python benchmarks/bench_knn.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import results_file

DIM = 128
QUERIES = 10_000
CHUNK_ROWS = 100_000


def random_matrix(rows: int, dim: int, seed: int) -> np.ndarray:
    """Standard normal float32 rows, drawn a chunk at a time (no float64 temporary)."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, rows)
        out[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    return out


def numpy_brute_force(queries, references, k, chunk=1024):
    """The baseline: squared L2 by matmul, then the k smallest per row, sorted."""
    reference_norms = np.einsum("ij,ij->i", references, references)
    indices = np.empty((len(queries), k), dtype=np.int64)
    distances = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        squared = (np.einsum("ij,ij->i", block, block)[:, None] + reference_norms[None, :]
                   - 2.0 * block @ references.T)
        top = np.argpartition(squared, k - 1, axis=1)[:, :k]
        top_values = np.take_along_axis(squared, top, axis=1)
        order = np.argsort(top_values, axis=1)
        indices[start:start + chunk] = np.take_along_axis(top, order, axis=1)
        distances[start:start + chunk] = np.sqrt(np.maximum(
            np.take_along_axis(top_values, order, axis=1), 0.0))
    return indices, distances


def peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_child(task: str, references: int, classes: int, k: int) -> dict:
    """One measurement, in this (fresh) process."""
    from tripletlab.evaluation import evaluate_embeddings, nearest_neighbors

    start_rss = peak_rss_gib()
    queries = random_matrix(QUERIES, DIM, seed=1)
    reference_matrix = random_matrix(references, DIM, seed=2)
    rng = np.random.default_rng(3)
    query_labels = rng.integers(0, classes, QUERIES)
    reference_labels = rng.integers(0, classes, references)
    used_k = k
    began = time.perf_counter()
    if task == "numpy":
        numpy_brute_force(queries, reference_matrix, k)
    elif task == "nearest_neighbors":
        nearest_neighbors(queries, reference_matrix, k)
    else:
        metrics = evaluate_embeddings(queries, query_labels, reference_matrix, reference_labels,
                                      clustering=task == "evaluate+clustering")
        used_k = int(np.bincount(reference_labels).max())
        assert 0.0 <= metrics["map_at_r"] <= 1.0
    seconds = time.perf_counter() - began
    return {"task": task, "references": references, "k": used_k, "seconds": seconds,
            "start_rss_gib": start_rss, "peak_rss_gib": peak_rss_gib()}


def measure(task: str, references: int, classes: int, k: int) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", task, str(references),
               str(classes), str(k)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="reference counts (the first one also gets the NumPy baseline)")
    parser.add_argument("--classes", type=int, default=100, help="number of classes")
    parser.add_argument("--k", type=int, default=8, help="k of the nearest_neighbors rows")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    if args.child:
        task, references, classes, k = args.child
        print(json.dumps(run_child(task, int(references), int(classes), int(k))))
        return
    record = results_file.Run("knn")

    rows = [measure("numpy", args.sizes[0], args.classes, args.k)]
    baseline = rows[0]["seconds"]
    for size in args.sizes:
        rows.append(measure("nearest_neighbors", size, args.classes, args.k))
        rows.append(measure("evaluate_embeddings", size, args.classes, args.k))
    rows.append(measure("evaluate+clustering", args.sizes[0], args.classes, args.k))

    import faiss

    print(f"{QUERIES} queries x {DIM} dims, {args.classes} classes, L2, test->train; "
          f"{os.cpu_count()} CPUs, {platform.machine()}, faiss {faiss.__version__}, "
          f"numpy {np.__version__}\n")
    print("| function | references | k | time (s) | RSS at start (GiB) | peak RSS (GiB) "
          "| time / NumPy 10k |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    names = {"numpy": "NumPy brute force (baseline)",
             "nearest_neighbors": "`nearest_neighbors`",
             "evaluate_embeddings": "`evaluate_embeddings` (no clustering)",
             "evaluate+clustering": "`evaluate_embeddings` (+ NMI/AMI)"}
    for row in rows:
        print(f"| {names[row['task']]} | {row['references']:,} | {row['k']:,} "
              f"| {row['seconds']:.2f} | {row['start_rss_gib']:.2f} | {row['peak_rss_gib']:.2f} "
              f"| {row['seconds'] / baseline:.2f} |")
    record.write(args.output,
              settings={"queries": QUERIES, "dim": DIM, "classes": args.classes, "k": args.k,
                        "faiss": faiss.__version__, "floor": "numpy"},
              cells=[{**row, "seconds": round(row["seconds"], 4),
                      "start_rss_gib": round(row["start_rss_gib"], 3),
                      "peak_rss_gib": round(row["peak_rss_gib"], 3),
                      "ratio_to_floor": round(row["seconds"] / baseline, 3)} for row in rows])


if __name__ == "__main__":
    main()
