"""TF Addons' triplet losses, as ``tripletlab.compat.tfa.losses`` (``tfa.losses`` in TF Addons).

The implementation behind :mod:`tripletlab.compat.tfa`; both spellings give the same objects, so
``from tensorflow_addons.losses import TripletSemiHardLoss`` becomes
``from tripletlab.compat.tfa.losses import TripletSemiHardLoss`` and
``tfa.losses.TripletSemiHardLoss()`` runs after ``import tripletlab.compat.tfa as tfa``.
See :mod:`tripletlab.compat.tfa` for the deviations from TF Addons.
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab._checks import check_choice
from tripletlab.compat.tfa import DISTANCE_METRICS
from tripletlab.distance_names import L2
from tripletlab.distances import distance_geometry, pairwise_distances
from tripletlab.losses.classes import MiningLoss
from tripletlab.losses.functional import (
    check_loss_arguments,
    hard_terms,
    mining_distances,
    semi_hard_terms,
)
from tripletlab.losses.inputs import bounded_distances, prepare_inputs
from tripletlab.losses.margins import TFA_MARGIN
from tripletlab.mining import EmbeddingDistances

__all__ = ["TripletHardLoss", "TripletSemiHardLoss", "triplet_hard_loss", "triplet_semihard_loss"]


def _check_metric(distance_metric):
    if callable(distance_metric):
        return distance_metric
    return check_choice("distance_metric", distance_metric, DISTANCE_METRICS)


def _distances(embeddings, distance_metric):
    if callable(distance_metric):
        return ops.cast(distance_metric(embeddings), embeddings.dtype)
    return pairwise_distances(embeddings, distance_metric)


def _loss(terms_function, y_true, y_pred, margin, soft, distance_metric):
    check_loss_arguments(margin, soft)
    _check_metric(distance_metric)
    labels, embeddings, input_dtype = prepare_inputs(y_true, y_pred)
    if callable(distance_metric):
        distances = _distances(embeddings, distance_metric)
    else:  # the gradient goes to the embeddings in closed form
        distances = EmbeddingDistances(distance_geometry(embeddings, distance_metric))
    terms = terms_function(labels, distances, margin, soft)
    return ops.cast(terms.loss(), input_dtype)


def triplet_semihard_loss(y_true, y_pred, margin=TFA_MARGIN, distance_metric="L2"):
    r"""TF Addons' ``triplet_semihard_loss`` (see :func:`tripletlab.losses.semi_hard_triplet_loss`).

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(a,p) \in P} \max(m + d(a,p) - d(a,n^*), 0)

    Args:
      y_true: ``[B]`` or ``[B, 1]`` integer labels.
      y_pred: ``[B, D]`` embeddings.
      margin: the margin :math:`m`.
      distance_metric: ``"L2"``, ``"squared-L2"``, ``"angular"`` or a callable returning the
        ``[B, B]`` distance matrix.

    Returns:
      The scalar loss in the dtype of ``y_pred``.
    """
    return _loss(semi_hard_terms, y_true, y_pred, margin, False, distance_metric)


def triplet_hard_loss(y_true, y_pred, margin=TFA_MARGIN, soft=False, distance_metric="L2"):
    r"""TF Addons' ``triplet_hard_loss`` (see :func:`tripletlab.losses.hard_triplet_loss`).

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \max(\max_p d(a,p) - \min_n d(a,n) + m, 0)

    Args:
      y_true: ``[B]`` or ``[B, 1]`` integer labels.
      y_pred: ``[B, D]`` embeddings.
      margin: the margin :math:`m` (unused when ``soft``).
      soft: use ``log(1 + exp(gap))`` (computed stably).
      distance_metric: ``"L2"``, ``"squared-L2"``, ``"angular"`` or a callable.

    Returns:
      The scalar loss in the dtype of ``y_pred``.
    """
    return _loss(hard_terms, y_true, y_pred, margin, soft, distance_metric)


class _TfaLoss(MiningLoss):
    def __init__(self, margin, soft, distance_metric, name, **kwargs):
        self.distance_metric = _check_metric(distance_metric)
        super().__init__(margin, distance=L2, soft=soft, name=name,
                         reduction=kwargs.pop("reduction", "sum_over_batch_size"),
                         dtype=kwargs.pop("dtype", None))
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {sorted(kwargs)}")

    def distances(self, embeddings, input_dtype=None):
        if callable(self.distance_metric):
            return bounded_distances(_distances(embeddings, self.distance_metric), L2)
        return mining_distances(embeddings, self.distance_metric, input_dtype or embeddings.dtype)

    def get_config(self):
        config = super().get_config()
        del config["distance"]
        metric = self.distance_metric
        config["distance_metric"] = (
            keras.saving.serialize_keras_object(metric) if callable(metric) else metric)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("distance_metric"), dict):
            config["distance_metric"] = keras.saving.deserialize_keras_object(
                config["distance_metric"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tripletlab.compat.tfa")
class TripletSemiHardLoss(_TfaLoss):
    r"""TF Addons' ``TripletSemiHardLoss(margin=1.0, distance_metric="L2")``.

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(a,p) \in P} \max(m + d(a,p) - d(a,n^*), 0)

    Args:
      margin: the margin :math:`m`.
      distance_metric: ``"L2"``, ``"squared-L2"``, ``"angular"`` or a callable.
      name: the loss's name.
      **kwargs: ``reduction`` and ``dtype`` of ``keras.losses.Loss``.
    """

    _terms = staticmethod(semi_hard_terms)

    def __init__(self, margin=TFA_MARGIN, distance_metric="L2", name=None, **kwargs):
        kwargs.pop("soft", None)  # present in configs written by get_config
        super().__init__(margin, False, distance_metric, name or "triplet_semihard_loss", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["soft"]
        return config


@keras.saving.register_keras_serializable(package="tripletlab.compat.tfa")
class TripletHardLoss(_TfaLoss):
    r"""TF Addons' ``TripletHardLoss(margin=1.0, soft=False, distance_metric="L2")``.

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \max(\max_p d(a,p) - \min_n d(a,n) + m, 0)

    Args:
      margin: the margin :math:`m`.
      soft: use a stable ``log(1 + exp(gap))`` instead of the hinge.
      distance_metric: ``"L2"``, ``"squared-L2"``, ``"angular"`` or a callable.
      name: the loss's name.
      **kwargs: ``reduction`` and ``dtype`` of ``keras.losses.Loss``.
    """

    _terms = staticmethod(hard_terms)

    def __init__(self, margin=TFA_MARGIN, soft=False, distance_metric="L2", name=None, **kwargs):
        super().__init__(margin, soft, distance_metric, name or "triplet_hard_loss", **kwargs)
