"""Match rules: the label a query gets from its nearest gallery items, or "no match".

* ``"nearest"``: the label of the nearest item; the match's distance is that item's.
* ``"majority-vote"``: the most frequent label among the ``k`` nearest items (a tie goes to the
  label whose closest item is nearer); the match's distance is that of the nearest item
  carrying the winning label.

With a threshold :math:`t`, a query whose match distance :math:`d > t` gets no match. The same
rule and distance are what :mod:`tripletlab.retrieval.calibration` calibrates :math:`t` on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tripletlab._checks import check_choice
from tripletlab.retrieval_names import MATCH_RULES

NO_MATCH = ""
"""The label of a query that got no match (its :attr:`Matches.matched` is ``False``)."""


@dataclasses.dataclass(frozen=True)
class Matches:
    """What each query matched.

    Attributes:
      labels: ``[Q]`` the matched label of each query (:data:`NO_MATCH` when unmatched).
      distances: ``[Q]`` float32 distance of each match (set even when it was past the
        threshold).
      items: ``[Q]`` int64 gallery item that carried the match (the nearest of its label).
      matched: ``[Q]`` bool, ``distances <= threshold`` (without a threshold: every query
        whose rule found a neighbour).
      threshold: the threshold used, or ``None``.
      rule: the match rule used.
    """

    labels: np.ndarray
    distances: np.ndarray
    items: np.ndarray
    matched: np.ndarray
    threshold: float | None
    rule: str


def match_neighbors(neighbor_labels: np.ndarray, neighbor_distances: np.ndarray,
                    neighbor_items: np.ndarray, *, rule: str,
                    threshold: float | None) -> Matches:
    """Applies a match rule to each query's neighbours (nearest first).

    Args:
      neighbor_labels: ``[Q, k]`` labels of each query's nearest items.
      neighbor_distances: ``[Q, k]`` their distances, non-decreasing along each row.
      neighbor_items: ``[Q, k]`` their item numbers.
      rule: one of :data:`MATCH_RULES` (``"nearest"`` reads the first column only).
      threshold: the largest distance that still matches, or ``None`` to match every query.

    Returns:
      The :class:`Matches`.
    """
    check_choice("rule", rule, MATCH_RULES)
    if rule == "nearest":
        column = np.zeros(len(neighbor_labels), dtype=np.int64)
    else:
        column = _majority_columns(neighbor_labels)
    rows = np.arange(len(neighbor_labels))
    labels = neighbor_labels[rows, column]
    distances = neighbor_distances[rows, column].astype(np.float32)
    matched = labels != NO_MATCH  # a rule that read only missing neighbours matches nothing
    if threshold is not None:
        matched &= distances <= np.float32(threshold)
    return Matches(labels=np.where(matched, labels, NO_MATCH), distances=distances,
                   items=neighbor_items[rows, column].astype(np.int64), matched=matched,
                   threshold=None if threshold is None else float(threshold), rule=rule)


def _majority_columns(neighbor_labels: np.ndarray) -> np.ndarray:
    """For each row, the first column holding the row's most frequent label (ties: the label
    that appears first, i.e. whose nearest item is nearer); empty places do not vote."""
    same = neighbor_labels[:, :, None] == neighbor_labels[:, None, :]  # [Q, k, k]
    votes = same.sum(axis=2)  # votes[q, j]: how many neighbours share column j's label
    first = np.argmax(same, axis=2) == np.arange(neighbor_labels.shape[1])  # j is its label's first
    # the most votes, then the earliest column (argmax returns the first maximum); the
    # places an approximate index left empty do not vote
    candidates = first & (neighbor_labels != NO_MATCH)
    return np.argmax(np.where(candidates, votes, -1), axis=1)
