"""``tripletlab.retrieval.Index`` (docs/retrieval.md): the same neighbours as the evaluation's
exact search, measured recall for the approximate kinds, match rules against a brute force,
a saved folder that loads in a fresh interpreter, and strict errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from tripletlab.distances import DISTANCES
from tripletlab.errors import ConfigError, UserFileExistsError
from tripletlab.evaluation.knn import nearest_neighbors
from tripletlab.numpy_distances import paired_distances
from tripletlab.retrieval import Index, IndexSettings

pytest.importorskip("faiss")


def clustered(count, dimension=16, classes=10, noise=0.35, seed=0):
    """Points of ``classes`` Gaussian clusters (the same centres for every ``seed``):
    ``(x, labels)``."""
    centres = np.random.default_rng(1000).normal(size=(classes, dimension))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    return (centres[labels] + noise * rng.normal(size=(count, dimension))).astype("float32"), labels


@pytest.fixture(scope="module")
def gallery():
    return clustered(3000)


@pytest.mark.parametrize("distance", DISTANCES)
def test_flat_search_equals_the_evaluation_exact_search(gallery, distance):
    x, y = gallery
    queries = clustered(200, seed=1)[0]
    index = Index.build(x, y, distance=distance)
    found = index.search(queries, k=7)
    exact = nearest_neighbors(queries, x, 7, distance=distance)
    np.testing.assert_array_equal(found.items, exact.indices)
    np.testing.assert_allclose(found.distances, exact.distances, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(found.labels, y.astype(str)[exact.indices])
    assert index.recall is None


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("distance", ["L2", "angular"])
def test_approximate_kinds_measure_their_recall(gallery, kind, distance):
    x, y = gallery
    index = Index.build(x, y, distance=distance, settings=IndexSettings(kind=kind))
    assert index.recall["k"] == 10 and index.recall["sample"] == 1000
    assert 0.9 <= index.recall["recall"] <= 1.0
    queries = clustered(300, seed=2)[0]
    truth = nearest_neighbors(queries, x, 10, distance=distance).indices
    found = index.search(queries, k=10).items
    held_out = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert held_out >= 0.9
    if kind == "ivf":
        assert index.settings.lists == max(1, min(round(4 * np.sqrt(3000)), 3000 // 39))
        assert index.settings.probes == min(index.settings.lists,
                                            max(8, index.settings.lists // 32))


def test_places_an_approximate_index_left_empty_are_never_matched(gallery):
    """IVF scanning 1 of 60 cells finds fewer than k items for some queries: faiss marks those
    places -1; they carry no label and no name, at an infinite distance."""
    x, y = gallery
    index = Index.build(x, y, settings=IndexSettings(kind="ivf", lists=60, probes=1))
    queries = clustered(100, seed=11)[0]
    found = index.search(queries, k=150)
    missing = found.items < 0
    assert missing.any() and not missing.all()
    assert (found.labels[missing] == "").all() and (found.names[missing] == "").all()
    assert np.isinf(found.distances[missing]).all()
    assert np.isfinite(found.distances[~missing]).all()
    assert (found.labels[~missing] == y.astype(str)[found.items[~missing]]).all()
    matches = index.match(queries, rule="majority-vote", k=150, threshold=1e30)
    assert (matches.labels != "").all() and matches.matched.all()


def test_adding_in_parts_equals_building_at_once(gallery):
    x, y = gallery
    whole = Index.build(x, y)
    parts = Index.build(x[:1000], y[:1000])
    parts.add(x[1000:], y[1000:])
    queries = clustered(50, seed=3)[0]
    np.testing.assert_array_equal(parts.search(queries, 5).items, whole.search(queries, 5).items)
    assert parts.names[1000] == "1000" and len(parts) == 3000


def brute_force_match(labels, distances, rule, k, threshold):
    """Each query's match by a loop: ``(label or "", distance)``."""
    result = []
    for row_labels, row_distances in zip(labels, distances, strict=True):
        if rule == "nearest":
            label, distance = row_labels[0], row_distances[0]
        else:
            votes = Counter(row_labels[:k].tolist())
            best = max(votes.values())
            label = next(lab for lab in row_labels[:k] if votes[lab] == best)
            distance = row_distances[list(row_labels[:k]).index(label)]
        result.append((label if threshold is None or distance <= threshold else "", distance))
    return result


