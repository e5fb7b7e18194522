"""Training batches of in-memory arrays gathered by ``tf.data`` on the TensorFlow backend.

Keras 3 feeds a ``PyDataset`` to TensorFlow through ``tf.data.Dataset.from_generator``: Python
code runs inside the input pipeline while the compiled step runs. On these 2-core machines that
made the TF Addons tutorial's model train 2–4× slower than from arrays (300 batches of 32, 16
steps per call: 11–22 s against 4.7–5.4 s per epoch, with 33–37 s of system time per run
against 2–4 s), and it stayed so with a Python generator called once per epoch only: any
Python in the pipeline costs this.

:class:`GraphBatches` serves the same batches with no Python in the pipeline. At the start of
each ``fit`` epoch its callback writes the epoch's index plan
(:meth:`~tripletlab.train.resume.FitEpochBatches.epoch_plan`) into two TensorFlow variables;
the ``tf.data.Dataset`` reads them when Keras starts the epoch's iteration (after the
callbacks' ``on_epoch_begin``), slices them into batches and gathers the rows of the images
and labels, held as TensorFlow tensors. The batches are those of the ``PyDataset`` bit for bit
(same rows, same order, same dtype), so a run and its resume draw the same data on either
path. :func:`serves_in_graph` says when it applies: the TensorFlow backend, a P×K or shuffled
sampler over arrays in memory, no augmentation (augmenting, and decoding image files, stay in
Python workers).

The images and labels are copied once into TensorFlow variables (as
``tf.data.Dataset.from_tensor_slices`` copies them in the tutorial): 188 MB for MNIST's 60,000
training images. Variables rather than constants: a ``tf.data`` function holds a constant by
value, and each epoch's new iterator copied it again (3 s per epoch for MNIST).

Example:
  >>> served = GraphBatches(FitEpochBatches(sampler), throughput=throughput)  # doctest: +SKIP
  >>> model.fit(served.dataset, callbacks=[served.callback(), throughput])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from tripletlab.data.image_files import ImageFiles
from tripletlab.data.samplers import PKSampler, ShuffledBatches
from tripletlab.train.resume import FitEpochBatches


def serves_in_graph(batches: Any) -> bool:
    """Whether :class:`GraphBatches` can serve ``batches``: the TensorFlow backend, a
    :class:`~tripletlab.train.resume.FitEpochBatches` view of a :class:`PKSampler` or
    :class:`ShuffledBatches` over arrays in memory, without augmentation."""
    if keras.backend.backend() != "tensorflow" or not isinstance(batches, FitEpochBatches):
        return False
    sampler = batches.batches
    return (isinstance(sampler, (PKSampler, ShuffledBatches))
            and not isinstance(sampler.inputs, ImageFiles) and sampler.augment is None)


class GraphBatches:
    """The batches of a :class:`~tripletlab.train.resume.FitEpochBatches` view as a
    ``tf.data.Dataset`` (:attr:`dataset`) and the callback that selects the ``fit`` epoch
    (:meth:`callback`, in place of the view's own).

    Args:
      batches: a view that :func:`serves_in_graph` accepts.
      initial_epoch: the ``fit`` epoch the dataset serves until the callback's first
        ``on_epoch_begin`` (the epoch ``fit`` starts at).
      throughput: a :class:`~tripletlab.train.throughput.Throughput` told each epoch's number
        of images (it times the step; the input has no Python time to measure).

    Raises:
      ValueError: ``batches`` is not served in the graph (see :func:`serves_in_graph`).
    """

    def __init__(self, batches: FitEpochBatches, *, initial_epoch: int = 0,
                 throughput: Any = None):
        import tensorflow as tf

        if not serves_in_graph(batches):
            raise ValueError(
                f"Expected in-memory P×K or shuffled batches without augmentation on the "
                f"TensorFlow backend. Received: {batches!r} on the "
                f"{keras.backend.backend()} backend.")
        self.batches = batches
        self.throughput = throughput
        sampler = batches.batches
        # variables, not constants: each epoch's iterator would copy a captured constant
        images = tf.Variable(sampler.inputs, trainable=False)
        labels = tf.Variable(sampler.labels, trainable=False)
        empty = np.zeros([0], dtype=np.int64)
        self._rows = tf.Variable(empty, shape=tf.TensorShape([None]), trainable=False)
        self._lengths = tf.Variable(empty, shape=tf.TensorShape([None]), trainable=False)
        self.select_epoch(initial_epoch)

        def epoch_batches(_):
            plan = tf.RaggedTensor.from_row_lengths(self._rows.read_value(),
                                                    self._lengths.read_value())
            return tf.data.Dataset.from_tensor_slices(plan)

        dataset = (tf.data.Dataset.from_tensors(0).flat_map(epoch_batches)
                   .map(lambda rows: (tf.gather(images, rows), tf.gather(labels, rows)))
                   .prefetch(2))
        self.dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))

    def select_epoch(self, fit_epoch: int) -> None:
        """Makes the next iteration of :attr:`dataset` serve ``fit`` epoch ``fit_epoch``."""
        self.batches.fit_epoch = int(fit_epoch)
        rows = self.batches.epoch_plan(fit_epoch)
        self._rows.assign(np.concatenate(rows).astype(np.int64))
        self._lengths.assign(np.array([len(r) for r in rows], dtype=np.int64))
        self._images = sum(len(r) for r in rows)

    def callback(self) -> keras.callbacks.Callback:
        """The callback that selects each ``fit`` epoch at its start."""
        served = self

        class _SelectGraphEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                served.select_epoch(epoch)
                if served.throughput is not None:
                    served.throughput.record_in_graph(served._images)

        return _SelectGraphEpoch()
