r"""The picture of a distance-threshold calibration (:mod:`tripletlab.retrieval.calibration`).

Two panels, drawn with matplotlib into one image file through
:func:`tripletlab.visualization.plot.save_figure` (atomic, at 100 dpi):

* matches: precision, recall and F1 against the threshold, then precision against recall;
* verification pairs: TAR and FAR against the threshold, then TAR against FAR (ROC, FAR on a
  log axis).

The chosen threshold is a vertical line (its figures in the legend and the title), a target a
dotted line. Curves are steps: a score holds from one distinct distance up to the next.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tripletlab.atomic import Recorder
from tripletlab.errors import ConfigTypeError, MissingExtraError
from tripletlab.visualization.plot import DPI, QUERY_COLOR, RIGHT_COLOR, WRONG_COLOR, save_figure

if TYPE_CHECKING:
    from tripletlab.retrieval.calibration import Calibration

FIGURE_INCHES = (11.0, 4.5)
"""The figure's size: a PNG of 1100 × 450 pixels."""

PLOT_POINTS = 2000
"""At most this many points of a curve are drawn (:meth:`Calibration.sampled_curve`)."""

_ORANGE = "#ff7f0e"


def plot_calibration(calibration: Calibration, path: str | os.PathLike, *,
                     record: Recorder | None = None) -> Path:
    """Draws a calibration's curves and its chosen threshold into an image file.

    Args:
      calibration: a :class:`tripletlab.retrieval.calibration.Calibration` (its full curve, or
        the subsampled one of :meth:`~tripletlab.retrieval.calibration.Calibration.from_dict`).
      path: the output file (``.png`` gives 1100 × 450 pixels; ``.svg`` and ``.pdf`` work).
      record: called with ``path`` before it is written
        (:func:`tripletlab.atomic.atomic_path`).

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ConfigTypeError: ``calibration`` is not a ``Calibration``.
      MissingExtraError: matplotlib is not installed (``pip install "tripletlab[viz]"``).

    Example:
      >>> from tripletlab.retrieval.calibration import calibrate_matches
      >>> plot_calibration(calibrate_matches(d, ok), "calibration.png")  # doctest: +SKIP
    """
    from tripletlab.retrieval.calibration import Calibration

    if not isinstance(calibration, Calibration):
        raise ConfigTypeError("Expected `calibration` to be a Calibration. Received: "
                              f"calibration of type {type(calibration).__name__}.")
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingExtraError('Plotting needs matplotlib: pip install "tripletlab[viz]"'
                                ) from error
    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    left, right = figure.subplots(1, 2)
    curve = calibration.sampled_curve(PLOT_POINTS)
    if calibration.is_verification:
        _verification_panels(left, right, calibration, curve)
    else:
        _match_panels(left, right, calibration, curve)
    figure.suptitle(calibration.describe(), fontsize=10)
    return save_figure(figure, path, record=record)


def _match_panels(left: Any, right: Any, calibration: Calibration,
                  curve: dict[str, np.ndarray]) -> None:
    thresholds = curve["thresholds"]
    for name, label, color in (("precision", "precision", QUERY_COLOR),
                               ("recall", "recall", _ORANGE), ("f1", "F1", RIGHT_COLOR)):
        left.plot(thresholds, curve[name], drawstyle="steps-post", color=color, label=label)
    left.axvline(calibration.threshold, color="black", linestyle="--", linewidth=1,
                 label=(f"threshold {calibration.threshold:.4g}: P {calibration.precision:.3f}, "
                        f"R {calibration.recall:.3f}, F1 {calibration.f1:.3f}"))
    if calibration.target is not None:
        left.axhline(calibration.target, color=WRONG_COLOR, linestyle=":", linewidth=1,
                     label=f"target precision {calibration.target:g}")
        right.axhline(calibration.target, color=WRONG_COLOR, linestyle=":", linewidth=1,
                      label=f"target precision {calibration.target:g}")
    _style(left, "distance threshold (matched when distance <= threshold)", "score",
           f"{calibration.counts['queries']} queries, {calibration.counts['correct']} "
           "with a correct match")
    left.set_ylim(-0.02, 1.02)

    right.plot(curve["recall"], curve["precision"], drawstyle="steps-post", color=QUERY_COLOR,
               label="precision-recall")
    right.plot([calibration.recall], [calibration.precision], "o", color="black",
               label=f"chosen: P {calibration.precision:.3f}, R {calibration.recall:.3f}")
    _style(right, "recall (correct matches kept)", "precision (matches that are correct)",
           "precision against recall")
    right.set_xlim(-0.02, 1.02)
    right.set_ylim(-0.02, 1.02)


def _verification_panels(left: Any, right: Any, calibration: Calibration,
                         curve: dict[str, np.ndarray]) -> None:
    thresholds = curve["thresholds"]
    left.plot(thresholds, curve["tar"], drawstyle="steps-post", color=RIGHT_COLOR,
              label="TAR (genuine pairs accepted)")
    left.plot(thresholds, curve["far"], drawstyle="steps-post", color=WRONG_COLOR,
              label="FAR (impostor pairs accepted)")
    left.axvline(calibration.threshold, color="black", linestyle="--", linewidth=1,
                 label=(f"threshold {calibration.threshold:.4g}: TAR {calibration.tar:.3f}, "
                        f"FAR {calibration.far:.2g}"))
    _style(left, "distance threshold (accepted when distance <= threshold)", "rate",
           f"{calibration.counts['genuine']} genuine, {calibration.counts['impostor']} "
           "impostor pairs")
    left.set_ylim(-0.02, 1.02)

    # A log axis cannot show FAR 0: those points (and a chosen FAR of 0) sit at half the
    # smallest FAR one impostor pair makes.
    floor = 0.5 / max(calibration.counts["impostor"], 1)
    far = np.maximum(curve["far"], floor)
    right.plot(far, curve["tar"], drawstyle="steps-post", color=QUERY_COLOR, label="ROC")
    right.axvline(calibration.target, color=WRONG_COLOR, linestyle=":", linewidth=1,
                  label=f"target FAR {calibration.target:g}")
    right.plot([max(calibration.far, floor)], [calibration.tar], "o", color="black",
               label=f"chosen: TAR {calibration.tar:.3f} at FAR {calibration.far:.2g}")
    right.set_xscale("log")
    _style(right, "FAR (log scale)", "TAR", "TAR against FAR")
    right.set_ylim(-0.02, 1.02)


def _style(axes: Any, xlabel: str, ylabel: str, title: str) -> None:
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(True, linewidth=0.4, alpha=0.5)
    axes.legend(fontsize=7, loc="best")

