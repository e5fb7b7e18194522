"""``tripletlab query``: the k nearest gallery items of each query, and its match.

Queries are embedded with the index's own model (a data set split, an image folder, image
files) or given as embeddings. Prints a table (or ``--json``: one JSON object per query and
line), and with ``--picture`` draws each query beside its neighbours. With a threshold (the
index's calibrated one by default, or ``--threshold``) each query also gets "match: label"
or "no match".
"""

from __future__ import annotations

import argparse
import json
import sys

from tripletlab.cli import add_backend_argument, select_backend
from tripletlab.cli.gallery_items import (
    add_item_arguments,
    check_one_source,
    load_items_for_index,
)
from tripletlab.cli.quiet_start import load_keras
from tripletlab.errors import ConfigError
from tripletlab.retrieval_names import MATCH_RULES

PICTURE_QUERIES = 8
"""Queries drawn by ``--picture`` (the first ones)."""


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "query", allow_abbrev=False, help="nearest gallery items of queries, and matches",
        description=__doc__.split("\n\n")[0])
    index = parser.add_argument_group("Index")
    index.add_argument("--index", required=True, metavar="DIR", help="an index folder")
    index.add_argument("-k", type=int, default=5, help="neighbours per query (default: 5)")
    index.add_argument("--threshold", type=float, default=None,
                       help="largest matching distance (default: the index's calibrated one)")
    index.add_argument("--no-threshold", action="store_true",
                       help="ignore the calibrated threshold: no matches reported")
    index.add_argument("--match", choices=MATCH_RULES, default=None,
                       help="match rule (default: the one the threshold was calibrated for)")
    index.add_argument("--batch-size", type=int, default=256)
    add_backend_argument(index)
    add_item_arguments(parser, split="test", loose_images=True)
    out = parser.add_argument_group("Output")
    out.add_argument("--json", action="store_true", help="one JSON object per query and line")
    out.add_argument("--picture", metavar="FILE",
                     help=f"draw the first {PICTURE_QUERIES} queries beside their neighbours")
    out.add_argument("--max-rows", type=int, default=20,
                     help="queries shown in the table (default: 20; --json prints all)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    check_one_source(args, labels_required=False)
    if args.k < 1:
        raise ConfigError(f"Expected `-k` >= 1. Received: {args.k}.")
    if args.threshold is not None and (args.no_threshold or args.threshold < 0):
        raise ConfigError("Expected `--threshold` >= 0 and not with --no-threshold. Received: "
                          f"--threshold {args.threshold}"
                          + (" with --no-threshold." if args.no_threshold else "."))
    select_backend(args.backend)
    load_keras()
    from tripletlab.retrieval import Index

    index = Index.load(args.index)
    items = load_items_for_index(args, index)
    found = index.search(items.embeddings, min(args.k, len(index)),
                         progress=sys.stdout.isatty() and not args.json)
    matches = _matches(args, index, found)
    if args.json:
        _print_json(items, found, matches)
    else:
        _print_table(items, found, matches, args.max_rows)
    if args.picture:
        _draw(args, index, items, found, matches)
    return 0


def _matches(args: argparse.Namespace, index, found):
    from tripletlab.retrieval.matching import match_neighbors

    threshold = None if args.no_threshold else (
        args.threshold if args.threshold is not None else index.threshold)
    if threshold is None:
        return None
    rule = args.match or index.matching["rule"]
    return match_neighbors(found.labels, found.distances, found.items, rule=rule,
                           threshold=threshold)


def _print_json(items, found, matches) -> None:
    for row, name in enumerate(items.names.tolist()):
        record = {"query": name,
                  "neighbors": [{"item": int(item), "name": str(item_name),
                                 "label": str(label), "distance": float(distance)}
                                for item, item_name, label, distance in zip(
                                    found.items[row], found.names[row], found.labels[row],
                                    found.distances[row], strict=True)]}
        if items.labels is not None:
            record["label"] = str(items.labels[row])
        if matches is not None:
            record["match"] = str(matches.labels[row]) if matches.matched[row] else None
            record["match_distance"] = float(matches.distances[row])
            record["threshold"] = matches.threshold
        print(json.dumps(record), flush=False)
    sys.stdout.flush()


def _print_table(items, found, matches, max_rows: int) -> None:
    rows = min(len(items.names), max(max_rows, 0))
    header = ["query"] + (["label"] if items.labels is not None else []) + (
        ["match"] if matches is not None else []) + ["neighbours: label (distance)"]
    lines = []
    for row in range(rows):
        cells = [_short(items.names[row])]
        if items.labels is not None:
            cells.append(str(items.labels[row]))
        if matches is not None:
            cells.append(str(matches.labels[row]) if matches.matched[row] else "no match")
        cells.append("  ".join(f"{label} ({distance:.4g})" for label, distance in
                               zip(found.labels[row], found.distances[row], strict=True)))
        lines.append(cells)
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
    for line in [header, *lines]:
        padded = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        print("  ".join([*padded, line[-1]]))
    if rows < len(items.names):
        print(f"... {len(items.names) - rows:,} more queries (--max-rows, or --json for all)")
    _print_summary(items, found, matches)


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _print_summary(items, found, matches) -> None:
    if items.labels is None:
        return
    first = found.labels[:, 0] == items.labels
    line = (f"{len(items.labels):,} queries: nearest item of the query's label for "
            f"{first.mean():.1%}")
    if matches is not None:
        matched = matches.matched
        right = (matches.labels == items.labels) & matched
        precision = right.sum() / max(matched.sum(), 1)
        line += (f"; matched {matched.sum():,} at threshold {matches.threshold:.4g} "
                 f"({matches.rule}), {precision:.1%} of them correctly")
    print(line)


def _draw(args: argparse.Namespace, index, items, found, matches) -> None:
    from tripletlab.cli.gallery_items import gallery_images
    from tripletlab.visualization.query_plot import query_grid

    if items.images is None:
        raise ConfigError("Expected queries with images for `--picture`. Received: "
                          "--embeddings (no images to draw).")
    count = min(PICTURE_QUERIES, len(items.names))
    titles = []
    for row in range(count):
        title = f"query: {items.labels[row]}" if items.labels is not None else "query"
        if matches is not None:
            title += "\n→ " + (str(matches.labels[row]) if matches.matched[row] else "no match")
        titles.append(title)
    neighbor_titles = [[f"{label} ({distance:.3g})" for label, distance in
                        zip(found.labels[row], found.distances[row], strict=True)]
                       for row in range(count)]
    same = None if items.labels is None else found.labels[:count] == items.labels[:count, None]
    query_grid(items.images[:count], titles, gallery_images(index, found.items[:count]),
               neighbor_titles, same, args.picture,
               title=f"Nearest gallery items ({index.distance})")
    print(f"Picture written to {args.picture}")
