"""NumPy brute-force reference for every mining loss, written from the semantics in
docs/losses.md (the distances, TripletSemiHardLoss, TripletHardLoss, TripletBatchAllLoss and
the triplet-tools losses).

Everything is float64 and loops over every pair or triplet: slow and obviously right. Each loss
returns its value and ``G = dL/dD``, the gradient with respect to the distance matrix (loops
again: one contribution per active pair/triplet); :func:`embedding_gradient` chains ``G``
through the distance analytically, so tests compare the library's autodiff gradient with an
independent derivation.
"""

from __future__ import annotations

import math

import numpy as np

# --- distances --------------------------------------------------------------------------------


def distance_matrix(x, distance):
    """Pairwise distances by direct differences (not the library's Gram-matrix expansion)."""
    x = np.asarray(x, dtype=np.float64)
    size = len(x)
    result = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            if i == j:
                continue
            if distance in ("L2", "squared-L2"):
                squared = float(np.sum((x[i] - x[j]) ** 2))
                result[i, j] = math.sqrt(squared) if distance == "L2" else squared
            else:
                cosine = float(x[i] @ x[j]) / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
                if distance == "angular":
                    result[i, j] = max(1.0 - cosine, 0.0)
                else:  # normalized-L2
                    result[i, j] = math.sqrt(max(2.0 - 2.0 * cosine, 0.0))
    return result


def embedding_gradient(x, distance, grad_distances):
    """Chains ``dL/dD`` through the distance: returns ``dL/dx`` (zero-distance pairs give 0)."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    size = len(x)
    for i in range(size):
        for j in range(size):
            weight = grad_distances[i, j]
            if i == j or weight == 0.0:
                continue
            diff = x[i] - x[j]
            if distance == "squared-L2":
                grad[i] += weight * 2.0 * diff
                grad[j] -= weight * 2.0 * diff
            elif distance == "L2":
                norm = np.linalg.norm(diff)
                if norm > 0:
                    grad[i] += weight * diff / norm
                    grad[j] -= weight * diff / norm
            else:
                ni, nj = np.linalg.norm(x[i]), np.linalg.norm(x[j])
                ui, uj = x[i] / ni, x[j] / nj
                cosine = float(ui @ uj)
                if distance == "angular":
                    d_cos = -1.0
                else:
                    value = math.sqrt(max(2.0 - 2.0 * cosine, 0.0))
                    if value == 0:
                        continue
                    d_cos = -1.0 / value
                grad[i] += weight * d_cos * (uj - cosine * ui) / ni
                grad[j] += weight * d_cos * (ui - cosine * uj) / nj
    return grad


# --- losses on a distance matrix ----------------------------------------------------------------


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _term(gap, margin, soft):
    """(value, slope) of one loss term for ``gap = d(a,p) - d(a,n)``."""
    if soft:
        return _softplus(gap), _sigmoid(gap)
    value = gap + margin
    return (value, 1.0) if value > 0 else (0.0, 0.0)


def semi_hard(labels, d, margin, soft=False, anchors=None):
    """TF Addons semi-hard. Returns ``(loss, dL/dD)``. ``anchors``: only the first ``anchors``
    samples are anchors (a batch followed by a cross-batch memory); all of them by default."""
    labels = np.asarray(labels).reshape(-1)
    size = len(labels)
    pairs = []
    for a in range(size if anchors is None else anchors):
        negatives = [n for n in range(size) if labels[n] != labels[a]]
        for p in range(size):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [n for n in negatives if d[a, n] > d[a, p]]
            if farther:
                chosen = min(farther, key=lambda n: d[a, n])
            elif negatives:
                chosen = max(negatives, key=lambda n: d[a, n])
            else:
                chosen = min(range(size), key=lambda n: d[a, n])  # row minimum
            pairs.append((a, p, chosen))
    grad = np.zeros_like(d)
    if not pairs:
        return 0.0, grad
    total = 0.0
    for a, p, n in pairs:
        value, slope = _term(d[a, p] - d[a, n], margin, soft)
        total += value
        grad[a, p] += slope / len(pairs)
        grad[a, n] -= slope / len(pairs)
    return total / len(pairs), grad


def hard(labels, d, margin, soft=False, anchors=None):
    """Batch-hard (TF Addons TripletHardLoss). Returns ``(loss, dL/dD)``; the mean is over the
    anchors (the first ``anchors`` samples, all by default)."""
    labels = np.asarray(labels).reshape(-1)
    size = len(labels)
    count = size if anchors is None else anchors
    grad = np.zeros_like(d)
    total = 0.0
    for a in range(count):
        positives = [p for p in range(size) if p != a and labels[p] == labels[a]]
        negatives = [n for n in range(size) if labels[n] != labels[a]]
        row = d[a].__getitem__
        p = max(positives, key=row) if positives else min(range(size), key=row)
        n = min(negatives, key=row) if negatives else max(range(size), key=row)
        value, slope = _term(d[a, p] - d[a, n], margin, soft)
        total += value
        grad[a, p] += slope / count
        grad[a, n] -= slope / count
    return total / count, grad


def batch_all(labels, d, margin, soft=False, anchors=None):
    """omoindrot batch-all. Returns ``(loss, fraction_positive, dL/dD)``; ``anchors`` as in
    :func:`semi_hard`."""
    labels = np.asarray(labels).reshape(-1)
    size = len(labels)
    total, positive, valid = 0.0, 0, 0
    active = []
    for a in range(size if anchors is None else anchors):
        for p in range(size):
            for n in range(size):
                if len({a, p, n}) < 3 or labels[p] != labels[a] or labels[n] == labels[a]:
                    continue
                valid += 1
                value, slope = _term(d[a, p] - d[a, n], margin, soft)
                if value > 1e-16:
                    positive += 1
                    total += value
                    active.append((a, p, n, slope))
    grad = np.zeros_like(d)
    for a, p, n, slope in active:
        grad[a, p] += slope / (positive + 1e-16)
        grad[a, n] -= slope / (positive + 1e-16)
    return total / (positive + 1e-16), positive / (valid + 1e-16), grad


# --- triplet-tools ------------------------------------------------------------------------------


def triplet_tools_distance_matrix(x, metric):
    """triplet-tools' distances: no zeroed diagonal, its own clamps."""
    x = np.asarray(x, dtype=np.float64)
    size = len(x)
    result = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            if metric == "euclidean":
                result[i, j] = math.sqrt(max(float(np.sum((x[i] - x[j]) ** 2)), 1e-16))
            else:
                cosine = float(x[i] @ x[j]) / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
                if metric == "cosine":
                    result[i, j] = 1.0 - cosine
                else:  # euclidean_norm
                    result[i, j] = math.sqrt(2.0 * max(1.0 - cosine, 1e-16))
    return result


def triplet_tools(labels, d, kind, margin=1.0, semi_margin=0.0):
    """triplet-tools' semihard / hard / priming (hardest positive includes the anchor itself)."""
    labels = np.asarray(labels).reshape(-1)
    size = len(labels)
    total = 0.0
    for a in range(size):
        hp = max(d[a, j] for j in range(size) if labels[j] == labels[a])
        negatives = [d[a, n] for n in range(size) if labels[n] != labels[a]]
        if kind == "semihard":
            beyond = [v for v in negatives if v > hp + semi_margin]
            if beyond:
                total += max(hp - min(beyond) + margin, 0.0)
        elif kind == "hard":
            hn = min(negatives) if negatives else 1e16
            total += max(hp - hn + margin, 0.0)
        else:  # priming
            hn = min(negatives) if negatives else 1e16
            total += hp**2 + math.exp(-10.0 * hn)
    return total / size
