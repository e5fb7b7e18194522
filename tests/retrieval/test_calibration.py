"""Distance-threshold calibration (tripletlab.retrieval.calibration) and its picture.

The curves and the chosen thresholds are compared with loops over every candidate threshold in
float64; pair sampling is checked for counts, duplicates, balance, uniformity and seeds; and the
statistical promise is checked on synthetic data: a threshold calibrated for a precision (or a
false acceptance rate) on one split keeps it on a held-out split from the same distribution, to
within three standard deviations of the difference of two independent proportions,

    3 * sqrt(p (1 - p) (1 / n_calibration + 1 / n_held_out)),

where ``p`` is the target and ``n`` the matched queries (or the impostor pairs) of each split:
both the calibration's estimate and the held-out measure carry binomial sampling error. The
data are seeded, so each case passes or fails the same way every time. NumPy only: these tests
do not depend on the Keras backend.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tripletlab.errors import ConfigError, ConfigTypeError
from tripletlab.retrieval.calibration import (
    CURVE_POINTS,
    Calibration,
    calibrate_matches,
    calibrate_verification,
    sample_pairs,
)

# --- brute force ------------------------------------------------------------------------------


def brute_force_matches(distances, correct, target=None):
    """``(thresholds, precision, recall, f1, chosen threshold)`` by a loop over thresholds."""
    distances = np.asarray(distances, dtype=np.float64)
    thresholds = sorted(set(distances.tolist()))
    total_correct = int(np.sum(correct))
    precision, recall, f1 = [], [], []
    for threshold in thresholds:
        matched = distances <= threshold
        true_positives = int(np.sum(matched & correct))
        p = true_positives / int(np.sum(matched))
        r = true_positives / total_correct if total_correct else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    chosen = None
    if target is None:
        best = max(f1)
        for threshold, value in zip(thresholds, f1, strict=True):
            if math.isclose(value, best, rel_tol=1e-12):
                chosen = threshold  # the last of the ties: the largest threshold
    else:
        for threshold, value in zip(thresholds, precision, strict=True):
            if value >= target:
                chosen = threshold
    return (np.array(thresholds), np.array(precision), np.array(recall), np.array(f1),
            chosen)


def brute_force_verification(genuine, impostor, target_far):
    """``(thresholds, tar, far, chosen threshold)`` by a loop over thresholds."""
    thresholds = sorted(set(np.concatenate([genuine, impostor]).astype(np.float64).tolist()))
    tar = [float(np.mean(genuine <= t)) for t in thresholds]
    far = [float(np.mean(impostor <= t)) for t in thresholds]
    chosen = None
    for threshold, value in zip(thresholds, far, strict=True):
        if value <= target_far:
            chosen = threshold
    return np.array(thresholds), np.array(tar), np.array(far), chosen


def random_matches(seed, size, *, ties):
    rng = np.random.default_rng(seed)
    correct = rng.random(size) < 0.6
    distances = np.abs(np.where(correct, rng.normal(1.0, 0.4, size),
                                rng.normal(1.6, 0.5, size)))
    if ties:
        distances = np.round(distances, 1)
    return distances, correct


# --- calibrate_matches ------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("target", [None, 0.7, 0.9, 1.0], ids=["f1", "p0.7", "p0.9", "p1"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_agree_with_brute_force(seed, target, ties):
    distances, correct = random_matches(seed, 150, ties=ties)
    thresholds, precision, recall, f1, chosen = brute_force_matches(distances, correct, target)
    if chosen is None:
        with pytest.raises(ConfigError, match="target_precision"):
            calibrate_matches(distances, correct, target_precision=target)
        return
    calibration = calibrate_matches(distances, correct, target_precision=target)
    np.testing.assert_array_equal(calibration.curve["thresholds"], thresholds)
    np.testing.assert_allclose(calibration.curve["precision"], precision, rtol=1e-12)
    np.testing.assert_allclose(calibration.curve["recall"], recall, rtol=1e-12)
    np.testing.assert_allclose(calibration.curve["f1"], f1, rtol=1e-12)
    assert calibration.threshold == chosen
    assert calibration.rule == ("f1" if target is None else "target-precision")
    assert calibration.target == target
    matched = distances <= calibration.threshold
    assert calibration.counts == {"queries": 150, "correct": int(correct.sum()),
                                  "matched": int(matched.sum()),
                                  "matched_correct": int((matched & correct).sum())}
    assert calibration.precision == pytest.approx((matched & correct).sum() / matched.sum())
    assert calibration.recall == pytest.approx((matched & correct).sum() / correct.sum())
    if target is not None:
        assert calibration.precision >= target


def test_f1_ties_take_the_largest_threshold():
    # F1 = 2 TP / (matched + C) with C = 4: 4/6 at t=2, 6/9 at t=5 and 8/12 at t=8.
    correct = np.array([1, 1, 0, 0, 1, 0, 0, 1, 0], dtype=bool)
    calibration = calibrate_matches(np.arange(1.0, 10.0), correct)
    f1 = calibration.curve["f1"]
    assert f1[1] == f1[4] == f1[7] == f1.max()
    assert calibration.threshold == 8.0
    assert (calibration.precision, calibration.recall) == (0.5, 1.0)


def test_queries_at_equal_distances_are_matched_together():
    calibration = calibrate_matches([1.0, 1.0, 2.0], np.array([True, False, True]),
                                    target_precision=0.6)
    np.testing.assert_array_equal(calibration.curve["thresholds"], [1.0, 2.0])
    np.testing.assert_allclose(calibration.curve["precision"], [0.5, 2 / 3])
    assert calibration.threshold == 2.0
    with pytest.raises(ConfigError, match=r"best precision .* 0\.6667 .*target_precision=0\.75"):
        calibrate_matches([1.0, 1.0, 2.0], np.array([True, False, True]), target_precision=0.75)


def test_all_correct_matches_everything():
    distances = np.array([0.3, 0.1, 0.2, 0.2])
    for target in (None, 1.0):
        calibration = calibrate_matches(distances, np.ones(4, bool), target_precision=target)
        assert calibration.threshold == 0.3
        assert calibration.scores == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_no_correct_match_is_refused():
    with pytest.raises(ConfigError, match="at least one query whose match is correct"):
        calibrate_matches([0.1, 0.2], np.zeros(2, bool))
    with pytest.raises(ConfigError, match=r"0\.0000 .*Received: target_precision=0\.5"):
        calibrate_matches([0.1, 0.2], np.zeros(2, bool), target_precision=0.5)


def test_float32_distances_reproduce_the_calibration():
    distances, correct = random_matches(3, 500, ties=False)
    distances = distances.astype(np.float32)
    calibration = calibrate_matches(distances, correct, target_precision=0.9)
    matched = distances <= np.float32(calibration.threshold)
    assert int(matched.sum()) == calibration.counts["matched"]
    assert np.float32(calibration.threshold) in distances


@pytest.mark.parametrize(
    ("distances", "correct", "kwargs", "error", "message"),
    [
        ([[0.1, 0.2]], [[True, False]], {}, ConfigError, "1-D array"),
        ([], [], {}, ConfigError, "non-empty"),
        ([0.1, 0.2], [True], {}, ConfigError, "shape of `distances`"),
        ([0.1, float("nan")], [True, False], {}, ConfigError, "finite"),
        ([0.1, -0.2], [True, False], {}, ConfigError, r"distances\[1\]=-0\.2"),
        (["a", "b"], [True, False], {}, ConfigTypeError, "real numbers"),
        ([0.1, 0.2], [1, 0], {}, ConfigTypeError, "booleans"),
        ([0.1, 0.2], [True, False], {"target_precision": 0.0}, ConfigError, "> 0"),
        ([0.1, 0.2], [True, False], {"target_precision": 1.5}, ConfigError, "<= 1"),
        ([0.1, 0.2], [True, False], {"target_precision": "high"}, ConfigTypeError, "number"),
        ([0.1, 0.2], [True, False], {"metric": "accuracy"}, ConfigError, "'f1'"),
    ],
    ids=["2d", "empty", "lengths", "nan", "negative", "strings", "int-correct", "target-0",
         "target-1.5", "target-str", "metric"],
)
def test_bad_match_inputs_are_refused(distances, correct, kwargs, error, message):
    with pytest.raises(error, match=message) as raised:
        calibrate_matches(distances, np.asarray(correct), **kwargs)
    assert "Expected" in str(raised.value) and "Received:" in str(raised.value)


# --- calibrate_verification -------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("target_far", [0.005, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_verification_agrees_with_brute_force(seed, target_far, ties):
    rng = np.random.default_rng(seed)
    genuine, impostor = np.abs(rng.normal(1.0, 0.4, 80)), np.abs(rng.normal(1.8, 0.5, 120))
    if ties:
        genuine, impostor = np.round(genuine, 1), np.round(impostor, 1)
    thresholds, tar, far, chosen = brute_force_verification(genuine, impostor, target_far)
    calibration = calibrate_verification(genuine, impostor, target_far=target_far)
    np.testing.assert_array_equal(calibration.curve["thresholds"], thresholds)
    np.testing.assert_allclose(calibration.curve["tar"], tar, rtol=1e-12)
    np.testing.assert_allclose(calibration.curve["far"], far, rtol=1e-12)
    assert calibration.threshold == chosen
    assert calibration.far <= target_far
    assert calibration.tar == np.mean(genuine <= chosen)
    assert calibration.counts == {"genuine": 80, "impostor": 120,
                                  "accepted_genuine": int(np.sum(genuine <= chosen)),
                                  "accepted_impostor": int(np.sum(impostor <= chosen))}


def test_a_target_below_one_impostor_accepts_none():
    calibration = calibrate_verification([0.1, 0.2, 0.5], [0.3, 0.4], target_far=0.1)
    assert (calibration.threshold, calibration.far) == (0.2, 0.0)
    assert calibration.tar == pytest.approx(2 / 3)


def test_an_unreachable_far_is_refused():
    with pytest.raises(ConfigError, match=r"target_far` at least 0\.5.*target_far=0\.1"):
        calibrate_verification([0.2, 0.3], [0.1, 0.4], target_far=0.1)
    with pytest.raises(ConfigError, match="impostor_distances"):
        calibrate_verification([0.2, 0.3], [], target_far=0.1)
    with pytest.raises(ConfigError, match="target_far"):
        calibrate_verification([0.2, 0.3], [0.1], target_far=0)


# --- Calibration ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["matches", "verification"])
def test_calibration_round_trips_through_json(kind):
    rng = np.random.default_rng(5)
    if kind == "matches":
        distances, correct = random_matches(5, 5000, ties=False)
        calibration = calibrate_matches(distances, correct, target_precision=0.9)
    else:
        calibration = calibrate_verification(rng.random(3000), rng.random(3000) + 0.5,
                                             target_far=0.01)
    data = json.loads(json.dumps(calibration.to_dict()))
    curve = data["curve"]
    assert len(curve["thresholds"]) <= CURVE_POINTS
    assert calibration.threshold in curve["thresholds"]
    assert curve["thresholds"][0] == calibration.curve["thresholds"][0]
    assert curve["thresholds"][-1] == calibration.curve["thresholds"][-1]
    assert np.all(np.diff(curve["thresholds"]) > 0)
    loaded = Calibration.from_dict(data)
    assert loaded.threshold == calibration.threshold  # exactly: matching depends on it
    assert (loaded.rule, loaded.target) == (calibration.rule, calibration.target)
    assert loaded.scores == calibration.scores and loaded.counts == calibration.counts
    assert loaded.describe() == calibration.describe()
    assert loaded.to_dict() == data


def test_calibration_is_read_only():
    calibration = calibrate_matches([0.1, 0.2], np.array([True, False]))
    with pytest.raises(AttributeError):
        calibration.threshold = 1.0
    with pytest.raises(ValueError, match="read-only"):
        calibration.curve["precision"][0] = 0.0
    assert calibration.tar is None and calibration.f1 == 1.0
    assert calibration.describe() == ("threshold 0.1 (F1-optimal): precision 1.000, "
                                      "recall 1.000, F1 1.000 on 2 queries")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("threshold"), "keys"),
        (lambda d: d.update(rule="best"), "rule"),
        (lambda d: d["scores"].pop("recall"), "scores"),
        (lambda d: d["curve"]["f1"].pop(), "one length"),
        (lambda d: d.update(threshold="near"), "threshold"),
    ],
    ids=["missing-key", "rule", "scores", "curve-length", "threshold"],
)
def test_from_dict_refuses_damaged_data(change, message):
    data = calibrate_matches([0.1, 0.2, 0.3], np.array([True, False, True])).to_dict()
    change(data)
    with pytest.raises(ConfigError, match=message):
        Calibration.from_dict(data)


# --- sample_pairs -----------------------------------------------------------------------------


def test_all_pairs_when_they_fit():
    labels = np.array(["b", "a", "b", "c", "a"])
    first, second, same = sample_pairs(labels, max_pairs=10, seed=0)
    expected = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    assert list(zip(first.tolist(), second.tolist(), strict=True)) == expected
    np.testing.assert_array_equal(same, labels[first] == labels[second])
    assert first.dtype == second.dtype == np.int64 and same.dtype == bool


def check_sample(labels, first, second, same, max_pairs):
    pairs = set(zip(first.tolist(), second.tolist(), strict=True))
    assert len(first) == len(pairs) == max_pairs, "duplicate pairs"
    assert np.all(first < second) and np.all(first >= 0) and np.all(second < len(labels))
    np.testing.assert_array_equal(same, labels[first] == labels[second])
    assert np.all(np.diff(first) >= 0), "not sorted by (first, second)"


@pytest.mark.parametrize("seed", [0, 7])
def test_sampled_pairs_are_balanced_and_distinct(seed):
    labels = np.random.default_rng(seed).integers(0, 20, 600)
    first, second, same = sample_pairs(labels, max_pairs=1001, seed=seed)
    check_sample(labels, first, second, same, 1001)
    assert int(same.sum()) == 500  # half (rounded down) genuine, the rest impostor


def test_a_short_kind_is_taken_whole():
    # 100 singletons and one pair: one genuine pair, the rest impostors.
    labels = np.concatenate([np.arange(100), [0]])
    first, second, same = sample_pairs(labels, max_pairs=50, seed=0)
    check_sample(labels, first, second, same, 50)
    assert same.sum() == 1 and (first[same][0], second[same][0]) == (0, 100)
    # Classes of 60 and 1: 60 impostor pairs, fewer than half of 200; genuine pairs fill up.
    labels = np.array([1] * 60 + [2])
    first, second, same = sample_pairs(labels, max_pairs=200, seed=0)
    check_sample(labels, first, second, same, 200)
    assert (~same).sum() == 60 and same.sum() == 140


def test_sampling_is_seeded():
    labels = np.random.default_rng(0).integers(0, 5, 300)
    once = sample_pairs(labels, max_pairs=200, seed=3)
    again = sample_pairs(labels, max_pairs=200, seed=3)
    other = sample_pairs(labels, max_pairs=200, seed=4)
    for a, b in zip(once, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(once[0], other[0]) or not np.array_equal(once[1], other[1])


def test_sampling_is_uniform_within_each_kind():
    # Classes of 4, 3 and 2: 10 genuine and 26 impostor pairs; 5 of each are drawn.
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 1, 0])
    draws = 2000
    counts: dict[tuple[int, int], int] = {}
    for seed in range(draws):
        first, second, _ = sample_pairs(labels, max_pairs=10, seed=seed)
        for pair in zip(first.tolist(), second.tolist(), strict=True):
            counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 36
    for (i, j), count in counts.items():
        p = 5 / 10 if labels[i] == labels[j] else 5 / 26
        assert abs(count / draws - p) < 5 * math.sqrt(p * (1 - p) / draws), (i, j)


def test_large_sets_are_sampled_without_the_pair_matrix():
    labels = np.random.default_rng(1).integers(0, 1000, 300_000)  # 4.5e10 pairs
    first, second, same = sample_pairs(labels, max_pairs=20_000, seed=0)
    check_sample(labels, first, second, same, 20_000)
    assert same.sum() == 10_000


@pytest.mark.parametrize(
    ("labels", "max_pairs", "message"),
    [
        ([0, 1, 2, 3], 10, "at least two samples"),
        ([5, 5, 5], 10, "at least two classes"),
        ([[0, 1], [0, 1]], 10, "1-D"),
        ([0, 0, 1], 1, "max_pairs"),
    ],
    ids=["singletons", "one-class", "2d", "max-pairs"],
)
def test_pairs_that_cannot_be_sampled_are_refused(labels, max_pairs, message):
    with pytest.raises(ConfigError, match=message):
        sample_pairs(labels, max_pairs=max_pairs, seed=0)


# --- the statistical promise ------------------------------------------------------------------


def allowance(target, n_calibration, n_held_out):
    """Three standard deviations of the difference of two independent proportions."""
    return 3 * math.sqrt(target * (1 - target) * (1 / n_calibration + 1 / n_held_out))


def gaussian_matches(rng, size):
    """Match distances: 70 % correct, nearer (1.0 ± 0.25) than the wrong ones (1.8 ± 0.4)."""
    correct = rng.random(size) < 0.7
    distances = np.where(correct, rng.normal(1.0, 0.25, size), rng.normal(1.8, 0.4, size))
    return np.abs(distances), correct


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_precision_holds_on_held_out_queries(seed):
    target = 0.95
    rng = np.random.default_rng(seed)
    calibration = calibrate_matches(*gaussian_matches(rng, 5000), target_precision=target)
    distances, correct = gaussian_matches(rng, 5000)
    matched = distances <= calibration.threshold
    held_out = correct[matched].mean()
    margin = allowance(target, calibration.counts["matched"], int(matched.sum()))
    # Reached, and not by a needlessly small threshold: the largest one that reaches it.
    assert abs(held_out - target) <= margin, (held_out, margin)
    assert calibration.recall > 0.5


def cluster_pairs(rng, centers, size, seed):
    """Pair distances of ``size`` noisy points of the given class centres (L2)."""
    labels = rng.integers(0, len(centers), size)
    points = centers[labels] + rng.normal(0.0, 0.6, (size, centers.shape[1]))
    first, second, same = sample_pairs(labels, max_pairs=20_000, seed=seed)
    distances = np.linalg.norm(points[first] - points[second], axis=1)
    return distances[same], distances[~same]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_far_holds_on_held_out_pairs(seed):
    target = 0.01
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, (100, 16))
    calibration = calibrate_verification(*cluster_pairs(rng, centers, 20_000, seed),
                                         target_far=target)
    genuine, impostor = cluster_pairs(rng, centers, 20_000, seed + 100)
    held_out = float(np.mean(impostor <= calibration.threshold))
    margin = allowance(target, calibration.counts["impostor"], len(impostor))
    assert abs(held_out - target) <= margin, (held_out, margin)
    assert abs(np.mean(genuine <= calibration.threshold) - calibration.tar) < 0.03


# --- plot_calibration -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["matches", "verification"])
def test_plot_calibration_writes_a_png(tmp_path, kind):
    pytest.importorskip("matplotlib")
    image = pytest.importorskip("PIL.Image")
    from tripletlab.visualization.calibration_plot import plot_calibration

    rng = np.random.default_rng(0)
    if kind == "matches":
        calibration = calibrate_matches(*gaussian_matches(rng, 3000), target_precision=0.95)
    else:
        calibration = calibrate_verification(np.abs(rng.normal(1, 0.3, 2000)),
                                             np.abs(rng.normal(2, 0.3, 2000)), target_far=0.01)
    written = []
    path = plot_calibration(calibration, tmp_path / "calibration.png", record=written.append)
    assert path == tmp_path / "calibration.png" and written == [path]
    with image.open(path) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    assert pixels.shape == (450, 1100, 3)
    assert np.mean(np.any(pixels < 240, axis=-1)) > 0.02, "blank picture"
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
    # From the JSON's subsampled curve too, as a saved index reloads it.
    reloaded = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert plot_calibration(reloaded, tmp_path / "reloaded.png").is_file()


def test_plot_calibration_refuses_other_objects(tmp_path):
    pytest.importorskip("matplotlib")
    from tripletlab.visualization.calibration_plot import plot_calibration

    with pytest.raises(ConfigTypeError, match="Calibration"):
        plot_calibration({"threshold": 1.0}, tmp_path / "x.png")
