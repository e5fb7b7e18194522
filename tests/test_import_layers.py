"""The import graph of ``src/tripletlab``: no cycle, and the lower layers import no higher one.

Every ``import`` and ``from ... import`` of every module is read with ``ast``, those inside
functions included (a factory that imports a class when called is an edge too), and resolved to
the tripletlab module it names (``from tripletlab.losses import registry`` names the module
``tripletlab.losses.registry``; ``from tripletlab.train import resolve_config`` the package
``tripletlab.train``). A package's ``__init__`` running before its modules is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "tripletlab"

# What each lower layer must not import, by package prefix.
FORBIDDEN = {
    "tripletlab.losses": ("tripletlab.compat", "tripletlab.train", "tripletlab.cli"),
}


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = SRC) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    return {module_name(path, root): path for path in sorted((root / PACKAGE).rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The tripletlab modules ``name`` (at ``path``) imports anywhere in its code."""

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names
                         if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else resolve(base))
    found.discard(None)
    found.discard(name)
    return found


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """``{module: the tripletlab modules it imports}`` for every module under ``root``."""
    paths = modules(root)
    return {name: imported_modules(name, path, set(paths)) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state:
                cycle = visit(target, path)
                if cycle:
                    return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            if cycle:
                return cycle
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of a forbidden layer (see :data:`FORBIDDEN`)."""
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return sorted(f"{source} -> {target}" for source, targets in graph.items()
                  for layer, forbidden in FORBIDDEN.items() if under(source, layer)
                  for target in targets if any(under(target, f) for f in forbidden))


def test_the_graph_is_read():
    graph = import_graph()
    # a module-level import and one inside a function (a factory's)
    assert "tripletlab.losses.margins" in graph["tripletlab.losses.classes"]
    assert "tripletlab.losses.classes" in graph["tripletlab.losses.registry"]
    assert len(graph) > 50


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_losses_import_no_higher_layer():
    assert layer_violations(import_graph()) == []


@pytest.mark.parametrize("case", ["cycle", "layer"])
def test_the_checks_catch_what_they_look_for(tmp_path, case):
    # the shape of the old registry: compat_loss and the registry importing each other, the
    # registry importing compat (inside a function)
    files = {
        "tripletlab/__init__.py": "",
        "tripletlab/losses/__init__.py": "",
        "tripletlab/compat/__init__.py": "",
        "tripletlab/losses/registry.py": (
            "def factory():\n    from tripletlab.compat.compat_loss import CompatLoss\n"),
        "tripletlab/compat/compat_loss.py": (
            "from tripletlab.losses.registry import TABLE\n" if case == "cycle" else ""),
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    graph = import_graph(tmp_path)
    assert layer_violations(graph) == [
        "tripletlab.losses.registry -> tripletlab.compat.compat_loss"]
    expected = (["tripletlab.compat.compat_loss", "tripletlab.losses.registry",
                 "tripletlab.compat.compat_loss"] if case == "cycle" else None)
    assert find_cycle(graph) == expected
