"""Drop-in replacement for omoindrot/tensorflow-triplet-loss ``model/triplet_loss.py``.

Change ``from model.triplet_loss import batch_all_triplet_loss`` into
``from tripletlab.compat.omoindrot import batch_all_triplet_loss``: same signatures and values,
on every Keras 3 backend, with O(B^2) memory (the original broadcasts ``B x B x B`` tensors).
Labels may also be ``[B, 1]`` (the original silently broadcasts those against ``[B]`` into a
``[B, B]`` mask, which gives wrong values).
"""

from __future__ import annotations

from keras import ops

from tripletlab.distance_names import L2, SQUARED_L2
from tripletlab.distances import distance_geometry
from tripletlab.losses.functional import batch_all_terms, check_loss_arguments, hard_terms
from tripletlab.losses.inputs import prepare_inputs
from tripletlab.mining import EmbeddingDistances

__all__ = ["batch_all_triplet_loss", "batch_hard_triplet_loss"]


def _prepare(labels, embeddings, margin, squared):
    check_loss_arguments(margin, False)
    if not isinstance(squared, bool):
        raise TypeError(f"Expected `squared` to be True or False. Received: squared={squared!r}.")
    labels, embeddings, input_dtype = prepare_inputs(labels, embeddings)
    # The gradient goes to the embeddings in closed form (see tripletlab.mining.distance_matrix).
    distances = EmbeddingDistances(distance_geometry(embeddings, SQUARED_L2 if squared else L2))
    return labels, distances, input_dtype


def batch_all_triplet_loss(labels, embeddings, margin, squared=False):
    r"""Mean loss over the valid triplets with a positive loss, and their fraction.

    .. math::
        \mathcal{L} = \frac{\sum_{(a,p,n)} \max(d(a,p) - d(a,n) + m, 0)}{N_{>0} + 10^{-16}}

    Args:
      labels: ``[B]`` integer labels.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m`.
      squared: use squared Euclidean distances.

    Returns:
      ``(triplet_loss, fraction_positive_triplets)``.
    """
    labels, distances, input_dtype = _prepare(labels, embeddings, margin, squared)
    terms = batch_all_terms(labels, distances, margin)
    return ops.cast(terms.loss(), input_dtype), ops.cast(terms.fraction_positive, input_dtype)


def batch_hard_triplet_loss(labels, embeddings, margin, squared=False):
    r"""Mean over anchors of ``max(hardest positive - hardest negative + margin, 0)``.

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_a \max(\max_p d(a,p) - \min_n d(a,n) + m, 0)

    Args:
      labels: ``[B]`` integer labels.
      embeddings: ``[B, D]`` embeddings.
      margin: the margin :math:`m`.
      squared: use squared Euclidean distances.

    Returns:
      The scalar ``triplet_loss``.
    """
    labels, distances, input_dtype = _prepare(labels, embeddings, margin, squared)
    return ops.cast(hard_terms(labels, distances, margin).loss(), input_dtype)
