"""The events each machine publishes say what happened: a refusal at Plan is marked (Stage,
DryRun), "Established" and "Removed" only when something changed, a failed cleanup is heard.

Events are read from the execution history (the putEvents tasks' parameters), so each test
sees exactly what its own execution published."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from emulator.executions import ExecutionResult
from emulator.executions import history as execution_history
from emulator.testing import EmulatorHandle

from .conftest import HUB, Account, Vpc, side

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]


def published(emu: EmulatorHandle, result: ExecutionResult) -> dict[str, list[dict[str, Any]]]:
    """detail-type -> the details the execution put on the bus."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in execution_history(emu.client("stepfunctions"), result.execution_arn):
        if event["type"] != "TaskScheduled":
            continue
        parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
        for entry in parameters.get("Entries", []):
            detail = entry["Detail"]
            found.setdefault(entry["DetailType"], []).append(
                json.loads(detail) if isinstance(detail, str) else detail
            )
    return found


def test_a_dry_run_refused_by_plan_is_marked_and_compensates_nothing(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle
) -> None:
    # Given two overlapping VPCs
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("10.0.0.0/24")

    # When a dry run asks to peer them
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": True})

    # Then it fails at Plan, and its "VPC Peering Failed" says so (rules can ignore it)
    assert result.error == "CidrOverlap"
    [failed] = published(emu, result)["VPC Peering Failed"]
    assert (failed["Stage"], failed["DryRun"]) == ("Plan", True)
    assert (failed["RequesterVpcId"], failed["AccepterVpcId"]) == (vpc1.vpc_id, vpc2.vpc_id)
    assert "Compensate" not in result.states_entered
    assert result.states_entered[-3:] == ["ReportFailure", "PublishFailed", "Failed"]


def test_bad_input_is_a_refusal_at_plan(create: Run, emu: EmulatorHandle) -> None:
    # When the input is not a create request at all
    result = create({"Requester": {"VpcId": "nope"}})
    # Then "VPC Peering Failed" is Stage Plan, not a dry run
    [failed] = published(emu, result)["VPC Peering Failed"]
    assert (failed["Error"], failed["Stage"], failed["DryRun"]) == ("InvalidInput", "Plan", False)


def test_established_only_when_something_changed_and_removed_only_when_removed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, emu: EmulatorHandle
) -> None:
    # Given a peering made by the create machine
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")
    request = {"Requester": side(vpc1), "Accepter": side(vpc2), "DnsResolution": True}
    first = create(request)
    assert first.succeeded, (first.error, first.cause)
    [established] = published(emu, first)["VPC Peering Established"]
    assert {"peering", "routes", "dns"} <= set(established["Changed"])

    # When the same create runs again, then the cleanup twice
    rerun = create(request)
    removed = cleanup({"VpcPeeringConnectionId": first.output["VpcPeeringConnectionId"]})
    again = cleanup({"VpcPeeringConnectionId": first.output["VpcPeeringConnectionId"]})

    # Then the no-op rerun publishes nothing, the cleanup "Removed" with its Result, and the
    # second cleanup (nothing left to remove) nothing
    assert rerun.succeeded
    assert rerun.output["Changed"] == []
    assert "VPC Peering Established" not in published(emu, rerun)
    [event] = published(emu, removed)["VPC Peering Removed"]
    assert event["Result"] == "Removed"
    assert "peering" in event["Changed"]
    assert again.succeeded
    assert again.output["Changed"] == []
    assert published(emu, again) == {}


def test_a_refused_cleanup_is_published_as_a_refusal_at_plan(
    make_vpc: MakeVpc, cleanup: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a peering made by hand (not this stack's to delete)
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")
    ec2 = accounts[HUB].ec2()
    peering_id = ec2.create_vpc_peering_connection(VpcId=vpc1.vpc_id, PeerVpcId=vpc2.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]

    # When cleanup is asked to remove it
    result = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then "VPC Peering Cleanup Failed" names the error and the peering, refused at Plan
    assert result.error == "NotManaged"
    [failed] = published(emu, result)["VPC Peering Cleanup Failed"]
    assert (failed["Error"], failed["Stage"]) == ("NotManaged", "Plan")
    assert failed["VpcPeeringConnectionId"] == peering_id
    assert result.states_entered[-3:] == ["ReportFailure", "PublishCleanupFailed", "CleanupFailed"]


def test_a_failed_cleanup_is_published_naming_the_peering_and_its_vpcs(
    make_vpc: MakeVpc, create: Run, cleanup: Run, faults: EmulatorHandle
) -> None:
    # Given a peering made by the create machine, and EC2 refusing its delete
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")
    made = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert made.succeeded, (made.error, made.cause)
    peering_id = made.output["VpcPeeringConnectionId"]
    faults.add_fault("ec2", "DeleteVpcPeeringConnection", "UnauthorizedOperation")

    # When cleanup runs
    result = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then "VPC Peering Cleanup Failed" names the error, the peering and both VPCs
    assert result.error == "AccessDenied", (result.error, result.cause)
    [failed] = published(faults, result)["VPC Peering Cleanup Failed"]
    assert (failed["Error"], failed["Stage"], failed["DryRun"]) == (
        "AccessDenied",
        "Cleanup",
        False,
    )
    assert failed["VpcPeeringConnectionId"] == peering_id
    assert (failed["RequesterVpcId"], failed["AccepterVpcId"]) == (vpc1.vpc_id, vpc2.vpc_id)


def test_a_dry_run_says_a_rerun_without_dns_would_turn_it_off(
    make_vpc: MakeVpc, create: Run
) -> None:
    # Given a peering with DNS resolution on
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")
    assert create(
        {"Requester": side(vpc1), "Accepter": side(vpc2), "DnsResolution": True}
    ).succeeded

    # When a dry run asks for the same pair without DnsResolution
    planned = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": True})

    # Then its plan says DNS would be off, and that this is a change
    assert planned.succeeded, (planned.error, planned.cause)
    assert planned.output["Dns"]["Requested"] is False
    assert planned.output["Dns"]["Changed"] is True
