"""README.md and docs/*.md: written for users, with working links.

The pages say what tripletlab does, not how it was made: no notes on work sessions, rounds,
issue numbers, run labels such as ``[O]`` or ``[X″]``, machine load, internal design notes, or
absolute paths of one machine. Every relative link points to a file of the repository, and the
README stays short enough to read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
PAGE_IDS = [str(page.relative_to(ROOT)) for page in PAGES]

README_MAX_LINES = 320

# Words about how the project was made (case-insensitive).
HISTORY = {
    "work session": re.compile(r"\bsessions?\b", re.IGNORECASE),
    "round of work": re.compile(r"\brounds?\b", re.IGNORECASE),
    "issue number": re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    "load average": re.compile(r"\bload averages?\b", re.IGNORECASE),
    "one machine": re.compile(r"\bthis machine\b", re.IGNORECASE),
    "design notes": re.compile(r"DESIGN\.md", re.IGNORECASE),
    "absolute path": re.compile(r"/work/|/root/|/home/"),
}
# Run labels such as [O], [X″], [K⁗′] or [T3]; looked for outside code, where shapes such as
# `[B]` are written.
RUN_LABEL = re.compile(r"\[[A-Z]\d?[′″‴⁗]*\]")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:", "#")

# Pages that a script writes: a link to one may point ahead of it while its script is there.
GENERATED = {"docs/benchmarks.md": "benchmarks/write_benchmarks_page.py"}


def without_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans."""
    return CODE_SPAN.sub(" ", FENCE.sub(" ", text))


def history_notes(text: str) -> list[str]:
    """``"kind: match"`` for every phrase of ``text`` about how the project was made."""
    found = [f"{kind}: {match.group(0)!r}" for kind, pattern in HISTORY.items()
             for match in pattern.finditer(text)]
    found += [f"run label: {match.group(0)!r}"
              for match in RUN_LABEL.finditer(without_code(text))]
    return found


def broken_links(page: Path, text: str) -> list[str]:
    """The relative link targets of ``page`` (anchors ignored) that are not files or folders."""
    broken = []
    for match in LINK.finditer(without_code(text)):
        target = match.group(1)
        if target.startswith(EXTERNAL):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (page.parent / path).resolve()
        if resolved.exists():
            continue
        relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else ""
        if relative in GENERATED and (ROOT / GENERATED[relative]).is_file():
            continue
        broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_pages_say_nothing_about_how_the_project_was_made(page):
    assert history_notes(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_point_to_files(page):
    assert broken_links(page, page.read_text(encoding="utf-8")) == []


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_keeps_the_test_command_and_the_benchmark_block():
    text = README.read_text(encoding="utf-8")
    # .ci/run runs this command; the README names it under its own heading.
    tests_section = text.split("\n## Running the tests\n", 1)
    assert len(tests_section) == 2 and "bash scripts/test.sh" in tests_section[1]
    # benchmarks/write_benchmarks_page.py fills the block between these markers.
    assert text.count("<!-- benchmarks:start -->") == 1
    assert text.count("<!-- benchmarks:end -->") == 1


def test_the_checks_catch_what_they_look_for(tmp_path):
    notes = history_notes("Measured this session [X″], the last round (issue 9), load average "
                          "6.4 on /work/main; see DESIGN.md. Labels `[B]` are fine.")
    assert len(notes) == 7
    page = tmp_path / "page.md"
    page.write_text("")
    assert broken_links(page, "[a](missing.md#x) [b](https://example.org) [c](#top) "
                              "`[d](in-code.md)` [e](page.md)") == ["missing.md#x"]


SOURCE_PATH = re.compile(r"`((?:tests|src|benchmarks|configs|scripts)/[^`\s:]+)")


def missing_source_paths(text: str) -> list[str]:
    """The repository paths a page names in code spans (``tests/...``, ``src/...``) that do not
    exist: a promise "tested in tests/x.py" must point at the test."""
    return sorted({path for path in SOURCE_PATH.findall(text)
                   if not any(char in path for char in "*{<")
                   and not (ROOT / path.rstrip("/.,")).exists()})


@pytest.mark.parametrize("page", [*PAGES, ROOT / "CONTRIBUTING.md"],
                         ids=[*PAGE_IDS, "CONTRIBUTING.md"])
def test_named_files_exist(page):
    assert missing_source_paths(page.read_text(encoding="utf-8")) == []


def test_missing_named_files_are_found():
    assert missing_source_paths("`tests/losses/test_nothing.py` `tests/test_docs.py` "
                                "`tests/*.py`") == ["tests/losses/test_nothing.py"]
