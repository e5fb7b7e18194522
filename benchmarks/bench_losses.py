"""Time and peak memory of each mining loss (value + gradient) against the distance matrix.

For every backend, batch size B (P x K batches, K = 4, D = 128) and loss, a fresh subprocess
builds the inputs, compiles ``value_and_grad(loss)`` the way ``fit`` runs it (``jax.jit``,
``tf.function(jit_compile=True)``, or without XLA with ``--tensorflow-jit false`` as ``fit`` runs
on a TensorFlow without a GPU; PyTorch runs eagerly), runs it ``--warmup`` times (default
once: compilation) to warm up, then times
``--repeats`` calls and reports their median. Peak extra memory is the growth of the process's
peak RSS over what it held after building the inputs (CPU). The baseline, measured the same way
in the same run, is the pairwise L2 distance matrix forward + backward (``sum(d * w)``), which
every loss needs anyway: the ratio column says what the mining costs on top of it.

With ``--peer-python pml=PATH tfa=PATH`` the same run also times the peers (see
``peer_losses.py``) at every size, each cell in a fresh subprocess of the peer's own interpreter,
and prints them beside the matching tripletlab cell of this run: pytorch-metric-learning's
semi-hard miner + ``TripletMarginLoss`` and its all-triplets ``TripletMarginLoss`` against
tripletlab on PyTorch, TF Addons' ``TripletHardLoss`` / ``TripletSemiHardLoss``
(``tf.function``) against tripletlab on TensorFlow. The loss values must agree (except PML's
semi-hard, which averages over every semi-hard triplet rather than one per positive).

With ``--retain-freed-memory`` tripletlab's cells run the way ``tripletlab train`` runs by
default: they call :func:`tripletlab.allocator.retain_freed_memory` before importing their
backend. With ``--peers-retain-freed-memory`` the peers' processes get the same glibc settings
from the environment (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``). Without them,
glibc's defaults (how the peers run when installed).

``semi-hard`` and ``batch-all`` are the losses as a user gets them (no ``max_positives``: the
slot path when no anchor has more than 3 positives, else the sort path); ``semi-hard-slots`` and
``batch-all-slots`` pass ``max_positives=K - 1``, as the CLI does with its P x K sampler.

``--batches`` picks the label structures: ``pk`` (P x K batches with K = 4) and ``N-classes``
(labels drawn uniformly from N classes, about B / N positives per anchor: the sort path). The
``-slots`` losses run on P x K batches only; the peers too.

With ``--benchmark large-batch-memory`` the same cells feed the page's memory table instead
(e.g. ``--sizes 8192 --repeats 1``: peak memory above the start for every loss and path).

Usage:
  python benchmarks/bench_losses.py --backends tensorflow jax torch --sizes 1024 4096 \
      --batches pk 10-classes
  python benchmarks/bench_losses.py --backends tensorflow torch --sizes 1024 4096 \
      --losses distance-matrix semi-hard-slots hard batch-all-slots \
      --peer-python pml=../peers/pml/bin/python tfa=../peers/tfa/bin/python --timeout 900
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import results_file
from compiled_step import value_and_gradient_step
from peer_losses import PEER_LOSSES

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_losses.py")
# peer loss -> (backend, tripletlab loss) it is compared with.
# (The losses as a user writes them, with no max_positives.)
PEER_COUNTERPARTS = {"pml-semihard": ("torch", "semi-hard"),
                     "pml-all": ("torch", "batch-all"),
                     "tfa-hard": ("tensorflow", "hard"),
                     "tfa-semihard": ("tensorflow", "semi-hard")}
PEER_LIBRARIES = {"pml": "pytorch-metric-learning", "tfa": "TF Addons"}
# PML's semi-hard miner keeps every semi-hard triplet (not one negative per positive): another loss.
DIFFERENT_LOSS = {"pml-semihard"}

LOSSES = ("distance-matrix", "semi-hard", "semi-hard-slots", "hard", "batch-all",
          "batch-all-slots")
BACKENDS = ("tensorflow", "jax", "torch")
SAMPLES_PER_CLASS = 4


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def loss_function(loss_name, labels, weights):
    """The scalar loss ``embeddings -> value`` measured as ``loss_name`` (``weights``: the
    ``[B, B]`` weights that make the distance matrix's sum a scalar with a full gradient)."""
    import keras

    import tripletlab as tl

    max_positives = SAMPLES_PER_CLASS - 1 if loss_name.endswith("-slots") else None

    def loss(embeddings):
        if loss_name == "distance-matrix":
            return keras.ops.sum(tl.distances.pairwise_distances(embeddings, "L2") * weights)
        if loss_name.startswith("semi-hard"):
            return tl.losses.semi_hard_triplet_loss(labels, embeddings,
                                                    max_positives=max_positives)
        if loss_name == "hard":
            return tl.losses.hard_triplet_loss(labels, embeddings)
        return tl.losses.batch_all_triplet_loss(labels, embeddings,
                                                max_positives=max_positives)[0]

    return loss


def batch_labels(batches, batch, rng):
    """``[batch]`` int32 labels of the structure ``batches`` (``"pk"`` or ``"N-classes"``)."""
    import numpy as np

    if batches == "pk":
        return rng.permutation(np.repeat(np.arange(batch // SAMPLES_PER_CLASS),
                                         SAMPLES_PER_CLASS)).astype("int32")
    return rng.integers(0, class_count(batches), size=batch).astype("int32")


def class_count(batches):
    """``N`` of ``"N-classes"``; ``None`` for ``"pk"``."""
    return None if batches == "pk" else int(batches.split("-")[0])


def check_batches(text):
    """argparse type: ``pk`` or ``N-classes`` with ``N >= 2``."""
    count = text.split("-")[0]
    if text == "pk" or (text == f"{count}-classes" and count.isdigit() and int(count) >= 2):
        return text
    raise argparse.ArgumentTypeError(
        f"Expected 'pk' or 'N-classes' with N >= 2 (e.g. 10-classes). Received: {text!r}")


def measure(loss_name, batch, dim, repeats, warmup=1, tensorflow_jit=True, batches="pk"):
    """Runs in the child process: returns seconds per call and extra peak memory (MB)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    labels_np = batch_labels(batches, batch, rng)
    x_np = rng.normal(size=(batch, dim)).astype("float32")
    weights_np = rng.random((batch, batch), dtype=np.float32) if loss_name == "distance-matrix" \
        else None
    labels = keras.ops.convert_to_tensor(labels_np)
    x = keras.ops.convert_to_tensor(x_np)
    weights = keras.ops.convert_to_tensor(weights_np) if weights_np is not None else None

    step = value_and_gradient_step(loss_function(loss_name, labels, weights), tensorflow_jit)

    def run():
        return step(x)[0]

    before = _peak_rss_mb()
    for _ in range(warmup):
        value = run()  # warm-up / compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times,
            "extra_mb": _peak_rss_mb() - before,
            "value": float(keras.ops.convert_to_numpy(value))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS,
                        default=[os.environ.get("KERAS_BACKEND", "jax")])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls before the timed ones, in every cell (the first "
                             "compiles; with --retain-freed-memory PyTorch's heap takes about "
                             "ten calls at B = 4096 to reach the size it then reuses)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--batches", nargs="+", default=["pk"], type=check_batches,
                        help="label structures: pk (P x K, K = 4) and/or N-classes "
                             "(uniform labels of N classes)")
    parser.add_argument("--child", nargs=3, metavar=("LOSS", "B", "BATCHES"),
                        help=argparse.SUPPRESS)
    results_file.add_output_argument(parser, "--json")
    parser.add_argument("--benchmark", choices=("losses", "large-batch-memory"),
                        default="losses",
                        help="the table the results file feeds in docs/benchmarks.md: loss speed "
                             "(default) or peak memory at a large batch")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a cell may take (compilation included) before it is skipped")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the PyTorch cells, tripletlab's and PML's alike "
                             "(on a loaded 2-core machine PyTorch's 2-thread pool can run 50x "
                             "slower than 1 thread)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="keep freed memory in tripletlab's processes "
                             "(tripletlab.allocator), as `tripletlab train` does")
    parser.add_argument("--tensorflow-jit", choices=("true", "false"), default="true",
                        help="TensorFlow cells in tf.function with XLA (true) "
                             "or without (false: how Keras' fit runs on a TensorFlow "
                             "without a GPU, where jit_compile='auto' means no XLA)")
    parser.add_argument("--peers-retain-freed-memory", action="store_true",
                        help="give the peers' processes the same glibc settings")
    parser.add_argument("--peer-memory-gb", type=float, default=12.0,
                        help="data-segment cap for each peer cell (PML and TF Addons semi-hard "
                             "build B x B x B tensors)")
    parser.add_argument("--peer-python", nargs="+", default=[], metavar="PEER=PYTHON",
                        help="time the peers too: pml=PATH and/or tfa=PATH, each a Python "
                             "interpreter whose environment holds that peer")
    args = parser.parse_args()
    peers = _parse_peers(parser, args.peer_python)
    if args.child:
        if args.retain_freed_memory:
            from tripletlab.allocator import retain_freed_memory

            retain_freed_memory()
        result = measure(args.child[0], int(args.child[1]), args.dim, args.repeats, args.warmup,
                         tensorflow_jit=args.tensorflow_jit == "true", batches=args.child[2])
        print("RESULT " + json.dumps(result))
        return

    record = results_file.Run(args.benchmark)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start, D = {args.dim}, P x K batches with "
          f"K = {SAMPLES_PER_CLASS}, median of {args.repeats} timed calls after {args.warmup} "
          "untimed, "
          f"TensorFlow XLA: {args.tensorflow_jit}, "
          f"PyTorch threads: {args.torch_threads or 'default'}, freed memory: tripletlab "
          f"{'retained' if args.retain_freed_memory else 'glibc defaults'}, peers "
          f"{'retained' if args.peers_retain_freed_memory else 'glibc defaults'}\n")
    print("| B | batches | backend | loss | value + gradient | x distance matrix "
          "| peak extra memory |")
    print("|---:|---|---|---|---:|---:|---:|")
    results, peer_versions = [], {}
    for backend in args.backends:
        for batch in args.sizes:
            for batches in args.batches:
                results.extend(_run_cells(backend, batch, batches, args))
    if peers:
        results.extend(_run_peers(peers, results, args, peer_versions))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    record.write(args.output, settings=_settings(args, peer_versions),
              cells=_cells(results, args.dim))


def _run_cells(backend, batch, batches, args):
    """Runs every loss of one (backend, B, label structure), each in its own subprocess; prints
    and returns the rows."""
    environment = {**os.environ, "KERAS_BACKEND": backend}
    if backend == "torch" and args.torch_threads:
        environment["OMP_NUM_THREADS"] = str(args.torch_threads)
    baseline, results = None, []
    losses = [n for n in args.losses if n != "distance-matrix"
              and (batches == "pk" or not n.endswith("-slots"))]
    for loss_name in ["distance-matrix", *losses]:
        command = [sys.executable, __file__, "--child", loss_name, str(batch), batches,
                   "--dim", str(args.dim), "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup), "--tensorflow-jit", args.tensorflow_jit]
        if args.retain_freed_memory:
            command.append("--retain-freed-memory")
        result = _run_child(command, environment, args.timeout)
        row = {"backend": backend, "batch": batch, "batches": batches, "loss": loss_name}
        if "error" in result:
            print(f"| {batch} | {batches} | {backend} | {loss_name} | {result['error']} | | |",
                  flush=True)
            results.append({**row, **result})
            continue
        if loss_name == "distance-matrix":
            baseline = result["seconds"]
        ratio = f"{result['seconds'] / baseline:.1f}x" if baseline else "n/a"
        print(f"| {batch} | {batches} | {backend} | {loss_name} "
              f"| {result['seconds'] * 1000:.1f} ms | {ratio} | {result['extra_mb']:.0f} MB |",
              flush=True)
        results.append({**row, **result})
    return results


def _run_child(command, environment, timeout, memory_gb=None):
    """Runs one timing cell; returns its result, or ``{"error": why}``.

    ``memory_gb`` caps the child's data segment (``RLIMIT_DATA``), so that a peer building
    B x B x B tensors fails with an allocation error instead of exhausting a shared machine.
    """
    def limit():
        size = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))

    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                                   timeout=timeout, preexec_fn=limit if memory_gb else None)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        error = completed.stderr.strip().splitlines()[-1:]
        if memory_gb and any(word in completed.stderr for word in
                             ("MemoryError", "OOM", "bad_alloc", "alloc", "DefaultCPUAllocator")):
            return {"error": f"out of memory under the {memory_gb:g} GB cap: {error}"}
        return {"error": f"failed (exit {completed.returncode}): {error}"}
    return json.loads(lines[0][len("RESULT "):])


def _parse_peers(parser, specs):
    """``["pml=PATH", ...]`` -> ``{"pml": PATH}``, checked."""
    peers = {}
    for spec in specs:
        name, _, python = spec.partition("=")
        if name not in PEER_LOSSES or not python:
            parser.error(f"Expected --peer-python PEER=PYTHON with PEER one of "
                         f"{sorted(PEER_LOSSES)}. Received: {spec!r}")
        peers[name] = python
    return peers


def _run_peers(peers, results, args, versions):
    """Times every peer loss at every size; prints them beside tripletlab's matching cell."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "KERAS_BACKEND")}
    if args.peers_retain_freed_memory:
        from tripletlab.allocator import GLIBC_ENVIRONMENT

        environment.update(GLIBC_ENVIRONMENT)
    for name, python in peers.items():
        version = _run_child([python, PEER_SCRIPT, "versions", "--peer", name], environment, 300)
        versions[name] = version.get("versions") or version.get("error")
        print(f"\n{name}: {python} ({version.get('versions') or version.get('error')})")
    print("\n| B | peer loss | value + gradient | peak extra memory | tripletlab (backend, loss) "
          "| tripletlab | peer / tripletlab | same value |")
    print("|---:|---|---:|---:|---|---:|---:|---|")
    ours = {(r["backend"], r["batch"], r["loss"]): r for r in results
            if "seconds" in r and r["batches"] == "pk"}
    peer_results = []
    for batch in args.sizes:
        for name, python in peers.items():
            for peer_loss in PEER_LOSSES[name]:
                command = [python, PEER_SCRIPT, peer_loss, str(batch), "--dim", str(args.dim),
                           "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
                peer_environment = dict(environment)
                if name == "pml" and args.torch_threads:
                    peer_environment["OMP_NUM_THREADS"] = str(args.torch_threads)
                result = _run_child(command, peer_environment, args.timeout, args.peer_memory_gb)
                backend, loss_name = PEER_COUNTERPARTS[peer_loss]
                peer_results.append({"backend": f"peer:{name}", "batch": batch,
                                     "batches": "pk", "loss": peer_loss, **result})
                counterpart = ours.get((backend, batch, loss_name))
                ours_cell = (f"{counterpart['seconds'] * 1000:.1f} ms" if counterpart
                             else "not measured")
                if "error" in result:
                    print(f"| {batch} | {peer_loss} | {result['error']} | | {backend}, {loss_name} "
                          f"| {ours_cell} | | |", flush=True)
                    continue
                ratio = same = ""
                if counterpart and peer_loss in DIFFERENT_LOSS:
                    ratio = f"{result['seconds'] / counterpart['seconds']:.1f}x"
                    same = "different loss"
                elif counterpart:
                    ratio = f"{result['seconds'] / counterpart['seconds']:.1f}x"
                    scale = max(abs(counterpart["value"]), 1e-6)
                    same = "yes" if abs(result["value"] - counterpart["value"]) <= 1e-4 * scale \
                        else f"no ({result['value']:.6g} vs {counterpart['value']:.6g})"
                print(f"| {batch} | {peer_loss} | {result['seconds'] * 1000:.1f} ms "
                      f"| {result['extra_mb']:.0f} MB | {backend}, {loss_name} | {ours_cell} "
                      f"| {ratio} | {same} |", flush=True)
    return peer_results


def _settings(args, peer_versions):
    """The run's settings, for the results file."""
    return {"dim": args.dim, "samples_per_class": SAMPLES_PER_CLASS, "repeats": args.repeats,
            "warmup": args.warmup, "tensorflow_jit": args.tensorflow_jit == "true",
            "torch_threads": args.torch_threads, "retain_freed_memory": args.retain_freed_memory,
            "peers_retain_freed_memory": args.peers_retain_freed_memory,
            "floor": "distance-matrix", "peers": peer_versions}


def _cells(results, dim):
    """The results file's cells: one per (backend, B, loss) and per peer cell, with the median
    and every timed call in milliseconds, the peak extra memory, and the ratio to the floor (the
    distance matrix on the same backend, same B, same run); a peer's cell also has its ratio to
    the tripletlab loss it is compared with."""
    floors = {(r["backend"], r["batch"], r["batches"]): r["seconds"] for r in results
              if r["loss"] == "distance-matrix" and "seconds" in r}
    ours = {(r["backend"], r["batch"], r["loss"]): r for r in results
            if "seconds" in r and r["batches"] == "pk"}
    cells = []
    for result in results:
        peer = result["backend"].startswith("peer:")
        if peer:
            backend, counterpart = PEER_COUNTERPARTS[result["loss"]]
            cell = {"backend": backend, "library": PEER_LIBRARIES[result["backend"][5:]],
                    "batch": result["batch"], "batches": "pk", "dim": dim,
                    "loss": result["loss"], "counterpart": counterpart}
        else:
            backend = result["backend"]
            cell = {"backend": backend, "library": "tripletlab", "batch": result["batch"],
                    "batches": result["batches"], "dim": dim, "loss": result["loss"],
                    "max_positives": SAMPLES_PER_CLASS - 1 if result["loss"].endswith("-slots")
                    else None}
        if "error" in result:
            cells.append({**cell, "error": result["error"]})
            continue
        floor = floors.get((backend, result["batch"], result["batches"]))
        cell.update({"median_ms": results_file.milliseconds(result["seconds"]),
                     "repeats_ms": [results_file.milliseconds(t) for t in result["times"]],
                     "peak_extra_mb": round(result["extra_mb"], 1),
                     "ratio_to_floor": round(result["seconds"] / floor, 3) if floor else None,
                     "value": result["value"]})
        if peer:
            mine = ours.get((backend, result["batch"], cell["counterpart"]))
            cell["ratio_to_counterpart"] = (round(result["seconds"] / mine["seconds"], 3)
                                            if mine else None)
            if result["loss"] in DIFFERENT_LOSS or not mine:
                cell["same_value"] = None
            else:
                scale = max(abs(mine["value"]), 1e-6)
                cell["same_value"] = abs(result["value"] - mine["value"]) <= 1e-4 * scale
        cells.append(cell)
    return cells


if __name__ == "__main__":
    main()
