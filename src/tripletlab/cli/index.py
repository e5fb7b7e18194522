"""``tripletlab index``: embed a gallery with a model and write a searchable index folder.

The folder holds a faiss index (exact by default; ``--index hnsw`` or ``ivf`` for large
galleries, their recall@10 against exact search measured and stored), every item's label and
name, the model's distance, a copy of the model (so ``query`` embeds the same way) and a
manifest. ``--append`` adds items without re-embedding the others; a run killed meanwhile
leaves the previous index whole.
"""

from __future__ import annotations

import argparse
import sys

from tripletlab.cli import add_backend_argument, select_backend
from tripletlab.cli.gallery_items import add_item_arguments, check_one_source
from tripletlab.cli.quiet_start import load_keras
from tripletlab.distance_names import DISTANCES
from tripletlab.errors import ConfigError
from tripletlab.retrieval_names import INDEX_KINDS


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "index", allow_abbrev=False, help="embed a gallery and write a searchable index",
        description=__doc__.split("\n\n")[0])
    model = parser.add_argument_group("Model")
    model.add_argument("--model", metavar="FILE", help=".keras model file (required unless "
                       "--embeddings, or --append to an index built with one)")
    model.add_argument("--batch-size", type=int, default=256)
    model.add_argument("--distance", default=None,
                       help=f"one of {', '.join(DISTANCES)} (default: the distance of the "
                            "model's experiment, else L2)")
    add_backend_argument(model)
    add_item_arguments(parser, split="train")
    out = parser.add_argument_group("Index")
    out.add_argument("--output", required=True, metavar="DIR", help="the index folder")
    out.add_argument("--index", dest="kind", choices=INDEX_KINDS, default="flat",
                     help="exact search, or approximate for large galleries (default: flat)")
    out.add_argument("--append", action="store_true",
                     help="add the items to the index already in --output")
    out.add_argument("--overwrite", action="store_true",
                     help="replace the index already in --output")
    tuning = parser.add_argument_group("Approximate index parameters")
    tuning.add_argument("--hnsw-neighbors", type=int, default=32, help="HNSW links per item")
    tuning.add_argument("--ef-search", type=int, default=64, help="HNSW search breadth")
    tuning.add_argument("--lists", type=int, default=None,
                        help="IVF cells (default: 4 sqrt(N))")
    tuning.add_argument("--probes", type=int, default=None,
                        help="IVF cells scanned per query (default: max(8, lists / 32))")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    check_one_source(args, labels_required=True)
    if args.append and args.overwrite:
        raise ConfigError("Expected at most one of --append and --overwrite. Received: both.")
    if args.batch_size < 1:
        raise ConfigError(f"Expected `--batch-size` >= 1. Received: {args.batch_size}.")
    select_backend(args.backend)
    load_keras()
    index, model_file = _open_index(args)
    items = _embed(args, model_file, index)
    kind = args.kind if index is None else index.settings.kind
    print(f"Adding {len(items.labels):,} items to the {kind} index", flush=True)
    if index is None:
        index = _new_index(args, items, model_file)
    else:
        _record_source(index, items)
        index.add(items.embeddings, items.labels, names=items.names,
                  progress=sys.stdout.isatty())
    _report_recall(index)
    index.save(args.output, overwrite=args.overwrite, model_file=model_file)
    print(f"Index of {len(index):,} items (dimension {index.dimension}, distance "
          f"{index.distance!r}) written to {args.output}")
    return 0


def _open_index(args: argparse.Namespace):
    """``(index, model_file)``: the index to append to (``None`` for a new one) and the model
    that embeds the items."""
    from tripletlab.retrieval import Index
    from tripletlab.retrieval.index_folder import model_path

    if not args.append:
        from tripletlab.retrieval.index_folder import check_output

        check_output(args.output, overwrite=args.overwrite)
        return None, args.model
    index = Index.load(args.output)
    if args.distance is not None and args.distance != index.distance:
        raise ConfigError(f"Expected `--distance` {index.distance!r}, the distance of the index "
                          f"in {args.output!r}. Received: {args.distance!r}.")
    if args.kind != "flat" and args.kind != index.settings.kind:
        raise ConfigError(f"Expected `--index` {index.settings.kind!r}, the kind of the index in "
                          f"{args.output!r}. Received: {args.kind!r}.")
    saved_model = model_path(args.output)
    return index, args.model or (None if saved_model is None else str(saved_model))


def _embed(args: argparse.Namespace, model_file, index):
    from tripletlab.cli import load_embedding_model
    from tripletlab.cli.gallery_items import load_items

    model = None if args.embeddings is not None else (
        load_embedding_model(model_file) if model_file else None)
    items = load_items(args, model, batch_size=args.batch_size)
    if index is not None and items.embeddings.shape[1] != index.dimension:
        raise ConfigError(f"Expected embeddings of dimension {index.dimension}, the index's in "
                          f"{args.output!r}. Received: {items.embeddings.shape[1]}.")
    return items


def _new_index(args: argparse.Namespace, items, model_file):
    from tripletlab.cli.gallery_items import experiment_distance
    from tripletlab.retrieval import Index, IndexSettings

    distance = args.distance or experiment_distance(model_file) or "L2"
    settings = IndexSettings(kind=args.kind, hnsw_neighbors=args.hnsw_neighbors,
                             ef_search=args.ef_search, lists=args.lists, probes=args.probes)
    index = Index(items.embeddings.shape[1], distance=distance, settings=settings,
                  metadata={"sources": []})
    _record_source(index, items)
    index.add(items.embeddings, items.labels, names=items.names,
                  progress=sys.stdout.isatty())
    return index


def _record_source(index, items) -> None:
    source = dict(items.source, first_item=len(index))
    index.metadata.setdefault("sources", []).append(source)


def _report_recall(index) -> None:
    if index.recall is not None:
        print(f"recall@{index.recall['k']} against exact search: {index.recall['recall']:.4f} "
              f"(on {index.recall['sample']:,} of the gallery's items)", flush=True)
