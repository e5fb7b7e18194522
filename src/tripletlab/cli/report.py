"""``tripletlab report``: one self-contained offline HTML page for an experiment folder."""

from __future__ import annotations

import argparse


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "report", allow_abbrev=False, help="write report.html for an experiment",
        description=__doc__)
    parser.add_argument("--experiment", required=True, metavar="DIR", help="experiment folder")
    parser.add_argument("--output", metavar="FILE", help="default: DIR/report.html")
    parser.add_argument("--max-points", type=int, default=2000,
                        help="most points per scatter plot")
    parser.add_argument("--tsne-max-points", type=int, default=2000,
                        help="t-SNE only for samples up to this size (0: no t-SNE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from tripletlab.visualization import write_report

    steps = "metrics, curves, PCA" + (f", t-SNE of up to {args.tsne_max_points:,} points"
                                      if args.tsne_max_points else "")
    print(f"Writing the report of {args.experiment} ({steps})", flush=True)
    path = write_report(args.experiment, args.output, max_points=args.max_points,
                        tsne_max_points=args.tsne_max_points, seed=args.seed)
    print(f"Report written to {path}")
    return 0
