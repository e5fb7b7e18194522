"""A Keras callback that measures retrieval quality on held-out data during training."""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tripletlab._checks import check_bool, check_number
from tripletlab.distances import check_distance
from tripletlab.errors import ConfigError, ConfigTypeError
from tripletlab.evaluation.metrics import check_labels, check_recall_ks, evaluate_embeddings
from tripletlab.inference import embed


class RetrievalEvaluation(keras.callbacks.Callback):
    """Embeds held-out data at the end of epochs and writes retrieval metrics into ``logs``.

    At the end of the first epoch, of every ``every``-th epoch and of the last epoch, the model
    embeds the queries (and references) with ``model.predict(..., verbose=0)`` and
    :func:`~tripletlab.evaluation.evaluate_embeddings` scores them; each metric is added to the
    epoch's ``logs`` as ``prefix + name`` (``val_precision_at_1``, ``val_recall_at_1``,
    ``val_r_precision``, ``val_map_at_r``, ...).

    **Order matters:** Keras passes one ``logs`` dict to the callbacks in list order, so put this
    callback *before* the ones that read the metrics (``CSVLogger``, ``TensorBoard``,
    ``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``). ``History`` and the progress
    bar are added by Keras at the end of the list and always see them. Evaluating on the first
    epoch makes ``CSVLogger`` (which fixes its columns at the first epoch) include the metric
    columns; epochs that are skipped have no value (``NA`` in the CSV).

    Pass a subset (a few thousand examples): the search is exact, and runs every evaluated
    epoch.

    Args:
      x_query: model inputs of the queries (anything ``model.predict`` accepts).
      y_query: ``[Q]`` (or ``[Q, 1]``) class labels of the queries.
      x_reference: model inputs of the references, or ``None`` for leave-one-out within the
        queries.
      y_reference: ``[N]`` labels of the references; given exactly when ``x_reference`` is.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"``; use the
        distance the model was trained with.
      every: evaluate every this many epochs (plus the first and the last).
      prefix: prepended to each metric name in ``logs``.
      recall_ks: the ``k`` of each ``recall_at_k`` entry.
      clustering: also compute NMI and AMI (k-means; slower).
      batch_size: the ``model.predict`` batch size.
      seed: the k-means random state.
      embedding_model: the model that embeds the inputs; default the model being trained
        (pass the inner embedding network when training a wrapper such as
        :class:`~tripletlab.models.TripletNetwork`, whose output is not the embedding).

    Raises:
      ConfigError, ConfigTypeError: bad options or labels (a ValueError, a TypeError).

    Example:
      >>> callbacks = [  # doctest: +SKIP
      ...     RetrievalEvaluation(x_val, y_val, distance="L2", every=1),
      ...     keras.callbacks.CSVLogger("log.csv"),  # after it: sees val_map_at_r
      ... ]
      >>> model.fit(x_train, y_train, epochs=10, callbacks=callbacks)  # doctest: +SKIP
    """

    def __init__(
        self,
        x_query,
        y_query,
        x_reference=None,
        y_reference=None,
        *,
        distance: str = "L2",
        every: int = 1,
        prefix: str = "val_",
        recall_ks: Iterable[int] = (1, 2, 4, 8),
        clustering: bool = False,
        batch_size: int = 256,
        seed: int = 0,
        embedding_model: keras.Model | None = None,
    ):
        super().__init__()
        if (x_reference is None) != (y_reference is None):
            raise ConfigError(
                "Expected `x_reference` and `y_reference` to be both given or both None. "
                f"Received: x_reference={'None' if x_reference is None else 'given'}, "
                f"y_reference={'None' if y_reference is None else 'given'}."
            )
        if not isinstance(prefix, str):
            raise ConfigTypeError(f"Expected `prefix` to be a string. "
                                  f"Received: prefix={prefix!r}.")
        self.x_query = x_query
        self.y_query = check_labels("y_query", y_query)
        self.x_reference = x_reference
        self.y_reference = None if y_reference is None else check_labels("y_reference",
                                                                           y_reference)
        self.distance = check_distance(distance)
        self.every = int(check_number("every", every, minimum=1, integer=True))
        self.prefix = prefix
        self.recall_ks = check_recall_ks(recall_ks)
        self.clustering = check_bool("clustering", clustering)
        self.batch_size = int(check_number("batch_size", batch_size, minimum=1, integer=True))
        self.seed = int(check_number("seed", seed, minimum=0, integer=True))
        self.embedding_model = embedding_model

    def _due(self, epoch: int) -> bool:
        last = (self.params or {}).get("epochs")
        return epoch == 0 or (epoch + 1) % self.every == 0 or (last is not None
                                                               and epoch + 1 == last)

    def evaluate(self) -> dict[str, float]:
        """Embeds the held-out data with the current model and returns the metrics (no prefix).

        Returns:
          The dict of :func:`~tripletlab.evaluation.evaluate_embeddings`.
        """
        model = self.embedding_model if self.embedding_model is not None else self.model
        queries = embed(model, self.x_query, self.batch_size)
        references = (None if self.x_reference is None
                      else embed(model, self.x_reference, self.batch_size))
        return evaluate_embeddings(
            queries, self.y_query, references, self.y_reference,
            distance=self.distance, recall_ks=self.recall_ks, clustering=self.clustering,
            seed=self.seed,
        )

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._due(epoch):
            return
        for name, value in self.evaluate().items():
            logs[self.prefix + name] = value
