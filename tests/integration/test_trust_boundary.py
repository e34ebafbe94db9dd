"""The trust boundary, tried as an attacker would, through the real ASL on the emulator.

Each test reproduces one finding of the trust-boundary review: what an input, an event, a
stolen task token, a reused execution name or a slow step could make the tool do outside what
it may. The session emulator allows the hub, 111111111111 and 222222222222 (not a trusted
requester); 333333333333 is outside the boundary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.executions import ExecutionResult, follow_execution, run_execution
from emulator.executions import history as execution_history
from emulator.testing import EmulatorHandle, mutating, running_emulator

from .conftest import (
    HUB,
    MEMBER,
    OUTSIDE,
    UNTRUSTED,
    Account,
    Vpc,
    peering_status,
    routes_to,
    side,
    snapshot,
)

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]
STACK = "vpc-peering"


def all_peerings_of(accounts: dict[str, Account], vpc: Vpc) -> list[dict[str, Any]]:
    """Every peering EC2 shows for the VPC, deleted and rejected ones included."""
    found = accounts[vpc.account].ec2(vpc.region).describe_vpc_peering_connections()
    return [
        p
        for p in found["VpcPeeringConnections"]
        if vpc.vpc_id in (p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"])
    ]


def history(emu: EmulatorHandle, execution_arn: str) -> list[dict[str, Any]]:
    return execution_history(emu.client("stepfunctions"), execution_arn)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start(emu: EmulatorHandle, arn: str, payload: Any, name: str | None = None) -> str:
    kwargs = {"name": name} if name else {}
    return str(
        emu.client("stepfunctions").start_execution(
            stateMachineArn=arn, input=json.dumps(payload), **kwargs
        )["executionArn"]
    )


def published(events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    """The details of the events of this type the execution's tasks put on the bus."""
    found = []
    for event in events:
        if event["type"] != "TaskScheduled":
            continue
        parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
        for entry in parameters.get("Entries", []):
            if entry.get("DetailType") == detail_type:
                detail = entry["Detail"]
                found.append(json.loads(detail) if isinstance(detail, str) else detail)
    return found


def errors_of(events: list[dict[str, Any]]) -> list[str]:
    """The error names of the failure events in a history, in order."""
    return [
        str(details["error"])
        for event in events
        for key, details in event.items()
        if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details
    ]


def acceptance_token(emu: EmulatorHandle, execution_arn: str) -> str:
    """The task token of the create's acceptance request, as anyone reading history gets it."""

    def token() -> str | None:
        requested = published(history(emu, execution_arn), "VPC Peering Acceptance Requested")
        return str(requested[0]["TaskToken"]) if requested else None

    return str(wait_for(token, "the acceptance request"))


@pytest.fixture
def hold_accepts(emu: EmulatorHandle) -> Iterator[None]:
    """The accept function cannot reach Step Functions (its heartbeat is throttled), so a create
    stays RUNNING at RequestAcceptance: an execution that holds its pair for as long as a test
    needs, like one waiting out a slow acceptance."""
    emu.clear_faults()
    emu.add_fault("states", "SendTaskHeartbeat", "ThrottlingException", times=0)
    yield
    emu.clear_faults()


def stop(emu: EmulatorHandle, execution_arn: str) -> None:
    emu.client("stepfunctions").stop_execution(executionArn=execution_arn)


