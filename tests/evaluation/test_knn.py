"""Exact kNN search (faiss) against a NumPy brute force, leave-one-out, and input checks."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tripletlab.distances import DISTANCES
from tripletlab.evaluation import Neighbors, iter_nearest_neighbors, nearest_neighbors


def brute_force_distance(query, reference, distance):
    """One distance in float64, from the definitions (no Gram-matrix trick)."""
    query, reference = query.astype(np.float64), reference.astype(np.float64)
    if distance in ("angular", "normalized-L2"):
        query = query / np.linalg.norm(query)
        reference = reference / np.linalg.norm(reference)
    if distance == "angular":
        return max(1.0 - float(query @ reference), 0.0)
    squared = float(np.sum((query - reference) ** 2))
    return squared if distance == "squared-L2" else np.sqrt(squared)


def brute_force_neighbors(queries, references, k, distance, exclude_self=False):
    """Loops over every (query, reference) pair; returns indices, distances and the sorted rows."""
    indices, distances, rows = [], [], []
    for q, query in enumerate(queries):
        row = np.array([brute_force_distance(query, reference, distance)
                        for reference in references])
        order = [int(j) for j in np.argsort(row, kind="stable") if not (exclude_self and j == q)]
        indices.append(order[:k])
        distances.append(row[order[:k]])
        rows.append(row[order])
    return np.array(indices), np.array(distances), rows


def random_points(rng, rows, dim):
    return rng.normal(size=(rows, dim)).astype(np.float32)


def assert_no_near_ties(sorted_rows, k, gap=1e-4):
    # The data must not have (near) ties among the first k + 1 neighbours, or the order is moot.
    for row in sorted_rows:
        assert np.min(np.diff(row[: k + 1])) > gap


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCES)
@pytest.mark.parametrize("chunk_size", [7, 1024], ids=["chunked", "one-chunk"])
@pytest.mark.parametrize("exclude_self", [False, True], ids=["query-ref", "leave-one-out"])
def test_matches_brute_force(distance, chunk_size, exclude_self):
    rng = np.random.default_rng(sum(map(ord, distance)) + chunk_size + exclude_self)
    queries = random_points(rng, 23, 6)
    references = queries if exclude_self else random_points(rng, 41, 6)
    k = 5
    expected_indices, expected_distances, rows = brute_force_neighbors(
        queries, references, k, distance, exclude_self)
    assert_no_near_ties(rows, k)

    neighbors = nearest_neighbors(queries, references, k, distance=distance,
                                  exclude_self=exclude_self, chunk_size=chunk_size)

    assert neighbors.indices.dtype == np.int64
    assert neighbors.distances.dtype == np.float32
    assert neighbors.indices.shape == (23, k)
    np.testing.assert_array_equal(neighbors.indices, expected_indices)
    np.testing.assert_allclose(neighbors.distances, expected_distances, rtol=1e-4, atol=2e-5)


def test_references_none_means_the_queries():
    rng = np.random.default_rng(0)
    x = random_points(rng, 15, 4)
    with_none = nearest_neighbors(x, None, 3, exclude_self=True)
    with_array = nearest_neighbors(x, x.copy(), 3, exclude_self=True)
    np.testing.assert_array_equal(with_none.indices, with_array.indices)


def test_exclude_self_with_duplicates_drops_the_query_not_the_first_column():
    """Rows 0, 1, 2 are the same point, row 3 and 4 are elsewhere.

    With k = 2, each of rows 0-2 must get the two *other* copies at distance 0 whatever order
    faiss returns the three tied copies in (dropping column 0 would keep the query itself when
    a twin comes first).
    """
    point = np.array([0.3, -1.2, 0.7], dtype=np.float32)
    x = np.stack([point, point, point, point + 5.0, point - 7.0])
    neighbors = nearest_neighbors(x, None, 2, exclude_self=True)
    for row in range(3):
        assert row not in neighbors.indices[row]
        assert set(neighbors.indices[row].tolist()) == {0, 1, 2} - {row}
        np.testing.assert_allclose(neighbors.distances[row], 0.0, atol=1e-3)
    assert set(neighbors.indices[3].tolist()) <= {0, 1, 2}  # the copies are nearer than row 4


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCES)
def test_exclude_self_with_more_duplicates_than_k(distance):
    """Six copies of one point and k = 1: faiss may return k + 1 = 2 twins without the query.

    Then the last column is dropped: the answer is still one twin (not the query) at distance 0.
    """
    rng = np.random.default_rng(3)
    point = rng.normal(size=4).astype(np.float32)
    x = np.concatenate([np.repeat(point[None], 6, axis=0), random_points(rng, 4, 4) + 3.0])
    neighbors = nearest_neighbors(x, None, 1, distance=distance, exclude_self=True)
    for row in range(6):
        assert neighbors.indices[row, 0] != row
        assert neighbors.indices[row, 0] < 6
        assert neighbors.distances[row, 0] == pytest.approx(0.0, abs=1e-3)


def test_iter_yields_chunks_in_order():
    rng = np.random.default_rng(1)
    x = random_points(rng, 10, 3)
    parts = list(iter_nearest_neighbors(x, x, 2, chunk_size=4))
    assert [start for start, _ in parts] == [0, 4, 8]
    assert [part.num_queries for _, part in parts] == [4, 4, 2]
    whole = nearest_neighbors(x, x, 2)
    np.testing.assert_array_equal(np.concatenate([p.indices for _, p in parts]), whole.indices)


def test_progress_bar(capsys):
    rng = np.random.default_rng(2)
    x = random_points(rng, 12, 3)
    nearest_neighbors(x, None, 1, exclude_self=True, chunk_size=5, progress=True)
    assert "12/12" in capsys.readouterr().out


def test_float64_and_float16_inputs_are_accepted():
    rng = np.random.default_rng(4)
    x = random_points(rng, 9, 3)
    reference = nearest_neighbors(x, None, 2, exclude_self=True)
    as_float64 = nearest_neighbors(x.astype(np.float64), None, 2, exclude_self=True)
    np.testing.assert_array_equal(reference.indices, as_float64.indices)
    assert nearest_neighbors(x.astype(np.float16), None, 2).indices.shape == (9, 2)


def test_missing_faiss_raises_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    x = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ImportError, match=r'pip install "tripletlab\[eval\]"'):
        nearest_neighbors(x, x, 1)


GOOD = np.arange(12, dtype=np.float32).reshape(4, 3)


@pytest.mark.parametrize(
    "queries, references, kwargs, error, match",
    [
        (GOOD, GOOD, {"k": 1, "distance": "cosine"}, ValueError, "distance"),
        (GOOD, GOOD, {"k": 1, "distance": "l2"}, ValueError, "Did you mean 'L2'"),
        (GOOD, GOOD, {"k": 0}, ValueError, "k"),
        (GOOD, GOOD, {"k": 5}, ValueError, r"k` <= 4"),
        (GOOD, None, {"k": 4, "exclude_self": True}, ValueError, r"k` <= 3"),
        (GOOD, GOOD, {"k": 1.5}, TypeError, "integer"),
        (GOOD[0], GOOD, {"k": 1}, ValueError, "queries.shape"),
        (GOOD[:0], GOOD, {"k": 1}, ValueError, "at least one row"),
        (GOOD.astype(np.int32), GOOD, {"k": 1}, TypeError, "floating"),
        (GOOD, GOOD[:, :2], {"k": 1}, ValueError, "same embedding dimension"),
        (np.where(GOOD > 5, np.nan, GOOD), GOOD, {"k": 1}, ValueError, "finite"),
        (GOOD, GOOD + 1, {"k": 1, "exclude_self": True}, ValueError, "themselves"),
        (GOOD, GOOD, {"k": 1, "chunk_size": 0}, ValueError, "chunk_size"),
        (GOOD, GOOD, {"k": 1, "exclude_self": 1}, TypeError, "exclude_self"),
        (GOOD, GOOD, {"k": 1, "progress": "yes"}, TypeError, "progress"),
    ],
    ids=["unknown-distance", "distance-case", "k-zero", "k-too-big", "k-too-big-loo",
         "k-float", "queries-1d", "queries-empty", "queries-int", "dim-mismatch", "nan",
         "exclude-self-other-refs", "chunk-zero", "exclude-self-not-bool", "progress-not-bool"],
)
def test_bad_inputs(queries, references, kwargs, error, match):
    kwargs = dict(kwargs)
    k = kwargs.pop("k")
    with pytest.raises(error, match=match):
        nearest_neighbors(queries, references, k, **kwargs)


@pytest.mark.parametrize(
    "indices, distances, error",
    [
        (np.zeros((2, 3), np.int64), np.zeros((2, 2)), ValueError),
        (np.zeros(3, np.int64), np.zeros(3), ValueError),
        (np.zeros((2, 3)), np.zeros((2, 3)), TypeError),
    ],
    ids=["shape-mismatch", "one-dim", "float-indices"],
)
def test_neighbors_validation(indices, distances, error):
    with pytest.raises(error):
        Neighbors(indices=indices, distances=distances)


def test_neighbors_is_frozen():
    neighbors = Neighbors(indices=np.zeros((1, 1), np.int32), distances=np.zeros((1, 1)))
    assert neighbors.indices.dtype == np.int64 and neighbors.distances.dtype == np.float32
    with pytest.raises(AttributeError):
        neighbors.indices = np.zeros((1, 1), np.int64)
