"""XLA's buffer plan of each mining loss on JAX: compile only, nothing runs.

Peak RSS (what ``bench_losses.py`` reports) counts only the pages a run touches; XLA on the CPU
reserves its whole temporary arena at once, so the arena decides whether a batch size fits at
all (under a data-segment cap, or beside other jobs). This prints the arena of every loss at
each size from ``compile().memory_analysis()``, in seconds per size and without the run's
memory, so B = 16384 can be checked on a small machine. Same inputs as ``bench_losses.py``
(P x K batches, K = 4, D = 128, float32).

Usage:
  KERAS_BACKEND=jax python benchmarks/xla_memory_plan.py --sizes 8192 16384
"""

from __future__ import annotations

import argparse
import os

import results_file
from bench_losses import LOSSES, SAMPLES_PER_CLASS, loss_function


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("xla-memory-plan")
    cells = []
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        parser.error(f"Expected KERAS_BACKEND=jax. Received: "
                     f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}")
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import jax.numpy as jnp
    import numpy as np

    print("| B | loss | XLA temporaries | arguments + outputs |")
    print("|---:|---|---:|---:|")
    for batch in args.sizes:
        labels = jnp.asarray(np.repeat(np.arange(batch // SAMPLES_PER_CLASS),
                                       SAMPLES_PER_CLASS).astype("int32"))
        weights = jnp.ones((batch, batch), jnp.float32)
        embeddings = jax.ShapeDtypeStruct((batch, args.dim), jnp.float32)
        for loss_name in args.losses:
            step = jax.jit(jax.value_and_grad(loss_function(loss_name, labels, weights)))
            plan = step.lower(embeddings).compile().memory_analysis()
            other = plan.argument_size_in_bytes + plan.output_size_in_bytes
            print(f"| {batch} | {loss_name} | {plan.temp_size_in_bytes / 2**20:,.0f} MB "
                  f"| {other / 2**20:,.0f} MB |", flush=True)
            cells.append({"backend": "jax", "batch": batch, "dim": args.dim, "loss": loss_name,
                          "temporaries_mb": round(plan.temp_size_in_bytes / 2**20, 1),
                          "arguments_outputs_mb": round(other / 2**20, 1)})
    record.write(args.output, settings={"dim": args.dim, "samples_per_class": SAMPLES_PER_CLASS},
              cells=cells)


if __name__ == "__main__":
    main()
