"""Retrieval and clustering metrics of embeddings, as in Musgrave et al. (2020).

Definitions follow K. Musgrave, S. Belongie, S.-N. Lim, "A Metric Learning Reality Check",
ECCV 2020 (https://arxiv.org/abs/2003.08505). For a query ``q`` with label ``y_q``, its neighbours
``n_1, n_2, ...`` (nearest first) and ``rel(i) = 1 if y_{n_i} = y_q else 0``:

* ``R`` is the number of references of the query's class: in the leave-one-out protocol (the
  queries are the references) the query itself is not counted.
* ``P(i) = (1/i) * sum_{j<=i} rel(j)`` is the precision among the first ``i`` neighbours.

Every metric is the mean over queries of a per-query value. Queries with ``R = 0`` (a class with
one example in leave-one-out, or a class absent from the references) cannot be answered: they are
left out of every retrieval metric, with a warning, as pytorch-metric-learning does.

Two protocols, chosen by ``reference_labels``:

* ``reference_labels=None``: **leave-one-out** within the queries. The neighbours must come from
  ``nearest_neighbors(x, None, k, exclude_self=True)``.
* ``reference_labels`` given: **query -> reference** (e.g. test -> train). The neighbours index
  rows of the references.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from tripletlab._checks import check_bool, check_number
from tripletlab.atomic import Recorder, write_json
from tripletlab.distances import NORMALIZED_DISTANCES, check_distance
from tripletlab.errors import ConfigError, ConfigTypeError, MissingExtraError
from tripletlab.evaluation.knn import (
    Neighbors,
    check_embeddings,
    import_faiss,
    iter_nearest_neighbors,
)
from tripletlab.numpy_distances import normalize_rows

_BLOCK_ELEMENTS = 1 << 22  # rows x neighbours scored at once (bounds the temporary arrays)
_SEARCH_ELEMENTS = 1 << 23  # query rows x k searched at once by evaluate_embeddings


# --------------------------------------------------------------------------------------------
# Retrieval metrics on a Neighbors result
# --------------------------------------------------------------------------------------------


def precision_at_1(query_labels, neighbors: Neighbors, *, reference_labels=None) -> float:
    """Precision at 1: the fraction of queries whose nearest neighbour has their class.

    .. math:: \\mathrm{P@1} = \\frac{1}{|Q|} \\sum_{q \\in Q} \\mathrm{rel}_q(1)

    Args:
      query_labels: ``[Q]`` (or ``[Q, 1]``) class labels of the queries.
      neighbors: the queries' :class:`Neighbors` (``k >= 1``).
      reference_labels: ``[N]`` labels of the references, or ``None`` for leave-one-out within
        the queries (neighbours searched with ``exclude_self=True``).

    Returns:
      A float in ``[0, 1]`` (NaN, with a warning, if no query has a reference of its class).

    Raises:
      ValueError: labels and neighbours do not match in size, indices are out of range, or, in
        leave-one-out, a query is its own neighbour; the references (in leave-one-out the
        queries) hold fewer than 2 classes.
      TypeError: labels are neither integers nor strings.

    Example:
      >>> import numpy as np
      >>> neighbors = Neighbors(np.array([[1], [0], [0], [2]]), np.zeros((4, 1)))
      >>> precision_at_1(np.array([0, 0, 1, 1]), neighbors)  # leave-one-out
      0.75
    """
    return _retrieval_metric("precision_at_1", query_labels, neighbors, reference_labels)


def recall_at_k(query_labels, neighbors: Neighbors, *, k: int, reference_labels=None) -> float:
    """Recall at k of the deep metric learning literature.

    The fraction of queries with at least one item of their class among their ``k`` nearest
    neighbours (Song et al., 2016; not the information-retrieval recall).

    .. math:: \\mathrm{R@}k = \\frac{1}{|Q|} \\sum_{q \\in Q} \\max_{i \\le k} \\mathrm{rel}_q(i)

    Args:
      query_labels: ``[Q]`` (or ``[Q, 1]``) class labels of the queries.
      neighbors: the queries' :class:`Neighbors`, with at least ``k`` columns.
      k: the number of neighbours looked at, ``1 <= k <= neighbors.k``.
      reference_labels: ``[N]`` labels of the references, or ``None`` for leave-one-out.

    Returns:
      A float in ``[0, 1]`` (NaN, with a warning, if no query has a reference of its class).

    Raises:
      ValueError: ``k`` is out of range, or as :func:`precision_at_1`.
      TypeError: ``k`` is not an integer, or as :func:`precision_at_1`.

    Example:
      >>> import numpy as np
      >>> neighbors = Neighbors(np.array([[2, 1], [2, 3], [3, 0], [0, 1]]), np.zeros((4, 2)))
      >>> recall_at_k(np.array([0, 0, 1, 1]), neighbors, k=2)  # leave-one-out
      0.5
    """
    _check_neighbors(neighbors)
    check_number("k", k, minimum=1, maximum=neighbors.k, integer=True)
    return _retrieval_metric(f"recall_at_{int(k)}", query_labels, neighbors, reference_labels,
                             recall_ks=(int(k),))


def r_precision(query_labels, neighbors: Neighbors, *, reference_labels=None) -> float:
    """R-precision: the fraction of a query's ``R`` nearest neighbours that have its class.

    .. math:: \\mathrm{RP} = \\frac{1}{|Q|} \\sum_{q \\in Q} \\frac{1}{R_q}
              \\sum_{i=1}^{R_q} \\mathrm{rel}_q(i)

    ``R_q`` is the number of references of the query's class (without the query itself in
    leave-one-out). It needs ``neighbors.k >= max R_q``; with fewer neighbours the missing ones
    count as wrong (a lower bound) and a warning says so.

    Args:
      query_labels: ``[Q]`` (or ``[Q, 1]``) class labels of the queries.
      neighbors: the queries' :class:`Neighbors`.
      reference_labels: ``[N]`` labels of the references, or ``None`` for leave-one-out.

    Returns:
      A float in ``[0, 1]`` (NaN, with a warning, if no query has a reference of its class).

    Raises:
      ValueError, TypeError: as :func:`precision_at_1`.

    Example:
      >>> import numpy as np
      >>> neighbors = Neighbors(np.array([[1, 2], [2, 0], [0, 1], [2, 1]]), np.zeros((4, 2)))
      >>> r_precision(np.array([0, 0, 1, 1]), neighbors, reference_labels=np.array([0, 0, 1]))
      0.5
    """
    return _retrieval_metric("r_precision", query_labels, neighbors, reference_labels)


def map_at_r(query_labels, neighbors: Neighbors, *, reference_labels=None) -> float:
    """Mean average precision at R (MAP@R, Musgrave et al., 2020).

    .. math:: \\mathrm{MAP@R} = \\frac{1}{|Q|} \\sum_{q \\in Q} \\frac{1}{R_q}
              \\sum_{i=1}^{R_q} P_q(i)\\, \\mathrm{rel}_q(i),
              \\qquad P_q(i) = \\frac{1}{i} \\sum_{j=1}^{i} \\mathrm{rel}_q(j)

    ``R_q`` is the number of references of the query's class (without the query itself in
    leave-one-out). It needs ``neighbors.k >= max R_q``; with fewer neighbours the missing ones
    count as wrong (a lower bound) and a warning says so.

    Args:
      query_labels: ``[Q]`` (or ``[Q, 1]``) class labels of the queries.
      neighbors: the queries' :class:`Neighbors`.
      reference_labels: ``[N]`` labels of the references, or ``None`` for leave-one-out.

    Returns:
      A float in ``[0, 1]`` (NaN, with a warning, if no query has a reference of its class).

    Raises:
      ValueError, TypeError: as :func:`precision_at_1`.

    Example:
      >>> import numpy as np
      >>> neighbors = Neighbors(np.array([[3, 1], [0, 2], [0, 4], [4, 0], [0, 3]]),
      ...                       np.zeros((5, 2)))
      >>> map_at_r(np.array([0, 0, 0, 1, 1]), neighbors)  # (1/4 + 1 + 1/2 + 1 + 0) / 5
      0.55
    """
    return _retrieval_metric("map_at_r", query_labels, neighbors, reference_labels)


def _check_neighbors(neighbors) -> None:
    if not isinstance(neighbors, Neighbors):
        raise ConfigTypeError("Expected `neighbors` to be a tripletlab.evaluation.Neighbors. "
                              f"Received: neighbors of type {type(neighbors).__name__}.")


def _retrieval_metric(name, query_labels, neighbors, reference_labels, recall_ks=()):
    # Called by the public metric functions: warnings point at their caller (stacklevel 4).
    _check_neighbors(neighbors)
    leave_one_out = reference_labels is None
    query_labels = check_labels("query_labels", query_labels, neighbors.num_queries)
    if leave_one_out:
        reference_labels = query_labels
    else:
        reference_labels = check_labels("reference_labels", reference_labels)
    _check_two_classes("query_labels" if leave_one_out else "reference_labels",
                       reference_labels)
    _check_indices(neighbors, len(reference_labels), leave_one_out)
    query_codes, reference_codes = _encode(query_labels, reference_labels)
    r = _match_counts(query_codes, reference_codes, leave_one_out)
    answered = _warn_unanswered(r, leave_one_out, stacklevel=4)
    needs_r = name in ("r_precision", "map_at_r")
    if needs_r and answered.any():
        _warn_short_k(neighbors.k, int(r[answered].max()), stacklevel=4)
    sums = _score(
        query_codes[answered], neighbors.indices[answered], r[answered], reference_codes,
        recall_ks=recall_ks, with_r=needs_r,
    )
    count = int(answered.sum())
    return sums[name] / count if count else math.nan


# --------------------------------------------------------------------------------------------
# Clustering
# --------------------------------------------------------------------------------------------


def clustering_scores(embeddings, labels, seed: int = 0, *, normalize: bool = False) -> dict:
    """NMI and AMI between the classes and a k-means clustering of the embeddings.

    k-means (scikit-learn ``KMeans``, k-means++ start, one run) with as many clusters as there
    are classes; the clusters are compared with the labels by scikit-learn's
    ``normalized_mutual_info_score`` and ``adjusted_mutual_info_score`` (arithmetic mean
    normalisation):

    .. math:: \\mathrm{NMI}(Y, C) = \\frac{I(Y; C)}{(H(Y) + H(C)) / 2}

    Args:
      embeddings: ``[N, D]`` floating array.
      labels: ``[N]`` (or ``[N, 1]``) class labels.
      seed: the k-means random state.
      normalize: cluster L2-normalised rows (use it for the ``"angular"`` and
        ``"normalized-L2"`` distances).

    Returns:
      ``{"nmi": float, "ami": float}``.

    Raises:
      ImportError: scikit-learn is not installed.
      ValueError, TypeError: bad shapes, dtypes or ``seed``; ``labels`` of fewer than 2
        classes.

    Example:
      >>> import numpy as np
      >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
      >>> clustering_scores(x, np.array([0, 0, 1, 1]))
      {'nmi': 1.0, 'ami': 1.0}
    """
    check_number("seed", seed, minimum=0, integer=True)
    check_bool("normalize", normalize)
    embeddings = check_embeddings("embeddings", embeddings)
    labels = check_labels("labels", labels, embeddings.shape[0])
    _check_two_classes("labels", labels)
    KMeans, normalized_mutual_info_score, adjusted_mutual_info_score = _import_sklearn()
    points = np.asarray(embeddings, dtype=np.float32)
    if normalize:
        points = normalize_rows(points)
    num_classes = len(np.unique(labels))
    clusters = KMeans(n_clusters=num_classes, n_init=1, random_state=int(seed)).fit_predict(points)
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ami": float(adjusted_mutual_info_score(labels, clusters)),
    }


def _import_sklearn():
    try:
        from sklearn.cluster import KMeans
        from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
    except ImportError as error:
        raise MissingExtraError(
            "NMI and AMI need scikit-learn, which is not installed. "
            'Install it with: pip install "tripletlab[eval]"'
        ) from error
    return KMeans, normalized_mutual_info_score, adjusted_mutual_info_score


# --------------------------------------------------------------------------------------------
# One-stop evaluation
# --------------------------------------------------------------------------------------------


def evaluate_embeddings(
    query_embeddings,
    query_labels,
    reference_embeddings=None,
    reference_labels=None,
    *,
    distance: str = "L2",
    recall_ks: Iterable[int] = (1, 2, 4, 8),
    clustering: bool = True,
    seed: int = 0,
    max_k: int | None = None,
    chunk_size: int = 1024,
    progress: bool = False,
) -> dict[str, float]:
    """Retrieval metrics (P@1, R@k, R-precision, MAP@R) and optionally NMI/AMI, in one call.

    The neighbours are searched with faiss (:func:`~tripletlab.evaluation.nearest_neighbors`) a
    query chunk at a time and each chunk is scored and dropped, so memory stays bounded
    (``~chunk x k`` results) for a million references. The search uses
    ``k = max(max(recall_ks), max R)`` neighbours, ``R`` being the largest class count needed for
    MAP@R and R-precision, capped by the number of references and by ``max_k``. When the cap is
    below ``max R`` a warning says that MAP@R and R-precision are lower bounds.

    Args:
      query_embeddings: ``[Q, D]`` floating array.
      query_labels: ``[Q]`` (or ``[Q, 1]``) class labels.
      reference_embeddings: ``[N, D]`` floating array, or ``None`` for leave-one-out within the
        queries (each query searched among the others).
      reference_labels: ``[N]`` labels; given exactly when ``reference_embeddings`` is.
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"``.
      recall_ks: the ``k`` of each ``recall_at_k`` entry.
      clustering: also compute NMI and AMI of the query embeddings (k-means, scikit-learn).
      seed: the k-means random state.
      max_k: an upper bound on the neighbours searched (time and memory), or ``None``.
      chunk_size: the most queries searched per faiss call.
      progress: show a progress bar over the queries.

    Returns:
      A dict of floats: ``precision_at_1``, ``recall_at_{k}`` for each of ``recall_ks``,
      ``r_precision``, ``map_at_r`` and, with ``clustering``, ``nmi`` and ``ami``.

    Raises:
      ImportError: faiss (or, with ``clustering``, scikit-learn) is not installed.
      ValueError, TypeError: bad shapes, dtypes, labels or options; references (in
        leave-one-out the queries) of fewer than 2 classes, or, with ``clustering``, queries
        of fewer than 2 classes.

    Example:
      >>> import numpy as np
      >>> x = np.array([[0.0], [0.1], [5.0], [5.2]], dtype="float32")
      >>> metrics = evaluate_embeddings(x, [0, 0, 1, 1], recall_ks=(1,), clustering=False)
      >>> metrics["precision_at_1"], metrics["map_at_r"]
      (1.0, 1.0)
    """
    check_distance(distance)
    check_bool("clustering", clustering)
    recall_ks = check_recall_ks(recall_ks)
    if max_k is not None:
        check_number("max_k", max_k, minimum=max(recall_ks), integer=True)
    if (reference_embeddings is None) != (reference_labels is None):
        raise ConfigError(
            "Expected `reference_embeddings` and `reference_labels` to be both given or both "
            "None. Received: "
            f"reference_embeddings={'None' if reference_embeddings is None else 'an array'}, "
            f"reference_labels={'None' if reference_labels is None else 'an array'}."
        )
    # Fail on a missing optional dependency before any long computation.
    import_faiss()
    if clustering:
        _import_sklearn()
    leave_one_out = reference_embeddings is None
    query_embeddings = check_embeddings("query_embeddings", query_embeddings)
    query_labels = check_labels("query_labels", query_labels, query_embeddings.shape[0])
    if leave_one_out:
        reference_embeddings, reference_labels = query_embeddings, query_labels
    else:
        reference_embeddings = check_embeddings("reference_embeddings", reference_embeddings)
        reference_labels = check_labels(
            "reference_labels", reference_labels, reference_embeddings.shape[0])
    _check_two_classes("query_labels" if leave_one_out else "reference_labels",
                       reference_labels)
    if clustering and not leave_one_out:
        _check_two_classes("query_labels", query_labels)
    query_codes, reference_codes = _encode(query_labels, reference_labels)
    r = _match_counts(query_codes, reference_codes, leave_one_out)
    answered = _warn_unanswered(r, leave_one_out, stacklevel=3)

    metrics: dict[str, float] = {}
    if answered.any():
        available = reference_embeddings.shape[0] - int(leave_one_out)
        largest_r = int(r[answered].max())
        k = min(max(max(recall_ks), largest_r), available)
        if max_k is not None:
            k = min(k, int(max_k))
        _warn_short_k(k, largest_r, stacklevel=3)
        if max(recall_ks) > available:
            warnings.warn(
                f"recall_ks={recall_ks} asks for more neighbours than the {available} "
                f"references available; recall_at_k for k > {available} looks at all of them.",
                UserWarning, stacklevel=2)
        sums: dict[str, float] = {}
        rows = max(1, min(int(chunk_size), _SEARCH_ELEMENTS // k))
        for start, neighbors in iter_nearest_neighbors(
            query_embeddings, None if leave_one_out else reference_embeddings, k,
            distance=distance, exclude_self=leave_one_out, chunk_size=rows, progress=progress,
        ):
            stop = start + neighbors.num_queries
            keep = answered[start:stop]
            part = _score(query_codes[start:stop][keep], neighbors.indices[keep],
                          r[start:stop][keep], reference_codes, recall_ks=recall_ks, with_r=True)
            for name, value in part.items():
                sums[name] = sums.get(name, 0.0) + value
        count = int(answered.sum())
        metrics = {name: value / count for name, value in sums.items()}
    else:
        metrics = dict.fromkeys(
            ["precision_at_1", *(f"recall_at_{k}" for k in recall_ks), "r_precision", "map_at_r"],
            math.nan,
        )
    if clustering:
        metrics.update(clustering_scores(query_embeddings, query_labels, seed,
                                         normalize=distance in NORMALIZED_DISTANCES))
    return metrics


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def format_metrics_table(metrics: Mapping[str, object]) -> str:
    """Formats a metrics dict as an aligned two-column text table (floats with 4 decimals).

    Args:
      metrics: metric name -> value (floats, ints or strings).

    Returns:
      The table as one string, without a trailing newline.

    Raises:
      TypeError: ``metrics`` is not a mapping.

    Example:
      >>> print(format_metrics_table({"precision_at_1": 0.91234, "map_at_r": 0.5}))
      metric          value
      --------------  ------
      precision_at_1  0.9123
      map_at_r        0.5000
    """
    if not isinstance(metrics, Mapping):
        raise ConfigTypeError(f"Expected `metrics` to be a mapping. "
                              f"Received: {type(metrics).__name__}.")
    return format_scores_table({"value": metrics})


def format_scores_table(columns: Mapping[str, Mapping[str, object]]) -> str:
    """Formats scores as an aligned text table: one row per metric, one column per protocol.

    Floats have 4 decimals; a missing, ``None`` or non-finite value is ``-``. Rows follow the
    metrics' first appearance across the columns.

    Args:
      columns: column title -> (metric name -> value), e.g. ``{"test -> train": {...},
        "leave-one-out": {...}}`` as in ``metrics.json``.

    Returns:
      The table as one string, without a trailing newline.

    Example:
      >>> print(format_scores_table({"test -> train": {"map_at_r": 0.5},
      ...                            "leave-one-out": {"map_at_r": 0.25, "nmi": 0.75}}))
      metric    test -> train  leave-one-out
      --------  -------------  -------------
      map_at_r         0.5000         0.2500
      nmi                   -         0.7500
    """
    titles = list(columns)
    names = list(dict.fromkeys(str(name) for scores in columns.values() for name in scores))
    cells = [[_format_value(dict(columns[title]).get(name)) for title in titles]
             for name in names]
    widths = [max([len("metric"), *map(len, names)])]
    widths += [max([len(title), *(len(row[i]) for row in cells)])
               for i, title in enumerate(titles)]
    header = "  ".join(title.ljust(width) for title, width in zip(["metric", *titles], widths,
                                                                  strict=True))
    lines = [header.rstrip(), "  ".join("-" * width for width in widths)]
    for name, row in zip(names, cells, strict=True):
        lines.append("  ".join([name.ljust(widths[0]),
                                *(cell.rjust(width) for cell, width in zip(row, widths[1:],
                                                                           strict=True))]))
    return "\n".join(lines)


def save_metrics(path: str | os.PathLike, metrics: Mapping[str, object], *,
                 record: Recorder | None = None) -> Path:
    """Writes ``metrics`` as indented JSON, atomically (temporary file, then rename).

    NaN and infinite values, which JSON cannot hold, are written as ``null``.

    Args:
      path: the output file (folders are created).
      metrics: metric name -> value.
      record: called with ``path`` before it is written (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).

    Returns:
      The ``Path`` written.

    Raises:
      TypeError: ``metrics`` is not a mapping.

    Example:
      >>> import tempfile, pathlib
      >>> folder = tempfile.mkdtemp()
      >>> save_metrics(pathlib.Path(folder) / "metrics.json", {"map_at_r": 0.5}).name
      'metrics.json'
    """
    if not isinstance(metrics, Mapping):
        raise ConfigTypeError(f"Expected `metrics` to be a mapping. "
                              f"Received: {type(metrics).__name__}.")
    return write_json(path, {str(name): value for name, value in metrics.items()},
                      nan_as_null=True, record=record)


def _format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}" if np.isfinite(value) else "-"
    return str(value)


# --------------------------------------------------------------------------------------------
# Checks (check_labels and check_recall_ks are shared with the retrieval callback), internals
# --------------------------------------------------------------------------------------------


def check_labels(name: str, labels, length: int | None = None) -> np.ndarray:
    """Returns class labels ``[N]`` as an array, checked (shared with the retrieval callback).

    Args:
      name: the argument's name, for the error message.
      labels: ``[N]`` or ``[N, 1]`` class ids: integers, integer-valued floats (as Keras
        hands labels over) or strings.
      length: the required ``N``, if any.

    Raises:
      ValueError: another shape or length, one-hot rows, or non-integer floats.
      TypeError: labels of another type.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ConfigError(
            f"Expected `{name}` of shape [num_rows] or [num_rows, 1] holding class ids (not "
            f"one-hot). Received: {name}.shape={array.shape}."
        )
    if array.dtype.kind == "f":
        # Keras hands labels over as floats: accept float-encoded integers.
        if not (np.isfinite(array).all() and np.array_equal(array, np.round(array))):
            raise ConfigError(
                f"Expected `{name}` to hold integer class ids. Received: non-integer floats."
            )
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iuUSb":
        raise ConfigTypeError(
            f"Expected `{name}` to hold integer or string class ids. "
            f"Received: {name}.dtype={array.dtype}."
        )
    if length is not None and array.shape[0] != length:
        raise ConfigError(
            f"Expected `{name}` to have {length} entries, one per embedding/query. "
            f"Received: {name}.shape={array.shape}."
        )
    return array


