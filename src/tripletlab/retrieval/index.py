"""``Index``: a searchable gallery of labelled embeddings, on faiss.

The Python API that ``tripletlab index``, ``query`` and ``calibrate`` are thin on::

    index = tl.retrieval.Index.build(gallery_embeddings, gallery_labels, distance="L2")
    found = index.search(query_embeddings, k=5)          # neighbours, nearest first
    index.calibrate(held_out_embeddings, held_out_labels, target_precision=0.99)
    matches = index.match(query_embeddings)              # label, or "no match" past the threshold
    index.save("gallery-index")                          # a folder; Index.load reads it back

Labels are kept as strings (class names), so galleries from different sources with the same
class names can be appended to one another, and integer labels read back as their decimal
spelling.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab._checks import check_bool, check_number
from tripletlab.distances import check_distance
from tripletlab.errors import ConfigError
from tripletlab.evaluation.knn import check_embeddings
from tripletlab.retrieval import faiss_index
from tripletlab.retrieval.calibration import (
    Calibration,
    calibrate_matches,
    calibrate_verification,
    sample_pairs,
)
from tripletlab.retrieval.faiss_index import IndexSettings
from tripletlab.retrieval.matching import NO_MATCH, Matches, match_neighbors

RECALL_K = 10
"""The ``k`` of the recall@k that an approximate index is measured with."""

RECALL_SAMPLE = 1000
"""Items of the gallery used as queries to measure that recall."""

DEFAULT_MAX_PAIRS = 1_000_000
"""Verification pairs sampled from a labelled split by :meth:`Index.calibrate` (``target_far``)."""


@dataclasses.dataclass(frozen=True)
class SearchResults:
    """The ``k`` nearest gallery items of every query, nearest first.

    Attributes:
      items: ``[Q, k]`` int64 item numbers (rows of the gallery, in the order items were added);
        ``-1`` where an approximate index found fewer than ``k`` items (label and name empty,
        distance infinite).
      distances: ``[Q, k]`` float32 distances.
      labels: ``[Q, k]`` the items' labels.
      names: ``[Q, k]`` the items' names (file paths, or ``source/split/row``).
    """

    items: np.ndarray
    distances: np.ndarray
    labels: np.ndarray
    names: np.ndarray


class Index:
    """A gallery of labelled embeddings searched with faiss.

    Args:
      dimension: the embedding size.
      distance: the distance the embeddings are compared with (one of
        :data:`tripletlab.distances.DISTANCES`); a model trained with a distance is searched
        with the same.
      settings: the faiss index's kind and parameters (default: exact search).
      metadata: JSON-ready information kept with the index (``tripletlab index`` keeps how
        its items were embedded, so queries are embedded the same way).

    Attributes:
      calibration: the :class:`~tripletlab.retrieval.calibration.Calibration` of the last
        :meth:`calibrate`, saved with the index; its threshold is :meth:`match`'s default.
      matching: ``{"rule", "k"}``: the match rule the calibration was made for, and
        :meth:`match`'s default.
      recall: ``{"k", "sample", "recall"}``: recall@k of an approximate index against exact
        search, measured when items are added (``None`` for a flat index).
      faiss_index: the faiss index (``None`` until items are added).
    """

    def __init__(self, dimension: int, *, distance: str = "L2",
                 settings: IndexSettings | None = None, metadata: dict[str, Any] | None = None):
        check_number("dimension", dimension, minimum=1, integer=True)
        self.dimension = int(dimension)
        self.distance = check_distance(distance)
        self.settings = settings or IndexSettings()
        self.metadata = dict(metadata or {})
        self.labels = np.zeros(0, dtype=str)
        self.names = np.zeros(0, dtype=str)
        self.calibration: Calibration | None = None
        self.recall: dict[str, Any] | None = None
        self.matching = {"rule": "nearest", "k": 1}
        self.faiss_index = None
        self.origin: tuple[str, int] | None = None  # (folder, generation) it was loaded from

    @classmethod
    def build(cls, embeddings, labels, *, names=None, distance: str = "L2",
              settings: IndexSettings | None = None, metadata: dict[str, Any] | None = None,
              progress: bool = False) -> Index:
        """A new index of ``embeddings`` (``[N, D]``) with their ``labels`` (``[N]``).

        ``names`` (``[N]`` strings) name the items (default: their row numbers). See
        :meth:`add` for the checks.
        """
        embeddings = check_embeddings("embeddings", embeddings)
        index = cls(embeddings.shape[1], distance=distance, settings=settings, metadata=metadata)
        index.add(embeddings, labels, names=names, progress=progress)
        return index

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"Index({len(self):,} items, dimension={self.dimension}, "
                f"distance={self.distance!r}, kind={self.settings.kind!r})")

    @property
    def threshold(self) -> float | None:
        """The calibrated distance threshold, or ``None`` before :meth:`calibrate`."""
        return None if self.calibration is None else self.calibration.threshold

    @property
    def class_names(self) -> list[str]:
        """The distinct labels of the gallery, sorted."""
        return sorted(set(self.labels.tolist()))

    def add(self, embeddings, labels, *, names=None, progress: bool = False) -> None:
        """Adds items: ``embeddings`` ``[N, D]`` (finite floats), ``labels`` ``[N]`` (integers
        or non-empty strings), ``names`` ``[N]`` strings (default: their item numbers).

        The first items added to an IVF index train it. An approximate index's recall@k against
        exact search is measured again afterwards (:attr:`recall`).

        Raises:
          ValueError: no rows, a dimension other than the index's, labels or names of another
            length, empty labels, non-finite embeddings.
        """
        check_bool("progress", progress)
        embeddings = check_embeddings("embeddings", embeddings)
        if embeddings.shape[1] != self.dimension:
            raise ConfigError(f"Expected embeddings of dimension {self.dimension}, the index's. "
                              f"Received: embeddings.shape={embeddings.shape}.")
        labels = _label_strings("labels", labels, len(embeddings))
        if names is None:
            names = np.arange(len(self), len(self) + len(embeddings)).astype(str)
        names = _label_strings("names", names, len(embeddings))
        if self.faiss_index is None:
            self.faiss_index, self.settings = faiss_index.new_index(
                self.settings, self.dimension, self.distance, embeddings)
        bar = _progress_bar(len(embeddings), "item") if progress else None
        faiss_index.add_rows(self.faiss_index, embeddings, self.distance, bar)
        self.labels = np.concatenate([self.labels, labels])
        self.names = np.concatenate([self.names, names])
        self.recall = self.measure_recall() if self.settings.kind != "flat" else None

    def measure_recall(self, k: int = RECALL_K, sample: int = RECALL_SAMPLE) -> dict[str, Any]:
        """Recall@k against exact search on a seeded sample of the gallery's items (see
        :func:`tripletlab.retrieval.faiss_index.approximate_recall`)."""
        self._check_not_empty()
        value = faiss_index.approximate_recall(self.faiss_index, self.settings, self.distance,
                                               k, sample)
        return {"k": int(min(k, len(self) - 1)), "sample": int(min(sample, len(self))),
                "recall": float(value)}

    def search(self, queries, k: int = 10, *, distance: str | None = None,
               progress: bool = False) -> SearchResults:
        """The ``k`` nearest items of every query (``[Q, D]``), nearest first.

        Args:
          queries: the query embeddings.
          k: neighbours per query, ``1 <= k <= len(index)``.
          distance: when given, must be the index's distance (a check for callers that carry
            their own).
          progress: show a progress bar over the queries.
        """
        self._check_not_empty()
        self._check_distance(distance)
        check_number("k", k, minimum=1, maximum=len(self), integer=True)
        queries = self._check_queries(queries)
        bar = _progress_bar(len(queries), "query") if progress else None
        items, distances = faiss_index.search(self.faiss_index, self.settings, queries, int(k),
                                              self.distance, bar)
        # An approximate index returns item -1 when it found fewer than k candidates: those
        # places get no label and no name, at an infinite distance (never a match).
        missing = items < 0
        labels = np.where(missing, NO_MATCH, self.labels[np.where(missing, 0, items)])
        names = np.where(missing, "", self.names[np.where(missing, 0, items)])
        return SearchResults(items=items, distances=np.where(missing, np.inf, distances),
                             labels=labels, names=names)

    def match(self, queries, *, k: int | None = None, rule: str | None = None,
              threshold: float | None = None, calibrated: bool = True) -> Matches:
        """The label each query matches, or no match past the threshold.

        Args:
          queries: the query embeddings ``[Q, D]``.
          k: neighbours the rule reads (``"nearest"`` reads one); default: :attr:`matching`.
          rule: one of :data:`tripletlab.retrieval.matching.MATCH_RULES`; default:
            :attr:`matching` (the rule the threshold was calibrated for).
          threshold: the largest matching distance; ``None`` uses the calibrated threshold
            when ``calibrated`` (and the index has one), else matches every query.
          calibrated: use the calibrated threshold when ``threshold`` is ``None``.
        """
        check_bool("calibrated", calibrated)
        rule = self.matching["rule"] if rule is None else rule
        k = (1 if rule == "nearest" else self.matching["k"]) if k is None else k
        if threshold is not None:
            check_number("threshold", threshold, minimum=0.0)
        elif calibrated:
            threshold = self.threshold
        found = self.search(queries, k)
        return match_neighbors(found.labels, found.distances, found.items, rule=rule,
                               threshold=threshold)

    def calibrate(self, embeddings, labels, *, rule: str = "nearest", k: int = 1,
                  target_precision: float | None = None, target_far: float | None = None,
                  max_pairs: int = DEFAULT_MAX_PAIRS) -> Calibration:
        """Calibrates the match threshold on a labelled split and keeps it (:attr:`calibration`).

        Without a target, the threshold maximises F1 of the matches; with ``target_precision``,
        it is the largest whose matches reach that precision (see
        :func:`~tripletlab.retrieval.calibration.calibrate_matches`). With ``target_far``, the
        split's own pairs are compared instead of the gallery (verification: same class or
        not), and the threshold is the largest whose false-accept rate stays at or below it.

        Args:
          embeddings: the labelled split's embeddings ``[N, D]``: held out from the gallery.
          labels: their labels ``[N]``.
          rule, k: the match rule, as :meth:`match` will use it.
          target_precision: the precision to reach, in ``(0, 1]``.
          target_far: the false-accept rate of verification pairs, in ``(0, 1]``.
          max_pairs: verification pairs sampled from the split (``target_far`` only).
        """
        if target_precision is not None and target_far is not None:
            raise ConfigError("Expected at most one of `target_precision` and `target_far`. "
                              f"Received: target_precision={target_precision}, "
                              f"target_far={target_far}.")
        queries = self._check_queries(embeddings)
        labels = _label_strings("labels", labels, len(queries))
        if target_far is not None:
            calibration = self._calibrate_pairs(queries, labels, target_far, max_pairs)
        else:
            matches = self.match(queries, k=k, rule=rule, calibrated=False)
            calibration = calibrate_matches(matches.distances, matches.labels == labels,
                                            target_precision=target_precision)
        self.calibration = calibration
        self.matching = {"rule": rule, "k": int(k)}
        return calibration

    def _calibrate_pairs(self, queries, labels, target_far, max_pairs) -> Calibration:
        from tripletlab.numpy_distances import paired_distances

        first, second, same = sample_pairs(labels, max_pairs=max_pairs, seed=self.settings.seed)
        distances = paired_distances(queries[first], queries[second], self.distance)
        return calibrate_verification(distances[same], distances[~same], target_far=target_far)

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False,
             model_file: str | os.PathLike | None = None,
             extra_files: dict[str, Any] | None = None) -> None:
        """Writes the index to a folder (see :mod:`tripletlab.retrieval.index_folder`).

        Args:
          directory: the index folder: new, empty, or an index tripletlab wrote.
          overwrite: replace an index already in ``directory``. Without it, an existing
            index is only replaced by itself grown (what :meth:`load` then :meth:`add` give).
          model_file: a ``.keras`` model copied into the folder, so queries can be embedded
            with it (``tripletlab query`` with a data source).
          extra_files: ``{role: (file name, writer)}``: more files written into the folder
            under its lock (see :func:`tripletlab.retrieval.index_folder.write_index`).
        """
        from tripletlab.retrieval.index_folder import write_index

        self._check_not_empty()
        write_index(self, directory, overwrite=overwrite, model_file=model_file,
                    extra_files=extra_files)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Index:
        """The index a :meth:`save` wrote in ``directory`` (its files are checked against the
        manifest's sizes and checksums first)."""
        from tripletlab.retrieval.index_folder import read_index

        parts = read_index(directory)
        manifest = parts["manifest"]
        index = cls(manifest["dimension"], distance=manifest["distance"],
                    settings=IndexSettings.from_dict(manifest["settings"]),
                    metadata=manifest.get("metadata"))
        index.faiss_index, index.labels, index.names = (parts["faiss_index"], parts["labels"],
                                                        parts["names"])
        index.recall = manifest.get("recall")
        index.matching = manifest.get("matching") or index.matching
        if manifest.get("calibration"):
            index.calibration = Calibration.from_dict(manifest["calibration"])
        index.origin = (str(Path(directory).resolve()), manifest["generation"])
        return index

    def _check_not_empty(self) -> None:
        if self.faiss_index is None or len(self) == 0:
            raise ConfigError("Expected an index with at least one item. Received: an empty "
                              "index (add items first).")

    def _check_distance(self, distance: str | None) -> None:
        if distance is not None and check_distance(distance) != self.distance:
            raise ConfigError(f"Expected distance={self.distance!r}, the distance this index was "
                              f"built for. Received: distance={distance!r}.")

    def _check_queries(self, queries) -> np.ndarray:
        queries = check_embeddings("queries", queries)
        if queries.shape[1] != self.dimension:
            raise ConfigError(f"Expected queries of dimension {self.dimension}, the index's "
                              f"embedding size. Received: queries.shape={queries.shape}.")
        return queries


def _label_strings(name: str, values, count: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != count:
        raise ConfigError(f"Expected `{name}` of shape [{count}], one per embedding. Received: "
                          f"{name}.shape={array.shape}.")
    if array.dtype.kind not in "iuUS":
        raise ConfigError(f"Expected `{name}` to be integers or strings. Received: "
                          f"{name}.dtype={array.dtype}.")
    strings = array.astype(str)
    if count and (np.char.str_len(strings) == 0).any():
        raise ConfigError(f"Expected `{name}` to be non-empty strings. Received: an empty one "
                          f"at position {int(np.argmin(np.char.str_len(strings)))}.")
    return strings


def _progress_bar(total: int, unit: str):
    import keras

    return keras.utils.Progbar(total, unit_name=unit)
