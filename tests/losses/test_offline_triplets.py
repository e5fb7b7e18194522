"""Offline triplets: TripletLoss, TripletNetwork and TripletGenerator (the Siamese workflow).

The loss is checked against a float64 NumPy oracle that loops over the triplets (values and
finite-difference gradients) for every distance, on random non-degenerate inputs. Backend
dependent: ``scripts/test.sh`` runs this file on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from conftest import BACKEND, to_numpy, value_and_gradient
from tripletlab.data.triplets import MINING_DISTANCES, TripletGenerator, pool_distances
from tripletlab.losses.offline import TripletLoss, offline_triplet_loss
from tripletlab.models import TripletNetwork, extract_embedding_model

DISTANCES = ("L2", "squared-L2", "angular", "normalized-L2", "mean-squared")
# A margin per distance that leaves both active and inactive triplets on Gaussian inputs.
MARGINS = {"L2": 0.7, "squared-L2": 3.0, "angular": 0.2, "normalized-L2": 0.3,
           "mean-squared": 0.6}


# --- NumPy oracle (float64, loops) -----------------------------------------------------------


def oracle_distance(u, v, distance):
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    if distance in ("L2", "squared-L2", "mean-squared"):
        squared = sum((float(a) - float(b)) ** 2 for a, b in zip(u, v, strict=True))
        if distance == "L2":
            return math.sqrt(squared)
        return squared if distance == "squared-L2" else squared / len(u)
    cosine = float(np.dot(u, v)) / (math.sqrt(float(np.dot(u, u))) * math.sqrt(float(np.dot(v, v))))
    if distance == "angular":
        return max(1.0 - cosine, 0.0)
    return math.sqrt(max(2.0 - 2.0 * cosine, 0.0))


def oracle_losses(y_pred, margin, distance):
    """Per-triplet max(d(a,p) - d(a,n) + margin, 0) for y_pred [B, 3, D]."""
    return np.array([max(oracle_distance(t[0], t[1], distance)
                         - oracle_distance(t[0], t[2], distance) + margin, 0.0)
                     for t in np.asarray(y_pred, np.float64)])


def oracle_mean_gradient(y_pred, margin, distance, step=1e-6):
    """Central finite differences of the mean oracle loss w.r.t. y_pred (float64)."""
    y_pred = np.asarray(y_pred, np.float64)
    gradient = np.zeros_like(y_pred)
    for index in np.ndindex(*y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (oracle_losses(up, margin, distance).mean()
                           - oracle_losses(down, margin, distance).mean()) / (2 * step)
    return gradient


def random_triplets(rng, batch, dim, margin, distance, gap=0.05):
    """Gaussian [B, 3, D] with no triplet within `gap` of the hinge (non-degenerate)."""
    rows = []
    while len(rows) < batch:
        triplet = rng.normal(size=(3, dim))
        hinge = (oracle_distance(triplet[0], triplet[1], distance)
                 - oracle_distance(triplet[0], triplet[2], distance) + margin)
        if abs(hinge) > gap:
            rows.append(triplet)
    return np.stack(rows).astype("float32")


# --- TripletLoss / offline_triplet_loss --------------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCES)
def test_loss_matches_oracle(distance):
    rng = np.random.default_rng(7)
    margin = MARGINS[distance]
    y_pred = random_triplets(rng, 24, 5, margin, distance)
    expected = oracle_losses(y_pred, margin, distance)
    assert 0 < np.count_nonzero(expected) < len(expected)  # both active and inactive triplets

    per_triplet = to_numpy(offline_triplet_loss(y_pred[:, 0], y_pred[:, 1], y_pred[:, 2],
                                                margin=margin, distance=distance))
    np.testing.assert_allclose(per_triplet, expected, rtol=1e-5, atol=1e-5)

    loss = TripletLoss(margin=margin, distance=distance)
    dummy = np.zeros(len(y_pred), "float32")
    np.testing.assert_allclose(to_numpy(loss(dummy, y_pred)), expected.mean(), rtol=1e-5,
                               atol=1e-6)
    weights = rng.uniform(0.0, 2.0, size=len(y_pred)).astype("float32")
    np.testing.assert_allclose(to_numpy(loss(dummy, y_pred, sample_weight=weights)),
                               (expected * weights).mean(), rtol=1e-5, atol=1e-6)
    unreduced = TripletLoss(margin=margin, distance=distance, reduction="none")
    np.testing.assert_allclose(to_numpy(unreduced(dummy, y_pred)), expected, rtol=1e-5,
                               atol=1e-5)
    summed = TripletLoss(margin=margin, distance=distance, reduction="sum")
    np.testing.assert_allclose(to_numpy(summed(dummy, y_pred)), expected.sum(), rtol=1e-5)
    # A tuple of three [B, D] tensors is the same as the stacked [B, 3, D].
    as_tuple = (y_pred[:, 0], y_pred[:, 1], y_pred[:, 2])
    np.testing.assert_allclose(to_numpy(loss(dummy, as_tuple)), expected.mean(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCES)
def test_loss_gradient_matches_oracle(distance):
    rng = np.random.default_rng(11)
    margin = MARGINS[distance]
    y_pred = random_triplets(rng, 6, 4, margin, distance, gap=0.1)
    loss = TripletLoss(margin=margin, distance=distance)
    dummy = np.zeros(len(y_pred), "float32")
    value, gradient = value_and_gradient(lambda t: loss(dummy, t), y_pred)
    np.testing.assert_allclose(value, oracle_losses(y_pred, margin, distance).mean(), rtol=1e-5)
    np.testing.assert_allclose(gradient, oracle_mean_gradient(y_pred, margin, distance),
                               rtol=2e-3, atol=2e-4)


def test_loss_identical_points_have_finite_gradient():
    y_pred = np.zeros((2, 3, 4), "float32")  # d(a,p) = d(a,n) = 0 for L2 (sqrt at 0)
    _, gradient = value_and_gradient(lambda t: TripletLoss()(np.zeros(2), t), y_pred)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"], ids=["float16", "bfloat16"])
def test_loss_half_precision_returns_input_dtype(dtype):
    rng = np.random.default_rng(3)
    y_pred = random_triplets(rng, 8, 4, 0.7, "L2", gap=0.2)
    half = keras.ops.cast(y_pred, dtype)
    result = offline_triplet_loss(half[:, 0], half[:, 1], half[:, 2], margin=0.7)
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    np.testing.assert_allclose(to_numpy(result), oracle_losses(to_numpy(half), 0.7, "L2"),
                               rtol=2e-2, atol=2e-2)


def test_loss_config_round_trip():
    loss = TripletLoss(margin=0.25, distance="mean-squared", reduction="sum", name="offline")
    config = loss.get_config()
    assert config == {"name": "offline", "reduction": "sum", "margin": 0.25,
                      "distance": "mean-squared"}
    assert TripletLoss.from_config(config).get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, TripletLoss) and restored.get_config() == config


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"margin": -0.1}, ValueError, "margin"),
     ({"margin": "1"}, TypeError, "margin"),
     ({"distance": "cosine"}, ValueError, "distance"),
     ({"reduction": "average"}, ValueError, "reduction")],
    ids=["negative-margin", "string-margin", "unknown-distance", "bad-reduction"])
def test_loss_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        TripletLoss(**kwargs)


def test_loss_rejects_bad_prediction_shape():
    with pytest.raises(ValueError, match=r"\[B, 3, D\]"):
        TripletLoss()(np.zeros(4), np.zeros((4, 2, 8), "float32"))
    with pytest.raises(ValueError, match="2 items"):
        TripletLoss()(np.zeros(2), [np.zeros((2, 3)), np.zeros((2, 3))])


# --- TripletNetwork ---------------------------------------------------------------------------


def make_embedding_model(input_dim=64, dim=8, seed=0):
    return keras.Sequential([
        keras.Input((input_dim,)),
        keras.layers.Dense(16, activation="relu",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed)),
        keras.layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1)),
        keras.layers.UnitNormalization(),
    ], name="embedding")


def test_network_branches_equal_embedding_model():
    rng = np.random.default_rng(0)
    anchors, positives, negatives = (rng.normal(size=(5, 64)).astype("float32") for _ in range(3))
    embed = make_embedding_model()
    net = TripletNetwork(embed)
    stacked = to_numpy(net((anchors, positives, negatives)))
    assert stacked.shape == (5, 3, 8)
    for branch, inputs in enumerate((anchors, positives, negatives)):
        np.testing.assert_allclose(stacked[:, branch], to_numpy(net.embedding_model(inputs)),
                                   rtol=1e-6, atol=1e-6)
    as_dict = to_numpy(net({"anchor": anchors, "positive": positives, "negative": negatives}))
    np.testing.assert_allclose(as_dict, stacked, rtol=1e-6, atol=1e-6)
    assert extract_embedding_model(net) is embed
    assert len(net.trainable_weights) == len(embed.trainable_weights)  # one shared set


def test_network_rejects_bad_inputs():
    with pytest.raises(TypeError, match="embedding_model"):
        TripletNetwork(lambda x: x)
    net = TripletNetwork(make_embedding_model())
    with pytest.raises(ValueError, match="anchors, positives, negatives"):
        net((np.zeros((2, 64)), np.zeros((2, 64))))
    with pytest.raises(TypeError, match="TripletNetwork"):
        extract_embedding_model(make_embedding_model())


def test_one_way_to_get_the_embedding_model():
    """``extract_embedding_model`` is what training, the CLI and the generator use: a network
    gives its shared model; with ``strict=False`` any other model is already the embedder."""
    embed = make_embedding_model()
    net = TripletNetwork(embed)
    assert extract_embedding_model(net, strict=False) is embed
    assert extract_embedding_model(embed, strict=False) is embed
    with pytest.raises(TypeError, match="strict"):
        extract_embedding_model(net, strict="no")
    x, y = labelled_data()
    mined = [TripletGenerator(x, y, 8, strategy="hard", embedding_model=model, pool_size=len(y),
                              seed=4).triplet_indices(0) for model in (net, embed)]
    for from_network, from_embedder in zip(*mined, strict=True):
        np.testing.assert_array_equal(from_network, from_embedder)


def test_network_save_and_load_safe_mode(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 64)).astype("float32")
    net = TripletNetwork(make_embedding_model())
    net.compile(optimizer="adam", loss=TripletLoss(margin=0.4, distance="mean-squared"))
    net.train_on_batch((x, x[::-1], x[::2].repeat(2, axis=0)), np.zeros(6))  # builds the optimizer
    expected = net.predict((x, x[::-1], x), verbose=0)
    path = tmp_path / "siamese.keras"
    net.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, TripletNetwork)
    np.testing.assert_allclose(restored.predict((x, x[::-1], x), verbose=0), expected,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(restored.embedding_model.predict(x, verbose=0), expected[:, 0],
                               rtol=1e-6, atol=1e-6)
    assert restored.loss.get_config()["distance"] == "mean-squared"


def test_fit_smoke_on_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.data / 16.0).astype("float32")
    net = TripletNetwork(make_embedding_model())
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss=TripletLoss(margin=0.5))
    generator = TripletGenerator(x, digits.target, 32, steps_per_epoch=4, seed=0)
    history = net.fit(generator, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert generator.epoch >= 2  # new triplets each epoch (Keras may add a boundary)

    hard = TripletGenerator(x, digits.target, 32, steps_per_epoch=4, strategy="hard",
                            embedding_model=net, refresh_every=2, pool_size=200, margin=0.5)
    history = net.fit(hard, epochs=1, verbose=0, callbacks=[hard.mining_callback()])
    assert np.isfinite(history.history["loss"][-1])
    statistics = hard.mining_statistics
    assert statistics is not None and statistics["refresh"] >= 2  # first pool + every 2 steps
    assert statistics["pool_size"] == 200


def test_mining_callback_does_not_disturb_training():
    """Re-mining between steps (predict on the shared embedding model; on JAX a state sync)
    leaves the trained weights exactly as a fit without the callback."""
    x, y = labelled_data()

    def train(with_callback):
        keras.utils.set_random_seed(0)
        net = TripletNetwork(make_embedding_model(seed=3))
        net.compile(optimizer=keras.optimizers.SGD(0.1), loss=TripletLoss(margin=0.5))
        data = TripletGenerator(x, y, 8, steps_per_epoch=4, seed=1)
        callbacks = []
        if with_callback:
            miner = TripletGenerator(x, y, 8, strategy="hard", embedding_model=net,
                                     refresh_every=1, pool_size=len(y))  # the same pool each time
            callbacks = [miner.mining_callback()]
        net.fit(data, epochs=2, verbose=0, shuffle=False, callbacks=callbacks)
        if with_callback:
            last = miner.mining_statistics
            assert last["refresh"] == 8  # on_train_begin + 2 epochs x 4 steps
            miner.refresh()  # after fit: the final weights
            after = miner.mining_statistics
            assert after.pop("refresh") == 9 and last.pop("refresh") == 8
            assert after == pytest.approx(last)  # the last in-fit refresh saw the final weights
        return [to_numpy(w) for w in net.embedding_model.weights]

    for plain, mined in zip(train(False), train(True), strict=True):
        np.testing.assert_array_equal(plain, mined)


def test_hard_mode_fit_without_callback():
    """TF/PyTorch: the generator refreshes by itself; JAX: a clear error, never placeholders."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.data / 16.0).astype("float32")
    net = TripletNetwork(make_embedding_model())
    net.compile(optimizer="adam", loss=TripletLoss(margin=0.5))
    hard = TripletGenerator(x, digits.target, 16, steps_per_epoch=3, strategy="hard",
                            embedding_model=net, refresh_every=1, pool_size=100)
    if BACKEND == "jax":
        with pytest.raises(RuntimeError, match="mining_callback"):
            net.fit(hard, epochs=1, verbose=0)
    else:
        history = net.fit(hard, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        assert hard.mining_statistics["refresh"] >= 3


# --- TripletGenerator -------------------------------------------------------------------------


def labelled_data(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(6), [2, 3, 5, 7, 4, 9]), [10, 11]])  # 2 singletons
    x = rng.normal(size=(len(labels), 64)).astype("float32")
    return x, rng.permutation(labels)


