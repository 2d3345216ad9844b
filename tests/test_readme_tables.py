"""The README's copies of committed results tables are those tables, row for row.

A figure in the README comes from a committed results file (the project's rule). Where the README
shows a results table whole, this test finds it by its header and compares it with the file that
its regenerating command writes, so a table regenerated without the README following fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Results tables the README shows whole: the committed file each is copied from.
COPIED_TABLES: tuple[str, ...] = ("docs/results/locomotion/e4/table.md", "docs/results/locomotion/td3/table.md")


def markdown_tables(text: str) -> list[list[str]]:
    """Every Markdown table of ``text``: its consecutive lines that start with ``|``."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_tables_are_read_as_runs_of_pipe_lines() -> None:
    text = "intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\nmore\n| c |\n"
    assert markdown_tables(text) == [["| a | b |", "|---|---|", "| 1 | 2 |"], ["| c |"]]


@pytest.mark.parametrize("source", COPIED_TABLES)
def test_the_readme_copy_of_a_results_table_is_the_committed_table(source: str) -> None:
    (committed,) = markdown_tables((ROOT / source).read_text())
    copies = [table for table in markdown_tables((ROOT / "README.md").read_text()) if table[0] == committed[0]]
    assert copies, f"README.md has no table with {source}'s header {committed[0]!r}"
    for copy in copies:
        assert copy == committed, (f"README.md's copy of {source} differs from it: paste the regenerated table "
                                   "into README.md")
