"""RetrievalEvaluation: metrics land in `logs`, in time for CSVLogger and History."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from tripletlab.evaluation import RetrievalEvaluation, evaluate_embeddings


def embedding_loss(y_true, y_pred):
    # Any differentiable loss will do: the test is about the callback, not about training.
    return keras.ops.mean(keras.ops.square(y_pred), axis=-1)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=embedding_loss)
    return model


def tiny_data(rows=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 3
    x = (rng.normal(size=(rows, 4)) + 3.0 * np.eye(4)[labels]).astype(np.float32)
    return x, labels


class LogsProbe(keras.callbacks.Callback):
    """Records the keys each later callback sees at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(dict(logs))


KEYS = ["val_precision_at_1", "val_recall_at_1", "val_recall_at_2", "val_recall_at_4",
        "val_recall_at_8", "val_r_precision", "val_map_at_r"]


def test_metrics_reach_later_callbacks_csv_and_history(tmp_path):
    x, y = tiny_data()
    model = tiny_model()
    probe = LogsProbe()
    csv_path = tmp_path / "log.csv"
    history = model.fit(
        x, y.astype(np.float32), epochs=1, batch_size=8, verbose=0,
        callbacks=[RetrievalEvaluation(x, y), keras.callbacks.CSVLogger(str(csv_path)), probe],
    )
    assert set(KEYS) <= set(probe.seen[0])
    assert set(KEYS) <= set(history.history)
    with open(csv_path, newline="") as stream:
        header = next(csv.reader(stream))
    assert set(KEYS) <= set(header)
    # The logged values are the metrics of the trained model's embeddings.
    expected = evaluate_embeddings(model.predict(x, verbose=0), y, clustering=False)
    assert probe.seen[0]["val_map_at_r"] == pytest.approx(expected["map_at_r"])


def test_every_evaluates_first_every_nth_and_last_epoch():
    """every=3 over 4 epochs: epochs 1 (first), 3 (3rd) and 4 (last) have the keys; 2 has not."""
    x, y = tiny_data()
    probe = LogsProbe()
    tiny_model().fit(x, y.astype(np.float32), epochs=4, batch_size=12, verbose=0,
                     callbacks=[RetrievalEvaluation(x, y, every=3, recall_ks=(1,)), probe])
    has_metrics = ["val_map_at_r" in logs for logs in probe.seen]
    assert has_metrics == [True, False, True, True]


def test_query_reference_protocol_with_prefix_and_clustering():
    x, y = tiny_data(rows=30, seed=1)
    probe = LogsProbe()
    callback = RetrievalEvaluation(x[:12], y[:12], x[12:], y[12:], distance="angular",
                                   prefix="test_", recall_ks=(1, 2), clustering=True)
    tiny_model().fit(x, y.astype(np.float32), epochs=1, batch_size=10, verbose=0,
                     callbacks=[callback, probe])
    assert {"test_precision_at_1", "test_recall_at_2", "test_map_at_r", "test_nmi",
            "test_ami"} <= set(probe.seen[0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x_reference": np.zeros((2, 4))}, ValueError, "both given"),
        ({"distance": "cosine"}, ValueError, "distance"),
        ({"every": 0}, ValueError, "every"),
        ({"prefix": 1}, TypeError, "prefix"),
        ({"recall_ks": ()}, ValueError, "recall_ks"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
    ids=["reference-without-labels", "distance", "every-zero", "prefix-not-str",
         "no-recall-k", "batch-size-zero"],
)
def test_bad_arguments(kwargs, error, match):
    x, y = tiny_data()
    with pytest.raises(error, match=match):
        RetrievalEvaluation(x, y, **kwargs)


def test_embedding_model_scores_the_inner_network():
    """``embedding_model=``: the model being fit wraps the embedding network (its output is not
    the embedding, as with a triplet network); the callback scores the inner network."""
    x, y = tiny_data()
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    outer.compile(optimizer="sgd", loss=embedding_loss)
    probe = LogsProbe()
    outer.fit(x, y.astype(np.float32), epochs=1, batch_size=8, verbose=0,
              callbacks=[RetrievalEvaluation(x, y, recall_ks=(1,), embedding_model=inner),
                         probe])
    expected = evaluate_embeddings(inner.predict(x, verbose=0), y, recall_ks=(1,))
    assert probe.seen[0]["val_map_at_r"] == pytest.approx(expected["map_at_r"])
    wrapped = evaluate_embeddings(outer.predict(x, verbose=0), y, recall_ks=(1,))
    assert wrapped["map_at_r"] != pytest.approx(expected["map_at_r"])
