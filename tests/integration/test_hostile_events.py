"""Forged and duplicate "VPC Peering Acceptance Requested" events on the stack's bus.

Anyone allowed to put events on the bus can forge the acceptance request. The accept function
must not accept because of one: it first sends a heartbeat on the event's task token, and an
event whose token no execution waits on is dropped before any EC2 call. Delivery is
asynchronous, so each test waits (bounded) until the accept function has sent its heartbeat
and then gone quiet, rather than sleeping a fixed time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.executions import ExecutionResult, follow_execution
from emulator.testing import EmulatorHandle, mutating

from .conftest import (
    HUB,
    MEMBER,
    UNTRUSTED,
    Account,
    Vpc,
    peering_status,
    side,
    snapshot,
)

MakeVpc = Callable[..., Vpc]
Run = Callable[..., ExecutionResult]

SOURCE = "vpc-peering-automation"
DETAIL_TYPE = "VPC Peering Acceptance Requested"
DELIVERY_TIMEOUT = 8.0
QUIET_SECONDS = 0.5


def forged_detail(peering_id: str, requester: Vpc, accepter: Vpc, execution: str) -> dict[str, Any]:
    """What the create machine would put on the bus, with a token nobody handed out."""
    return {
        "TaskToken": f"forged-{uuid.uuid4()}",
        "VpcPeeringConnectionId": peering_id,
        "Requester": side(requester),
        "Accepter": side(accepter),
        "ExecutionName": execution,
    }


def put_acceptance_request(emu: EmulatorHandle, detail: dict[str, Any]) -> None:
    result = emu.client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "EventBusName": emu.event_bus_name,
            }
        ]
    )
    assert result["FailedEntryCount"] == 0, result


def heartbeats(calls: list[dict[str, str]]) -> int:
    return sum(1 for c in calls if c["operation"] == "SendTaskHeartbeat")


def calls_after_delivery(emu: EmulatorHandle, expected_heartbeats: int = 1) -> list[dict[str, str]]:
    """Wait until the accept function has sent its heartbeat(s) and the call log has been quiet
    for a moment (it is done), then return every call since the last reset. Bounded."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    calls = emu.calls()
    while heartbeats(calls) < expected_heartbeats:
        assert time.monotonic() < deadline, f"the accept function never ran: {calls}"
        time.sleep(0.1)
        calls = emu.calls()
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        assert time.monotonic() < deadline, "the accept function kept calling AWS"
        time.sleep(0.1)
        latest = emu.calls()
        if len(latest) != len(calls):
            calls, quiet_since = latest, time.monotonic()
    return calls


def assert_dropped_before_any_ec2_call(calls: list[dict[str, str]]) -> None:
    """The heartbeat was refused, so nothing was reported and EC2 was not even read."""
    assert [c for c in calls if c["operation"] == "AcceptVpcPeeringConnection"] == []
    assert mutating(calls) == []
    assert [c["operation"] for c in calls if c["service"] == "ec2"] == []
    reports = {"SendTaskSuccess", "SendTaskFailure"}
    assert [c["operation"] for c in calls if c["operation"] in reports] == []


def peering_by_hand(accounts: dict[str, Account], requester: Vpc, accepter: Vpc) -> str:
    """A peering someone made in the console, not through this stack (no tags)."""
    ec2 = accounts[requester.account].ec2(requester.region)
    made = ec2.create_vpc_peering_connection(VpcId=requester.vpc_id, PeerVpcId=accepter.vpc_id)
    peering_id = str(made["VpcPeeringConnection"]["VpcPeeringConnectionId"])
    assert peering_status(accounts, requester, peering_id) == "pending-acceptance"
    return peering_id


