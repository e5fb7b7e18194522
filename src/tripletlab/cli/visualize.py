"""``tripletlab visualize``: pictures of embeddings.

Writes scatter plots (PCA, t-SNE, and UMAP when umap-learn is installed), a neighbour grid
(with images), training curves (with a ``log.csv``) and the TensorBoard projector files.
With ``--experiment DIR``: reads ``DIR/embeddings/`` and ``DIR/log.csv``, writes ``DIR/plots/``
and ``DIR/projector/``. With ``--embeddings``/``--labels``: writes into ``--output``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("visualize", allow_abbrev=False, help="scatter plots, neighbours, projector files",
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
    from tripletlab._checks import check_choice
    from tripletlab.cli import load_array
    from tripletlab.train import experiment as ex
    from tripletlab.visualization import export_projector

    methods = None
    if args.methods is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for method in methods:
            check_choice("methods", method, ("pca", "tsne", "umap"))
    if args.experiment is not None:
        if args.embeddings is not None or args.labels is not None:
            raise ValueError("Expected either --experiment or --embeddings/--labels. "
                             "Received: both.")
        experiment = ex.Experiment(args.experiment)
        if not experiment.folder.is_dir():
            raise FileNotFoundError(f"Expected `--experiment` to be a folder. Received: "
                                    f"{args.experiment!r}, which does not exist.")
        embeddings, labels, images = ex.load_experiment_embeddings(experiment)
        output = Path(args.output) if args.output else experiment.folder
        plots, projector = output / ex.PLOTS_DIR, output / ex.PROJECTOR_DIR
        log_csv = experiment.path(ex.LOG_FILE)
    else:
        if args.embeddings is None or args.labels is None or args.output is None:
            raise ValueError("Expected --experiment, or --embeddings, --labels and --output. "
                             "Received: an incomplete set.")
        embeddings = load_array(args.embeddings, "--embeddings")
        labels = load_array(args.labels, "--labels")
        images = load_array(args.images, "--images") if args.images else None
        if images is not None:
            images = ex.thumbnails(images)
        plots, projector, log_csv = Path(args.output), Path(args.output) / ex.PROJECTOR_DIR, None
    written = ex.write_plots(plots, embeddings, labels, images=images, log_csv=log_csv,
                             methods=methods, seed=args.seed)
    export = export_projector(projector, embeddings, labels, images=images, seed=args.seed)
    for path in written:
        print(f"wrote {path}")
    print(f"wrote TensorBoard projector files to {projector} "
          f"(tensorboard --logdir {projector}); {type(export).__name__}")
    return 0
