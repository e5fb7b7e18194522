"""Data-parallel mining on 1, 2 and 4 JAX devices: memory per device and time per step.

For each device count N a fresh subprocess starts JAX with ``JAX_NUM_CPU_DEVICES=N`` (set
before JAX is imported; on a CPU the N devices are simulated and share its cores) and measures,
at a large P×K batch (K = 4, D = 128, float32):

* each mining loss's ``jax.jit(jax.value_and_grad(loss))`` with the embeddings and labels split
  along the batch axis over an N-device mesh (``NamedSharding(mesh, P("batch"))``), traced
  under ``keras.distribution.DataParallel`` as ``tripletlab train --distribute data-parallel``
  runs the loss: XLA's temporary
  buffers per device (``compile().memory_analysis().temp_size_in_bytes``: the compiled plan
  of one device's program, deterministic, nothing run) and the median time of ``--repeats``
  calls after one warm-up call;
* ``--train-step``: a full Keras train step (a 2-layer MLP on 64 features, semi-hard loss,
  Adam, one batch per compiled call) under ``keras.distribution.DataParallel`` over the N
  devices: the median of the ``--steps`` intervals between the ends of ``--steps + 1`` steps
  (the first step compiles, and is not in an interval; a one-off recompile is the median's
  outlier).

On a CPU the time is that of N simulated devices sharing the same cores: it shows the cost of
the collectives, not a speed-up; the memory per device is what N real devices would each hold.

Usage:
  python benchmarks/bench_distributed.py --devices 1 2 4 --batch 4096 \\
      --output benchmarks/results/distributed.json
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

LOSSES = ("semi-hard", "hard", "batch-all")
SAMPLES_PER_CLASS = 4
FEATURES = 64


def loss_of(name):
    """The scalar mining loss ``(embeddings, labels) -> value`` named ``name``."""
    import tripletlab as tl

    def loss(embeddings, labels):
        if name == "semi-hard":
            return tl.losses.semi_hard_triplet_loss(labels, embeddings)
        if name == "hard":
            return tl.losses.hard_triplet_loss(labels, embeddings)
        return tl.losses.batch_all_triplet_loss(labels, embeddings)[0]

    return loss


def measure_losses(batch, dim, repeats, losses):
    """The loss cells of this process's devices."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from tripletlab.train.distribution import data_parallel

    devices = jax.devices()
    rows = NamedSharding(Mesh(np.array(devices), ("batch",)), P("batch"))
    rng = np.random.default_rng(0)
    labels = jax.device_put(np.repeat(np.arange(batch // SAMPLES_PER_CLASS),
                                      SAMPLES_PER_CLASS).astype("int32"), rows)
    embeddings = jax.device_put(rng.standard_normal((batch, dim)).astype("float32"), rows)
    cells = []
    for name in losses:
        # traced under the distribution, as in `tripletlab train --distribute data-parallel`
        with data_parallel().scope():
            step = jax.jit(jax.value_and_grad(loss_of(name)))
            plan = step.lower(embeddings, labels).compile().memory_analysis()
            jax.block_until_ready(step(embeddings, labels))
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                value, gradient = step(embeddings, labels)
                jax.block_until_ready(gradient)
                times.append(time.perf_counter() - started)
        cells.append({"kind": "loss", "loss": name, "devices": len(devices), "batch": batch,
                      "dim": dim, "temporaries_mb": round(plan.temp_size_in_bytes / 2**20, 1),
                      "arguments_mb": round(plan.argument_size_in_bytes / 2**20, 1),
                      "ms": results_file.milliseconds(statistics.median(times)),
                      "value": float(value)})
    return cells


def measure_train_step(batch, dim, steps):
    """The train-step cell: ``fit`` under ``DataParallel`` over this process's devices."""
    import keras
    import numpy as np

    import tripletlab as tl
    from tripletlab.data import PKSampler
    from tripletlab.train.distribution import data_parallel

    keras.utils.set_random_seed(0)
    classes = batch // SAMPLES_PER_CLASS
    rng = np.random.default_rng(0)
    x = rng.standard_normal((classes * 8, FEATURES)).astype("float32")
    y = np.repeat(np.arange(classes), 8)
    sampler = PKSampler(x, y, classes, SAMPLES_PER_CLASS, steps_per_epoch=steps + 1, seed=0)
    ends = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            ends.append(time.perf_counter())

    distribution = data_parallel()
    with distribution.scope():
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(256, "relu"),
                                  keras.layers.Dense(dim)])
        model.compile(optimizer="adam", loss=tl.losses.TripletSemiHardLoss())
        model.fit(sampler, epochs=1, verbose=0, shuffle=False, callbacks=[StepTimes()])
    return {"kind": "train-step", "loss": "semi-hard", "devices": len(distribution.device_mesh
                                                                     .devices.flatten()),
            "batch": batch, "dim": dim,
            "ms": results_file.milliseconds(statistics.median(
                later - earlier for earlier, later in zip(ends, ends[1:], strict=False)))}


def child(args):
    """One device count, in this process: prints its cells as one JSON line."""
    cells = measure_losses(args.batch, args.dim, args.repeats, args.losses)
    if args.train_step:
        cells.append(measure_train_step(args.batch, args.dim, args.steps))
    print("CELLS " + json.dumps(cells), flush=True)


def run_devices(count, args):
    """The cells of ``count`` devices, from a fresh subprocess (JAX reads the device count
    when it starts)."""
    command = [sys.executable, os.path.abspath(__file__), "--child", "--batch", str(args.batch),
               "--dim", str(args.dim), "--repeats", str(args.repeats), "--steps",
               str(args.steps), "--losses", *args.losses]
    if args.train_step:
        command.append("--train-step")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_NUM_CPU_DEVICES": str(count),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("CELLS ")]
    if done.returncode != 0 or not lines:
        return [{"devices": count, "error": done.stderr.strip().splitlines()[-1:]}]
    return json.loads(lines[-1][len("CELLS "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=4096, help="P×K rows (K = 4)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-step", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--steps", type=int, default=5, help="timed train steps")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    record = results_file.Run("distributed")
    cells = []
    print("| devices | run | XLA temporaries per device | ms per step |")
    print("|---:|---|---:|---:|")
    for count in args.devices:
        for cell in run_devices(count, args):
            cells.append(cell)
            if "error" in cell:
                print(f"| {count} | error: {cell['error']} | | |", flush=True)
                continue
            memory = (f"{cell['temporaries_mb']:,.1f} MB" if "temporaries_mb" in cell else "")
            print(f"| {count} | {cell['kind']} {cell['loss']} | {memory} | {cell['ms']:,.1f} |",
                  flush=True)
    record.write(args.output, settings={"batch": args.batch, "dim": args.dim,
                                        "samples_per_class": SAMPLES_PER_CLASS,
                                        "repeats": args.repeats, "train_step": args.train_step,
                                        "steps": args.steps, "features": FEATURES},
                 cells=cells)


if __name__ == "__main__":
    main()
