"""Keras ``Loss`` classes for the mining losses: thin wrappers over :mod:`.functional`.

Every argument after ``margin`` is keyword-only, in one order: ``distance``, ``soft``,
(``max_positives``), ``name``, ``reduction``, ``dtype``. TF Addons' positional order lives in
:mod:`tripletlab.compat.tfa`.

``y_true`` holds integer labels ``[B]`` or ``[B, 1]`` (Keras hands them over as floats; they are
compared as given), ``y_pred`` the embeddings ``[B, D]``.

``call`` returns one value per anchor, scaled so that their mean is the documented loss. With the
default ``reduction="sum_over_batch_size"`` the Keras loss therefore equals the functional form
exactly, and a ``sample_weight`` of shape ``[B]`` weights each anchor's triplets:
``sum_a w_a * S_a / N`` where ``S_a`` is the sum of anchor ``a``'s terms and ``N`` the loss's
normaliser (positive pairs, positive triplets or ``B``).
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab.losses.functional import (
    batch_all_terms,
    check_loss_arguments,
    check_max_positives,
    hard_terms,
    mining_distances,
    semi_hard_terms,
)
from tripletlab.losses.inputs import check_sample_weight, prepare_inputs
from tripletlab.losses.margins import BATCH_ALL_MARGIN, HARD_MARGIN, SEMI_HARD_MARGIN


class MiningLoss(keras.losses.Loss):
    """The base of the online mining losses (here and in :mod:`tripletlab.compat.tfa`): argument
    checks, distances, per-anchor values, ``get_config``.

    Every argument after ``margin`` is keyword-only, in the order ``distance``, ``soft``,
    (``max_positives``), ``name``, ``reduction``, ``dtype``.
    """

    # Set by subclasses: a ``*_terms(labels, distances, margin, soft, ...)`` function.
    _terms = None

    def __init__(self, margin, *, distance, soft, name, reduction, dtype, max_positives=None):
        check_loss_arguments(margin, soft, distance=distance)
        check_max_positives(max_positives)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)
        self.distance = distance
        self.soft = soft
        self.max_positives = max_positives

    def _term_arguments(self):
        """Keyword arguments of ``_terms`` beyond ``margin`` and ``soft``."""
        return {}

    def distances(self, embeddings, input_dtype=None):
        """The distance matrix this loss mines on, as a
        :class:`tripletlab.mining.EmbeddingDistances` (the gradient goes to the embeddings in
        closed form). ``embeddings`` are in the compute dtype; ``input_dtype`` (default: theirs)
        sets the normalisation floor (see :func:`tripletlab.distances.min_norm_for`).
        Subclasses with other distance functions return a differentiable ``[B, B]`` tensor or a
        :class:`tripletlab.mining.TensorDistances` instead."""
        return mining_distances(embeddings, self.distance, input_dtype or embeddings.dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        check_sample_weight(sample_weight, y_pred)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        labels, embeddings, input_dtype = prepare_inputs(y_true, y_pred)
        terms = self.terms(labels, self.distances(embeddings, input_dtype))
        return ops.cast(terms.per_anchor_losses(), input_dtype)

    def terms(self, labels, distances, *, reference_labels=None, reference_valid=None):
        """The loss's :class:`tripletlab.losses.functional.TripletTerms` on ``distances``: a
        ``[B, B]`` matrix, or ``[B, N]`` against references whose first ``B`` are the batch
        (see :func:`tripletlab.losses.functional.reference_masks`)."""
        return type(self)._terms(labels, distances, self.margin, self.soft,
                                 reference_labels=reference_labels,
                                 reference_valid=reference_valid, **self._term_arguments())

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "distance": self.distance, "soft": self.soft})
        return config


class SlotMiningLoss(MiningLoss):
    """A mining loss with the sort-free path for few positives per anchor (``max_positives``
    slots, 3 by default) and the sort path for the other batches."""

    def _term_arguments(self):
        return {"max_positives": self.max_positives}

    def get_config(self):
        config = super().get_config()
        config["max_positives"] = self.max_positives
        return config


@keras.saving.register_keras_serializable(package="tripletlab")
class TripletSemiHardLoss(SlotMiningLoss):
    r"""Triplet loss with TF Addons' semi-hard negative mining.

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(a, p) \in P}
        \max\bigl(m + d(a, p) - d(a, n^*(a, p)), 0\bigr)

    with :math:`n^*` the nearest negative strictly farther than ``p`` (fallback: the farthest
    negative) and :math:`m` = ``margin``. See
    :func:`tripletlab.losses.semi_hard_triplet_loss` for the full definition. A batch without
    positive pairs gives 0 (TF Addons gives NaN).

    Args:
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: replace the hinge by :math:`\log(1 + e^{d(a,p) - d(a,n^*)})`.
      max_positives: the number of positive slots of the sort-free path, which serves batches
        where no anchor has more positives (``K - 1`` for P x K batches); ``None`` means 3.
        Other batches get the exact loss through the sort path (chosen at run time under
        ``jit``).
      name: the loss's name.
      reduction: a Keras reduction; the default gives the documented value.
      dtype: the dtype Keras casts inputs to before the loss (labels too).

    Example:
      >>> import keras, tripletlab as tl
      >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2),
      ...                           keras.layers.UnitNormalization()])
      >>> model.compile(optimizer="adam", loss=tl.losses.TripletSemiHardLoss(margin=0.5))
    """

    _terms = staticmethod(semi_hard_terms)

    def __init__(
        self,
        margin=SEMI_HARD_MARGIN,
        *,
        distance="L2",
        soft=False,
        max_positives=None,
        name="triplet_semi_hard_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(margin, distance=distance, soft=soft, max_positives=max_positives,
                         name=name, reduction=reduction, dtype=dtype)


@keras.saving.register_keras_serializable(package="tripletlab")
class TripletHardLoss(MiningLoss):
    r"""Triplet loss with batch-hard mining (TF Addons' ``TripletHardLoss``).

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_{a}
        \max\bigl(\max_{p} d(a, p) - \min_{n} d(a, n) + m, 0\bigr)

    over positives ``p`` and negatives ``n`` of each anchor ``a``, :math:`m` = ``margin``. See
    :func:`tripletlab.losses.hard_triplet_loss`.

    Args:
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: replace the hinge by a stable :math:`\log(1 + e^{x})` of the gap (no margin).
      name: the loss's name.
      reduction: a Keras reduction; the default gives the documented value.
      dtype: the dtype Keras casts inputs to before the loss.
    """

    _terms = staticmethod(hard_terms)

    def __init__(
        self,
        margin=HARD_MARGIN,
        *,
        distance="L2",
        soft=False,
        name="triplet_hard_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(margin, distance=distance, soft=soft, name=name, reduction=reduction,
                         dtype=dtype)


@keras.saving.register_keras_serializable(package="tripletlab")
class TripletBatchAllLoss(SlotMiningLoss):
    r"""Triplet loss over all valid triplets (omoindrot's batch-all).

    .. math::
        \mathcal{L} = \frac{\sum_{(a,p,n)} \max(d(a,p) - d(a,n) + m, 0)}
                            {\#\{(a,p,n) : \text{loss} > 10^{-16}\} + 10^{-16}}

    over every valid triplet, :math:`m` = ``margin``. See
    :func:`tripletlab.losses.batch_all_triplet_loss`; the fraction of positive triplets is
    available as the metric :class:`tripletlab.mining_metrics.FractionPositiveTriplets`.

    Args:
      margin: the margin :math:`m` (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.
      soft: each triplet contributes :math:`\log(1 + e^{d(a,p) - d(a,n)})` (no margin).
      max_positives: the number of positive slots of the sort-free path, which serves batches
        where no anchor has more positives (``K - 1`` for P x K batches); ``None`` means 3.
        Other batches get the exact loss through the sort path (chosen at run time under
        ``jit``).
      name: the loss's name.
      reduction: a Keras reduction; the default gives the documented value.
      dtype: the dtype Keras casts inputs to before the loss.
    """

    _terms = staticmethod(batch_all_terms)

    def __init__(
        self,
        margin=BATCH_ALL_MARGIN,
        *,
        distance="L2",
        soft=False,
        max_positives=None,
        name="triplet_batch_all_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(margin, distance=distance, soft=soft, max_positives=max_positives,
                         name=name, reduction=reduction, dtype=dtype)
