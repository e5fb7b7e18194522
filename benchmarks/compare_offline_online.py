"""Offline triplets (the Keras Siamese notebook) versus online mining, at equal wall time.

1. ``notebook``: the notebook's exact setup: its MLP (784 -> Dense 64 relu -> Dense 64 sigmoid),
   random offline triplets, batch 1024, 10 epochs x 58 steps, alpha = 0.2 on the mean squared
   difference over embedding dimensions, Adam (1e-3). Its wall time T is the budget.
2. ``offline-hard``: the same, with tripletlab's offline hard mining (pool re-embedded every
   10 steps), stopped at T.
3. ``online-hard`` / ``online-semi-hard``: the same model trained with online batch-hard and
   semi-hard mining on P x K batches (10 classes x 100), squared-L2 with margin 0.2 x 64 = 12.8
   (the notebook's margin on its scale), stopped at T.

Each model embeds the MNIST test set (queries) and training set (references); the table shows
P@1 and MAP@R (test -> train), the steps run and the training time.

Usage:
  KERAS_BACKEND=jax python benchmarks/compare_offline_online.py --data-file ../shared/data/mnist.npz
"""

from __future__ import annotations

import argparse
import time

import keras
import results_file

import tripletlab as tl


class StopAfter(keras.callbacks.Callback):
    """Stops training once ``seconds`` of training time have passed (checked every batch)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.seconds is not None and time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


def notebook_mlp(input_shape):
    return tl.models.siamese_mlp(input_shape, embedding_dim=64, widths=(64,),
                                 output_activation="sigmoid", normalize=False)


def train_offline(data, strategy, budget, seed):
    embedder = notebook_mlp(data.input_shape)
    network = tl.models.TripletNetwork(embedder)
    network.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=tl.losses.TripletLoss(margin=0.2, distance="mean-squared"))
    generator = tl.data.TripletGenerator(
        data.x_train, data.y_train, batch_size=1024, steps_per_epoch=58, strategy=strategy,
        seed=seed, embedding_model=embedder if strategy == "hard" else None,
        distance="mean-squared", margin=0.2, refresh_every=10, pool_size=4096)
    stopper = StopAfter(budget)
    callbacks = [stopper] + ([generator.mining_callback()] if strategy == "hard" else [])
    start = time.perf_counter()
    network.fit(generator, epochs=10, callbacks=callbacks, verbose=0)
    return embedder, stopper.steps, time.perf_counter() - start


def train_online(data, loss, budget, seed):
    embedder = notebook_mlp(data.input_shape)
    embedder.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    batches = tl.data.PKSampler(data.x_train, data.y_train, classes_per_batch=10,
                                samples_per_class=100, seed=seed)
    stopper = StopAfter(budget)
    start = time.perf_counter()
    embedder.fit(batches, epochs=1000, callbacks=[stopper], verbose=0)
    return embedder, stopper.steps, time.perf_counter() - start


def score(embedder, data):
    test = embedder.predict(data.x_test, batch_size=2048, verbose=0)
    train = embedder.predict(data.x_train, batch_size=2048, verbose=0)
    metrics = tl.evaluation.evaluate_embeddings(test, data.y_test, train, data.y_train,
                                                distance="L2", clustering=False)
    return metrics["precision_at_1"], metrics["map_at_r"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", required=True, help="MNIST in Keras' npz layout")
    parser.add_argument("--seed", type=int, default=0)
    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("offline-online")
    keras.utils.set_random_seed(args.seed)
    data = tl.data.load_dataset("npz", data_file=args.data_file)

    rows = []
    embedder, steps, seconds = train_offline(data, "random", None, args.seed)
    rows.append(("notebook (offline random triplets)", steps, seconds, *score(embedder, data)))
    budget = seconds
    print(f"budget: {budget:.1f} s of training", flush=True)
    embedder, steps, seconds = train_offline(data, "hard", budget, args.seed)
    rows.append(("offline hard mining", steps, seconds, *score(embedder, data)))
    margin = 0.2 * 64  # the notebook's alpha on the mean over 64 dimensions
    for name, loss in [
        ("online batch-hard", tl.losses.TripletHardLoss(margin=margin, distance="squared-L2")),
        ("online semi-hard", tl.losses.TripletSemiHardLoss(margin=margin, distance="squared-L2")),
    ]:
        embedder, steps, seconds = train_online(data, loss, budget, args.seed)
        rows.append((name, steps, seconds, *score(embedder, data)))

    print(f"\nbackend {keras.backend.backend()}, MNIST test -> train, seed {args.seed}\n")
    print("| setup | steps | training time | P@1 | MAP@R |")
    print("|---|---:|---:|---:|---:|")
    for name, steps, seconds, p_at_1, map_at_r in rows:
        print(f"| {name} | {steps} | {seconds:.0f} s | {p_at_1:.4f} | {map_at_r:.4f} |")
    record.write(args.output,
              settings={"backend": keras.backend.backend(), "seed": args.seed,
                        "data_file": args.data_file.rsplit("/", 1)[-1], "budget_s": budget},
              cells=[{"setup": name, "steps": steps, "train_s": round(seconds, 2),
                      "precision_at_1": float(p_at_1), "map_at_r": float(map_at_r)}
                     for name, steps, seconds, p_at_1, map_at_r in rows])


if __name__ == "__main__":
    main()
