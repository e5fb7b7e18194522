"""NumPy distances (tripletlab.numpy_distances), the one definition that the offline mining,
the k-NN search and the clustering scores share: checked against the direct formulas."""

from __future__ import annotations

import numpy as np
import pytest

from tripletlab.numpy_distances import (
    DISTANCES,
    SQUARED_NORM_FLOOR,
    distances_from_scores,
    normalize_rows,
    pairwise_distances,
)


def direct(u, v, distance):
    """One distance straight from its definition (float64, no Gram matrix)."""
    difference = u - v
    if distance == "L2":
        return np.sqrt(np.sum(difference**2))
    if distance == "squared-L2":
        return np.sum(difference**2)
    if distance == "mean-squared":
        return np.mean(difference**2)
    cosine = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    if distance == "angular":
        return 1.0 - cosine
    return np.linalg.norm(u / np.linalg.norm(u) - v / np.linalg.norm(v))  # normalized-L2


def points(seed=0):
    rng = np.random.default_rng(seed)
    # rows of very different lengths, and two rows of the same direction
    x = rng.normal(size=(9, 6)) * rng.choice([1e-3, 1.0, 50.0], size=(9, 1))
    x[8] = 3.0 * x[2]
    return x


@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_match_the_direct_formula(distance):
    x = points()
    expected = np.array([[0.0 if i == j else direct(x[i], x[j], distance)
                          for j in range(len(x))] for i in range(len(x))])
    result = pairwise_distances(x, distance)
    assert result.dtype == np.float64 and result.shape == (9, 9)
    # the cosine-based distances lose half the digits near 0: sqrt(2 - 2c), c = 1 - eps
    atol = 1e-7 if distance == "normalized-L2" else 1e-12 * np.max(expected)
    np.testing.assert_allclose(result, expected, rtol=1e-9, atol=atol)
    np.testing.assert_array_equal(np.diag(result), 0.0)
    np.testing.assert_array_equal(result, result.T)
    if distance in ("angular", "normalized-L2"):
        assert result[2, 8] == pytest.approx(0.0, abs=1e-7)  # same direction


@pytest.mark.parametrize("distance", DISTANCES[:4])
def test_distances_from_scores_is_the_conversion_of_pairwise_distances(distance):
    x = points(1)
    if distance in ("angular", "normalized-L2"):
        rows = normalize_rows(x)
        scores = rows @ rows.T
    else:
        squared_norms = np.sum(x**2, axis=1)
        scores = squared_norms[:, None] + squared_norms[None, :] - 2.0 * x @ x.T
    converted = distances_from_scores(scores, distance)
    np.fill_diagonal(converted, 0.0)
    np.testing.assert_allclose(converted, pairwise_distances(x, distance), rtol=1e-12,
                               atol=1e-12)
    # rounding past the valid range gives 0, never NaN
    assert distances_from_scores(np.array([-1e-9, 1.0 + 1e-9]), distance).min() == 0.0


def test_normalize_rows_keeps_dtype_and_floors_short_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [3e-7, 4e-7]], dtype=np.float32)
    rows = normalize_rows(x)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(rows[1], [0.0, 0.0])  # a zero row stays zero
    # a row shorter than sqrt(SQUARED_NORM_FLOOR) is scaled by 1 / sqrt(floor), not normalised
    np.testing.assert_allclose(rows[2], x[2] / np.sqrt(SQUARED_NORM_FLOOR), rtol=1e-5)
    np.testing.assert_allclose(normalize_rows(x.astype(np.float64)), rows, rtol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="distance"):
        pairwise_distances(np.zeros((2, 2)), "euclidean")
    with pytest.raises(ValueError, match="2-D"):
        pairwise_distances(np.zeros(3))
    with pytest.raises(ValueError, match="distance"):
        distances_from_scores(np.zeros(2), "mean-squared")


def test_knn_and_mining_use_these_distances():
    """The k-NN search (faiss) and the mining pool give the distances computed here."""
    from tripletlab.data.triplets import MINING_DISTANCES, pool_distances

    assert MINING_DISTANCES == DISTANCES
    x = points(2)[:8].astype(np.float32)  # not the two rows of one direction (float32 cosine)
    for distance in DISTANCES:
        np.testing.assert_array_equal(pool_distances(x, distance), pairwise_distances(x, distance))
    pytest.importorskip("faiss")
    from tripletlab.evaluation.knn import nearest_neighbors

    for distance in DISTANCES[:4]:
        expected = pairwise_distances(x, distance)
        found = nearest_neighbors(x, None, 3, distance=distance, exclude_self=True)
        got = np.take_along_axis(expected, found.indices, axis=1)
        np.testing.assert_allclose(found.distances, got, rtol=1e-4, atol=1e-4 * expected.max())
