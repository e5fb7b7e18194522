"""Watch an embedding form during training: PCA frames after every epoch and an animated GIF.

The Keras Siamese-network notebook refits PCA at every epoch, so the axes rotate, flip and
rescale from frame to frame and the pictures cannot be compared. :class:`LivePCA` fits the PCA
once, on the untrained model's embeddings of a fixed sample, and keeps both the projection and
the axis limits for all later frames: what moves in the animation is the data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tripletlab import _checks
from tripletlab.atomic import Recorder, atomic_path
from tripletlab.errors import MissingExtraError
from tripletlab.visualization.plot import as_labels, save_figure, scatter_figure
from tripletlab.visualization.project import as_embedding_matrix


class LivePCA(keras.callbacks.Callback):
    """Writes a PCA scatter of a fixed sample after every epoch, then an animated GIF.

    - ``on_train_begin``: embeds ``x``, fits a 2-component PCA (scikit-learn) on it **once**,
      fixes the axis limits and writes ``frame_0000.png`` (the untrained model).
    - ``on_epoch_end``: embeds the same ``x``, projects it with the same fitted PCA and writes
      ``frame_{epoch + 1:04d}.png`` (``frame_0003.png`` after the third epoch).
    - ``on_train_end``: assembles all frames into ``animation.gif`` (Pillow); the last frame
      stays on screen three times as long.

    Axis limits fit the data and are the same in every frame of the animation: each frame is
    drawn when its epoch ends with the smallest box that holds every frame so far (the range
    of the points widened by ``margin`` on each side), and at the end of training every frame
    is redrawn with the box that holds all of them, before the GIF is assembled. Nothing falls
    outside, and a tight cloud is not shrunk to a dot by a box sized for the whole unit
    sphere.

    A later ``fit`` with the same callback keeps the first PCA and adds frames (numbered by
    epoch, so use ``initial_epoch`` to continue the numbering).

    Args:
      x: the fixed sample, a model input of ``N`` rows (a few hundred to a few thousand).
      y: ``[N]`` integer labels, for the colours.
      folder: where the frames and the GIF go (created if needed).
      embedding_model: the model that maps ``x`` to embeddings; default the model being
        trained (pass the inner embedding network when training a Siamese wrapper).
      class_names: legend names, a sequence indexed by label or a mapping label → name.
      frame_duration_ms: how long each GIF frame shows.
      margin: relative margin around the points' range, on each side.
      batch_size: batch size for embedding ``x``.
      record: called with each file's path before it is written (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).

    Attributes:
      pca: the fitted ``sklearn.decomposition.PCA`` (after ``on_train_begin``).
      limits: ``((x_min, x_max), (y_min, y_max))``: after training, the box of every frame.
      frame_limits: the limits each frame file was last drawn with.
      frames: the frame files written so far, in order.
      points: the projected ``[N, 2]`` points of each frame.
      gif_path: ``folder / "animation.gif"``.

    Example:
      >>> live = LivePCA(x_test[:1000], y_test[:1000], "runs/mnist/pca")  # doctest: +SKIP
      >>> model.fit(dataset, epochs=10, callbacks=[live])  # doctest: +SKIP
    """

    def __init__(self, x: Any, y: Any, folder: str | os.PathLike, *,
                 embedding_model: keras.Model | None = None,
                 class_names: Sequence[str] | Mapping[int, str] | None = None,
                 frame_duration_ms: int = 600, margin: float = 0.1,
                 batch_size: int = 256, record: Recorder | None = None) -> None:
        super().__init__()
        _checks.check_number("frame_duration_ms", frame_duration_ms, minimum=1, integer=True)
        _checks.check_number("margin", margin, minimum=0.0)
        _checks.check_number("batch_size", batch_size, minimum=1, integer=True)
        try:
            import matplotlib  # noqa: F401
            import PIL  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError as error:
            raise MissingExtraError('LivePCA needs scikit-learn, matplotlib and Pillow: '
                                    'pip install "tripletlab[viz]"') from error
        self.x = x
        num_points = _num_rows(x)
        self.y = as_labels(y, "y", num_points)
        if num_points < 3:
            raise ValueError(f"Expected `x` with at least 3 rows. Received: {num_points} rows.")
        self.classes = np.unique(self.y)
        self.folder = Path(folder)
        self.embedding_model = embedding_model
        self.class_names = class_names
        self.frame_duration_ms = int(frame_duration_ms)
        self.margin = float(margin)
        self.batch_size = int(batch_size)
        self.record = record
        self.gif_path = self.folder / "animation.gif"
        self.pca: Any = None
        self.limits: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.frames: list[Path] = []
        self.points: list[np.ndarray] = []
        self.frame_limits: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self._captions: list[tuple[int, str]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.pca is not None:
            return
        from sklearn.decomposition import PCA

        embeddings = self._embed()
        self.pca = PCA(n_components=2, random_state=0).fit(embeddings)
        self._write_frame(0, self.pca.transform(embeddings), "before training")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.pca is None:  # used outside fit(): nothing was fitted yet
            self.on_train_begin()
        points = self.pca.transform(self._embed())
        loss = (logs or {}).get("loss")
        caption = f"epoch {epoch + 1}" + (f", loss {float(loss):.4f}" if loss is not None else "")
        self._write_frame(epoch + 1, points, caption)

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self.frames:
            return
        from PIL import Image

        self.limits = self._fit_limits(self.points)
        for position, (index, caption) in enumerate(self._captions):
            if self.frame_limits[position] != self.limits:
                self._draw(index, self.points[position], caption)
                self.frame_limits[position] = self.limits

        images = [Image.open(frame).convert("RGB") for frame in self.frames]
        palette = [image.quantize(colors=255, method=Image.Quantize.MEDIANCUT,
                                  dither=Image.Dither.NONE) for image in images]
        durations = [self.frame_duration_ms] * len(palette)
        durations[-1] *= 3
        with atomic_path(self.gif_path, record=self.record) as temporary:
            palette[0].save(temporary, format="GIF", save_all=True, append_images=palette[1:],
                            duration=durations, loop=0, disposal=1)

    def _embed(self) -> np.ndarray:
        model = self.embedding_model if self.embedding_model is not None else self.model
        if model is None:
            raise ValueError("LivePCA has no model: pass `embedding_model` or use it in fit().")
        from tripletlab.inference import embed

        embeddings = embed(model, self.x, self.batch_size)
        return as_embedding_matrix(embeddings, "embeddings").astype(np.float64)

    def _fit_limits(self, frames: Sequence[np.ndarray]
                    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """The range of every point of ``frames``, widened by ``margin`` on each side."""
        points = np.concatenate([np.asarray(frame, np.float64) for frame in frames])
        points = points[np.all(np.isfinite(points), axis=1)]
        if len(points) == 0:
            return ((-1.0, 1.0), (-1.0, 1.0))
        low, high = points.min(axis=0), points.max(axis=0)
        pad = np.maximum((high - low) * self.margin, 1e-6)
        return tuple((float(lo), float(hi)) for lo, hi in zip(low - pad, high + pad, strict=True))

    def _write_frame(self, index: int, points: np.ndarray, caption: str) -> None:
        points = np.asarray(points, dtype=np.float32)
        known = [self.points[i] for i, (number, _) in enumerate(self._captions)
                 if number != index]
        self.limits = self._fit_limits([*known, points])
        path = self._draw(index, points, caption)
        if path in self.frames:  # the same epoch again (a repeated fit)
            position = self.frames.index(path)
            self.points[position], self._captions[position] = points, (index, caption)
            self.frame_limits[position] = self.limits
        else:
            self.frames.append(path)
            self.points.append(points)
            self._captions.append((index, caption))
            self.frame_limits.append(self.limits)

    def _draw(self, index: int, points: np.ndarray, caption: str) -> Path:
        variance = float(np.sum(self.pca.explained_variance_ratio_))
        figure = scatter_figure(
            points, self.y, class_names=self.class_names, limits=self.limits,
            classes=self.classes, axis_labels=("PC 1", "PC 2"),
            title=f"PCA fitted before training ({variance:.0%} of variance), {caption}")
        return save_figure(figure, self.folder / f"frame_{index:04d}.png", record=self.record)


def _num_rows(x: Any) -> int:
    if isinstance(x, Mapping):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)):
        x = x[0]
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError("Expected `x` to be an array (or a list/dict of arrays) with one row "
                         f"per sample. Received: x of type {type(x).__name__}.")
    return int(shape[0])
