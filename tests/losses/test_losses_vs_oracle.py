"""Every mining loss against the NumPy brute-force oracle: values and gradients.

Parametrised over distance x loss (with and without soft margin) x label structure x dtype; the
backend is the process's (``scripts/test.sh`` runs this file on TensorFlow, JAX and PyTorch).
Inputs are random and non-degenerate (Gaussian embeddings, random margins that are not the
defaults), except the ``duplicates`` structure, whose dyadic inputs make float32 arithmetic
exact so that ties behave exactly as in the oracle, and the two structures of the distances'
precision promise (docs/losses.md, distances): ``large-norms`` (norms up to 100 with a
duplicated row, which must be at distance exactly 0) and ``collapsed`` (every row near one
point of norm 60, where the plain Gram form cancels).
"""

from __future__ import annotations

import functools
import zlib

import keras
import ml_dtypes
import numpy as np
import pytest

import oracle
import tripletlab as tl
from conftest import BACKEND, record_slice_rows, to_numpy, value_and_gradient

DISTANCES = ("L2", "squared-L2", "angular", "normalized-L2")
STRUCTURES = ("few-classes", "pk", "all-distinct", "one-class", "duplicates", "large-norms",
              "collapsed")
DTYPES = ("float32", "float16", "bfloat16")

# A margin per distance that leaves a mix of active and inactive triplets (and is not a default).
MARGINS = {"L2": 0.7, "squared-L2": 3.0, "angular": 0.15, "normalized-L2": 0.25}

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
# Relative tolerance of the loss value, and of the gradient relative to its largest entry.
TOLERANCES = {"float32": (2e-5, 2e-4), "float16": (4e-3, 2e-2), "bfloat16": (2e-2, 8e-2)}


def make_case(structure, seed):
    """Labels and float64 embeddings for one label structure (always 12 samples, so compiled
    backend kernels are reused across cases)."""
    rng = np.random.default_rng(seed)
    if structure == "few-classes":
        labels = rng.integers(0, 3, size=12)
        labels[:2] = 0  # at least one positive pair
    elif structure == "pk":
        labels = rng.permutation(np.repeat(np.arange(4), 3))
    elif structure == "all-distinct":
        labels = rng.permutation(12)
    elif structure == "one-class":
        labels = np.full(12, 5)
    elif structure == "large-norms":
        labels = rng.permutation(np.repeat(np.arange(4), 3))
        embeddings = rng.normal(size=(12, 5))
        embeddings *= rng.uniform(1.0, 100.0, size=(12, 1)) / np.linalg.norm(
            embeddings, axis=1, keepdims=True)
        same = np.flatnonzero(labels == labels[0])
        embeddings[same[1]] = embeddings[same[0]]  # a duplicate in one class
        return labels, embeddings
    elif structure == "collapsed":
        labels = rng.permutation(np.repeat(np.arange(4), 3))
        center = rng.normal(size=5)
        return labels, center * 60.0 / np.linalg.norm(center) + 0.05 * rng.normal(size=(12, 5))
    else:  # duplicates: P x K with exact duplicate points, inside and across classes
        labels = np.repeat(np.arange(3), 4)
        embeddings = rng.integers(-6, 7, size=(12, 6)) / 4.0
        embeddings[1] = embeddings[0]  # same class
        embeddings[5] = embeddings[2]  # different classes: d(a, p) ties d(a, n)
        embeddings[9] = embeddings[8]
        return labels, embeddings
    return labels, rng.normal(size=(len(labels), 5))


LOSSES = {
    "semi-hard": (
        lambda labels, x, margin, distance, soft: tl.losses.semi_hard_triplet_loss(
            labels, x, margin=margin, distance=distance, soft=soft),
        lambda labels, d, margin, soft: oracle.semi_hard(labels, d, margin, soft),
    ),
    "hard": (
        lambda labels, x, margin, distance, soft: tl.losses.hard_triplet_loss(
            labels, x, margin=margin, soft=soft, distance=distance),
        lambda labels, d, margin, soft: oracle.hard(labels, d, margin, soft),
    ),
    "batch-all": (
        lambda labels, x, margin, distance, soft: tl.losses.batch_all_triplet_loss(
            labels, x, margin=margin, distance=distance, soft=soft)[0],
        lambda labels, d, margin, soft: (lambda r: (r[0], r[2]))(
            oracle.batch_all(labels, d, margin, soft)),
    ),
}


