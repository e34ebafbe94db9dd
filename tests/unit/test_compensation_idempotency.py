"""Undoing is itself safe to repeat: compensation and cleanup survive a crash midway.

Step Functions retries a failed step with the same input, and an operator may rerun a machine,
so every undo step must finish from any half-done state and then find nothing more to do. Part
of the route-hijack guard is checked here too: plans route only to the peer VPC's own CIDRs
(that nothing can replace a route, and that the function acting on events cannot add one, is
checked on the code and templates in tests/contract/test_route_guard.py).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest

from vpc_peering import ec2 as ec2_module
from vpc_peering import peering, teardown
from vpc_peering.aws import Access
from vpc_peering.errors import InvalidInput
from vpc_peering.models.documents import CleanupDocument
from vpc_peering.settings import Settings

from .helpers import (
    TutorialVpcs,
    accept_into,
    create_chain,
    mutating,
    peering_status,
    run_step,
    snapshot,
)

#: The EC2 wrappers compensation and cleanup change things with.
UNDO_CALLS = ("delete_route", "disassociate_route_table", "delete_route_table", "delete_peering")


class Crash(Exception):
    """The Lambda died mid-step (timeout, out of memory, lost connection)."""


def lambda_error(name: str, message: str) -> dict[str, str]:
    """What a Catch puts in ``$.Error`` when a Lambda step raised ``name(message)``."""
    cause = {"errorType": name, "errorMessage": message, "requestId": "r", "stackTrace": []}
    return {"Error": name, "Cause": json.dumps(cause)}


def live_state(client: Any) -> dict[str, Any]:
    """``snapshot`` without deleted peerings: EC2 keeps listing those for a while."""
    state = snapshot(client)
    for part in state.values():
        part["peerings"] = {k: v for k, v in part["peerings"].items() if v != "deleted"}
    return state


@pytest.fixture
def crash_on_call(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Arm a crash on the n-th undo call (before it reaches EC2, or just after it succeeded)."""
    armed: dict[str, Any] = {"n": 0, "after": False, "seen": 0, "crashed": False}

    def wrap(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            armed["seen"] += 1
            hit = armed["seen"] == armed["n"]
            if hit and not armed["after"]:
                armed["crashed"] = True
                raise Crash(f"crashed before {name}")
            result = real(*args, **kwargs)
            if hit and armed["after"]:
                armed["crashed"] = True
                raise Crash(f"crashed after {name}")
            return result

        return call

    for name in UNDO_CALLS:
        monkeypatch.setattr(ec2_module, name, wrap(name, getattr(ec2_module, name)))

    def arm(n: int, after: bool) -> dict[str, Any]:
        armed.update(n=n, after=after, seen=0, crashed=False)
        return armed

    yield arm
    armed["n"] = 0


@pytest.fixture
def failed_after_routes(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> dict[str, Any]:
    """exec-1 made everything (peering, a dedicated table per side, routes in the main and the
    dedicated tables of both sides), then ConfigureDns failed. Returns the state before the
    create and the Compensate input (ConfigureDns' input with the caught error)."""
    before = live_state(ec2)
    request = {
        "Requester": {
            "VpcId": tutorial.vpc1,
            "RouteTables": "main",
            "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet1]},
        },
        "Accepter": {
            "VpcId": tutorial.vpc2,
            "RouteTables": "main",
            "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet2]},
        },
    }
    doc = peering.plan(request, "exec-1", access, settings).dump()
    doc = accept_into(run_step(peering.create_peering, doc, access, settings), access, settings)
    doc = run_step(peering.add_routes, doc, access, settings)
    assert len(doc["Routes"]) == 4
    assert {r["State"] for r in doc["Routes"]} == {"created"}
    assert live_state(ec2) != before
    return {
        "before": before,
        "input": {**doc, "Error": lambda_error("PeeringFailed", "pcx is not active")},
        "pcx": doc["VpcPeeringConnectionId"],
    }


# ----------------------------------------------------------------- (a) compensate twice
def test_second_compensation_removes_nothing_and_makes_no_mutating_call(
    failed_after_routes: dict[str, Any],
    ec2: Any,
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    f = failed_after_routes
    # Given compensation ran once on the failure document and undid everything
    first = teardown.compensate(f["input"], access, settings)

    def routes(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(r["RouteTableId"], r["Destination"]) for r in entries if not r["Dedicated"]}

    # (routes in its own tables may go with the tables)
    assert routes(f["input"]["Routes"]) <= routes(first["Compensation"]["RoutesRemoved"])
    assert len(first["Compensation"]["RouteTablesDeleted"]) == 2
    assert first["Compensation"]["PeeringDeleted"] is True
    after_first = snapshot(ec2)
    ec2_calls.clear()
    # When it runs again on the very same document (a retry of the Compensate state)
    second = teardown.compensate(f["input"], access, settings)
    # Then it removes nothing, makes no mutating EC2 call, and still names the error
    assert second["Error"] == "PeeringFailed"
    assert second["Compensation"] == {
        "RoutesRemoved": [],
        "RouteTablesDeleted": [],
        "PeeringDeleted": False,
    }
    assert mutating(ec2_calls) == []
    assert snapshot(ec2) == after_first
    # And the account is as it was before the create
    assert live_state(ec2) == f["before"]


# ------------------------------------------------------------ (b) a crash midway, rerun
#: Compensating ``failed_after_routes`` takes at most 4 DeleteRoute, 2 DisassociateRouteTable,
#: 2 DeleteRouteTable and 1 DeleteVpcPeeringConnection: a crash is tried at each of them
#: (``test_the_crash_matrices_cover_every_change`` fails if undoing ever takes more calls).
COMPENSATE_CALLS = 9
#: RemoveRoutes of ``peered``: at most 3 DeleteRoute, 1 DisassociateRouteTable, 1 DeleteRouteTable.
REMOVE_ROUTES_CALLS = 5


def crash_points(calls: int) -> list[Any]:
    """Before the first change, and right after each one. (Crashing before change n leaves EC2
    as crashing after change n - 1 does, so these are all the distinct half-done states.)"""
    return [pytest.param(1, False, id="before-1")] + [
        pytest.param(n, True, id=f"after-{n}") for n in range(1, calls + 1)
    ]


def crash_then_rerun(armed: dict[str, Any], step: Any, *args: Any) -> Any:
    """Run ``step`` with the crash armed; if it crashed, run it again (the retry) unarmed."""
    try:
        result = step(*args)
    except Crash:
        assert armed["crashed"]
        armed["n"] = 0
        return step(*args)
    # Undoing took fewer changes than the crash point: nothing crashed, nothing to retry
    assert armed["seen"] < armed["n"]
    armed["n"] = 0
    return result


@pytest.mark.parametrize(("crash_at", "after"), crash_points(COMPENSATE_CALLS))
def test_compensation_crashed_midway_finishes_on_rerun(
    failed_after_routes: dict[str, Any],
    crash_on_call: Any,
    crash_at: int,
    after: bool,
    ec2: Any,
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    f = failed_after_routes
    # Given compensation crashes at its n-th change (before it reaches EC2, or right after)
    armed = crash_on_call(crash_at, after)
    # When the Compensate state is retried with the same document (no crash this time)
    rerun = crash_then_rerun(armed, teardown.compensate, f["input"], access, settings)
    # Then it finishes and names the original error
    assert rerun["Error"] == "PeeringFailed"
    assert rerun["VpcPeeringConnectionId"] == f["pcx"]
    # And the end state equals the state before the create: no route, table or peering left
    assert live_state(ec2) == f["before"]
    assert peering_status(ec2, f["pcx"]) == "deleted"
    # And a further run finds nothing to do
    ec2_calls.clear()
    third = teardown.compensate(f["input"], access, settings)
    assert mutating(ec2_calls) == []
    assert third["Compensation"]["RoutesRemoved"] == []
    assert third["Compensation"]["RouteTablesDeleted"] == []


def test_the_crash_matrices_cover_every_change(
    tutorial: TutorialVpcs,
    failed_after_routes: dict[str, Any],
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    # Given the failure document / When compensated without a crash
    ec2_calls.clear()
    teardown.compensate(failed_after_routes["input"], access, settings)
    # Then it made no more changes than the matrix crashes at, and at least one per kind
    made = mutating(ec2_calls)
    assert 0 < len(made) <= COMPENSATE_CALLS
    assert {"DeleteRouteTable", "DisassociateRouteTable", "DeleteVpcPeeringConnection"} <= set(made)
    # Given a finished create of the other scenario / When its cleanup removes the routes
    done = create_chain(peered_request(tutorial), "exec-2", access, settings)
    planned = teardown.cleanup_plan(done, "cleanup-1", access, settings).dump()
    ec2_calls.clear()
    remove_routes(planned, access, settings)
    # Then the same holds for RemoveRoutes
    made = mutating(ec2_calls)
    assert 0 < len(made) <= REMOVE_ROUTES_CALLS
    assert {"DeleteRoute", "DeleteRouteTable"} <= set(made)


def test_compensation_removes_main_routes_even_when_a_dedicated_table_vanished(
    failed_after_routes: dict[str, Any], ec2: Any, access: Access, settings: Settings
) -> None:
    f = failed_after_routes
    # Given someone disassociated and deleted the requester's dedicated table (Verify then fails)
    table = next(t for t in f["input"]["DedicatedRouteTables"] if t["Side"] == "Requester")
    for association in table["Associations"]:
        ec2.disassociate_route_table(AssociationId=association["AssociationId"])
    ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    # When compensation runs
    teardown.compensate(f["input"], access, settings)
    # Then the requester's main-table route to the peering is gone too
    assert live_state(ec2) == f["before"]


# ----------------------------------------------- (c) cleanup crashed midway, then rerun
def peered_request(tutorial: TutorialVpcs) -> dict[str, Any]:
    """Routes from both main tables, and a dedicated table on the requester side."""
    return {
        "Requester": {
            "VpcId": tutorial.vpc1,
            "RouteTables": "main",
            "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet1]},
        },
        "Accepter": {"VpcId": tutorial.vpc2, "RouteTables": "main"},
    }


@pytest.fixture
def peered(tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings) -> dict[str, Any]:
    """A finished create (dedicated table and main-table routes on both sides), its output,
    the state before it, and the cleanup machine's plan for it."""
    before = live_state(ec2)
    done = create_chain(peered_request(tutorial), "exec-1", access, settings)
    planned = teardown.cleanup_plan(done, "cleanup-1", access, settings).dump()
    assert len(planned["Routes"]) >= 2
    return {"before": before, "done": done, "planned": planned}


def remove_routes(doc: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    return teardown.remove_routes(CleanupDocument.model_validate(doc), access, settings).dump()


def delete_peering(doc: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    return teardown.delete_peering(CleanupDocument.model_validate(doc), access, settings).dump()


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
def test_delete_peering_crashed_after_remove_routes_finishes_on_retry(
    peered: dict[str, Any],
    crash_on_call: Any,
    after: bool,
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    p = peered
    # Given RemoveRoutes finished and DeletePeering crashed on its delete call
    removed = remove_routes(p["planned"], access, settings)
    armed = crash_on_call(1, after)
    with pytest.raises(Crash):
        delete_peering(removed, access, settings)
    armed["n"] = 0
    # When DeletePeering is retried with the same input
    done = delete_peering(removed, access, settings)
    # Then it confirms the peering gone, and the VPCs are as before the create
    assert done["Status"] == "deleted"
    assert peering_status(ec2, p["done"]["VpcPeeringConnectionId"]) == "deleted"
    assert live_state(ec2) == p["before"]


@pytest.mark.parametrize(("crash_at", "after"), crash_points(REMOVE_ROUTES_CALLS))
def test_remove_routes_crashed_midway_finishes_on_retry(
    peered: dict[str, Any],
    crash_on_call: Any,
    crash_at: int,
    after: bool,
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    p = peered
    # Given RemoveRoutes crashes at its n-th change (before it reaches EC2, or right after)
    armed = crash_on_call(crash_at, after)
    # When RemoveRoutes is retried with the same input, then DeletePeering runs
    doc = crash_then_rerun(armed, remove_routes, p["planned"], access, settings)
    doc = delete_peering(doc, access, settings)
    # Then the cleanup completes and the VPCs are as before the create
    assert doc["Status"] == "deleted"
    assert live_state(ec2) == p["before"]


def test_a_new_cleanup_after_a_crash_between_the_steps_completes(
    peered: dict[str, Any], ec2: Any, ec2_calls: list[str], access: Access, settings: Settings
) -> None:
    p = peered
    # Given a cleanup execution died after RemoveRoutes, before DeletePeering ever ran
    remove_routes(p["planned"], access, settings)
    pcx = p["done"]["VpcPeeringConnectionId"]
    assert peering_status(ec2, pcx) == "active"
    # When the operator runs the cleanup machine again on the create output
    planned = teardown.cleanup_plan(p["done"], "cleanup-2", access, settings).dump()
    doc = delete_peering(remove_routes(planned, access, settings), access, settings)
    # Then it finds no routes left, deletes the peering, and the VPCs are as before the create
    assert planned["Routes"] == []
    assert planned["DedicatedRouteTables"] == []
    assert doc["Removed"]["PeeringDeleted"] is True
    assert live_state(ec2) == p["before"]
    # And one more run changes nothing
    ec2_calls.clear()
    planned = teardown.cleanup_plan(p["done"], "cleanup-3", access, settings).dump()
    delete_peering(remove_routes(planned, access, settings), access, settings)
    assert mutating(ec2_calls) == []


# ------------------------------------------------ routes only to the peer VPC (guard)
@pytest.mark.parametrize(
    ("destinations", "bad_index"),
    [
        (["10.0.0.0/16"], 0),  # the requester's own CIDR
        (["172.16.0.0/24", "172.0.0.0/8"], 1),  # wider than the peer
        (["0.0.0.0/0"], 0),  # everything
        (["172.16.0.0/24", "192.168.0.0/24"], 1),  # somewhere else
        (["::/0"], 0),  # IPv6 while the peer has none
        (["172.31.0.0/16"], 0),  # next to the peer
    ],
)
def test_destinations_outside_the_peer_vpc_are_refused(
    tutorial: TutorialVpcs,
    destinations: list[str],
    bad_index: int,
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    # Given a request routing the requester to CIDRs not all inside the peer VPC (172.16.0.0/16)
    request = {
        "Requester": {"VpcId": tutorial.vpc1, "DestinationCidrs": destinations},
        "Accepter": {"VpcId": tutorial.vpc2},
    }
    # When planned / Then refused, naming the first offending entry, and nothing changed
    with pytest.raises(InvalidInput, match=rf"^Requester\.DestinationCidrs\[{bad_index}\]: "):
        peering.plan(request, "exec-1", access, settings)
    assert mutating(ec2_calls) == []


def test_planned_destinations_are_the_peer_cidrs_read_from_ec2(
    make_vpc: Any, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a peer VPC with a secondary CIDR
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", secondary=("172.17.0.0/16",))
    # When planned without and with narrower DestinationCidrs
    plain = peering.plan(
        {"Requester": {"VpcId": vpc1}, "Accepter": {"VpcId": vpc2}}, "e1", access, settings
    )
    narrow = peering.plan(
        {
            "Requester": {"VpcId": vpc1, "DestinationCidrs": ["172.17.1.0/24"]},
            "Accepter": {"VpcId": vpc2},
        },
        "e2",
        access,
        settings,
    )

    # Then every destination is inside a CIDR EC2 reports for the other side's VPC
    def cidrs(vpc_id: str) -> list[Any]:
        vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        return [ipaddress.ip_network(a["CidrBlock"]) for a in vpc["CidrBlockAssociationSet"]]

    peer_of = {"Requester": cidrs(vpc2), "Accepter": cidrs(vpc1)}
    for plan in (plain, narrow):
        for route in plan.routes:
            net = ipaddress.ip_network(route.destination)
            assert any(net.subnet_of(block) for block in peer_of[route.side]), route
    # And without DestinationCidrs they are exactly the peer's CIDRs
    assert {r.destination for r in plain.routes if r.side == "Requester"} == {
        "172.16.0.0/16",
        "172.17.0.0/16",
    }
    assert {r.destination for r in narrow.routes if r.side == "Requester"} == {"172.17.1.0/24"}
