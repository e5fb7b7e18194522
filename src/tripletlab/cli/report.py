"""``tripletlab report``: one self-contained offline HTML page for an experiment folder."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    import contextlib

    from tripletlab import experiment as ex

    experiment = ex.Experiment(args.experiment)
    output = Path(args.output) if args.output else experiment.path(ex.REPORT_FILE)
    # Written into the experiment: under its lock, and recorded in its manifest.
    writing = (experiment.writing("report") if experiment.contains(output)
               else contextlib.nullcontext())
    with writing as record:
        from tripletlab.visualization import write_report  # seconds: after the lock

        parts = report_parts(experiment, args.tsne_max_points)
        print(f"Writing the report of {args.experiment}"
              + (f" ({', '.join(parts)})" if parts else ""), flush=True)
        path = write_report(args.experiment, args.output, max_points=args.max_points,
                            tsne_max_points=args.tsne_max_points, seed=args.seed,
                            record=record)
    print(f"Report written to {path}")
    return 0


def report_parts(experiment, tsne_max_points: int) -> list[str]:
    """What the report of ``experiment`` will show, from the files it holds now."""
    from tripletlab import experiment as ex

    present = {name: experiment.path(name).is_file()
               for name in (ex.CONFIG_FILE, ex.METRICS_FILE, ex.LOG_FILE, ex.TEST_EMBEDDINGS)}
    parts = []
    if present[ex.CONFIG_FILE]:
        parts.append("configuration")
    if present[ex.METRICS_FILE]:
        parts.append("metrics")
    if present[ex.LOG_FILE]:
        parts.append("training curves")
    if present[ex.TEST_EMBEDDINGS]:
        parts.append("PCA" + (f", t-SNE of up to {tsne_max_points:,} points"
                              if tsne_max_points else ""))
    if not present[ex.METRICS_FILE] and experiment.has_manifest():
        parts.append("no metrics yet: the run has not finished")
    return parts
