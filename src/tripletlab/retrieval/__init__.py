"""From embeddings to use: a searchable gallery, queries, matches and a calibrated threshold.

* :class:`Index` (``index.py``): build, add, search, match, calibrate, save, load.
* ``faiss_index.py``: the faiss index behind it: exact, HNSW or IVF, and its measured recall.
* ``matching.py``: the match rules (nearest, majority vote) and "no match" past a threshold.
* ``calibration.py``: the threshold that maximises F1, reaches a precision, or a false-accept
  rate.
* ``index_folder.py``: the folder an index is saved in, written so a killed run leaves the
  previous index whole.

faiss is an optional dependency (``pip install "tripletlab[eval]"``).
"""

from tripletlab.retrieval.calibration import (
    Calibration,
    calibrate_matches,
    calibrate_verification,
    sample_pairs,
)
from tripletlab.retrieval.faiss_index import INDEX_KINDS, IndexSettings
from tripletlab.retrieval.index import Index, SearchResults
from tripletlab.retrieval.matching import MATCH_RULES, NO_MATCH, Matches

__all__ = [
    "INDEX_KINDS",
    "MATCH_RULES",
    "NO_MATCH",
    "Calibration",
    "Index",
    "IndexSettings",
    "Matches",
    "SearchResults",
    "calibrate_matches",
    "calibrate_verification",
    "sample_pairs",
]
