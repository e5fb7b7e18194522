"""P×K and shuffled batch samplers: batch structure, reproducibility, epochs, small classes."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from tripletlab.data import PKSampler, ShuffledBatches


def make_data(counts, seed=0):
    """``x[i] = i`` (so batches can be traced back to rows) and shuffled labels."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    labels = np.random.default_rng(seed).permutation(labels)
    x = np.arange(len(labels), dtype=np.float32).reshape(-1, 1)
    return x, labels


def all_batches(sampler):
    return [sampler[i] for i in range(len(sampler))]


def check_pk_batch(x_batch, y_batch, y, p, k, *, unique_rows=True):
    rows = x_batch[:, 0].astype(int)
    assert y_batch.dtype == np.int32 and y_batch.shape == (p * k,)
    np.testing.assert_array_equal(y_batch, y[rows])  # inputs and labels stay paired
    classes, counts = np.unique(y_batch, return_counts=True)
    assert len(classes) == p and counts.tolist() == [k] * p
    # Class blocks: K consecutive rows per class.
    assert all(len(set(block)) == 1 for block in y_batch.reshape(p, k).tolist())
    if unique_rows:
        assert len(set(rows.tolist())) == p * k


@pytest.mark.parametrize(("p", "k"), [(2, 2), (3, 4), (6, 2)], ids=["2x2", "3x4", "6x2"])
def test_pk_batches_have_p_classes_of_k(p, k):
    x, y = make_data([9, 7, 12, 8, 10, 6])
    sampler = PKSampler(x, y, p, k, seed=1)
    assert len(sampler) == sampler.num_batches == len(y) // (p * k)
    for epoch in range(3):
        for x_batch, y_batch in all_batches(sampler):
            check_pk_batch(x_batch, y_batch, y, p, k)
        sampler.on_epoch_end()
        assert sampler.epoch == epoch + 1


def test_pk_classes_balanced_and_samples_without_replacement():
    x, y = make_data([8] * 5)  # 40 samples, 5 classes
    sampler = PKSampler(x, y, 2, 4, steps_per_epoch=10, seed=0)
    seen = np.concatenate([sampler.batch_indices(i) for i in range(10)])
    # 10 batches x 2 classes = 20 class slots: each class exactly 4 times (shuffled cycles),
    # and 80 = 2 x 40 rows: every row exactly twice (each class's own cycle).
    assert np.bincount(y[seen]).tolist() == [16] * 5
    assert np.bincount(seen, minlength=40).tolist() == [2] * 40


def test_pk_reproducible_from_seed_and_different_across_epochs():
    x, y = make_data([10] * 6)
    first = PKSampler(x, y, 3, 2, seed=7)
    again = PKSampler(x, y, 3, 2, seed=7)
    other = PKSampler(x, y, 3, 2, seed=8)
    epoch0 = np.stack([first.batch_indices(i) for i in range(len(first))])
    np.testing.assert_array_equal(epoch0, [again.batch_indices(i) for i in range(len(again))])
    assert not np.array_equal(epoch0, [other.batch_indices(i) for i in range(len(other))])
    # Random access: the same batch however often and in whatever order it is asked for.
    np.testing.assert_array_equal(first[3][0], first[3][0])
    np.testing.assert_array_equal(first[-1][1], first[len(first) - 1][1])

    first.on_epoch_end()
    epoch1 = np.stack([first.batch_indices(i) for i in range(len(first))])
    assert not np.array_equal(epoch0, epoch1)
    again.on_epoch_end()
    np.testing.assert_array_equal(epoch1, [again.batch_indices(i) for i in range(len(again))])
    other.set_epoch(1)
    fresh = PKSampler(x, y, 3, 2, seed=7)
    fresh.set_epoch(1)
    np.testing.assert_array_equal(epoch1, [fresh.batch_indices(i) for i in range(len(fresh))])


def test_pk_small_classes_default_warns_once_and_samples_with_replacement():
    x, y = make_data([10, 2, 10, 1])
    with pytest.warns(UserWarning, match=r"2 class\(es\).*\[1, 3\]") as caught:
        sampler = PKSampler(x, y, 4, 3, steps_per_epoch=5, seed=0)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            for x_batch, y_batch in all_batches(sampler):
                check_pk_batch(x_batch, y_batch, y, 4, 3, unique_rows=False)
            sampler.on_epoch_end()


def test_pk_small_classes_refused_without_replacement():
    x, y = make_data([10, 2, 10, 1])
    with pytest.raises(ValueError, match=r"classes \[1, 3\] with \[2, 1\] samples"):
        PKSampler(x, y, 2, 3, replace=False)


def test_pk_replace_true_is_silent_and_repeats_rows():
    x, y = make_data([3, 3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = PKSampler(x, y, 3, 3, steps_per_epoch=20, seed=0, replace=True)
    repeats = 0
    for x_batch, y_batch in all_batches(sampler):
        check_pk_batch(x_batch, y_batch, y, 3, 3, unique_rows=False)
        repeats += len(x_batch) - len(np.unique(x_batch))
    assert repeats > 0


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((1, 2), {}, ValueError, "classes_per_batch"),
        ((2, 1), {}, ValueError, "samples_per_class"),
        ((2.5, 2), {}, TypeError, "classes_per_batch"),
        ((5, 2), {}, ValueError, "at least classes_per_batch=5"),
        ((2, 2), {"steps_per_epoch": 0}, ValueError, "steps_per_epoch"),
        ((2, 2), {"seed": -3}, ValueError, "seed"),
        ((2, 2), {"replace": "yes"}, TypeError, "replace"),
    ],
    ids=["p-1", "k-1", "p-float", "too-few-classes", "steps-0", "seed", "replace"],
)
def test_pk_argument_errors(args, kwargs, error, match):
    x, y = make_data([4, 4, 4])
    with pytest.raises(error, match=match):
        PKSampler(x, y, *args, **kwargs)


