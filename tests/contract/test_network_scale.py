"""The largest network a reconcile must handle fits Step Functions' limits: a 125-VPC mesh
(7,750 pairs, the per-VPC peering quota's maximum) is planned whole, in rounds of at most 40
pairs, into a plan object (in S3: its size is not limited) and a reconcile state far under
256 KB; each round item (the round's pairs, fully formed: the distributed Map's child's input)
fits far under 256 KB too; and, from the generated ASL, neither the
reconcile execution's history nor a round's comes near 25,000 events, whatever the number of
pairs (the rounds are child executions of a distributed Map, with histories of their own).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from vpc_peering import actions, network, outcomes, reconcile
from vpc_peering.group_policy import PolicyState, open_policy
from vpc_peering.models.network import ReconcileScope
from vpc_peering.models.requests import ReconcileRequest
from vpc_peering.network import LocationView, Scope
from vpc_peering.observed import Route, RouteTable, Vpc
from vpc_peering.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HISTORY_LIMIT = 25_000
ACCOUNTS = ("123456789012", "111111111111")
REGIONS = ("us-east-1", "us-west-2")


def settings() -> Settings:
    """The largest quotas AWS grants: 125 peerings per VPC, 1,000 routes per table."""
    return Settings(
        stack_name="vpc-peering",
        hub_account_id=ACCOUNTS[0],
        hub_region=REGIONS[0],
        member_role_name="VpcPeeringMemberRole",
        allowed_account_ids=frozenset(ACCOUNTS),
        trusted_requester_account_ids=frozenset(ACCOUNTS),
        managed_regions=frozenset(REGIONS),
        max_peerings_per_vpc=125,
        max_routes_per_table=1000,
        create_state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:x-create",
        cleanup_state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:x-cleanup",
    )


def mesh_of(count: int, config: Settings) -> list[LocationView]:
    """``count`` VPCs tagged into one mesh, spread over two accounts and two regions."""
    views = {
        (a, r): LocationView(reconcile.location_for(a, r, None, config))
        for a in ACCOUNTS
        for r in REGIONS
    }
    for index in range(count):
        where = (ACCOUNTS[index % 2], REGIONS[(index // 2) % 2])
        vpc_id = f"vpc-{index:017x}"
        cidr = f"10.{index}.0.0/16"
        views[where].vpcs.append(Vpc(vpc_id, where[0], [cidr], [], {"vpc-peering:mesh": "big"}))
        local = Route(cidr, "local", "active", "CreateRouteTable", None)
        views[where].route_tables.append(
            RouteTable(f"rtb-{index:017x}", vpc_id, True, [], {}, [local], {})
        )
    return list(views.values())


def admitting(group: str, config: Settings) -> PolicyState:
    """A group policy that admits the group from every managed account."""
    policy = open_policy([group], config.allowed_account_ids)
    return PolicyState("/vpc-peering/test/group-policy", policy=policy)


@pytest.fixture(scope="module")
def largest_plan() -> tuple[network.NetworkPlan, Any]:
    config = settings()
    plan = network.plan_network(mesh_of(125, config), Scope(), config, admitting("big", config))
    scope = ReconcileScope(accounts=list(ACCOUNTS), regions=list(REGIONS))
    doc = reconcile.plan_document(plan, ReconcileRequest(), scope, "a" * 80, config)
    return plan, doc


def test_a_125_vpc_mesh_is_planned_whole_into_a_state_step_functions_can_carry(
    largest_plan: tuple[network.NetworkPlan, Any],
) -> None:
    plan, doc = largest_plan
    # Then every one of the 7,750 pairs is a create, none deferred, none failed
    assert (plan.desired, len(plan.work), plan.failed) == (7750, 7750, [])
    assert sum(len(r.pairs) for r in doc.rounds) == 7750
    assert doc.report.deferred == 0
    # And the reconcile's own state (the rounds are in the plan object) is small
    state = len(json.dumps(doc.dump()))
    assert state <= 8 * 1024, state
    # And each round item, the child's input, fits far under 256 KB, whatever the plan's size
    biggest = max(len(json.dumps(r.dump())) for r in doc.rounds)
    assert biggest <= 64 * 1024, biggest
    # And the rounds: at most 40 pairs, no VPC twice in a round, close to the fewest possible
    for plan_round in doc.rounds:
        vpcs = [
            (side.account_id, side.region, side.vpc_id)
            for pair in plan_round.pairs
            for side in (pair.requester, pair.accepter)
        ]
        assert len(plan_round.pairs) <= network.MAX_ROUND_ITEMS
        assert len(vpcs) == len(set(vpcs))
    assert len(doc.rounds) == doc.round_count
    assert len(doc.rounds) <= 1.3 * math.ceil(7750 / network.MAX_ROUND_ITEMS)


def test_a_hostile_member_cannot_push_the_work_out_of_the_plan() -> None:
    # Given a 100-VPC mesh under a 64-character group name, one of whose members has 200 route
    # tables, each routing every other member's CIDR elsewhere: every pair with it conflicts,
    # and each conflict names 200 tables
    config = settings()
    group = "g" * 64
    views = mesh_of(100, config)
    for view in views:
        for vpc in view.vpcs:
            vpc.tags["vpc-peering:mesh"] = group
    hostile = views[0]
    victim = hostile.vpcs[0]
    others = [v.cidr_blocks[0] for view in views for v in view.vpcs if v is not victim]
    for number in range(200):
        routes = [Route(c, "igw-0123456789abcdef0", "active", "CreateRoute", None) for c in others]
        hostile.route_tables.append(
            RouteTable(f"rtb-{number:08x}{'f' * 9}", victim.vpc_id, False, [], {}, routes, {})
        )
    # When planned and written as Discover's output
    plan = network.plan_network(views, Scope(), config, admitting(group, config))
    scope = ReconcileScope(accounts=list(ACCOUNTS), regions=list(REGIONS))
    doc = reconcile.plan_document(plan, ReconcileRequest(), scope, "a" * 80, config)
    # Then every failure is counted, and every other pair is planned: none deferred
    assert len(plan.failed) == 99
    assert doc.report.failed_count == 99
    assert doc.report.deferred == 0
    assert sum(len(r.pairs) for r in doc.rounds) == 99 * 98 // 2
    # And the document stays within Discover's budget, the causes clipped
    assert len(json.dumps(doc.dump())) <= reconcile.MAX_PLAN_BYTES
    assert all(len(f.cause) <= actions.MAX_CAUSE for f in doc.report.failed)
    assert 0 < len(doc.report.failed) < 99


def test_a_round_outcome_fits_its_share_whatever_fails() -> None:
    # Given a round of 40 pairs of which 20 failed with long causes and 20 were made
    from vpc_peering.models.network import ChildError, PairResult, RoundResult

    pairs = [
        PairResult(
            action="create",
            label=f"vpc-{i:017x} (123456789012 us-east-1) ~ vpc-{i + 1:017x}",
            group="g" * 64,
            name="n" * 80,
            error=ChildError(error="RouteConflict", cause="x" * 30_000) if i % 2 else None,
        )
        for i in range(40)
    ]
    result = RoundResult(round=3, reconcile="r", outcome_bytes=400, pairs=pairs)
    # When recorded
    outcome = outcomes.record_round(result, None, settings())  # type: ignore[arg-type]
    # Then it counts them all within its share of bytes
    assert (outcome.created, outcome.failed_count) == (20, 20)
    assert len(json.dumps(outcome.dump())) <= 400


def _definition() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((ROOT / "statemachine" / "reconcile.asl.json").read_text())
    return result


def _task_events(state: dict[str, Any]) -> int:
    """History events of one Task state at most: entered, scheduled, started, submitted,
    succeeded or failed, exited; each retry adds scheduled, started and failed."""
    retries = sum(int(r.get("MaxAttempts", 3)) for r in state.get("Retry", []))
    return 6 + 3 * retries


def _state_events(state: dict[str, Any]) -> int:
    if state["Type"] == "Task":
        return _task_events(state)
    if state["Type"] == "Map":
        return 4  # entered, started (or MapRunStarted), succeeded, exited
    return 2  # entered, exited (a Succeed or Fail: fewer)


def _events_of(states: dict[str, Any]) -> int:
    """Every state entered once, each with its most events, plus start and end."""
    return 2 + sum(_state_events(s) for s in states.values())


def test_the_reconcile_history_does_not_grow_with_the_pairs() -> None:
    # Given the generated reconcile machine
    definition = _definition()
    rounds = definition["States"]["RunRounds"]
    # Then its rounds are child executions (their events are not in its history)
    assert rounds["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    # And its own history is bounded by its states alone, however many rounds run
    # (its longest part: waiting up to 1,440 attempts for another reconcile's lease)
    assert _events_of(definition["States"]) < HISTORY_LIMIT // 5


def test_a_round_of_the_most_pairs_stays_far_below_the_history_limit() -> None:
    # Given a round's child: its steps, and the inline Map that starts each pair's execution
    processor = _definition()["States"]["RunRounds"]["ItemProcessor"]["States"]
    pairs = processor["RunPairs"]
    assert pairs["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE"
    per_pair = 2 + _events_of(pairs["ItemProcessor"]["States"])  # iteration started, ended
    # When a round has the most pairs a round may have
    events = _events_of(processor) + network.MAX_ROUND_ITEMS * per_pair
    # Then its history stays far below Step Functions' limit
    assert events < HISTORY_LIMIT // 10, events
