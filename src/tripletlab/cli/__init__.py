"""The ``tripletlab`` command line: one module per subcommand, wired in :mod:`.main`.

Nothing here imports Keras at import time: ``--backend`` sets ``KERAS_BACKEND`` first, and the
subcommands import the Keras-using modules inside their ``run`` functions.
"""

from __future__ import annotations

import argparse

from tripletlab.backends import BACKENDS, select_backend
from tripletlab.errors import ConfigError

__all__ = ["add_backend_argument", "add_data_arguments", "load_data", "load_embedding_model",
           "load_array", "select_backend"]


def add_backend_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Adds ``--backend {tensorflow,jax,torch}`` (default: Keras' own setting)."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: KERAS_BACKEND or Keras' configuration)")


def add_data_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Adds the data-source arguments: ``--dataset | --data-file | --image-folder`` and the
    split options."""
    group = parser.add_argument_group("Dataset parameters")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--dataset", metavar="NAME",
                        help="data set name: mnist, fashion-mnist, mnist-sample, digits")
    source.add_argument("--data-file", metavar="FILE", help=".npz file (Keras mnist.npz layout)")
    source.add_argument("--image-folder", metavar="DIR", help="one sub-folder of images per class")
    group.add_argument("--image-size", type=int, default=None, metavar="N",
                       help="image-folder only: resize to N x N")
    group.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    group.add_argument("--test-fraction", type=float, default=0.2,
                       help="test share for the data sets split here")
    return group


def has_data_arguments(args: argparse.Namespace) -> bool:
    """Whether one of ``--dataset``, ``--data-file``, ``--image-folder`` was given."""
    return any(getattr(args, name, None) is not None
               for name in ("dataset", "data_file", "image_folder"))


def load_data(args: argparse.Namespace):
    """Loads the :class:`tripletlab.data.Dataset` named by the data arguments."""
    from tripletlab.data import load_dataset

    if not has_data_arguments(args):
        raise ConfigError("Expected one of --dataset, --data-file or --image-folder. "
                          "Received: none.")
    name = args.dataset or ("npz" if args.data_file else "image-folder")
    return load_dataset(name, data_file=args.data_file, image_folder=args.image_folder,
                        seed=args.seed, test_fraction=args.test_fraction,
                        image_size=args.image_size)


def load_embedding_model(path: str):
    """Loads a ``.keras`` model with ``safe_mode=True``; a triplet network gives its embedding
    model.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      IsADirectoryError: ``path`` is a folder.
      ValueError: ``path`` is not a Keras model file (not a zip archive, truncated, a zip
        without a model in it, or a model that does not load); the message names the file.
    """
    import zipfile

    import keras

    import tripletlab
    from tripletlab._checks import check_file
    from tripletlab.models import extract_embedding_model

    check_file("--model", path, "a .keras model file")
    problem = None
    if not zipfile.is_zipfile(path):
        problem = "it is not a zip archive, as .keras files are (truncated or damaged?)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    problem = ("it is a zip archive but not a Keras model (no config.json "
                               "inside)")
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            problem = f"the zip archive is damaged ({error})"
    if problem is not None:
        raise ConfigError(f"Could not load `--model` {path!r} as a Keras model: {problem}.")
    tripletlab.register_keras_classes()  # tripletlab's serialisable classes, before loading
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise ConfigError(f"Could not load `--model` {path!r} as a Keras model: "
                          f"{message}") from error
    return extract_embedding_model(model, strict=False)


def load_array(path: str, flag: str):
    """Reads a ``.npy`` file with ``allow_pickle=False``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      IsADirectoryError: ``path`` is a folder.
      ValueError: ``path`` is not a readable ``.npy`` array (another format, truncated,
        damaged, or an object array that would need pickle); the message names the file.
    """
    import numpy as np

    from tripletlab._checks import check_file

    check_file(flag, path, "a .npy file")
    with open(path, "rb") as stream:
        head = stream.read(6)
    if head != b"\x93NUMPY":
        what = ("a .npz archive, not a single .npy array" if head.startswith(b"PK")
                else "not a NumPy .npy file (it does not start with the .npy header)")
        raise ConfigError(f"Could not read `{flag}` {path!r}: it is {what}.")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        message = " ".join(str(error).split())
        if "pickle" in message:
            reason = "it holds Python objects, which are refused for safety (allow_pickle=False)"
        else:
            reason = f"it is truncated or damaged ({message})"
        raise ConfigError(f"Could not read `{flag}` {path!r}: {reason}.") from error
    except (OSError, EOFError) as error:
        raise ConfigError(f"Could not read `{flag}` {path!r}: it is truncated or damaged "
                          f"({error}).") from error
