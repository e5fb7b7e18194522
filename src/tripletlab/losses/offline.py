"""The offline triplet loss: one loss term per given (anchor, positive, negative) triplet.

This is the loss of the Siamese-network workflow (Keras' "Siamese Network with Triplet Loss"
example): the triplets are chosen before the batch reaches the model, by
:class:`tripletlab.data.triplets.TripletGenerator`, and a shared embedding model
(:class:`tripletlab.models.TripletNetwork`) embeds the three inputs. Unlike the online
mining losses (``TripletSemiHardLoss``, ``TripletHardLoss``, ``TripletBatchAllLoss``) nothing is
mined inside the loss and ``y_true`` is ignored.
"""

from __future__ import annotations

import keras
from keras import ops

from tripletlab._checks import check_choice, check_number
from tripletlab.distances import PAIRED_DISTANCES, paired_distances
from tripletlab.losses.inputs import compute_dtype
from tripletlab.losses.margins import OFFLINE_MARGIN


def _check_arguments(margin, distance):
    check_number("margin", margin, minimum=0.0)
    check_choice("distance", distance, PAIRED_DISTANCES)


def offline_triplet_loss(anchors, positives, negatives, margin=OFFLINE_MARGIN, *, distance="L2"):
    r"""Per-triplet hinge loss for given (anchor, positive, negative) embeddings.

    .. math::

        L_i = \max\big(d(a_i, p_i) - d(a_i, n_i) + \alpha,\ 0\big)

    with :math:`a_i, p_i, n_i` the ``i``-th rows of ``anchors``, ``positives`` and
    ``negatives``, :math:`d` = ``distance`` and :math:`\alpha` = ``margin``.

    Computed in float32 when the inputs are float16/bfloat16; the result has the input dtype.

    Args:
      anchors: ``[B, D]`` floating tensor (any Keras backend, or NumPy).
      positives: ``[B, D]`` embeddings of samples of the anchor's class.
      negatives: ``[B, D]`` embeddings of samples of another class.
      margin: the non-negative margin :math:`\alpha`.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"`` or
        ``"mean-squared"`` (the mean over the ``D`` dimensions of the squared difference,
        i.e. ``"squared-L2"`` divided by ``D``).

    Returns:
      A ``[B]`` tensor of per-triplet losses (not reduced).

    Raises:
      ValueError: ``margin`` is negative or not finite, or ``distance`` is unknown.
      TypeError: ``margin`` is not a number.

    Example:
      >>> import numpy as np
      >>> from tripletlab.losses.offline import offline_triplet_loss
      >>> a = np.array([[0.0, 0.0]], "float32")
      >>> p = np.array([[1.0, 0.0]], "float32")
      >>> n = np.array([[0.0, 1.5]], "float32")
      >>> float(np.asarray(offline_triplet_loss(a, p, n, margin=1.0))[0])
      0.5
    """
    _check_arguments(margin, distance)
    anchors = ops.convert_to_tensor(anchors)
    dtype = keras.backend.standardize_dtype(anchors.dtype)
    if not dtype.startswith("float") and dtype != "bfloat16":
        dtype = keras.backend.floatx()
    working_dtype = compute_dtype(dtype)
    anchors = ops.cast(anchors, working_dtype)
    positives = ops.cast(ops.convert_to_tensor(positives), working_dtype)
    negatives = ops.cast(ops.convert_to_tensor(negatives), working_dtype)
    positive_distance = paired_distances(anchors, positives, distance)
    negative_distance = paired_distances(anchors, negatives, distance)
    losses = ops.maximum(positive_distance - negative_distance + margin, 0.0)
    return ops.cast(losses, dtype)


