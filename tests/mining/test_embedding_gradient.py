"""The closed-form route of a mining loss's gradient to the embeddings
(``tripletlab.mining.EmbeddingDistances``) against autodiff through the distance matrix and the
oracle: per-anchor sample weights, every distance and path, the frozen distance matrix (and its
in-place PyTorch form) equal to ``pairwise_distances``, and the run-time choice of the slot path.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import BACKEND, to_numpy, value_and_gradient
from tripletlab import distances as distances_module
from tripletlab.losses import functional
from tripletlab.mining import EmbeddingDistances, TensorDistances

DISTANCES = ("L2", "squared-L2", "angular", "normalized-L2")
MARGINS = {"L2": 0.7, "squared-L2": 3.0, "angular": 0.15, "normalized-L2": 0.25}
CLASSES = {
    "semi-hard": (tl.losses.TripletSemiHardLoss, oracle.semi_hard, True),
    "hard": (tl.losses.TripletHardLoss, oracle.hard, False),
    "batch-all": (tl.losses.TripletBatchAllLoss, lambda *a: oracle.batch_all(*a)[::2], True),
}
TERMS = {"semi-hard": functional.semi_hard_terms, "hard": functional.hard_terms,
         "batch-all": functional.batch_all_terms}


# ``max_positives`` for the batches of _pk_batch, whose classes have 3 samples (2 positives per
# anchor): one slot is too few (the sort path), two fit (the slot path). (The default, 3, fits.)
SORT_PATH, SLOT_PATH = 1, 2


def _pk_batch(seed, classes=4, per_class=3, dim=5):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(classes), per_class))
    return labels, rng.normal(size=(classes * per_class, dim))


@pytest.mark.parametrize("max_positives", [SORT_PATH, SLOT_PATH], ids=["sort-path", "slot-path"])
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_sample_weight_gradient_matches_oracle(name, distance, max_positives):
    """Each anchor's value carries exactly its own terms' gradient, so weighting anchors weights
    the gradient row by row of dL/dD (what autodiff through the matrix gave)."""
    cls, reference, has_slots = CLASSES[name]
    if max_positives == SLOT_PATH and not has_slots:
        pytest.skip("batch-hard has no slot path")
    labels, x = _pk_batch(seed=7)
    x = x.astype(np.float32).astype(np.float64)
    weights = np.random.default_rng(8).uniform(0.0, 3.0, size=len(labels))
    weights[labels == labels[0]] = 0.0  # one class's anchors removed entirely
    margin = MARGINS[distance]
    arguments = {} if not has_slots else {"max_positives": max_positives}
    loss = cls(margin=margin, distance=distance, **arguments)

    value, grad = value_and_gradient(
        lambda t: loss(labels, t, sample_weight=weights.astype(np.float32)),
        x.astype(np.float32))

    d = oracle.distance_matrix(x, distance)
    _, grad_d = reference(labels, d, margin, False)
    # The same normaliser, anchors weighted: sum_a w_a S_a / N.
    per_anchor = to_numpy(cls(margin=margin, distance=distance, reduction="none", **arguments)(
        labels, x.astype(np.float32)))
    np.testing.assert_allclose(value, np.mean(per_anchor * weights), rtol=2e-5, atol=1e-6)
    expected = oracle.embedding_gradient(x, distance, weights[:, None] * grad_d)
    scale = max(np.abs(expected).max(), 1e-3)
    np.testing.assert_allclose(grad, expected, rtol=0, atol=2e-4 * scale)
    assert np.abs(expected).max() > 0  # the case exercises a gradient


def _terms_loss(name, labels, matrix, margin, soft, max_positives):
    arguments = {} if name == "hard" else {"max_positives": max_positives}
    return TERMS[name](labels, matrix, margin, soft, **arguments).loss()


# Batch-hard has one path (no max_positives): it runs once.
TERM_PATHS = [(name, path) for name in sorted(TERMS)
              for path in ([SORT_PATH] if name == "hard" else [SORT_PATH, SLOT_PATH])]


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("name, max_positives", TERM_PATHS,
                         ids=[f"{name}-{'sort-path' if path == SORT_PATH else 'slot-path'}"
                              for name, path in TERM_PATHS])
def test_closed_form_equals_autodiff_through_the_matrix(name, distance, max_positives, soft):
    labels, x = _pk_batch(seed=11, classes=5, per_class=3, dim=7)
    x = (x * 3.0 + 2.0).astype(np.float32)  # away from the origin: the coordinates are shifted
    margin = MARGINS[distance]

    def through_matrix(t):
        matrix = TensorDistances(tl.distances.pairwise_distances(t, distance))
        return _terms_loss(name, labels, matrix, margin, soft, max_positives)

    def closed_form(t):
        matrix = EmbeddingDistances(tl.distances.distance_geometry(t, distance))
        return _terms_loss(name, labels, matrix, margin, soft, max_positives)

    value, grad = value_and_gradient(closed_form, x)
    expected_value, expected_grad = value_and_gradient(through_matrix, x)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)  # the same matrix and mining
    assert np.abs(expected_grad).max() > 0
    np.testing.assert_allclose(grad, expected_grad, rtol=0,
                               atol=1e-5 * np.abs(expected_grad).max())


def test_mining_scale_divides_the_closed_form_gradient_too():
    """L2 distances above 2**64 are mined divided by a power of two; the gradient is that of
    the loss on the true distances (scale-free for L2: the oracle on the rescaled inputs)."""
    labels, x = _pk_batch(seed=3)
    big = (x * 1e25).astype(np.float32)
    for name, (_, reference, _) in CLASSES.items():
        loss = TERMS[name]
        value, grad = value_and_gradient(
            lambda t, loss=loss: loss(labels, EmbeddingDistances(
                tl.distances.distance_geometry(t, "L2")), 0.0, False).loss(), big)
        rescaled = big.astype(np.float64) / 1e25
        expected, grad_d = reference(labels, oracle.distance_matrix(rescaled, "L2"), 0.0, False)
        np.testing.assert_allclose(value / 1e25, expected, rtol=1e-5)
        expected_grad = oracle.embedding_gradient(rescaled, "L2", grad_d)
        np.testing.assert_allclose(grad, expected_grad, rtol=0,
                                   atol=2e-5 * np.abs(expected_grad).max())


# Blocks of rows exist only in PyTorch's in-place L2 and squared-L2 matrices
# (``distances._torch_frozen_distances``); elsewhere ``_TORCH_BLOCK_ELEMENTS`` is never read.
FROZEN_CASES = [(distance, blocks) for distance in DISTANCES for blocks in (
    [None, 64] if BACKEND == "torch" and distance in ("L2", "squared-L2") else [None])]


@pytest.mark.parametrize("case", ["normal", "offset", "duplicates", "huge"])
@pytest.mark.parametrize("distance, block_elements", FROZEN_CASES,
                         ids=[f"{d}-{'one-block' if b is None else 'blocks-of-rows'}"
                              for d, b in FROZEN_CASES])
def test_frozen_matrix_equals_pairwise_distances(distance, case, block_elements, monkeypatch):
    """``distance_geometry`` (on PyTorch in place, a block of rows at a time) gives the values of
    ``pairwise_distances`` bit for bit."""
    if block_elements is not None:
        monkeypatch.setattr(distances_module, "_TORCH_BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(37, 9))
    if case == "offset":
        x = 40.0 + 0.01 * x
    elif case == "duplicates":
        x[1] = x[0]
        x[20] = x[3]
    elif case == "huge":
        x = 1e17 * x
    x = keras.ops.convert_to_tensor(x.astype(np.float32))
    frozen = to_numpy(tl.distances.distance_geometry(x, distance).matrix)
    plain = to_numpy(tl.distances.pairwise_distances(x, distance))
    np.testing.assert_array_equal(frozen, plain)
    assert np.all(np.diagonal(frozen) == 0)
    if case == "duplicates" and distance in ("L2", "squared-L2"):
        assert frozen[0, 1] == 0 and frozen[3, 20] == 0


@pytest.mark.parametrize("name", ["semi-hard", "batch-all"])
def test_slot_path_is_taken_exactly_while_no_class_exceeds_max_positives_plus_one(
        name, monkeypatch):
    """The choice between the slot path and the sort path comes from the labels: a class of
    ``max_positives + 1`` samples still takes the slot path, one more sample the sort path."""
    sort_rows = "semi_hard_window_rows" if name == "semi-hard" else "batch_all_window_rows"

    def refuse(*args, **kwargs):
        raise AssertionError("the sort path ran")

    monkeypatch.setattr(functional, sort_rows, refuse)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    fits = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4])  # largest class: 3 = max_positives + 1
    loss = tl.losses.TripletSemiHardLoss if name == "semi-hard" else tl.losses.TripletBatchAllLoss
    to_numpy(loss(max_positives=2)(fits, x))
    too_many = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4])  # a class of 4
    with pytest.raises(AssertionError, match="the sort path ran"):
        to_numpy(loss(max_positives=2)(too_many, x))