@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        (np.zeros((5, 2)), np.zeros(4, int), ValueError, "N = len"),
        (np.zeros((4, 2)), np.array([0.5, 1, 0, 1]), TypeError, "integer class labels"),
        (np.zeros((0, 2)), np.zeros(0, int), ValueError, "N >= 1"),
    ],
    ids=["lengths", "float-labels", "empty"],
)
def test_array_errors(x, y, error, match):
    with pytest.raises(error, match=match):
        PKSampler(x, y, 2, 2)
    with pytest.raises(error, match=match):
        ShuffledBatches(x, y, 2)


def test_labels_as_column_or_whole_floats_and_index_errors():
    x, y = make_data([4, 4])
    sampler = PKSampler(x, y.reshape(-1, 1).astype(np.float32), 2, 2)
    check_pk_batch(*sampler[0], y, 2, 2)
    with pytest.raises(IndexError):
        sampler[len(sampler)]
    with pytest.raises(TypeError):
        sampler[0.5]


def test_kwargs_reach_pydataset():
    x, y = make_data([4, 4])
    sampler = PKSampler(x, y, 2, 2, workers=2, max_queue_size=3)
    assert sampler.workers == 2 and sampler.max_queue_size == 3
    batches = ShuffledBatches(x, y, 3, use_multiprocessing=False, workers=2)
    assert batches.workers == 2 and not batches.use_multiprocessing


# ----------------------------------------------------------------------------- ShuffledBatches

@pytest.mark.parametrize("drop_remainder", [False, True], ids=["keep", "drop"])
def test_shuffled_batches_cover_the_data_once_per_epoch(drop_remainder):
    x, y = make_data([6, 5, 6])  # 17 samples
    batches = ShuffledBatches(x, y, 4, seed=2, drop_remainder=drop_remainder)
    assert len(batches) == (4 if drop_remainder else 5)
    rows = []
    for x_batch, y_batch in all_batches(batches):
        assert y_batch.dtype == np.int32
        np.testing.assert_array_equal(y_batch, y[x_batch[:, 0].astype(int)])
        rows.extend(x_batch[:, 0].astype(int).tolist())
    sizes = [len(b[1]) for b in all_batches(batches)]
    assert sizes == ([4] * 4 if drop_remainder else [4, 4, 4, 4, 1])
    assert len(set(rows)) == len(rows) == (16 if drop_remainder else 17)


def test_shuffled_batches_reproducible_and_different_across_epochs():
    x, y = make_data([10, 10])
    first = ShuffledBatches(x, y, 5, seed=3)
    again = ShuffledBatches(x, y, 5, seed=3)
    epoch0 = [first.batch_indices(i) for i in range(len(first))]
    np.testing.assert_array_equal(epoch0, [again.batch_indices(i) for i in range(len(again))])
    assert not np.array_equal(epoch0, np.arange(20).reshape(4, 5))
    first.on_epoch_end()
    epoch1 = [first.batch_indices(i) for i in range(len(first))]
    assert not np.array_equal(epoch0, epoch1)
    again.set_epoch(1)
    np.testing.assert_array_equal(epoch1, [again.batch_indices(i) for i in range(len(again))])


def test_shuffled_batches_errors():
    x, y = make_data([2, 2])
    with pytest.raises(ValueError, match="batch_size"):
        ShuffledBatches(x, y, 0)
    with pytest.raises(ValueError, match="drop_remainder"):
        ShuffledBatches(x, y, 5, drop_remainder=True)
    with pytest.raises(TypeError, match="drop_remainder"):
        ShuffledBatches(x, y, 2, drop_remainder=1)


# ------------------------------------------------------------------------------------- fit

def test_fit_with_pk_sampler_and_triplet_loss():
    """Two epochs of ``model.fit`` on a P×K sampler: Keras calls ``on_epoch_end``."""
    import tripletlab as tl

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 6)
    x = (rng.normal(size=(24, 5)) + y[:, None]).astype(np.float32)
    sampler = PKSampler(x, y, 2, 3, seed=0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3),
                              keras.layers.UnitNormalization()])
    model.compile(optimizer="adam", loss=tl.losses.TripletSemiHardLoss(margin=0.5))
    epochs_seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epochs_seen.append(sampler.epoch))
    history = model.fit(sampler, epochs=3, verbose=0, callbacks=[record])
    assert len(history.history["loss"]) == 3
    assert np.all(np.isfinite(history.history["loss"]))
    # A fresh draw every epoch. (Keras 3 also calls ``on_epoch_end`` when ``fit`` starts, so
    # the numbers need not start at 0.)
    assert len(set(epochs_seen)) == 3 and epochs_seen == sorted(epochs_seen)