# -------------------------------------------------------- (a) a made-up token, a hand peering
def test_forged_event_for_a_peering_made_by_hand_accepts_nothing(
    make_vpc: MakeVpc, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a pending peering someone made by hand between two hub VPCs
    a = make_vpc("10.40.0.0/16")
    b = make_vpc("10.41.0.0/16")
    peering_id = peering_by_hand(accounts, a, b)
    before = snapshot(accounts, a, b)
    emu.reset_calls()
    # When a forged acceptance request naming it, with a made-up token, is put on the bus
    put_acceptance_request(emu, forged_detail(peering_id, a, b, "made-up-execution"))
    calls = calls_after_delivery(emu)
    # Then the accept function dropped it at the heartbeat: no EC2 call, nothing reported
    assert_dropped_before_any_ec2_call(calls)
    # And the peering is still pending acceptance, the VPCs unchanged
    assert peering_status(accounts, a, peering_id) == "pending-acceptance"
    assert snapshot(accounts, a, b) == before


# ------------------------------------------------------ (b) duplicate delivery after a create
def test_acceptance_request_for_an_established_peering_changes_nothing(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a create that succeeded (its acceptance request was delivered and answered)
    a = make_vpc("10.42.0.0/16")
    b = make_vpc("10.43.0.0/16")
    result = create({"Requester": {"VpcId": a.vpc_id}, "Accepter": {"VpcId": b.vpc_id}})
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    peering_id = out["VpcPeeringConnectionId"]
    assert out["Acceptance"]["AcceptedNow"] is True
    before = snapshot(accounts, a, b)
    emu.reset_calls()
    # When the acceptance request arrives again (the real token is unknown: a made-up one,
    # every other field as the create machine sent it)
    detail = forged_detail(peering_id, a, b, out["ExecutionName"])
    detail.update(Requester=out["Requester"], Accepter=out["Accepter"])
    put_acceptance_request(emu, detail)
    calls = calls_after_delivery(emu)
    # Then nothing is accepted again, nothing is reported, EC2 is not called
    assert_dropped_before_any_ec2_call(calls)
    # And the peering is still active with its routes, exactly as the create left it
    assert peering_status(accounts, a, peering_id) == "active"
    assert snapshot(accounts, a, b) == before


@pytest.fixture
def captured_requests(emu: EmulatorHandle) -> Iterator[Callable[[str], dict[str, Any]]]:
    """A queue on the stack's bus receiving every acceptance request, so a test can see the real
    event (and its token) the create machine put there; the rule is removed afterwards."""
    events, sqs = emu.client("events"), emu.client("sqs")
    name = f"capture-{uuid.uuid4().hex[:12]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=name,
        EventBusName=emu.event_bus_name,
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
    )
    events.put_targets(
        Rule=name, EventBusName=emu.event_bus_name, Targets=[{"Id": "q", "Arn": queue_arn}]
    )

    def receive(vpc_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                detail: dict[str, Any] = event.get("detail", {})
                named = [detail.get(s, {}).get("VpcId") for s in ("Requester", "Accepter")]
                if vpc_id in named:
                    return detail
        raise AssertionError("no acceptance request was put on the bus")

    yield receive
    events.remove_targets(Rule=name, EventBusName=emu.event_bus_name, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=emu.event_bus_name)
    sqs.delete_queue(QueueUrl=queue_url)


def test_the_real_acceptance_request_delivered_again_changes_nothing(
    make_vpc: MakeVpc,
    emu: EmulatorHandle,
    create_arn: str,
    accounts: dict[str, Account],
    captured_requests: Callable[[str], dict[str, Any]],
) -> None:
    # Given a create that succeeded, and the very event (real token) its machine put on the bus
    a = make_vpc("10.44.0.0/16")
    b = make_vpc("10.45.0.0/16")
    sfn = emu.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=create_arn,
        name=str(uuid.uuid4()),
        input=json.dumps({"Requester": {"VpcId": a.vpc_id}, "Accepter": {"VpcId": b.vpc_id}}),
    )["executionArn"]
    original = captured_requests(a.vpc_id)
    result = follow_execution(sfn, arn, timeout=60)
    assert result.succeeded, (result.error, result.cause)
    assert original["VpcPeeringConnectionId"] == result.output["VpcPeeringConnectionId"]
    before = snapshot(accounts, a, b)
    emu.reset_calls()
    # When EventBridge delivers that same event a second time (at-least-once delivery)
    put_acceptance_request(emu, original)
    calls = calls_after_delivery(emu)
    # Then the token no execution waits on any more makes the accept function drop it
    assert_dropped_before_any_ec2_call(calls)
    assert peering_status(accounts, a, result.output["VpcPeeringConnectionId"]) == "active"
    assert snapshot(accounts, a, b) == before


# ----------------------------------------------------- (c) another account's peering named
@pytest.mark.parametrize("account", [UNTRUSTED, MEMBER], ids=["untrusted", "trusted-member"])
def test_forged_event_for_another_accounts_peering_accepts_nothing(
    account: str, make_vpc: MakeVpc, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a pending peering made by hand inside another account (untrusted, or a trusted one)
    a = make_vpc("10.46.0.0/16", account=account)
    b = make_vpc("10.47.0.0/16", account=account)
    peering_id = peering_by_hand(accounts, a, b)
    before = snapshot(accounts, a, b)
    emu.reset_calls()
    # When a forged acceptance request names it, truthfully, with a made-up token
    put_acceptance_request(emu, forged_detail(peering_id, a, b, "made-up-execution"))
    calls = calls_after_delivery(emu)
    # Then nothing is assumed, read or accepted in that account, and nothing reported
    assert_dropped_before_any_ec2_call(calls)
    assert [c for c in calls if c["service"] == "sts"] == []
    assert peering_status(accounts, a, peering_id) == "pending-acceptance"
    assert snapshot(accounts, a, b) == before


def test_many_forged_events_at_once_accept_nothing(
    make_vpc: MakeVpc, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a hand-made pending peering between a hub VPC and a trusted member's VPC
    a = make_vpc("10.48.0.0/16")
    b = make_vpc("10.49.0.0/16", account=MEMBER)
    ec2 = accounts[HUB].ec2()
    peering_id = ec2.create_vpc_peering_connection(
        VpcId=a.vpc_id, PeerVpcId=b.vpc_id, PeerOwnerId=MEMBER
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    before = snapshot(accounts, a, b)
    emu.reset_calls()
    # When ten forged requests (each its own made-up token, some with swapped sides) arrive
    for n in range(10):
        requester, accepter = (a, b) if n % 2 else (b, a)
        put_acceptance_request(emu, forged_detail(peering_id, requester, accepter, f"x-{n}"))
    calls = calls_after_delivery(emu, expected_heartbeats=10)
    # Then every one was dropped at its heartbeat and the peering is still pending
    assert_dropped_before_any_ec2_call(calls)
    assert peering_status(accounts, a, peering_id) == "pending-acceptance"
    assert snapshot(accounts, a, b) == before
