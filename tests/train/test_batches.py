"""The batches ``tripletlab train`` builds can always hold a positive pair."""

from __future__ import annotations

from tripletlab.data import load_dataset
from tripletlab.train.config import resolve_config


def test_shuffled_batches_never_hold_one_sample():
    from tripletlab.train.training_data import build_batches

    data = load_dataset("digits", seed=0)
    assert len(data.y_train) % 4 == 1  # 1,437 training images
    batches = build_batches(resolve_config({"dataset": "digits", "sampler": "shuffled",
                                            "batch_size": 4}), data)
    sizes = [len(batches[i][1]) for i in range(len(batches))]
    assert min(sizes) >= 2 and sum(sizes) == len(data.y_train) - 1
