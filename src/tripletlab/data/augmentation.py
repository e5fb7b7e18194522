"""Training-time augmentation of image batches with Keras 3 preprocessing layers.

The ``[augmentation]`` keys of the training configuration (:data:`AUGMENTATION_KEYS`) each turn
on one Keras layer; :class:`Augmentation` applies them, in this order, to float32 images in
``[0, 1]`` (``[N, H, W, C]``) and returns float32 images of the same shape in ``[0, 1]``:

==============  =====================================================================
key             Keras layer (``value_range=(0, 1)`` where the layer has one)
==============  =====================================================================
``flip``        ``RandomFlip(flip)``: ``"horizontal"``, ``"vertical"`` or
                ``"horizontal_and_vertical"`` (``"none"``: off)
``rotation``    ``RandomRotation(rotation, fill_mode="reflect")``: up to ± ``rotation``
                of a full turn (Keras' unit: 0.05 is ± 18°)
``zoom``        ``RandomZoom((-zoom, 0))``: zoom in by up to ``zoom``, i.e. a centred crop
                of ``1 - zoom`` to 100 % of each side resized back to the image size
``translation`` ``RandomTranslation(translation, translation, fill_mode="reflect")``:
                shift by up to ± ``translation`` of the height and width (with ``zoom``:
                a random crop-and-resize)
``brightness``  ``RandomBrightness(brightness)``: add up to ± ``brightness``, clipped
``contrast``    ``RandomContrast((contrast, contrast))``: scale the deviation from the
                image mean by a factor in ``[1 - contrast, 1 + contrast]``, clipped
``saturation``  ``RandomSaturation((0.5 - s / 2, 0.5 + s / 2))``: multiply the HSV
                saturation by a factor in ``[(1 - s) / (1 + s), (1 + s) / (1 - s)]``
                (RGB images only)
``hue``         ``RandomHue((0, 2 * hue))``: rotate the hue by up to ± ``hue`` of a turn
                (RGB images only)
==============  =====================================================================

Every value 0 (and ``flip = "none"``), the defaults, turns the transform off; with all off
:func:`build_augmentation` returns ``None`` and the training batches are the images as they are.

The layers run on one fixed Keras backend, TensorFlow, whatever the training backend
(:data:`AUGMENTATION_BACKEND`): the augmentation works on NumPy batches in the CPU input
workers, not in the model, so it is free to, as Keras' own layers do inside ``tf.data``. The
same ``(seed, epoch, batch index)`` thus gives the same augmented batch, bit for bit, on
TensorFlow, JAX and PyTorch, and PyTorch does not pay for Keras' per-image affine transform of
its torch backend (a batch of 32 at 224 × 224 with every transform: 26 s on torch's ops, about
1 s on TensorFlow's; ``benchmarks/bench_augmentation.py``). On TensorFlow the layers run as
``tf.function`` graphs, one per concurrent call (no Python between ops, independent ops in
parallel): a batch of 64 at 224 × 224 with flip, brightness and contrast took 147–158 ms
against 309–337 ms op by op, bit for bit the same; with every transform 814–873 ms against
940–1,103 ms, within 6e-7 (TensorFlow's graph optimizer reorders some arithmetic). Without
TensorFlow installed the layers fall back to the training backend's ops, with a
``UserWarning``: the same transforms, but each backend draws other (equally distributed) random
numbers. On one backend, a batch is a function of ``(seed, epoch, batch index)`` alone: every
call draws from a ``keras.random.SeedGenerator`` set to those three numbers (a new one per
call, or on TensorFlow the graph's own, reset inside the graph at the start of each call), so a
batch drawn again (a resumed run, another worker thread, another order) is the same, and calls
share no mutable state across threads (the layers are bound to their backend once, when built).

Nothing here imports Keras until an :class:`Augmentation` is built, so the configuration can
read :data:`AUGMENTATION_KEYS` before the backend is chosen.

Example:
  >>> import numpy as np
  >>> from tripletlab.data.augmentation import build_augmentation
  >>> augment = build_augmentation({"flip": "horizontal", "rotation": 0.05})
  >>> images = np.random.default_rng(0).random((4, 32, 32, 3), dtype="float32")
  >>> out = augment(images, seed=(0, 0, 0))  # seed: (seed, epoch, batch index)
  >>> out.shape, out.dtype
  ((4, 32, 32, 3), dtype('float32'))
"""

from __future__ import annotations

import importlib.util
import queue
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tripletlab._checks import check_choice, check_number
from tripletlab.errors import ConfigError

FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")
# key -> (default: off, largest value accepted); ``flip`` is a choice of FLIP_MODES.
AUGMENTATION_KEYS: dict[str, tuple[Any, float | None]] = {
    "flip": ("none", None),
    "rotation": (0.0, 0.5),
    "zoom": (0.0, 0.9),
    "translation": (0.0, 0.5),
    "brightness": (0.0, 1.0),
    "contrast": (0.0, 1.0),
    "saturation": (0.0, 0.99),
    "hue": (0.0, 0.5),
}
# The Keras backend whose ops the layers run on when it is installed, whatever the training
# backend: the one that is fastest on CPU batches (see the module docstring).
AUGMENTATION_BACKEND = "tensorflow"
# The transforms that need three (RGB) channels.
COLOR_KEYS = ("saturation", "hue")


def check_augmentation(values: Mapping[str, Any]) -> dict[str, Any]:
    """The augmentation keys of ``values``, checked, with defaults for the missing ones.

    Args:
      values: a mapping holding some of :data:`AUGMENTATION_KEYS` (other keys are ignored).

    Returns:
      ``{key: value}`` for every key of :data:`AUGMENTATION_KEYS` (numbers as ``float``).

    Raises:
      ConfigError: a value outside its range, or ``flip`` not one of :data:`FLIP_MODES`.
      ConfigTypeError: a value of the wrong type.
    """
    checked = {}
    for key, (default, maximum) in AUGMENTATION_KEYS.items():
        value = values.get(key, default)
        if value is None:
            value = default
        if key == "flip":
            check_choice("flip", value, FLIP_MODES)
        else:
            check_number(key, value, minimum=0.0, maximum=maximum)
            value = float(value)
        checked[key] = value
    return checked


def is_enabled(values: Mapping[str, Any]) -> bool:
    """Whether any augmentation key of ``values`` turns a transform on."""
    return bool(describe(values))


def describe(values: Mapping[str, Any]) -> list[str]:
    """One short line per transform turned on, in the order they are applied (for logs and the
    report), e.g. ``["flip horizontal", "rotation ±0.05 turn"]``."""
    lines = []
    flip = values.get("flip") or "none"
    if flip != "none":
        lines.append(f"flip {flip}")
    units = {"rotation": " of a turn", "zoom": " (zoom in)", "translation": " of the side",
             "brightness": "", "contrast": "", "saturation": "", "hue": " of a turn"}
    for key, unit in units.items():
        value = values.get(key) or 0.0
        if value:
            lines.append(f"{key} {'up to ' if key == 'zoom' else '±'}{value:g}{unit}")
    return lines


def check_images(values: Mapping[str, Any], shape: Sequence[int], source: str) -> None:
    """Refuses augmentation of data it cannot transform.

    Args:
      values: the augmentation keys (a configuration's).
      shape: the shape of one input, e.g. ``(H, W, C)``.
      source: the data's name, for the message.

    Raises:
      ConfigError: augmentation is on and the inputs are not images ``[H, W, C]``, or
        ``saturation`` / ``hue`` are on and the images do not have 3 channels.
    """
    if not is_enabled(values):
        return
    shape = tuple(int(size) for size in shape)
    if len(shape) != 3:
        raise ConfigError(f"Expected images [H, W, C] to augment. Received: inputs of shape "
                          f"{shape} from {source!r}; set the [augmentation] keys to 0.")
    for key in COLOR_KEYS:
        if values.get(key) and shape[-1] != 3:
            raise ConfigError(f"Expected RGB images (3 channels) with {key} > 0. Received: "
                              f"{key}={values[key]:g} with {shape[-1]}-channel images from "
                              f"{source!r}.")


def build_augmentation(values: Mapping[str, Any]) -> Augmentation | None:
    """The :class:`Augmentation` of the augmentation keys in ``values``, or ``None`` if every
    transform is off.

    Args:
      values: a mapping with some of :data:`AUGMENTATION_KEYS` (a :class:`TrainConfig`'s
        ``augmentation()``, or a dict).

    Raises:
      ConfigError: a bad value (see :func:`check_augmentation`).
    """
    values = check_augmentation(values)
    if not is_enabled(values):
        return None
    return Augmentation(**values)


def batch_seed(seed: Any) -> int:
    """A 31-bit seed from an integer or a sequence of integers >= 0, e.g. ``(seed, epoch,
    batch index)`` (NumPy's ``SeedSequence``: neighbouring tuples give unrelated seeds; 31
    bits because PyTorch's Keras seeds are int32)."""
    entropy = [int(part) for part in np.atleast_1d(np.asarray(seed, dtype=np.int64))]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0]
    return int(state) & 0x7FFFFFFF


