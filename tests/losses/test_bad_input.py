"""Bad input gets a ValueError/TypeError naming the argument, what was expected and received."""

from __future__ import annotations

import numpy as np
import pytest

import tripletlab as tl

X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
LABELS = np.array([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: tl.losses.TripletSemiHardLoss(distance="cosine"), ValueError,
         r"Expected `distance` to be one of \{'L2', 'squared-L2', 'angular', 'normalized-L2'\}"
         r"\. Received: distance='cosine'"),
        (lambda: tl.losses.TripletHardLoss(distance="l2"), ValueError, r"Did you mean 'L2'\?"),
        (lambda: tl.losses.TripletBatchAllLoss(margin=-0.1), ValueError,
         r"Expected `margin` >= 0.0. Received: margin=-0.1"),
        (lambda: tl.losses.TripletHardLoss(margin="1"), TypeError, r"Received: margin='1'"),
        (lambda: tl.losses.TripletHardLoss(soft=1), TypeError, r"Received: soft=1"),
        (lambda: tl.losses.hard_triplet_loss(LABELS[:5], X), ValueError,
         r"same batch size. Received: labels.shape=\(5,\), embeddings.shape=\(6, 3\)"),
        (lambda: tl.losses.hard_triplet_loss(np.eye(6), X), ValueError,
         r"not one-hot\)\. Received: labels.shape=\(6, 6\)"),
        (lambda: tl.losses.hard_triplet_loss(LABELS, X[:, :, None]), ValueError,
         r"Received: embeddings.shape=\(6, 3, 1\)"),
        (lambda: tl.losses.hard_triplet_loss(LABELS, X.astype("int32")), ValueError,
         r"floating tensor. Received: embeddings.dtype=int32"),
        (lambda: tl.losses.semi_hard_triplet_loss(LABELS, np.where(X > 1, np.nan, X)),
         ValueError, r"Expected finite `embeddings`"),
        (lambda: tl.metrics.FractionPositiveTriplets(distance="euclidean"), ValueError,
         r"Received: distance='euclidean'"),
        (lambda: tl.compat.tfa.TripletSemiHardLoss(distance_metric="cosine"), ValueError,
         r"Expected `distance_metric` to be one of \{'L2', 'squared-L2', 'angular'\}"),
        (lambda: tl.compat.triplet_tools.triplet_batch_hard_loss(metric="L2"), ValueError,
         r"Expected `metric` to be one of \{'euclidean_norm', 'euclidean', 'cosine'\}"),
        (lambda: tl.compat.omoindrot.batch_all_triplet_loss(LABELS, X, 0.5, squared="no"),
         TypeError, r"Received: squared='no'"),
    ],
    ids=["distance", "distance-hint", "margin", "margin-type", "soft-type", "batch",
         "one-hot", "rank", "int-embeddings", "nan", "metric-distance", "tfa-metric",
         "tt-metric", "omo-squared"],
)
def test_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "function",
    [tl.losses.semi_hard_triplet_loss, tl.losses.hard_triplet_loss,
     lambda y, x: tl.losses.batch_all_triplet_loss(y, x)[0]],
    ids=["semi-hard", "hard", "batch-all"],
)
def test_batch_without_positive_pairs_gives_zero_not_nan(function):
    value = np.asarray(function(np.arange(6), X))
    if function is tl.losses.hard_triplet_loss:
        assert np.isfinite(value)  # hard mining keeps anchors without positives in the mean
    else:
        assert value == 0.0
