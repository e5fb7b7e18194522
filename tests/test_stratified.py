"""One stratified sampler for the exported test points, the held-out subset scored
during training, the live-PCA sample and the report. It keeps the report's rule that every
class keeps a point, and the export's order among equal remainders, so each former caller
picks what it picked outside those two cases."""

from __future__ import annotations

import numpy as np
import pytest

from tripletlab.data import load_dataset
from tripletlab.stratified import stratified_sample


def _former_export_sampler(labels, count, seed=0):
    """``train/experiment.stratified_indices`` as it was before the one sampler."""
    labels = np.asarray(labels).reshape(-1)
    if count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts * count / len(labels)).astype(int)
    remainder = counts * count / len(labels) - quota
    quota[np.argsort(-remainder)[: count - quota.sum()]] += 1
    for label, take in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def _former_report_sampler(labels, max_points, seed=0):
    """``visualization/report.stratified_sample`` as it was before the one sampler."""
    total = labels.shape[0]
    if total <= max_points:
        return np.arange(total)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (max_points / total)
    quota = np.floor(exact).astype(np.int64)
    if max_points >= len(classes):
        quota = np.maximum(quota, 1)
    spare = max_points - int(quota.sum())
    if spare > 0:
        order = np.argsort(-(exact - np.floor(exact)), kind="stable")
        for index in order:
            if spare == 0:
                break
            if quota[index] < counts[index]:
                quota[index] += 1
                spare -= 1
    while quota.sum() > max_points:
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == label), size=int(size), replace=False)
              for label, size in zip(classes, quota, strict=True) if size > 0]
    return np.sort(np.concatenate(chosen))


@pytest.mark.parametrize("seed", [0, 3])
def test_digits_picks_are_those_of_the_former_export_sampler(seed):
    """Every sample size of the digits test split (balanced classes: many equal remainders)."""
    labels = load_dataset("digits", seed=0).y_test
    for count in range(10, len(labels) + 2):
        np.testing.assert_array_equal(stratified_sample(labels, count, seed),
                                      _former_export_sampler(labels, count, seed))


def _random_cases(count_cases, rng):
    for _ in range(count_cases):
        num_classes = int(rng.integers(2, 40))
        counts = rng.integers(1, 80, size=num_classes)
        labels = rng.permutation(np.repeat(np.arange(num_classes), counts))
        yield labels, counts, int(rng.integers(1, len(labels) + 5)), int(rng.integers(0, 1000))


def test_export_picks_unchanged_whenever_every_class_has_a_full_share():
    """The export, the held-out subset and the live-PCA sample pick what they picked whenever
    each class's share is at least one point."""
    checked = 0
    for labels, counts, count, seed in _random_cases(400, np.random.default_rng(7)):
        if (counts * count / len(labels)).min() < 1:
            continue
        np.testing.assert_array_equal(stratified_sample(labels, count, seed),
                                      _former_export_sampler(labels, count, seed))
        checked += 1
    assert checked > 100


def test_report_picks_unchanged_whenever_remainders_differ():
    """The report picks what it picked, unless two classes' remainders are equal (their order
    is now the export's)."""
    checked = 0
    for labels, counts, count, seed in _random_cases(1000, np.random.default_rng(8)):
        share = counts * count / len(labels)
        remainders = np.round(share - np.floor(share), 9)
        if len(np.unique(remainders)) < len(counts):
            continue
        np.testing.assert_array_equal(stratified_sample(labels, count, seed),
                                      _former_report_sampler(labels, count, seed))
        checked += 1
    assert checked > 100


def test_every_class_keeps_a_point():
    """The deliberate difference: a class whose share is under one point keeps one (the former
    export sampler could drop it); the sample size stays ``count``."""
    labels = np.array([0] * 40 + [1] * 15 + [2] * 5)
    sample = stratified_sample(labels, 3, seed=1)
    assert np.bincount(labels[sample], minlength=3).tolist() == [1, 1, 1]
    assert np.bincount(labels[_former_export_sampler(labels, 3, 1)], minlength=3)[2] == 0


def test_column_labels_and_small_sets():
    labels = np.array([[0], [1], [1], [0]])
    assert stratified_sample(labels, 10).tolist() == [0, 1, 2, 3]
    assert len(stratified_sample(labels, 2)) == 2


def test_a_sample_of_none_is_empty():
    # export_samples = 0 (docs/training.md): nothing exported, not an error
    picked = stratified_sample(np.array([0, 1, 1, 0, 2]), 0)
    assert picked.dtype == np.int64 and picked.tolist() == []
