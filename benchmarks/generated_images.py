"""Writes an image folder for the benchmarks: coloured shapes on a noisy background, per class.

One sub-folder per class (``class000`` ...), ``count`` images in all, ``size`` × ``size``
pixels, JPEG quality 75 (or PNG). Each class has its own shape colour; position, size and
background vary per image. Written by ``processes`` processes; an existing folder with the
same recipe (``.recipe.json``) is reused.

Usage:
  python benchmarks/generated_images.py /tmp/images-5000 --count 5000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path


def _write_chunk(job: tuple[str, int, int, int, int, str]) -> int:
    import numpy as np
    from PIL import Image, ImageDraw

    folder, start, stop, size, classes, extension = job
    written = 0
    for index in range(start, stop):
        label = index % classes
        rng = np.random.default_rng([label, index])
        hue = np.random.default_rng(label).integers(40, 256, 3)
        background = rng.integers(0, 60, 3, dtype=np.uint8)
        noise = rng.integers(0, 24, (size // 8, size // 8, 3), dtype=np.uint8)
        base = Image.fromarray(noise + background).resize((size, size), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(base)
        radius = int(rng.integers(size // 8, size // 3))
        cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
        box = [cx - radius, cy - radius, cx + radius, cy + radius]
        if label % 2:
            draw.ellipse(box, fill=tuple(int(v) for v in hue))
        else:
            draw.rectangle(box, fill=tuple(int(v) for v in hue))
        path = Path(folder) / f"class{label:03d}" / f"{index:06d}.{extension}"
        if extension == "jpg":
            base.save(path, quality=75)
        else:
            base.save(path)
        written += 1
    return written


def generate_image_folder(folder: str | os.PathLike, count: int, *, size: int = 256,
                          classes: int = 50, image_format: str = "jpeg",
                          processes: int | None = None) -> Path:
    """Writes (or reuses) the folder; returns its path."""
    folder = Path(folder)
    extension = "jpg" if image_format == "jpeg" else "png"
    recipe = {"count": count, "size": size, "classes": classes, "format": image_format}
    marker = folder / ".recipe.json"
    if marker.is_file() and json.loads(marker.read_text()) == recipe:
        return folder
    for label in range(classes):
        (folder / f"class{label:03d}").mkdir(parents=True, exist_ok=True)
    chunk = 500
    jobs = [(str(folder), start, min(start + chunk, count), size, classes, extension)
            for start in range(0, count, chunk)]
    with multiprocessing.Pool(processes or os.cpu_count() or 1) as pool:
        sum(pool.imap_unordered(_write_chunk, jobs))
    marker.write_text(json.dumps(recipe))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    args = parser.parse_args()
    start = time.perf_counter()
    generate_image_folder(args.folder, args.count, size=args.size, classes=args.classes,
                          image_format=args.format)
    print(f"{args.count:,} images in {args.folder} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
