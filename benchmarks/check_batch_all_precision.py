"""Float32 cancellation check of batch-all's prefix sums at B = 8192 against float64.

Batch-all sums ``max(d(a,p) + margin - d(a,n), 0)`` over negatives from prefix sums of the sorted
negative distances (DESIGN.md §3); in float32 those prefix sums could cancel badly at large B.
This computes the loss in float32 with tripletlab and in float64 with NumPy (per anchor,
vectorised over its positives and negatives) and prints the relative error, for unnormalised
embeddings (distances ~16, the hard case for cancellation) and small ones. Takes a few minutes.

Usage:
  KERAS_BACKEND=torch python benchmarks/check_batch_all_precision.py
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

import tripletlab as tl


def float64_batch_all(labels, x, margin):
    squared = (x * x).sum(1)
    d = np.sqrt(np.maximum(squared[:, None] + squared[None] - 2 * x @ x.T, 0))
    total, positive, valid = 0.0, 0, 0
    for a in range(len(labels)):
        same = labels == labels[a]
        positives = np.flatnonzero(same)
        positives = positives[positives != a]
        losses = d[a, positives][:, None] - d[a, ~same][None, :] + margin
        active = losses > 1e-16
        total += losses[active].sum()
        positive += active.sum()
        valid += losses.size
    return total / positive, positive / valid


def main():
    import results_file  # here: tests load this file for float64_batch_all alone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("batch-all-precision")
    cells = []
    batch, per_class, dim = 8192, 4, 128
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(batch // per_class), per_class))
    print(f"backend {keras.backend.backend()}, B = {batch}, K = {per_class}, D = {dim}")
    for scale, margin in [(1.0, 0.5), (0.05, 0.1)]:
        x = rng.normal(size=(batch, dim)) * scale
        start = time.perf_counter()
        loss, fraction = tl.losses.batch_all_triplet_loss(labels, x.astype("float32"), margin)
        loss = float(keras.ops.convert_to_numpy(loss))
        seconds = time.perf_counter() - start
        expected, expected_fraction = float64_batch_all(labels, x, margin)
        print(f"scale {scale}: float32 {loss:.7f}  float64 {expected:.7f}  relative error "
              f"{abs(loss - expected) / expected:.1e}  fraction {float(fraction):.5f} vs "
              f"{expected_fraction:.5f}  ({seconds:.1f} s)")
        cells.append({"backend": keras.backend.backend(), "batch": batch, "scale": scale,
                      "margin": margin, "float32": loss, "float64": expected,
                      "relative_error": abs(loss - expected) / expected,
                      "fraction": float(fraction), "fraction_float64": float(expected_fraction),
                      "seconds": round(seconds, 2)})
    record.write(args.output, settings={"batch": batch, "samples_per_class": per_class, "dim": dim},
              cells=cells)


if __name__ == "__main__":
    main()