def _check_two_classes(name: str, labels: np.ndarray) -> None:
    """Refuses labels of a single class: every neighbour would be relevant (all scores 1)."""
    classes = np.unique(labels)
    if len(classes) < 2:
        shown = f" ({classes[0]!r})" if len(classes) else ""
        raise ConfigError(
            f"Expected `{name}` to hold at least 2 classes: with one class every neighbour "
            f"has the query's class and every score is 1. Received: {len(classes)} "
            f"class{'' if len(classes) == 1 else 'es'}{shown} in {len(labels)} labels."
        )


def check_recall_ks(recall_ks) -> tuple[int, ...]:
    """Returns ``recall_ks`` as a tuple of ints >= 1 (the ``k`` of each ``recall_at_k``).

    Raises:
      TypeError: not a sequence of integers.
      ValueError: empty, or a ``k`` below 1.
    """
    if isinstance(recall_ks, (str, bytes)) or not isinstance(recall_ks, Iterable):
        raise ConfigTypeError(f"Expected `recall_ks` to be a sequence of integers. "
                              f"Received: recall_ks={recall_ks!r}.")
    values = tuple(recall_ks)
    if not values:
        raise ConfigError("Expected `recall_ks` to hold at least one k. Received: recall_ks=().")
    for value in values:
        check_number("recall_ks[i]", value, minimum=1, integer=True)
    return tuple(int(value) for value in values)


