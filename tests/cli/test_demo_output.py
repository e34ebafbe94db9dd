"""`make demo` and `make demo-mesh` write no ANSI code into a pipe or a file."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tools import demo, demo_mesh


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_demo_colours_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert demo.colours(io.StringIO()) == ("", "", "", "", "")
    assert all(code.startswith("\x1b[") for code in demo.colours(Terminal()))
    monkeypatch.setenv("NO_COLOR", "1")
    assert demo.colours(Terminal()) == ("", "", "", "", "")


def test_demo_says_when_a_state_was_entered_not_a_duration(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(demo, "DIM", "")
    monkeypatch.setattr(demo, "RESET", "")
    demo.show_state("AddRoutes", 1.5)
    assert capsys.readouterr().out == "  at   1.50s  AddRoutes\n"


def test_demo_mesh_is_plain_in_a_pipe() -> None:
    style = demo_mesh.Style.for_stream(io.StringIO())
    assert "\x1b" not in "".join(vars(style).values())
