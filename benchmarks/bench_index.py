"""Build time, query throughput, recall@10 and size of a gallery index (``tripletlab.retrieval``).

A synthetic gallery of N items x D dims (float32) clustered like embeddings: ``--clusters``
centres drawn uniformly on the unit sphere, every item a centre plus isotropic Gaussian noise of
expected norm ``--noise``, then L2-normalised; its label is its cluster. ``--queries`` held-out
queries come from the same distribution (another seeded stream). Every (N, kind) cell runs in a
fresh process, which generates the same seeded data, then:

* build: ``Index.build(gallery, labels, distance="L2", settings=IndexSettings(kind=...))``,
  timed whole. For the approximate kinds that includes the recall check the index runs on
  itself (recall@10 of 1000 sampled gallery items against exact search: a second, exact faiss
  index of the same rows); that check is then timed alone (``index.measure_recall()``, the same
  seeded sample) and the build without it is the difference;
* query throughput: queries per second of one ``index.search(queries, k=10)`` over the Q
  queries, median of ``--repeats`` calls, or of fewer once the calls have taken
  ``--search-budget`` seconds in all (at least one call);
* recall@10 against exact search: the share of each query's 10 exact nearest gallery items
  (the flat index's results in the same run) that the index returns, averaged over the queries;
  next to it, the index's own estimate (``index.recall``);
* size: the faiss index file and the whole folder ``index.save`` writes (labels and names too);
* memory: the process's peak RSS, and its growth over the RSS after the imports and the data.

The flat index always runs first at every N: it is the exact truth the others are read against.
faiss uses its default OpenMP threads (all cores) unless ``OMP_NUM_THREADS`` is set.

Usage::

    nice python benchmarks/bench_index.py --sizes 100000 1000000 \
        --output benchmarks/results/index.json
    nice python benchmarks/bench_index.py --sizes 20000 --queries 1000 --kinds hnsw \
        --output "$(mktemp -d)/index.json"   # a quick look; the default is the page's file
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import results_file

KINDS = ("flat", "hnsw", "ivf")
K = 10
GENERATION_CHUNK = 65536
DEFAULT_OUTPUT = os.path.join(results_file.RESULTS_DIR, "index.json")


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb():
    with open("/proc/self/statm", encoding="utf-8") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic_embeddings(count, dimension, clusters, noise, seed, stream):
    """``(embeddings [count, dimension] float32, labels [count] int64)``: items of ``clusters``
    Gaussian clusters on the unit sphere (centres seeded by ``seed`` alone, so the gallery and
    the queries share them; the items by ``(seed, stream)``), L2-normalised."""
    centres = np.random.default_rng([seed, 0]).standard_normal((clusters, dimension))
    centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, clusters, size=count)
    embeddings = np.empty((count, dimension), dtype=np.float32)
    scale = np.float32(noise / np.sqrt(dimension))
    for start in range(0, count, GENERATION_CHUNK):
        stop = min(start + GENERATION_CHUNK, count)
        rows = centres[labels[start:stop]]
        rows += scale * rng.standard_normal((stop - start, dimension), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        embeddings[start:stop] = rows
    return embeddings, labels


def _folder_mb(folder):
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file()) / 2**20


def measure(kind, size, args, truth_file):
    """Runs in the child process: one (N, kind) cell; returns its figures."""
    import faiss

    from tripletlab.retrieval import Index, IndexSettings

    gallery, labels = synthetic_embeddings(size, args.dimension, args.clusters, args.noise,
                                           args.seed, 1)
    queries, _ = synthetic_embeddings(args.queries, args.dimension, args.clusters, args.noise,
                                      args.seed, 2)
    rss_start = _rss_mb()

    start = time.perf_counter()
    index = Index.build(gallery, labels, distance="L2", settings=IndexSettings(kind=kind))
    build_s = time.perf_counter() - start
    recall_check_s = None
    if index.recall is not None:
        start = time.perf_counter()
        again = index.measure_recall()
        recall_check_s = time.perf_counter() - start
        assert again == index.recall, (again, index.recall)

    times, found = [], None
    while len(times) < args.repeats and (not times or sum(times) < args.search_budget):
        start = time.perf_counter()
        found = index.search(queries, K)
        times.append(time.perf_counter() - start)
    if kind == "flat":
        np.save(truth_file, found.items)
        truth = found.items
    else:
        truth = np.load(truth_file)
    hits = sum(len(set(f.tolist()) & set(t.tolist()))
               for f, t in zip(found.items, truth, strict=True))
    recall = hits / truth.size

    folder = tempfile.mkdtemp(prefix=f"index-{kind}-")
    try:
        saved = os.path.join(folder, "index")
        index.save(saved)
        files = os.listdir(saved)
        faiss_file = next(name for name in files if name.endswith(".faiss"))
        index_file_mb = os.path.getsize(os.path.join(saved, faiss_file)) / 2**20
        folder_mb = _folder_mb(saved)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    median = statistics.median(times)
    return {"build_s": round(build_s, 3),
            "recall_check_s": None if recall_check_s is None else round(recall_check_s, 3),
            "build_without_recall_check_s": round(build_s - (recall_check_s or 0.0), 3),
            "search_s": round(median, 4), "repeats_s": [round(t, 4) for t in times],
            "queries_per_s": round(args.queries / median, 1),
            "recall_at_10": round(recall, 5),
            "stored_recall": index.recall,
            "index_settings": index.settings.to_dict(),
            "index_file_mb": round(index_file_mb, 1), "folder_mb": round(folder_mb, 1),
            "rss_start_mb": round(rss_start, 1), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "peak_extra_mb": round(_peak_rss_mb() - rss_start, 1),
            "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads()}


def _child_command(kind, size, args, truth_file):
    return [sys.executable, os.path.abspath(__file__), "--child", kind, str(size), truth_file,
            "--dimension", str(args.dimension), "--queries", str(args.queries),
            "--repeats", str(args.repeats), "--clusters", str(args.clusters),
            "--noise", str(args.noise), "--seed", str(args.seed),
            "--search-budget", str(args.search_budget)]


def _run_child(command, timeout):
    """Runs one cell; returns its result, or ``{"error": why}``."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        last = completed.stderr.strip().splitlines()[-1:]
        return {"error": f"failed (exit {completed.returncode}): {last}"}
    return json.loads(lines[0][len("RESULT "):])


