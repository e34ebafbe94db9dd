"""Step Functions and EventBridge as strict as AWS documents them (emulator/sfn_strict.py,
emulator/event_delivery.py; the table in emulator/README.md).

Each test runs a small state machine of its own, created through the API in a region no other
test uses (so a fault rule here trips no other test's calls), on the tiny stack's emulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle

REGION = "eu-central-1"
ROLE = "arn:aws:iam::123456789012:role/strict-tests"
#: 150 KB: one copy fits a state (256 KiB), two do not.
BLOB = "x" * 150_000


@pytest.fixture
def emu(tiny_emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    yield tiny_emulator
    remaining = [r for r in tiny_emulator.faults() if r.get("region") == REGION]
    if remaining:
        tiny_emulator.clear_faults()


def run(emu: EmulatorHandle, definition: dict[str, Any], given: Any) -> dict[str, Any]:
    """Create the machine, run it on ``given`` to its end, return DescribeExecution."""
    sfn = emu.client("stepfunctions", region=REGION)
    machine = sfn.create_state_machine(
        name=f"strict-{uuid.uuid4().hex[:12]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    compact = json.dumps(given, separators=(",", ":"))
    arn = sfn.start_execution(stateMachineArn=machine, input=compact)["executionArn"]
    deadline = time.monotonic() + 30
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.1)


def put_event(detail: dict[str, Any], **fields: Any) -> tuple[str, dict[str, Any]]:
    """A putEvents task on the default bus, then End; ``fields`` added to the state."""
    return "Put", {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents",
        "Parameters": {
            "Entries": [{"Source": "strict.test", "DetailType": "Strict", "Detail": detail}]
        },
        "ResultPath": None,
        **fields,
        "End": True,
    }


CATCH_ALL = {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Caught"}]}
CAUGHT = ("Caught", {"Type": "Pass", "End": True})


def machine(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"StartAt": states[0][0], "States": dict(states)}


# --------------------------------------------------------------------------- terminal errors
@pytest.mark.parametrize(
    "handlers",
    [
        pytest.param(CATCH_ALL, id="catch States.ALL"),
        pytest.param(
            {
                "Catch": [
                    {"ErrorEquals": ["States.Runtime"], "ResultPath": "$.Error", "Next": "Caught"}
                ]
            },
            id="catch States.Runtime",
        ),
        pytest.param(
            {"Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}]},
            id="retry States.ALL",
        ),
    ],
)
def test_states_runtime_is_neither_caught_nor_retried(
    emu: EmulatorHandle, handlers: dict[str, Any]
) -> None:
    # Given a task whose Parameters read a path its input does not have (States.Runtime), with
    # a Catch or Retry that would match any other error
    definition = machine(put_event({"Missing.$": "$.missing"}, **handlers), CAUGHT)
    # When it runs
    execution = run(emu, definition, {"present": 1})
    # Then the execution fails with States.Runtime: "Error handling in Step Functions"
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"


def test_a_task_input_over_256_kib_fails_the_execution_whatever_catch_says(
    emu: EmulatorHandle,
) -> None:
    # Given a task whose Parameters copy a 150 KB field twice (300 KB after Parameters), with a
    # Catch on States.ALL
    definition = machine(put_event({"A.$": "$.blob", "B.$": "$.blob"}, **CATCH_ALL), CAUGHT)
    # When it runs
    execution = run(emu, definition, {"blob": BLOB})
    # Then the execution fails with States.DataLimitExceeded, uncaught
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.DataLimitExceeded"


def test_a_state_output_over_256_kib_fails_the_execution(emu: EmulatorHandle) -> None:
    # Given a Pass state whose output holds the 150 KB field twice
    definition = machine(
        ("Double", {"Type": "Pass", "Parameters": {"A.$": "$.blob", "B.$": "$.blob"}, "End": True})
    )
    # When it runs / Then it fails with States.DataLimitExceeded
    execution = run(emu, definition, {"blob": BLOB})
    assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_a_state_of_exactly_256_kib_is_within_the_quota(emu: EmulatorHandle) -> None:
    # Given an input that is exactly 262,144 bytes of JSON ({"blob": "xxx..."})
    blob = "x" * (262_144 - len(json.dumps({"blob": ""}, separators=(",", ":"))))
    # When a Pass state passes it on / Then the execution succeeds: the quota is a maximum
    execution = run(emu, machine(("Same", {"Type": "Pass", "End": True})), {"blob": blob})
    assert execution["status"] == "SUCCEEDED", execution.get("error")


# -------------------------------------------------------------------- distributed map runs
def distributed(**thresholds: Any) -> dict[str, Any]:
    """A distributed Map over $.items whose child fails (Error Boom) when its item says so; a
    Catch on ExceedToleratedFailureThreshold puts the error in $.Error."""
    child = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Boom"}],
                "Default": "Fine",
            },
            "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "asked to fail"},
            "Fine": {"Type": "Pass", "Result": {"ok": True}, "End": True},
        },
    }
    return machine(
        (
            "Each",
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": child,
                "MaxConcurrency": 1,
                "ResultPath": "$.results",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                        "ResultPath": "$.Error",
                        "Next": "Caught",
                    }
                ],
                **thresholds,
                "End": True,
            },
        ),
        CAUGHT,
    )


ITEMS = {"items": [{"fail": False}, {"fail": True}, {"fail": False}, {"fail": True}]}


@pytest.mark.parametrize(
    "thresholds",
    [
        pytest.param({}, id="none given: 0"),
        pytest.param({"ToleratedFailureCount": 1}, id="count 1 of 2 failed"),
        pytest.param({"ToleratedFailurePercentage": 25}, id="25% of 50% failed"),
    ],
)
def test_a_distributed_map_fails_beyond_its_tolerated_failures(
    emu: EmulatorHandle, thresholds: dict[str, Any]
) -> None:
    # Given a distributed Map whose children fail for 2 of 4 items, tolerating fewer
    # When it runs
    execution = run(emu, distributed(**thresholds), ITEMS)
    # Then its Map Run fails with States.ExceedToleratedFailureThreshold ("Setting failure
    # thresholds for Distributed Map states"), which the Catch gets
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["Error"]["Error"] == "States.ExceedToleratedFailureThreshold"
    assert "results" not in output


@pytest.mark.parametrize(
    "thresholds",
    [
        pytest.param({"ToleratedFailurePercentage": 100}, id="100%"),
        pytest.param({"ToleratedFailurePercentage": 50}, id="50%"),
        pytest.param({"ToleratedFailureCount": 2}, id="count 2"),
        pytest.param({"ToleratedFailureCountPath": "$.tolerate"}, id="count path"),
    ],
)
def test_tolerated_failures_leave_each_failed_child_result_in_the_results(
    emu: EmulatorHandle, thresholds: dict[str, Any]
) -> None:
    # Given the same Map, tolerating both failures
    # When it runs
    execution = run(emu, distributed(**thresholds), {**ITEMS, "tolerate": 2})
    # Then it succeeds with every child's result in order: a failed child's is its execution
    # result ("ResultWriter (Map)": a failed child's result is returned unchanged, as NONE)
    assert execution["status"] == "SUCCEEDED"
    results = json.loads(execution["output"])["results"]
    assert [r.get("Status", "ok") for r in results] == ["ok", "FAILED", "ok", "FAILED"]
    assert results[0] == {"ok": True}
    failed = results[1]
    assert (failed["Error"], failed["Cause"]) == ("Boom", "asked to fail")
    assert json.loads(failed["Input"]) == {"fail": True}
    assert ":execution:" in failed["ExecutionArn"]


# ------------------------------------------------------------------------------ putEvents
def test_a_failed_put_events_entry_fails_the_task_with_eventbridge_failed_entry(
    emu: EmulatorHandle,
) -> None:
    # Given EventBridge refusing the next PutEvents entry (200, FailedEntryCount 1)
    emu.add_fault("events", "PutEvents", "InternalFailure", failed_entry=True, region=REGION)
    # When a putEvents task with a Catch on States.ALL runs
    execution = run(emu, machine(put_event({"k": 1}, **CATCH_ALL), CAUGHT), {})
    # Then the task failed with EventBridge.FailedEntry, the response as its cause ("Add
    # EventBridge events with Step Functions")
    error = json.loads(execution["output"])["Error"]
    assert error["Error"] == "EventBridge.FailedEntry"
    assert json.loads(error["Cause"])["FailedEntryCount"] == 1
    assert [r["fired"] for r in emu.faults() if r["region"] == REGION] == [1]


@pytest.mark.parametrize(
    ("error_code", "failed_entry", "error"),
    [
        ("InternalFailure", True, "EventBridge.FailedEntry"),
        ("ThrottlingException", False, "EventBridge.ThrottlingException"),
    ],
)
def test_put_events_errors_are_named_for_eventbridge_and_retried(
    emu: EmulatorHandle, error_code: str, failed_entry: bool, error: str
) -> None:
    # Given the next PutEvents failing once, and a task that retries that error
    emu.add_fault("events", "PutEvents", error_code, failed_entry=failed_entry, region=REGION)
    retry = {"Retry": [{"ErrorEquals": [error], "IntervalSeconds": 1, "MaxAttempts": 2}]}
    # When it runs / Then the second attempt succeeds
    execution = run(emu, machine(put_event({"k": 1}, **retry)), {})
    assert execution["status"] == "SUCCEEDED", execution.get("error")
    assert [r["fired"] for r in emu.faults() if r["region"] == REGION] == [1]


def test_an_account_cannot_put_events_with_an_aws_source(emu: EmulatorHandle) -> None:
    events = emu.client("events", region=REGION)
    # Given / When an account puts an aws.tag event beside one of its own
    entries = [
        {"Source": "aws.tag", "DetailType": "Tag Change on Resource", "Detail": "{}"},
        {"Source": "strict.test", "DetailType": "Strict", "Detail": "{}"},
    ]
    response = events.put_events(Entries=entries)
    # Then that entry alone is refused with NotAuthorizedForSourceException
    assert response["FailedEntryCount"] == 1
    refused, accepted = response["Entries"]
    assert refused["ErrorCode"] == "NotAuthorizedForSourceException"
    assert "EventId" not in refused
    assert accepted["EventId"]
