"""Exact k-nearest-neighbour search with faiss, in query chunks.

The references go into one exact (flat) faiss index; the queries are searched a chunk at a time,
so the memory beyond the index is ``chunk_size x k`` results, whatever the number of queries.
Distances use the canonical names of :data:`tripletlab.distances.DISTANCES`:

* ``"L2"`` and ``"squared-L2"``: ``faiss.IndexFlatL2`` (which returns squared distances; ``"L2"``
  takes the square root).
* ``"angular"`` and ``"normalized-L2"``: ``faiss.IndexFlatIP`` on L2-normalised rows, giving the
  cosine ``c``; then :math:`d = \\max(1 - c, 0)` or :math:`d = \\sqrt{\\max(2 - 2c, 0)}`.

The rows are normalised and the scores turned into distances by :mod:`tripletlab.numpy_distances`
(as everywhere tripletlab computes distances in NumPy).

faiss is an optional dependency (``pip install "tripletlab[eval]"``), imported only when a search
runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from tripletlab._checks import check_bool, check_number
from tripletlab.distances import NORMALIZED_DISTANCES, check_distance
from tripletlab.errors import ConfigError, ConfigTypeError, MissingExtraError
from tripletlab.numpy_distances import distances_from_scores, normalize_rows

_ADD_CHUNK_ROWS = 65536  # references are converted and added to the index this many at a time


@dataclasses.dataclass(frozen=True)
class Neighbors:
    """The k nearest references of every query, nearest first.

    Attributes:
      indices: ``[Q, k]`` int64 row numbers into the references.
      distances: ``[Q, k]`` float32 distances, non-decreasing along each row.

    Raises:
      ValueError: the two arrays are not 2-D or do not have the same shape.
      TypeError: ``indices`` is not an integer array.

    Example:
      >>> import numpy as np
      >>> neighbors = Neighbors(indices=np.array([[1], [0]]), distances=np.array([[0.5], [0.5]]))
      >>> neighbors.k, neighbors.num_queries, neighbors.indices.dtype
      (1, 2, dtype('int64'))
    """

    indices: np.ndarray
    distances: np.ndarray

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        distances = np.asarray(self.distances)
        if indices.ndim != 2 or distances.shape != indices.shape:
            raise ConfigError(
                "Expected `indices` and `distances` of the same shape [num_queries, k]. "
                f"Received: indices.shape={indices.shape}, distances.shape={distances.shape}."
            )
        if indices.dtype.kind not in "iu":
            raise ConfigTypeError(
                "Expected `indices` to be an integer array. "
                f"Received: indices.dtype={indices.dtype}."
            )
        object.__setattr__(self, "indices", indices.astype(np.int64, copy=False))
        object.__setattr__(self, "distances", distances.astype(np.float32, copy=False))

    @property
    def k(self) -> int:
        """The number of neighbours per query."""
        return int(self.indices.shape[1])

    @property
    def num_queries(self) -> int:
        """The number of queries (rows)."""
        return int(self.indices.shape[0])


def nearest_neighbors(
    queries,
    references,
    k: int,
    *,
    distance: str = "L2",
    exclude_self: bool = False,
    chunk_size: int = 1024,
    progress: bool = False,
) -> Neighbors:
    """Finds the ``k`` nearest references of every query by exact search (faiss).

    Args:
      queries: ``[Q, D]`` floating array (NumPy, or anything ``np.asarray`` accepts).
      references: ``[N, D]`` floating array, or ``None`` for the queries themselves.
      k: neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``).
      distance: one of ``"L2"``, ``"squared-L2"``, ``"angular"``, ``"normalized-L2"``.
      exclude_self: leave-one-out protocol: the queries *are* the references (pass the same
        array, or ``references=None``) and each query's own row is removed from its result.
        ``k + 1`` neighbours are searched and the entry whose index equals the query's row is
        dropped (not simply the first column: with duplicate points another row can come first);
        if the query's row is not among them (more than ``k`` exact duplicates), the last is
        dropped.
      chunk_size: queries searched per faiss call; the working memory is ``chunk_size * k``
        results.
      progress: show a ``keras.utils.Progbar`` over the queries.

    Returns:
      A :class:`Neighbors` with ``[Q, k]`` int64 indices and float32 distances, nearest first.
      Exact ties are ordered as faiss returns them.

    Raises:
      ImportError: faiss is not installed.
      TypeError: the embeddings are not floating arrays, or ``k``/``chunk_size`` are not integers.
      ValueError: wrong ranks, empty arrays, different dimensions, non-finite values, ``k`` out of
        range, an unknown ``distance``, or ``exclude_self`` with references that are not the
        queries.

    Example:
      >>> import numpy as np
      >>> x = np.array([[0.0], [1.0], [3.0]], dtype="float32")
      >>> neighbors = nearest_neighbors(x, None, 1, exclude_self=True)
      >>> neighbors.indices.ravel().tolist(), neighbors.distances.ravel().tolist()
      ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    parts = list(
        iter_nearest_neighbors(
            queries,
            references,
            k,
            distance=distance,
            exclude_self=exclude_self,
            chunk_size=chunk_size,
            progress=progress,
        )
    )
    if len(parts) == 1:
        return parts[0][1]
    return Neighbors(
        indices=np.concatenate([part.indices for _, part in parts]),
        distances=np.concatenate([part.distances for _, part in parts]),
    )


