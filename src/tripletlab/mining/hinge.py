"""A mined pair's loss term: the hinge ``max(gap + margin, 0)`` or the soft margin
``log(1 + exp(gap))``, and its derivative, shared by every mining strategy."""

from __future__ import annotations

from keras import ops


def hinge_or_soft(gap, margin, soft):
    """The loss term of ``gap = d(a, p) - d(a, n)``.

    ``soft=True`` gives ``log(1 + exp(gap))`` through a stable softplus (TF Addons'
    ``log1p(exp(.))`` overflows in float32 for gaps above ~88, e.g. with squared-L2); the margin
    does not take part then.
    """
    return ops.softplus(gap) if soft else ops.relu(gap + margin)


def term_and_slope(gap, margin, soft):
    """``(hinge_or_soft(gap), d term / d gap)``; the hinge's slope is 0 at its kink."""
    if soft:
        return ops.softplus(gap), ops.sigmoid(gap)
    value = ops.relu(gap + margin)
    return value, ops.cast(value > 0, gap.dtype)