class Augmentation:
    """Random transforms of image batches, drawn from a seed given with each call.

    Each image of a batch gets its own random transform. Build it with
    :func:`build_augmentation` from the configuration keys; the arguments are those keys
    (see the module's table).

    Args:
      flip: ``"none"``, ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``.
      rotation: the largest rotation, a fraction of a full turn in ``[0, 0.5]``.
      zoom: the largest zoom-in, in ``[0, 0.9]`` (a crop of ``1 - zoom`` of each side).
      translation: the largest shift, a fraction of the side in ``[0, 0.5]``.
      brightness: the largest brightness change, in ``[0, 1]``.
      contrast: the largest contrast change, in ``[0, 1]``.
      saturation: the saturation change, in ``[0, 0.99]`` (RGB only).
      hue: the largest hue rotation, a fraction of a turn in ``[0, 0.5]`` (RGB only).

    Attributes:
      backend: the Keras backend whose ops the layers run on (:func:`augmentation_backend`).
      layers: the Keras preprocessing layers, in the order they are applied.

    Call it as ``augment(images, seed=(seed, epoch, index))``: ``images`` float32 ``[N, H, W,
    C]`` in ``[0, 1]``; returns a NumPy float32 array of the same shape in ``[0, 1]``.
    """

    def __init__(self, flip: str = "none", rotation: float = 0.0, zoom: float = 0.0,
                 translation: float = 0.0, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0):
        import keras

        self.values = check_augmentation(dict(
            flip=flip, rotation=rotation, zoom=zoom, translation=translation,
            brightness=brightness, contrast=contrast, saturation=saturation, hue=hue))
        v = self.values
        layers = keras.layers
        unit = (0.0, 1.0)
        self.layers = []
        if v["flip"] != "none":
            self.layers.append(layers.RandomFlip(v["flip"]))
        if v["rotation"]:
            self.layers.append(layers.RandomRotation(v["rotation"], fill_mode="reflect"))
        if v["zoom"]:
            self.layers.append(layers.RandomZoom((-v["zoom"], 0.0), fill_mode="reflect"))
        if v["translation"]:
            self.layers.append(layers.RandomTranslation(v["translation"], v["translation"],
                                                        fill_mode="reflect"))
        if v["brightness"]:
            self.layers.append(layers.RandomBrightness(v["brightness"], value_range=unit))
        if v["contrast"]:
            # (c, c): a factor in [1 - c, 1 + c]; a single float would give [1, 1 + c] only
            c = v["contrast"]
            self.layers.append(layers.RandomContrast((c, c), value_range=unit))
        if v["saturation"]:
            s = v["saturation"]
            self.layers.append(layers.RandomSaturation((0.5 - s / 2, 0.5 + s / 2),
                                                       value_range=unit))
        if v["hue"]:
            self.layers.append(layers.RandomHue((0.0, 2 * v["hue"]), value_range=unit))
        self.backend = augmentation_backend()
        bind_backend(self.layers, self.backend)
        # (image shape, dtype) -> idle (generator, graph) pairs
        self._idle_graphs: dict[tuple, queue.SimpleQueue] = {}

    def describe(self) -> list[str]:
        """One line per transform, in the order they are applied."""
        return describe(self.values)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_idle_graphs"]  # TensorFlow graphs: rebuilt where unpickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # unpickled Keras layers start on the training backend again
        bind_backend(self.layers, self.backend)
        # (image shape, dtype) -> idle (generator, graph) pairs
        self._idle_graphs: dict[tuple, queue.SimpleQueue] = {}

    def __call__(self, images: Any, seed: Any) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"Expected images [N, H, W, C] to augment. Received: images with "
                             f"shape {images.shape}.")
        if len(images) == 0 or not self.layers:
            return images.copy()
        ops = self.layers[0].backend
        if self.backend == "tensorflow":
            x = self._graph_transform(ops.convert_to_tensor(images), batch_seed(seed))
            return np.asarray(ops.convert_to_numpy(x), dtype=np.float32)  # clipped in the graph
        # A generator of this call alone: the draws depend on ``seed`` only, whichever thread
        # or order asks, and no state is shared between calls.
        x = self._transform(ops.convert_to_tensor(images), self.seed_generator(seed))
        out = np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
        return np.clip(out, 0.0, 1.0)

    def _transform(self, x: Any, generator: Any) -> Any:
        for layer in self.layers:
            transformation = layer.get_random_transformation(x, training=True, seed=generator)
            x = layer.transform_images(x, transformation, training=True)
        return x

    def _graph_transform(self, x: Any, seed: int) -> Any:
        """:meth:`_transform` as a TensorFlow graph (``tf.function``), clipped to ``[0, 1]``.

        Each graph owns a seed generator, reset to ``seed`` inside the graph at the start of
        every call, so a call draws what a fresh ``SeedGenerator(seed)`` would. A call borrows
        an idle graph (or builds one when all are busy) and gives it back after: as many graphs
        as calls ever ran at once (the worker threads), kept across epochs even when Keras
        starts new threads, and no graph runs two calls at once. Graph execution runs the same
        kernels as eager ops without Python dispatching each op, and TensorFlow's executor
        runs independent ops in parallel.
        """
        import tensorflow as tf

        image_shape = tuple(x.shape[1:])
        idle = self._idle_graphs.setdefault((image_shape, x.dtype.name), queue.SimpleQueue())
        try:
            generator, transform = idle.get_nowait()
        except queue.Empty:
            generator, transform = self._new_graph(image_shape, x.dtype)
        try:
            seed_state = tf.constant([seed, 0], dtype=generator.state.dtype)
            return transform(x, seed_state)
        finally:
            idle.put((generator, transform))

    def _new_graph(self, image_shape: Any, dtype: Any) -> tuple[Any, Any]:
        """A seed generator and a graph of the layers that uses it, traced once for any batch
        size of images of ``image_shape`` (so the shorter last batch of an epoch is no new
        trace, and TensorFlow does not warn about frequent retracing)."""
        import keras
        import tensorflow as tf

        generator = keras.random.SeedGenerator(0, backend=self.layers[0].backend)

        def transform(images, seed_state):
            generator.state.assign(seed_state)
            return tf.clip_by_value(self._transform(images, generator), 0.0, 1.0)

        signature = [tf.TensorSpec([None, *image_shape], dtype),
                     tf.TensorSpec([2], generator.state.dtype)]
        return generator, tf.function(transform, input_signature=signature)

    def seed_generator(self, seed: Any) -> Any:
        """A new ``keras.random.SeedGenerator`` of :func:`batch_seed` ``(seed)`` on the
        layers' backend (:attr:`backend`), for their ``get_random_transformation``."""
        import keras

        if self.backend == keras.backend.backend():
            return keras.random.SeedGenerator(batch_seed(seed))
        return keras.random.SeedGenerator(batch_seed(seed), backend=self.layers[0].backend)


