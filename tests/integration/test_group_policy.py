"""The group policy through the emulator (the real ASL, the real handlers): a VPC's group tag
only asks; the hub's policy in SSM decides. Each test replays an attack of issue 16 that worked
before the policy existed (a VPC in any allowed account joined any group with any CIDR).

One emulator for the module, three allowed accounts and two regions, a tag event window of
300 s: the tests drive the reconciles they mean to see by hand (``{"Group": ...}``).
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator
from tools.policy import parameter_name, set_group, write_policy
from vpc_peering_cli.__main__ import main as vpc_peering_main

from .conftest import HUB, MEMBER, UNTRUSTED
from .network import Network
from .test_trust_boundary import history, published

PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER},{UNTRUSTED}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ManagedRegions": "us-east-1,us-west-2",
    "TagEventWindowSeconds": "300",
}
REFUSED = "VPC Peering Join Refused"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(parameter_overrides=PARAMETERS) as handle:
        write_policy(handle, {"Groups": {}})
        yield handle


@pytest.fixture
def network(emu: EmulatorHandle) -> Network:
    return Network(emu, admit_groups=False)


def group_name() -> str:
    return f"gp-{uuid.uuid4().hex[:8]}"


def peered(network: Network, group: str) -> set[frozenset[str]]:
    return {frozenset(k[2] for k in pair) for pair in network.peerings(group)}


def refused(output: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["Group"], r["VpcId"], r["Cause"]) for r in output["Refused"]]


def test_a_sandbox_vpc_in_a_third_account_cannot_join_a_mesh(
    network: Network, emu: EmulatorHandle
) -> None:
    # Attack: a sandbox VPC in a third allowed account tagged vpc-peering:mesh=prod got a route
    # in every prod VPC's tables within one reconcile.
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB, MEMBER]})
    a, b = network.vpc(mesh=group), network.vpc(MEMBER, mesh=group)
    sandbox = network.vpc(UNTRUSTED, mesh=group)
    # When the group is reconciled
    result = network.reconcile({"Group": group})
    # Then the two admitted VPCs are peered, the sandbox is not, and nothing routes to it
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
    for vpc in (a, b):
        assert all(sandbox.cidr not in routes for routes in network.routes(vpc).values())
    # And the refusal is listed, naming the rule and the value, with GroupPolicyDenied
    [entry] = result.output["Refused"]
    assert entry == {
        "Group": group,
        "VpcId": sandbox.vpc_id,
        "AccountId": UNTRUSTED,
        "Region": "us-east-1",
        "Error": "GroupPolicyDenied",
        "Cause": f"account {UNTRUSTED} is not in Groups.{group}.Accounts",
    }
    assert result.output["RefusedCount"] == 1
    # And it is published once: as VPC Peering Join Refused now, not again by the next reconcile
    events = published(history(emu, result.execution_arn), REFUSED)
    assert [(e["Group"], e["VpcId"], e["Error"]) for e in events] == [
        (group, sandbox.vpc_id, "GroupPolicyDenied")
    ]
    again = network.reconcile({"Group": group})
    assert refused(again.output) == refused(result.output)
    assert published(history(emu, again.execution_arn), REFUSED) == []


def test_a_rogue_hub_is_refused_and_gets_no_spoke(network: Network, emu: EmulatorHandle) -> None:
    # Attack: tagged vpc-peering:hub=shared, a sandbox VPC was peered with every spoke.
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB, MEMBER, UNTRUSTED], "HubAccounts": [HUB]})
    hub = network.vpc(hub=group)
    spoke = network.vpc(MEMBER, spoke=group)
    rogue = network.vpc(UNTRUSTED, hub=group)
    result = network.reconcile({"Group": group})
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == {frozenset({hub.vpc_id, spoke.vpc_id})}
    assert refused(result.output) == [
        (
            group,
            rogue.vpc_id,
            f"account {UNTRUSTED} is not in Groups.{group}.HubAccounts (vpc-peering:hub)",
        )
    ]


def test_a_group_the_policy_does_not_name_has_no_members(network: Network) -> None:
    # Attack: a group is a free string; the first VPC to use a name founds it.
    group = group_name()
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    result = network.reconcile({"Group": group})
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == set()
    assert sorted(refused(result.output)) == sorted(
        (group, v.vpc_id, f"group {group} is not in the group policy") for v in (a, b)
    )


@pytest.mark.parametrize("public", ["8.8.8.0/24", "52.216.0.0/16"])
def test_a_joiner_with_public_space_is_refused(
    network: Network, emu: EmulatorHandle, public: str
) -> None:
    # Attack: a joiner with 8.8.8.0/24 or 52.216.0.0/16 (inside S3's range) got routes more
    # specific than the members' internet default route and S3 endpoint route.
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB, MEMBER]})
    member = network.vpc(mesh=group)
    joiner = network.vpc(MEMBER)
    ec2 = network.ec2(MEMBER)
    ec2.associate_vpc_cidr_block(VpcId=joiner.vpc_id, CidrBlock=public)
    network.tag(joiner, mesh=group)
    result = network.reconcile({"Group": group})
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == set()
    assert refused(result.output) == [
        (group, joiner.vpc_id, f"{public} is not inside AllowedPeerCidrs")
    ]
    assert all(public not in routes for routes in network.routes(member).values())


def test_a_member_cidr_outside_the_groups_cidrs_is_refused(
    network: Network, emu: EmulatorHandle
) -> None:
    group = group_name()
    a = network.vpc(mesh=group)
    set_group(emu, group, {"Accounts": [HUB], "Cidrs": [a.cidr]})
    b = network.vpc(mesh=group)
    result = network.reconcile({"Group": group})
    assert refused(result.output) == [
        (group, b.vpc_id, f"{b.cidr} is not inside Groups.{group}.Cidrs")
    ]


def test_a_vpc_the_policy_no_longer_admits_leaves_the_group(
    network: Network, emu: EmulatorHandle
) -> None:
    # Given a peered pair across two accounts
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB, MEMBER]})
    a, b = network.vpc(mesh=group), network.vpc(MEMBER, mesh=group)
    assert network.reconcile({"Group": group}).status == "SUCCEEDED"
    assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
    # When the policy stops admitting the member account
    set_group(emu, group, {"Accounts": [HUB]})
    result = network.reconcile({"Group": group})
    # Then its group peering is removed, and its routes with it
    assert result.status == "SUCCEEDED", result
    assert result.output["Removed"] == 1
    assert peered(network, group) == set()
    assert all(b.cidr not in routes for routes in network.routes(a).values())


def test_a_broken_policy_closes_every_group_and_removes_nothing(
    network: Network, emu: EmulatorHandle
) -> None:
    # Given a peered pair
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB]})
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    assert network.reconcile({"Group": group}).status == "SUCCEEDED"
    good = parameter_name(emu)
    try:
        # When the policy document is broken (an account id of 11 digits), and a VPC leaves
        write_policy(emu, {"Groups": {group: {"Accounts": ["12345678901"]}}})
        network.untag(b, "mesh")
        result = network.reconcile({"Group": group})
        # Then nothing is removed, and the reconcile says why in one line naming the parameter
        # and the first problem (the field with its value)
        assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
        assert (result.status, result.error) == ("FAILED", "ReconcileIncomplete")
        assert (result.cause or "").startswith(
            f"group policy {good}: Groups.{group}.Accounts[0]: '12345678901' is not an account id"
        ), result.cause
        assert "GroupPolicyInvalid" in (result.cause or "")
    finally:
        write_policy(emu, {"Groups": {}})
        network.reconcile({"Group": group})


def test_a_join_that_needs_approval_waits_and_is_announced_once(
    network: Network, emu: EmulatorHandle
) -> None:
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB], "Join": "approval"})
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    result = network.reconcile({"Group": group})
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == set()
    pending = {
        (p["Group"], p["VpcId"], tuple(p["Cidrs"])) for p in result.output["PendingApproval"]
    }
    assert pending == {(group, v.vpc_id, (v.cidr,)) for v in (a, b)}
    events = published(history(emu, result.execution_arn), "VPC Peering Join Requested")
    assert sorted(e["VpcId"] for e in events) == sorted([a.vpc_id, b.vpc_id])
    again = network.reconcile({"Group": group})
    assert published(history(emu, again.execution_arn), "VPC Peering Join Requested") == []


def test_allow_more_specific_routes_comes_from_the_group_policy(
    network: Network, emu: EmulatorHandle
) -> None:
    # Given a member whose table sends 10.0.0.0/8 to a gateway (a summary route)
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB]})
    a = network.vpc()
    ec2 = network.ec2()
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=a.vpc_id)
    [table] = list(network.routes(a))
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", GatewayId=igw)
    network.tag(a, mesh=group)
    b = network.vpc(mesh=group)
    # When reconciled: the narrower peering route is refused (the group does not allow it)
    refused = network.reconcile({"Group": group})
    assert refused.error == "ReconcileIncomplete"
    assert "RouteConflict" in (refused.cause or "")
    # When the group's policy allows more specific routes (never a member's tag)
    set_group(emu, group, {"Accounts": [HUB], "AllowMoreSpecificRoutes": True})
    result = network.reconcile({"Group": group})
    # Then the pair is made, its route narrowing the summary route
    assert result.status == "SUCCEEDED", result
    assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
    assert network.routes(a)[table][b.cidr].startswith("pcx-")


def cli(
    emu: EmulatorHandle, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``vpc-peering --endpoint-url <emulator> ARGS...``, in this process (this checkout's)."""
    code = vpc_peering_main(["--endpoint-url", emu.endpoint, "--region", "us-east-1", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_pending_approve_and_deny_through_the_command(
    network: Network,
    emu: EmulatorHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Given a group whose joins need approval, and three VPCs tagged into it
    group = group_name()
    set_group(emu, group, {"Accounts": [HUB, MEMBER], "Join": "approval"})
    a, b = network.vpc(mesh=group), network.vpc(MEMBER, mesh=group)
    c = network.vpc(mesh=group)
    # When the pending requests are listed: all three, with their CIDRs; nothing made
    code, out, err = cli(emu, capsys, "pending")
    assert code == 0, err
    for vpc in (a, b, c):
        assert f"{group}  {vpc.vpc_id}  {vpc.account} {vpc.region}  {vpc.cidr}" in out
    assert peered(network, group) == set()
    # When a and b are approved (each approval reconciles the group) and c denied
    for vpc in (a, b):
        code, out, err = cli(emu, capsys, "approve", group, vpc.vpc_id)
        assert code == 0, (out, err)
        assert f"approved {vpc.vpc_id} ({vpc.account} {vpc.region}) in group {group}" in out
    code, out, err = cli(emu, capsys, "deny", group, c.vpc_id)
    assert code == 0, (out, err)
    # Then a and b are peered; c is refused, naming who denied it
    assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
    result = network.reconcile({"Group": group})
    assert result.status == "SUCCEEDED", result
    [denied] = result.output["Refused"]
    assert denied["VpcId"] == c.vpc_id
    assert "was denied by arn:aws" in denied["Cause"]
    # And the approval pinned a's CIDR: a CIDR it adds later asks again, its pair stays
    network.ec2().associate_vpc_cidr_block(VpcId=a.vpc_id, CidrBlock="10.250.0.0/16")
    again = network.reconcile({"Group": group})
    assert again.status == "SUCCEEDED", again
    assert [(p["VpcId"], sorted(p["Cidrs"])) for p in again.output["PendingApproval"]] == [
        (a.vpc_id, sorted([a.cidr, "10.250.0.0/16"]))
    ]
    assert peered(network, group) == {frozenset({a.vpc_id, b.vpc_id})}
    assert all("10.250.0.0/16" not in routes for routes in network.routes(b).values())
    # And the decisions are kept in the hub with their audit trail
    item = emu.client("dynamodb").get_item(
        TableName=emu.outputs["LockTableName"], Key={"LockId": {"S": "group-approvals"}}
    )["Item"]
    assert len(item["History"]["L"]) == 3


def collapsed(*cidrs: str) -> list[str]:
    """The CIDRs as one policy entry lists them: adjacent blocks merged, in address order."""
    return [str(n) for n in ipaddress.collapse_addresses(map(ipaddress.IPv4Network, cidrs))]


def test_policy_from_tags_prints_a_policy_admitting_the_groups_as_tagged(
    network: Network,
    emu: EmulatorHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Given groups tagged before the stack had a group policy (none names them): a mesh across
    # two accounts and two regions, and a hub with a spoke in another account
    mesh, star = group_name(), group_name()
    a = network.vpc(mesh=mesh)
    b = network.vpc(MEMBER, region="us-west-2", mesh=mesh)
    core = network.vpc(hub=star)
    spoke = network.vpc(UNTRUSTED, spoke=star)
    before = network.reconcile({"Group": mesh, "DryRun": True})
    assert {r["VpcId"] for r in before.output["Refused"]} >= {a.vpc_id, b.vpc_id}
    # When the command prints a policy from the current tags
    code, out, err = cli(emu, capsys, "policy", "--from-tags")
    # Then it admits each group as tagged: accounts, regions, CIDRs, hubs, Join auto
    assert code == 0, err
    document = json.loads(out)
    assert document["Groups"][mesh] == {
        "Accounts": sorted([HUB, MEMBER]),
        "Regions": ["us-east-1", "us-west-2"],
        "Cidrs": collapsed(a.cidr, b.cidr),
        "Join": "auto",
        "HubAccounts": [],
    }
    assert document["Groups"][star] == {
        "Accounts": sorted([HUB, UNTRUSTED]),
        "Regions": ["us-east-1"],
        "Cidrs": collapsed(core.cidr, spoke.cidr),
        "Join": "auto",
        "HubAccounts": [HUB],
    }
    # And it says how to write it, naming the stack's parameter
    assert f"aws ssm put-parameter --name {parameter_name(emu)} --type String" in err
    # When it is written as printed / Then the groups are admitted: nobody refused, and the
    # pairs are made
    write_policy(emu, out)
    for group, pair in ((mesh, {a.vpc_id, b.vpc_id}), (star, {core.vpc_id, spoke.vpc_id})):
        result = network.reconcile({"Group": group})
        assert result.status == "SUCCEEDED", result
        assert result.output["Refused"] == []
        assert peered(network, group) == {frozenset(pair)}
