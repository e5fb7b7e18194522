r"""Distance thresholds calibrated on labelled data: when is a match close enough to trust?

Two settings, each a curve over every distinct distance (one sort and cumulative sums,
:math:`O(n \log n)`) and a rule that picks one threshold :math:`t` on it. A distance
:math:`d` is accepted when :math:`d \le t`; :math:`t` is always one of the given distances, so
``distance <= threshold`` on the same distances (float32 included) accepts exactly what the
calibration counted.

**Matches** (:func:`calibrate_matches`): one entry per labelled query, the distance of the
match it got from the gallery (its nearest item, or the winning label's under a majority vote,
:mod:`tripletlab.retrieval.matching`) and whether that match's label is the query's. A query
is *matched* at :math:`t` when its distance is at most :math:`t`. With :math:`M(t)` the matched
queries, :math:`TP(t)` those among them whose match is correct, and :math:`C` all the queries
whose match is correct:

.. math::

    P(t) = \frac{TP(t)}{M(t)}, \qquad R(t) = \frac{TP(t)}{C}, \qquad
    F_1(t) = \frac{2\,TP(t)}{M(t) + C}

(the precision of the answers given, the share of the correct answers kept, their harmonic
mean). This is TensorFlow Similarity's ``calibrate`` with its ``match_nearest`` /
``match_majority_vote`` matchers: a true positive is a correct match within the threshold, a
false negative a correct one beyond it. The rule ``"f1"`` takes the threshold of the highest
:math:`F_1` (ties: the largest); ``"target-precision"`` the largest threshold whose precision
is at least the target, so the one with the highest recall among those that reach it.

**Verification** (:func:`calibrate_verification`): distances of genuine pairs (same class) and
impostor pairs (different classes), e.g. from :func:`sample_pairs`. A pair is accepted at
:math:`t` when its distance is at most :math:`t`:

.. math::

    FAR(t) = \frac{|\{\text{impostor pairs}: d \le t\}|}{|\text{impostor pairs}|}, \qquad
    TAR(t) = \frac{|\{\text{genuine pairs}: d \le t\}|}{|\text{genuine pairs}|}

The rule ``"target-far"`` takes the largest threshold with :math:`FAR(t) \le` the target, the
one with the highest :math:`TAR` at that false acceptance rate.

A threshold estimated on :math:`n` matched queries (or impostor pairs) carries the sampling
error of a proportion, about :math:`\sqrt{p(1 - p)/n}`: calibrate on as many labelled queries
as the target's precision needs, and on data drawn as the queries to come will be.

Example:
  >>> import numpy as np
  >>> distances = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
  >>> correct = np.array([True, True, False, True, False])
  >>> calibrate_matches(distances, correct).threshold
  0.4
  >>> calibrate_matches(distances, correct, target_precision=1.0).threshold
  0.2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from tripletlab._checks import check_choice, check_number
from tripletlab.errors import ConfigError, ConfigTypeError

__all__ = [
    "CURVE_POINTS",
    "MATCH_METRICS",
    "MATCH_SCORES",
    "RULES",
    "VERIFICATION_SCORES",
    "Calibration",
    "calibrate_matches",
    "calibrate_verification",
    "sample_pairs",
]

RULES = ("f1", "target-precision", "target-far")
"""How a threshold is chosen: the highest F1, the largest threshold reaching a target
precision, the largest threshold within a target false acceptance rate."""

MATCH_METRICS = ("f1",)
"""The metrics :func:`calibrate_matches` can maximise without a target."""

MATCH_SCORES = ("precision", "recall", "f1")
"""The scores (and curves) of a calibration on matches."""

VERIFICATION_SCORES = ("tar", "far")
"""The scores (and curves) of a calibration on verification pairs."""

CURVE_POINTS = 200
"""At most this many points of the curve go into :meth:`Calibration.to_dict`."""

_SCORE_LABELS = {"precision": "precision", "recall": "recall", "f1": "F1", "tar": "TAR",
                 "far": "FAR"}


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
    """A calibrated distance threshold, what it achieves, and the curve it was chosen on.

    Attributes:
      rule: one of :data:`RULES`.
      threshold: the largest distance accepted (``distance <= threshold``).
      target: the target precision or FAR of the rule, ``None`` for ``"f1"``.
      scores: what the threshold achieves on the calibration data: ``precision``, ``recall``
        and ``f1`` (matches) or ``tar`` and ``far`` (verification).
      counts: matches: ``queries``, ``correct`` (queries whose match is correct),
        ``matched`` (queries within the threshold) and ``matched_correct``; verification:
        ``genuine`` and ``impostor`` pairs, ``accepted_genuine`` and ``accepted_impostor``.
      curve: ``thresholds`` (increasing: every distinct distance) and one array per score,
        the score at each threshold. Read-only arrays.
    """

    rule: str
    threshold: float
    target: float | None
    scores: Mapping[str, float]
    counts: Mapping[str, int]
    curve: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        curve = {}
        for name, values in self.curve.items():
            array = np.array(values, dtype=np.float64)
            array.flags.writeable = False
            curve[name] = array
        object.__setattr__(self, "scores", {k: float(v) for k, v in self.scores.items()})
        object.__setattr__(self, "counts", {k: int(v) for k, v in self.counts.items()})
        object.__setattr__(self, "curve", curve)

    @property
    def is_verification(self) -> bool:
        """Whether this calibrates verification pairs (TAR/FAR) rather than matches."""
        return self.rule == "target-far"

    @property
    def precision(self) -> float | None:
        """The precision at :attr:`threshold` (matches), else ``None``."""
        return self.scores.get("precision")

    @property
    def recall(self) -> float | None:
        """The recall at :attr:`threshold` (matches), else ``None``."""
        return self.scores.get("recall")

    @property
    def f1(self) -> float | None:
        """The F1 at :attr:`threshold` (matches), else ``None``."""
        return self.scores.get("f1")

    @property
    def tar(self) -> float | None:
        """The true acceptance rate at :attr:`threshold` (verification), else ``None``."""
        return self.scores.get("tar")

    @property
    def far(self) -> float | None:
        """The false acceptance rate at :attr:`threshold` (verification), else ``None``."""
        return self.scores.get("far")

    def describe(self) -> str:
        """One line: the threshold, its rule and what it achieves, e.g.
        ``threshold 0.8312 (F1-optimal): precision 0.951, recall 0.712, F1 0.814 on 1000
        queries``."""
        if self.rule == "f1":
            how = "F1-optimal"
        elif self.rule == "target-precision":
            how = f"precision >= {self.target:g}"
        else:
            how = f"FAR <= {self.target:g}"
        scores = ", ".join(f"{_SCORE_LABELS[name]} {value:.3f}"
                           for name, value in self.scores.items())
        if self.is_verification:
            amount = (f"{self.counts['genuine']} genuine and {self.counts['impostor']} "
                      "impostor pairs")
        else:
            amount = f"{self.counts['queries']} queries"
        return f"threshold {self.threshold:.6g} ({how}): {scores} on {amount}"

    def sampled_curve(self, max_points: int = CURVE_POINTS) -> dict[str, np.ndarray]:
        """The curve at most ``max_points`` thresholds, evenly spaced in rank (so in quantiles
        of the distances), always with the first, the last and the chosen one.

        Args:
          max_points: the most points to keep (at least 3).

        Returns:
          ``{name: array}`` as :attr:`curve`, subsampled (a copy).
        """
        check_number("max_points", max_points, minimum=3, integer=True)
        thresholds = self.curve["thresholds"]
        count = thresholds.shape[0]
        if count <= max_points:
            return {name: values.copy() for name, values in self.curve.items()}
        chosen = int(np.clip(np.searchsorted(thresholds, self.threshold), 0, count - 1))
        rows = np.round(np.linspace(0, count - 1, int(max_points) - 1)).astype(np.int64)
        rows = np.unique(np.append(rows, chosen))
        return {name: values[rows] for name, values in self.curve.items()}

    def to_dict(self, max_points: int = CURVE_POINTS) -> dict[str, Any]:
        """A JSON-ready ``dict`` (plain floats, ints and lists), the curve subsampled to at most
        ``max_points`` points (:meth:`sampled_curve`); :meth:`from_dict` reads it back."""
        return {
            "rule": self.rule,
            "threshold": float(self.threshold),
            "target": None if self.target is None else float(self.target),
            "scores": dict(self.scores),
            "counts": dict(self.counts),
            "curve": {name: [float(v) for v in values]
                      for name, values in self.sampled_curve(max_points).items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """The :class:`Calibration` that :meth:`to_dict` wrote (its curve as subsampled there).

        Raises:
          ConfigError: ``data`` is not such a ``dict`` (e.g. a damaged file).
        """
        keys = ("rule", "threshold", "target", "scores", "counts", "curve")
        if not isinstance(data, Mapping) or any(key not in data for key in keys):
            got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ConfigError(f"Expected a calibration with the keys {list(keys)}. "
                              f"Received: {got}.")
        rule = check_choice("rule", data["rule"], RULES)
        threshold = check_number("threshold", data["threshold"], minimum=0)
        target = data["target"]
        if rule != "f1" or target is not None:
            target = check_number("target", target, minimum=0, minimum_inclusive=False,
                                  maximum=1)
        names = VERIFICATION_SCORES if rule == "target-far" else MATCH_SCORES
        scores, counts, curve = data["scores"], data["counts"], data["curve"]
        if not (isinstance(scores, Mapping) and set(scores) == set(names)):
            raise ConfigError(f"Expected the scores {list(names)} for rule {rule!r}. "
                              f"Received: scores={scores!r}.")
        if not (isinstance(curve, Mapping) and set(curve) == {"thresholds", *names}):
            got = sorted(curve) if isinstance(curve, Mapping) else curve
            raise ConfigError(f"Expected the curves {['thresholds', *names]} for rule "
                              f"{rule!r}. Received: curve with {got}.")
        if not isinstance(counts, Mapping):
            raise ConfigError(f"Expected `counts` to be a mapping. Received: counts={counts!r}.")
        lengths = {name: np.shape(values) for name, values in curve.items()}
        if len(set(lengths.values())) != 1 or len(next(iter(lengths.values()))) != 1:
            raise ConfigError("Expected the curves to be lists of one length. "
                              f"Received: shapes {lengths}.")
        return cls(rule=rule, threshold=float(threshold),
                   target=None if target is None else float(target),
                   scores={name: check_number(name, scores[name]) for name in names},
                   counts={str(k): check_number(str(k), v, minimum=0, integer=True)
                           for k, v in counts.items()},
                   curve={name: curve[name] for name in ("thresholds", *names)})


def calibrate_matches(distances: Any, correct: Any, *, metric: str = "f1",
                      target_precision: float | None = None) -> Calibration:
    r"""The distance threshold for matches: the best F1, or a target precision.

    The curve is evaluated at every distinct distance :math:`t` (queries at equal distances
    are matched together):

    .. math::

        P(t) = \frac{TP(t)}{M(t)}, \quad R(t) = \frac{TP(t)}{C}, \quad
        F_1(t) = \frac{2\,TP(t)}{M(t) + C}

    with :math:`M(t)` the queries whose distance is at most :math:`t`, :math:`TP(t)` those of
    them whose match is correct, and :math:`C` all the queries whose match is correct.

    Args:
      distances: ``[Q]`` the distance of each labelled query's match (finite, ``>= 0``).
      correct: ``[Q]`` bool, whether that match's label is the query's.
      metric: without a target, the score to maximise: ``"f1"`` (ties: the largest
        threshold).
      target_precision: if given, in :math:`(0, 1]`: the largest threshold whose precision
        is at least this (the highest recall that keeps it), instead of ``metric``.

    Returns:
      The :class:`Calibration` (rule ``"f1"`` or ``"target-precision"``).

    Raises:
      ConfigError: shapes, values or targets that cannot be used; no correct match at all
        under ``"f1"``; a target precision that no threshold reaches (the message gives the
        best one reached).
      ConfigTypeError: ``correct`` is not boolean, or ``target_precision`` not a number.
    """
    check_choice("metric", metric, MATCH_METRICS)
    if target_precision is not None:
        check_number("target_precision", target_precision, minimum=0, minimum_inclusive=False,
                     maximum=1)
    values = _distances("distances", distances)
    hits = np.asarray(correct)
    if hits.dtype != np.bool_:
        raise ConfigTypeError("Expected `correct` to be booleans (e.g. `match_labels == "
                              f"query_labels`). Received: correct with dtype {hits.dtype}.")
    if hits.shape != values.shape:
        raise ConfigError("Expected `correct` of the shape of `distances`. Received: "
                          f"distances with shape {values.shape}, correct with shape "
                          f"{hits.shape}.")
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    ends = _run_ends(ordered)
    thresholds = ordered[ends]
    matched = (ends + 1).astype(np.int64)
    matched_correct = np.cumsum(hits[order], dtype=np.int64)[ends]
    total_correct = int(matched_correct[-1])
    precision = matched_correct / matched
    recall = (matched_correct / total_correct if total_correct
              else np.zeros(len(thresholds)))
    f1 = 2.0 * matched_correct / (matched + total_correct)

    if target_precision is None:
        if total_correct == 0:
            raise ConfigError(
                "Expected at least one query whose match is correct: with none, every "
                f"threshold has precision 0. Received: correct with 0 True of {len(hits)}.")
        rule, target = "f1", None
        row = int(np.flatnonzero(f1 == f1.max())[-1])
    else:
        rule, target = "target-precision", float(target_precision)
        reaching = np.flatnonzero(precision >= target)
        if len(reaching) == 0:
            best = int(np.argmax(precision))
            raise ConfigError(
                f"Expected `target_precision` at most the best precision a threshold reaches "
                f"on these {len(hits)} queries, {precision[best]:.4f} (at threshold "
                f"{thresholds[best]:.6g}, {matched[best]} queries matched). "
                f"Received: target_precision={target_precision!r}.")
        row = int(reaching[-1])
    return Calibration(
        rule=rule, threshold=float(thresholds[row]), target=target,
        scores={"precision": precision[row], "recall": recall[row], "f1": f1[row]},
        counts={"queries": len(hits), "correct": total_correct, "matched": matched[row],
                "matched_correct": matched_correct[row]},
        curve={"thresholds": thresholds, "precision": precision, "recall": recall, "f1": f1})


def calibrate_verification(genuine_distances: Any, impostor_distances: Any, *,
                           target_far: float) -> Calibration:
    r"""The distance threshold for verification pairs at a target false acceptance rate.

    At every distinct distance :math:`t` of either kind of pair,

    .. math::

        FAR(t) = \frac{|\{d_{imp} \le t\}|}{n_{imp}}, \qquad
        TAR(t) = \frac{|\{d_{gen} \le t\}|}{n_{gen}}

    and the threshold is the largest :math:`t` with :math:`FAR(t) \le` ``target_far``, the one
    with the highest :math:`TAR` at that rate. A target below :math:`1/n_{imp}` asks for no
    impostor pair accepted: the threshold is then the largest distance below the nearest
    impostor pair's.

    Args:
      genuine_distances: ``[G]`` distances of same-class pairs (finite, ``>= 0``).
      impostor_distances: ``[I]`` distances of different-class pairs (finite, ``>= 0``).
      target_far: the highest false acceptance rate allowed, in :math:`(0, 1]`.

    Returns:
      The :class:`Calibration` (rule ``"target-far"``).

    Raises:
      ConfigError: shapes or values that cannot be used, or a target that no threshold
        reaches (the smallest distance of all is an impostor pair's, and accepting the pairs
        at it exceeds ``target_far``).
    """
    check_number("target_far", target_far, minimum=0, minimum_inclusive=False, maximum=1)
    genuine = np.sort(_distances("genuine_distances", genuine_distances))
    impostor = np.sort(_distances("impostor_distances", impostor_distances))
    both = np.sort(np.concatenate([genuine, impostor]))
    thresholds = both[_run_ends(both)]
    accepted_genuine = np.searchsorted(genuine, thresholds, side="right").astype(np.int64)
    accepted_impostor = np.searchsorted(impostor, thresholds, side="right").astype(np.int64)
    tar = accepted_genuine / len(genuine)
    far = accepted_impostor / len(impostor)
    within = np.flatnonzero(far <= target_far)
    if len(within) == 0:
        raise ConfigError(
            f"Expected `target_far` at least {far[0]:.4g}: the smallest distance, "
            f"{thresholds[0]:.6g}, is that of {accepted_impostor[0]} of the "
            f"{len(impostor)} impostor pairs, so every threshold that accepts a pair accepts "
            f"them. Received: target_far={target_far!r}.")
    row = int(within[-1])
    return Calibration(
        rule="target-far", threshold=float(thresholds[row]), target=float(target_far),
        scores={"tar": tar[row], "far": far[row]},
        counts={"genuine": len(genuine), "impostor": len(impostor),
                "accepted_genuine": accepted_genuine[row],
                "accepted_impostor": accepted_impostor[row]},
        curve={"thresholds": thresholds, "tar": tar, "far": far})


def sample_pairs(labels: Any, *, max_pairs: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Genuine (same-label) and impostor pairs ``i < j`` of a labelled set.

    All :math:`N(N-1)/2` pairs when there are at most ``max_pairs``; otherwise exactly
    ``max_pairs`` pairs drawn uniformly without replacement, half genuine and half impostor
    where each kind has enough (the kind short of its half is taken whole and the other fills
    the rest). Pairs are numbered within each kind without the :math:`N \times N` matrix
    (memory :math:`O(N + \text{max\_pairs})`), and drawn by
    ``numpy.random.default_rng(seed)``.

    Args:
      labels: ``[N]`` class labels (any type ``numpy.unique`` sorts).
      max_pairs: the most pairs returned (at least 2).
      seed: the seed of the draw (``>= 0``).

    Returns:
      ``(first, second, same)``: ``int64`` indices with ``first < second``, sorted by
      ``(first, second)``, and bool ``labels[first] == labels[second]``.

    Raises:
      ConfigError: ``labels`` is not 1-D, or the set has no genuine pair (every class has
        one sample) or no impostor pair (a single class).

    Example:
      >>> first, second, same = sample_pairs([0, 0, 1], max_pairs=10, seed=0)
      >>> first.tolist(), second.tolist(), same.tolist()
      ([0, 0, 1], [1, 2, 2], [True, False, False])
    """
    max_pairs = int(check_number("max_pairs", max_pairs, minimum=2, integer=True))
    seed = int(check_number("seed", seed, minimum=0, integer=True))
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ConfigError("Expected `labels` to be 1-D. "
                          f"Received: labels with shape {values.shape}.")
    _, classes, sizes = np.unique(values, return_inverse=True, return_counts=True)
    count = len(values)
    genuine_total = int(np.sum(sizes * (sizes - 1) // 2))
    impostor_total = count * (count - 1) // 2 - genuine_total
    if genuine_total == 0:
        raise ConfigError("Expected a class with at least two samples, for genuine pairs. "
                          f"Received: labels of {count} samples in {len(sizes)} classes of "
                          "one sample each.")
    if impostor_total == 0:
        raise ConfigError("Expected labels of at least two classes, for impostor pairs. "
                          f"Received: labels of {count} samples, all of one class.")
    if genuine_total + impostor_total <= max_pairs:
        first, second = np.triu_indices(count, k=1)
        first, second = first.astype(np.int64), second.astype(np.int64)
        return first, second, values[first] == values[second]

    num_genuine = min(genuine_total, max_pairs // 2)
    num_impostor = min(impostor_total, max_pairs - num_genuine)
    num_genuine = min(genuine_total, max_pairs - num_impostor)
    rng = np.random.default_rng(seed)
    # Positions in class order: class k holds positions [start_k, end_k). The partners of
    # position i after it are i+1..end_k-1 (genuine) and end_k..N-1 (impostor).
    order = np.argsort(classes, kind="stable")
    ends = np.cumsum(sizes)[classes[order]]
    positions = np.arange(count, dtype=np.int64)
    kinds = ((positions + 1, ends - positions - 1, num_genuine),
             (ends, count - ends, num_impostor))
    pairs = []
    for partners_start, partners, wanted in kinds:
        ranks = rng.choice(int(partners.sum()), size=wanted, replace=False)
        # The rank of position i's first pair; the last position at or below a rank has
        # partners (the next one starts above the rank) and holds it.
        offsets = np.cumsum(partners) - partners
        row = np.searchsorted(offsets, ranks, side="right") - 1
        column = partners_start[row] + (ranks - offsets[row])
        pairs.append((order[row], order[column]))
    first = np.concatenate([np.minimum(a, b) for a, b in pairs]).astype(np.int64)
    second = np.concatenate([np.maximum(a, b) for a, b in pairs]).astype(np.int64)
    sort = np.lexsort((second, first))
    first, second = first[sort], second[sort]
    return first, second, values[first] == values[second]


def _run_ends(ordered: np.ndarray) -> np.ndarray:
    """The index of the last element of each run of equal values of a sorted array."""
    return np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))


def _distances(name: str, values: Any) -> np.ndarray:
    """``values`` as a float64 ``[n]`` array of finite distances ``>= 0`` (``n >= 1``)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ConfigError(f"Expected `{name}` to be a non-empty 1-D array of distances. "
                          f"Received: {name} with shape {array.shape}.")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating)
                                       or np.issubdtype(array.dtype, np.integer)):
        raise ConfigTypeError(f"Expected `{name}` to hold real numbers. "
                              f"Received: {name} with dtype {array.dtype}.")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        raise ConfigError(f"Expected `{name}` to be finite. Received: {name}[{bad[0]}]="
                          f"{float(array[bad[0]])!r} ({len(bad)} not finite).")
    if array.min() < 0:
        first = int(np.argmin(array >= 0))
        raise ConfigError(f"Expected `{name}` >= 0 (distances, not similarities). Received: "
                          f"{name}[{first}]={float(array[first])!r} (minimum "
                          f"{float(array.min())!r}).")
    return array

