"""What ``tripletlab index``, ``query`` and ``calibrate`` read: items to embed with a model (a
data set split, an ``.npz``, an image folder, loose image files) or saved embeddings.

Every source gives :class:`Items`: embeddings, labels as strings (class names), a name per item
(its file path, or ``source/split/row``), and a ``source`` record saying how to read the items
again (the query picture shows gallery images from it).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab.cli import add_data_arguments, has_data_arguments
from tripletlab.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
"""The image files ``--images`` takes from a folder."""


@dataclasses.dataclass
class Items:
    """Embedded items.

    Attributes:
      embeddings: ``[N, D]`` float32.
      labels: ``[N]`` strings, or ``None`` for unlabelled images.
      names: ``[N]`` strings.
      source: how the items were read (JSON-ready), with ``"count"``.
      images: the items' images (an array or ``ImageFiles``), or ``None`` for saved embeddings.
    """

    embeddings: np.ndarray
    labels: np.ndarray | None
    names: np.ndarray
    source: dict[str, Any]
    images: Any = None


def add_item_arguments(parser: argparse.ArgumentParser, *, split: str,
                       loose_images: bool = False) -> None:
    """Adds the data-source flags (as ``embed``), ``--split``, ``--embeddings``/``--labels``
    and, with ``loose_images``, ``--images``."""
    group = add_data_arguments(parser)
    group.add_argument("--split", choices=("test", "train"), default=split,
                       help=f"which split of the data source (default: {split})")
    if loose_images:
        group.add_argument("--images", nargs="+", metavar="PATH",
                           help="image files, or a folder of them (unlabelled)")
    saved = parser.add_argument_group("Saved embeddings (instead of a data source)")
    saved.add_argument("--embeddings", metavar="FILE", help="embeddings .npy [N, D]")
    saved.add_argument("--labels", metavar="FILE", help="labels .npy [N] (integers or strings)")
    saved.add_argument("--names", metavar="FILE", help="optional item names .npy [N] (strings)")


def chosen_sources(args: argparse.Namespace) -> list[str]:
    """The item sources given on the command line (``--dataset``..., ``--images``,
    ``--embeddings``)."""
    chosen = []
    if has_data_arguments(args):
        chosen.append("a data source")
    if getattr(args, "images", None):
        chosen.append("--images")
    if args.embeddings is not None:
        chosen.append("--embeddings")
    return chosen


def check_one_source(args: argparse.Namespace, *, labels_required: bool) -> None:
    """Raises unless exactly one source was given (with ``--labels`` when needed)."""
    chosen = chosen_sources(args)
    flags = "--dataset, --data-file, --image-folder" + (
        ", --images" if hasattr(args, "images") else "") + " or --embeddings"
    if len(chosen) != 1:
        received = " and ".join(chosen) if chosen else "none"
        raise ConfigError(f"Expected one source of items: {flags}. Received: {received}.")
    if args.embeddings is not None and labels_required and args.labels is None:
        raise ConfigError("Expected `--labels` with `--embeddings`. Received: no --labels.")
    if args.embeddings is None and (args.labels is not None or args.names is not None):
        raise ConfigError("Expected `--labels` and `--names` only with `--embeddings`. "
                          "Received: them with another source.")


def load_items(args: argparse.Namespace, model, *, batch_size: int) -> Items:
    """Reads (and, unless saved embeddings, embeds with ``model``) the items ``args`` name."""
    if args.embeddings is not None:
        return _saved_items(args)
    if model is None:
        raise ConfigError("Expected a model to embed the items with (`--model`, or an index "
                          "built from one). Received: none; pass --embeddings instead.")
    if getattr(args, "images", None):
        return _loose_images(args, model, batch_size)
    return _data_set_items(args, model, batch_size)


def _saved_items(args: argparse.Namespace) -> Items:
    from tripletlab.cli import load_array

    embeddings = load_array(args.embeddings, "--embeddings")
    labels = None
    if args.labels is not None:
        labels = _strings(load_array(args.labels, "--labels"), "--labels", len(embeddings))
    names = (np.arange(len(embeddings)).astype(str) if args.names is None
             else _strings(load_array(args.names, "--names"), "--names", len(embeddings)))
    source = {"kind": "embeddings", "embeddings": str(Path(args.embeddings).resolve()),
              "count": len(embeddings)}
    return Items(np.asarray(embeddings, np.float32), labels, names, source)


def _strings(values: np.ndarray, flag: str, count: int) -> np.ndarray:
    if values.ndim != 1 or len(values) != count or values.dtype.kind not in "iuUS":
        raise ConfigError(f"Expected `{flag}` to hold {count} integers or strings, one per "
                          f"embedding. Received: dtype={values.dtype}, shape={values.shape}.")
    return values.astype(str)


def _data_set_items(args: argparse.Namespace, model, batch_size: int) -> Items:
    from tripletlab.cli import load_data
    from tripletlab.cli.embed import embed_split
    from tripletlab.data import ImageFiles

    if args.image_folder is not None and args.image_size is None:
        args.image_size = _model_image_size(model)
    data = load_data(args)
    embeddings, labels = embed_split(model, data, args.split, batch_size)
    images = data.x_test if args.split == "test" else data.x_train
    class_names = np.asarray(data.class_names)
    source = data_source(args, data.name)
    if isinstance(images, ImageFiles):
        names = np.asarray(images.paths, dtype=str)
        source["color_mode"] = images.color_mode
    else:
        names = np.char.add(f"{data.name}/{args.split}/", np.arange(len(labels)).astype(str))
    source["count"] = len(labels)
    return Items(embeddings, class_names[labels], names, source, images)


def data_source(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The record of a data-set source: enough to load the same split again."""
    return {"kind": "data-set", "dataset": name, "split": args.split,
            "data_file": None if args.data_file is None else str(Path(args.data_file).resolve()),
            "image_folder": (None if args.image_folder is None
                             else str(Path(args.image_folder).resolve())),
            "image_size": args.image_size, "seed": args.seed,
            "test_fraction": args.test_fraction}


