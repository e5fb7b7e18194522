"""Images per second of tripletlab's input pipeline against Keras' image_dataset_from_directory.

Both read the same folder of generated JPEG images (:mod:`generated_images`, 256 × 256, or
``--image-size``) and resize them to 224 × 224 (bilinear), on ``--cores`` CPU cores (the process
is pinned to them):

- **tripletlab**: ``scan_image_folder`` (the header pass, timed apart), then batches of
  :class:`tripletlab.inference.InputBatches` over the lazy ``ImageFiles`` (decode with OpenCV,
  resize, / 255 to float32) fed through Keras' own ``PyDataset`` workers by ``model.predict``
  of a model that only averages each image (its cost is a small part of the time), with
  1 worker (the main thread), worker threads and worker processes;
- **tripletlab, iterated**: the same batches made by 2 or 4 threads in order and taken by the
  main thread, with no model: the input pipeline alone, the counterpart of iterating
  ``image_dataset_from_directory``;
- **tripletlab, augmented**: the training batches as ``tripletlab train`` draws them
  (``ShuffledBatches`` over ``ImageFiles`` with worker threads) with the ``--augment`` keys
  (a JSON object of ``[augmentation]`` keys; default flip, brightness and contrast; ``{}``
  skips these rows), decoded + resized + augmented, made by 2 or 4 threads and iterated (no
  model);
- **Keras**: ``image_dataset_from_directory(..., image_size=(224, 224), batch_size=...,
  shuffle=False)``, a ``tf.data`` pipeline (TensorFlow's own JPEG decoder and threads),
  iterated to the end (uint8 → float32 in ``[0, 255]``, no division), and the same dataset
  through the same ``model.predict`` as tripletlab's rows (both then pay for handing each
  batch to the model);
- **Keras, augmented**: ``image_dataset_from_directory`` mapped (``/ 255``, then the same
  Keras layers) with ``num_parallel_calls=AUTOTUNE``, iterated: the peer of the augmented rows.

The folder is read once before timing (page cache warm for both); each
pipeline runs ``--repeats`` times and the best rate counts.

Usage:
  KERAS_BACKEND=jax python benchmarks/bench_input_pipeline.py --count 2000 --cores 2
  python benchmarks/bench_input_pipeline.py --folder /data/my-images --cores 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import results_file
from generated_images import generate_image_folder

SIZE = 224


def warm_page_cache(folder: Path) -> int:
    count = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            path.read_bytes()
            count += 1
    return count


def tripletlab_rate(files, batch_size: int, workers: int, processes: bool) -> float:
    """Images per second through ``model.predict`` of ``InputBatches`` (Keras' workers)."""
    import keras

    from tripletlab.inference import InputBatches

    model = keras.Sequential([keras.Input((SIZE, SIZE, files.shape[-1])),
                              keras.layers.GlobalAveragePooling2D()])
    model.predict(files[:batch_size], verbose=0)  # build and compile first
    batches = InputBatches(files, batch_size, workers=workers, use_multiprocessing=processes)
    start = time.perf_counter()
    out = model.predict(batches, verbose=0)
    seconds = time.perf_counter() - start
    assert len(out) == len(files)
    return len(files) / seconds


def iterated_rate(files, batch_size: int, workers: int) -> float:
    """Images per second of the batches alone, no model: ``workers`` threads produce the
    batches of ``InputBatches`` in order (as Keras' ``PyDataset`` workers do), the main
    thread takes them one by one: the counterpart of iterating ``image_dataset_from_directory``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tripletlab.inference import InputBatches

    batches = InputBatches(files, batch_size)
    count = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for batch in pool.map(batches.__getitem__, range(len(batches))):
            count += len(batch[0] if isinstance(batch, tuple) else batch)
    seconds = time.perf_counter() - start
    assert count == len(files)
    return count / seconds


def augmented_rate(files, batch_size: int, workers: int, keys: dict) -> float:
    """Images per second of the training batches (``ShuffledBatches`` with ``augment=``),
    made by ``workers`` threads in order and taken by the main thread, no model (as
    :func:`iterated_rate`): the counterpart of iterating Keras' augmented ``tf.data``."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from tripletlab.data import ShuffledBatches, build_augmentation

    labels = np.arange(len(files)) % 10
    batches = ShuffledBatches(files, labels, batch_size, augment=build_augmentation(keys))
    batches[0]  # the augmentation's first call (imports, graph building)
    count = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for images, _ in pool.map(batches.__getitem__, range(len(batches))):
            count += len(images)
    return count / (time.perf_counter() - start)


def keras_rate(folder: Path, batch_size: int) -> tuple[float, int]:
    """Images per second of iterating ``image_dataset_from_directory`` to the end."""
    import keras

    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=batch_size, shuffle=False,
        interpolation="bilinear", verbose=False)
    start = time.perf_counter()
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start), count


