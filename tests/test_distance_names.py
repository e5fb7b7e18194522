"""The distance names are defined once (tripletlab.distance_names): the Keras and NumPy
distances, the compat modules and the registry read them there, and no comparison in the code
spells one out again."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import imports_keras
from tripletlab import distance_names, distances, numpy_distances
from tripletlab.compat import loss_options, tfa

SRC = Path(__file__).resolve().parents[1] / "src" / "tripletlab"
NAMES = set(distance_names.PAIRED_DISTANCES)


def test_one_definition():
    assert distances.DISTANCES is distance_names.DISTANCES
    assert distances.PAIRED_DISTANCES is distance_names.PAIRED_DISTANCES
    assert distances.NORMALIZED_DISTANCES is distance_names.NORMALIZED_DISTANCES
    assert numpy_distances.DISTANCES is distance_names.PAIRED_DISTANCES
    assert numpy_distances.COSINE_DISTANCES is distance_names.NORMALIZED_DISTANCES
    assert set(tfa.DISTANCE_METRICS) <= set(distance_names.DISTANCES)
    assert set(loss_options.OMOINDROT_SQUARED) <= set(distance_names.DISTANCES)
    assert set(loss_options.TRIPLET_TOOLS_METRICS) <= set(distance_names.DISTANCES)


def compared_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, name)`` of every distance name written as a literal in a comparison
    (``d == "L2"``, ``d in ("L2", "angular")``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            elements = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [
                operand]
            found += [(element.lineno, element.value) for element in elements
                      if isinstance(element, ast.Constant) and element.value in NAMES]
    return found


def test_no_comparison_spells_a_distance_name():
    found = [f"{path.relative_to(SRC)}:{line}: {name!r}"
             for path in sorted(SRC.rglob("*.py"))
             for line, name in compared_literals(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []


def test_the_check_catches_what_it_looks_for():
    tree = ast.parse('if d == "L2" or d in ("angular", "x"):\n    pass\nf(distance="L2")\n')
    assert compared_literals(tree) == [(1, "L2"), (1, "angular")]


def test_the_names_and_numpy_distances_import_no_keras(tmp_path):
    assert not imports_keras("tripletlab.distance_names, tripletlab.numpy_distances, "
                             "tripletlab.distances, tripletlab.compat.tfa", tmp_path)
