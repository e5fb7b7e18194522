"""Peak memory (RSS) of each stage of ``tripletlab train --image-folder``, for N images.

Runs the library's own ``tripletlab.train.train`` (what ``tripletlab train`` calls) in this
process, with the stages it goes through wrapped to measure memory around them: before a
stage the peak (Linux's ``VmHWM``) is reset (``/proc/self/clear_refs``), after it the stage's
peak and the resident size are read. A line per stage gives, in MiB, ``peak`` (the highest
RSS during the stage), ``rss`` (resident after it) and ``peak+`` (the peak above the RSS the
stage started from). Compare two sizes of folder to see which stage grows with N.

The folder is generated as in :mod:`bench_image_folder_memory` (256 x 256 JPEGs, 50
classes), the run's options are the same (``--steps`` P×K batches, images decoded at
``--image-size``, no plots, 500 exported test samples).

Usage (one N per process, so the stages of one run do not inherit the other's heap):
  python benchmarks/bench_memory_stages.py 5000
  python benchmarks/bench_memory_stages.py 50000 --json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import results_file
from generated_images import generate_image_folder

_RESULTS: list[dict] = []


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(key)).split()[1])


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS


def _measured(name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start_rss = _status_kib("VmRSS")
        _reset_peak()
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            peak, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
            _RESULTS.append({"stage": name, "peak": round(peak / 1024),
                             "rss": round(rss / 1024),
                             "peak+": round((peak - start_rss) / 1024),
                             "seconds": round(time.perf_counter() - started, 1)})
    return wrapper


def _instrument() -> None:
    """Wraps the functions ``train`` calls, where ``train`` looks them up."""
    import tripletlab.evaluation as evaluation
    from tripletlab import experiment
    from tripletlab.train import run

    for name in ("load_data", "build_batches", "fit_in_phases", "save_inference_model",
                 "embed"):
        setattr(run, name, _measured(name, getattr(run, name)))
    evaluation.evaluate_embeddings = _measured("evaluate_embeddings",
                                               evaluation.evaluate_embeddings)
    experiment.save_test_exports = _measured("save_test_exports",
                                             experiment.save_test_exports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("memory-stages")
    folder = generate_image_folder(Path(tempfile.gettempdir()) / f"tripletlab-images-{args.count}",
                                   args.count)

    import keras  # the baseline includes the backend

    from tripletlab.train import resolve_config, train

    _instrument()
    baseline = _status_kib("VmRSS") / 1024
    config = resolve_config({"image_folder": str(folder), "epochs": 1,
                             "steps_per_epoch": args.steps, "eval_every": 0, "plots": False,
                             "tensorboard": False, "export_samples": 500,
                             "image_size": args.image_size})
    with tempfile.TemporaryDirectory() as run_dir:
        train(config, Path(run_dir) / "run", verbose=0)
    whole_peak = _status_kib("VmPeak")  # virtual; the RSS peak is ru_maxrss below
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record.write(args.output,
              settings={"images": args.count, "steps": args.steps, "image_size": args.image_size,
                        "backend": keras.backend.backend(),
                        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX")},
              cells=[{"stage": row["stage"], "peak_mib": row["peak"], "rss_mib": row["rss"],
                      "peak_above_start_mib": row["peak+"], "seconds": row["seconds"]}
                     for row in _RESULTS],
              baseline_rss_mib=round(baseline), final_rss_mib=round(_status_kib("VmRSS") / 1024),
              peak_rss_mib=round(maxrss))
    if args.json:
        print(json.dumps({"images": args.count, "baseline": round(baseline),
                          "stages": _RESULTS, "final_rss": round(_status_kib("VmRSS") / 1024),
                          "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX")}))
        return
    print(f"{args.count:,} images; RSS after imports {baseline:.0f} MiB; "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX')}; "
          f"VmPeak {whole_peak / 1024:.0f} MiB; ru_maxrss (peaks before resets too) "
          f"{maxrss:.0f} MiB", file=sys.stderr)
    print(f"{'stage':<22}{'peak':>7}{'rss':>7}{'peak+':>7}{'s':>7}")
    for row in _RESULTS:
        print(f"{row['stage']:<22}{row['peak']:>7}{row['rss']:>7}{row['peak+']:>7}"
              f"{row['seconds']:>7}")


if __name__ == "__main__":
    main()
