"""The committed state machines are what scripts/write_asl.py writes from their description."""

from __future__ import annotations

from pathlib import Path

import pytest

import scripts.write_asl as asl

STATEMACHINE = Path(__file__).resolve().parents[2] / "statemachine"


def test_every_machine_is_generated() -> None:
    # Given the ASL files in statemachine/
    committed = sorted(p.name for p in STATEMACHINE.glob("*.asl.json"))
    # Then each has its description, and nothing else is described
    assert committed == sorted(asl.MACHINES)


@pytest.mark.parametrize("name", sorted(asl.MACHINES))
def test_committed_asl_matches_its_description(name: str) -> None:
    # Given a committed machine
    committed = (STATEMACHINE / name).read_text()
    # Then it is what the generator writes now (edit scripts/write_asl.py, then `make asl`)
    assert committed == asl.render(asl.MACHINES[name]), f"statemachine/{name} is stale: make asl"
