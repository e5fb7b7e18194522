"""Evaluation of embeddings: exact kNN search (faiss), retrieval and clustering metrics.

Example:
  >>> import numpy as np
  >>> from tripletlab.evaluation import evaluate_embeddings, format_metrics_table
  >>> x = np.array([[0.0], [0.1], [5.0], [5.2]], dtype="float32")
  >>> metrics = evaluate_embeddings(x, [0, 0, 1, 1], recall_ks=(1,), clustering=False)
  >>> print(format_metrics_table(metrics))
  metric          value
  --------------  ------
  precision_at_1  1.0000
  recall_at_1     1.0000
  r_precision     1.0000
  map_at_r        1.0000

faiss and scikit-learn are optional (``pip install "tripletlab[eval]"``); they are imported when
a search or a clustering runs.
"""

from tripletlab.evaluation.callback import RetrievalEvaluation
from tripletlab.evaluation.knn import Neighbors, iter_nearest_neighbors, nearest_neighbors
from tripletlab.evaluation.metrics import (
    clustering_scores,
    evaluate_embeddings,
    format_metrics_table,
    map_at_r,
    precision_at_1,
    r_precision,
    recall_at_k,
    save_metrics,
)

__all__ = [
    "Neighbors",
    "RetrievalEvaluation",
    "clustering_scores",
    "evaluate_embeddings",
    "format_metrics_table",
    "iter_nearest_neighbors",
    "map_at_r",
    "nearest_neighbors",
    "precision_at_1",
    "r_precision",
    "recall_at_k",
    "save_metrics",
]
