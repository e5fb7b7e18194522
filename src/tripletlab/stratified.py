"""A class-stratified random subset of a labelled set: each class keeps its share.

One sampler serves every place that keeps a sample of the test split: the points exported to
``embeddings/`` (:mod:`tripletlab.experiment`), the held-out subset scored during training, the
live-PCA sample, and the points the HTML report draws.
"""

from __future__ import annotations

import numpy as np


def stratified_sample(labels, count: int, seed: int = 0) -> np.ndarray:
    """Returns sorted indices of at most ``count`` rows, each class in proportion.

    Class ``c`` of ``n_c`` rows gets ``floor(n_c * count / N)`` places, and at least one when
    ``count`` is at least the number of classes; the places left go one each to the classes
    with the largest remainders, in the order of ``numpy.argsort`` (whose order among equal
    remainders, frequent with balanced classes, is the one the exported samples of
    tripletlab have always had). The rows of each class are drawn without replacement by
    ``numpy.random.default_rng(seed)``, class by class in label order.

    Args:
      labels: ``[N]`` class labels (an ``[N, 1]`` column is read as ``[N]``).
      count: the sample size cap.
      seed: seed of the random choice within each class.

    Returns:
      Sorted ``int64`` indices; all of ``range(N)`` when ``N <= count``, none when ``count``
      is 0.

    Example:
      >>> labels = np.array([0] * 40 + [1] * 15 + [2] * 5)
      >>> np.bincount(labels[stratified_sample(labels, 12)]).tolist()
      [8, 3, 1]
    """
    labels = np.asarray(labels).reshape(-1)
    total = labels.shape[0]
    if total <= count:
        return np.arange(total)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * count / total
    quota = np.floor(exact).astype(np.int64)
    if count >= len(classes):
        quota = np.maximum(quota, 1)
    spare = count - int(quota.sum())
    if spare > 0:
        order = np.argsort(-(exact - np.floor(exact)))
        for index in order:
            if spare == 0:
                break
            if quota[index] < counts[index]:
                quota[index] += 1
                spare -= 1
    while quota.sum() > count:  # the minimum of one per class overshot
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == label), size=int(size), replace=False)
              for label, size in zip(classes, quota, strict=True) if size > 0]
    if not chosen:  # count 0
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen))
