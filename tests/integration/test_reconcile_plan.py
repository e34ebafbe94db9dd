"""A reconcile's plan before it acts, and the guard on mass removals, through the emulator
(the real ASL, the real handlers).

One emulator for the module, with a tag event window of 300 s: the reconciles tag changes start
wait that long before they look, so each test drives the reconciles it means to see by hand
(``{"Group": ...}``), dry runs included, and nothing else changes the network meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator
from tools import CLEANUP_MACHINE, CREATE_MACHINE
from vpc_peering_cli.executions import failure_document

from .conftest import HUB
from .network import Network, Tagged
from .test_trust_boundary import history, published

PARAMETERS = {
    "AllowedAccountIds": HUB,
    "TagEventWindowSeconds": "300",
    "MaxRemovalsPerReconcile": "2",
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(parameter_overrides=PARAMETERS) as handle:
        yield handle


@pytest.fixture
def network(emu: EmulatorHandle) -> Network:
    return Network(emu)


def group_name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def children(emu: EmulatorHandle) -> int:
    """Create and cleanup executions started so far."""
    sfn = emu.client("stepfunctions")
    return sum(
        len(page["executions"])
        for machine in (CREATE_MACHINE, CLEANUP_MACHINE)
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=emu.state_machine_arn(machine)
        )
    )


def pair_keys(pairs: list[dict[str, Any]]) -> set[frozenset[str]]:
    return {frozenset((p["Requester"]["VpcId"], p["Accepter"]["VpcId"])) for p in pairs}


def pairs_of(*vpcs: Tagged) -> set[frozenset[str]]:
    return {frozenset((a.vpc_id, b.vpc_id)) for i, a in enumerate(vpcs) for b in vpcs[i + 1 :]}


def test_a_dry_run_lists_each_pair_with_its_reason_and_changes_nothing(
    network: Network, emu: EmulatorHandle
) -> None:
    # Given three VPCs tagged into one mesh, not reconciled yet
    group = group_name()
    a, b, c = (network.vpc(mesh=group) for _ in range(3))
    started = children(emu)
    # When a dry run of the group is asked for
    result = network.reconcile({"Group": group, "DryRun": True})
    # Then it succeeds with a plan of the three creates, each naming the tag that asks for it
    assert result.succeeded, (result.error, result.cause)
    output = result.output
    assert output["DryRun"] is True
    assert pair_keys(output["Plan"]) == pairs_of(a, b, c)
    for line in output["Plan"]:
        assert line["Action"] == "create"
        assert line["Group"] == group
        assert f"vpc-peering:mesh={group}" in line["Reason"]
        assert set(line["Requester"]) == {"VpcId", "AccountId", "Region"}
        assert line["Requester"]["AccountId"] == HUB
    assert output["PlanCounts"] == {"create": 3}
    # And nothing was made: no child execution, no peering, nothing counted as done
    assert children(emu) == started
    assert network.peerings(group) == {}
    assert (output["Created"], output["CreatedPairs"]) == (0, [])
    # And no reconcile event was published for a plan
    assert not published(history(emu, result.execution_arn), "VPC Peering Network Reconciled")


def test_a_reconcile_lists_the_pairs_it_created_repaired_and_removed(network: Network) -> None:
    # Given a mesh of three made by a reconcile
    group = group_name()
    a, b, c = (network.vpc(mesh=group) for _ in range(3))
    made = network.reconcile({"Group": group})
    # Then its output names the three pairs it created, each with its group
    assert made.succeeded, (made.error, made.cause)
    assert pair_keys(made.output["CreatedPairs"]) == pairs_of(a, b, c)
    assert {p["Group"] for p in made.output["CreatedPairs"]} == {group}
    assert (made.output["RemovedPairs"], made.output["RepairedPairs"]) == ([], [])
    # When one route is deleted by hand and one VPC leaves the mesh
    table, _routes = next(iter(network.routes(a).items()))
    network.ec2().delete_route(RouteTableId=table, DestinationCidrBlock=b.cidr)
    network.untag(c, "mesh")
    # Then a dry run says what it would do and why: the repair names the missing route
    plan = network.reconcile({"Group": group, "DryRun": True}).output["Plan"]
    by_action = {line["Action"]: line for line in plan}
    assert set(by_action) == {"repair", "remove"}
    assert b.cidr in by_action["repair"]["Reason"]
    assert "missing" in by_action["repair"]["Reason"]
    assert c.vpc_id in by_action["remove"]["Reason"]
    assert [line["Action"] for line in plan].count("remove") == 2
    # And the real run does just that, and lists it
    done = network.reconcile({"Group": group})
    assert done.succeeded, (done.error, done.cause)
    assert pair_keys(done.output["RepairedPairs"]) == pairs_of(a, b)
    assert pair_keys(done.output["RemovedPairs"]) == {
        frozenset((a.vpc_id, c.vpc_id)),
        frozenset((b.vpc_id, c.vpc_id)),
    }
    assert done.output["CreatedPairs"] == []
    assert network.routes(a)[table][b.cidr].startswith("pcx-")


def test_more_removals_than_the_limit_are_held_until_confirmed(
    network: Network, emu: EmulatorHandle
) -> None:
    # Given a mesh of three (three peerings) and MaxRemovalsPerReconcile 2
    group = group_name()
    vpcs = [network.vpc(mesh=group) for _ in range(3)]
    assert network.reconcile({"Group": group}).succeeded
    # When every VPC's tag is stripped (a tool that removes tags it does not know) and a new
    # VPC joins the group in the same change
    for vpc in vpcs:
        network.untag(vpc, "mesh")
    newcomer, other = network.vpc(mesh=group), network.vpc(mesh=group)
    result = network.reconcile({"Group": group})
    # Then nothing is removed: the reconcile ends FAILED with RemovalsHeld, naming the count
    # and the parameter, and lists the pairs it held
    assert (result.status, result.error) == ("FAILED", "RemovalsHeld"), result.cause
    assert "3 group peering removals held" in (result.cause or "")
    assert "MaxRemovalsPerReconcile (2)" in (result.cause or "")
    report = failure_document(emu.client("stepfunctions"), result.execution_arn) or {}
    assert pair_keys(report["RemovalsHeld"]) == pairs_of(*vpcs)
    assert report["RemovalsHeldCount"] == 3
    assert report["Removed"] == 0
    assert len(network.peerings(group)) == 4  # the three held, and the new pair
    # And the creates went on
    assert pair_keys(report["CreatedPairs"]) == pairs_of(newcomer, other)
    # And the hold was published, with the pairs
    held = published(history(emu, result.execution_arn), "VPC Peering Removals Held")
    assert len(held) == 1
    assert held[0]["RemovalsHeldCount"] == 3
    assert pair_keys(held[0]["RemovalsHeld"]) == pairs_of(*vpcs)
    # When an operator confirms them
    confirmed = network.reconcile({"Group": group, "ConfirmRemovals": True})
    # Then they are removed, and listed
    assert confirmed.succeeded, (confirmed.error, confirmed.cause)
    assert pair_keys(confirmed.output["RemovedPairs"]) == pairs_of(*vpcs)
    assert set(network.peerings(group)) == {
        frozenset({newcomer.key, other.key}),
    }


def test_a_dry_run_shows_the_removals_it_would_hold(network: Network) -> None:
    # Given a mesh of three, all untagged
    group = group_name()
    vpcs = [network.vpc(mesh=group) for _ in range(3)]
    assert network.reconcile({"Group": group}).succeeded
    for vpc in vpcs:
        network.untag(vpc, "mesh")
    # When a dry run looks, with and without ConfirmRemovals
    held = network.reconcile({"Group": group, "DryRun": True}).output
    confirmed = network.reconcile({"Group": group, "DryRun": True, "ConfirmRemovals": True})
    # Then the first lists them as held (and plans none), the second plans them
    assert pair_keys(held["RemovalsHeld"]) == pairs_of(*vpcs)
    assert held["Plan"] == []
    assert pair_keys(confirmed.output["Plan"]) == pairs_of(*vpcs)
    assert {line["Action"] for line in confirmed.output["Plan"]} == {"remove"}
    assert len(network.peerings(group)) == 3
    # (the group is removed for real, so that other tests' sweeps do not meet it)
    assert network.reconcile({"Group": group, "ConfirmRemovals": True}).succeeded


def test_reconcile_input_fields_are_checked(network: Network) -> None:
    # When DryRun is not a boolean
    result = network.reconcile({"DryRun": "yes please"})
    # Then the reconcile fails naming the field and the value
    assert result.status == "FAILED"
    assert "DryRun" in (result.cause or "")
    assert "yes please" in (result.cause or "")
