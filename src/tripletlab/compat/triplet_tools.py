"""Drop-in replacement for the loss factories of triplet-tools 0.2.3 (maxsch3/triplet-toolbox).

Change ``from triplet_tools.losses import triplet_batch_semihard_loss`` into
``from tripletlab.compat.triplet_tools import triplet_batch_semihard_loss``. Each factory returns
``loss(y_true, y_pred)`` for ``model.compile(loss=...)``, on every Keras 3 backend.

triplet-tools' own rules, kept here:

* the hardest positive ``hp(a)`` is the maximum over samples of ``a``'s class **including a
  itself**, so an anchor without other positives still forms a triplet with ``hp ~ 0``;
* the semi-hard negative is the nearest negative strictly farther than ``hp(a) + semi_margin``
  (``semi_margin`` of either sign: a negative one moves the cutoff closer to the anchor, a
  positive one farther); an anchor without one contributes 0;
* distances do not zero the diagonal: ``euclidean = sqrt(max(d^2, 1e-16))``,
  ``euclidean_norm = sqrt(2 * max(1 - cos, 1e-16))`` (the default), ``cosine = 1 - cos``;
* every loss is the mean over all ``B`` anchors.

The ``metric`` strings are triplet-tools' and are accepted only in this module.
"""

from __future__ import annotations

from keras import ops

from tripletlab._checks import check_choice, check_number
from tripletlab.distances import l2_normalize
from tripletlab.losses.inputs import prepare_inputs
from tripletlab.losses.margins import TRIPLET_TOOLS_MARGIN
from tripletlab.mining import label_masks

__all__ = ["triplet_batch_hard_loss", "triplet_batch_priming_loss", "triplet_batch_semihard_loss"]

METRICS = ("euclidean_norm", "euclidean", "cosine")

# triplet-tools hides excluded entries behind this sentinel.
_NO_NEGATIVE = 1e16


def _distances(embeddings, metric):
    if metric == "euclidean":
        squared_norms = ops.sum(ops.square(embeddings), axis=1)
        squared = (ops.expand_dims(squared_norms, 1) + ops.expand_dims(squared_norms, 0)
                   - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings)))
        return ops.sqrt(ops.maximum(squared, 1e-16))
    normalized = l2_normalize(embeddings)
    cosine = ops.matmul(normalized, ops.transpose(normalized))
    if metric == "cosine":
        return 1.0 - cosine
    return ops.sqrt(2.0 * ops.maximum(1.0 - cosine, 1e-16))


def _anchor_statistics(y_true, y_pred, metric):
    """Distances, the hardest positive (self included) and the masks of every anchor."""
    labels, embeddings, input_dtype = prepare_inputs(y_true, y_pred)
    distances = _distances(embeddings, metric)
    positive, negative = label_masks(labels)
    same_class = ops.logical_not(negative)  # positives and the anchor itself
    hardest_positive = ops.max(
        ops.where(same_class, distances, ops.zeros_like(distances)), axis=1)
    return distances, negative, hardest_positive, input_dtype


def _hardest_negative(distances, negative):
    masked = ops.where(negative, distances, ops.full_like(distances, _NO_NEGATIVE))
    return ops.min(masked, axis=1)


def triplet_batch_semihard_loss(margin=TRIPLET_TOOLS_MARGIN, semi_margin=0.0,
                                metric="euclidean_norm"):
    r"""Returns triplet-tools' semi-hard loss ``loss(y_true, y_pred)``.

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \max\bigl(hp(a) - \min_{n:\, d(a,n) > hp(a) + s}
        d(a, n) + m, 0\bigr)

    with :math:`hp(a)` the hardest positive (self included), :math:`m` = ``margin``,
    :math:`s` = ``semi_margin``; anchors without such a negative contribute 0.

    Args:
      margin: the margin :math:`m` (``>= 0``).
      semi_margin: the gap :math:`s` a negative must clear beyond :math:`hp(a)`, any finite
        number: negative moves the cutoff closer to the anchor, positive farther.
      metric: ``"euclidean_norm"``, ``"euclidean"`` or ``"cosine"``.

    Returns:
      A Keras loss function.
    """
    check_number("margin", margin, minimum=0.0)
    check_number("semi_margin", semi_margin)
    check_choice("metric", metric, METRICS)

    def triplet_batch_semihard_loss(y_true, y_pred):
        distances, negative, hardest_positive, dtype = _anchor_statistics(y_true, y_pred, metric)
        threshold = ops.expand_dims(hardest_positive + semi_margin, 1)
        # One threshold per anchor: the semi-hard negative is a masked row minimum (no sort).
        beyond = ops.logical_and(negative, distances > ops.stop_gradient(threshold))
        hardest_negative = ops.min(ops.where(beyond, distances, float("inf")), axis=1)
        found = hardest_negative < float("inf")
        hardest_negative = ops.where(found, hardest_negative, ops.zeros_like(hardest_negative))
        losses = ops.relu(hardest_positive - hardest_negative + margin)
        losses = ops.where(found, losses, ops.zeros_like(losses))
        return ops.cast(ops.mean(losses), dtype)

    return triplet_batch_semihard_loss


def triplet_batch_hard_loss(margin=TRIPLET_TOOLS_MARGIN, metric="euclidean_norm"):
    r"""Returns triplet-tools' batch-hard loss ``loss(y_true, y_pred)``.

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \max(hp(a) - \min_n d(a, n) + m, 0)

    Args:
      margin: the margin :math:`m` (``>= 0``).
      metric: ``"euclidean_norm"``, ``"euclidean"`` or ``"cosine"``.

    Returns:
      A Keras loss function.
    """
    check_number("margin", margin, minimum=0.0)
    check_choice("metric", metric, METRICS)

    def triplet_batch_hard_loss(y_true, y_pred):
        distances, negative, hardest_positive, dtype = _anchor_statistics(y_true, y_pred, metric)
        hardest_negative = _hardest_negative(distances, negative)
        return ops.cast(ops.mean(ops.relu(hardest_positive - hardest_negative + margin)), dtype)

    return triplet_batch_hard_loss


def triplet_batch_priming_loss(metric="euclidean_norm"):
    r"""Returns triplet-tools' priming loss ``loss(y_true, y_pred)``.

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \bigl(hp(a)^2 + e^{-10 \min_n d(a, n)}\bigr)

    It pulls classes together and pushes the nearest negatives out, to start training from a
    collapsed embedding before switching to a margin loss.

    Args:
      metric: ``"euclidean_norm"``, ``"euclidean"`` or ``"cosine"``.

    Returns:
      A Keras loss function.
    """
    check_choice("metric", metric, METRICS)

    def triplet_batch_priming_loss(y_true, y_pred):
        distances, negative, hardest_positive, dtype = _anchor_statistics(y_true, y_pred, metric)
        hardest_negative = _hardest_negative(distances, negative)
        losses = ops.square(hardest_positive) + ops.exp(-10.0 * hardest_negative)
        return ops.cast(ops.mean(losses), dtype)

    return triplet_batch_priming_loss