def assert_valid(generator, labels, anchors, positives, negatives):
    assert len(anchors) == len(positives) == len(negatives) == generator.batch_size
    np.testing.assert_array_equal(labels[anchors], labels[positives])
    assert np.all(labels[anchors] != labels[negatives])
    assert np.all(anchors != positives)
    counts = {c: int(np.sum(labels == c)) for c in np.unique(labels)}
    assert all(counts[c] >= 2 for c in labels[anchors])  # no single-sample anchors


def fixed_projection(seed=0):
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(8, use_bias=False,
                           kernel_initializer=keras.initializers.RandomNormal(seed=seed)),
    ])


def test_random_triplets_valid_and_cover_every_anchor_once_per_epoch():
    x, y = labelled_data()
    generator = TripletGenerator(x, y, 5, seed=3)
    assert len(generator) == math.ceil(len(generator.anchor_indices) / 5)
    np.testing.assert_array_equal(generator.single_sample_classes, [10, 11])
    anchors = []
    for index in range(len(generator)):
        a, p, n = generator.triplet_indices(index)
        assert_valid(generator, y, a, p, n)
        anchors.append(a)
    anchors = np.concatenate(anchors)[:len(generator.anchor_indices)]
    np.testing.assert_array_equal(np.sort(anchors), generator.anchor_indices)
    (xa, xp, xn), targets = generator[0]
    a, p, n = generator.triplet_indices(0)
    np.testing.assert_array_equal(xa, x[a])
    np.testing.assert_array_equal(xp, x[p])
    np.testing.assert_array_equal(xn, x[n])
    np.testing.assert_array_equal(targets, np.zeros(5, "float32"))


