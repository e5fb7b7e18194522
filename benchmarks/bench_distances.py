"""Time of the pairwise distance matrix, forward + backward, against a baseline implementation.

For each batch size B (D = 128 by default) the script compiles ``value_and_grad`` of
``sum(pairwise_distances(x, distance) * w)`` as training does (``jax.jit``,
``tf.function(jit_compile=True)``; PyTorch runs eagerly, as Keras' ``fit`` does by default) for
the installed ``tripletlab.distances`` and, when ``--baseline`` names another ``distances.py``
(e.g. the file from an older checkout), for that one too. Calls of the two alternate, so load on
a shared machine affects both alike; the median of ``--repeats`` calls is reported in
milliseconds with the ratio.

Usage (one backend per run):
  git show main:src/tripletlab/distances.py > /tmp/distances_before.py
  KERAS_BACKEND=jax python benchmarks/bench_distances.py --baseline /tmp/distances_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import results_file
from compiled_step import value_and_gradient_step


def load_baseline(path):
    """Imports ``path`` (a ``distances.py``) as a module of its own."""
    spec = importlib.util.spec_from_file_location("baseline_distances", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_step(pairwise_distances, distance, weights):
    """``x -> (value, gradient)`` of ``sum(d(x) * weights)``, compiled for the backend."""
    import keras

    def objective(x):
        return keras.ops.sum(pairwise_distances(x, distance) * weights)

    return value_and_gradient_step(objective)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--distance", default="L2")
    parser.add_argument("--baseline", help="path of another distances.py to compare with")
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("distances")

    import keras
    import numpy as np

    from tripletlab import distances

    implementations = {"current": distances.pairwise_distances}
    if args.baseline:
        implementations = {"baseline": load_baseline(args.baseline).pairwise_distances,
                           **implementations}
    cells = []
    for batch in args.sizes:
        rng = np.random.default_rng(0)
        x = keras.ops.convert_to_tensor(rng.normal(size=(batch, args.dim)).astype("float32"))
        weights = keras.ops.convert_to_tensor(rng.random((batch, batch), dtype=np.float32))
        steps = {name: compiled_step(function, args.distance, weights)
                 for name, function in implementations.items()}
        for run in steps.values():
            run(x)  # compile and warm up
        times = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, run in steps.items():
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
        result = {"backend": keras.backend.backend(), "distance": args.distance,
                  "batch": batch, "dim": args.dim, "repeats": args.repeats}
        for name, values in times.items():
            result[f"{name}_ms"] = round(1000 * statistics.median(values), 2)
        if "baseline" in times:
            result["ratio"] = round(result["current_ms"] / result["baseline_ms"], 3)
        print(json.dumps(result), flush=True)
        cells.append({**result, **{f"{name}_repeats_ms": [results_file.milliseconds(t)
                                                           for t in values]
                                   for name, values in times.items()}})
    record.write(args.output, settings={"dim": args.dim, "repeats": args.repeats,
                                     "distance": args.distance,
                                     "baseline": bool(args.baseline)}, cells=cells)


if __name__ == "__main__":
    main()
