"""``tripletlab visualize``: pictures of embeddings.

Writes scatter plots (PCA, t-SNE, and UMAP when umap-learn is installed), a neighbour grid
(with images), training curves (with a ``log.csv``) and the TensorBoard projector files.
With ``--experiment DIR``: reads ``DIR/embeddings/`` and ``DIR/log.csv``, writes ``DIR/plots/``
and ``DIR/projector/``. With ``--embeddings``/``--labels``: writes into ``--output``.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from pathlib import Path

from tripletlab.errors import ConfigError, UserFileNotFoundError


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "visualize", allow_abbrev=False, help="scatter plots, neighbours, projector files",
        description=__doc__.split("\n\n")[0])
    source = parser.add_argument_group("Input")
    source.add_argument("--experiment", metavar="DIR", help="an experiment folder")
    source.add_argument("--embeddings", metavar="FILE", help="embeddings .npy")
    source.add_argument("--labels", metavar="FILE", help="labels .npy")
    source.add_argument("--images", metavar="FILE", help="optional images .npy (one per row)")
    out = parser.add_argument_group("Output")
    out.add_argument("--output", metavar="DIR",
                     help="output folder (default: the experiment folder)")
    out.add_argument("--methods", default=None,
                     help="comma-separated projections (default: pca,tsne[,umap])")
    out.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from tripletlab import experiment as ex
    from tripletlab._checks import check_choice
    from tripletlab.cli import load_array

    methods = None
    if args.methods is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for method in methods:
            check_choice("methods", method, ("pca", "tsne", "umap"))
    if args.experiment is not None:
        if args.embeddings is not None or args.labels is not None:
            raise ConfigError("Expected either --experiment or --embeddings/--labels. "
                              "Received: both.")
        experiment = ex.Experiment(args.experiment)
        if not experiment.folder.is_dir():
            raise UserFileNotFoundError(f"Expected `--experiment` to be a folder. Received: "
                                        f"{args.experiment!r}, which does not exist.")
        output = Path(args.output) if args.output else experiment.folder
        # Written into the experiment: under its lock, and recorded in its manifest.
        writing = (experiment.writing("visualize") if experiment.contains(output)
                   else contextlib.nullcontext())
        with writing as record:
            print(f"Reading {experiment.folder / ex.EMBEDDINGS_DIR}", flush=True)
            embeddings, labels, images = ex.load_experiment_embeddings(experiment)
            check_lengths(embeddings, labels, images, args)
            return draw(embeddings, labels, images, output / ex.PLOTS_DIR,
                        output / ex.PROJECTOR_DIR, experiment.path(ex.LOG_FILE), methods,
                        args.seed, record)
    if args.embeddings is None or args.labels is None or args.output is None:
        raise ConfigError("Expected --experiment, or --embeddings, --labels and --output. "
                          "Received: an incomplete set.")
    embeddings = load_array(args.embeddings, "--embeddings")
    labels = load_array(args.labels, "--labels")
    images = load_array(args.images, "--images") if args.images else None
    check_lengths(embeddings, labels, images, args)
    if images is not None:
        images = ex.thumbnails(images)
    return draw(embeddings, labels, images, Path(args.output),
                Path(args.output) / ex.PROJECTOR_DIR, None, methods, args.seed)


def draw(embeddings, labels, images, plots: Path, projector: Path, log_csv, methods,
         seed: int, record=None) -> int:
    """Writes the pictures into ``plots`` and the projector files into ``projector``
    (``record``: called with each file's path before it is written, or ``None``)."""
    from tripletlab.visualization import export_projector, write_plots

    def announce(text: str) -> None:
        print(text, flush=True)

    written = write_plots(plots, embeddings, labels, images=images, log_csv=log_csv,
                          methods=methods, seed=seed, announce=announce, record=record)
    announce(f"Writing TensorBoard projector files to {projector}")
    export_projector(projector, embeddings, labels, images=images, seed=seed, record=record)
    print(f"Wrote {len(written)} pictures to {plots} and the projector files to {projector} "
          f"(tensorboard --logdir {shlex.quote(str(projector))})")
    return 0


def check_lengths(embeddings, labels, images, args: argparse.Namespace) -> None:
    """Refuses inputs that do not describe the same points (before anything is written).

    Raises:
      ValueError: embeddings not ``[N, D]``, or labels / images not ``N`` long; the message
        names the file.
    """
    source = args.experiment or args.embeddings
    if getattr(embeddings, "ndim", 0) != 2:
        raise ConfigError(f"Expected the embeddings {source!r} to be an array [N, D]. "
                          f"Received: shape {getattr(embeddings, 'shape', None)}.")
    count = embeddings.shape[0]
    for name, array, flag in (("labels", labels, args.labels), ("images", images, args.images)):
        if array is None:
            continue
        if name == "images" and array.ndim not in (3, 4):
            raise ConfigError(f"Expected the images {flag!r} to be an array [N, H, W] or "
                              f"[N, H, W, C]. Received: shape {array.shape}.")
        if getattr(array, "ndim", 0) < 1 or array.shape[0] != count:
            where = f" in {flag!r}" if flag else ""
            raise ConfigError(f"Expected one {name[:-1]} per embedding ({count}){where}. "
                              f"Received: {name} of shape {getattr(array, 'shape', None)}.")
