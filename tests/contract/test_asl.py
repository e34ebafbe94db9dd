"""Static checks over every state machine definition in statemachine/.

Every Task must be bounded (TimeoutSeconds), retry transient errors with backoff and jitter
(and a ceiling on the delay), and catch what is left; callback tasks need a heartbeat. No ARN,
name or region may be written into an ASL file: they come from DefinitionSubstitutions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vpc_peering import locks
from vpc_peering.errors import PeeringError

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "statemachine").glob("*.asl.json"))
#: Errors a Retry may name: AWS's transient ones, and the domain errors marked retryable.
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "EventBridge.ThrottlingException",
    "EventBridge.InternalException",
    "EventBridge.EventBridgeException",
    "EventBridge.FailedEntry",
    "StepFunctions.ExecutionLimitExceeded",
    "StepFunctions.ExecutionLimitExceededException",
    "StepFunctions.ThrottlingException",
    "StepFunctions.SdkClientException",
    "StepFunctions.AWSStepFunctionsException",
} | {cls.__name__ for cls in PeeringError.__subclasses__() if cls.retryable}
#: Waits for a lease another execution holds may take many attempts (each a few events).
LEASE_WAITS = {"PeeringInProgress": 10, "ReconcileInProgress": 1440}
SYNC_CHILD = "arn:${Partition}:states:::states:startExecution.sync:2"


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_states(branch))
        if "Iterator" in state:
            found.update(_states(state["Iterator"]))
        if "ItemProcessor" in state:
            found.update(_states(state["ItemProcessor"]))
    return found


def _tasks() -> list[tuple[str, str, dict[str, Any]]]:
    tasks = []
    for path in ASL_FILES:
        for name, state in _states(json.loads(path.read_text())).items():
            if state["Type"] == "Task":
                tasks.append((path.name, name, state))
    return tasks


def test_there_are_three_machines() -> None:
    # Given / When the statemachine folder
    names = [p.name for p in ASL_FILES]
    # Then every machine is there
    assert names == ["cleanup.asl.json", "create.asl.json", "reconcile.asl.json"]


@pytest.mark.parametrize(
    ("asl", "name", "state"), _tasks(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_task_is_bounded_retried_and_caught(
    asl: str, name: str, state: dict[str, Any]
) -> None:
    # Given a Task state
    # Then it has a timeout (a child execution's: longer than the child can run)
    if state["Resource"] == SYNC_CHILD:
        assert _longest_child() < state.get("TimeoutSeconds", 0) <= 86400, f"{asl}:{name}"
    else:
        assert 0 < state.get("TimeoutSeconds", 0) <= 900, f"{asl}:{name} TimeoutSeconds"
    # And a narrow retry on transient errors with backoff, jitter and a delay ceiling
    retries = state.get("Retry", [])
    assert retries, f"{asl}:{name} has no Retry"
    for retry in retries:
        assert set(retry["ErrorEquals"]) <= TRANSIENT | {"States.Timeout"}, (
            f"{asl}:{name} retries non-transient errors {retry['ErrorEquals']}"
        )
        assert "States.ALL" not in retry["ErrorEquals"]
        assert retry.get("BackoffRate", 1.0) > 1.0, f"{asl}:{name} retry has no backoff"
        assert retry.get("JitterStrategy") == "FULL", f"{asl}:{name} retry has no jitter"
        assert 0 < retry.get("MaxDelaySeconds", 0) <= 60, f"{asl}:{name} retry has no ceiling"
        ceiling = max([10] + [LEASE_WAITS.get(e, 0) for e in retry["ErrorEquals"]])
        assert 1 <= retry.get("MaxAttempts", 3) <= ceiling
    # And a Catch for everything else
    catches = state.get("Catch", [])
    assert any("States.ALL" in c["ErrorEquals"] for c in catches), f"{asl}:{name} has no Catch"
    # And callback tasks send heartbeats well under the 7-day peering expiry
    if state["Resource"].endswith(".waitForTaskToken"):
        assert 0 < state.get("HeartbeatSeconds", 0) < state["TimeoutSeconds"]


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_no_hard_coded_arns_names_or_regions(path: Path) -> None:
    # Given an ASL file
    text = path.read_text()
    # Then every ARN is a substitution and no region or account id is written in
    assert not re.search(r"arn:aws[a-z-]*:", text), "write arn:${Partition}:..., not a literal"
    assert not re.search(r"\b\d{12}\b", text), "no account ids in ASL"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il)-[a-z]+-\d\b", text), "no regions in ASL"
    for resource in re.findall(r'"Resource": "([^"]+)"', text):
        assert resource.startswith("arn:${Partition}:states:::"), resource


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_state_is_reachable_and_every_next_exists(path: Path) -> None:
    # Given a machine
    definition = json.loads(path.read_text())
    states = definition["States"]
    # When following StartAt, Next, Default, Choices and Catch
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in states, f"{path.name}: {name} does not exist"
        seen.add(name)
        state = states[name]
        todo += [state[k] for k in ("Next", "Default") if k in state]
        todo += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    # Then every state is reachable
    assert seen == set(states), f"unreachable: {set(states) - seen}"


def _worst_case_seconds(definition: dict[str, Any]) -> float:
    """An upper bound on how long one execution can run: every Task of the machine entered
    once, every attempt (first plus all retries) timing out, every retry waiting its longest."""
    total = 0.0
    for state in _states(definition).values():
        if state["Type"] != "Task":
            continue
        timeout = float(state["TimeoutSeconds"])
        attempts, waited = 1, 0.0
        for retrier in state.get("Retry", []):
            interval = float(retrier.get("IntervalSeconds", 1))
            for n in range(int(retrier.get("MaxAttempts", 3))):
                delay = interval * float(retrier.get("BackoffRate", 2.0)) ** n
                waited += min(delay, float(retrier.get("MaxDelaySeconds", delay)))
                attempts += 1
        total += attempts * timeout + waited
    return total


def _definition(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((ROOT / "statemachine" / name).read_text())
    return result


def _longest_child() -> float:
    """The longest a create or cleanup execution can run, by its own ASL."""
    return max(_worst_case_seconds(_definition(n)) for n in ("create.asl.json", "cleanup.asl.json"))


def test_a_pair_lease_outlives_the_longest_execution() -> None:
    # Given the longest any create or cleanup execution can run, by its own ASL
    longest = _longest_child()
    # Then a lease (taken over only once its holder ended, and otherwise kept until DynamoDB's
    # TTL clears it) is never cleared while its holder can still be running
    assert longest > 900  # the bound is real: the acceptance wait alone is 900 s
    assert 2 * longest <= locks.LEASE_SECONDS, (locks.LEASE_SECONDS, longest)


def test_the_reconcile_lease_outlives_the_reconcile() -> None:
    # Given the reconcile machine, bounded by its own TimeoutSeconds (its rounds are many)
    timeout = _definition("reconcile.asl.json")["TimeoutSeconds"]
    # Then its lease's TTL is longer, and a round's child outlives the longest pair
    assert 0 < timeout < locks.RECONCILE_LEASE_SECONDS
