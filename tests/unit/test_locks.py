"""The pair lease (``vpc_peering.locks``): taken by one execution at a time, given back only by
its owner, and taken over only from a holder Step Functions says has ended, never because time
passed.

Against moto: the stack's lock table (the ``aws`` fixture creates it from template.yaml), and
moto's Step Functions for the holders, whose executions stay RUNNING until stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from vpc_peering import locks
from vpc_peering.aws import Access
from vpc_peering.errors import PeeringInProgress, ReconcileInProgress
from vpc_peering.settings import Settings

from .environment import LOCK_TABLE
from .helpers import HUB_ACCOUNT, REGION, STACK_NAME

PAIR = locks.pair_key(
    (HUB_ACCOUNT, REGION, "vpc-0a1b2c3d4e5f60718"), (HUB_ACCOUNT, REGION, "vpc-0f1e2d3c4b5a69788")
)


def lease(key: str = PAIR) -> dict[str, Any]:
    """The lease item as DynamoDB has it (``Owner``, ``ExpiresAt``); empty when there is none."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=LOCK_TABLE["TableName"], Key={"LockId": {"S": key}}
    )
    if "Item" not in item:
        return {}
    return {"Owner": item["Item"]["Owner"]["S"], "ExpiresAt": int(item["Item"]["ExpiresAt"]["N"])}


def owner(key: str = PAIR) -> str | None:
    return lease(key).get("Owner")


def expire(key: str = PAIR) -> None:
    """Move the lease's expiry an hour into the past (as if the holder ran for a day)."""
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=LOCK_TABLE["TableName"],
        Key={"LockId": {"S": key}},
        UpdateExpression="SET ExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 3600)}},
    )


@pytest.fixture
def running(aws: None) -> Callable[[str, str], str]:
    """Start an execution of the stack's ``create`` or ``cleanup`` machine in moto (it stays
    RUNNING until stopped); returns its ARN."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machines: dict[str, str] = {}

    def start(machine: str, name: str) -> str:
        if machine not in machines:
            machines[machine] = sfn.create_state_machine(
                name=f"{STACK_NAME}-{machine}",
                definition=json.dumps(
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
                ),
                roleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/{STACK_NAME}-{machine}",
            )["stateMachineArn"]
        return str(
            sfn.start_execution(stateMachineArn=machines[machine], name=name)["executionArn"]
        )

    return start


def stop(execution_arn: str) -> None:
    boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=execution_arn)


# --------------------------------------------------------------------------------- acquire
def test_the_unit_tests_run_with_leases_on(settings: Settings) -> None:
    # Given the stack's environment, as template.yaml sets it / Then the lease table is set
    assert settings.lock_table_name == LOCK_TABLE["TableName"]


def test_acquire_takes_a_free_pair_for_a_day(access: Access, settings: Settings) -> None:
    # Given a pair nobody holds
    assert owner() is None
    # When an execution takes it
    before = int(time.time())
    locks.acquire(access, settings, PAIR, "create:first")
    # Then the lease is that execution's, and DynamoDB's TTL would clear it only after a day
    taken = lease()
    assert taken["Owner"] == "create:first"
    assert before + locks.LEASE_SECONDS <= taken["ExpiresAt"]
    assert taken["ExpiresAt"] <= int(time.time()) + locks.LEASE_SECONDS


def test_acquire_again_by_the_same_owner_succeeds(access: Access, settings: Settings) -> None:
    # Given a pair an execution holds
    locks.acquire(access, settings, PAIR, "create:first")
    # When the same execution takes it again (its step was retried) / Then it still holds it
    locks.acquire(access, settings, PAIR, "create:first")
    assert owner() == "create:first"


def test_the_pair_key_is_the_same_both_ways_round() -> None:
    # Given two sides / When keyed in either order / Then the key is the same
    a, b = (HUB_ACCOUNT, REGION, "vpc-a"), ("111111111111", "eu-west-1", "vpc-b")
    assert locks.pair_key(a, b) == locks.pair_key(b, a)


# --------------------------------------------------------------------------------- contend
@pytest.mark.parametrize("machine", ["create", "cleanup"])
def test_a_pair_held_by_a_running_execution_is_in_progress_for_another(
    access: Access, settings: Settings, running: Callable[[str, str], str], machine: str
) -> None:
    # Given a pair held by an execution that still runs
    running(machine, "first")
    locks.acquire(access, settings, PAIR, f"{machine}:first")
    # When another execution asks for it
    with pytest.raises(PeeringInProgress, match=f"execution {machine}:first is changing"):
        locks.acquire(access, settings, PAIR, "create:second")
    # Then the first keeps it
    assert owner() == f"{machine}:first"


def test_an_expired_lease_of_a_running_execution_is_not_taken_over(
    access: Access, settings: Settings, running: Callable[[str, str], str]
) -> None:
    # Given a lease whose expiry has passed, held by an execution that still runs
    running("create", "first")
    locks.acquire(access, settings, PAIR, "create:first")
    expire()
    # When another execution asks for the pair / Then it must wait
    with pytest.raises(PeeringInProgress, match="create:first"):
        locks.acquire(access, settings, PAIR, "create:second")
    # And the lease is still the first's
    assert owner() == "create:first"


def test_a_lease_whose_owner_names_no_execution_is_never_taken_over(
    access: Access, settings: Settings
) -> None:
    # Given a lease held by an owner that is not "<create|cleanup>:<execution name>"
    locks.acquire(access, settings, PAIR, "by-hand")
    expire()
    # When an execution asks for the pair / Then it must wait: nothing says the holder ended
    with pytest.raises(PeeringInProgress, match="by-hand"):
        locks.acquire(access, settings, PAIR, "create:second")


def test_one_reconcile_at_a_time_holds_the_network_for_up_to_a_week(
    access: Access, settings: Settings, running: Callable[[str, str], str]
) -> None:
    # Given a reconcile that runs and holds the reconcile lease
    running("reconcile", "first")
    key, first = locks.reconcile_lease("first")
    week = locks.RECONCILE_LEASE_SECONDS
    locks.acquire(access, settings, key, first, ReconcileInProgress, week, "the network")
    # Then its TTL outlives a reconcile (days, not the pair lease's day)
    assert lease(key)["ExpiresAt"] >= int(time.time()) + week - 5
    # When a second reconcile asks / Then it waits, told which execution changes the network
    with pytest.raises(ReconcileInProgress, match="reconcile:first is changing the network"):
        locks.acquire(
            access, settings, key, "reconcile:second", ReconcileInProgress, week, "the network"
        )


# ------------------------------------------------------------------------------- take over
@pytest.mark.parametrize("machine", ["create", "cleanup", "reconcile"])
@pytest.mark.parametrize("ended", ["stopped", "unknown"])
def test_the_lease_of_an_ended_holder_is_taken_over(
    access: Access,
    settings: Settings,
    running: Callable[[str, str], str],
    machine: str,
    ended: str,
) -> None:
    # Given a pair held by an execution that ended without giving it back: stopped, or one
    # Step Functions does not know (ExecutionDoesNotExist)
    execution = running(machine, "first")
    if ended == "stopped":
        stop(execution)
    locks.acquire(access, settings, PAIR, f"{machine}:{'first' if ended == 'stopped' else 'gone'}")
    # When another execution asks for the pair
    locks.acquire(access, settings, PAIR, "create:second")
    # Then it holds the pair now
    assert owner() == "create:second"


# --------------------------------------------------------------------------------- release
def test_release_by_another_owner_changes_nothing(access: Access, settings: Settings) -> None:
    # Given a pair an execution holds
    locks.acquire(access, settings, PAIR, "create:first")
    held = lease()
    # When another execution gives it back / Then nothing happens: no error, the lease is kept
    locks.release(access, settings, PAIR, "create:second")
    assert lease() == held


def test_release_twice_is_harmless(access: Access, settings: Settings) -> None:
    # Given a pair an execution holds
    locks.acquire(access, settings, PAIR, "create:first")
    # When it gives it back twice (a retried last step)
    locks.release(access, settings, PAIR, "create:first")
    locks.release(access, settings, PAIR, "create:first")
    # Then the pair is free, and another execution takes it at once
    assert owner() is None
    locks.acquire(access, settings, PAIR, "create:second")
    assert owner() == "create:second"


def test_a_lease_held_on_success_is_kept_when_the_block_ends_well_and_given_back_when_it_fails(
    access: Access, settings: Settings
) -> None:
    # Given a lease taken for a block that ends well
    with locks.held_on_success(access, settings, PAIR, "create:one"):
        pass
    # Then it is still held
    assert owner() == "create:one"
    locks.release(access, settings, PAIR, "create:one")
    # When a block fails
    with (
        pytest.raises(RuntimeError),
        locks.held_on_success(access, settings, PAIR, "create:one"),
    ):
        raise RuntimeError("boom")
    # Then the lease was given back
    assert owner() is None
