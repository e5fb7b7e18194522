"""Retrieval metrics (P@1, R@k, R-precision, MAP@R), clustering scores and the one-stop evaluation.

Hand-computed cases carry their derivation; random cases compare with loop oracles written from
the definitions of Musgrave et al. (2020), "A Metric Learning Reality Check".
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np
import pytest

from tripletlab.distances import DISTANCES
from tripletlab.evaluation import (
    Neighbors,
    clustering_scores,
    evaluate_embeddings,
    format_metrics_table,
    map_at_r,
    nearest_neighbors,
    precision_at_1,
    r_precision,
    recall_at_k,
    save_metrics,
)
from tripletlab.evaluation import metrics as metrics_module

# ----------------------------------------------------------------------------------------------
# Hand-computed cases
# ----------------------------------------------------------------------------------------------

# Leave-one-out: labels [0, 0, 0, 1, 1]; each row lists the other four items, nearest first.
LOO_LABELS = np.array([0, 0, 0, 1, 1])
LOO_NEIGHBORS = Neighbors(
    indices=np.array([[3, 1, 4, 2], [0, 2, 3, 4], [4, 3, 0, 1], [4, 0, 1, 2], [0, 1, 3, 2]]),
    distances=np.tile(np.arange(1, 5, dtype=np.float32), (5, 1)),
)
# Query -> reference: reference labels [0, 1, 1, 2, 0, 1]; queries of class 1, 0, 2.
REF_LABELS = np.array([0, 1, 1, 2, 0, 1])
QUERY_LABELS = np.array([1, 0, 2])
QUERY_NEIGHBORS = Neighbors(
    indices=np.array([[1, 0, 2], [3, 4, 0], [4, 3, 5]]),
    distances=np.tile(np.arange(1, 4, dtype=np.float32), (3, 1)),
)


def test_precision_at_1_by_hand():
    """Leave-one-out: the first neighbours are 3, 0, 4, 4, 0 with labels 1, 0, 1, 1, 0 against
    query labels 0, 0, 0, 1, 1: rel(1) = 0, 1, 0, 1, 0, so P@1 = 2/5 = 0.4.

    Query -> reference: first neighbours 1, 3, 4 have labels 1, 2, 0 against 1, 0, 2:
    rel(1) = 1, 0, 0, so P@1 = 1/3.
    """
    assert precision_at_1(LOO_LABELS, LOO_NEIGHBORS) == pytest.approx(0.4)
    assert precision_at_1(QUERY_LABELS, QUERY_NEIGHBORS,
                          reference_labels=REF_LABELS) == pytest.approx(1 / 3)


@pytest.mark.parametrize("k, expected", [(1, 0.4), (2, 0.6), (3, 1.0), (4, 1.0)],
                         ids=["k1", "k2", "k3", "k4"])
def test_recall_at_k_leave_one_out_by_hand(k, expected):
    """Relevance rows (leave-one-out): q0 [0,1,0,1], q1 [1,1,0,0], q2 [0,0,1,1], q3 [1,0,0,0],
    q4 [0,0,1,0]. The first relevant position is 2, 1, 3, 1, 3, so R@1 = 2/5, R@2 = 3/5 and
    R@3 = R@4 = 5/5.
    """
    assert recall_at_k(LOO_LABELS, LOO_NEIGHBORS, k=k) == pytest.approx(expected)


def test_recall_at_k_query_reference_by_hand():
    """Relevance rows: q0 labels [1,0,1] -> [1,0,1]; q1 labels [2,0,0] -> [0,1,1]; q2 labels
    [0,2,1] -> [0,1,0]. First relevant positions 1, 2, 2: R@1 = 1/3, R@2 = R@3 = 1.
    """
    assert recall_at_k(QUERY_LABELS, QUERY_NEIGHBORS, k=1,
                       reference_labels=REF_LABELS) == pytest.approx(1 / 3)
    assert recall_at_k(QUERY_LABELS, QUERY_NEIGHBORS, k=2, reference_labels=REF_LABELS) == 1.0


def test_r_precision_by_hand():
    """Leave-one-out: R = 2, 2, 2, 1, 1 (class sizes 3, 3, 3, 2, 2 minus the query).
    Hits among the first R: q0 [0,1] -> 1/2, q1 [1,1] -> 1, q2 [0,0] -> 0, q3 [1] -> 1,
    q4 [0] -> 0. RP = (0.5 + 1 + 0 + 1 + 0) / 5 = 0.5.

    Query -> reference: R = 3 (class 1), 2 (class 0), 1 (class 2). q0 [1,0,1] -> 2/3,
    q1 [0,1] -> 1/2, q2 [0] -> 0. RP = (2/3 + 1/2 + 0) / 3 = 7/18.
    """
    assert r_precision(LOO_LABELS, LOO_NEIGHBORS) == pytest.approx(0.5)
    assert r_precision(QUERY_LABELS, QUERY_NEIGHBORS,
                       reference_labels=REF_LABELS) == pytest.approx(7 / 18)


def test_map_at_r_by_hand():
    """Leave-one-out (R = 2, 2, 2, 1, 1): q0 rel [0,1] -> (0 + P(2)=1/2) / 2 = 1/4;
    q1 [1,1] -> (1 + 1) / 2 = 1; q2 [0,0] -> 0; q3 [1] -> 1; q4 [0] -> 0.
    MAP@R = (1/4 + 1 + 0 + 1 + 0) / 5 = 0.45 (R-precision gives 0.5: MAP@R also rewards order).

    Query -> reference (R = 3, 2, 1): q0 rel [1,0,1] -> (P(1)=1 + P(3)=2/3) / 3 = 5/9;
    q1 [0,1] -> (P(2)=1/2) / 2 = 1/4; q2 [0] -> 0. MAP@R = (5/9 + 1/4) / 3 = 29/108.
    """
    assert map_at_r(LOO_LABELS, LOO_NEIGHBORS) == pytest.approx(0.45)
    assert map_at_r(QUERY_LABELS, QUERY_NEIGHBORS,
                    reference_labels=REF_LABELS) == pytest.approx(29 / 108)


def test_too_few_neighbours_warn_and_give_lower_bounds():
    """The query -> reference case cut to k = 2 while q0 needs R = 3 (a warning, like
    pytorch-metric-learning's). The missing third neighbour counts as wrong:
    RP: q0 [1,0] -> 1/3, q1 1/2, q2 0 -> (1/3 + 1/2) / 3 = 5/18 (exact value 7/18).
    MAP@R: q0 P(1)=1 -> 1/3, q1 1/4, q2 0 -> (1/3 + 1/4) / 3 = 7/36 (exact 29/108).
    """
    cut = Neighbors(QUERY_NEIGHBORS.indices[:, :2], QUERY_NEIGHBORS.distances[:, :2])
    with pytest.warns(UserWarning, match=r"R = 3, but k = 2"):
        assert r_precision(QUERY_LABELS, cut, reference_labels=REF_LABELS) == pytest.approx(
            5 / 18)
    with pytest.warns(UserWarning, match="lower bounds"):
        assert map_at_r(QUERY_LABELS, cut, reference_labels=REF_LABELS) == pytest.approx(7 / 36)


def test_queries_without_a_match_are_left_out_with_a_warning():
    """A fourth query of class 3, absent from the references (R = 0), cannot be answered: it is
    left out, so every value equals the three-query case (P@1 = 1/3, MAP@R = 29/108).
    """
    labels = np.append(QUERY_LABELS, 3)
    neighbors = Neighbors(np.vstack([QUERY_NEIGHBORS.indices, [[0, 1, 2]]]),
                          np.vstack([QUERY_NEIGHBORS.distances, [[1, 2, 3]]]))
    with pytest.warns(UserWarning, match="1 of 4 queries cannot be answered"):
        assert precision_at_1(labels, neighbors,
                              reference_labels=REF_LABELS) == pytest.approx(1 / 3)
    with pytest.warns(UserWarning, match="no reference has their class"):
        assert map_at_r(labels, neighbors, reference_labels=REF_LABELS) == pytest.approx(29 / 108)


def test_singleton_class_in_leave_one_out_is_left_out():
    """Labels [0, 0, 1]: query 2 is alone in its class (R = 0) and is left out.
    Queries 0 and 1 find each other first: P@1 = 2/2 = 1.
    """
    neighbors = Neighbors(np.array([[1, 2], [0, 2], [0, 1]]), np.ones((3, 2)))
    with pytest.warns(UserWarning, match="single example"):
        assert precision_at_1(np.array([0, 0, 1]), neighbors) == 1.0


def test_no_answerable_query_gives_nan():
    neighbors = Neighbors(np.array([[0], [1]]), np.ones((2, 1)))
    with pytest.warns(UserWarning, match="every metric is NaN"):
        assert math.isnan(precision_at_1([5, 6], neighbors, reference_labels=[0, 1]))


def test_string_and_float_encoded_labels():
    """Same case as the hand-computed leave-one-out one, labels spelled differently."""
    as_strings = np.array(["cat", "cat", "cat", "dog", "dog"])
    as_floats = LOO_LABELS.astype(np.float32)[:, None]  # what Keras hands over: [N, 1] floats
    assert map_at_r(as_strings, LOO_NEIGHBORS) == pytest.approx(0.45)
    assert map_at_r(as_floats, LOO_NEIGHBORS) == pytest.approx(0.45)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: precision_at_1(LOO_LABELS[:4], LOO_NEIGHBORS), ValueError, "5 entries"),
        (lambda: precision_at_1(np.eye(5), LOO_NEIGHBORS), ValueError, "one-hot"),
        (lambda: precision_at_1(LOO_LABELS + 0.5, LOO_NEIGHBORS), ValueError, "integer"),
        (lambda: precision_at_1(LOO_LABELS.astype(complex), LOO_NEIGHBORS), TypeError, "dtype"),
        (lambda: precision_at_1(LOO_LABELS, (1, 2)), TypeError, "Neighbors"),
        (lambda: recall_at_k(LOO_LABELS, LOO_NEIGHBORS, k=5), ValueError, "k` <= 4"),
        (lambda: recall_at_k(LOO_LABELS, LOO_NEIGHBORS, k=0), ValueError, "k"),
        (lambda: precision_at_1(QUERY_LABELS, QUERY_NEIGHBORS, reference_labels=[0, 1]),
         ValueError, r"\[0, 2\)"),
        (lambda: precision_at_1(QUERY_LABELS, QUERY_NEIGHBORS,
                                reference_labels=REF_LABELS.astype(str)), TypeError, "same kind"),
        (lambda: precision_at_1(QUERY_LABELS,
                                Neighbors(np.array([[0], [1], [2]]), np.ones((3, 1)))),
         ValueError, "exclude_self=True"),
    ],
    ids=["length", "one-hot", "non-integer-floats", "complex", "not-neighbors", "k-too-big",
         "k-zero", "index-out-of-range", "mixed-label-kinds", "self-in-leave-one-out"],
)
def test_bad_metric_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Loop oracle on random data, both protocols
# ----------------------------------------------------------------------------------------------


def oracle_distance(query, reference, distance):
    query, reference = query.astype(np.float64), reference.astype(np.float64)
    if distance in ("angular", "normalized-L2"):
        query, reference = query / np.linalg.norm(query), reference / np.linalg.norm(reference)
    if distance == "angular":
        return 1.0 - float(query @ reference)
    squared = float(np.sum((query - reference) ** 2))
    return squared if distance == "squared-L2" else math.sqrt(squared)


def oracle_metrics(queries, query_labels, references, reference_labels, distance, recall_ks,
                   leave_one_out):
    """Every metric from its definition, with loops; returns (metrics, smallest distance gap)."""
    totals = {"precision_at_1": 0.0, "r_precision": 0.0, "map_at_r": 0.0,
              **{f"recall_at_{k}": 0.0 for k in recall_ks}}
    answered, smallest_gap = 0, math.inf
    for q, query in enumerate(queries):
        candidates = [j for j in range(len(references)) if not (leave_one_out and j == q)]
        dist = {j: oracle_distance(query, references[j], distance) for j in candidates}
        order = sorted(candidates, key=dist.get)
        ordered = [dist[j] for j in order]
        smallest_gap = min(smallest_gap, float(np.min(np.diff(ordered))))
        relevant = [int(reference_labels[j] == query_labels[q]) for j in order]
        r = sum(int(reference_labels[j] == query_labels[q]) for j in candidates)
        if r == 0:
            continue
        answered += 1
        totals["precision_at_1"] += relevant[0]
        for k in recall_ks:
            totals[f"recall_at_{k}"] += max(relevant[:k])
        totals["r_precision"] += sum(relevant[:r]) / r
        average_precision = 0.0
        for i in range(1, r + 1):
            if relevant[i - 1]:
                average_precision += sum(relevant[:i]) / i
        totals["map_at_r"] += average_precision / r
    return {name: value / answered for name, value in totals.items()}, smallest_gap


def clustered_points(rng, rows, classes, dim=5):
    labels = rng.integers(0, classes, size=rows)
    centers = rng.normal(scale=1.5, size=(classes, dim))
    points = centers[labels] + rng.normal(size=(rows, dim))
    return points.astype(np.float32), labels


def random_case(rng, protocol):
    if protocol == "leave-one-out":
        queries, query_labels = clustered_points(rng, 30, 4)
        return queries, query_labels, None, None
    queries, query_labels = clustered_points(rng, 25, 4)
    references, reference_labels = clustered_points(rng, 40, 4)
    # References near the queries, so that the metrics are not all small.
    references[: len(queries)] = queries + rng.normal(size=queries.shape).astype(np.float32)
    reference_labels[: len(queries)] = query_labels
    return queries, query_labels, references, reference_labels


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCES)
@pytest.mark.parametrize("protocol", ["leave-one-out", "query-reference"])
def test_evaluate_embeddings_matches_loop_oracle(distance, protocol):
    recall_ks = (1, 2, 4, 8)
    rng = np.random.default_rng(DISTANCES.index(distance))
    # Draw until no two distances of a query are within 1e-5 (float32 could swap them).
    for _ in range(20):
        queries, query_labels, references, reference_labels = random_case(rng, protocol)
        leave_one_out = references is None
        expected, gap = oracle_metrics(
            queries, query_labels, queries if leave_one_out else references,
            query_labels if leave_one_out else reference_labels, distance, recall_ks,
            leave_one_out)
        if gap > 1e-5:
            break
    assert gap > 1e-5

    got = evaluate_embeddings(queries, query_labels, references, reference_labels,
                              distance=distance, recall_ks=recall_ks, clustering=False,
                              chunk_size=7)

    assert list(got) == ["precision_at_1", "recall_at_1", "recall_at_2", "recall_at_4",
                         "recall_at_8", "r_precision", "map_at_r"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    assert all(isinstance(value, float) for value in got.values())

    # The per-metric functions on a full search agree too.
    k = (len(queries) - 1) if leave_one_out else len(references)
    neighbors = nearest_neighbors(queries, references, k, distance=distance,
                                  exclude_self=leave_one_out)
    assert precision_at_1(query_labels, neighbors, reference_labels=reference_labels) == (
        pytest.approx(expected["precision_at_1"]))
    assert recall_at_k(query_labels, neighbors, k=4, reference_labels=reference_labels) == (
        pytest.approx(expected["recall_at_4"]))
    assert r_precision(query_labels, neighbors, reference_labels=reference_labels) == (
        pytest.approx(expected["r_precision"]))
    assert map_at_r(query_labels, neighbors, reference_labels=reference_labels) == (
        pytest.approx(expected["map_at_r"]))


def test_small_blocks_give_the_same_result(monkeypatch):
    """Tiny search and scoring blocks (one query at a time) change nothing."""
    rng = np.random.default_rng(11)
    x, y = clustered_points(rng, 40, 3)
    whole = evaluate_embeddings(x, y, clustering=False)
    monkeypatch.setattr(metrics_module, "_SEARCH_ELEMENTS", 1)
    monkeypatch.setattr(metrics_module, "_BLOCK_ELEMENTS", 1)
    assert evaluate_embeddings(x, y, clustering=False) == pytest.approx(whole)


def test_max_k_caps_the_search_with_a_warning():
    rng = np.random.default_rng(5)
    x, y = clustered_points(rng, 40, 2)  # classes of about 20: R up to about 20
    exact = evaluate_embeddings(x, y, clustering=False)
    with pytest.warns(UserWarning, match="lower bounds"):
        capped = evaluate_embeddings(x, y, clustering=False, max_k=8)
    assert capped["recall_at_8"] == exact["recall_at_8"]
    assert capped["map_at_r"] <= exact["map_at_r"]


def test_recall_k_beyond_the_references_warns():
    x = np.array([[0.0], [0.1], [5.0], [5.3]], dtype=np.float32)
    with pytest.warns(UserWarning, match="3 references available"):
        metrics = evaluate_embeddings(x, [0, 0, 1, 1], recall_ks=(1, 8), clustering=False)
    assert metrics["recall_at_8"] == 1.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"reference_embeddings": np.zeros((3, 2), np.float32)}, ValueError, "both given"),
        ({"distance": "cosine"}, ValueError, "distance"),
        ({"recall_ks": ()}, ValueError, "at least one"),
        ({"recall_ks": (1, 0)}, ValueError, "recall_ks"),
        ({"recall_ks": 4}, TypeError, "sequence"),
        ({"max_k": 2}, ValueError, "max_k"),
        ({"clustering": "yes"}, TypeError, "clustering"),
    ],
    ids=["reference-without-labels", "distance", "no-recall-k", "recall-k-zero",
         "recall-ks-int", "max-k-below-recall-k", "clustering-not-bool"],
)
def test_bad_evaluate_inputs(kwargs, error, match):
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    with pytest.raises(error, match=match):
        evaluate_embeddings(x, [0, 0, 1, 1], **kwargs)


@pytest.mark.parametrize("module", ["faiss", "sklearn.cluster"])
def test_missing_dependency_fails_before_any_work(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the ImportError comes first, before any warning
        with pytest.raises(ImportError, match=r"tripletlab\[eval\]"):
            evaluate_embeddings(x, [0, 0, 1, 1], recall_ks=(1, 8))


# ----------------------------------------------------------------------------------------------
# Clustering
# ----------------------------------------------------------------------------------------------


def test_clustering_scores_separated_blobs_are_perfect():
    """Three tight, far-apart blobs: k-means with 3 clusters recovers them, NMI = AMI = 1."""
    rng = np.random.default_rng(0)
    labels = np.repeat([2, 0, 1], 10)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    x = centers[labels] + rng.normal(scale=0.1, size=(30, 2))
    assert clustering_scores(x, labels, 0) == {"nmi": pytest.approx(1.0),
                                               "ami": pytest.approx(1.0)}


def test_clustering_scores_match_sklearn():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    rng = np.random.default_rng(1)
    x, labels = clustered_points(rng, 60, 4)
    clusters = KMeans(n_clusters=4, n_init=1, random_state=3).fit_predict(x)
    scores = clustering_scores(x, labels, seed=3)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
    assert scores["ami"] == pytest.approx(adjusted_mutual_info_score(labels, clusters))
    assert 0.0 < scores["nmi"] < 1.0


def test_clustering_scores_normalize_uses_directions():
    """Two directions at many scales: raw k-means splits by scale, normalised rows by direction."""
    scales = np.geomspace(0.1, 100.0, 12)
    x = np.concatenate([np.outer(scales, [1.0, 0.05]), np.outer(scales, [0.05, 1.0])])
    labels = np.repeat([0, 1], 12)
    assert clustering_scores(x, labels, normalize=True)["nmi"] == pytest.approx(1.0)


def test_evaluate_embeddings_includes_clustering():
    rng = np.random.default_rng(2)
    x, y = clustered_points(rng, 30, 3)
    metrics = evaluate_embeddings(x, y, seed=0)
    assert metrics["nmi"] == pytest.approx(clustering_scores(x, y, 0)["nmi"])
    assert {"nmi", "ami"} <= set(metrics)


def test_missing_sklearn_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(ImportError, match=r"tripletlab\[eval\]"):
        clustering_scores(np.zeros((4, 2), np.float32), [0, 0, 1, 1])


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def test_format_metrics_table():
    table = format_metrics_table({"precision_at_1": 0.91234, "map_at_r": np.float32(0.5),
                                  "num_queries": 10})
    assert table.splitlines() == [
        "metric          value",
        "--------------  ------",
        "precision_at_1  0.9123",
        "map_at_r        0.5000",
        "num_queries         10",
    ]
    with pytest.raises(TypeError, match="mapping"):
        format_metrics_table([("a", 1.0)])


def test_save_metrics_writes_json_atomically(tmp_path):
    path = save_metrics(tmp_path / "run" / "metrics.json",
                        {"map_at_r": np.float64(0.25), "nmi": math.nan, "k": np.int64(3)})
    assert json.loads(path.read_text()) == {"map_at_r": 0.25, "nmi": None, "k": 3}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary left


def test_no_warning_in_the_ordinary_case():
    rng = np.random.default_rng(8)
    x, y = clustered_points(rng, 30, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_embeddings(x, y, clustering=False)
