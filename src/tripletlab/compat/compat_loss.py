"""``CompatLoss``: the omoindrot and triplet-tools losses as one serialisable Keras loss.

The originals are functions (omoindrot) and factories of functions (triplet-tools), which Keras
cannot save and reload by themselves; ``tripletlab train --loss omoindrot-batch-all`` (and the
other compat losses of :mod:`tripletlab.compat.loss_specs`) compiles this class instead, so a
checkpoint reloads for ``--resume``. Its registered Keras name stays
``"tripletlab.train>CompatLoss"`` (where it was first defined), so saved models keep loading.
"""

from __future__ import annotations

import keras

from tripletlab._checks import check_choice
from tripletlab.compat.loss_options import (
    COMPAT_LOSSES,
    OMOINDROT_SQUARED,
    TRIPLET_TOOLS_METRICS,
)

__all__ = ["COMPAT_LOSSES", "CompatLoss"]


@keras.saving.register_keras_serializable(package="tripletlab.train")
class CompatLoss(keras.losses.Loss):
    """A ``keras.losses.Loss`` around a compat loss function (serialisable by name).

    omoindrot's ``batch_all_triplet_loss`` returns ``(loss, fraction)``; only the loss is kept.
    triplet-tools' factories return ``loss(y_true, y_pred)``; ``distance`` maps onto its
    ``metric`` (``"L2"`` → ``"euclidean"``, ``"normalized-L2"`` → ``"euclidean_norm"``,
    ``"angular"`` → ``"cosine"``).

    Args:
      loss: ``"omoindrot-batch-all"``, ``"omoindrot-batch-hard"``, ``"triplet-tools-semihard"``
        or ``"triplet-tools-hard"``.
      margin: the margin.
      distance: the distance (see above; omoindrot: ``"L2"`` or ``"squared-L2"``).
      semi_margin: triplet-tools-semihard's ``semi_margin``.
      name: the loss's name (default: ``loss`` with underscores).
      **kwargs: ``reduction`` and ``dtype`` of ``keras.losses.Loss``.
    """

    def __init__(self, loss, margin, distance="L2", semi_margin=0.0, name=None, **kwargs):
        check_choice("loss", loss, COMPAT_LOSSES)
        super().__init__(name=name or loss.replace("-", "_"), **kwargs)
        self.loss_name = loss
        self.margin = float(margin)
        self.distance = distance
        self.semi_margin = float(semi_margin)
        if loss.startswith("omoindrot"):
            from tripletlab.compat import omoindrot

            function = (omoindrot.batch_all_triplet_loss if loss == "omoindrot-batch-all"
                        else omoindrot.batch_hard_triplet_loss)
            squared = OMOINDROT_SQUARED[check_choice("distance", distance, OMOINDROT_SQUARED)]

            def compute(y_true, y_pred):
                value = function(keras.ops.reshape(y_true, (-1,)), y_pred, self.margin, squared)
                return value[0] if isinstance(value, tuple) else value
        else:
            from tripletlab.compat import triplet_tools

            metric = TRIPLET_TOOLS_METRICS[check_choice("distance", distance,
                                                        TRIPLET_TOOLS_METRICS)]
            if loss == "triplet-tools-semihard":
                compute = triplet_tools.triplet_batch_semihard_loss(
                    margin=self.margin, semi_margin=self.semi_margin, metric=metric)
            else:
                compute = triplet_tools.triplet_batch_hard_loss(margin=self.margin, metric=metric)
        self._compute = compute

    def call(self, y_true, y_pred):
        return self._compute(y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({"loss": self.loss_name, "margin": self.margin, "distance": self.distance,
                       "semi_margin": self.semi_margin})
        return config
