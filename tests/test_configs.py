"""The configuration files in configs/ resolve as their header comment says to run them.

Each file is read by ``load_config_file`` and checked by ``resolve_config`` with the flags of
the ``tripletlab train`` command in its header (a placeholder ``--data-file`` where it asks for
one), so a renamed or removed key, a value the checks refuse or an option the others make
unused fails here; ``model_options`` is bound to the model builder's signature. Nothing is
built or trained.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

from tripletlab.models import MODELS
from tripletlab.train.config import load_config_file, resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def _header(path):
    """The file's leading comment, without the ``#`` marks."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return "\n".join(lines)


def test_there_are_config_files():
    assert len(CONFIGS) >= 3, CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_file_resolves_as_documented(path):
    header = _header(path)
    assert f"tripletlab train --config configs/{path.name}" in header
    flags = {"data_file": "data.npz"} if "--data-file" in header else {}
    given = load_config_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an option the others leave unused
        config = resolve_config(given, flags)
    assert {name: getattr(config, name) for name in given} == given
    assert config.dataset == ("npz" if flags else given.get("dataset", "mnist-sample"))
    inspect.signature(MODELS[config.model]).bind((28, 28, 1), config.embedding_dim,
                                                 **config.model_arguments())
