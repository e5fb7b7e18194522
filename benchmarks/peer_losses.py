"""One timing cell of a peer library's triplet loss, run in that library's own interpreter.

``bench_losses.py --peer-python pml=PATH tfa=PATH`` starts this script with each peer's Python
(a virtual environment holding the peer, never a dependency of tripletlab), so that the peers are
timed in the same run, on the same inputs recipe, as tripletlab's losses: P x K labels with
K = 4 shuffled by ``numpy.random.default_rng(0)``, standard normal float32 embeddings of
dimension D, value + gradient with respect to the embeddings, ``--warmup`` untimed calls
(default 1), then the median of the timed calls; peak extra memory is the growth of the peak
RSS over the inputs. This script imports neither tripletlab nor Keras 3.

Peers (margins are tripletlab's defaults for the matching loss; distances are plain Euclidean on
the raw embeddings, as tripletlab's ``distance="L2"``):
  ``pml-semihard``  pytorch-metric-learning ``TripletMarginMiner(type_of_triplets="semihard")`` +
                    ``TripletMarginLoss``, margin 1.0, eager PyTorch.
  ``pml-all``       pytorch-metric-learning ``TripletMarginLoss`` without a miner (every valid
                    triplet), margin 0.5, eager PyTorch.
  ``tfa-hard``      TF Addons ``TripletHardLoss`` (margin 1.0) inside ``tf.function``.
  ``tfa-semihard``  TF Addons ``TripletSemiHardLoss`` (margin 1.0) inside ``tf.function``.

Usage (normally started by bench_losses.py):
  /path/to/peer/python benchmarks/peer_losses.py pml-all 1024 --dim 128 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

PEER_LOSSES = {"pml": ("pml-semihard", "pml-all"), "tfa": ("tfa-hard", "tfa-semihard")}
SAMPLES_PER_CLASS = 4


def peak_rss_mb():
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def inputs(batch, dim):
    """Inputs recipe shared with bench_losses.py: shuffled P x K labels, normal embeddings."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(batch // SAMPLES_PER_CLASS),
                                       SAMPLES_PER_CLASS)).astype("int32")
    embeddings = rng.normal(size=(batch, dim)).astype("float32")
    return labels, embeddings


def pml_step(loss_name, labels_np, x_np):
    """Returns ``run() -> value`` for a pytorch-metric-learning loss (eager PyTorch)."""
    import torch
    from pytorch_metric_learning import distances, losses, miners

    labels = torch.from_numpy(labels_np.astype("int64"))
    x = torch.from_numpy(x_np)
    distance = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    if loss_name == "pml-semihard":
        miner = miners.TripletMarginMiner(margin=1.0, type_of_triplets="semihard",
                                          distance=distance)
        loss_function = losses.TripletMarginLoss(margin=1.0, distance=distance)
    else:
        miner = None
        loss_function = losses.TripletMarginLoss(margin=0.5, distance=distance)

    def run():
        tensor = x.detach().requires_grad_(True)
        triplets = miner(tensor, labels) if miner is not None else None
        value = loss_function(tensor, labels, triplets)
        (gradient,) = torch.autograd.grad(value, tensor)
        return float(value.detach()), gradient

    return run


def tfa_step(loss_name, labels_np, x_np):
    """Returns ``run() -> value`` for a TF Addons loss inside ``tf.function``."""
    import tensorflow as tf
    import tensorflow_addons as tfa

    labels = tf.constant(labels_np)
    x = tf.constant(x_np)
    loss_function = (tfa.losses.TripletHardLoss(margin=1.0) if loss_name == "tfa-hard"
                     else tfa.losses.TripletSemiHardLoss(margin=1.0))

    @tf.function
    def step(embeddings):
        with tf.GradientTape() as tape:
            tape.watch(embeddings)
            value = loss_function(labels, embeddings)
        return value, tape.gradient(value, embeddings)

    def run():
        value, gradient = step(x)
        gradient.numpy()
        return float(value), gradient

    return run


def measure(loss_name, batch, dim, repeats, warmup=1):
    """Seconds per value + gradient call (median), extra peak memory (MB) and the loss value."""
    labels, x = inputs(batch, dim)
    run = (pml_step if loss_name.startswith("pml") else tfa_step)(loss_name, labels, x)
    before = peak_rss_mb()
    for _ in range(warmup):
        value, _ = run()  # warm-up / tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value, _ = run()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times,
            "extra_mb": peak_rss_mb() - before, "value": value}


def versions(peer):
    """The peer's library versions, for the report."""
    if peer == "pml":
        import pytorch_metric_learning
        import torch

        return (f"torch {torch.__version__}, "
                f"pytorch-metric-learning {pytorch_metric_learning.__version__}")
    import tensorflow as tf
    import tensorflow_addons as tfa

    return f"TensorFlow {tf.__version__}, TF Addons {tfa.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("loss", choices=[*PEER_LOSSES["pml"], *PEER_LOSSES["tfa"], "versions"])
    parser.add_argument("batch", type=int, nargs="?", default=0)
    parser.add_argument("--peer", choices=sorted(PEER_LOSSES), help="with loss=versions")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if args.loss == "versions":
        print("RESULT " + json.dumps({"versions": versions(args.peer)}))
        return
    result = measure(args.loss, args.batch, args.dim, args.repeats, args.warmup)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
