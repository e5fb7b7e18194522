"""Building blocks of online triplet mining on a ``[B, B]`` distance matrix.

Everything here works on dense ``[B, B]`` tensors with static shapes (no boolean-mask gathers),
so it runs under ``jit_compile=True`` on every backend and never allocates ``B x B x B``.
"""

from tripletlab.mining.chunks import attach_gradient, map_row_chunks
from tripletlab.mining.masks import label_masks
from tripletlab.mining.rank import count_below, count_at_or_below
from tripletlab.mining.select import (
    hardest_negative,
    hardest_positive,
    negative_hinge_sums,
    semi_hard_negative,
    sorted_negatives,
)

__all__ = [
    "attach_gradient",
    "count_at_or_below",
    "count_below",
    "hardest_negative",
    "hardest_positive",
    "label_masks",
    "map_row_chunks",
    "negative_hinge_sums",
    "semi_hard_negative",
    "sorted_negatives",
]
