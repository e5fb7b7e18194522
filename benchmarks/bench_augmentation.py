"""Cost of the training-batch augmentation per batch, on each Keras backend.

For each backend (a fresh subprocess each, ``KERAS_BACKEND`` is fixed per process) the script
times :class:`tripletlab.data.augmentation.Augmentation` on a batch of ``--batch`` float32 RGB
images of ``--size`` × ``--size`` (random pixels in [0, 1]): each transform alone and all of
them together (the README's example configuration), as a training sampler calls it (one call
per batch, a fresh seed per call). The first call, which on JAX compiles the operations for
the shape, is reported apart; then the median of ``--repeats`` calls in milliseconds per batch
and the images per second that gives.

Usage:
  python benchmarks/bench_augmentation.py                       # every backend, 32 × 224²
  python benchmarks/bench_augmentation.py --backends jax --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import results_file

EVERY = {"flip": "horizontal", "rotation": 0.05, "zoom": 0.2, "translation": 0.1,
         "brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02}
CASES = {**{key: {key: value} for key, value in EVERY.items()}, "all together": EVERY}


def measure(batch: int, size: int, repeats: int) -> dict:
    """Times every case on the current backend; returns ``{case: {first_ms, median_ms}}``."""
    import keras
    import numpy as np

    from tripletlab.data.augmentation import build_augmentation

    images = np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32)
    results = {}
    for name, values in CASES.items():
        augment = build_augmentation(values)
        start = time.perf_counter()
        augment(images, seed=(0, 0, 0))
        first = time.perf_counter() - start
        times = []
        for call in range(repeats):
            start = time.perf_counter()
            augment(images, seed=(0, 1, call))
            times.append(time.perf_counter() - start)
        results[name] = {"first_ms": 1000 * first, "median_ms": 1000 * statistics.median(times),
                         "repeats_ms": [1000 * t for t in times]}
    return {"backend": keras.backend.backend(), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.batch, args.size, args.repeats)))
        return
    record = results_file.Run("augmentation")
    print(f"Augmentation of a batch of {args.batch} RGB images {args.size}×{args.size}, "
          f"{os.cpu_count()} CPU cores; median of {args.repeats} calls (first call apart)")
    rows = {}
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--child", "--batch", str(args.batch),
                   "--size", str(args.size), "--repeats", str(args.repeats)]
        output = subprocess.run(command, env=env, check=True, capture_output=True,
                                text=True).stdout
        rows[backend] = json.loads(output.strip().splitlines()[-1])["results"]
    backends = list(rows)
    header = f"{'transform':<14}" + "".join(f"{b + ' ms':>16}{'img/s':>8}{'1st ms':>9}"
                                            for b in backends)
    print(header)
    print("-" * len(header))
    for case in CASES:
        cells = ""
        for backend in backends:
            result = rows[backend][case]
            cells += (f"{result['median_ms']:>16.1f}"
                      f"{args.batch / (result['median_ms'] / 1000):>8.0f}"
                      f"{result['first_ms']:>9.0f}")
        print(f"{case:<14}{cells}")
    ms = results_file.milliseconds
    record.write(args.output,
              settings={"batch": args.batch, "size": args.size, "repeats": args.repeats,
                        "cases": CASES},
              cells=[{"backend": backend, "batch": args.batch, "size": args.size,
                      "transform": case, "first_ms": ms(result["first_ms"] / 1000),
                      "median_ms": ms(result["median_ms"] / 1000),
                      "repeats_ms": [ms(t / 1000) for t in result["repeats_ms"]],
                      "images_per_second": round(args.batch / (result["median_ms"] / 1000), 1)}
                     for backend in backends for case, result in rows[backend].items()])


if __name__ == "__main__":
    main()
