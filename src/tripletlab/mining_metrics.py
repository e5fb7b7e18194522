"""Mining statistics as Keras metrics: what to watch while a triplet loss trains.

* :class:`FractionPositiveTriplets`: the fraction of valid triplets that still violate the
  margin (omoindrot's ``fraction_positive_triplets``). It falls as the embedding learns; if it
  *rises* while the loss sits at the margin, the embedding is collapsing (omoindrot #18, #25).
* :class:`HardestPositiveDistance` / :class:`HardestNegativeDistance`: the batch means of each
  anchor's hardest positive and hardest negative distance. Both near 0 means collapse.

Each is a ``keras.metrics.Mean`` over batches of one per-batch statistic, so it works inside
``model.fit`` on every backend, with ``jit_compile=True`` too::

    model.compile(optimizer="adam", loss=tl.losses.TripletSemiHardLoss(),
                  metrics=[tl.metrics.FractionPositiveTriplets(margin=1.0)])
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab._checks import check_number
from tripletlab.distances import check_distance, pairwise_distances
from tripletlab.losses.functional import batch_all_terms
from tripletlab.losses.inputs import prepare_inputs
from tripletlab.mining import hardest_negative, hardest_positive, label_masks


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def mining_statistics(labels, embeddings, margin=0.5, distance="L2"):
    """Computes the batch's mining statistics.

    Args:
      labels: ``[B]`` or ``[B, 1]`` integer labels.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin used to call a triplet positive (``>= 0``).
      distance: ``"L2"``, ``"squared-L2"``, ``"angular"`` or ``"normalized-L2"``.

    Returns:
      A dict of float32 scalars: ``fraction_positive_triplets`` (of all valid triplets, those
      with ``d(a,p) - d(a,n) + margin > 0``), ``hardest_positive_distance`` (mean over anchors
      that have a positive) and ``hardest_negative_distance`` (mean over anchors that have a
      negative).
    """
    check_number("margin", margin, minimum=0.0)
    check_distance(distance)
    labels, embeddings, _ = prepare_inputs(labels, embeddings)
    distances = ops.stop_gradient(pairwise_distances(ops.cast(embeddings, "float32"), distance))
    positive, negative = label_masks(labels)
    positive_distance, has_positive = hardest_positive(distances, positive)
    negative_distance, has_negative = hardest_negative(distances, negative)
    return {
        "fraction_positive_triplets": batch_all_terms(labels, distances, margin).fraction_positive,
        "hardest_positive_distance": _masked_mean(positive_distance, has_positive),
        "hardest_negative_distance": _masked_mean(negative_distance, has_negative),
    }


class _MiningStatistic(keras.metrics.Mean):
    _statistic = None  # the key of ``mining_statistics`` this metric tracks

    def __init__(self, margin=0.5, distance="L2", name=None, dtype=None):
        check_number("margin", margin, minimum=0.0)
        check_distance(distance)
        super().__init__(name=name or self._statistic, dtype=dtype)
        self.margin = float(margin)
        self.distance = distance

    def update_state(self, y_true, y_pred, sample_weight=None):
        value = mining_statistics(y_true, y_pred, self.margin, self.distance)[self._statistic]
        return super().update_state(value)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "distance": self.distance})
        return config


@keras.saving.register_keras_serializable(package="tripletlab")
class FractionPositiveTriplets(_MiningStatistic):
    """Fraction of valid triplets with ``d(a,p) - d(a,n) + margin > 0``, averaged over batches.

    Args:
      margin: the margin of the loss being trained (``>= 0``).
      distance: the loss's distance.
      name: the metric's name (default ``"fraction_positive_triplets"``).
      dtype: the metric's dtype.
    """

    _statistic = "fraction_positive_triplets"


@keras.saving.register_keras_serializable(package="tripletlab")
class HardestPositiveDistance(_MiningStatistic):
    """Mean over anchors of the distance to the farthest same-class sample.

    Args:
      margin: unused by this statistic; kept so all mining metrics share one signature.
      distance: the loss's distance.
      name: the metric's name (default ``"hardest_positive_distance"``).
      dtype: the metric's dtype.
    """

    _statistic = "hardest_positive_distance"


@keras.saving.register_keras_serializable(package="tripletlab")
class HardestNegativeDistance(_MiningStatistic):
    """Mean over anchors of the distance to the nearest other-class sample.

    Args:
      margin: unused by this statistic; kept so all mining metrics share one signature.
      distance: the loss's distance.
      name: the metric's name (default ``"hardest_negative_distance"``).
      dtype: the metric's dtype.
    """

    _statistic = "hardest_negative_distance"


def mining_metrics(margin=0.5, distance="L2"):
    """The three mining metrics for ``model.compile(metrics=...)``."""
    return [
        FractionPositiveTriplets(margin, distance),
        HardestPositiveDistance(margin, distance),
        HardestNegativeDistance(margin, distance),
    ]
