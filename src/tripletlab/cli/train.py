"""``tripletlab train``: train an embedding model into an experiment folder.

Every option of :class:`tripletlab.train.config.TrainConfig` is also a flag (``--loss``,
``--learning-rate``, ``--no-plots``...). The options come, each overriding the one before, from
the defaults, a ``params.json`` in ``--model-dir`` (omoindrot's format), ``--config`` (TOML or
JSON) and the flags; the result is saved as ``MODEL_DIR/config.json``. ``--resume`` reads that
saved file instead and accepts only the flags in :data:`RESUME_FLAGS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tripletlab.cli import select_backend
from tripletlab.cli.quiet_start import load_keras
from tripletlab.compat.omoindrot_params import load_params_json
from tripletlab.errors import UserFileNotFoundError
from tripletlab.train.config import (
    FIELDS,
    GROUPS,
    ConfigError,
    default_value,
    field_kind,
    load_config_file,
    resolve_config,
)

_METAVARS = {"list": "A,B", "int": "N", "float": "X", "dict": "JSON", "jit": "{true,false,auto}"}
RESUME_FLAGS = ("epochs", "backend", "plots", "tensorboard", "eval_every", "export_samples",
                "retain_freed_memory", "distribute")


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "train", allow_abbrev=False, help="train a model (writes an experiment folder)",
        description="Train an embedding model into an experiment folder. Options come from the "
                    "defaults, then MODEL_DIR/params.json (omoindrot's format), then --config "
                    "(TOML or JSON), then the flags; the result is saved as "
                    "MODEL_DIR/config.json. --resume continues from the saved config and "
                    f"checkpoint (flags allowed: {', '.join(RESUME_FLAGS)}).")
    run_group = parser.add_argument_group("Run")
    run_group.add_argument("--config", metavar="FILE", help=".toml or .json configuration")
    run_group.add_argument("--model-dir", required=True, metavar="DIR",
                           help="experiment folder to write")
    run_group.add_argument("--overwrite", action="store_true",
                           help="replace a previous experiment in --model-dir")
    run_group.add_argument("--resume", action="store_true",
                           help="continue from --model-dir/checkpoints/last.keras")
    run_group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                           help="0 silent, 1 progress bar + a line per epoch, 2 a line per epoch")
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        meta = field.metadata
        help_text = meta["help"]
        if "choices" in meta:
            help_text += f" ({', '.join(meta['choices'])})"
        default = default_value(name)
        if isinstance(default, list):
            default = ",".join(default)
        if default is not None or "default" not in help_text:  # else the help says it
            help_text += f" [default: {default}]"
        group = groups[meta["group"]]
        if field_kind(name) == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS,
                               metavar=_METAVARS.get(field_kind(name), "NAME"), help=help_text)
    parser.set_defaults(handler=run)
    return parser


def flag_values(args: argparse.Namespace) -> dict:
    """The configuration keys given as flags, converted to their types."""
    values = {}
    for name in FIELDS:
        if hasattr(args, name):
            value = getattr(args, name)
            values[name] = value if isinstance(value, bool) else parse_flag_value(name, value)
    return values


def build_config(args: argparse.Namespace):
    """Resolves the layered configuration (no Keras import)."""
    flags = flag_values(args)
    model_dir = Path(args.model_dir)
    if args.resume:
        if args.config is not None:
            raise ConfigError("Expected no --config with --resume: the run continues with "
                              f"{model_dir / 'config.json'}. Received: --config {args.config}.")
        fixed = sorted(set(flags) - set(RESUME_FLAGS))
        if fixed:
            allowed = ", ".join("--" + f.replace("_", "-") for f in RESUME_FLAGS)
            raise ConfigError(f"Expected only {allowed} "
                              f"with --resume. Received: "
                              f"{', '.join('--' + f.replace('_', '-') for f in fixed)}.")
        saved = model_dir / "config.json"
        if not saved.is_file():
            raise UserFileNotFoundError(f"Expected {str(saved)!r} to resume from. Received: no "
                                        "such file.")
        return resolve_config(load_config_file(saved), flags, warn_unused=False)
    params = model_dir / "params.json"
    layers = [load_params_json(params) if params.is_file() else None]
    layers.append(load_config_file(args.config) if args.config is not None else None)
    layers.append(flags)
    return resolve_config(*layers)


def run(args: argparse.Namespace) -> int:
    from tripletlab.experiment import Experiment
    from tripletlab.train.distribution import multi_host_requested

    if multi_host_requested():
        # Several processes (hosts): which one writes --model-dir is known once they have
        # started; train() takes the folder's lock in that one.
        return train_locked(args, None)
    experiment = Experiment(args.model_dir)
    # The folder's lock first, before Keras loads: a folder that cannot be written, or that
    # another tripletlab process holds, is refused at once; held until train() returns.
    with experiment.lock("train"):
        return train_locked(args, experiment)


def train_locked(args: argparse.Namespace, experiment) -> int:
    """The rest of :func:`run`, holding the folder's lock (``experiment``; ``None`` when
    several processes train together and :func:`tripletlab.train.train` takes it)."""
    # What the folder holds allows this run (resume, overwrite...), before any work.
    if experiment is not None:
        experiment.check_target(resume=args.resume, overwrite=args.overwrite)
    config = build_config(args)
    if config.image_folder is not None:
        from tripletlab.data.image_folder import check_image_folder

        check_image_folder(config.image_folder)  # before seconds of importing a backend
    select_backend(config.backend)
    keras = load_keras()

    from tripletlab import allocator
    from tripletlab.train.run import train

    backend = keras.backend.backend()
    retain = config.retain_freed_memory
    if retain == "auto":
        retain = allocator.retains_by_default(backend)
    if retain and not allocator.retain_freed_memory():
        print("tripletlab train: note: retain_freed_memory needs glibc's malloc; this "
              "C library's allocator runs as it is", file=sys.stderr, flush=True)
    if args.verbose:
        # The first line says which backend runs (set by --backend, KERAS_BACKEND or Keras).
        print(f"Training on the {backend} backend (Keras {keras.__version__})", flush=True)
    train(config, experiment or args.model_dir, resume=args.resume, overwrite=args.overwrite,
          verbose=args.verbose)
    print(f"Experiment written to {args.model_dir}")
    return 0


def parse_flag_value(name: str, text: str) -> Any:
    """Converts the text of ``--name TEXT`` into the field's type.

    Raises:
      ConfigError: the text is not a value of that type.
    """
    kind = field_kind(name)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "list":
            return [item.strip() for item in text.split(",") if item.strip()]
        if kind == "dict":
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        if kind in ("bool", "jit"):
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            if kind == "jit" and lowered == "auto":
                return "auto"
            raise ValueError("not true/false")
    except ValueError:
        expected = {"int": "an integer", "float": "a number", "dict": "a JSON object",
                    "bool": "true or false", "jit": "true, false or auto"}[kind]
        raise ConfigError(f"Expected `--{name.replace('_', '-')}` to be {expected}. "
                          f"Received: {text!r}.") from None
    return text
