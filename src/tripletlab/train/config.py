"""The training configuration: one frozen dataclass, strict loaders, and CLI-flag overrides.

A configuration is built in layers, each overriding the one before (as timm does, but strict):

1. the defaults of :class:`TrainConfig`;
2. an omoindrot-style ``params.json`` found in the model folder
   (:func:`tripletlab.compat.omoindrot_params.load_params_json`);
3. a ``.toml`` or ``.json`` file (``--config``, :func:`load_config_file`);
4. command-line flags (every field is a flag: ``--learning-rate 0.01``).

Every layer is checked: an unknown key is an error naming the closest valid key, a wrong type
or a value out of range is an error in Keras' form (``Expected ... Received: key=...``).
Nothing here imports Keras, so the backend can still be chosen after the configuration is read.

Example:
  >>> from tripletlab.train.config import TrainConfig, resolve_config
  >>> config = resolve_config({"dataset": "digits", "epochs": 2, "loss": "batch-all"})
  >>> config.margin, config.sampler
  (0.5, 'pk')
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

from tripletlab._checks import check_bool, check_choice, check_number, closest_key_hint
from tripletlab.backends import BACKENDS
from tripletlab.data.augmentation import AUGMENTATION_KEYS, FLIP_MODES, check_augmentation
from tripletlab.data.datasets import DATASETS
from tripletlab.errors import (  # ConfigError: importable from here too, where it was first
    ConfigError,
    ConfigTypeError,
    UserFileNotFoundError,
    UserIsADirectoryError,
)
from tripletlab.models.backbone_names import BACKBONE_MODELS
from tripletlab.train import loss_registry as registry
from tripletlab.train.batch_shape import DEFAULT_CLASSES_PER_BATCH, DEFAULT_SAMPLES_PER_CLASS
from tripletlab.train.distribution import check_distribute_options

MODELS = ("tfa-cnn", "siamese-mlp", "small-cnn", "omoindrot-cnn", *BACKBONE_MODELS)
# The options of model 'omoindrot-cnn' that are config keys of their own (params.json's names),
# with their defaults (the values of omoindrot's experiments/*/params.json).
OMOINDROT_MODEL_KEYS = {"num_channels": 32, "use_batch_norm": False, "bn_momentum": 0.9}
# The values of ``loss`` (the online losses; mode="offline" has its own) and of ``distance``
# (every distance some loss accepts): read from the loss registry, which says which apply to which.
LOSSES = registry.loss_names("online")
DISTANCES = registry.accepted_distances()
SAMPLERS = ("pk", "shuffled")
OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("constant", "cosine", "exponential")
MODES = registry.MODES
TRIPLET_STRATEGIES = ("random", "hard")
PROJECTIONS = ("pca", "tsne", "umap")
DISTRIBUTIONS = ("data-parallel",)


def _field(default: Any, group: str, help: str, **kwargs: Any) -> Any:  # noqa: A002
    """A configuration field and its one description: its group and help (``--help``), and what
    :func:`check_field` checks: ``choices``, numeric bounds (``minimum``, ``strict``: the
    minimum excluded, ``maximum``), ``path``. Its type annotation gives the flag's type
    (:func:`field_kind`)."""
    metadata = {"group": group, "help": help, **kwargs}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every option of ``tripletlab train``, with its default.

    Build one with :func:`resolve_config` (which checks everything); the constructor alone
    checks nothing. ``None`` means "derived": ``dataset`` from ``data_file`` / ``image_folder``,
    ``margin`` from the loss, ``semi_margin`` / ``decay_rate`` only for the options that use them,
    ``num_channels`` / ``use_batch_norm`` / ``bn_momentum`` only for ``model="omoindrot-cnn"``.
    """

    def model_arguments(self) -> dict[str, Any]:
        """The builder arguments of ``model``: ``model_options`` plus, for ``"omoindrot-cnn"``,
        ``num_channels``, ``use_batch_norm`` and ``bn_momentum``, and for a backbone
        ``weights``."""
        arguments = dict(self.model_options)
        if self.model == "omoindrot-cnn":
            arguments.update({key: getattr(self, key) for key in OMOINDROT_MODEL_KEYS})
        if self.model in BACKBONE_MODELS:
            arguments["weights"] = None if self.weights == "none" else self.weights
        return arguments

    def keeps_batch_norm_frozen(self) -> bool:
        """Whether the backbone's batch normalisation stays in inference mode: a backbone
        with pretrained weights (``imagenet`` or a file) and ``freeze_batch_norm``."""
        return (self.model in BACKBONE_MODELS and self.weights != "none"
                and self.freeze_batch_norm)

    # Dataset parameters
    dataset: str | None = _field(None, "data", "data set name (default: 'npz' with --data-file, "
                                 "'image-folder' with --image-folder, else 'mnist-sample')",
                                 choices=DATASETS)
    data_file: str | None = _field(None, "data", ".npz file in Keras' mnist.npz layout",
                                   path=True)
    image_folder: str | None = _field(None, "data", "folder with one sub-folder per class",
                                      path=True)
    image_size: int | None = _field(None, "data", "image-folder only: resize images to this "
                                    "square", minimum=1)
    test_fraction: float = _field(0.2, "data", "test share of the data sets split here",
                                  minimum=0.0, strict=True, maximum=1.0)
    # Model parameters
    model: str = _field("small-cnn", "model", "embedding network", choices=MODELS)
    embedding_dim: int = _field(64, "model", "embedding size", minimum=1)
    model_options: dict = _field({}, "model",
                                 "extra builder arguments as JSON, e.g. '{\"widths\": [16, 32]}'")
    num_channels: int | None = _field(None, "model", "omoindrot-cnn only: filters of the first "
                                      "block, twice as many in the second (default 32)", minimum=1)
    use_batch_norm: bool | None = _field(None, "model", "omoindrot-cnn only: batch normalisation "
                                         "after each convolution (default false)")
    bn_momentum: float | None = _field(None, "model", "omoindrot-cnn only: batch-norm "
                                       "moving-average momentum, as in TF 1 and Keras "
                                       "(default 0.9)", minimum=0.0, maximum=1.0)
    weights: str | None = _field(None, "model", "initial weights: 'imagenet' (backbones only; "
                                 "needs network or ~/.keras/models), 'none', or the PATH of a "
                                 "local weights file (default: imagenet for backbones, else none)")
    freeze_backbone_epochs: int = _field(0, "model", "backbones: train only the embedding head "
                                         "for the first N epochs", minimum=0)
    backbone_learning_rate_multiplier: float = _field(
        1.0, "model", "backbones: the backbone's learning rate relative to the head's (e.g. 0.1)",
        minimum=0)
    freeze_batch_norm: bool = _field(True, "model", "backbones with pretrained weights "
                                     "(imagenet or a file): keep the backbone's batch "
                                     "normalisation in inference mode with its pretrained "
                                     "statistics while the backbone trains (false: train it)")
    # Loss parameters
    loss: str = _field("semi-hard", "loss", "triplet loss", choices=LOSSES)
    distance: str = _field("L2", "loss", "distance the loss mines on", choices=DISTANCES)
    margin: float | None = _field(None, "loss", "margin (default: the loss's own)",
                                  minimum=0.0)
    soft: bool = _field(False, "loss", "soft margin ("
                        + ", ".join(n for n in LOSSES if registry.LOSSES[n].soft) + ")")
    semi_margin: float | None = _field(None, "loss", " or ".join(
        n for n in LOSSES if registry.LOSSES[n].semi_margin) + " only")
    mode: str = _field("online", "loss", "online mining in P×K batches, or offline triplets",
                       choices=MODES)
    triplets: str | None = _field(None, "loss", "offline only: 'random' or 'hard' triplets",
                                  choices=TRIPLET_STRATEGIES)
    memory_size: int = _field(0, "loss", "cross-batch memory: the anchors also mine the last N "
                              "training embeddings (0: off; " + ", ".join(
                                  n for n in LOSSES if registry.LOSSES[n].memory) + ")",
                              minimum=0)
    memory_warmup: int = _field(0, "loss", "cross-batch memory: training steps before the "
                                "memory is used and filled", minimum=0)
    # Sampler parameters
    sampler: str = _field("pk", "sampler", "'pk' (P classes x K samples) or 'shuffled'",
                          choices=SAMPLERS)
    classes_per_batch: int | None = _field(
        None, "sampler", f"P of the P×K sampler (default: {DEFAULT_CLASSES_PER_BATCH}, or every "
        "class when the training data has fewer)", minimum=2)
    samples_per_class: int | None = _field(
        None, "sampler", f"K of the P×K sampler (default: {DEFAULT_SAMPLES_PER_CLASS}, or the "
        "median training class size when smaller, at least 2)", minimum=2)
    batch_size: int = _field(32, "sampler", "batch size of the shuffled sampler and offline mode",
                             minimum=1)
    # Optimizer parameters
    optimizer: str = _field("adam", "optimizer", "optimizer", choices=OPTIMIZERS)
    learning_rate: float = _field(1e-3, "optimizer", "initial learning rate", minimum=0.0,
                                  strict=True)
    weight_decay: float | None = _field(None, "optimizer", "adamw only (default: Keras')",
                                        minimum=0.0)
    schedule: str = _field("constant", "optimizer", "learning-rate schedule", choices=SCHEDULES)
    decay_rate: float | None = _field(None, "optimizer", "exponential only: decay per epoch "
                                      "(default 0.9)", minimum=0.0, strict=True, maximum=1.0)
    # Training parameters
    epochs: int = _field(10, "training", "epochs", minimum=1)
    steps_per_epoch: int | None = _field(None, "training", "batches per epoch (default: one pass)",
                                         minimum=1)
    seed: int = _field(0, "training", "seed of the split, sampler and weights", minimum=0)
    backend: str | None = _field(None, "training", "Keras backend (default: Keras' own setting)",
                                 choices=BACKENDS)
    jit_compile: bool | str = _field("auto", "training", "XLA / torch.compile: true, false or auto")
    steps_per_execution: int | None = _field(
        None, "training", "batches per compiled call (default: 16 on TensorFlow and JAX, "
        "1 on PyTorch, which allows only 1)", minimum=1)
    distribute: str | None = _field(
        None, "training", "'data-parallel': every global batch split over all devices of this "
        "host, the loss mining the whole batch (JAX only; default: one device)",
        choices=DISTRIBUTIONS)
    retain_freed_memory: bool | str = _field(
        "auto", "training", "keep memory freed by glibc's malloc in the process, so each step's "
        "large buffers reuse their pages (faster; the process keeps its peak memory; see "
        "tripletlab.allocator): true, false or auto (on with JAX and TensorFlow, off with PyTorch)")
    # Evaluation and output parameters
    eval_every: int = _field(1, "output", "retrieval metrics every N epochs (0: off)", minimum=0)
    eval_samples: int = _field(1000, "output", "held-out test samples scored each epoch",
                               minimum=2)
    live_pca: bool = _field(False, "output", "write a PCA frame per epoch and a GIF")
    tensorboard: bool = _field(True, "output", "write TensorBoard logs")
    plots: bool = _field(True, "output", "draw plots and report.html at the end")
    export_samples: int = _field(2000, "output", "test points saved under embeddings/",
                                 minimum=0)
    projections: list = _field(["pca", "tsne"], "output", "scatter plots to draw, comma-separated",
                               choices=PROJECTIONS)
    # Augmentation of the training batches (tripletlab.data.augmentation; 0 / "none": off)
    flip: str = _field("none", "augmentation", "random flip", choices=FLIP_MODES)
    rotation: float = _field(0.0, "augmentation", "random rotation up to ± this fraction of a "
                             "full turn (0.05: ± 18°)")
    zoom: float = _field(0.0, "augmentation", "random zoom-in up to this fraction: a centred "
                         "crop of (1 - zoom) to all of each side, resized back")
    translation: float = _field(0.0, "augmentation", "random shift up to ± this fraction of the "
                                "height and width (with zoom: a random crop-and-resize)")
    brightness: float = _field(0.0, "augmentation", "random brightness change up to ± this "
                               "(images in [0, 1])")
    contrast: float = _field(0.0, "augmentation", "random contrast factor in [1 - x, 1 + x]")
    saturation: float = _field(0.0, "augmentation", "random saturation factor in "
                               "[(1 - x)/(1 + x), (1 + x)/(1 - x)] (RGB only)")
    hue: float = _field(0.0, "augmentation", "random hue rotation up to ± this fraction of a "
                        "turn (RGB only)")

    def augmentation(self) -> dict[str, Any]:
        """The ``[augmentation]`` keys (:data:`tripletlab.data.augmentation.AUGMENTATION_KEYS`)
        and their values."""
        return {key: getattr(self, key) for key in AUGMENTATION_KEYS}

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict (what ``config.json`` holds)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
GROUPS = {
    "data": "Dataset parameters",
    "model": "Model parameters",
    "loss": "Loss parameters",
    "sampler": "Sampler parameters",
    "optimizer": "Optimizer parameters",
    "training": "Training parameters",
    "output": "Evaluation and output parameters",
    "augmentation": "Augmentation of the training batches (0 or none: off)",
}