def _check_indices(neighbors: Neighbors, num_references: int, leave_one_out: bool) -> None:
    indices = neighbors.indices
    if indices.size and (indices.min() < 0 or indices.max() >= num_references):
        raise ConfigError(
            f"Expected neighbour indices in [0, {num_references}), rows of the references. "
            f"Received: indices between {indices.min()} and {indices.max()}."
        )
    if leave_one_out:
        is_self = indices == np.arange(neighbors.num_queries)[:, None]
        if is_self.any():
            raise ConfigError(
                "Expected leave-one-out neighbours (reference_labels=None) without the query "
                "itself; search with exclude_self=True, or pass `reference_labels`. Received: "
                f"{int(is_self.any(axis=1).sum())} queries listed as their own neighbour."
            )


def _encode(query_labels: np.ndarray, reference_labels: np.ndarray):
    """Maps both label arrays to shared integer codes 0..C-1."""
    if query_labels is reference_labels:
        _, codes = np.unique(query_labels, return_inverse=True)
        return codes.reshape(-1), codes.reshape(-1)
    if (query_labels.dtype.kind in "US") != (reference_labels.dtype.kind in "US"):
        raise ConfigTypeError(
            "Expected `query_labels` and `reference_labels` of the same kind (both integers or "
            f"both strings). Received: query_labels.dtype={query_labels.dtype}, "
            f"reference_labels.dtype={reference_labels.dtype}."
        )
    _, codes = np.unique(np.concatenate([query_labels, reference_labels]), return_inverse=True)
    codes = codes.reshape(-1)
    return codes[: len(query_labels)], codes[len(query_labels):]


