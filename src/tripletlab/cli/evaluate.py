"""``tripletlab evaluate``: retrieval metrics (P@1, R@k, R-precision, MAP@R, NMI) of embeddings.

Either a model and a data set (queries: the test split; references: the train split, or the
test split itself with ``--protocol leave-one-out``), or saved embeddings (leave-one-out, unless
``--reference-embeddings`` / ``--reference-labels`` are given).
"""

from __future__ import annotations

import argparse

from tripletlab.cli import add_backend_argument, add_data_arguments, select_backend
from tripletlab.cli.quiet_start import load_keras
from tripletlab.distances import DISTANCES
from tripletlab.errors import ConfigError


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "evaluate", allow_abbrev=False, help="retrieval metrics of a model or embeddings",
        description=__doc__.split("\n\n")[0])
    model = parser.add_argument_group("Model (with a data source)")
    model.add_argument("--model", metavar="FILE", help=".keras model file")
    model.add_argument("--protocol", choices=("test-to-train", "leave-one-out"),
                       default="test-to-train")
    model.add_argument("--batch-size", type=int, default=256)
    add_backend_argument(model)
    add_data_arguments(parser)
    saved = parser.add_argument_group("Saved embeddings")
    saved.add_argument("--embeddings", metavar="FILE", help="query embeddings .npy")
    saved.add_argument("--labels", metavar="FILE", help="query labels .npy")
    saved.add_argument("--reference-embeddings", metavar="FILE")
    saved.add_argument("--reference-labels", metavar="FILE")
    opts = parser.add_argument_group("Metrics")
    opts.add_argument("--distance", default="L2", help=f"one of {', '.join(DISTANCES)}")
    opts.add_argument("--no-clustering", dest="clustering", action="store_false",
                      help="skip NMI/AMI (k-means)")
    opts.add_argument("--output", metavar="FILE", help="write the metrics to this JSON file")
    parser.set_defaults(handler=run)
    return parser


def _inputs(args):
    from tripletlab.cli import has_data_arguments, load_array

    if args.model is not None:
        if args.embeddings is not None or args.labels is not None:
            raise ConfigError("Expected either --model (with a data source) or --embeddings "
                              "and --labels. Received: both.")
        if not has_data_arguments(args):
            raise ConfigError("Expected a data source with --model: --dataset, --data-file or "
                              "--image-folder. Received: none.")
        from tripletlab.cli import load_data, load_embedding_model
        from tripletlab.cli.embed import embed_split

        if args.batch_size < 1:
            raise ConfigError(f"Expected `--batch-size` >= 1. Received: {args.batch_size}.")
        data = load_data(args)
        model = load_embedding_model(args.model)
        queries, query_labels = embed_split(model, data, "test", args.batch_size)
        if args.protocol == "leave-one-out":
            return queries, query_labels, None, None
        references, reference_labels = embed_split(model, data, "train", args.batch_size)
        return queries, query_labels, references, reference_labels
    if args.embeddings is None or args.labels is None:
        raise ConfigError("Expected --model with a data source, or --embeddings and --labels. "
                          "Received: neither.")
    if (args.reference_embeddings is None) != (args.reference_labels is None):
        raise ConfigError("Expected --reference-embeddings and --reference-labels together. "
                          "Received: only one of them.")
    queries = load_array(args.embeddings, "--embeddings")
    labels = load_array(args.labels, "--labels")
    if args.reference_embeddings is None:
        return queries, labels, None, None
    return (queries, labels, load_array(args.reference_embeddings, "--reference-embeddings"),
            load_array(args.reference_labels, "--reference-labels"))


def run(args: argparse.Namespace) -> int:
    select_backend(args.backend)
    load_keras()
    from tripletlab._checks import check_choice

    check_choice("distance", args.distance, DISTANCES)
    queries, labels, references, reference_labels = _inputs(args)
    import sys

    from tripletlab.evaluation import evaluate_embeddings, format_metrics_table, save_metrics

    protocol = "leave-one-out" if references is None else f"against {len(references):,} references"
    print(f"Scoring {len(queries):,} queries ({protocol})"
          + (" and k-means clustering" if args.clustering else ""), flush=True)
    metrics = evaluate_embeddings(queries, labels, references, reference_labels,
                                  distance=args.distance, clustering=args.clustering,
                                  progress=sys.stdout.isatty())
    print(format_metrics_table(metrics))
    if args.output is not None:
        save_metrics(args.output, metrics)
        print(f"Metrics written to {args.output}")
    return 0