def iter_nearest_neighbors(
    queries,
    references,
    k: int,
    *,
    distance: str = "L2",
    exclude_self: bool = False,
    chunk_size: int = 1024,
    progress: bool = False,
) -> Iterator[tuple[int, Neighbors]]:
    """Like :func:`nearest_neighbors`, but yields the result one query chunk at a time.

    Use it when ``Q x k`` results do not fit in memory: each chunk can be scored and dropped.
    The arguments are checked when the function is called; faiss is imported then too, and the
    index is built when the iteration starts.

    Args:
      queries, references, k, distance, exclude_self, chunk_size, progress: as in
        :func:`nearest_neighbors`.

    Yields:
      ``(start, neighbors)``: the row of the chunk's first query and the chunk's
      :class:`Neighbors` (rows ``start`` to ``start + neighbors.num_queries``).

    Raises:
      ImportError, TypeError, ValueError: as :func:`nearest_neighbors`.

    Example:
      >>> import numpy as np
      >>> x = np.arange(6, dtype="float32").reshape(3, 2)
      >>> [start for start, _ in iter_nearest_neighbors(x, x, 1, chunk_size=2)]
      [0, 2]
    """
    check_distance(distance)
    check_bool("exclude_self", exclude_self)
    check_bool("progress", progress)
    check_number("chunk_size", chunk_size, minimum=1, integer=True)
    check_number("k", k, minimum=1, integer=True)
    queries = check_embeddings("queries", queries)
    if references is None:
        references = queries
    else:
        references = check_embeddings("references", references)
    if references.shape[1] != queries.shape[1]:
        raise ConfigError(
            "Expected `queries` and `references` to have the same embedding dimension. "
            f"Received: queries.shape={queries.shape}, references.shape={references.shape}."
        )
    if exclude_self and references is not queries and not _same_rows(queries, references):
        raise ConfigError(
            "Expected `references` to be the queries themselves (or None) when "
            "`exclude_self=True` (leave-one-out). Received: different arrays with "
            f"queries.shape={queries.shape}, references.shape={references.shape}."
        )
    available = references.shape[0] - int(exclude_self)
    if k > available:
        what = "number of references minus one (exclude_self=True)" if exclude_self else (
            "number of references")
        raise ConfigError(
            f"Expected `k` <= {available}, the {what}. Received: k={k}."
        )
    return _search_chunks(
        import_faiss(), queries, references, int(k), distance, exclude_self, int(chunk_size),
        progress,
    )


def _search_chunks(faiss, queries, references, k, distance, exclude_self, chunk_size, progress):
    index = _build_index(faiss, references, distance)
    searched = k + 1 if exclude_self else k
    num_queries = queries.shape[0]
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(num_queries, unit_name="query")
    for start in range(0, num_queries, chunk_size):
        stop = min(start + chunk_size, num_queries)
        chunk = search_rows(queries[start:stop], distance)
        scores, indices = index.search(chunk, searched)
        if exclude_self:
            scores, indices = _drop_self(scores, indices, np.arange(start, stop), k)
        yield start, Neighbors(indices=indices, distances=distances_from_scores(scores, distance))
        if bar is not None:
            bar.update(stop)


def import_faiss():
    """Imports faiss (an optional dependency) and returns the module.

    Raises:
      ImportError: faiss is not installed; the message names the pip extra.
    """
    try:
        import faiss
    except ImportError as error:
        raise MissingExtraError(
            "Nearest-neighbour search needs faiss, which is not installed. "
            'Install it with: pip install "tripletlab[eval]"'
        ) from error
    return faiss


def check_embeddings(name: str, values) -> np.ndarray:
    """Returns ``values`` as a NumPy array after checking it is finite floating ``[N, D]``.

    Args:
      name: the argument's name, for the error message.
      values: the embeddings (anything ``np.asarray`` accepts).

    Raises:
      TypeError: not a floating array.
      ValueError: not 2-D with at least one row and one column, or not finite.
    """
    array = np.asarray(values)
    if array.dtype.kind != "f":
        raise ConfigTypeError(
            f"Expected `{name}` to be a floating array of shape [num_rows, embedding_dim]. "
            f"Received: {name}.dtype={array.dtype}."
        )
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ConfigError(
            f"Expected `{name}` of shape [num_rows, embedding_dim] with at least one row and one "
            f"column. Received: {name}.shape={array.shape}."
        )
    if not np.isfinite(array).all():
        raise ConfigError(f"Expected `{name}` to hold only finite values. Received: NaN or inf.")
    return array


def _same_rows(first: np.ndarray, second: np.ndarray) -> bool:
    return first.shape == second.shape and np.array_equal(first, second)


def search_rows(rows: np.ndarray, distance: str) -> np.ndarray:
    """``rows`` as faiss searches them for ``distance``: contiguous float32, L2-normalised for
    ``"angular"`` and ``"normalized-L2"`` (an inner-product index then gives the cosine)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if distance in NORMALIZED_DISTANCES:
        rows = normalize_rows(rows)
    return rows


def _build_index(faiss, references: np.ndarray, distance: str):
    dim = references.shape[1]
    index = faiss.IndexFlatIP(dim) if distance in NORMALIZED_DISTANCES else faiss.IndexFlatL2(dim)
    # Convert (and normalise) a block at a time: no second full-size copy of the references.
    for start in range(0, references.shape[0], _ADD_CHUNK_ROWS):
        index.add(search_rows(references[start:start + _ADD_CHUNK_ROWS], distance))
    return index


def _drop_self(scores, indices, rows, k):
    is_self = indices == rows[:, None]
    # The query's own entry if present, else the last (farthest) one.
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones(indices.shape, dtype=bool)
    keep[np.arange(indices.shape[0]), drop] = False
    return scores[keep].reshape(-1, k), indices[keep].reshape(-1, k)