def _match_counts(query_codes, reference_codes, leave_one_out: bool) -> np.ndarray:
    """R per query: references of its class, the query itself excluded in leave-one-out."""
    counts = np.bincount(reference_codes, minlength=int(query_codes.max(initial=0)) + 1)
    return counts[query_codes] - int(leave_one_out)


def _warn_unanswered(r: np.ndarray, leave_one_out: bool, *, stacklevel: int) -> np.ndarray:
    answered = r > 0
    missing = int((~answered).sum())
    if missing:
        why = ("their class has a single example" if leave_one_out
               else "no reference has their class")
        result = "they are" if missing < r.shape[0] else "every metric is NaN:"
        warnings.warn(
            f"{missing} of {r.shape[0]} queries cannot be answered because {why} (R = 0); "
            f"{result} left out of the retrieval metrics.",
            UserWarning, stacklevel=stacklevel)
    return answered


def _warn_short_k(k: int, largest_r: int, *, stacklevel: int) -> None:
    if k < largest_r:
        warnings.warn(
            f"MAP@R and R-precision need k >= R neighbours, and the largest class has "
            f"R = {largest_r}, but k = {k}. For queries with R > k the missing neighbours count "
            "as wrong, so map_at_r and r_precision are lower bounds.",
            UserWarning, stacklevel=stacklevel)


