"""``tripletlab export``: a saved embedding model to ONNX, a TensorFlow SavedModel or LiteRT.

Writes the artefact at ``--output`` (a file; a folder for a SavedModel) and its serving spec at
``OUTPUT.serving.json``, after checking the artefact in its own runtime against the Keras model
on a sample of inputs: the data set given with ``--dataset`` / ``--data-file`` /
``--image-folder``, else the experiment's data when the model sits in an experiment folder, else
inputs drawn uniformly in [0, 1].
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from tripletlab.cli import add_backend_argument, add_data_arguments, select_backend
from tripletlab.cli.quiet_start import START_UP_NOTICES, filtered_standard_error, load_keras
from tripletlab.distance_names import DISTANCES
from tripletlab.errors import ConfigError
from tripletlab.serving.check_sample import DEFAULT_SAMPLES, SPLITS
from tripletlab.serving.formats import FORMATS


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "export", allow_abbrev=False,
        help="export a saved model to ONNX, TensorFlow SavedModel or LiteRT, checked",
        description=__doc__.split("\n\n")[0])
    group = parser.add_argument_group("Model")
    group.add_argument("--model", required=True, metavar="FILE", help=".keras model file")
    add_backend_argument(group)
    out = parser.add_argument_group("Output")
    out.add_argument("--format", required=True, choices=FORMATS,
                     help="onnx (a file), tf_saved_model (a folder) or litert (a .tflite file)")
    out.add_argument("--output", required=True, metavar="PATH",
                     help="the artefact's path; its serving spec goes to PATH.serving.json")
    out.add_argument("--distance", choices=DISTANCES, default=None,
                     help="the distance to compare embeddings with, written in the spec "
                          "(default: the experiment's, else L2)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an export tripletlab wrote at PATH (nothing else)")
    check = add_data_arguments(parser)
    check.add_argument("--split", choices=SPLITS, default="test",
                       help="the split the check's inputs are drawn from")
    check.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                       help="inputs the export is checked on (class-stratified)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    select_backend(args.backend)
    keras = load_keras()
    from tripletlab.cli import has_data_arguments, load_data, load_embedding_model
    from tripletlab.model_origin import (
        experiment_config,
        experiment_data,
        experiment_of,
    )
    from tripletlab.serving.artefact_files import check_output
    from tripletlab.serving.check_sample import data_sample, uniform_sample
    from tripletlab.serving.export import export_model
    from tripletlab.serving.formats import TF_SAVED_MODEL, check_export_support

    backend = keras.backend.backend()
    check_export_support(args.format, backend)
    if args.format == TF_SAVED_MODEL and backend != "tensorflow":
        with filtered_standard_error(START_UP_NOTICES):  # it writes and checks the SavedModel
            import tensorflow  # noqa: F401
    if args.samples < 1:
        raise ConfigError(f"Expected `--samples` >= 1. Received: {args.samples}.")
    output = Path(args.output)
    check_output(output, args.format, overwrite=args.overwrite, option="--output")
    experiment = experiment_of(args.model)
    config = experiment_config(experiment) if experiment is not None else None
    distance = choose_distance(args.distance, config)
    print(f"Loading {args.model} (backend {backend})", flush=True)
    model = load_embedding_model(args.model)
    if has_data_arguments(args):
        sample = data_sample(load_data(args), args.split, args.samples, args.seed)
    elif config is not None:
        print(f"Checking on the data of the experiment {experiment.folder}", flush=True)
        sample = data_sample(experiment_data(config), args.split, args.samples, args.seed)
    else:
        sample = uniform_sample(model.input_shape, args.samples)
        print("No data set given (--dataset, --data-file, --image-folder) and no experiment "
              f"beside the model: checking on {sample.source.split(':')[0]}", flush=True)
    # Written into the model's experiment folder: under its lock, and named in its manifest.
    writing = (experiment.writing("export", option="--output")
               if experiment is not None and experiment.contains(output)
               else contextlib.nullcontext())
    with writing as record:
        result = export_model(model, output, format=args.format, sample_inputs=sample,
                              distance=distance, overwrite=args.overwrite,
                              model_file=args.model, announce=_announce, record=record)
    spec = result.spec
    print(f"Embeddings of size {spec['embedding_size']}"
          f"{', L2-normalised' if spec['l2_normalized'] else ''}; compare them with "
          f"{spec['distance']}. Serving spec: {result.spec_path}")
    return 0


def choose_distance(given: str | None, config) -> str:
    """The distance of the serving spec: the experiment's (``mean-squared`` ranks as
    ``squared-L2``), else ``given``, else L2.

    Raises:
      ConfigError: ``given`` differs from the experiment's distance.
    """
    from tripletlab.distance_names import L2
    from tripletlab.distances import check_distance, ranking_distance

    if config is None:
        return check_distance(given if given is not None else L2)
    trained = ranking_distance(config.distance)
    if given is not None and given != trained:
        raise ConfigError(f"Expected `--distance` to be the experiment's distance {trained!r} "
                          f"(or to be left out). Received: --distance {given!r}.")
    return trained


def _announce(line: str) -> None:
    print(line, flush=True)