def test_random_triplets_reproducible_and_seed_dependent():
    x, y = labelled_data()

    def epoch_of(generator):
        batches = [np.stack(generator.triplet_indices(i)) for i in range(len(generator))]
        return np.concatenate(batches, axis=1)

    first = epoch_of(TripletGenerator(x, y, 4, seed=5))
    np.testing.assert_array_equal(first, epoch_of(TripletGenerator(x, y, 4, seed=5)))
    assert not np.array_equal(first, epoch_of(TripletGenerator(x, y, 4, seed=6)))
    generator = TripletGenerator(x, y, 4, seed=5)
    generator.on_epoch_end()
    assert generator.epoch == 1
    assert not np.array_equal(first, epoch_of(generator))  # a new epoch, new triplets


@pytest.mark.parametrize("semi_hard", [False, True], ids=["hard", "semi-hard"])
def test_hard_triplets_valid_and_reproducible(semi_hard):
    x, y = labelled_data()
    model = fixed_projection()

    def batches():
        generator = TripletGenerator(x, y, 8, strategy="hard", embedding_model=model,
                                     refresh_every=3, pool_size=20, semi_hard=semi_hard, seed=2)
        out = []
        for index in range(len(generator)):
            a, p, n = generator.triplet_indices(index)
            assert_valid(generator, y, a, p, n)
            out.append(np.stack([a, p, n]))
        return out, generator

    first, generator = batches()
    second, _ = batches()
    for one, two in zip(first, second, strict=True):
        np.testing.assert_array_equal(one, two)
    assert generator.mining_statistics["refresh"] == (len(generator) - 1) // 3