def augmentation_backend() -> str:
    """The Keras backend the augmentation layers run on: :data:`AUGMENTATION_BACKEND` when it is
    installed, else the training backend (``keras.backend.backend()``), with a ``UserWarning``
    that says so."""
    import keras

    if importlib.util.find_spec(AUGMENTATION_BACKEND) is not None:
        return AUGMENTATION_BACKEND
    warnings.warn(f"Augmentation runs on the {keras.backend.backend()} backend's ops: "
                  f"{AUGMENTATION_BACKEND} is not installed, so the same seed gives other "
                  f"augmented batches than on another backend (and PyTorch's geometric "
                  f"transforms are slow). Install it for identical, faster augmentation: "
                  f'pip install "tripletlab[{AUGMENTATION_BACKEND}]"', UserWarning, stacklevel=3)
    return keras.backend.backend()


def bind_backend(layers: Sequence[Any], backend: str) -> None:
    """Binds Keras preprocessing layers to ``backend``'s ops, once, whatever the training backend.

    Keras has no public switch for this. Its preprocessing layers (``DataLayer``) hold their
    ops in a public ``backend`` attribute, a ``DynamicBackend`` that Keras itself sets to
    ``"tensorflow"`` when a layer runs inside ``tf.data``; this sets it for good (the layers are
    only used through ``get_random_transformation`` / ``transform_images``, never called, so
    nothing resets it). ``tests/data/test_augmentation.py`` fails loudly if Keras changes this.

    Raises:
      RuntimeError: a layer without a switchable ``backend`` (a Keras that changed this).
    """
    for layer in layers:
        switch = getattr(getattr(layer, "backend", None), "set_backend", None)
        if switch is None:
            raise RuntimeError(f"Expected a Keras preprocessing layer with a switchable "
                               f"`backend` attribute. Received: layer={layer!r}; this Keras "
                               f"version changed how its layers pick their backend.")
        switch(backend)
        if layer.backend.name != backend:
            raise RuntimeError(f"Expected layer {layer.name!r} to run on {backend!r}. "
                               f"Received: backend={layer.backend.name!r}.")
