"""Building blocks of online triplet mining on a ``[B, B]`` distance matrix.

Everything here works on dense ``[B, B]`` tensors with static shapes (no boolean-mask gathers),
so it runs under ``jit_compile=True`` on every backend and never allocates ``B x B x B``. One
module per strategy (:mod:`.semi_hard`, :mod:`.batch_all`, :mod:`.hard`) computes, for a slice
of anchors (rows) and without autodiff, what the loss needs: sums with their closed-form
derivative, or the columns of the chosen pairs for the loss to gather.
"""

from tripletlab.mining.batch_all import (
    batch_all_slot_rows,
    batch_all_window_rows,
    hinge_counts_are_slope_counts,
    soft_batch_all_rows,
)
from tripletlab.mining.chunks import attach_column_gradient, attach_gradient, map_row_chunks
from tripletlab.mining.class_blocks import ClassBlocks, class_blocks
from tripletlab.mining.distance_matrix import (
    EmbeddingDistances,
    TensorDistances,
    as_distance_matrix,
)
from tripletlab.mining.extremes import row_extreme
from tripletlab.mining.hard import hardest_columns
from tripletlab.mining.hinge import hinge_or_soft, term_and_slope
from tripletlab.mining.masks import count_true, label_masks
from tripletlab.mining.positive_windows import window_plan
from tripletlab.mining.rank import count_at_or_below, count_below
from tripletlab.mining.select import (
    hardest_negative,
    hardest_positive,
    positive_counts,
    positive_slots,
)
from tripletlab.mining.semi_hard import semi_hard_slot_rows, semi_hard_window_rows
from tripletlab.mining.tracing import in_tensorflow_xla

__all__ = [
    "EmbeddingDistances",
    "TensorDistances",
    "as_distance_matrix",
    "attach_column_gradient",
    "attach_gradient",
    "batch_all_slot_rows",
    "batch_all_window_rows",
    "ClassBlocks",
    "class_blocks",
    "count_true",
    "count_at_or_below",
    "count_below",
    "hardest_columns",
    "hardest_negative",
    "hardest_positive",
    "hinge_counts_are_slope_counts",
    "hinge_or_soft",
    "in_tensorflow_xla",
    "label_masks",
    "map_row_chunks",
    "positive_counts",
    "positive_slots",
    "row_extreme",
    "semi_hard_slot_rows",
    "semi_hard_window_rows",
    "soft_batch_all_rows",
    "term_and_slope",
    "window_plan",
]
