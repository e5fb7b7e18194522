"""The faiss index behind a gallery: exact (flat), HNSW or IVF, for one distance.

* ``"flat"``: ``faiss.IndexFlatL2`` (``"L2"``, ``"squared-L2"``) or ``faiss.IndexFlatIP`` on
  L2-normalised rows (``"angular"``, ``"normalized-L2"``): exact search, the reference.
* ``"hnsw"``: ``faiss.IndexHNSWFlat``, a graph of :attr:`IndexSettings.hnsw_neighbors` links
  per item; searched with ``efSearch`` = :attr:`IndexSettings.ef_search` (at least ``k``).
* ``"ivf"``: ``faiss.IndexIVFFlat``, the items split into :attr:`IndexSettings.lists` k-means
  cells (trained on the first items added); a query scans :attr:`IndexSettings.probes` cells.

Rows are prepared as :func:`tripletlab.evaluation.knn.search_rows` prepares them, and scores turn
into distances with :func:`tripletlab.numpy_distances.distances_from_scores`, so an exact index
returns what ``tripletlab evaluate`` computes. The approximate kinds are measured against it by
:func:`approximate_recall`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tripletlab._checks import check_choice, check_number
from tripletlab.distances import NORMALIZED_DISTANCES
from tripletlab.evaluation.knn import import_faiss, search_rows
from tripletlab.numpy_distances import distances_from_scores
from tripletlab.retrieval_names import INDEX_KINDS

ADD_CHUNK_ROWS = 65536
"""Rows converted and added to faiss at a time (no second full-size copy of a gallery)."""

SEARCH_CHUNK_ROWS = 4096
"""Queries searched per faiss call."""

IVF_POINTS_PER_LIST = 39
"""faiss' k-means wants at least this many training points per cell; fewer cells are used when
the first items added are not enough."""

IVF_TRAINING_POINTS_PER_LIST = 64
"""At most this many training points per cell (a seeded sample of the first items added):
k-means on every item of a million-item gallery took most of its build time, and 64 points per
cell keep the cells' recall (measured with ``benchmarks/bench_index.py``)."""


@dataclasses.dataclass(frozen=True)
class IndexSettings:
    """How the faiss index is built and searched.

    Attributes:
      kind: one of :data:`INDEX_KINDS`.
      hnsw_neighbors: HNSW only: links per item (faiss' ``M``).
      ef_construction: HNSW only: candidate list size while inserting.
      ef_search: HNSW only: candidate list size while searching (raised to ``k`` if smaller).
      lists: IVF only: number of k-means cells; ``None`` chooses :math:`4\\sqrt{N}` for the
        first ``N`` items added (fewer if they cannot train that many).
      probes: IVF only: cells scanned per query; ``None`` chooses ``max(8, lists // 32)``.
      seed: the seed of the IVF training sample and of the recall sample.
    """

    kind: str = "flat"
    hnsw_neighbors: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    lists: int | None = None
    probes: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, INDEX_KINDS)
        for name in ("hnsw_neighbors", "ef_construction", "ef_search"):
            check_number(name, getattr(self, name), minimum=1, integer=True)
        for name in ("lists", "probes"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), minimum=1, integer=True)
        check_number("seed", self.seed, minimum=0, integer=True)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IndexSettings:
        """The settings :meth:`to_dict` wrote."""
        return cls(**values)