def default_value(name: str) -> Any:
    """The default of field ``name``."""
    field = FIELDS[name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a ``.toml`` or ``.json`` configuration file into a dict (keys are checked).

    TOML tables (``[loss]``, ``[optimizer]``...) may group the keys; they are flattened, so
    ``[loss] margin = 0.2`` is the key ``margin``. A table named ``model_options`` is the
    value of that key.

    Raises:
      ConfigError: the file is malformed, or holds an unknown key (the message suggests the
        closest valid one) or a key twice.
      FileNotFoundError: ``path`` does not exist.
      IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise UserIsADirectoryError(f"Expected `config` to be a .toml or .json file. Received: "
                                    f"config={str(path)!r}, which is a folder.")
    if not path.is_file():
        raise UserFileNotFoundError(f"Expected `config` to be a file. Received: "
                                    f"config={str(path)!r}, which does not exist.")
    suffix = path.suffix.lower()
    check_choice("config suffix", suffix, (".toml", ".json"))
    try:
        if suffix == ".toml":
            with open(path, "rb") as stream:
                data = tomllib.load(stream)
        else:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"Could not parse config file {str(path)!r}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Expected config file {str(path)!r} to hold a table of keys. "
                          f"Received: {type(data).__name__}.")
    return _flatten(data, str(path))


