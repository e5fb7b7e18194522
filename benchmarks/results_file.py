"""The JSON results file every benchmark script here writes with ``--output FILE.json``.

One file holds one run of one script: where it ran (CPU model, cores, memory, OS, Python and the
versions of Keras, TensorFlow, JAX, PyTorch and NumPy), when (UTC), on which commit (short hash,
``+dirty`` when tracked files differ from it), the exact command line (``argv``, and the same
command relative to the repository root, to re-measure), the script's settings and its figures
(``cells``: one object per measured cell). ``write_benchmarks_page.py`` turns the files committed
under ``benchmarks/results/`` into ``docs/benchmarks.md``.

Usage in a script::

    import results_file

    results_file.add_output_argument(parser)
    args = parser.parse_args()
    record = results_file.Run("losses")          # in the parent process, before measuring
    ...
    record.write(args.output, settings={...}, cells=[...])   # nothing when --output is not given

Only the standard library is imported; package versions come from the installed metadata, so
writing a file imports no backend.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata

SCHEMA = 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
# package -> distributions that provide it (the first one installed counts)
PACKAGES = {"keras": ("keras",), "tensorflow": ("tensorflow", "tensorflow-cpu"),
            "jax": ("jax",), "jaxlib": ("jaxlib",), "torch": ("torch",), "numpy": ("numpy",),
            "tripletlab": ("tripletlab",)}
# environment variables that change what a benchmark measures; those set are recorded and put
# in front of the command that re-measures
ENVIRONMENT = ("KERAS_BACKEND", "OMP_NUM_THREADS", "MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_",
               "MALLOC_TRIM_THRESHOLD_", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES")


def add_output_argument(parser, *aliases):
    """Adds ``--output FILE.json`` (and ``aliases``, e.g. an older ``--json``) to ``parser``."""
    parser.add_argument("--output", *aliases, dest="output", metavar="FILE.json",
                        help="write the results as JSON to this file (machine, date, commit, "
                             "command line and every measured cell; see "
                             "benchmarks/results_file.py), e.g. benchmarks/results/NAME.json")


def machine():
    """The machine: CPU model, cores, memory, OS, Python and package versions."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "os": _os_name(), "python": platform.python_version(),
            "packages": {name: _version(distributions) for name, distributions in PACKAGES.items()}}


def git_commit(root=ROOT):
    """``(short hash, changed paths)`` of the checkout at ``root``: the hash gets ``+dirty`` when
    tracked files differ from the commit (untracked files, and the result files under
    ``benchmarks/results/`` that one run rewrites before the next, do not count).
    ``("unknown", [])`` outside a git checkout."""
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD").strip()
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown", []
    changed = sorted(line[3:] for line in status.splitlines()
                     if line.strip() and not line[3:].startswith("benchmarks/results/"))
    return (f"{commit}+dirty" if changed else commit), changed


def command_line(argv=None, cwd=None, environment=None):
    """The command that re-runs ``argv`` from the repository root, as one shell string.

    ``python`` stands for the interpreter; the script and every argument that is a path (alone,
    after ``--option=`` or after ``NAME=``) are made relative to the repository root; the
    variables of :data:`ENVIRONMENT` that are set come first (``KERAS_BACKEND=jax python ...``).
    """
    argv = list(sys.argv if argv is None else argv)
    cwd = os.getcwd() if cwd is None else cwd
    environment = _environment() if environment is None else environment
    words = [f"{key}={value}" for key, value in sorted(environment.items())]
    words.append("python")
    words.append(_relative(argv[0], cwd, always=True))
    for argument in argv[1:]:
        prefix, separator, value = argument.rpartition("=")
        if separator and (prefix.startswith("-") or prefix.isidentifier()):
            words.append(prefix + separator + _relative(value, cwd))
        else:
            words.append(_relative(argument, cwd))
    return shlex.join(words)


class Run:
    """What a results file says about one run, taken when the run starts."""

    def __init__(self, benchmark, argv=None):
        self.benchmark = benchmark
        self.started = _now()
        self.commit, self.changed = git_commit()
        self.argv = list(sys.argv if argv is None else argv)
        self.cwd = os.getcwd()
        self.environment = _environment()

    def header(self):
        """Everything but the figures, as a dict."""
        return {"schema": SCHEMA, "benchmark": self.benchmark,
                "script": _relative(self.argv[0], self.cwd, always=True),
                "date": self.started, "finished": _now(), "commit": self.commit,
                "changed_files": self.changed, "argv": self.argv,
                "cwd": os.path.relpath(self.cwd, ROOT), "environment": self.environment,
                "command": command_line(self.argv, self.cwd, self.environment),
                "machine": machine()}

    def write(self, path, settings, cells, **more):
        """Writes the file at ``path`` (folders made as needed); nothing when ``path`` is None.
        Returns the path written, or None."""
        if not path:
            return None
        document = {**self.header(), "settings": settings, **more, "cells": cells}
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, ensure_ascii=False)
            stream.write("\n")
        print(f"results written to {path}", file=sys.stderr, flush=True)
        return path


def milliseconds(seconds):
    """Seconds -> milliseconds rounded to the microsecond (for ``*_ms`` fields)."""
    return round(1000.0 * seconds, 3)


def _relative(value, cwd, always=False):
    """``value`` relative to the repository root when it is a path (``always``: it is) in the
    folder that holds the checkout (``../shared/...``); other absolute paths stay as they are."""
    if not value:
        return value
    path = os.path.normpath(value if os.path.isabs(value) else os.path.join(cwd, value))
    if not (always or os.path.isabs(value)
            or (os.path.normpath(cwd) != ROOT and _looks_like_path(value, path))):
        return value
    relative = os.path.relpath(path, ROOT)
    if relative.startswith(os.path.join(os.pardir, os.pardir)):
        return path
    return relative


def _looks_like_path(value, path):
    return os.path.exists(path) or os.sep in value or value.endswith((".json", ".npz", ".toml"))


def _environment():
    return {key: os.environ[key] for key in ENVIRONMENT if key in os.environ}


def _git(root, *arguments):
    return subprocess.run(["git", "-C", root, *arguments], check=True, capture_output=True,
                          text=True).stdout


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(distributions):
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _os_name():
    name = platform.system()
    try:
        with open("/etc/os-release", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("PRETTY_NAME="):
                    name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{name}, {platform.system()} {platform.release()} {platform.machine()}"
