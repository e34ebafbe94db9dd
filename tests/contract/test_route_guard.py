"""The route-hijack guard, checked on what ships: nothing can replace a route (no module of
functions/, no role of either template), and the function that acts on events (the accept
function) can neither add routes by its role nor by its code. That plans route only to the peer
VPC's own CIDRs is checked by the unit tests (tests/unit/test_compensation_idempotency.py).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path
from typing import Any

from emulator.template import Template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"

REPLACE = re.compile(r"replace_route|ReplaceRoute", re.IGNORECASE)


def test_the_replace_pattern_catches_every_spelling() -> None:
    # Given the ways code could replace a route / Then the guard's pattern catches each
    for spelling in (
        "client.replace_route(",
        "ec2.replace_route_table_association(",
        '"ec2:ReplaceRoute"',
        "ec2:ReplaceRouteTableAssociation",
    ):
        assert REPLACE.search(spelling), spelling


def test_no_function_module_can_replace_a_route() -> None:
    # Given every Python module under functions/
    modules = sorted(FUNCTIONS.rglob("*.py"))
    assert len(modules) > 10
    # When searched for ReplaceRoute / ReplaceRouteTableAssociation in any spelling
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in modules
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if REPLACE.search(line)
    ]
    # Then there is none: an existing route is a conflict, never overwritten
    assert hits == []


def test_no_role_may_replace_a_route() -> None:
    # Given the hub template and the member-account role template / Then neither grants it
    for name in ("template.yaml", "member-role.yaml"):
        text = (ROOT / name).read_text()
        assert not REPLACE.search(text), name


def _actions(template: dict[str, Any], function: str) -> set[str]:
    """Every IAM action the function's role is allowed, its managed policy references included
    (a Deny statement only takes permissions away)."""
    resources = template["Resources"]
    policies = list(template.get("Globals", {}).get("Function", {}).get("Policies", []))
    policies += resources[function]["Properties"].get("Policies", [])
    documents: list[dict[str, Any]] = []
    for policy in policies:
        if isinstance(policy, dict) and "Ref" in policy:
            documents.append(resources[policy["Ref"]]["Properties"]["PolicyDocument"])
        elif isinstance(policy, dict) and "Statement" in policy:
            documents.append(policy)
        else:  # a SAM policy template or a managed policy name would hide its actions
            raise AssertionError(f"{function}: cannot read policy {policy!r}")
    actions: set[str] = set()
    for document in documents:
        for statement in document["Statement"]:
            assert statement.get("Effect") in ("Allow", "Deny")
            assert "NotAction" not in statement
            if statement["Effect"] == "Deny":
                continue
            action = statement["Action"]
            actions.update([action] if isinstance(action, str) else action)
    return actions


def test_the_accept_function_role_cannot_change_routes() -> None:
    # Given the template's accept function (the only function events reach)
    template = Template.load(ROOT / "template.yaml").source  # as written: SAM Policies
    actions = _actions(template, "AcceptFunction")
    assert "ec2:AcceptVpcPeeringConnection" in actions  # the right function was read
    # When its actions are matched against every route-changing EC2 action (wildcards too)
    route_changes = (
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:DeleteRoute",
        "ec2:CreateRouteTable",
        "ec2:AssociateRouteTable",
        "ec2:ReplaceRouteTableAssociation",
        "ec2:ModifyVpcPeeringConnectionOptions",
    )
    granted = [
        (action, change)
        for action in actions
        for change in route_changes
        if fnmatch.fnmatchcase(change.lower(), action.lower())
    ]
    # Then none is granted: an event cannot add a route in the hub account
    assert granted == []


def test_the_accept_code_path_has_no_route_call() -> None:
    # Given the modules the accept function runs (its handler and the accept policy)
    used: set[str] = set()
    imported: set[str] = set()
    for module in ("handlers/accept.py", "acceptance.py"):
        tree = ast.parse((FUNCTIONS / "vpc_peering" / module).read_text())
        imported |= {
            (node.module or "").lstrip(".").split(".")[0] or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level > 0
            for alias in node.names
        }
        # When every ``ec2.<function>(...)`` call they make is collected
        used |= {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "ec2"
        }
    # Then they only read and accept: no route, table or association call (in any account,
    # since the member role the accept function may assume does allow CreateRoute)
    assert used <= {"describe_peering", "describe_vpcs", "wait_for_status", "accept_peering"}
    assert "describe_peering" in used
    assert "accept_peering" in used
    # And they import none of the modules that add routes (create steps, teardown)
    assert imported <= {
        "acceptance",
        "aws",
        "ec2",
        "errors",
        "locations",
        "models",
        "observability",
        "observed",
        "ownership",
        "policy",
        "runtime",
        "settings",
        "states",
    }, imported