def _loose_images(args: argparse.Namespace, model, batch_size: int) -> Items:
    from tripletlab.data import ImageFiles
    from tripletlab.inference import embed

    paths = image_paths(args.images)
    size = (args.image_size, args.image_size) if args.image_size else _model_image_size(model)
    if size is None:
        raise ConfigError("Expected `--image-size` for a model without a fixed input size. "
                          "Received: none.")
    channels = model.input_shape[-1]
    files = ImageFiles(paths, image_size=tuple(size),
                       color_mode="grayscale" if channels == 1 else "rgb")
    print(f"Embedding {len(paths):,} images", flush=True)
    embeddings = embed(model, files, batch_size, verbose=0)
    source = {"kind": "images", "count": len(paths), "color_mode": files.color_mode,
              "image_size": list(size)}
    return Items(embeddings, None, np.asarray(paths, dtype=str), source, files)


def image_paths(given: list[str]) -> list[str]:
    """The image files named by ``--images``: files as given, folders as their image files
    (sorted)."""
    from tripletlab._checks import check_file

    paths = []
    for entry in given:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ConfigError(f"Expected `--images` folder {entry!r} to hold image files "
                                  f"({', '.join(IMAGE_SUFFIXES)}). Received: none.")
            paths.extend(str(p) for p in found)
        else:
            check_file("--images", entry, "an image file or a folder of them")
            paths.append(str(path))
    return paths


def _model_image_size(model) -> int | tuple[int, int] | None:
    shape = tuple(model.input_shape[1:3])
    return None if None in shape else (int(shape[0]), int(shape[1]))


def experiment_distance(model_file: str | None) -> str | None:
    """The ranking distance of the experiment a model file belongs to (a ``config.json``
    beside it), or ``None`` when it is not in one."""
    from tripletlab.distances import ranking_distance
    from tripletlab.model_origin import experiment_config, experiment_of

    experiment = None if model_file is None else experiment_of(model_file)
    if experiment is None:
        return None
    return ranking_distance(experiment_config(experiment).distance)


def gallery_images(index, items: np.ndarray) -> list[Any | None]:
    """The images of gallery ``items`` (item numbers), read again from the sources recorded in
    the index (``None`` for an item added from saved embeddings, or whose source is gone)."""
    sources = sorted(index.metadata.get("sources", []), key=lambda s: s["first_item"])
    starts = np.array([source["first_item"] for source in sources])
    loaded: dict[int, Any] = {}
    images = []
    for item in np.asarray(items).ravel().tolist():
        position = int(np.searchsorted(starts, item, side="right")) - 1
        if position < 0:
            images.append(None)
            continue
        source = sources[position]
        if position not in loaded:
            loaded[position] = _source_images(source, index.names)
        pixels = loaded[position]
        images.append(None if pixels is None else pixels[item - source["first_item"]])
    return images


def _source_images(source: dict[str, Any], names: np.ndarray):
    from tripletlab.data import ImageFiles, load_dataset

    kind = source["kind"]
    if kind == "images":
        first = source["first_item"]
        paths = [str(p) for p in names[first:first + source["count"]]]
        gone = [p for p in paths if not Path(p).is_file()]
        if gone:
            import warnings

            warnings.warn(f"{len(gone):,} gallery image files are gone (e.g. {gone[0]!r}), so "
                          "the picture shows grey tiles for the items added with them.",
                          stacklevel=2)
            return None
        return ImageFiles(paths, image_size=tuple(source["image_size"]),
                          color_mode=source["color_mode"])
    if kind != "data-set":
        return None
    try:
        data = load_dataset(source["dataset"], data_file=source["data_file"],
                            image_folder=source["image_folder"], seed=source["seed"],
                            test_fraction=source["test_fraction"],
                            image_size=source["image_size"])
    except (OSError, ValueError) as error:  # moved or deleted since the index was built
        import warnings

        warnings.warn(f"The gallery images of {source['dataset']!r} ({source['split']} split) "
                      f"could not be read again, so the picture shows grey tiles for them: "
                      f"{error}", stacklevel=2)
        return None
    return data.x_test if source["split"] == "test" else data.x_train


def load_items_for_index(args: argparse.Namespace, index) -> Items:
    """The items ``args`` name, embedded with the model saved in ``args.index`` (image folders
    resized as the gallery's images were, unless ``--image-size`` says otherwise)."""
    from tripletlab.cli import load_embedding_model
    from tripletlab.retrieval.index_folder import model_path

    model = None
    if args.embeddings is None:
        saved = model_path(args.index)
        if saved is None:
            raise ConfigError(f"Expected an index built with a model to embed the items. "
                              f"Received: {args.index!r}, built from saved embeddings; pass "
                              "--embeddings.")
        model = load_embedding_model(str(saved))
        if args.image_size is None:
            sizes = [s["image_size"] for s in index.metadata.get("sources", [])
                     if s.get("image_size")]
            if sizes:
                size = sizes[0]
                args.image_size = size if isinstance(size, int) else int(size[0])
    return load_items(args, model, batch_size=args.batch_size)