def new_index(settings: IndexSettings, dimension: int, distance: str, first_rows: np.ndarray):
    """A new, empty faiss index of ``settings.kind`` (an IVF index is trained on ``first_rows``).

    Args:
      settings: the kind and its parameters.
      dimension: the embedding size.
      distance: the gallery's distance (chooses L2 or inner-product scores).
      first_rows: the first embeddings that will be added (IVF trains on a sample of them).

    Returns:
      ``(index, settings)``: the faiss index and the settings with ``lists`` and ``probes``
      filled in.
    """
    faiss = import_faiss()
    inner_product = distance in NORMALIZED_DISTANCES
    metric = faiss.METRIC_INNER_PRODUCT if inner_product else faiss.METRIC_L2
    if settings.kind == "flat":
        index = faiss.IndexFlatIP(dimension) if inner_product else faiss.IndexFlatL2(dimension)
        return index, settings
    if settings.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, settings.hnsw_neighbors, metric)
        index.hnsw.efConstruction = settings.ef_construction
        return index, settings
    lists = settings.lists or _default_lists(len(first_rows))
    settings = dataclasses.replace(settings, lists=lists,
                                   probes=settings.probes or min(lists, max(8, lists // 32)))
    quantizer = faiss.IndexFlatIP(dimension) if inner_product else faiss.IndexFlatL2(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, lists, metric)
    index.train(_training_sample(first_rows, lists, distance, settings.seed))
    index.make_direct_map()  # lets the items be read back (recall, append)
    return index, settings


def _default_lists(count: int) -> int:
    return max(1, min(round(4 * math.sqrt(count)), count // IVF_POINTS_PER_LIST))


def _training_sample(rows: np.ndarray, lists: int, distance: str, seed: int) -> np.ndarray:
    if len(rows) < lists:
        from tripletlab.errors import ConfigError

        raise ConfigError(f"Expected at least `lists` = {lists} items to train the IVF index. "
                          f"Received: {len(rows)} items.")
    count = min(len(rows), lists * IVF_TRAINING_POINTS_PER_LIST)
    chosen = np.sort(np.random.default_rng(seed).choice(len(rows), count, replace=False))
    return search_rows(rows[chosen], distance)


def add_rows(index, rows: np.ndarray, distance: str, progress=None) -> None:
    """Adds ``rows`` to ``index`` a chunk at a time (``progress``: a ``keras.utils.Progbar`` or
    ``None``, advanced by the rows added)."""
    for start in range(0, len(rows), ADD_CHUNK_ROWS):
        index.add(search_rows(rows[start:start + ADD_CHUNK_ROWS], distance))
        if progress is not None:
            progress.add(min(ADD_CHUNK_ROWS, len(rows) - start))


def search(index, settings: IndexSettings, queries: np.ndarray, k: int, distance: str,
           progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest items of every query: ``(indices [Q, k] int64, distances [Q, k]
    float32)``, nearest first (``progress``: as in :func:`add_rows`, advanced by queries)."""
    faiss = import_faiss()
    parameters = _search_parameters(faiss, settings, k)
    indices, distances = [], []
    for start in range(0, len(queries), SEARCH_CHUNK_ROWS):
        chunk = search_rows(queries[start:start + SEARCH_CHUNK_ROWS], distance)
        scores, found = index.search(chunk, k, params=parameters)
        indices.append(found.astype(np.int64))
        distances.append(distances_from_scores(scores, distance).astype(np.float32))
        if progress is not None:
            progress.add(len(chunk))
    return np.concatenate(indices), np.concatenate(distances)


def _search_parameters(faiss, settings: IndexSettings, k: int):
    if settings.kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=max(settings.ef_search, k))
    if settings.kind == "ivf":
        return faiss.SearchParametersIVF(nprobe=settings.probes)
    return None


def stored_rows(index) -> np.ndarray:
    """Every item's row as the index holds it (normalised for the cosine distances)."""
    return index.reconstruct_n(0, index.ntotal)


def approximate_recall(index, settings: IndexSettings, distance: str, k: int,
                       sample: int) -> float:
    """Recall@k of ``index`` against exact search, on a seeded sample of its own items.

    Each sampled item is a query; its ``k`` nearest other items found by ``index`` are compared
    with the exact ``k`` nearest (a flat index of the same rows):
    :math:`\\text{recall@k} = \\frac{1}{Qk}\\sum_q |A_q \\cap E_q|`. The item itself is left out
    of both lists, so the figure is that of a new query lying among the gallery's items.

    Returns:
      The recall, in ``[0, 1]`` (``1.0`` for a flat index, which is exact).
    """
    if settings.kind == "flat":
        return 1.0
    faiss = import_faiss()
    rows = stored_rows(index)
    k = min(k, len(rows) - 1)
    if k < 1:
        return 1.0
    chosen = np.sort(np.random.default_rng(settings.seed).choice(
        len(rows), min(sample, len(rows)), replace=False))
    exact = faiss.IndexFlatIP(rows.shape[1]) if distance in NORMALIZED_DISTANCES else (
        faiss.IndexFlatL2(rows.shape[1]))
    exact.add(rows)
    _, truth = exact.search(rows[chosen], k + 1)
    _, found = index.search(rows[chosen], k + 1, params=_search_parameters(faiss, settings, k + 1))
    hits = sum(len(_without(f, item, k) & _without(t, item, k))
               for f, t, item in zip(found, truth, chosen, strict=True))
    return hits / (len(chosen) * k)


def _without(row: np.ndarray, item: int, k: int) -> set[int]:
    others = [int(i) for i in row if i != item and i >= 0]
    return set(others[:k])


def to_bytes(index) -> np.ndarray:
    """The index serialised by faiss (a ``uint8`` array)."""
    return import_faiss().serialize_index(index)


def from_bytes(data: np.ndarray):
    """The index :func:`to_bytes` serialised (faiss raises ``RuntimeError`` on damaged bytes)."""
    return import_faiss().deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
