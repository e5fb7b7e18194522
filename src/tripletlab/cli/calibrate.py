"""``tripletlab calibrate``: the distance threshold of an index's matches, from labelled data.

The labelled split (held out from the gallery: the test split by default) is embedded with the
index's model and matched against the index. The threshold maximises F1, or is the largest that
reaches ``--target-precision``; with ``--target-far``, pairs of the split itself are compared
(verification: same class or not) and the threshold keeps the false-accept rate at or below it.
The threshold is stored in the index folder, where ``tripletlab query`` uses it by default; the
curve is drawn to ``calibration.png`` and the numbers written to ``calibration.json`` there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tripletlab.cli import add_backend_argument, select_backend
from tripletlab.cli.gallery_items import add_item_arguments, check_one_source
from tripletlab.cli.quiet_start import load_keras
from tripletlab.errors import ConfigError
from tripletlab.retrieval_names import MATCH_RULES

CALIBRATION_JSON = "calibration.json"
CALIBRATION_PICTURE = "calibration.png"


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "calibrate", allow_abbrev=False, help="the match threshold of an index, from labelled data",
        description=__doc__.split("\n\n")[0])
    index = parser.add_argument_group("Index")
    index.add_argument("--index", required=True, metavar="DIR", help="an index folder")
    index.add_argument("--match", choices=MATCH_RULES, default="nearest",
                       help="match rule the threshold is for (default: nearest)")
    index.add_argument("-k", type=int, default=5,
                       help="neighbours of a majority vote (default: 5)")
    index.add_argument("--batch-size", type=int, default=256)
    add_backend_argument(index)
    target = parser.add_argument_group("Target (default: the threshold of the best F1)")
    choice = target.add_mutually_exclusive_group()
    choice.add_argument("--target-precision", type=float, metavar="P",
                        help="the largest threshold whose matches reach precision P")
    choice.add_argument("--target-far", type=float, metavar="F",
                        help="verification pairs: the largest threshold with FAR <= F")
    target.add_argument("--max-pairs", type=int, default=1_000_000,
                        help="verification pairs sampled from the split (default: 1,000,000)")
    add_item_arguments(parser, split="test")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    check_one_source(args, labels_required=True)
    for flag in ("target_precision", "target_far"):
        value = getattr(args, flag)
        if value is not None and not 0 < value <= 1:
            raise ConfigError(f"Expected `--{flag.replace('_', '-')}` in (0, 1]. "
                              f"Received: {value}.")
    if args.k < 1:
        raise ConfigError(f"Expected `-k` >= 1. Received: {args.k}.")
    select_backend(args.backend)
    load_keras()
    from tripletlab.cli.gallery_items import load_items_for_index
    from tripletlab.retrieval import Index

    index = Index.load(args.index)
    items = load_items_for_index(args, index)
    k = 1 if args.match == "nearest" else min(args.k, len(index))
    print(f"Calibrating on {len(items.labels):,} labelled items "
          + ("(verification pairs)" if args.target_far is not None else f"({args.match} match)"),
          flush=True)
    calibration = index.calibrate(items.embeddings, items.labels, rule=args.match, k=k,
                                  target_precision=args.target_precision,
                                  target_far=args.target_far, max_pairs=args.max_pairs)
    _save(args, index, calibration)
    print(_summary(calibration))
    return 0


def _save(args: argparse.Namespace, index, calibration) -> None:
    """Writes the numbers and the picture into the index folder, then its manifest with the
    threshold (the commit: a run killed before it leaves the previous threshold)."""
    from tripletlab.atomic import write_json
    from tripletlab.visualization.calibration_plot import plot_calibration

    folder = Path(args.index)
    index.save(folder, extra_files={
        "calibration": (CALIBRATION_JSON,
                        lambda path: write_json(path, calibration.to_dict(), nan_as_null=True)),
        "calibration_picture": (CALIBRATION_PICTURE,
                                lambda path: plot_calibration(calibration, path)),
    })
    print(f"Threshold stored in {folder} (`tripletlab query --index {folder}` uses it); "
          f"curve: {folder / CALIBRATION_PICTURE}")


def _summary(calibration) -> str:
    scores = "  ".join(f"{name} {value:.4f}" for name, value in calibration.scores.items())
    target = "" if calibration.target is None else f" (target {calibration.target:g})"
    return f"threshold {calibration.threshold:.6g} by {calibration.rule}{target}: {scores}"