@pytest.mark.parametrize("distance", MINING_DISTANCES, ids=MINING_DISTANCES)
def test_hard_mining_picks_harder_triplets_than_random(distance):
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = (digits.data / 16.0).astype("float32")[:600], digits.target[:600]
    model = fixed_projection(seed=4)
    embeddings = to_numpy(model(x))

    def mean_gap(generator, steps=5):
        gaps = []
        for index in range(steps):
            a, p, n = generator.triplet_indices(index)
            gaps += [oracle_distance(embeddings[i], embeddings[j], distance)
                     - oracle_distance(embeddings[i], embeddings[k], distance)
                     for i, j, k in zip(a, p, n, strict=True)]
        return float(np.mean(gaps))

    random_gap = mean_gap(TripletGenerator(x, y, 32, seed=0, distance=distance))
    hard = TripletGenerator(x, y, 32, strategy="hard", embedding_model=model, pool_size=300,
                            refresh_every=100, seed=0, distance=distance)
    hard_gap = mean_gap(hard)
    semi = TripletGenerator(x, y, 32, strategy="hard", embedding_model=model, pool_size=300,
                            refresh_every=100, seed=0, distance=distance, semi_hard=True)
    semi_gap = mean_gap(semi)
    assert hard_gap > random_gap
    assert hard_gap >= semi_gap  # semi-hard negatives are never nearer than the hardest ones
    statistics = hard.mining_statistics
    pool_gap = statistics["mean_positive_distance"] - statistics["mean_negative_distance"]
    assert pool_gap > random_gap
    assert semi.mining_statistics["mean_negative_distance"] >= \
        statistics["mean_negative_distance"]