def keras_augmented_rate(folder: Path, batch_size: int, keys: dict) -> float:
    """Images per second of ``image_dataset_from_directory`` mapped through the same Keras
    preprocessing layers (``/ 255`` first, as tripletlab's images are in ``[0, 1]``), in
    parallel calls (``tf.data.AUTOTUNE``), iterated to the end: what a Keras user would write
    for augmented training batches."""
    import keras
    import tensorflow as tf

    from tripletlab.data import build_augmentation

    layers = build_augmentation(keys).layers
    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=batch_size, shuffle=False,
        interpolation="bilinear", verbose=False)

    def augment(images, labels):
        images = images / 255.0
        for layer in layers:
            images = layer(images, training=True)
        return images, labels

    dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    next(iter(dataset))  # trace the map once
    start = time.perf_counter()
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def keras_predict_rate(folder: Path, batch_size: int) -> float:
    """Images per second of ``model.predict`` over ``image_dataset_from_directory`` (the model
    of :func:`tripletlab_rate`)."""
    import keras

    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=batch_size, shuffle=False,
        interpolation="bilinear", verbose=False)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)),
                              keras.layers.GlobalAveragePooling2D()])
    model.predict(dataset.take(1), verbose=0)  # build and compile first
    start = time.perf_counter()
    out = model.predict(dataset, verbose=0)
    return len(out) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="an image folder (one sub-folder per class); default: "
                                         "a generated one")
    parser.add_argument("--count", type=int, default=2000, help="images to generate")
    parser.add_argument("--image-size", type=int, default=256,
                        help="side of the generated images (e.g. 1024 for photo-sized JPEGs)")
    parser.add_argument("--cores", type=int, default=2, help="pin the process to N cores")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--augment", type=json.loads,
                        default={"flip": "horizontal", "brightness": 0.2, "contrast": 0.2},
                        help="[augmentation] keys as a JSON object ('{}': no augmented rows)")
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("input-pipeline")
    all_rates = {}

    def best(name, measure, *arguments):
        """The best of ``--repeats`` rates of ``measure(*arguments)``; every rate kept for the
        results file."""
        rates = [measure(*arguments) for _ in range(args.repeats)]
        all_rates[name] = rates
        return max(rates)

    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:args.cores])
    cores = len(os.sched_getaffinity(0))
    name = f"tripletlab-images-{args.count}" + ("" if args.image_size == 256
                                                 else f"-{args.image_size}")
    folder = Path(args.folder or Path(tempfile.gettempdir()) / name)
    if not args.folder:
        generate_image_folder(folder, args.count, size=args.image_size)
    files_read = warm_page_cache(folder)

    import keras

    from tripletlab.data import scan_image_folder

    print(f"{files_read:,} files in {folder}; {cores} cores; keras {keras.__version__} "
          f"({keras.backend.backend()}); batches of {args.batch_size} at {SIZE}x{SIZE}; "
          f"augmented rows: {json.dumps(args.augment) if args.augment else 'none'}", flush=True)

    start = time.perf_counter()
    files, _, _ = scan_image_folder(folder, image_size=SIZE, color_mode="rgb")
    header_seconds = time.perf_counter() - start
    print(json.dumps({"pipeline": "tripletlab header pass (scan_image_folder)",
                      "images": len(files), "seconds": round(header_seconds, 2),
                      "images_per_second": round(len(files) / header_seconds)}), flush=True)

    results = {}
    settings = [("tripletlab, 1 worker (main thread)", 1, False),
                ("tripletlab, 2 worker threads", 2, False),
                ("tripletlab, 4 worker threads", 4, False),
                ("tripletlab, 2 worker processes", 2, True)]
    for name, workers, processes in settings:
        rate = best(name, tripletlab_rate, files, args.batch_size, workers, processes)
        results[name] = rate
        print(json.dumps({"pipeline": name, "images_per_second": round(rate, 1)}), flush=True)
    for workers in (2, 4):
        name = f"tripletlab, {workers} worker threads, iterated (no model)"
        rate = best(name, iterated_rate, files, args.batch_size, workers)
        results[name] = rate
        print(json.dumps({"pipeline": name, "images_per_second": round(rate, 1)}), flush=True)
    if args.augment:
        for workers in (2, 4):
            name = f"tripletlab, {workers} worker threads, decode + resize + augment, iterated"
            rate = best(name, augmented_rate, files, args.batch_size, workers,
                        args.augment)
            results[name] = rate
            print(json.dumps({"pipeline": name, "images_per_second": round(rate, 1)}),
                  flush=True)
    rate = best("keras image_dataset_from_directory",
                lambda: keras_rate(folder, args.batch_size)[0])
    results["keras image_dataset_from_directory"] = rate
    print(json.dumps({"pipeline": "keras image_dataset_from_directory",
                      "images_per_second": round(rate, 1)}), flush=True)
    predict_rate = best("keras image_dataset_from_directory through model.predict",
                        keras_predict_rate, folder, args.batch_size)
    print(json.dumps({"pipeline": "keras image_dataset_from_directory through model.predict",
                      "images_per_second": round(predict_rate, 1)}), flush=True)
    if args.augment:
        augmented = best("keras image_dataset_from_directory + the same layers in tf.data map",
                         keras_augmented_rate, folder, args.batch_size, args.augment)
        print(json.dumps({"pipeline": "keras image_dataset_from_directory + the same layers "
                                      "in tf.data map", "images_per_second": round(augmented, 1)}),
              flush=True)
    iterated = max((v, k) for k, v in results.items()
                   if "iterated" in k and "augment" not in k)
    predicted = max((v, k) for k, v in results.items()
                    if k.startswith("tripletlab") and "augment" not in k and "iterated" not in k)
    print(f"best tripletlab iterated: {iterated[1]} at {iterated[0]:,.0f} images/s, "
          f"{iterated[0] / rate:.2f}x image_dataset_from_directory iterated; through "
          f"model.predict: {predicted[1]} at {predicted[0]:,.0f} images/s, "
          f"{predicted[0] / predict_rate:.2f}x the same model.predict over it", flush=True)
    if args.augment:
        best_augmented = max(v for k, v in results.items() if "augment" in k)
        print(f"augmented: best tripletlab {best_augmented:,.0f} images/s, "
              f"{best_augmented / augmented:.2f}x Keras' tf.data map (both iterated)",
              flush=True)
    cells = [{"pipeline": "tripletlab header pass (scan_image_folder)", "images": len(files),
              "seconds": round(header_seconds, 3),
              "images_per_second": round(len(files) / header_seconds, 1)}]
    cells += [{"pipeline": name, "images_per_second": round(max(rates), 1),
               "repeats_images_per_second": [round(r, 1) for r in rates]}
              for name, rates in all_rates.items()]
    record.write(args.output,
              settings={"images": len(files), "image_size": args.image_size, "cores": cores,
                        "batch_size": args.batch_size, "repeats": args.repeats,
                        "augment": args.augment, "backend": keras.backend.backend(),
                        "folder": "given" if args.folder else "generated"},
              cells=cells)


if __name__ == "__main__":
    main()