def _row(size, kind, result):
    if "error" in result:
        return f"| {kind} | {size:,} | {result['error']} | | | | | | |"
    check = result["recall_check_s"]
    stored = result["stored_recall"]
    return (f"| {kind} | {size:,} | {result['build_s']:.1f} s "
            f"| {'' if check is None else f'{check:.1f} s'} "
            f"| {result['queries_per_s']:,.0f} | {result['recall_at_10']:.4f} "
            f"| {'' if stored is None else format(stored['recall'], '.4f')} "
            f"| {result['index_file_mb']:,.0f} MB | {result['peak_rss_mb']:,.0f} MB |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000],
                        help="gallery sizes N")
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=10_000,
                        help="held-out queries Q, searched in one call")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="index kinds (flat always runs: it is the exact truth)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed search calls per cell (the median counts)")
    parser.add_argument("--search-budget", type=float, default=60.0,
                        help="seconds of timed search calls after which a cell stops repeating "
                             "(it always makes one: exact search of a large gallery is slow)")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.7,
                        help="expected norm of the Gaussian noise around a unit-norm centre")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a cell may take before it is given up")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "N", "TRUTH"),
                        help=argparse.SUPPRESS)
    results_file.add_output_argument(parser)
    parser.set_defaults(output=DEFAULT_OUTPUT)
    args = parser.parse_args()
    if args.child:
        kind, size, truth_file = args.child
        print("RESULT " + json.dumps(measure(kind, int(size), args, truth_file)), flush=True)
        return

    kinds = ["flat"] + [kind for kind in KINDS if kind in args.kinds and kind != "flat"]
    record = results_file.Run("index")
    load_start = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load_start:.1f} at start, D = "
          f"{args.dimension}, Q = {args.queries:,}, {args.clusters:,} clusters, noise "
          f"{args.noise:g}, k = {K}, median of up to {args.repeats} search calls "
          f"({args.search_budget:g} s)\n")
    print("| kind | N | build | of which recall check | queries/s | recall@10 vs exact "
          "| stored recall@10 | index file | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cells, faiss_info = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as work:
        for size in args.sizes:
            truth_file = os.path.join(work, f"truth-{size}.npy")
            for kind in kinds:
                if kind != "flat" and not os.path.exists(truth_file):
                    result = {"error": "no exact truth (the flat cell failed)"}
                else:
                    result = _run_child(_child_command(kind, size, args, truth_file),
                                        args.timeout)
                print(_row(size, kind, result), flush=True)
                for key in ("faiss", "faiss_threads"):
                    if key in result:
                        faiss_info[key] = result.pop(key)
                cells.append({"kind": kind, "size": size, "dimension": args.dimension,
                              "queries": args.queries, "k": K, **result})
    load_end = os.getloadavg()[0]
    print(f"\nload average {load_end:.1f} at the end")
    settings = {"dimension": args.dimension, "queries": args.queries, "k": K,
                "repeats": args.repeats, "search_budget_s": args.search_budget,
                "clusters": args.clusters, "noise": args.noise,
                "seed": args.seed, "distance": "L2", **faiss_info,
                "load_average": [round(load_start, 2), round(load_end, 2)]}
    record.write(args.output, settings=settings, cells=cells)


if __name__ == "__main__":
    main()