@pytest.mark.parametrize("rule", ["nearest", "majority-vote"])
@pytest.mark.parametrize("thresholded", [False, True], ids=["no-threshold", "threshold"])
def test_match_rules_equal_a_brute_force(rule, thresholded):
    x, y = clustered(2000, noise=1.2)
    queries = clustered(300, noise=1.2, seed=4)[0]
    index = Index.build(x, y)
    found = index.search(queries, 5)
    threshold = float(np.median(found.distances[:, 2])) if thresholded else None
    matches = index.match(queries, rule=rule, k=5, threshold=threshold)
    expected = brute_force_match(found.labels, found.distances, rule, 5, threshold)
    assert matches.labels.tolist() == [label for label, _ in expected]
    np.testing.assert_allclose(matches.distances, [d for _, d in expected])
    assert matches.matched.tolist() == [label != "" for label, _ in expected]
    if threshold is not None:
        assert 0 < matches.matched.sum() < len(queries)  # the threshold decides for some


@pytest.mark.parametrize("target", [0.95, 0.99])
def test_calibrated_precision_holds_on_held_out_queries(target):
    """docs/retrieval.md: a threshold calibrated for precision p reaches p on new queries of
    the same distribution, within sampling error (three binomial standard deviations of the
    difference of the two splits' precisions). A third of the queries' classes are not in the
    gallery (unknown items), which the threshold must turn away."""
    x, y = clustered(4000, classes=15, noise=0.6)
    known = y < 10
    index = Index.build(x[known], y[known])
    calibration_x, calibration_y = clustered(3000, classes=15, noise=0.6, seed=5)
    held_out_x, held_out_y = clustered(3000, classes=15, noise=0.6, seed=6)
    calibration = index.calibrate(calibration_x, calibration_y, target_precision=target)
    assert calibration.precision >= target
    matches = index.match(held_out_x)  # the calibrated threshold by default
    assert matches.threshold == calibration.threshold
    matched = matches.matched.sum()
    assert 0.5 * len(held_out_y) < matched < len(held_out_y)  # not trivially all or none
    precision = np.mean(matches.labels[matches.matched] == held_out_y[matches.matched].astype(str))
    allowance = 3 * np.sqrt(target * (1 - target)
                            * (1 / matched + 1 / calibration.counts["matched"]))
    assert precision >= target - allowance


def test_calibrated_far_holds_on_held_out_pairs():
    """The same for a false-accept rate, on disjoint (independent) held-out pairs. The
    calibration's pairs share their points, so it counts as many independent pairs as it has
    points to pair without sharing: half of them."""
    x, y = clustered(1000, noise=1.3)
    index = Index.build(x, y)
    calibration_x, calibration_y = clustered(3000, noise=1.3, seed=7)
    target = 0.05
    calibration = index.calibrate(calibration_x, calibration_y, target_far=target)
    assert calibration.far <= target
    held_x, held_y = clustered(20000, noise=1.3, seed=8)
    first, second = held_x[0::2], held_x[1::2]
    impostor = held_y[0::2] != held_y[1::2]
    distances = paired_distances(first[impostor], second[impostor], "L2")
    far = np.mean(distances <= calibration.threshold)
    allowance = 3 * np.sqrt(target * (1 - target) * (1 / impostor.sum() + 2 / 3000))
    assert abs(far - target) <= allowance


