"""``tripletlab embed``: embed a data set split with a saved model.

Writes ``OUTPUT/embeddings.npy`` (float32 ``[N, D]``) and ``OUTPUT/labels.npy`` (int64 ``[N]``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tripletlab.cli import add_backend_argument, add_data_arguments, select_backend
from tripletlab.cli.quiet_start import load_keras
from tripletlab.errors import ConfigError


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "embed", allow_abbrev=False, help="embed a data set with a saved model",
        description=__doc__.splitlines()[0])
    group = parser.add_argument_group("Model")
    group.add_argument("--model", required=True, metavar="FILE", help=".keras model file")
    group.add_argument("--batch-size", type=int, default=256)
    add_backend_argument(group)
    add_data_arguments(parser).add_argument("--split", choices=("test", "train"),
                                            default="test", help="which split to embed")
    out = parser.add_argument_group("Output")
    out.add_argument("--output", required=True, metavar="DIR",
                     help="folder for embeddings.npy and labels.npy")
    parser.set_defaults(handler=run)
    return parser


def embed_split(model, data, split: str, batch_size: int, verbose: int | None = None):
    """Embeds ``data``'s ``split``; returns ``(embeddings, labels)``.

    ``verbose=None`` shows Keras' progress bar on a terminal only (piped: one line).
    """
    import sys

    import numpy as np

    from tripletlab.inference import embed

    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected and None not in expected:
        raise ConfigError(f"Expected images of shape {expected} for this model. Received: "
                          f"{tuple(x.shape[1:])} from data set {data.name!r}.")
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 0
    print(f"Embedding the {split} split: {len(y):,} images", flush=True)
    return embed(model, x, batch_size, verbose=verbose), np.asarray(y, np.int64)


def run(args: argparse.Namespace) -> int:
    select_backend(args.backend)
    load_keras()
    from tripletlab.atomic import save_array
    from tripletlab.cli import load_data, load_embedding_model

    if args.batch_size < 1:
        raise ConfigError(f"Expected `--batch-size` >= 1. Received: {args.batch_size}.")
    data = load_data(args)
    model = load_embedding_model(args.model)
    embeddings, labels = embed_split(model, data, args.split, args.batch_size)
    output = Path(args.output)
    save_array(output / "embeddings.npy", embeddings)
    save_array(output / "labels.npy", labels)
    print(f"{len(labels)} embeddings of dimension {embeddings.shape[1]} written to {output}")
    return 0
