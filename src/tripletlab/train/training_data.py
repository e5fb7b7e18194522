"""The data stage of ``tripletlab train``: the data set, its one-line description, the training
batches (P×K, shuffled or offline triplets) and their augmentation."""

from __future__ import annotations

from typing import Any

from tripletlab.data.image_files import ImageFiles
from tripletlab.train.batch_shape import fit_batch_shape
from tripletlab.train.config import TrainConfig, data_source


def load_data(config: TrainConfig):
    """The :class:`tripletlab.data.Dataset` of ``config``."""
    from tripletlab.data import load_dataset

    return load_dataset(config.dataset, data_file=config.data_file,
                        image_folder=config.image_folder, seed=config.seed,
                        test_fraction=config.test_fraction, image_size=config.image_size)


def describe_data(data) -> str:
    """One line on the data: its size, where the images are, how it was split."""
    where = ("streamed from disk" if isinstance(data.x_train, ImageFiles) else "in memory")
    shape = "x".join(str(d) for d in data.input_shape)
    line = (f"Data {data.name}: {len(data.y_train):,} train and {len(data.y_test):,} test "
            f"images of {shape}, {data.num_classes} classes, {where}")
    return line + (f"; split: {data.split}" if data.split else "")


def build_batches(config: TrainConfig, data, model=None):
    """The training ``PyDataset``: P×K, shuffled, or offline triplets."""
    if config.mode == "offline":
        from tripletlab.data.triplets import TripletGenerator

        return TripletGenerator(data.x_train, data.y_train, config.batch_size,
                                steps_per_epoch=config.steps_per_epoch,
                                strategy=config.triplets, seed=config.seed,
                                embedding_model=model if config.triplets == "hard" else None,
                                margin=config.margin, distance=config.distance)
    from tripletlab.data import PKSampler, ShuffledBatches

    workers = input_workers(data)
    augment = build_augment(config, data)  # training batches only
    if config.sampler == "pk":
        # train() fits them first and says so; here for a configuration resolved without data
        config, _ = fit_batch_shape(config, data.y_train, source=data_source(config))
        return PKSampler(data.x_train, data.y_train, config.classes_per_batch,
                         config.samples_per_class, steps_per_epoch=config.steps_per_epoch,
                         seed=config.seed, augment=augment, **workers)
    # A last batch of one sample holds no positive pair (no loss): drop it.
    return ShuffledBatches(data.x_train, data.y_train, config.batch_size, seed=config.seed,
                           drop_remainder=len(data.y_train) % config.batch_size == 1,
                           augment=augment, **workers)


def input_workers(data) -> dict[str, Any]:
    """The ``PyDataset`` worker options of the training batches: images on disk
    (:class:`~tripletlab.data.ImageFiles`) are decoded by
    :data:`~tripletlab.inference.DEFAULT_WORKERS` threads (OpenCV releases the GIL while it
    decodes; threads share the path list, processes would copy it); arrays in memory need
    none."""
    from tripletlab.inference import DEFAULT_WORKERS

    if isinstance(data.x_train, ImageFiles):
        return {"workers": DEFAULT_WORKERS, "use_multiprocessing": False}
    return {}


def build_augment(config: TrainConfig, data):
    """The augmentation of the training batches (:mod:`tripletlab.data.augmentation`), or
    ``None`` when the ``[augmentation]`` keys turn nothing on.

    Raises:
      ConfigError: augmentation of inputs that are not images, or ``saturation`` / ``hue`` on
        images without 3 channels.
    """
    from tripletlab.data.augmentation import build_augmentation, check_images

    source = data_source(config)
    check_images(config.augmentation(), data.x_train.shape[1:], source)
    return build_augmentation(config.augmentation())
