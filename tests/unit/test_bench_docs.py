"""``python -m tools.bench --write-docs`` (``tools/bench_docs.py``): the figures table, dated,
replaces only the generated section of docs/performance.md. Pure: the bench is not run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tools.bench import Row
from tools.bench_docs import BEGIN, DOCS, END, render_section, replace_section, write_docs

ROWS = [
    Row("same-account create, R=2", "EC2 calls", 16, "<= 16", True, "4 mutating"),
    Row("cold init", "floor: boto3 + ec2 client (ms)", 541.04),
    Row("cold init", "AddRoutesFunction / floor", 1.34, "<= 1.3", False, "877 ms | median of 7"),
    Row("package (zipped)", "DependenciesLayer (KB)", 5836.5, detail="shared\nby every function"),
]


def test_the_section_has_the_date_the_command_the_machine_and_every_figure() -> None:
    # When a run's rows are rendered
    section = render_section(
        ROWS,
        day=date(2026, 12, 7),
        command="python -m tools.bench --write-docs --no-network",
        wall_seconds=312.4,
        machine="2 cores, x86_64, Python 3.13.0",
    )

    # Then between the markers: the date, the command, the machine, the wall time, the misses,
    # and a Markdown table with one row per figure, cells on one line with | escaped
    lines = section.splitlines()
    assert (lines[0], lines[-1]) == (BEGIN, END)
    assert "### Last written run: 2026-12-07" in lines
    assert (
        "`python -m tools.bench --write-docs --no-network` on 2 cores, x86_64, Python 3.13.0: "
        "wall time 312 s, 1 budget(s) missed." in lines
    )
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| scenario | figure | value | budget | ok | detail |"
    assert table[1:] == [
        "| same-account create, R=2 | EC2 calls | 16 | <= 16 | yes | 4 mutating |",
        "| cold init | floor: boto3 + ec2 client (ms) | 541.04 |  |  |  |",
        "| cold init | AddRoutesFunction / floor | 1.34 | <= 1.3 | **NO** "
        "| 877 ms \\| median of 7 |",
        "| package (zipped) | DependenciesLayer (KB) | 5836.5 |  |  | shared by every function |",
    ]


def test_only_the_section_between_the_markers_is_replaced() -> None:
    # Given a page with prose around an old section
    page = f"# Performance\n\nprose before\n\n{BEGIN}\nold figures\n{END}\n\nprose after\n"

    # When a new section replaces it, twice
    once = replace_section(page, f"{BEGIN}\nnew\n{END}")
    twice = replace_section(once, f"{BEGIN}\nnew\n{END}")

    # Then the prose stays as it was, the old figures are gone, and a rerun changes nothing
    assert once == f"# Performance\n\nprose before\n\n{BEGIN}\nnew\n{END}\n\nprose after\n"
    assert twice == once


@pytest.mark.parametrize(
    "page", ["no markers", f"{BEGIN}\n{BEGIN}\n{END}", f"{END}\nx\n{BEGIN}", f"{BEGIN} only"]
)
def test_a_page_without_one_pair_of_markers_is_refused_not_appended_to(page: str) -> None:
    with pytest.raises(ValueError, match="bench:"):
        replace_section(page, f"{BEGIN}\nnew\n{END}")


def test_write_docs_rewrites_a_copy_of_the_real_page(tmp_path: Path) -> None:
    # Given a copy of docs/performance.md (it has the markers once)
    copy = tmp_path / "performance.md"
    copy.write_text(DOCS.read_text(encoding="utf-8"), encoding="utf-8")
    before = copy.read_text(encoding="utf-8")

    # When the bench writes its figures there
    write_docs(ROWS, "python -m tools.bench --write-docs", 10.0, copy, date(2026, 12, 7))

    # Then what is outside the markers is unchanged
    after = copy.read_text(encoding="utf-8")
    assert "| cold init | AddRoutesFunction / floor | 1.34 |" in after
    assert before.split(BEGIN)[0] == after.split(BEGIN)[0]
    assert before.split(END)[1] == after.split(END)[1]
