"""Mining statistics against the oracle, and as Keras metrics."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import to_numpy


@pytest.mark.parametrize("distance", ["L2", "angular"])
def test_mining_statistics_match_oracle(distance):
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4])  # classes 3 and 4 have no positives
    x = rng.normal(size=(10, 4))
    d = oracle.distance_matrix(x, distance)
    margin = 0.3
    stats = tl.metrics.mining_statistics(labels, x.astype("float32"), margin, distance)
    _, fraction, _ = oracle.batch_all(labels, d, margin)
    hardest_positive = [max(d[a, p] for p in range(10) if p != a and labels[p] == labels[a])
                        for a in range(10) if np.sum(labels == labels[a]) > 1]
    hardest_negative = [min(d[a, n] for n in range(10) if labels[n] != labels[a])
                        for a in range(10)]
    np.testing.assert_allclose(to_numpy(stats["fraction_positive_triplets"]), fraction, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(stats["hardest_positive_distance"]),
                               np.mean(hardest_positive), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(stats["hardest_negative_distance"]),
                               np.mean(hardest_negative), rtol=1e-5)


def test_metric_averages_batches_and_serialises():
    import keras

    rng = np.random.default_rng(1)
    metric = tl.metrics.HardestNegativeDistance(distance="L2")
    values = []
    for _ in range(3):
        labels, x = rng.integers(0, 3, 8), rng.normal(size=(8, 4)).astype("float32")
        metric.update_state(labels, x)
        statistics = tl.metrics.mining_statistics(labels, x)
        values.append(to_numpy(statistics["hardest_negative_distance"]))
    np.testing.assert_allclose(to_numpy(metric.result()), np.mean(values), rtol=1e-6)
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert restored.get_config() == metric.get_config()
