"""``tripletlab``: the command-line entry point (argparse, one module per subcommand).

Usage::

    tripletlab train --config configs/quickstart.toml --model-dir runs/quick
    tripletlab embed --model runs/quick/best.keras --dataset mnist-sample --output runs/emb
    tripletlab evaluate --embeddings runs/emb/embeddings.npy --labels runs/emb/labels.npy
    tripletlab export --model runs/quick/best.keras --format onnx --output runs/model.onnx
    tripletlab index --model runs/quick/best.keras --dataset mnist-sample --output runs/gallery
    tripletlab calibrate --index runs/gallery --dataset mnist-sample --target-precision 0.99
    tripletlab query --index runs/gallery --dataset mnist-sample -k 5 --picture runs/q.png
    tripletlab visualize --experiment runs/quick
    tripletlab report --experiment runs/quick

Errors in what the user gave (:class:`tripletlab.errors.TripletlabError`: a bad option or
value, a missing or damaged file, a missing optional extra) print one line to stderr and exit
with status 2 (set ``TRIPLETLAB_TRACEBACK=1`` to see the traceback instead); any other exception
is a bug and keeps its traceback. tripletlab's warnings print one line each
(``tripletlab train: warning: ...``).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from tripletlab import __version__
from tripletlab._checks import closest_key_hint
from tripletlab.cli import (
    calibrate,
    embed,
    evaluate,
    export,
    index,
    query,
    report,
    train,
    visualize,
)
from tripletlab.errors import TripletlabError

SUBCOMMANDS = (train, embed, evaluate, index, query, calibrate, export, visualize, report)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: ``tripletlab {train,embed,evaluate,visualize,report} ...``."""
    parser = argparse.ArgumentParser(
        prog="tripletlab", allow_abbrev=False,
        description="Train and inspect embedding models with triplet loss (Keras 3).")
    parser.add_argument("--version", action="version", version=f"tripletlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return parser


def _reject_unknown(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> None:
    """Exits (status 2) naming the unknown arguments and the closest valid flag."""
    subparsers = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction))
    flags = [flag for action in subparsers.choices[command]._actions
             for flag in action.option_strings]
    first = next((token.split("=")[0] for token in unknown if token.startswith("--")), None)
    hint = closest_key_hint(first, flags) if first else ""
    parser.error(f"unrecognized arguments for `tripletlab {command}`: {' '.join(unknown)}.{hint}")


def main(argv: list[str] | None = None) -> int:
    """Runs the command line and returns the exit status (0 ok, 2 usage/config error).

    Raises:
      Exception: anything but a :class:`~tripletlab.errors.TripletlabError` (a bug) propagates
        with its traceback.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _reject_unknown(parser, args.command, unknown)
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning):
            print(f"tripletlab {args.command}: warning: {' '.join(str(message).split())}",
                  file=sys.stderr, flush=True)
        else:
            default_show(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            default_show = warnings.showwarning
            warnings.showwarning = show_warning
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("tripletlab: interrupted", file=sys.stderr)
        return 130
    except TripletlabError as error:
        if os.environ.get("TRIPLETLAB_TRACEBACK"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"tripletlab {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