def test_mining_statistics_and_semi_hard_rule():
    x, y = labelled_data(1)
    model = fixed_projection(1)
    embeddings = to_numpy(model(x))
    generator = TripletGenerator(x, y, 16, strategy="hard", embedding_model=model,
                                 pool_size=len(y), refresh_every=50, semi_hard=True, margin=0.3)
    assert generator.mining_statistics is None
    a, p, n = generator.triplet_indices(0)
    distances = pool_distances(embeddings, "L2")
    for anchor, positive, negative in zip(a, p, n, strict=True):
        same = y == y[anchor]
        hardest_positive = np.max(np.where(same & (np.arange(len(y)) != anchor), distances[anchor],
                                           -np.inf))
        np.testing.assert_allclose(distances[anchor, positive], hardest_positive)
        negatives = distances[anchor][~same]
        farther = negatives[negatives > hardest_positive]
        expected = farther.min() if farther.size else negatives.min()
        np.testing.assert_allclose(distances[anchor, negative], expected)
    statistics = generator.mining_statistics
    assert statistics["pool_size"] == len(y)
    assert statistics["num_anchors"] == np.sum(np.isin(y, [c for c in np.unique(y)
                                                          if np.sum(y == c) >= 2]))
    assert 0.0 <= statistics["fraction_active"] <= 1.0


