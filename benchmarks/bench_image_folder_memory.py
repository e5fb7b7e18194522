"""Peak memory (RSS) of ``tripletlab train --image-folder`` for image folders of N images.

For each N of ``--counts`` the script writes (or reuses) a folder of N generated 256 × 256
JPEG images (:mod:`generated_images`: coloured shapes, 50 classes), then runs a short
``tripletlab train`` on it in a fresh process, as a user would: the header pass over every
file, ``--steps`` P×K batches decoded per batch by worker threads, then the end of training,
which embeds every train and test image (streamed in batches), scores retrieval and writes the
test exports. Images are decoded from 256 × 256 and resized to ``--image-size`` (64 by
default; the model's cost, not the images', grows with it). The peak resident memory of that
process (``ru_maxrss`` of the child) is reported with the size the images would take as one
float32 array, which is what the former whole-folder reader held.

Usage:
  python benchmarks/bench_image_folder_memory.py --counts 5000 50000
  python benchmarks/bench_image_folder_memory.py --counts 5000 --folder /data/my-images
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import results_file
from generated_images import generate_image_folder

_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_of_train(folder: Path, steps: int, image_size: int | None,
                      backend: str) -> tuple[float, float]:
    """``(peak RSS in MiB, seconds)`` of a short ``tripletlab train`` in a fresh process."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [sys.executable, "-m", "tripletlab.cli.main", "train",
                   "--image-folder", str(folder), "--model-dir", str(Path(run_dir) / "run"),
                   "--epochs", "1", "--steps-per-epoch", str(steps), "--eval-every", "0",
                   "--no-plots", "--no-tensorboard", "--export-samples", "500",
                   "--backend", backend, "--verbose", "2"]
        if image_size:
            command += ["--image-size", str(image_size)]
        start = time.perf_counter()
        # a fresh measuring process, so only the training process counts as its child
        out = subprocess.run([sys.executable, "-c", _MEASURE, *command], check=True,
                             capture_output=True, text=True, env=os.environ.copy())
        seconds = time.perf_counter() - start
    code, kib = out.stdout.split()
    if code != "0":
        raise SystemExit(f"tripletlab train failed (exit {code}); run it by hand: "
                         f"{' '.join(command)}")
    return int(kib) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[5000])
    parser.add_argument("--folder", help="use this folder (one count only); default: a "
                                         "generated folder per count under the temp dir")
    parser.add_argument("--steps", type=int, default=20, help="training steps (P×K batches)")
    parser.add_argument("--image-size", type=int, default=64,
                        help="resize to N x N when decoding (default 64: the small CNN's "
                             "activations at 256 x 256 take gigabytes and minutes per epoch "
                             "on a CPU, whatever N is; 0 keeps 256 x 256)")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"))
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    if args.folder and len(args.counts) != 1:
        parser.error("--folder takes one --counts value")
    record = results_file.Run("image-folder-memory")
    cells = []
    print(f"resource.getrusage(RUSAGE_CHILDREN).ru_maxrss (so {resource.RUSAGE_CHILDREN}); "
          f"backend {args.backend}", flush=True)
    for count in args.counts:
        folder = Path(args.folder or Path(tempfile.gettempdir()) / f"tripletlab-images-{count}")
        start = time.perf_counter()
        generate_image_folder(folder, count)
        made = time.perf_counter() - start
        peak, seconds = peak_rss_of_train(folder, args.steps, args.image_size, args.backend)
        side = args.image_size or 256
        whole = count * side * side * 3 * 4 / 2 ** 20
        cell = {"images": count, "image_size": side, "peak_rss_mib": round(peak),
                "whole_array_mib": round(whole),
                "whole_array_256_mib": round(count * 256 * 256 * 3 * 4 / 2 ** 20),
                "train_seconds": round(seconds, 1), "folder_seconds": round(made, 1)}
        print(json.dumps({**cell, "folder": str(folder)}), flush=True)
        cells.append({"backend": args.backend, **cell})
    record.write(args.output, settings={"steps": args.steps, "image_size": args.image_size,
                                     "backend": args.backend,
                                     "folder": "given" if args.folder else "generated"},
              cells=cells)


if __name__ == "__main__":
    main()
