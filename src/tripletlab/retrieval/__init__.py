"""From embeddings to use: a searchable gallery, queries, matches and a calibrated threshold.

* :class:`Index` (``index.py``): build, add, search, match, calibrate, save, load.
* ``faiss_index.py``: the faiss index behind it: exact, HNSW or IVF, and its measured recall.
* ``matching.py``: the match rules (nearest, majority vote) and "no match" past a threshold.
* ``calibration.py``: the threshold that maximises F1, reaches a precision, or a false-accept
  rate.
* ``index_folder.py``: the folder an index is saved in, written so a killed run leaves the
  previous index whole.

faiss is an optional dependency (``pip install "tripletlab[eval]"``). The kinds of index and the
match rules are named in :mod:`tripletlab.retrieval_names`.
"""

import lazy_loader

# Names load on first use: reading an index folder's manifest (the experiment report does)
# imports neither faiss nor Keras.
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "calibration": ["Calibration", "calibrate_matches", "calibrate_verification",
                    "sample_pairs"],
    "faiss_index": ["IndexSettings"],
    "index": ["Index", "SearchResults"],
    "matching": ["NO_MATCH", "Matches"],
})