@pytest.mark.parametrize("distance", MINING_DISTANCES, ids=MINING_DISTANCES)
def test_pool_distances_match_oracle(distance):
    points = np.random.default_rng(2).normal(size=(7, 5))
    expected = np.array([[0.0 if i == j else oracle_distance(points[i], points[j], distance)
                          for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(pool_distances(points, distance), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "error", "match"),
    [(np.zeros((4, 2)), [0, 0, 0, 0], {}, ValueError, "at least 2 classes"),
     (np.zeros((3, 2)), [0, 1, 2], {}, ValueError, "2 or more samples"),
     (np.zeros((3, 2)), [0, 0, 1, 1], {}, ValueError, "same number of samples"),
     (np.zeros((4, 2)), [0, 0, 1, 1], {"strategy": "hardest"}, ValueError, "strategy"),
     (np.zeros((4, 2)), [0, 0, 1, 1], {"pool_size": 2}, ValueError, "pool_size"),
     (np.zeros((4, 2)), [0, 0, 1, 1], {"margin": -1.0}, ValueError, "margin"),
     (np.zeros((4, 2)), [0, 0, 1, 1], {"semi_hard": 1}, TypeError, "semi_hard"),
     (np.zeros((4, 2)), [0, 0, 1, 1], {"strategy": "hard", "use_multiprocessing": True},
      ValueError, "use_multiprocessing")],
    ids=["one-class", "all-singletons", "length-mismatch", "bad-strategy", "small-pool",
         "negative-margin", "non-bool-semi-hard", "hard-multiprocessing"])
def test_generator_rejects_bad_arguments(x, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        TripletGenerator(x, y, 2, **kwargs)


def test_hard_mode_needs_a_model():
    x, y = labelled_data()
    generator = TripletGenerator(x, y, 4, strategy="hard")
    with pytest.raises(RuntimeError, match="set_embedding_model"):
        generator[0]
    with pytest.raises(TypeError, match="predict"):
        generator.set_embedding_model(object())
    generator.set_embedding_model(fixed_projection())
    (anchors, _, _), _ = generator[0]
    assert anchors.shape == (4, 64)
    with pytest.raises(ValueError, match="strategy='hard'"):
        TripletGenerator(x, y, 4).mining_callback()


def test_mining_callback_drives_the_refreshes():
    """While a HardMiningCallback is attached (``driven_by_callback``), the generator refreshes
    only when the callback says so; before and after, every ``refresh_every`` served batches."""
    x, y = labelled_data()
    model = fixed_projection()
    generator = TripletGenerator(x, y, 4, strategy="hard", embedding_model=model,
                                 refresh_every=1, pool_size=len(y))
    assert not generator.driven_by_callback and not generator.has_pool
    callback = generator.mining_callback()
    callback.set_model(model)
    callback.on_train_begin()
    assert generator.driven_by_callback and generator.has_pool
    assert generator.mining_statistics["refresh"] == 0
    generator[0], generator[1]  # served batches: no refresh of their own
    assert generator.mining_statistics["refresh"] == 0
    callback.on_train_batch_end(0)  # refresh_every=1 step
    assert generator.mining_statistics["refresh"] == 1
    callback.on_train_end()
    assert not generator.driven_by_callback
    generator[2], generator[3]  # the generator refreshes by itself again
    assert generator.mining_statistics["refresh"] == 3
    generator.set_embedding_model(model)
    assert not generator.has_pool


def test_from_image_folder(tmp_path):
    image = pytest.importorskip("PIL.Image")
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        (tmp_path / name).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    generator = TripletGenerator.from_image_folder(tmp_path, 4, test_fraction=0.4, seed=1)
    assert generator.dataset.class_names == ("cat", "dog", "fox")
    assert generator.num_samples == len(generator.dataset.y_train) == 9
    (anchors, positives, negatives), _ = generator[0]
    assert anchors.shape == positives.shape == negatives.shape == (4, 6, 5, 3)
    assert_valid(generator, generator.dataset.y_train, *generator.triplet_indices(0))
    with pytest.raises(ValueError, match="split"):
        TripletGenerator.from_image_folder(tmp_path, 4, split="validation")