@functools.cache
def reference(loss, structure, distance, dtype, soft):
    seed = zlib.crc32(f"{loss}/{structure}/{distance}".encode())  # stable across processes
    labels, embeddings = make_case(structure, seed=seed)
    # The oracle sees exactly the values the library receives (after rounding to dtype).
    rounded = embeddings.astype(NUMPY_DTYPES[dtype]).astype(np.float64)
    margin = MARGINS[distance]
    d = oracle.distance_matrix(rounded, distance)
    value, grad_d = LOSSES[loss][1](labels, d, margin, soft)
    grad_x = oracle.embedding_gradient(rounded, distance, grad_d)
    return labels, rounded, margin, value, grad_x


# float32 runs every label structure; the half-precision dtypes (computed in float32 inside the
# loss) run the two structures where rounding of the inputs matters most.
DTYPE_STRUCTURES = [("float32", s) for s in STRUCTURES] + [
    (d, s) for d in ("float16", "bfloat16") for s in ("few-classes", "pk")]

# The forced slot and sort paths: every distance x margin kind x label structure on float32, and
# one case per half-precision dtype. Half-precision embeddings are cast to float32 before the
# distances, so both paths mine float32 distances whatever the input dtype (the float16 floor of
# the normalised distances comes before them); what half precision changes, the rounding of the
# inputs and the distances' floor, runs on every loss x distance x margin kind in
# test_value_and_gradient_match_oracle, whose half-precision cases take both paths by default
# (``pk``: the slot path; ``few-classes``: a class of more than DEFAULT_SLOTS + 1 samples, the
# sort path, but for batch-all on angular distances).
PATH_CASES = [(d, soft, s, "float32") for d in DISTANCES for soft in (False, True)
              for s in STRUCTURES] + [("normalized-L2", False, "pk", "float16"),
                                      ("squared-L2", True, "few-classes", "bfloat16")]
PATH_CASE_IDS = [f"{d}-{'soft' if soft else 'hinge'}-{s}-{dtype}"
                 for d, soft, s, dtype in PATH_CASES]


@pytest.mark.parametrize("dtype, structure", DTYPE_STRUCTURES,
                         ids=[f"{s}-{d}" for d, s in DTYPE_STRUCTURES])
@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_value_and_gradient_match_oracle(loss, distance, soft, structure, dtype):
    labels, rounded, margin, expected, expected_grad = reference(
        loss, structure, distance, dtype, soft)
    function = LOSSES[loss][0]
    x = keras.ops.convert_to_tensor(rounded.astype(np.float32), dtype=dtype)

    value, grad = value_and_gradient(
        lambda t: function(labels, t, margin, distance, soft), x)

    assert_matches_reference(value, grad, expected, expected_grad, structure, distance, dtype)


