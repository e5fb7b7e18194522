"""docs/benchmarks.md (and README.md's benchmark block) are what benchmarks/results/*.json give.

The generator, ``benchmarks/write_benchmarks_page.py``, imports the standard library alone; these
tests load it from its file and run it in this process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "write_benchmarks_page.py"
PAGE = ROOT / "docs" / "benchmarks.md"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("write_benchmarks_page", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_page_is_what_the_results_give(generator):
    assert generator.main(["--check"]) == 0


def test_a_tampered_page_fails_the_check(generator, tmp_path, capsys):
    page = tmp_path / "benchmarks.md"
    text = PAGE.read_text(encoding="utf-8")
    tampered = text.replace("×", "x", 1)
    assert tampered != text
    page.write_text(tampered, encoding="utf-8")
    assert generator.main(["--check", "--page", str(page)]) == 1
    assert "write_benchmarks_page.py" in capsys.readouterr().err


def test_same_results_same_markdown(generator):
    first, second = generator.load_results(), generator.load_results()
    assert generator.render_page(first) == generator.render_page(second)
    assert generator.render_readme_block(first) == generator.render_readme_block(second)


def test_readme_without_markers_fails_clearly(generator, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# tripletlab\n", encoding="utf-8")
    page = tmp_path / "benchmarks.md"
    assert generator.main(["--page", str(page), "--readme", str(readme)]) == 2
    assert "<!-- benchmarks:start -->" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "# tripletlab\n"
    assert page.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")


def test_readme_block_is_replaced_between_the_markers(generator, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- benchmarks:start -->\nold\n<!-- benchmarks:end -->\nafter\n",
                      encoding="utf-8")
    assert generator.main(["--page", str(tmp_path / "page.md"), "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("before\n<!-- benchmarks:start -->\n")
    assert text.endswith("\n<!-- benchmarks:end -->\nafter\n")
    assert "old" not in text and "| P@1 |" in text
    assert generator.main(["--check", "--page", str(tmp_path / "page.md"),
                           "--readme", str(readme)]) == 0


def test_index_section_has_a_row_per_cell_and_shows_failures(generator):
    document = generator.load_results()["index"]
    section = generator.index_section(document)
    assert section.startswith("## Gallery index: build, query throughput and recall@10\n")
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(document["cells"])
    assert document["command"] in section
    failed = {**document, "cells": [{**document["cells"][0], "error": "over 900 s"}]}
    assert "| over 900 s |" in generator.index_section(failed)
