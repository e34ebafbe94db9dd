"""The pure rules import data and other pure rules only: nothing that calls AWS (aws.py, ec2.py,
boto3 clients), no step module. Checked on the import graph itself, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = (
    "groups",
    "network",
    "planning",
    "policy",
    "ownership",
    "sides",
    "locations",
    "traffic",
    "states",
    "status",
    "actions",
)
#: Modules that call AWS, or are steps of a machine (they act).
ACTING = (
    "aws",
    "ec2",
    "locks",
    "peering",
    "teardown",
    "acceptance",
    "callbacks",
    "reconcile",
    "outcomes",
    "plan_store",
    "tag_start",
    "runtime",
    "handlers",
)


def imported_by(module: str) -> list[str]:
    code = (
        "import json, sys; import importlib; "
        f"importlib.import_module('vpc_peering.{module}'); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "functions"), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_nothing_that_acts(module: str) -> None:
    # Given a module of pure rules
    # When it is imported alone
    loaded = imported_by(module)
    # Then no module that calls AWS or acts as a step came with it, nor boto3
    acting = sorted(m for m in loaded if m.split(".")[:2] in (["vpc_peering", a] for a in ACTING))
    assert acting == [], acting
    assert "boto3" not in loaded


#: Steps that only count, report or start a reconcile, and what stays out of their cold start:
#: the planner, the group policy and the readers of the network (Discover's).
LIGHT_STEPS = ("record_round", "reconcile_report", "tag_change")
PLANNER_AND_READERS = ("network", "planning", "group_policy", "ec2", "reconcile", "status")


@pytest.mark.parametrize("handler", LIGHT_STEPS)
def test_a_step_that_only_counts_or_starts_imports_neither_planner_nor_readers(
    handler: str,
) -> None:
    # Given a reconcile step that counts results or starts a reconcile
    # When its handler is imported alone, as a cold start does
    loaded = imported_by(f"handlers.{handler}")
    # Then the planner and the network readers did not come with it
    heavy = sorted(
        m for m in loaded if m.split(".")[:2] in (["vpc_peering", h] for h in PLANNER_AND_READERS)
    )
    assert heavy == [], heavy