# --------------------------------------------- 1. cleanup proves ownership from EC2 alone
def test_cleanup_never_takes_ownership_from_its_input(
    make_vpc: MakeVpc, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given a peering made by hand (untagged, active) with a route in the accepter VPC, and a
    # VPC in another region that has nothing to do with it
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    elsewhere = make_vpc("10.9.0.0/16", region="us-west-2")
    ec2 = accounts[HUB].ec2()
    peering_id = ec2.create_vpc_peering_connection(VpcId=vpc1.vpc_id, PeerVpcId=vpc2.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering_id)
    ec2.create_route(
        RouteTableId=vpc2.main_route_table,
        DestinationCidrBlock="10.0.0.0/16",
        VpcPeeringConnectionId=peering_id,
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When cleanup is given a "create output" whose Requester is the unrelated VPC, so the
    # peering is not visible where the input says it was requested
    result = cleanup(
        {"VpcPeeringConnectionId": peering_id, "Requester": side(elsewhere), "Accepter": side(vpc2)}
    )

    # Then the peering is found where it lives, EC2's record proves it is not ours, and
    # nothing is touched
    assert result.error == "NotManaged", (result.error, result.cause)
    assert peering_id in (result.cause or "")
    assert snapshot(accounts, vpc1, vpc2) == before


def test_cleanup_of_an_unknown_peering_clears_only_blackholes_in_its_own_tables(
    make_vpc: MakeVpc, create: Run, cleanup: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a route table this stack made (the dedicated table of VPC1's peering with VPC3)
    vpc1 = make_vpc("10.0.0.0/16", subnets=("10.0.1.0/24",))
    vpc2 = make_vpc("172.16.0.0/16")
    vpc3 = make_vpc("192.168.0.0/16")
    made = create(
        {
            "Requester": side(vpc1, DedicatedRouteTable={"SubnetIds": vpc1.subnets}),
            "Accepter": side(vpc3),
        }
    )
    assert made.succeeded, (made.error, made.cause)
    own_table = made.output["DedicatedRouteTables"][0]["RouteTableId"]
    # And a peering of VPC1 and VPC2 made by hand, routed in that table and in VPC2's main
    # table, then deleted by hand and by now gone from EC2 altogether (its routes blackholes)
    ec2 = accounts[HUB].ec2()
    ghost = ec2.create_vpc_peering_connection(VpcId=vpc1.vpc_id, PeerVpcId=vpc2.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=ghost)
    for table, cidr in ((own_table, "172.16.0.0/16"), (vpc2.main_route_table, "10.0.0.0/16")):
        ec2.create_route(
            RouteTableId=table, DestinationCidrBlock=cidr, VpcPeeringConnectionId=ghost
        )
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=ghost)
    emu.forget_peering(ghost)

    # When cleanup is asked to remove that peering, naming both VPCs
    result = cleanup(
        {"VpcPeeringConnectionId": ghost, "Requester": side(vpc1), "Accepter": side(vpc2)}
    )

    # Then nothing proves it was ours: only the blackhole in the stack's own table goes; the
    # hand-made table keeps its route, the stack's table itself stays (it belongs to another
    # peering), and so does that other peering
    assert result.succeeded, (result.error, result.cause)
    assert routes_to(accounts, vpc1, ghost) == []
    assert routes_to(accounts, vpc2, ghost) == [(vpc2.main_route_table, "10.0.0.0/16")]
    assert result.output["Removed"]["RouteTables"] == []
    assert result.output["Removed"]["PeeringDeleted"] is False
    assert peering_status(accounts, vpc1, made.output["VpcPeeringConnectionId"]) == "active"


# ------------------------------------------------------------- 2. only allowed accounts
def test_create_with_a_side_outside_the_boundary_fails_before_any_call(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a VPC in the hub and one in an account outside AllowedAccountIds
    vpc1 = make_vpc("10.0.0.0/16")
    foreign = make_vpc("172.16.0.0/16", account=OUTSIDE)
    before = snapshot(accounts, vpc1, foreign)

    # When asked to peer them (the account given directly, or only through a role ARN)
    emu.reset_calls()
    by_account = create({"Requester": side(vpc1), "Accepter": side(foreign)})
    role = f"arn:aws:iam::{OUTSIDE}:role/VpcPeeringMemberRole"
    by_role = create(
        {"Requester": side(vpc1), "Accepter": {"VpcId": foreign.vpc_id, "RoleArn": role}}
    )

    # Then both fail with AccountNotAllowed naming the field and the account, having made no
    # EC2 or STS call at all (nothing read, nothing assumed, nothing created)
    assert (by_account.error, by_role.error) == ("AccountNotAllowed", "AccountNotAllowed")
    assert "Accepter.AccountId" in (by_account.cause or "")
    assert OUTSIDE in (by_account.cause or "")
    assert "Accepter.RoleArn" in (by_role.cause or "")
    assert OUTSIDE in (by_role.cause or "")
    assert "CreatePeering" not in by_account.states_entered
    assert [c for c in emu.calls() if c["service"] in ("ec2", "sts")] == []
    assert snapshot(accounts, vpc1, foreign) == before


def test_cleanup_naming_a_side_outside_the_boundary_fails_and_changes_nothing(
    make_vpc: MakeVpc, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given a peering between the hub and an account outside the boundary (made by hand)
    vpc1 = make_vpc("10.0.0.0/16")
    foreign = make_vpc("172.16.0.0/16", account=OUTSIDE)
    peering_id = (
        accounts[HUB]
        .ec2()
        .create_vpc_peering_connection(
            VpcId=vpc1.vpc_id, PeerVpcId=foreign.vpc_id, PeerOwnerId=OUTSIDE
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    )
    before = snapshot(accounts, vpc1, foreign)

    # When cleanup names it with its sides, and then by id alone
    named = cleanup(
        {"VpcPeeringConnectionId": peering_id, "Requester": side(vpc1), "Accepter": side(foreign)}
    )
    by_id = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then both fail with AccountNotAllowed (the input's side, or the side EC2 reports)
    assert named.error == "AccountNotAllowed", (named.error, named.cause)
    assert "Accepter.AccountId" in (named.cause or "")
    assert OUTSIDE in (named.cause or "")
    assert by_id.error == "AccountNotAllowed", (by_id.error, by_id.cause)
    assert OUTSIDE in (by_id.cause or "")
    assert snapshot(accounts, vpc1, foreign) == before


# ----------------------------------------------------- 3. the accept policy runs in Plan
def test_a_create_the_accept_policy_refuses_creates_nothing_at_all(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given a requester VPC in an allowed account that is not a trusted requester
    vpc1 = make_vpc("10.0.0.0/16", account=UNTRUSTED)
    vpc2 = make_vpc("172.16.0.0/16")

    # When asked to peer
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then Plan refuses with AcceptDenied, and no peering ever existed, not even a deleted one
    assert result.error == "AcceptDenied", (result.error, result.cause)
    assert UNTRUSTED in (result.cause or "")
    assert "CreatePeering" not in result.states_entered
    assert all_peerings_of(accounts, vpc1) == []
    assert all_peerings_of(accounts, vpc2) == []


# ------------------------------------- 4. cleanup deletes only routes that still target it
def test_cleanup_leaves_a_route_that_was_replaced_after_its_plan(
    make_vpc: MakeVpc,
    create: Run,
    emu: EmulatorHandle,
    cleanup_arn: str,
    accounts: dict[str, Account],
) -> None:
    # Given a peering with its route in VPC1's main table, and an internet gateway
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    made = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert made.succeeded, (made.error, made.cause)
    ec2 = accounts[HUB].ec2()
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc1.vpc_id)

    # When a cleanup runs, and between its plan and its RemoveRoutes step (held 4 s by the
    # emulator) someone points that route at the gateway instead
    emu.clear_faults()
    emu.add_fault("lambda", "Invoke", "", nth=2, delay_seconds=4.0)
    try:
        arn = start(emu, cleanup_arn, made.output)
        wait_for(
            lambda: any(
                e["type"] == "TaskSucceeded" for e in history(emu, arn)
            ),  # CleanupPlan is the first task
            "the cleanup plan",
        )
        ec2.replace_route(
            RouteTableId=vpc1.main_route_table, DestinationCidrBlock="172.16.0.0/16", GatewayId=igw
        )
        result = follow_execution(emu.client("stepfunctions"), arn, timeout=120)
    finally:
        emu.clear_faults()

    # Then the cleanup succeeds, the replaced route (now to the gateway) is left alone, and
    # the accepter side's route and the peering are removed
    assert result.succeeded, (result.error, result.cause)
    routes = ec2.describe_route_tables(RouteTableIds=[vpc1.main_route_table])["RouteTables"][0]
    assert any(
        r.get("DestinationCidrBlock") == "172.16.0.0/16" and r.get("GatewayId") == igw
        for r in routes["Routes"]
    )
    assert routes_to(accounts, vpc2, made.output["VpcPeeringConnectionId"]) == []
    assert result.output["Removed"]["PeeringDeleted"] is True


# ---------------------------------------- 5. a failed compensation names what is left
def test_compensation_failure_names_the_peering_and_is_published(
    make_vpc: MakeVpc, create: Run, cleanup: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a create whose route step is refused, and whose compensation may not delete
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    emu.clear_faults()
    emu.add_fault("ec2", "CreateRoute", "UnauthorizedOperation", times=0)
    emu.add_fault("ec2", "DeleteVpcPeeringConnection", "UnauthorizedOperation", times=0)
    try:
        result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    finally:
        emu.clear_faults()

    # Then it ends CompensationFailed, the cause names the peering left behind and the remedy,
    # and "VPC Peering Failed" was published with the peering id
    assert result.error == "CompensationFailed", (result.error, result.cause)
    [live] = [p for p in all_peerings_of(accounts, vpc1) if p["Status"]["Code"] == "active"]
    peering_id = live["VpcPeeringConnectionId"]
    assert peering_id in (result.cause or "")
    assert "cleanup" in (result.cause or "")
    [failed] = published(history(emu, result.execution_arn), "VPC Peering Failed")
    assert failed["Error"] == "CompensationFailed"
    assert failed["VpcPeeringConnectionId"] == peering_id
    # And the remedy the cause names works
    assert cleanup({"VpcPeeringConnectionId": peering_id}).succeeded
    assert peering_status(accounts, vpc1, peering_id) == "deleted"


# --------------------------------- 6. ownership is not keyed on a reusable execution name
def test_a_reused_execution_name_never_makes_compensation_delete_an_older_peering(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a peering an older execution named "reused-name" made (tagged as this stack's,
    # with that execution name, as a stack deployed earlier under the same name would leave)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    vpc3 = make_vpc("192.168.0.0/16")
    ec2 = accounts[HUB].ec2()
    tags = [
        {"Key": "vpc-peering:managed-by", "Value": STACK},
        {"Key": "vpc-peering:execution", "Value": "reused-name"},
    ]
    older = ec2.create_vpc_peering_connection(
        VpcId=vpc1.vpc_id,
        PeerVpcId=vpc2.vpc_id,
        TagSpecifications=[{"ResourceType": "vpc-peering-connection", "Tags": tags}],
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=older)

    # When a new execution with that name peers VPC1 with VPC3 and its create call fails
    # (so compensation must search for what it may have created)
    emu.clear_faults()
    emu.add_fault("ec2", "CreateVpcPeeringConnection", "UnauthorizedOperation")
    try:
        result = create({"Requester": side(vpc1), "Accepter": side(vpc3)}, name="reused-name")
    finally:
        emu.clear_faults()

    # Then it fails, and the older peering (same name, another execution) is untouched
    assert result.error == "AccessDenied", (result.error, result.cause)
    assert peering_status(accounts, vpc1, older) == "active"


# --------------------------------------- 9. AddRoutes trusts EC2, not the task token result
def test_a_stolen_task_token_cannot_route_onto_a_pending_peering(
    make_vpc: MakeVpc,
    emu: EmulatorHandle,
    create_arn: str,
    accounts: dict[str, Account],
    hold_accepts: None,
) -> None:
    # Given a create waiting for acceptance (the accept function cannot report back)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    arn = start(emu, create_arn, {"Requester": side(vpc1), "Accepter": side(vpc2)})

    stolen = acceptance_token(emu, arn)
    pending = [p for p in all_peerings_of(accounts, vpc1) if p["Status"]["Code"] != "deleted"]
    peering_id = pending[0]["VpcPeeringConnectionId"]

    # When someone who read the token (history, bus, failure queue) reports it "active"
    emu.client("stepfunctions").send_task_success(
        taskToken=stolen,
        output=json.dumps(
            {"VpcPeeringConnectionId": peering_id, "Status": "active", "AcceptedNow": True}
        ),
    )
    result = follow_execution(emu.client("stepfunctions"), arn, timeout=120)

    # Then AddRoutes reads the peering from EC2, finds it pending, adds no route, and the
    # create is compensated (the pending request deleted)
    assert result.error == "PeeringFailed", (result.error, result.cause)
    assert "pending-acceptance" in (result.cause or "")
    assert routes_to(accounts, vpc1, peering_id) == []
    assert routes_to(accounts, vpc2, peering_id) == []
    assert peering_status(accounts, vpc1, peering_id) == "deleted"


# ---------------------------------------------------- 10. tags EC2 would choke on
def test_a_tag_with_a_character_ec2_refuses_is_invalid_input_naming_the_key(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given two VPCs
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")

    # When the request's tag value carries a NUL (which poisoned every later describe)
    emu.reset_calls()
    result = create(
        {"Requester": side(vpc1), "Accepter": side(vpc2), "Tags": {"team": "net\u0000work"}}
    )

    # Then it is InvalidInput naming the tag, before any EC2 call
    assert result.error == "InvalidInput", (result.error, result.cause)
    assert "Tags" in (result.cause or "")
    assert "'team'" in (result.cause or "")
    assert "U+0000" in (result.cause or "")
    assert mutating(emu.calls()) == []
    assert all_peerings_of(accounts, vpc1) == []


# ---------------------------------- 11. a lease is never taken from a running execution
def test_a_running_execution_keeps_its_pair_however_long_it_runs(
    make_vpc: MakeVpc,
    emu: EmulatorHandle,
    create_arn: str,
    accounts: dict[str, Account],
    hold_accepts: None,
) -> None:
    # Given a create that holds its pair's lease and is still running (waiting for acceptance),
    # and the lease's expiry time long past (as after 30 minutes)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    request = {"Requester": side(vpc1), "Accepter": side(vpc2)}
    first = start(emu, create_arn, request)
    wait_for(
        lambda: (
            "RequestAcceptance"
            in [e.get("stateEnteredEventDetails", {}).get("name") for e in history(emu, first)]
        ),
        "the first create to wait for acceptance",
    )
    ddb = accounts[HUB].client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if "LockTable" in t)
    [lease] = [i for i in ddb.scan(TableName=table)["Items"] if vpc1.vpc_id in i["LockId"]["S"]]
    ddb.update_item(
        TableName=table,
        Key={"LockId": lease["LockId"]},
        UpdateExpression="SET ExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 3600)}},
    )

    # When a second create of the same pair starts
    second = start(emu, create_arn, request)
    try:
        errors = wait_for(
            lambda: errors_of(history(emu, second)), "the second create's Plan", timeout=60
        )
        # Then its Plan is told the pair is in progress (and retries), rather than taking the
        # lease over and creating a second peering beside the first one's
        assert errors[0] == "PeeringInProgress", errors
        live = [p for p in all_peerings_of(accounts, vpc1) if p["Status"]["Code"] != "deleted"]
        assert len(live) == 1
    finally:
        stop(emu, second)
        # The first ends as a refused acceptance would end it (moto leaves an execution that
        # waits on a task token RUNNING after StopExecution, until its heartbeat times out)
        emu.client("stepfunctions").send_task_failure(
            taskToken=acceptance_token(emu, first), error="AcceptDenied", cause="test over"
        )
    # And when the holder ends, its compensation removes its request and frees the pair
    ended = follow_execution(emu.client("stepfunctions"), first, timeout=120)
    assert ended.error == "AcceptDenied", (ended.error, ended.cause)
    assert [p for p in all_peerings_of(accounts, vpc1) if p["Status"]["Code"] != "deleted"] == []


# ------------------------------------------------------------- a trusted member still works
def test_member_accounts_inside_the_boundary_are_peered(
    make_vpc: MakeVpc, create: Run, cleanup: Run
) -> None:
    # Given a hub VPC and a VPC in an allowed, trusted member account
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER)

    # When peered and cleaned up / Then both succeed
    made = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert made.succeeded, (made.error, made.cause)
    assert cleanup(made.output).succeeded


def test_a_response_ec2_cannot_parse_is_a_named_error_and_nothing_is_made(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given a VPC someone else tagged with a NUL (stored by the emulator; it breaks the XML of
    # every describe that returns it)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    accounts[HUB].ec2().create_tags(
        Resources=[vpc2.vpc_id], Tags=[{"Key": "poison", "Value": "a\u0000b"}]
    )

    # When it is peered
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then the execution fails with AwsCallFailed naming the call, not InternalError
    assert result.error == "AwsCallFailed", (result.error, result.cause)
    assert "ec2:DescribeVpcs" in (result.cause or "")
    assert "CreatePeering" not in result.states_entered


# ------------------------------------------------- a boundary that contradicts itself
def test_a_trusted_requester_outside_the_boundary_stops_every_execution_with_nothing_made() -> None:
    # Given a stack whose trusted requester is not an allowed account (AllowedAccountIds left
    # at its default: the hub only)
    with running_emulator(
        parameter_overrides={"TrustedRequesterAccountIds": MEMBER}
    ) as misconfigured:
        ec2 = misconfigured.client("ec2")
        vpc1 = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        vpc2 = ec2.create_vpc(CidrBlock="172.16.0.0/16")["Vpc"]["VpcId"]
        sfn = misconfigured.client("stepfunctions")

        # When a create runs
        result = run_execution(
            sfn,
            misconfigured.state_machine_arn("CreateStateMachine"),
            {"Requester": {"VpcId": vpc1}, "Accepter": {"VpcId": vpc2}},
            timeout=120,
        )

        # Then it fails with ConfigurationError naming both parameters and the account, and
        # "VPC Peering Failed" is published; no peering was made
        assert result.error == "ConfigurationError", (result.error, result.cause)
        assert "TrustedRequesterAccountIds" in (result.cause or "")
        assert "AllowedAccountIds" in (result.cause or "")
        assert MEMBER in (result.cause or "")
        assert "PublishFailed" in result.states_entered
        assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []
