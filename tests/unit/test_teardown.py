"""Undoing: error summaries, compensation of a failed create, and the cleanup machine's steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vpc_peering import peering, teardown
from vpc_peering.aws import Access
from vpc_peering.errors import AccessDenied, NotManaged, RouteConflict
from vpc_peering.models.documents import CleanupDocument
from vpc_peering.models.vocabulary import TAG_MANAGED_BY, TAG_PEERING_ID
from vpc_peering.settings import Settings

from .helpers import (
    MEMBER_ACCOUNT,
    REGION,
    STACK_NAME,
    TutorialVpcs,
    accept_into,
    create_chain,
    peering_status,
    routes_of,
    run_step,
    snapshot,
)


def lambda_error(name: str, message: str) -> dict[str, str]:
    """What a Catch puts in ``$.Error`` when a Lambda step raised ``name(message)``."""
    cause = {"errorType": name, "errorMessage": message, "requestId": "r", "stackTrace": ["..."]}
    return {"Error": name, "Cause": json.dumps(cause)}


# ------------------------------------------------------------------------- summarize_error
def test_lambda_error_cause_becomes_its_type_and_message() -> None:
    # Given the Catch output of a Lambda that raised RouteConflict
    error = lambda_error("RouteConflict", "Requester route table rtb-1 already has a route")
    # When summarised / Then the documented name and the plain message are kept
    assert teardown.summarize_error(error) == (
        "RouteConflict",
        "Requester route table rtb-1 already has a route",
    )


def test_lambda_error_type_wins_over_the_catch_name() -> None:
    error = {
        "Error": "Lambda.Unknown",
        "Cause": json.dumps({"errorType": "CidrOverlap", "errorMessage": "m"}),
    }
    assert teardown.summarize_error(error) == ("CidrOverlap", "m")


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (lambda_error("KeyError", "'VpcId'"), "KeyError: 'VpcId'"),
        ({"Error": "States.Runtime", "Cause": "bad path"}, "States.Runtime: bad path"),
        ({"Error": "Lambda.ServiceException", "Cause": ""}, "Lambda.ServiceException"),
    ],
)
def test_unknown_error_names_become_internal_error_keeping_the_name(
    error: dict[str, str], cause: str
) -> None:
    assert teardown.summarize_error(error) == ("InternalError", cause)


def test_a_function_stopped_at_its_timeout_is_a_timeout() -> None:
    # Given the Catch output of a task whose function Lambda stopped at its Timeout
    message = "RequestId: 1f0e Error: Task timed out after 120.00 seconds"
    error = lambda_error("Sandbox.Timedout", message)
    # When summarised / Then it is the documented Timeout, Lambda's words kept
    assert teardown.summarize_error(error) == (
        "Timeout",
        f"a step's function timed out: {message}",
    )


def test_non_dict_error_is_internal_error() -> None:
    assert teardown.summarize_error("boom") == ("InternalError", "boom")


def test_timeout_while_the_peering_is_pending_is_accept_timeout() -> None:
    # Given the acceptance wait timed out with the peering still pending
    doc = {"VpcPeeringConnectionId": "pcx-0123456789abcdef0", "Status": "pending-acceptance"}
    # When summarised
    name, cause = teardown.summarize_error({"Error": "States.Timeout", "Cause": ""}, doc)
    # Then it is AcceptTimeout naming the peering
    assert name == "AcceptTimeout"
    assert cause.startswith("pcx-0123456789abcdef0 was not accepted in time")


def test_heartbeat_timeout_while_pending_is_accept_timeout_too() -> None:
    doc = {"VpcPeeringConnectionId": "pcx-0123456789abcdef0", "Status": "initiating-request"}
    assert teardown.summarize_error({"Error": "States.HeartbeatTimeout"}, doc)[0] == "AcceptTimeout"


@pytest.mark.parametrize(
    "doc",
    [None, {}, {"VpcPeeringConnectionId": "pcx-0123456789abcdef0", "Status": "active"}],
)
def test_timeout_without_a_pending_peering_is_a_plain_timeout(doc: dict[str, Any] | None) -> None:
    name, cause = teardown.summarize_error({"Error": "States.Timeout", "Cause": "AddRoutes"}, doc)
    assert (name, cause) == ("Timeout", "a step timed out: AddRoutes")


def test_long_causes_are_cut() -> None:
    _, cause = teardown.summarize_error({"Error": "RouteConflict", "Cause": "x" * 5000})
    assert len(cause) == teardown.MAX_CAUSE


def test_report_failure_names_the_error(access: Access, settings: Settings) -> None:
    raw = {"VpcPeeringConnectionId": "pcx-1", "Error": lambda_error("NotManaged", "not ours")}
    report = teardown.report_failure(raw, access, settings)
    assert (report["Error"], report["Cause"]) == ("NotManaged", "not ours")
    assert (report["Stage"], report["VpcPeeringConnectionId"]) == ("Cleanup", "pcx-1")


# ---------------------------------------------------------------------------- compensation
def tables_tagged(ec2: Any, vpc_id: str, key: str, value: str) -> list[str]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    return [
        t["RouteTableId"]
        for t in tables["RouteTables"]
        if t["VpcId"] == vpc_id and {"Key": key, "Value": value} in t.get("Tags", [])
    ]


def table_ids(ec2: Any) -> set[str]:
    return {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]}


@pytest.fixture
def failed_add_routes(
    tutorial: TutorialVpcs,
    ec2: Any,
    make_igw: Callable[..., str],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> dict[str, Any]:
    """exec-1 created and accepted its peering, then AddRoutes failed half way.

    VPC1's main table has an unrelated default route; the requester routes from its main table
    and a dedicated table for subnet1. After planning, someone routed 10.0.0.0/16 in VPC2's main
    table to a gateway, so AddRoutes made the dedicated table and VPC1's routes, then failed.
    Returns the Compensate input (AddRoutes' input with the caught error) and the ids.
    """
    igw1 = make_igw(tutorial.vpc1)
    main1, main2 = main_table(tutorial.vpc1), main_table(tutorial.vpc2)
    ec2.create_route(RouteTableId=main1, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw1)
    request = {
        "Requester": {
            "VpcId": tutorial.vpc1,
            "RouteTables": "main",
            "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet1]},
        },
        "Accepter": {"VpcId": tutorial.vpc2},
    }
    doc = peering.plan(request, "exec-1", access, settings).dump()
    doc = accept_into(run_step(peering.create_peering, doc, access, settings), access, settings)
    igw2 = make_igw(tutorial.vpc2)
    ec2.create_route(RouteTableId=main2, DestinationCidrBlock="10.0.0.0/16", GatewayId=igw2)
    with pytest.raises(RouteConflict) as caught:
        run_step(peering.add_routes, doc, access, settings)
    pcx = doc["VpcPeeringConnectionId"]
    [dedicated] = tables_tagged(ec2, tutorial.vpc1, "vpc-peering:execution", "exec-1")
    # The half-done state compensation starts from
    assert routes_of(ec2, main1)["172.16.0.0/16"] == pcx
    assert routes_of(ec2, dedicated)["172.16.0.0/16"] == pcx
    return {
        "input": {**doc, "Error": lambda_error("RouteConflict", str(caught.value))},
        "pcx": pcx,
        "main1": main1,
        "main2": main2,
        "dedicated": dedicated,
        "igw1": igw1,
        "igw2": igw2,
    }


def test_compensate_after_add_routes_removes_exactly_what_this_execution_made(
    failed_add_routes: dict[str, Any],
    tutorial: TutorialVpcs,
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    f = failed_add_routes
    # When compensation runs on AddRoutes' input with the caught error
    result = teardown.compensate(f["input"], access, settings)
    # Then the error is named for the Fail state
    assert result["Error"] == "RouteConflict"
    assert result["Cause"].startswith("Accepter route table")
    assert result["VpcPeeringConnectionId"] == f["pcx"]
    # And the route it added to VPC1's main table is gone, the unrelated default route stays
    assert routes_of(ec2, f["main1"]) == {"10.0.0.0/16": "local", "0.0.0.0/0": f["igw1"]}
    # And the gateway route someone else added in VPC2 is untouched
    assert routes_of(ec2, f["main2"])["10.0.0.0/16"] == f["igw2"]
    # And the dedicated table it made is disassociated and deleted
    assert f["dedicated"] not in table_ids(ec2)
    associated = {
        a.get("SubnetId")
        for t in ec2.describe_route_tables()["RouteTables"]
        for a in t.get("Associations", [])
    }
    assert tutorial.subnet1 not in associated
    # And the peering it created is deleted
    assert peering_status(ec2, f["pcx"]) == "deleted"
    assert result["Compensation"] == {
        "RoutesRemoved": [
            {
                "Side": "Requester",
                "RouteTableId": f["main1"],
                "Destination": "172.16.0.0/16",
                "Dedicated": False,
                "State": "planned",
                "Narrows": None,
            }
        ],
        "RouteTablesDeleted": [f["dedicated"]],
        "PeeringDeleted": True,
    }


def test_compensating_twice_changes_nothing_the_second_time(
    failed_add_routes: dict[str, Any], ec2: Any, access: Access, settings: Settings
) -> None:
    # Given compensation ran once
    teardown.compensate(failed_add_routes["input"], access, settings)
    before = snapshot(ec2)
    # When it runs again (a retry of the Compensate state)
    again = teardown.compensate(failed_add_routes["input"], access, settings)
    # Then it removes nothing more and still names the error
    assert again["Error"] == "RouteConflict"
    assert again["Compensation"] == {
        "RoutesRemoved": [],
        "RouteTablesDeleted": [],
        "PeeringDeleted": False,
    }
    assert snapshot(ec2) == before


def test_compensate_keeps_present_routes_and_a_reused_peering(
    tutorial: TutorialVpcs,
    ec2: Any,
    make_route_table: Callable[..., str],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given exec-1 peered the VPCs with routes in both main tables
    done = create_chain(
        {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}},
        "exec-1",
        access,
        settings,
    )
    pcx = done["VpcPeeringConnectionId"]
    main1, main2 = main_table(tutorial.vpc1), main_table(tutorial.vpc2)
    # And later VPC1 got a new table, and exec-2 (same pair) reused the peering and added its route
    extra = make_route_table(tutorial.vpc1, subnet_ids=(tutorial.subnet1,))
    doc = peering.plan(
        {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}},
        "exec-2",
        access,
        settings,
    ).dump()
    assert {(r["RouteTableId"], r["State"]) for r in doc["Routes"]} == {
        (main1, "present"),
        (extra, "planned"),
        (main2, "present"),
    }
    doc = run_step(peering.create_peering, doc, access, settings)
    doc = run_step(peering.add_routes, doc, access, settings)
    assert routes_of(ec2, extra)["172.16.0.0/16"] == pcx
    # When a later step of exec-2 fails and compensation runs on its document
    result = teardown.compensate(
        {**doc, "Error": lambda_error("VerificationFailed", "1 check(s) failed")}, access, settings
    )
    # Then only exec-2's route is removed; the present routes and the reused peering stay
    assert "172.16.0.0/16" not in routes_of(ec2, extra)
    assert routes_of(ec2, main1)["172.16.0.0/16"] == pcx
    assert routes_of(ec2, main2)["10.0.0.0/16"] == pcx
    assert peering_status(ec2, pcx) == "active"
    assert result["Compensation"]["PeeringDeleted"] is False
    assert [r["RouteTableId"] for r in result["Compensation"]["RoutesRemoved"]] == [extra]
    assert result["Error"] == "VerificationFailed"


def test_compensate_a_reused_peering_deletes_no_peering(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a pending peering exec-1 created, which exec-2 reused, then exec-2 timed out
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    first = run_step(
        peering.create_peering,
        peering.plan(request, "exec-1", access, settings).dump(),
        access,
        settings,
    )
    doc = run_step(
        peering.create_peering,
        peering.plan(request, "exec-2", access, settings).dump(),
        access,
        settings,
    )
    assert doc["PeeringAction"] == "reuse"
    # When exec-2 compensates
    result = teardown.compensate(
        {**doc, "Error": {"Error": "States.Timeout", "Cause": ""}}, access, settings
    )
    # Then the timeout is named AcceptTimeout and exec-1's peering stays
    assert result["Error"] == "AcceptTimeout"
    assert result["Compensation"]["PeeringDeleted"] is False
    assert peering_status(ec2, first["VpcPeeringConnectionId"]) == "pending-acceptance"


def test_compensate_finds_a_created_peering_whose_answer_was_lost(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given CreatePeering made the peering but failed before returning (its input has no id)
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    planned = peering.plan(request, "exec-1", access, settings).dump()
    pcx = run_step(peering.create_peering, planned, access, settings)["VpcPeeringConnectionId"]
    # When compensation runs on CreatePeering's input
    result = teardown.compensate(
        {**planned, "Error": lambda_error("TransientAwsError", "throttled")}, access, settings
    )
    # Then it finds the peering by its execution tag and deletes it
    assert result["Compensation"]["PeeringDeleted"] is True
    assert peering_status(ec2, pcx) == "deleted"


def test_compensate_on_a_plan_failure_does_nothing_and_names_the_error(
    tutorial: TutorialVpcs,
    ec2: Any,
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    # Given the Plan state failed (its Catch puts the error beside the request)
    before = snapshot(ec2)
    raw = {
        "Request": {"Requester": {"VpcId": tutorial.vpc1}},
        "Error": {"Error": "CidrOverlap", "Cause": "Requester vpc-1 CIDR 10.0.0.0/16 overlaps ..."},
    }
    # When compensation runs
    result = teardown.compensate(raw, access, settings)
    # Then it names the error, compensates nothing and calls nothing
    assert result == {
        "Error": "CidrOverlap",
        "Cause": "Requester vpc-1 CIDR 10.0.0.0/16 overlaps ...",
        "Stage": "Plan",
        "DryRun": False,
        "VpcPeeringConnectionId": None,
        "RequesterVpcId": tutorial.vpc1,
        "AccepterVpcId": None,
        "Compensation": None,
    }
    assert ec2_calls == []
    assert snapshot(ec2) == before


def test_compensate_on_an_unreadable_document_does_nothing(
    access: Access, settings: Settings, ec2_calls: list[str]
) -> None:
    raw = {"ExecutionName": "exec-1", "Error": lambda_error("InvalidInput", "Document: bad")}
    result = teardown.compensate(raw, access, settings)
    assert (result["Error"], result["Compensation"]) == ("InvalidInput", None)
    assert ec2_calls == []


# --------------------------------------------------------------------------------- cleanup
def cleanup(raw: Any, execution: str, access: Access, settings: Settings) -> dict[str, Any]:
    """The cleanup machine: plan, remove routes, delete peering (documents as JSON)."""
    doc = teardown.cleanup_plan(raw, execution, access, settings).dump()
    for step in (teardown.remove_routes, teardown.delete_peering):
        doc = step(CleanupDocument.model_validate(doc), access, settings).dump()
    return doc


@pytest.fixture
def peered(
    tutorial: TutorialVpcs,
    ec2: Any,
    make_igw: Callable[..., str],
    make_route_table: Callable[..., str],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> dict[str, Any]:
    """The tutorial peered by exec-1 (dedicated table for subnet1, every table of VPC2), with
    things cleanup must leave alone: an unrelated route in the same table as a peering route,
    an untagged table, and a table this stack tagged for another peering."""
    done = create_chain(
        {
            "Requester": {
                "VpcId": tutorial.vpc1,
                "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet1]},
            },
            "Accepter": {"VpcId": tutorial.vpc2},
        },
        "exec-1",
        access,
        settings,
    )
    igw2 = make_igw(tutorial.vpc2)
    main2 = main_table(tutorial.vpc2)
    ec2.create_route(RouteTableId=main2, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw2)
    untagged = make_route_table(tutorial.vpc1)
    other_peering = make_route_table(
        tutorial.vpc1,
        tags={TAG_MANAGED_BY: STACK_NAME, TAG_PEERING_ID: "pcx-0123456789abcdef0"},
    )
    return {
        "done": done,
        "pcx": done["VpcPeeringConnectionId"],
        "dedicated": done["DedicatedRouteTables"][0]["RouteTableId"],
        "main1": main_table(tutorial.vpc1),
        "main2": main2,
        "igw2": igw2,
        "untagged": untagged,
        "other_peering": other_peering,
    }


def test_cleanup_removes_only_the_peerings_routes_and_tables(
    peered: dict[str, Any], tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    p = peered
    # When the create output is cleaned up
    planned = teardown.cleanup_plan(p["done"], "cleanup-1", access, settings).dump()
    # Then the plan lists the routes to the peering and this stack's table for it, nothing else
    assert planned["Managed"] is True
    assert planned["StatusBefore"] == "active"
    assert {(r["RouteTableId"], r["Destination"], r["Dedicated"]) for r in planned["Routes"]} == {
        (p["dedicated"], "172.16.0.0/16", True),
        (p["main2"], "10.0.0.0/16", False),
    }
    assert [t["RouteTableId"] for t in planned["DedicatedRouteTables"]] == [p["dedicated"]]
    # When the remaining steps run
    doc = teardown.remove_routes(CleanupDocument.model_validate(planned), access, settings).dump()
    doc = teardown.delete_peering(CleanupDocument.model_validate(doc), access, settings).dump()
    # Then the peering route is gone but the unrelated route in the same table survives
    assert routes_of(ec2, p["main2"]) == {"172.16.0.0/16": "local", "0.0.0.0/0": p["igw2"]}
    # And only this peering's dedicated table is deleted; the others stay
    remaining = table_ids(ec2)
    assert p["dedicated"] not in remaining
    assert {p["untagged"], p["other_peering"], p["main1"], p["main2"]} <= remaining
    # And the peering is deleted
    assert peering_status(ec2, p["pcx"]) == "deleted"
    assert doc["Status"] == "deleted"
    assert doc["Result"] == "Removed"
    assert doc["Removed"]["PeeringDeleted"] is True
    assert doc["Removed"]["RouteTables"] == [p["dedicated"]]
    assert len(doc["Removed"]["Routes"]) == 2


def test_cleanup_twice_changes_nothing_the_second_time(
    peered: dict[str, Any], ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a first cleanup
    cleanup(peered["done"], "cleanup-1", access, settings)
    before = snapshot(ec2)
    # When cleaned up again
    again = cleanup(peered["done"], "cleanup-2", access, settings)
    # Then nothing is found and nothing changes
    assert again["Result"] == "AlreadyDeleted"
    assert again["Routes"] == []
    assert again["DedicatedRouteTables"] == []
    assert again["Removed"] == {"Routes": [], "RouteTables": [], "PeeringDeleted": False}
    assert snapshot(ec2) == before


def test_cleanup_by_bare_peering_id(
    peered: dict[str, Any], ec2: Any, access: Access, settings: Settings
) -> None:
    # When cleanup is given only the peering id
    doc = cleanup({"VpcPeeringConnectionId": peered["pcx"]}, "cleanup-1", access, settings)
    # Then the sides come from EC2 and everything of the peering is removed
    assert doc["Requester"]["VpcId"] == peered["done"]["Requester"]["VpcId"]
    assert doc["Removed"]["PeeringDeleted"] is True
    assert doc["Removed"]["RouteTables"] == [peered["dedicated"]]
    assert "10.0.0.0/16" not in routes_of(ec2, peered["main2"])
    assert peering_status(ec2, peered["pcx"]) == "deleted"


def test_cleanup_refuses_a_peering_this_stack_did_not_create(
    tutorial: TutorialVpcs,
    ec2: Any,
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given a peering made by hand, active, with a route to it
    pcx = ec2.create_vpc_peering_connection(VpcId=tutorial.vpc1, PeerVpcId=tutorial.vpc2)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.create_route(
        RouteTableId=main_table(tutorial.vpc1),
        DestinationCidrBlock="172.16.0.0/16",
        VpcPeeringConnectionId=pcx,
    )
    before = snapshot(ec2)
    # When cleanup is asked to remove it
    with pytest.raises(NotManaged) as caught:
        teardown.cleanup_plan({"VpcPeeringConnectionId": pcx}, "cleanup-1", access, settings)
    # Then it refuses, naming the peering and the missing tag, and nothing changed
    assert pcx in str(caught.value)
    assert f"{TAG_MANAGED_BY}={STACK_NAME}" in str(caught.value)
    assert snapshot(ec2) == before


def test_cleanup_of_an_unknown_peering_does_nothing(
    access: Access, settings: Settings, aws: None
) -> None:
    doc = cleanup({"VpcPeeringConnectionId": "pcx-0123456789abcdef0"}, "c", access, settings)
    assert (doc["Status"], doc["Managed"], doc["Routes"]) == ("not found", False, [])
    assert doc["Result"] == "NotFound"
    assert doc["Removed"]["PeeringDeleted"] is False


def test_cleanup_of_a_deleted_peering_not_ours_does_nothing(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    pcx = ec2.create_vpc_peering_connection(VpcId=tutorial.vpc1, PeerVpcId=tutorial.vpc2)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    doc = cleanup({"VpcPeeringConnectionId": pcx}, "c", access, settings)
    assert (doc["Status"], doc["Managed"], doc["Result"]) == ("deleted", False, "AlreadyDeleted")


def test_cleanup_cross_account_by_id_removes_the_member_side_route(
    make_vpc: Callable[..., str],
    ec2_in: Callable[[str], Any],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given a peering between the hub and a member account, made by the create chain
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER_ACCOUNT)
    request = {
        "Requester": {"VpcId": vpc1},
        "Accepter": {"VpcId": vpc2, "AccountId": MEMBER_ACCOUNT},
    }
    pcx = create_chain(request, "exec-1", access, settings)["VpcPeeringConnectionId"]
    member_main = main_table(vpc2, account=MEMBER_ACCOUNT)
    assert routes_of(ec2_in(MEMBER_ACCOUNT), member_main)["10.0.0.0/16"] == pcx
    # When cleaned up by id
    doc = cleanup({"VpcPeeringConnectionId": pcx}, "cleanup-1", access, settings)
    # Then the member account's route is removed through its role, and the peering deleted
    assert doc["Accepter"]["AccountId"] == MEMBER_ACCOUNT
    assert "10.0.0.0/16" not in routes_of(ec2_in(MEMBER_ACCOUNT), member_main)
    assert "172.16.0.0/16" not in routes_of(ec2_in("123456789012"), main_table(vpc1))
    assert doc["Removed"]["PeeringDeleted"] is True


def test_cleanup_with_the_accepters_account_unreadable_removes_from_the_requesters_side(
    make_vpc: Callable[..., str],
    ec2_in: Callable[[str], Any],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a group-like peering from the hub to a member account, routed both ways
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER_ACCOUNT)
    request = {
        "Requester": {"VpcId": vpc1},
        "Accepter": {"VpcId": vpc2, "AccountId": MEMBER_ACCOUNT},
    }
    pcx = create_chain(request, "exec-1", access, settings)["VpcPeeringConnectionId"]
    member_main = main_table(vpc2, account=MEMBER_ACCOUNT)
    # And the member account's route tables cannot be read any more
    real = teardown.ec2.describe_route_tables

    def describe(access: Access, loc: Any, vpc_ids: Any) -> Any:
        if loc.account_id == MEMBER_ACCOUNT:
            raise AccessDenied(f"ec2:DescribeRouteTables in {loc}: UnauthorizedOperation")
        return real(access, loc, vpc_ids)

    monkeypatch.setattr(teardown.ec2, "describe_route_tables", describe)
    # When cleaned up as a reconcile asks (both sides named)
    sides = {
        "Requester": {"VpcId": vpc1, "AccountId": "123456789012", "Region": REGION},
        "Accepter": {"VpcId": vpc2, "AccountId": MEMBER_ACCOUNT, "Region": REGION},
    }
    doc = cleanup({"VpcPeeringConnectionId": pcx, **sides}, "cleanup-1", access, settings)
    # Then the peering's own record (read where its tags are) proves it ours: the requester's
    # route is removed and the peering deleted
    assert (doc["Result"], doc["Removed"]["PeeringDeleted"]) == ("Removed", True)
    assert "172.16.0.0/16" not in routes_of(ec2_in("123456789012"), main_table(vpc1))
    # And the accepter's route is left (a blackhole now), named in the output
    assert routes_of(ec2_in(MEMBER_ACCOUNT), member_main)["10.0.0.0/16"] == pcx
    [unread] = doc["Unreadable"]
    assert unread.startswith(f"Accepter: account {MEMBER_ACCOUNT} in {REGION} could not be read")
    assert "AccessDenied" in unread


def test_stale_references_to_the_peer_are_revoked_when_ours_and_reported_otherwise(
    peered: dict[str, Any], tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given groups in both VPCs, and, after cleanup planned, two rules on the accepter's group
    # referencing the requester's group: one tagged as this stack's for this peering, one by hand
    app = ec2.create_security_group(GroupName="app", Description="a", VpcId=tutorial.vpc1)
    db = ec2.create_security_group(GroupName="db", Description="d", VpcId=tutorial.vpc2)
    app_sg, db_sg = app["GroupId"], db["GroupId"]
    doc = teardown.cleanup_plan({"VpcPeeringConnectionId": peered["pcx"]}, "c-1", access, settings)
    ours = {TAG_MANAGED_BY: STACK_NAME, TAG_PEERING_ID: peered["pcx"]}
    for port, tags in ((5432, ours), (6379, {})):
        tagged = [{"Key": k, "Value": v} for k, v in tags.items()]
        ec2.authorize_security_group_ingress(
            GroupId=db_sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "UserIdGroupPairs": [{"GroupId": app_sg}],
                }
            ],
            TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": tagged}]
            if tagged
            else [],
        )
    # When the cleanup removes routes and deletes the peering
    doc = teardown.remove_routes(doc, access, settings)
    done = teardown.delete_peering(doc, access, settings).dump()
    # Then the stale reference this stack made is revoked, the hand-made one reported
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [db_sg]}])
    ports = sorted(r["FromPort"] for r in left["SecurityGroupRules"] if not r["IsEgress"])
    assert ports == [6379]
    assert [
        (s["GroupId"], s["ReferencedGroupId"], s["FromPort"]) for s in done["StaleReferences"]
    ] == [(db_sg, app_sg, 6379)]
    assert [r["FromPort"] for r in done["Removed"]["SecurityGroupRules"]] == [5432]