def assert_matches_reference(value, grad, expected, expected_grad, structure, distance, dtype,
                             kinks=("duplicates", "large-norms")):
    """The loss's value and gradient against the oracle's, with the dtype's tolerances; the
    gradient is not compared on the ``kinks`` structures, whose ties sit on the hinge's kinks
    (subgradients legitimately differ there)."""
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    if structure == "duplicates" and distance not in ("L2", "squared-L2"):
        # Cosine-based distances of duplicate points are 0 only up to rounding, so exact ties
        # (which decide semi-hard choices) cannot be reproduced: finiteness is the claim here.
        return
    value_tolerance, grad_tolerance = TOLERANCES[dtype]
    np.testing.assert_allclose(value, expected, rtol=value_tolerance, atol=value_tolerance)
    if structure in kinks:
        return
    scale = max(np.abs(expected_grad).max(), 1e-3)
    np.testing.assert_allclose(grad, expected_grad, rtol=0, atol=grad_tolerance * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_dtype_is_input_dtype(dtype):
    labels, embeddings = make_case("pk", seed=0)
    x = keras.ops.convert_to_tensor(embeddings.astype(np.float32), dtype=dtype)
    for value in (
        tl.losses.semi_hard_triplet_loss(labels, x),
        tl.losses.hard_triplet_loss(labels, x),
        *tl.losses.batch_all_triplet_loss(labels, x),
    ):
        assert keras.backend.standardize_dtype(value.dtype) == dtype


@pytest.mark.parametrize("distance", DISTANCES)
def test_batch_all_fraction_positive_matches_oracle(distance):
    labels, embeddings = make_case("few-classes", seed=7)
    margin = MARGINS[distance]
    _, fraction = tl.losses.batch_all_triplet_loss(
        labels, embeddings.astype(np.float32), margin=margin, distance=distance)
    _, expected, _ = oracle.batch_all(labels, oracle.distance_matrix(embeddings, distance), margin)
    assert 0.0 < expected < 1.0  # the case must exercise both kinds of triplets
    np.testing.assert_allclose(to_numpy(fraction), expected, rtol=1e-5)


def test_margin_changes_the_value():
    """Guards against an oracle/loss pair that ignores ``margin`` (Optax's cautionary oracle)."""
    labels, embeddings = make_case("pk", seed=3)
    x = embeddings.astype(np.float32)
    for loss in LOSSES:
        small = to_numpy(LOSSES[loss][0](labels, x, 0.2, "L2", False))
        large = to_numpy(LOSSES[loss][0](labels, x, 2.0, "L2", False))
        assert large > small


@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_match_oracle_with_zero_gradient_at_zero(distance):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(7, 4))
    x[3] = x[1]  # a duplicate point: zero distance off the diagonal
    d = to_numpy(tl.distances.pairwise_distances(x.astype(np.float32), distance))
    np.testing.assert_allclose(d, oracle.distance_matrix(x, distance), atol=2e-3)
    assert np.all(np.diag(d) == 0.0)

    weights = rng.normal(size=(7, 7))
    weights_tensor = keras.ops.convert_to_tensor(weights.astype(np.float32))
    _, grad = value_and_gradient(
        lambda t: keras.ops.sum(tl.distances.pairwise_distances(t, distance) * weights_tensor),
        x.astype(np.float32))
    assert np.all(np.isfinite(grad))
    if distance in ("L2", "squared-L2"):
        exact = np.round(x * 4) / 4  # dyadic values: d(1, 3) is exactly 0 in float32
        _, grad_exact = value_and_gradient(
            lambda t: keras.ops.sum(tl.distances.pairwise_distances(t, distance) * weights_tensor),
            exact.astype(np.float32))
        expected = oracle.embedding_gradient(exact, distance, weights)
        np.testing.assert_allclose(grad_exact, expected, atol=1e-4)


def test_golden_value_from_tf_addons_docstring():
    value = tl.losses.semi_hard_triplet_loss(
        np.array([0, 0]), np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32"), margin=1.0)
    np.testing.assert_allclose(to_numpy(value), 2.4142137, rtol=1e-7)


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_row_chunked_mining_matches_oracle(loss, soft, monkeypatch):
    """Large batches are mined in row slices; force 2-row slices on a small batch."""
    from tripletlab.mining import chunks

    monkeypatch.setattr(chunks, "DEFAULT_MAX_ELEMENTS", 2 * 12)
    monkeypatch.setattr(chunks, "TORCH_MAX_ELEMENTS", 2 * 12)
    labels, rounded, margin, expected, expected_grad = reference(
        loss, "few-classes", "L2", "float32", soft)
    value, grad = value_and_gradient(
        lambda t: LOSSES[loss][0](labels, t, margin, "L2", soft), rounded.astype(np.float32))
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


# The sort-free path (``max_positives``) of semi-hard and batch-all against the same oracle.
SLOT_LOSSES = {
    "semi-hard": lambda labels, x, margin, distance, soft, k: tl.losses.semi_hard_triplet_loss(
        labels, x, margin=margin, distance=distance, soft=soft, max_positives=k),
    "batch-all": lambda labels, x, margin, distance, soft, k: tl.losses.batch_all_triplet_loss(
        labels, x, margin=margin, distance=distance, soft=soft, max_positives=k)[0],
}
SORT_ROWS = ("semi_hard_window_rows", "batch_all_window_rows", "soft_batch_all_rows")


def most_positives(labels):
    """The largest number of positives of any anchor (at least 1: ``max_positives >= 1``)."""
    _, counts = np.unique(labels, return_counts=True)
    return max(int(counts.max()) - 1, 1)


def forbid_sort_path(monkeypatch):
    """Makes the sort path fail, so that a test proves the slot path computed its values."""
    from tripletlab.losses import functional

    def refuse(*args, **kwargs):
        raise AssertionError("the sort path ran")

    for name in SORT_ROWS:
        monkeypatch.setattr(functional, name, refuse)


@pytest.mark.parametrize("distance, soft, structure, dtype", PATH_CASES, ids=PATH_CASE_IDS)
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_slot_path_value_and_gradient_match_oracle(loss, distance, soft, structure, dtype,
                                                   monkeypatch):
    labels, rounded, margin, expected, expected_grad = reference(
        loss, structure, distance, dtype, soft)
    forbid_sort_path(monkeypatch)
    k = most_positives(labels)
    x = keras.ops.convert_to_tensor(rounded.astype(np.float32), dtype=dtype)

    value, grad = value_and_gradient(
        lambda t: SLOT_LOSSES[loss](labels, t, margin, distance, soft, k), x)

    assert_matches_reference(value, grad, expected, expected_grad, structure, distance, dtype,
                             kinks=("duplicates",))


def force_sort_path(monkeypatch):
    """Makes every batch take the sort path, whatever its labels."""
    from tripletlab.losses import functional

    monkeypatch.setattr(functional, "_fits", lambda labels, max_positives: False)


@pytest.mark.parametrize("distance, soft, structure, dtype", PATH_CASES, ids=PATH_CASE_IDS)
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_sort_path_value_and_gradient_match_oracle(loss, distance, soft, structure, dtype,
                                                   monkeypatch):
    """The sort path on every label structure (by default P x K structures take the slot
    path), ties of the ``duplicates`` structure included."""
    labels, rounded, margin, expected, expected_grad = reference(
        loss, structure, distance, dtype, soft)
    force_sort_path(monkeypatch)
    x = keras.ops.convert_to_tensor(rounded.astype(np.float32), dtype=dtype)

    value, grad = value_and_gradient(
        lambda t: SLOT_LOSSES[loss](labels, t, margin, distance, soft, None), x)

    assert_matches_reference(value, grad, expected, expected_grad, structure, distance, dtype)


def test_half_precision_oracle_cases_take_both_paths_by_default():
    """What lets the forced paths above run one case per half-precision dtype: by default
    (``max_positives=None``) the half-precision cases of test_value_and_gradient_match_oracle
    take the slot path on ``pk`` and the sort path on ``few-classes`` (batch-all on angular
    distances excepted, whose largest class fits)."""
    from tripletlab.losses.functional import DEFAULT_SLOTS

    for loss in SLOT_LOSSES:
        for distance in DISTANCES:
            for structure in ("pk", "few-classes"):
                labels = reference(loss, structure, distance, "float16", False)[0]
                takes_slots = most_positives(labels) <= DEFAULT_SLOTS
                expected = structure == "pk" or (loss, distance) == ("batch-all", "angular")
                assert takes_slots == expected, (loss, distance, structure)


def compiled_value_and_gradient(function, x, labels=None, xla=True):
    """Value and gradient the way ``fit`` runs a loss: ``jax.jit``, ``tf.function(jit_compile=
    True)``, eager PyTorch. With ``labels``, ``function(labels, x)`` gets them as an input of the
    compiled function, as in ``fit`` (not a constant: conditions on them are decided at run
    time)."""
    return compiled_step(function, labels is not None, xla)(x, labels)


def compiled_step(function, labels_as_input=False, xla=True):
    """:func:`compiled_value_and_gradient`'s compiled function, to run more than once:
    ``step(x, labels)`` returns NumPy ``(value, gradient)``; with ``labels_as_input``,
    ``function(labels, x)`` gets ``labels`` as an input (compiled once for every label vector of
    the same shape and dtype)."""
    call = function
    if BACKEND == "jax":
        import jax

        compiled = jax.jit(jax.value_and_grad(call, argnums=1 if labels_as_input else 0))
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=xla)
        def compiled(*arguments):
            *given, tensor = arguments
            with tf.GradientTape() as tape:
                tape.watch(tensor)
                value = call(*given, tensor)
            return value, tape.gradient(value, tensor)
    else:
        compiled = None

    def step(x, labels=None):
        x = keras.ops.convert_to_tensor(x)
        inputs = (keras.ops.convert_to_tensor(labels),) if labels_as_input else ()
        if compiled is None:
            return value_and_gradient(lambda t: call(*inputs, t), x)
        value, gradient = compiled(*inputs, x)
        return to_numpy(value), to_numpy(gradient)

    return step


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_slot_path_with_too_many_positives_gives_the_exact_loss(loss, soft, compiled):
    """``max_positives`` below the batch's count: the sort path takes over (at run time when
    compiled), so the value and gradient stay the oracle's."""
    labels, rounded, margin, expected, expected_grad = reference(
        loss, "few-classes", "L2", "float32", soft)
    assert most_positives(labels) > 2
    run = compiled_value_and_gradient if compiled else value_and_gradient
    value, grad = run(lambda t: SLOT_LOSSES[loss](labels, t, margin, "L2", soft, 2),
                      rounded.astype(np.float32))
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_compiled_pk_batch_matches_oracle(loss, soft):
    """A P x K batch under jit: the slot path (semi-hard, batch-all) and batch-hard as ``fit``
    runs them."""
    rng = np.random.default_rng(21)
    labels = rng.permutation(np.repeat(np.arange(8), 4))
    x = rng.normal(size=(32, 5))
    margin = MARGINS["L2"]
    expected, expected_grad = LOSSES[loss][1](labels, oracle.distance_matrix(x, "L2"), margin,
                                              soft)
    expected_grad = oracle.embedding_gradient(x, "L2", expected_grad)
    if loss in SLOT_LOSSES:
        function = lambda t: SLOT_LOSSES[loss](labels, t, margin, "L2", soft, 3)  # noqa: E731
    else:
        function = lambda t: LOSSES[loss][0](labels, t, margin, "L2", soft)  # noqa: E731
    value, grad = compiled_value_and_gradient(function, x.astype(np.float32))
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_row_chunked_slot_path_matches_oracle(loss, soft, monkeypatch):
    """The slot path in 2-row slices."""
    from tripletlab.mining import chunks

    monkeypatch.setattr(chunks, "DEFAULT_MAX_ELEMENTS", 2 * 12)
    monkeypatch.setattr(chunks, "TORCH_MAX_ELEMENTS", 2 * 12)
    forbid_sort_path(monkeypatch)
    labels, rounded, margin, expected, expected_grad = reference(
        loss, "pk", "L2", "float32", soft)
    value, grad = value_and_gradient(
        lambda t: SLOT_LOSSES[loss](labels, t, margin, "L2", soft, most_positives(labels)),
        rounded.astype(np.float32))
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("slots", [False, True], ids=["sort-path", "slot-path"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_compiled_row_chunks_with_a_remainder_match_oracle(loss, slots, soft, monkeypatch):
    """Row slices under jit as ``fit`` runs them: 5-row slices of 12 rows (two slices in a
    ``jax.lax.map`` on JAX, the first slice and then one in a ``tf.map_fn`` in TensorFlow
    graphs, and 2 remainder rows), so rows mined in the wrong slice or order, or a slice's
    gradient dropped, would change the value or the gradient. (The labels are constants here, so
    only the path they choose is traced; see the next test for both.)"""
    if slots and loss not in SLOT_LOSSES:
        pytest.skip("batch-hard has no slot path")
    # (Under jit the slot path's fallback to the sort path is compiled too: no forbid_sort_path.)
    slice_rows = record_slice_rows(monkeypatch, max_elements=5 * 12)
    labels, rounded, margin, expected, expected_grad = reference(
        loss, "pk" if slots else "few-classes", "L2", "float32", soft)
    if slots:
        function = lambda t: SLOT_LOSSES[loss](  # noqa: E731
            labels, t, margin, "L2", soft, most_positives(labels))
    else:
        function = lambda t: LOSSES[loss][0](labels, t, margin, "L2", soft)  # noqa: E731
    value, grad = compiled_value_and_gradient(function, rounded.astype(np.float32))
    assert slice_rows and max(slice_rows) == 5 and 2 in slice_rows
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


_LABELS_AS_INPUTS_STEPS = {}


@pytest.mark.parametrize("xla", [True, False], ids=["xla", "graph"])
@pytest.mark.parametrize("structure, max_positives", [("pk", 2), ("few-classes", 2)],
                         ids=["slot-branch", "sort-branch"])
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_compiled_slot_path_with_labels_as_inputs_matches_oracle(loss, structure,
                                                                 max_positives, xla, monkeypatch):
    """Labels given to the compiled step, as ``fit`` gives them: the choice between the slot
    path and the sort path is compiled (a ``tf.cond`` / ``lax.cond`` of both), with row slices
    (5 of 12 rows). Both branches must compile (a TensorFlow loop inside a differentiated
    ``tf.cond`` does not under XLA, so there the rows are mined in one piece) and the branch the
    labels choose must give the oracle's value and gradient."""
    from tripletlab.mining import chunks

    if not xla and BACKEND != "tensorflow":
        pytest.skip("compiled without XLA: TensorFlow graphs only")
    monkeypatch.setattr(chunks, "DEFAULT_MAX_ELEMENTS", 5 * 12)
    labels, rounded, margin, expected, expected_grad = reference(
        loss, structure, "L2", "float32", False)
    assert (most_positives(labels) <= max_positives) == (structure == "pk")
    # Both branches run one compiled function: the labels are its input, so it is compiled once
    # (with these row slices) per loss and compiler, by whichever branch's case runs first.
    key = (loss, margin, max_positives, xla)
    if key not in _LABELS_AS_INPUTS_STEPS:
        _LABELS_AS_INPUTS_STEPS[key] = compiled_step(
            lambda y, t: SLOT_LOSSES[loss](y, t, margin, "L2", False, max_positives),
            labels_as_input=True, xla=xla)
    value, grad = _LABELS_AS_INPUTS_STEPS[key](rounded.astype(np.float32),
                                               labels.astype("int32"))
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


@pytest.mark.parametrize("xla", [True, False], ids=["xla", "graph"])
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "row-slices"])
@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("loss", sorted(SLOT_LOSSES))
def test_compiled_sort_path_over_several_windows_matches_oracle(loss, soft, chunked, xla,
                                                               monkeypatch):
    """The sort path under jit with labels as inputs, on a batch whose largest class (25 of 40)
    is wider than the compiled window (docs/losses.md, how the losses run): its positives are
    sorted in several windows, one after another in a loop of the compiled code, so a window
    skipped, repeated or cut wrong would change the value or the gradient."""
    from tripletlab.mining import chunks
    from tripletlab.mining.positive_windows import compiled_window_width

    if not xla and BACKEND != "tensorflow":
        pytest.skip("compiled without XLA: TensorFlow graphs only")
    if chunked:
        monkeypatch.setattr(chunks, "DEFAULT_MAX_ELEMENTS", 7 * 40)
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.concatenate([np.zeros(25), rng.integers(1, 4, 15)]))
    assert compiled_window_width(40) * 3 < 25
    x = rng.normal(size=(40, 5))
    margin = MARGINS["L2"]
    d = oracle.distance_matrix(x.astype(np.float32).astype(np.float64), "L2")
    expected, expected_grad = LOSSES[loss][1](labels, d, margin, soft)
    expected_grad = oracle.embedding_gradient(x.astype(np.float32).astype(np.float64), "L2",
                                              expected_grad)
    value, grad = compiled_value_and_gradient(
        lambda y, t: SLOT_LOSSES[loss](y, t, margin, "L2", soft, None),
        x.astype(np.float32), labels=labels.astype("int32"), xla=xla)
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=2e-4 * np.abs(expected_grad).max())


def _compat_tfa_semi_hard():
    from tripletlab.compat import tfa

    return tfa.TripletSemiHardLoss(0.7)


def _compat_omoindrot_batch_all():
    from tripletlab.compat import omoindrot

    return lambda labels, x: omoindrot.batch_all_triplet_loss(labels, x, 0.7)[0]


DEFAULT_LOSSES = {
    "TripletSemiHardLoss": ("semi-hard", lambda: tl.losses.TripletSemiHardLoss(margin=0.7)),
    "TripletBatchAllLoss": ("batch-all", lambda: tl.losses.TripletBatchAllLoss(margin=0.7)),
    "compat.tfa": ("semi-hard", _compat_tfa_semi_hard),
    "compat.omoindrot": ("batch-all", _compat_omoindrot_batch_all),
}


@pytest.mark.parametrize("name", sorted(DEFAULT_LOSSES))
def test_default_losses_take_the_slot_path_on_pk_batches(name, monkeypatch):
    """With no ``max_positives``, as the README and the migration guides write the losses, a
    P x K batch with K = 4 takes the slot path (docs/losses.md, how semi-hard and batch-all run)
    and matches the oracle; a batch with a class of 9 takes the sort path."""
    kind, make_loss = DEFAULT_LOSSES[name]
    forbid_sort_path(monkeypatch)
    rng = np.random.default_rng(8)
    labels = rng.permutation(np.repeat(np.arange(5), 4))
    x = rng.normal(size=(20, 5)).astype(np.float32)
    loss = make_loss()
    value = to_numpy(loss(labels, x))
    d = oracle.distance_matrix(x.astype(np.float64), "L2")
    expected = (oracle.semi_hard if kind == "semi-hard" else oracle.batch_all)(
        labels, d, 0.7, False)[0]
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    labels[labels == 1] = 0
    labels[np.flatnonzero(labels == 2)[0]] = 0  # a class of 9
    with pytest.raises(AssertionError, match="the sort path ran"):
        to_numpy(loss(labels, x))