def split_triplet_embeddings(y_pred):
    """Splits a ``[B, 3, D]`` tensor (or a tuple/list of three ``[B, D]``) into its three parts.

    Args:
      y_pred: the output of :class:`tripletlab.models.TripletNetwork` (anchors,
        positives and negatives stacked on axis 1), or a tuple/list of three ``[B, D]`` tensors.

    Returns:
      ``(anchors, positives, negatives)``, each ``[B, D]``.

    Raises:
      ValueError: ``y_pred`` has another structure or shape.

    Example:
      >>> import numpy as np
      >>> from tripletlab.losses.offline import split_triplet_embeddings
      >>> a, p, n = split_triplet_embeddings(np.zeros((4, 3, 8), "float32"))
      >>> tuple(a.shape)
      (4, 8)
    """
    if isinstance(y_pred, (tuple, list)):
        if len(y_pred) != 3:
            raise ValueError("Expected `y_pred` to be a tensor [B, 3, D] or three tensors "
                             f"[B, D]. Received: a {type(y_pred).__name__} of {len(y_pred)} "
                             "items.")
        return tuple(y_pred)
    shape = tuple(y_pred.shape)
    if len(shape) != 3 or (shape[1] is not None and shape[1] != 3):
        raise ValueError("Expected `y_pred` to be a tensor [B, 3, D] (anchor, positive, "
                         f"negative embeddings stacked on axis 1). Received: shape={shape}.")
    return y_pred[:, 0, :], y_pred[:, 1, :], y_pred[:, 2, :]


@keras.saving.register_keras_serializable(package="tripletlab")
class TripletLoss(keras.losses.Loss):
    r"""Offline triplet loss on (anchor, positive, negative) embeddings; ``y_true`` is ignored.

    .. math::

        L_i = \max\big(d(a_i, p_i) - d(a_i, n_i) + \alpha,\ 0\big)

    with :math:`(a_i, p_i, n_i)` = ``y_pred[i, 0]``, ``y_pred[i, 1]``, ``y_pred[i, 2]``,
    :math:`d` = ``distance`` and :math:`\alpha` = ``margin``. The per-triplet losses are
    reduced by ``reduction``, so ``sample_weight`` weighs triplets.

    Args:
      margin: the non-negative margin :math:`\alpha`.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"`` or
        ``"mean-squared"`` (mean over dimensions of the squared difference).
      name: the loss name.
      reduction: a Keras reduction (``"sum_over_batch_size"``, ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``).
      dtype: the dtype of the loss computation (Keras' ``dtype`` argument; default floatx).

    Raises:
      ValueError: ``margin`` is negative, ``distance`` unknown or ``reduction`` invalid.
      TypeError: ``margin`` is not a number.

    Example:
      >>> import numpy as np
      >>> from tripletlab.losses.offline import TripletLoss
      >>> y_pred = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]]], "float32")  # [B=1, 3, D=2]
      >>> round(float(TripletLoss(margin=1.0)(np.zeros(1), y_pred)), 4)
      0.5

      With :class:`tripletlab.models.TripletNetwork` and
      :class:`tripletlab.data.triplets.TripletGenerator`::

          net = TripletNetwork(embedding_model)
          net.compile(optimizer="adam", loss=TripletLoss(margin=0.5, distance="mean-squared"))
          net.fit(TripletGenerator(x, y, batch_size=32), epochs=5)
    """

    def __init__(self, margin=OFFLINE_MARGIN, *, distance="L2", name="triplet_loss",
                 reduction="sum_over_batch_size", dtype=None):
        _check_arguments(margin, distance)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = margin
        self.distance = distance

    def call(self, y_true, y_pred):
        """Returns the ``[B]`` per-triplet losses; ``y_true`` (dummy targets) is unused."""
        del y_true
        anchors, positives, negatives = split_triplet_embeddings(y_pred)
        return offline_triplet_loss(anchors, positives, negatives, margin=self.margin,
                                    distance=self.distance)

    def get_config(self):
        """Returns the constructor arguments (``name``, ``reduction``, ``margin``, ``distance``,
        ``dtype``)."""
        config = {
            "name": self.name,
            "reduction": self.reduction,
            "margin": self.margin,
            "distance": self.distance,
        }
        policy = getattr(self, "_dtype_policy", None)
        if policy is not None and policy.name != keras.backend.floatx():
            config["dtype"] = keras.dtype_policies.serialize(policy)
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds the loss from :meth:`get_config`'s output."""
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
