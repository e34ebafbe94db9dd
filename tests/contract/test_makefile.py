"""The Makefile says what it installs before installing it: a first `make test` or `make lint`
on a fresh clone spends a minute or more in pip (the tools' venv, checkov's venv, this project)
or apt-get (chromium), and a silent minute reads as a hang."""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
INSTALLS = re.compile(r"\bpip install\b|\bapt-get install\b|-m venv\b")
#: Rules a person runs by name to install on purpose: the name says it.
ON_PURPOSE = {"lock"}


def recipes() -> dict[str, str]:
    """Each rule's target and its recipe, continuation lines joined."""
    found: dict[str, str] = {}
    target = None
    text = MAKEFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("\t") and target is not None:
            found[target] += line + "\n"
        elif re.match(r"^[^\t#\s][^=]*?:(?!=)", line):
            target = line.split(":", 1)[0].strip()
            found[target] = ""
        elif line.strip() and not line.startswith("\t"):
            target = None
    return found


def test_every_install_says_so_first() -> None:
    installing = {t: r for t, r in recipes().items() if INSTALLS.search(r)}
    assert installing
    assert {"$(DEPS_STAMP)", "$(STAMP)", "$(CHECKOV_STAMP)", "browser"} <= set(installing)
    for target, recipe in installing.items():
        if target in ON_PURPOSE:
            continue
        said = re.search(r"echo \"Installing [^\"]+\"", recipe)
        assert said, f"{target}: installs without saying what"
        # A command, not a message: quoted text blanked out, positions kept.
        commands = re.sub(r'"[^"]*"', lambda m: " " * len(m.group()), recipe)
        first_install = INSTALLS.search(commands)
        assert first_install is not None
        assert said.start() < first_install.start(), f"{target}: says so after installing"
