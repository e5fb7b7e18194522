"""The names of the retrieval options, defined once and Keras-free (the command line reads
them before Keras loads): the kinds of gallery index and the match rules."""

from __future__ import annotations

INDEX_KINDS = ("flat", "hnsw", "ivf")
"""The kinds of gallery index, by their canonical names (``--index``): exact search, a graph
(HNSW), inverted lists (IVF)."""

MATCH_RULES = ("nearest", "majority-vote")
"""The match rules, by their canonical names (``--match``)."""