def _score(query_codes, indices, r, reference_codes, *, recall_ks, with_r) -> dict[str, float]:
    """Sums (not means) of each per-query metric over the given (answered) queries."""
    sums = {"precision_at_1": 0.0, **{f"recall_at_{k}": 0.0 for k in recall_ks}}
    if with_r:
        sums.update(r_precision=0.0, map_at_r=0.0)
    num_queries, k = indices.shape
    rows = max(1, _BLOCK_ELEMENTS // max(k, 1))
    for start in range(0, num_queries, rows):
        block = slice(start, start + rows)
        relevant = reference_codes[indices[block]] == query_codes[block, None]
        sums["precision_at_1"] += float(relevant[:, 0].sum())
        for recall_k in recall_ks:
            sums[f"recall_at_{recall_k}"] += float(relevant[:, :recall_k].any(axis=1).sum())
        if with_r:
            block_r = r[block]
            width = min(k, int(block_r.max()))
            relevant = relevant[:, :width]
            position = np.arange(1, width + 1)
            within_r = position[None, :] <= block_r[:, None]
            hits = relevant & within_r
            sums["r_precision"] += float((hits.sum(axis=1) / block_r).sum())
            precision = np.cumsum(relevant, axis=1) / position
            sums["map_at_r"] += float((np.where(hits, precision, 0.0).sum(axis=1) / block_r).sum())
    return sums
