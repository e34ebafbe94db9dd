"""``python -m tools.bench --write-docs``: the run's figures, dated, into docs/performance.md.

Only the section between :data:`BEGIN` and :data:`END` is replaced; the rest of the page (the
budgets explained, older dated figures kept for comparison) is prose people write. Pure but for
:func:`write_docs`, so that the rendering is tested without running the bench.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Protocol

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


class BenchRow(Protocol):
    """A row of the bench's report (``tools.bench.Row``)."""

    scenario: str
    figure: str
    value: float | str
    budget: str
    ok: bool | None
    detail: str


def _cell(value: object) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def render_section(
    rows: Iterable[BenchRow],
    *,
    day: date,
    command: str,
    wall_seconds: float,
    machine: str | None = None,
) -> str:
    """The generated section, markers included: the date, the command, the machine, and one
    table row per figure (a missed budget says NO)."""
    rows = list(rows)
    missed = sum(1 for r in rows if r.ok is False)
    if machine is None:
        machine = (
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        )
    lines = [
        BEGIN,
        "<!-- Written by `python -m tools.bench --write-docs` (tools/bench_docs.py): the next run "
        "with --write-docs replaces everything between these markers. -->",
        f"### Last written run: {day.isoformat()}",
        "",
        f"`{command}` on {machine}: wall time {wall_seconds:.0f} s, {missed} budget(s) missed.",
        "",
        "| scenario | figure | value | budget | ok | detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "" if r.ok is None else ("yes" if r.ok else "**NO**")
        cells = (r.scenario, r.figure, r.value, r.budget, ok, r.detail)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def replace_section(document: str, section: str) -> str:
    """``document`` with what lies between the markers (the markers included) replaced by
    ``section``; a page without exactly one pair of markers, in order, is a ValueError (never
    appended to: where the figures go is the page's author's choice)."""
    if document.count(BEGIN) != 1 or document.count(END) != 1:
        raise ValueError(f"expected exactly one {BEGIN} and one {END}")
    start, end = document.index(BEGIN), document.index(END)
    if end < start:
        raise ValueError(f"{END} comes before {BEGIN}")
    return document[:start] + section + document[end + len(END) :]


def write_docs(
    rows: Iterable[BenchRow],
    command: str,
    wall_seconds: float,
    path: Path = DOCS,
    day: date | None = None,
) -> Path:
    """Replace the generated section of ``path`` with this run's figures."""
    section = render_section(
        rows, day=day or date.today(), command=command, wall_seconds=wall_seconds
    )
    path.write_text(replace_section(path.read_text(encoding="utf-8"), section), encoding="utf-8")
    return path