def _flatten(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and key != "model_options":
            for inner_key, inner_value in _flatten(value, where).items():
                if inner_key in flat:
                    raise ConfigError(f"Key {inner_key!r} appears twice in {where!r}.")
                flat[inner_key] = inner_value
        else:
            if key in flat:
                raise ConfigError(f"Key {key!r} appears twice in {where!r}.")
            flat[key] = value
    check_keys(flat, where)
    return flat


def check_keys(values: Mapping[str, Any], where: str) -> None:
    """Raises :class:`ConfigError` for a key that is not a field of :class:`TrainConfig`."""
    for key in values:
        if key not in FIELDS:
            hint = closest_key_hint(str(key), FIELDS)
            raise ConfigError(f"Unknown config key {key!r} in {where}.{hint} Valid keys: "
                              f"{', '.join(FIELDS)}.")


# --------------------------------------------------------------------------------------------
# Resolving and checking
# --------------------------------------------------------------------------------------------


def resolve_config(*layers: Mapping[str, Any] | None,
                   warn_unused: bool = True) -> TrainConfig:
    """Merges dicts of options (later ones win) over the defaults and checks the result.

    Args:
      *layers: dicts of option name → value (``None`` entries are skipped).
      warn_unused: warn (``UserWarning``) about a given option that the other options make
        unused (see :func:`unused_options`).

    Returns:
      The checked :class:`TrainConfig`, with derived values filled in (``dataset``,
      ``margin``, ``decay_rate``...).

    Raises:
      ConfigError: an unknown key, a wrong type, a bad value or options that clash.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        check_keys(layer, "the configuration")
        merged.update(layer)
    values = {name: merged.get(name, default_value(name)) for name in FIELDS}
    config = TrainConfig(**_checked(values))  # every check raises ConfigError
    if warn_unused:
        for message in unused_options(config, merged):
            warnings.warn(message, UserWarning, stacklevel=2)
    return config


def unused_options(config: TrainConfig, given: Mapping[str, Any]) -> list[str]:
    """Messages for options in ``given`` that ``config`` does not use.

    ``batch_size`` with the P×K sampler (a batch holds ``classes_per_batch ×
    samples_per_class`` samples) and ``margin`` with ``soft=True`` (the soft-margin loss has
    no margin). A value equal to the default is not reported (a saved ``config.json`` holds
    every key).

    Args:
      config: the resolved configuration.
      given: the options as given (before defaults were filled in).

    Returns:
      One line per unused option (empty when every given option is used).
    """
    messages = []
    if (config.mode == "online" and config.sampler == "pk" and "batch_size" in given
            and config.batch_size != default_value("batch_size")):
        messages.append(
            f"batch_size={config.batch_size} is ignored with sampler='pk': each batch holds "
            f"classes_per_batch × samples_per_class samples{_batch_shape(config)} (use "
            "sampler='shuffled' for plain batches of batch_size).")
    if (config.soft and given.get("margin") is not None
            and config.margin != registry.loss_spec(config.loss, config.mode).default_margin):
        messages.append(f"margin={config.margin:g} is ignored with soft=True: the soft-margin "
                        "loss log(1 + exp(d(a,p) - d(a,n))) has no margin.")
    return messages


def _batch_shape(config: TrainConfig) -> str:
    """`` = P × K = B``; an unset P or K (fitted to the data later) shows its default."""
    p = config.classes_per_batch or DEFAULT_CLASSES_PER_BATCH
    k = config.samples_per_class or DEFAULT_SAMPLES_PER_CLASS
    unset = config.classes_per_batch is None or config.samples_per_class is None
    return f" = {p} × {k} = {p * k}" + (" (unset values: their defaults, smaller on small "
                                        "data sets)" if unset else "")


def data_source(config: TrainConfig) -> str:
    """The data's name in messages: the ``.npz`` file, the image folder or the data set."""
    return config.data_file or config.image_folder or config.dataset


def check_data(config: TrainConfig, y_train: Any, y_test: Any) -> None:
    """Refuses data that cannot train or be scored with ``config``; warns about weak setups.

    Training needs two classes (a negative for every triplet) and a class with two training
    samples (a positive pair); the retrieval metrics need two test classes (with one, every
    neighbour is relevant and every score is 1). With ``sampler='shuffled'`` a batch of
    ``batch_size`` samples from ``C`` classes is sure to hold a positive pair only when
    ``batch_size > C``; otherwise a ``UserWarning`` says that some batches may mine no triplet.

    Args:
      config: the resolved configuration.
      y_train: the training labels.
      y_test: the test labels.

    Raises:
      ConfigError: fewer than 2 classes in either split, no class with 2 training samples, or
        ``live_pca`` with fewer than 3 test images.
    """
    import numpy as np

    source = data_source(config)
    for split, labels in (("training", y_train), ("test", y_test)):
        classes = np.unique(np.asarray(labels))
        if len(classes) < 2:
            raise ConfigError(
                f"Expected {split} data with at least 2 classes: triplets need a negative and "
                f"retrieval metrics mean nothing with one class. Received: {len(classes)} "
                f"class{'' if len(classes) == 1 else 'es'} in the {split} split of {source!r}.")
    if config.live_pca and len(np.asarray(y_test)) < 3:
        raise ConfigError(f"Expected at least 3 test images with live_pca=True (a PCA of their "
                          f"embeddings each epoch). Received: {len(np.asarray(y_test))} in the "
                          f"test split of {source!r}.")
    classes, counts = np.unique(np.asarray(y_train), return_counts=True)
    if counts.max() < 2:
        raise ConfigError(f"Expected a class with at least 2 training samples (a positive "
                          f"pair). Received: one sample per class in {source!r}.")
    if config.mode == "online" and config.sampler == "shuffled" and config.batch_size <= len(
            classes):
        warnings.warn(
            f"batch_size={config.batch_size} with {len(classes)} classes: a shuffled batch may "
            "hold no positive pair (and then mines no triplet: semi-hard and batch-all add "
            "nothing, batch-hard only pushes negatives apart); batch_size > the number of classes "
            "guarantees one, or use sampler='pk'.", UserWarning, stacklevel=2)


def _braced(names) -> str:
    """``{'a', 'b'}``: names in a set's spelling, in their given order (messages stay stable)."""
    return "{" + ", ".join(repr(name) for name in names) + "}"


def _checked(v: dict[str, Any]) -> dict[str, Any]:
    """Checks every field (:func:`check_field`) and the rules between fields, section by
    section, filling the derived values; returns ``v``."""
    for check_section in (_check_data_keys, _check_model_keys, _check_loss_keys,
                          _check_sampler_keys, _check_optimizer_keys, _check_training_keys,
                          _check_output_keys, _check_augmentation_keys):
        check_section(v)
    return v


def _only_with(v: dict[str, Any], name: str, key: str, allowed: str) -> None:
    """Refuses ``name`` when ``v[key]`` is not ``allowed``."""
    raise ConfigError(f"Expected `{name}` only with {key}={allowed!r}. Received: "
                      f"{name}={v[name]!r} with {key}={v[key]!r}.")


def _check_data_keys(v: dict[str, Any]) -> None:
    check_fields(v, "data_file", "image_folder")
    if v["dataset"] is None:
        v["dataset"] = ("npz" if v["data_file"] is not None
                        else "image-folder" if v["image_folder"] is not None else "mnist-sample")
    check_field(v, "dataset")
    for key, dataset in (("data_file", "npz"), ("image_folder", "image-folder")):
        if v["dataset"] == dataset and v[key] is None:
            raise ConfigError(f"Expected `{key}` with dataset={dataset!r}. Received: "
                              f"{key}=None.")
        if v["dataset"] != dataset and v[key] is not None:
            _only_with(v, key, "dataset", dataset)
    check_field(v, "image_size")
    if v["image_size"] is not None and v["dataset"] != "image-folder":
        _only_with(v, "image_size", "dataset", "image-folder")
    check_field(v, "test_fraction")
    if v["test_fraction"] >= 1:
        raise ConfigError(f"Expected `test_fraction` < 1. Received: "
                          f"test_fraction={v['test_fraction']!r}.")


def _check_model_keys(v: dict[str, Any]) -> None:
    check_fields(v, "model", "embedding_dim")
    if not isinstance(v["model_options"], Mapping):
        raise ConfigTypeError(f"Expected `model_options` to be a table of builder arguments. "
                              f"Received: model_options={v['model_options']!r}.")
    v["model_options"] = {str(k): (list(x) if isinstance(x, tuple) else x)
                          for k, x in v["model_options"].items()}
    if v["model"] == "omoindrot-cnn":
        for key, default in OMOINDROT_MODEL_KEYS.items():
            if key in v["model_options"]:
                raise ConfigError(f"Expected `{key}` as a config key of its own, not in "
                                  f"model_options. Received: model_options="
                                  f"{v['model_options']!r}.")
            if v[key] is None:
                v[key] = default
        check_fields(v, *OMOINDROT_MODEL_KEYS)
    else:
        for key in OMOINDROT_MODEL_KEYS:
            if v[key] is not None:
                raise ConfigError(f"Expected `{key}` only with model='omoindrot-cnn'. Received: "
                                  f"{key}={v[key]!r} with model={v['model']!r}. Remove it "
                                  "(omoindrot's params.json sets it) or use model='omoindrot-cnn'.")
    _check_backbone_keys(v)


def _check_loss_keys(v: dict[str, Any]) -> None:
    """What applies to which loss is the registry's."""
    check_fields(v, "mode", "loss", "distance", "soft")
    spec = registry.loss_spec(v["loss"], v["mode"])
    chosen = f"loss={v['loss']!r}" if v["mode"] == "online" else "mode='offline'"
    if v["distance"] not in spec.distances:
        raise ConfigError(f"Expected `distance` to be one of {_braced(spec.distances)} with "
                          f"{chosen}. Received: distance={v['distance']!r}.")
    if v["soft"] and not spec.soft:
        if v["mode"] == "offline":
            raise ConfigError("Expected `soft` to be False with mode='offline'. "
                              "Received: soft=True.")
        soft_losses = tuple(name for name in LOSSES if registry.LOSSES[name].soft)
        raise ConfigError(f"Expected `soft` only with loss in {_braced(soft_losses)}. "
                          f"Received: soft=True with loss={v['loss']!r}.")
    if v["margin"] is None:
        v["margin"] = spec.default_margin
    if v["mode"] == "online" and v["triplets"] is not None:
        _only_with(v, "triplets", "mode", "offline")
    if v["mode"] == "offline" and v["triplets"] is None:
        v["triplets"] = "random"
    check_fields(v, "triplets", "margin")
    if v["semi_margin"] is not None and not spec.semi_margin:
        semi_losses = [name for name in LOSSES if registry.LOSSES[name].semi_margin]
        raise ConfigError(f"Expected `semi_margin` only with loss="
                          f"{' or '.join(map(repr, semi_losses))}. "
                          f"Received: semi_margin={v['semi_margin']!r} with "
                          f"loss={v['loss']!r}.")
    check_field(v, "semi_margin")  # any sign, as triplet-tools
    _check_memory_keys(v, spec)


def _check_memory_keys(v: dict[str, Any], spec) -> None:
    """``memory_size`` only with the losses a cross-batch memory wraps; ``memory_warmup`` only
    with a memory."""
    check_fields(v, "memory_size", "memory_warmup")
    if v["memory_size"] and (v["mode"] != "online" or not spec.memory):
        memory_losses = tuple(name for name in LOSSES if registry.LOSSES[name].memory)
        chosen = f"loss={v['loss']!r}" if v["mode"] == "online" else "mode='offline'"
        raise ConfigError(f"Expected `memory_size` only with mode='online' and loss in "
                          f"{_braced(memory_losses)}. Received: memory_size={v['memory_size']} "
                          f"with {chosen}.")
    if v["memory_warmup"] and not v["memory_size"]:
        raise ConfigError("Expected `memory_warmup` only with a memory (memory_size > 0). "
                          f"Received: memory_warmup={v['memory_warmup']} with memory_size=0.")


def _check_sampler_keys(v: dict[str, Any]) -> None:
    # classes_per_batch, samples_per_class: None until fitted to the data (batch_shape)
    check_fields(v, "sampler", "classes_per_batch", "samples_per_class", "batch_size")
    if v["mode"] == "online" and v["sampler"] == "shuffled" and v["batch_size"] < 2:
        raise ConfigError(f"Expected `batch_size` >= 2 with sampler='shuffled': a batch needs "
                          f"a positive pair (two samples of a class) to give any loss. "
                          f"Received: batch_size={v['batch_size']}.")


def _check_optimizer_keys(v: dict[str, Any]) -> None:
    check_fields(v, "optimizer", "learning_rate")
    if v["weight_decay"] is not None and v["optimizer"] != "adamw":
        _only_with(v, "weight_decay", "optimizer", "adamw")
    check_fields(v, "weight_decay", "schedule")
    if v["decay_rate"] is not None and v["schedule"] != "exponential":
        _only_with(v, "decay_rate", "schedule", "exponential")
    if v["schedule"] == "exponential" and v["decay_rate"] is None:
        v["decay_rate"] = 0.9
    check_field(v, "decay_rate")


def _check_training_keys(v: dict[str, Any]) -> None:
    check_fields(v, "epochs", "steps_per_epoch", "seed", "backend", "jit_compile",
                 "steps_per_execution", "retain_freed_memory", "distribute")
    check_distribute_options(v)


def _check_output_keys(v: dict[str, Any]) -> None:
    check_fields(v, "eval_every", "eval_samples", "export_samples", "live_pca", "tensorboard",
                 "plots", "projections")


def _check_augmentation_keys(v: dict[str, Any]) -> None:
    v.update(check_augmentation(v))
    if v["mode"] == "offline" and any(
            v[key] != default for key, (default, _) in AUGMENTATION_KEYS.items()):
        on = [key for key, (default, _) in AUGMENTATION_KEYS.items() if v[key] != default]
        raise ConfigError(f"Expected the [augmentation] keys only with mode='online' (the P×K "
                          f"or shuffled batches). Received: {', '.join(on)} with "
                          "mode='offline'.")


def _check_backbone_keys(v: dict[str, Any]) -> None:
    """``weights``, ``freeze_backbone_epochs``, ``backbone_learning_rate_multiplier`` and
    ``freeze_batch_norm``."""
    backbone = v["model"] in BACKBONE_MODELS
    if v["weights"] is None:
        v["weights"] = "imagenet" if backbone else "none"
    if not isinstance(v["weights"], (str, os.PathLike)) or not str(v["weights"]):
        raise ConfigTypeError(f"Expected `weights` to be 'imagenet', 'none' or the path of a "
                              f"weights file. Received: weights={v['weights']!r}.")
    v["weights"] = str(v["weights"])
    if v["weights"] == "imagenet" and not backbone:
        raise ConfigError(f"Expected weights='none' or the path of a weights file with "
                          f"model={v['model']!r} (ImageNet weights exist for the backbones "
                          f"{_braced(BACKBONE_MODELS)}). Received: weights='imagenet'.")
    check_fields(v, "freeze_backbone_epochs", "backbone_learning_rate_multiplier",
                 "freeze_batch_norm")
    if not backbone:
        for key in ("freeze_backbone_epochs", "backbone_learning_rate_multiplier",
                    "freeze_batch_norm"):
            if v[key] != default_value(key):
                raise ConfigError(f"Expected `{key}` only with a backbone model "
                                  f"{_braced(BACKBONE_MODELS)}. Received: {key}={v[key]!r} "
                                  f"with model={v['model']!r}.")


# --------------------------------------------------------------------------------------------
# Field descriptions: types, checks
# --------------------------------------------------------------------------------------------


def field_kind(name: str) -> str:
    """``"bool"``, ``"int"``, ``"float"``, ``"str"``, ``"list"``, ``"dict"`` or ``"jit"`` (true,
    false or ``"auto"``): the type of field ``name``, read from its annotation."""
    types = {part.strip() for part in str(FIELDS[name].type).split("|")} - {"None"}
    if types == {"bool", "str"}:
        return "jit"
    (kind,) = types
    return kind


def check_field(values: dict[str, Any], name: str) -> None:
    """Checks ``values[name]`` against its field's description and converts it (``int``,
    ``float``, ``str``...); ``None`` (unset, or derived later) passes.

    Raises:
      ConfigError: a value outside the field's choices or bounds.
      ConfigTypeError: a value of the wrong type.
    """
    value, meta, kind = values[name], FIELDS[name].metadata, field_kind(name)
    if value is None:
        return
    if meta.get("path"):
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigTypeError(f"Expected `{name}` to be a path. Received: {name}={value!r}.")
        values[name] = str(value)
    elif kind in ("int", "float"):
        check_number(name, value, minimum=meta.get("minimum"),
                     minimum_inclusive=not meta.get("strict", False),
                     maximum=meta.get("maximum"), integer=kind == "int")
        values[name] = int(value) if kind == "int" else float(value)
    elif kind == "bool" or (kind == "jit" and value != "auto"):
        check_bool(name, value)
    elif kind == "list":
        if not isinstance(value, (list, tuple)):
            raise ConfigTypeError(f"Expected `{name}` to be a list of names. Received: "
                                  f"{name}={value!r}.")
        for item in value:
            check_choice(name, item, meta["choices"])
        values[name] = list(dict.fromkeys(value))
    elif "choices" in meta:
        check_choice(name, value, meta["choices"])


def check_fields(values: dict[str, Any], *names: str) -> None:
    """:func:`check_field` for each of ``names``, in order."""
    for name in names:
        check_field(values, name)
