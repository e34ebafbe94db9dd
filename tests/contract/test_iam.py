"""IAM lint over the template as CloudFormation will see it (transformed by samtranslator).

Least privilege, checked rather than promised: no mutating action on ``Resource: "*"`` unless
IAM offers nothing narrower (the list below, each with its reason); accepting a peering only
under a requester condition; AssumeRole only on the member role; each state machine invokes only
its own functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulator.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$")

#: Mutating actions allowed on "*", and why IAM leaves no narrower choice.
STAR_ALLOWED: dict[str, str] = {
    "logs:CreateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:UpdateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:DeleteLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:PutResourcePolicy": "log resource policies have no resource-level permissions",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions (AWS managed policy)",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions (AWS managed policy)",
}
MEMBER_ROLE_RESOURCES = {
    "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
    "arn:${AWS::Partition}:iam::*:role/*/${MemberRoleName}",
}


def _statements(
    transformed: dict[str, Any], effect: str = "Allow"
) -> list[tuple[str, dict[str, Any]]]:
    """Every statement with this effect, with the logical id of its role or managed policy."""
    found = []
    for logical_id, resource in transformed["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents = [props["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == effect:
                    found.append((logical_id, statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_no_mutating_action_on_star_without_a_reason(transformed: dict[str, Any]) -> None:
    # Given every Allow statement of every role and managed policy
    offenders = []
    for owner, statement in _statements(transformed):
        if statement["Effect"] != "Allow":
            continue
        actions = _as_list(statement["Action"])
        assert "*" not in actions, owner
        assert not any(a.endswith(":*") for a in actions), (owner, actions)
        if "*" not in _as_list(statement["Resource"]):
            continue
        # Then a statement on "*" holds only read actions or explicitly justified ones
        offenders += [
            (owner, a) for a in actions if not READ_ONLY.match(a) and a not in STAR_ALLOWED
        ]
    assert offenders == []


def test_accepting_a_peering_is_conditioned_on_the_requester(transformed: dict[str, Any]) -> None:
    # Given the statements that allow AcceptVpcPeeringConnection
    accepting = [
        s
        for _, s in _statements(transformed)
        if "ec2:AcceptVpcPeeringConnection" in _as_list(s["Action"])
    ]
    # Then on the peering it carries an ec2:RequesterVpc condition, and on the accepter VPC
    # (a resource type without that key, so a statement of its own) only this account's VPCs
    assert accepting
    for statement in accepting:
        resources = _text(statement["Resource"])
        condition = _text(statement.get("Condition", {}))
        assert ("vpc-peering-connection/" in resources) != (":vpc/" in resources), resources
        if "vpc-peering-connection/" in resources:
            assert "ec2:RequesterVpc" in condition
        else:
            assert "${AWS::AccountId}:vpc/*" in resources


def test_peering_requests_only_to_allowed_accounts(transformed: dict[str, Any]) -> None:
    # Given the statements that allow creating a peering connection resource
    creating = [
        s
        for _, s in _statements(transformed)
        if "ec2:CreateVpcPeeringConnection" in _as_list(s["Action"])
        and "vpc-peering-connection/" in _text(s["Resource"])
    ]
    # Then each limits the accepter VPC to the accounts of AllowedAccountIds
    assert creating
    for statement in creating:
        accepter = _text(statement["Condition"]["ArnLike"]["ec2:AccepterVpc"])
        assert "AllowedAccountIds" in accepter


def test_tag_scoped_creates_and_deletes(transformed: dict[str, Any]) -> None:
    # Given the statements that create or delete peerings and route tables, or tag anything
    for owner, statement in _statements(transformed):
        actions = set(_as_list(statement["Action"]))
        condition = _text(statement.get("Condition", {}))
        resources = _text(statement["Resource"])
        # Then creating tagged resources requires this stack's tag in the request
        if actions & {"ec2:CreateVpcPeeringConnection", "ec2:CreateRouteTable"} and (
            "vpc-peering-connection/" in resources or "route-table/" in resources
        ):
            assert "aws:RequestTag/vpc-peering:managed-by" in condition, owner
        # And deleting peerings or route tables requires this stack's tag on them
        if actions & {"ec2:DeleteVpcPeeringConnection", "ec2:DeleteRouteTable"}:
            assert "ec2:ResourceTag/vpc-peering:managed-by" in condition, owner
        # And tags are written when creating; on an existing peering, only this stack's
        # ownership tags (adoption) or user tags on its own peerings, never an ownership tag
        if "ec2:CreateTags" in actions:
            conditions = statement.get("Condition", {})
            adopt = conditions.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
            retag = conditions.get("ForAllValues:StringNotLike", {}).get("aws:TagKeys")
            if "ec2:CreateAction" in condition:
                continue
            assert "vpc-peering-connection/" in resources
            assert "route-table" not in resources
            if adopt is not None:
                assert sorted(adopt) == [
                    "vpc-peering:accepted-cidrs",
                    "vpc-peering:accepted-for",
                    "vpc-peering:adopted-by",
                    "vpc-peering:managed-by",
                ]
                assert "aws:RequestTag/vpc-peering:managed-by" in condition, owner
            else:
                assert retag == ["vpc-peering:*", "aws:*"], owner
                assert "ec2:ResourceTag/vpc-peering:managed-by" in condition, owner


def test_only_the_create_function_tags_existing_peerings_and_compensation_untags(
    transformed: dict[str, Any],
) -> None:
    # Given the statements that tag or untag without creating
    tagging = {
        owner
        for owner, s in _statements(transformed)
        if "ec2:CreateTags" in _as_list(s["Action"])
        and "ec2:CreateAction" not in _text(s.get("Condition", {}))
    }
    untagging = {
        owner for owner, s in _statements(transformed) if "ec2:DeleteTags" in _as_list(s["Action"])
    }
    # Then only the create function's role tags an existing peering, only compensation untags
    assert tagging == {"CreatePeeringFunctionRole"}
    assert untagging == {"CompensateFunctionRole"}


def test_assume_role_only_on_the_member_role(transformed: dict[str, Any]) -> None:
    # Given every statement that allows or denies sts:AssumeRole
    allowing = [
        (owner, s)
        for owner, s in _statements(transformed)
        if "sts:AssumeRole" in _as_list(s["Action"])
    ]
    denying = [
        (owner, s)
        for owner, s in _statements(transformed, "Deny")
        if "sts:AssumeRole" in _as_list(s["Action"])
    ]
    # Then it is allowed only on the member role name
    assert allowing
    for owner, statement in allowing:
        resources = {r["Fn::Sub"] for r in _as_list(statement["Resource"])}
        assert resources == MEMBER_ROLE_RESOURCES, owner
    # And denied on every role outside the accounts of AllowedAccountIds, next to each Allow
    assert {owner for owner, _ in denying} == {owner for owner, _ in allowing}
    for _, statement in denying:
        assert "AllowedAccountIds" in _text(statement["NotResource"])


@pytest.mark.parametrize("machine", ["CreateStateMachine", "CleanupStateMachine"])
def test_state_machines_invoke_only_their_own_functions(
    transformed: dict[str, Any], machine: str
) -> None:
    # Given the functions a machine's definition names
    raw = Template.load(ROOT / "template.yaml").resources[machine]["Properties"]
    own = {
        v["Fn::GetAtt"][0]
        for v in raw["DefinitionSubstitutions"].values()
        if isinstance(v, dict) and "Fn::GetAtt" in v
    }
    # When reading what its role may invoke
    role = transformed["Resources"][f"{machine}Role"]["Properties"]
    invoked = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "lambda:InvokeFunction" in _as_list(statement["Action"]):
                invoked.add(statement["Resource"]["Fn::Sub"][1]["functionName"]["Ref"])
    # Then it is exactly its own functions
    assert invoked == own


def test_every_function_has_its_own_role(transformed: dict[str, Any]) -> None:
    functions = {
        k: v for k, v in transformed["Resources"].items() if v["Type"] == "AWS::Lambda::Function"
    }
    roles = [_text(f["Properties"]["Role"]) for f in functions.values()]
    assert len(set(roles)) == len(functions)


def test_logging_and_tracing_on_both_machines() -> None:
    resources = Template.load(ROOT / "template.yaml").source["Resources"]
    for machine in ("CreateStateMachine", "CleanupStateMachine"):
        props = resources[machine]["Properties"]
        assert props["Tracing"]["Enabled"] is True
        assert props["Logging"]["Level"] == "ALL"
        assert props["Logging"]["Destinations"]


def test_member_role_trusts_only_this_stacks_function_roles_with_its_external_id() -> None:
    # Given member-role.yaml's trust policy and the hub template
    member = load_yaml((ROOT / "member-role.yaml").read_text())
    [trust] = member["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    hub = load_yaml((ROOT / "template.yaml").read_text())
    # Then the caller must be a role under the hub stack's own IAM path (not any role whose
    # name starts with the stack name) and must present the stack's ExternalId
    assert trust["Condition"]["ArnLike"]["aws:PrincipalArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:role/vpc-peering/${HubStackName}/*"
    }
    assert trust["Condition"]["StringEquals"]["sts:ExternalId"] == {"Ref": "ExternalId"}
    # And the hub's function roles are created under that path, and send that ExternalId
    function_globals = hub["Globals"]["Function"]
    assert function_globals["RolePath"] == {"Fn::Sub": "/vpc-peering/${AWS::StackName}/"}
    external_id = function_globals["Environment"]["Variables"]["MEMBER_ROLE_EXTERNAL_ID"]
    assert external_id == hub["Outputs"]["MemberRoleExternalId"]["Value"]


def test_every_function_role_is_under_the_stack_path(transformed: dict[str, Any]) -> None:
    roles = {
        logical_id: resource["Properties"].get("Path")
        for logical_id, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id.endswith("FunctionRole")
    }
    functions = [
        r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    assert len(roles) == len(functions) == 17
    assert set(map(json.dumps, roles.values())) == {
        json.dumps({"Fn::Sub": "/vpc-peering/${AWS::StackName}/"})
    }


# ------------------------------------------------------------------ lock table, by kind
#: The kinds of lock-table item (locks.LOCK_KEY_PATTERNS) each function may touch.
LOCK_KINDS: dict[str, set[str]] = {
    **{
        f"{name}Function": {"pair"}
        for name in (
            "Plan",
            "Verify",
            "Compensate",
            "CleanupPlan",
            "DeletePeering",
            "ReportFailure",
        )
    },
    "DiscoverFunction": {
        "reconcile",
        "reconcile-next",
        "reconcile-queue",
        "group-approvals",
        "group-policy-announced",
    },
    "ReconcileReportFunction": {"reconcile"},
    "TagChangeFunction": {"reconcile-queue"},
    "NetworkStatusFunction": {"group-approvals"},
}


def _role_statements(transformed: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """A role's statements: inline, and those of the template's managed policies it attaches."""
    resources = transformed["Resources"]
    props = resources[role_id]["Properties"]
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    for arn in props.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and arn.get("Ref") in resources:
            documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    return [s for d in documents for s in _as_list(d["Statement"])]


def test_each_function_touches_only_its_own_kinds_of_lock_table_item(
    transformed: dict[str, Any],
) -> None:
    from vpc_peering.locks import LOCK_KEY_PATTERNS

    kind_of = {pattern: kind for kind, pattern in LOCK_KEY_PATTERNS.items()}
    lock_table = {"Fn::GetAtt": ["LockTable", "Arn"]}
    touching: dict[str, set[str]] = {}
    for role_id, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in _role_statements(transformed, role_id):
            if statement["Effect"] != "Allow" or lock_table not in _as_list(
                statement.get("Resource")
            ):
                continue
            # Given each statement on the lock table
            condition = statement.get("Condition", {})
            [(operator, block)] = condition.items()
            # Then it is held to item keys by dynamodb:LeadingKeys, for every key of the request
            assert operator in ("ForAllValues:StringEquals", "ForAllValues:StringLike"), role_id
            assert list(block) == ["dynamodb:LeadingKeys"], role_id
            # And only a known kind's pattern (a wildcard only where that kind has one)
            patterns = _as_list(block["dynamodb:LeadingKeys"])
            assert all(p in kind_of for p in patterns), (role_id, patterns)
            if operator.endswith("StringEquals"):
                assert not any("*" in p or "?" in p for p in patterns), role_id
            function = role_id.removesuffix("Role")
            touching.setdefault(function, set()).update(kind_of[p] for p in patterns)
    # Then each function reaches exactly the kinds it uses
    assert touching == LOCK_KINDS


def test_each_kind_of_lock_key_matches_its_own_pattern_only() -> None:
    import fnmatch

    from vpc_peering import hub_store, locks
    from vpc_peering.models.requests import SideRef

    # Given a key of each kind, as the code makes it
    a = SideRef.model_validate(
        {"VpcId": "vpc-0a", "AccountId": "111111111111", "Region": "us-east-1"}
    )
    b = SideRef.model_validate(
        {"VpcId": "vpc-0b", "AccountId": "222222222222", "Region": "eu-west-1"}
    )
    keys = {
        "pair": locks.pair_lease(a, b, "create", "x")[0],
        "reconcile": locks.reconcile_lease("x")[0],
        "reconcile-next": locks.NEXT_KEY,
        "reconcile-queue": locks.QUEUE_KEY,
        "group-policy-announced": hub_store.ANNOUNCED_KEY,
        "group-approvals": hub_store.APPROVALS_KEY,
    }
    assert set(keys) == set(locks.LOCK_KEY_PATTERNS)
    # Then each matches its kind's pattern (StringLike: * spans any characters) and no other
    for kind, key in keys.items():
        matching = {k for k, p in locks.LOCK_KEY_PATTERNS.items() if fnmatch.fnmatchcase(key, p)}
        assert matching == {kind}, (key, matching)
