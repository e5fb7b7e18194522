"""Bad input gets a ValueError/TypeError naming the argument, what was expected and received."""

from __future__ import annotations

import re

import keras
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


FUNCTIONAL = {
    "semi-hard": tl.losses.semi_hard_triplet_loss,
    "hard": tl.losses.hard_triplet_loss,
    "batch-all": tl.losses.batch_all_triplet_loss,
}
CLASSES = {
    "semi-hard": tl.losses.TripletSemiHardLoss,
    "hard": tl.losses.TripletHardLoss,
    "batch-all": tl.losses.TripletBatchAllLoss,
}
EMPTY = r"Expected a non-empty batch: `embeddings` of shape \[batch_size, embedding_dim\] " \
    r"with batch_size >= 1\. Received: embeddings.shape=\(0, 3\)"
NOT_INTEGER = r"Expected `labels` to hold integer class ids .* Received: labels with the " \
    r"non-integer value 0\.5"


@pytest.mark.parametrize("loss", sorted(FUNCTIONAL))
def test_empty_batch(loss):
    with pytest.raises(ValueError, match=EMPTY):
        FUNCTIONAL[loss](LABELS[:0], X[:0])
    with pytest.raises(ValueError, match=EMPTY):
        CLASSES[loss]()(LABELS[:0].astype("float32"), X[:0])


@pytest.mark.parametrize("loss", sorted(FUNCTIONAL))
def test_non_integer_float_labels(loss):
    with pytest.raises(ValueError, match=NOT_INTEGER):
        FUNCTIONAL[loss](LABELS + 0.5, X)
    with pytest.raises(ValueError, match=NOT_INTEGER):
        CLASSES[loss]()((LABELS + 0.5).astype("float32"), X)
    with pytest.raises(ValueError, match=r"non-integer value nan"):
        FUNCTIONAL[loss](np.where(LABELS == 2, np.nan, LABELS), X)


@pytest.mark.parametrize("loss", sorted(FUNCTIONAL))
def test_float_encoded_integer_labels_are_accepted(loss):
    """Keras hands ``y_true`` over as floats: integer values in a float tensor stay valid."""
    expected = CLASSES[loss]()(LABELS, X)
    got = CLASSES[loss]()(LABELS.astype("float32")[:, None], X)
    np.testing.assert_allclose(np.asarray(keras.ops.convert_to_numpy(got)),
                               np.asarray(keras.ops.convert_to_numpy(expected)), rtol=1e-6)


@pytest.mark.parametrize("shape", [(5,), (7,), (6, 2), (2, 3)])
@pytest.mark.parametrize("loss", sorted(CLASSES))
def test_sample_weight_of_the_wrong_shape(loss, shape):
    message = (r"Expected `sample_weight` of shape \[batch_size\] or \[batch_size, 1\] \(one "
               r"weight per anchor\), or a scalar\. Received: sample_weight.shape="
               + re.escape(str(shape)) + r" for embeddings.shape=\(6, 3\)")
    with pytest.raises(ValueError, match=message):
        CLASSES[loss]()(LABELS.astype("float32"), X, sample_weight=np.ones(shape, "float32"))


@pytest.mark.parametrize("shape", [(), (6,), (6, 1)])
def test_sample_weight_shapes_that_are_accepted(shape):
    loss = tl.losses.TripletSemiHardLoss()
    unweighted = float(keras.ops.convert_to_numpy(loss(LABELS, X)))
    weighted = loss(LABELS, X, sample_weight=np.full(shape, 2.0, "float32"))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(weighted)), 2 * unweighted,
                               rtol=1e-6)


@pytest.mark.parametrize(
    "function",
    [tl.losses.semi_hard_triplet_loss, tl.losses.hard_triplet_loss,
     lambda y, x: tl.losses.batch_all_triplet_loss(y, x)[0]],
    ids=["semi-hard", "hard", "batch-all"],
)
def test_batch_without_positive_pairs_is_finite_and_zero_but_for_batch_hard(function):
    # docs/losses.md, "Batches without positive pairs"
    value = np.asarray(function(np.arange(6), X))
    if function is tl.losses.hard_triplet_loss:
        assert np.isfinite(value)  # hard mining keeps anchors without positives in the mean
    else:
        assert value == 0.0