def test_saved_index_loads_in_a_fresh_interpreter(gallery, tmp_path):
    x, y = gallery
    index = Index.build(x, y, distance="angular", settings=IndexSettings(kind="hnsw"),
                        names=[f"item-{i}" for i in range(len(y))])
    index.calibrate(*clustered(500, seed=9))
    index.save(tmp_path / "gallery")
    queries = clustered(20, seed=10)[0]
    np.save(tmp_path / "queries.npy", queries)
    script = (
        "import json, numpy as np\n"
        "from tripletlab.retrieval import Index\n"
        f"index = Index.load({str(tmp_path / 'gallery')!r})\n"
        f"found = index.search(np.load({str(tmp_path / 'queries.npy')!r}), 3)\n"
        "print(json.dumps({'items': found.items.tolist(), 'names': found.names.tolist(),\n"
        "  'threshold': index.threshold, 'distance': index.distance, 'recall': index.recall,\n"
        "  'kind': index.settings.kind}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    found = index.search(queries, 3)
    assert loaded["items"] == found.items.tolist()
    assert loaded["names"] == found.names.tolist()
    assert loaded["threshold"] == index.threshold and loaded["distance"] == "angular"
    assert loaded["recall"] == index.recall and loaded["kind"] == "hnsw"


def test_grown_index_replaces_itself_and_removes_its_old_generation(gallery, tmp_path):
    x, y = gallery
    Index.build(x[:100], y[:100]).save(tmp_path / "g")
    loaded = Index.load(tmp_path / "g")
    loaded.add(x[100:150], y[100:150])
    loaded.save(tmp_path / "g")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [
        "index-000002.faiss", "labels-000002.npy", "manifest.json", "names-000002.npy"]
    assert len(Index.load(tmp_path / "g")) == 150


def test_another_index_is_not_replaced_without_overwrite(gallery, tmp_path):
    x, y = gallery
    Index.build(x[:100], y[:100]).save(tmp_path / "g")
    other = Index.build(x[:10], y[:10])
    with pytest.raises(UserFileExistsError, match="--append.*--overwrite"):
        other.save(tmp_path / "g")
    assert len(Index.load(tmp_path / "g")) == 100
    other.save(tmp_path / "g", overwrite=True)
    assert len(Index.load(tmp_path / "g")) == 10


def test_a_folder_of_other_files_is_refused(gallery, tmp_path):
    x, y = gallery
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UserFileExistsError, match="mine.txt"):
        Index.build(x[:10], y[:10]).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_damaged_files_are_named(gallery, tmp_path):
    x, y = gallery
    Index.build(x[:100], y[:100]).save(tmp_path / "g")
    faiss_file = tmp_path / "g" / "index-000001.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="index-000001.faiss.*modified, truncated or damaged"):
        Index.load(tmp_path / "g")
    (tmp_path / "g" / "labels-000001.npy").unlink()
    (tmp_path / "g" / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match="manifest.json.*not valid JSON"):
        Index.load(tmp_path / "g")
    with pytest.raises(ConfigError, match="no manifest.json"):
        Index.load(tmp_path)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda i, x: i.search(x[:, :5], 3), "dimension 16"),
        (lambda i, x: i.search(x, 3, distance="angular"), "built for"),
        (lambda i, x: i.search(x, 0), "`k` >= 1"),
        (lambda i, x: i.add(x[:, :5], np.zeros(len(x))), "dimension 16"),
        (lambda i, x: i.add(x, np.zeros(3, int)), "labels"),
        (lambda i, x: i.add(x, np.array([""] * len(x))), "non-empty"),
        (lambda i, x: i.match(x, rule="closest"), "nearest"),
        (lambda i, x: i.calibrate(x, np.zeros(len(x), int), target_precision=0.9,
                                  target_far=0.1), "at most one"),
    ],
    ids=["query-dimension", "distance", "k", "add-dimension", "labels-length", "empty-label",
         "rule", "two-targets"],
)
def test_bad_input_is_named(gallery, call, message):
    x, y = gallery
    index = Index.build(x[:100], y[:100])
    with pytest.raises(ConfigError, match=message):
        call(index, x[:20])


def test_an_empty_gallery_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one row"):
        Index.build(np.zeros((0, 4), "float32"), np.zeros(0, int))
    with pytest.raises(ConfigError, match="at least one item"):
        Index(4).search(np.zeros((1, 4), "float32"))
    with pytest.raises(ConfigError, match="at least one item"):
        Index(4).save(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
