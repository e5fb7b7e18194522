"""The Siamese (three-branch, shared-weight) network of the offline-triplet workflow."""

from __future__ import annotations

import keras
from keras import ops

from tripletlab._checks import check_bool

TRIPLET_INPUT_NAMES = ("anchor", "positive", "negative")
"""Keys accepted when the three inputs are given as a dict."""


@keras.saving.register_keras_serializable(package="tripletlab")
class TripletNetwork(keras.Model):
    """Runs one embedding model on anchors, positives and negatives (shared weights).

    The three embeddings are stacked on axis 1, so a plain Keras loss such as
    :class:`tripletlab.losses.offline.TripletLoss` receives one ``[B, 3, D]`` tensor
    ``y_pred`` (``y_pred[:, 0]`` anchors, ``y_pred[:, 1]`` positives, ``y_pred[:, 2]``
    negatives). There is exactly one set of weights: those of :attr:`embedding_model`, which
    is the single-input model to use for inference and export after training.

    The network holds no ``Lambda`` layer, so a saved ``.keras`` file loads with
    ``keras.saving.load_model(path, safe_mode=True)`` (the embedding model must itself be
    serialisable: built-in layers, or custom ones registered with
    ``keras.saving.register_keras_serializable``).

    Args:
      embedding_model: a ``keras.Model`` (or layer) mapping a batch of inputs to ``[B, D]``
        embeddings.
      name: the model name.
      **kwargs: passed to ``keras.Model`` (e.g. ``trainable``, ``dtype``).

    Raises:
      TypeError: ``embedding_model`` is not a Keras layer or model.

    Example:
      >>> import keras, numpy as np
      >>> from tripletlab.models import TripletNetwork
      >>> embed = keras.Sequential([keras.Input((64,)), keras.layers.Dense(8)])
      >>> net = TripletNetwork(embed)
      >>> x = np.zeros((5, 64), "float32")
      >>> tuple(net.predict((x, x, x), verbose=0).shape)
      (5, 3, 8)
      >>> net.embedding_model is embed
      True
    """

    def __init__(self, embedding_model, name="triplet_network", **kwargs):
        if not isinstance(embedding_model, keras.layers.Layer):
            raise TypeError("Expected `embedding_model` to be a keras.Model or keras.layers.Layer. "
                            f"Received: embedding_model={embedding_model!r} of type "
                            f"{type(embedding_model).__name__}.")
        super().__init__(name=name, **kwargs)
        self._embedding_model = embedding_model

    @property
    def embedding_model(self):
        """The shared single-input embedding model (for inference, evaluation and export)."""
        return self._embedding_model

    @staticmethod
    def _split_inputs(inputs):
        if isinstance(inputs, dict):
            missing = [key for key in TRIPLET_INPUT_NAMES if key not in inputs]
            if missing or len(inputs) != 3:
                raise ValueError(f"Expected the inputs to have exactly the keys "
                                 f"{TRIPLET_INPUT_NAMES}. Received: keys={sorted(inputs)}.")
            return tuple(inputs[key] for key in TRIPLET_INPUT_NAMES)
        if isinstance(inputs, (tuple, list)) and len(inputs) == 3:
            return tuple(inputs)
        received = (f"a {type(inputs).__name__} of {len(inputs)} items"
                    if isinstance(inputs, (tuple, list)) else f"type {type(inputs).__name__}")
        raise ValueError("Expected the inputs to be (anchors, positives, negatives) as a "
                         "tuple/list of three tensors or a dict with keys "
                         f"{TRIPLET_INPUT_NAMES}. Received: {received}.")

    def build(self, input_shape):
        """Builds the embedding model from the anchors' shape (if it is not built yet)."""
        if isinstance(input_shape, dict):
            anchor_shape = input_shape["anchor"]
        else:
            anchor_shape = input_shape[0]
        if not self._embedding_model.built:
            self._embedding_model.build(tuple(anchor_shape))
        self.built = True

    def call(self, inputs, training=None):
        """Embeds the three inputs with the shared model.

        Args:
          inputs: ``(anchors, positives, negatives)`` (tuple or list) or a dict with keys
            ``"anchor"``, ``"positive"``, ``"negative"``; each a batch of model inputs.
          training: Keras' training flag, passed to the embedding model.

        Returns:
          A ``[B, 3, D]`` tensor: anchors', positives' and negatives' embeddings on axis 1.
        """
        anchors, positives, negatives = self._split_inputs(inputs)
        embeddings = [self._embedding_model(part, training=training)
                      for part in (anchors, positives, negatives)]
        return ops.stack(embeddings, axis=1)

    def compute_output_shape(self, input_shape):
        """``[B, 3, D]`` from the anchors' input shape."""
        anchor_shape = input_shape["anchor"] if isinstance(input_shape, dict) else input_shape[0]
        embedding_shape = self._embedding_model.compute_output_shape(tuple(anchor_shape))
        return (embedding_shape[0], 3, *embedding_shape[1:])

    def get_config(self):
        """Returns ``{"name", "trainable", "dtype", "embedding_model"}`` (the embedding model
        serialised with ``keras.saving.serialize_keras_object``)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "embedding_model": keras.saving.serialize_keras_object(self._embedding_model),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the network (and its embedding model) from :meth:`get_config`'s output."""
        config = dict(config)
        embedding_model = keras.saving.deserialize_keras_object(
            config.pop("embedding_model"), custom_objects=custom_objects)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(embedding_model, **config)


def extract_embedding_model(model, *, strict=True):
    """Returns the single-input embedding model inside a triplet network.

    The one way to get the embedding model out of a model: the training loop, the command line
    and :class:`tripletlab.data.triplets.TripletGenerator` all call it (with ``strict=False``,
    as they take either kind of model).

    Args:
      model: a :class:`TripletNetwork` (for example one returned by
        ``keras.saving.load_model(path, safe_mode=True)``), or with ``strict=False`` any model.
      strict: raise a ``TypeError`` when ``model`` is not a :class:`TripletNetwork`; with
        ``False`` such a model is returned as it is (it is already an embedding model).

    Returns:
      The shared embedding model (``model.embedding_model``) of a :class:`TripletNetwork`, else
      (``strict=False``) ``model`` itself.

    Raises:
      TypeError: ``strict`` and ``model`` is not a :class:`TripletNetwork`, or ``strict`` is
        not a bool.

    Example:
      >>> import keras
      >>> from tripletlab.models import TripletNetwork, extract_embedding_model
      >>> embed = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
      >>> extract_embedding_model(TripletNetwork(embed)) is embed
      True
      >>> extract_embedding_model(embed, strict=False) is embed
      True
    """
    check_bool("strict", strict)
    if isinstance(model, TripletNetwork):
        return model.embedding_model
    if strict:
        raise TypeError("Expected `model` to be a tripletlab TripletNetwork. "
                        f"Received: model of type {type(model).__name__}.")
    return model
