"""Concurrent executions of the same pair: they take turns (the pair lease), never race."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator.executions import ExecutionResult, follow_execution
from emulator.testing import EmulatorHandle

from .conftest import HUB, Account, Vpc, peering_status, routes_to, snapshot

MakeVpc = Callable[..., Vpc]
Run = Callable[..., ExecutionResult]


def _live_peerings(accounts: dict[str, Account], a: Vpc, b: Vpc) -> list[str]:
    found = accounts[HUB].ec2().describe_vpc_peering_connections()["VpcPeeringConnections"]
    return sorted(
        p["VpcPeeringConnectionId"]
        for p in found
        if p["Status"]["Code"] not in ("deleted", "rejected", "failed", "expired")
        and {p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]} == {a.vpc_id, b.vpc_id}
    )


def _start(emu: EmulatorHandle, arn: str, payload: Any) -> str:
    sfn = emu.client("stepfunctions")
    return str(
        sfn.start_execution(stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(payload))[
            "executionArn"
        ]
    )


def test_ten_creates_of_one_pair_at_once_make_exactly_one_peering(
    make_vpc: MakeVpc, emu: EmulatorHandle, create_arn: str, accounts: dict[str, Account]
) -> None:
    # Given a pair of VPCs
    a = make_vpc("10.0.0.0/16")
    b = make_vpc("172.16.0.0/16")
    forward = {"Requester": {"VpcId": a.vpc_id}, "Accepter": {"VpcId": b.vpc_id}}
    backward = {"Requester": {"VpcId": b.vpc_id}, "Accepter": {"VpcId": a.vpc_id}}

    # When ten creates start at once, five in each direction
    arns = [_start(emu, create_arn, forward if i % 2 else backward) for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(
                lambda arn: follow_execution(emu.client("stepfunctions"), arn, timeout=300), arns
            )
        )

    # Then every execution ended cleanly: peered, or told the pair was busy
    outcomes = Counter(r.status if r.succeeded else r.error for r in results)
    assert set(outcomes) <= {"SUCCEEDED", "PeeringInProgress"}, outcomes
    assert outcomes["SUCCEEDED"] >= 1
    # And there is exactly one peering, which every successful execution reports
    live = _live_peerings(accounts, a, b)
    assert len(live) == 1
    assert {r.output["VpcPeeringConnectionId"] for r in results if r.succeeded} == set(live)
    # And each side routes to it once
    assert routes_to(accounts, a, live[0]) == [(a.main_route_table, "172.16.0.0/16")]
    assert routes_to(accounts, b, live[0]) == [(b.main_route_table, "10.0.0.0/16")]
    # And exactly one execution created it; the others reused it
    created = [r for r in results if r.succeeded and r.output["CreatedByExecution"]]
    assert len(created) == 1


def test_cleanup_started_while_a_create_runs_waits_for_it(
    make_vpc: MakeVpc,
    emu: EmulatorHandle,
    create_arn: str,
    cleanup: Run,
    accounts: dict[str, Account],
) -> None:
    # Given a create execution that has just made its peering
    a = make_vpc("10.0.0.0/16")
    b = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, a, b)
    execution = _start(
        emu, create_arn, {"Requester": {"VpcId": a.vpc_id}, "Accepter": {"VpcId": b.vpc_id}}
    )
    deadline = time.monotonic() + 30
    while not (live := _live_peerings(accounts, a, b)):
        assert time.monotonic() < deadline, "the create never made its peering"
        time.sleep(0.05)

    # When a cleanup of that peering starts before the create has finished
    cleanup_result = cleanup({"VpcPeeringConnectionId": live[0]})
    created = follow_execution(emu.client("stepfunctions"), execution, timeout=120)

    # Then the create completed first, and the cleanup then removed everything it made
    assert created.succeeded, (created.error, created.cause)
    assert cleanup_result.succeeded, (cleanup_result.error, cleanup_result.cause)
    assert len(cleanup_result.output["Removed"]["Routes"]) == 2
    assert peering_status(accounts, a, live[0]) == "deleted"
    assert snapshot(accounts, a, b) == before
