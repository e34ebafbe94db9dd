"""Rules, in-process Lambda and state machines, on a tiny throwaway stack (see conftest)."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorHandle


def wait_for(path: Path, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    time.sleep(0.05)  # the handler writes the file in one call; let it finish
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def wait_for_execution(handle: EmulatorHandle, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    sfn = handle.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.1)


def put(handle: EmulatorHandle, detail_type: str, detail: dict[str, Any]) -> None:
    response = handle.client("events").put_events(
        Entries=[
            {
                "EventBusName": handle.event_bus_name,
                "Source": "tiny.test",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_rule_delivers_matching_events_only(tiny_emulator: EmulatorHandle, tiny_dir: Path) -> None:
    out = tiny_dir / "out"
    # Given an event the rule does not match, then one it matches
    put(tiny_emulator, "NotPing", {"key": "unmatched"})
    put(tiny_emulator, "Ping", {"key": "matched"})
    # When the matching one has been delivered
    recorded = wait_for(out / "matched.json")
    # Then the handler got an EventBridge-shaped event, once
    event = recorded["event"]
    assert recorded["attempts"] == 1
    assert event["source"] == "tiny.test"
    assert event["detail-type"] == "Ping"
    assert event["detail"] == {"key": "matched"}
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    # And the non-matching one was never delivered (matching happens inside PutEvents)
    assert not (out / "unmatched.attempts").exists()


def test_failing_target_is_retried(tiny_emulator: EmulatorHandle, tiny_dir: Path) -> None:
    # Given an event whose handler fails on its first attempt
    put(tiny_emulator, "Ping", {"key": "flaky", "fail_times": 1})
    # When it is delivered / Then the second attempt succeeds
    assert wait_for(tiny_dir / "out" / "flaky.json")["attempts"] == 2


def test_invoke_runs_the_handler_in_process(tiny_emulator: EmulatorHandle) -> None:
    lam = tiny_emulator.client("lambda")
    name = tiny_emulator.functions["EchoFunction"]
    # When the function is invoked / Then the handler's result and context come back
    ok = lam.invoke(FunctionName=name, Payload=json.dumps({"a": 1}))
    result = json.loads(ok["Payload"].read())
    assert "FunctionError" not in ok
    assert result["echo"] == {"a": 1}
    assert result["function_name"] == name
    assert 0 < result["remaining_ms"] <= 3_000
    # When the handler raises / Then a Lambda-shaped error names the exception
    failed = lam.invoke(FunctionName=name, Payload=json.dumps({"fail": "boom"}))
    error = json.loads(failed["Payload"].read())
    assert failed["FunctionError"]
    assert (error["errorType"], error["errorMessage"]) == ("TinyError", "boom")
    assert "tiny_handlers.py" in "".join(error["stackTrace"])


def test_an_invocation_past_its_timeout_fails_sandbox_timedout(
    tiny_emulator: EmulatorHandle,
) -> None:
    lam = tiny_emulator.client("lambda")
    name = tiny_emulator.functions["EchoFunction"]
    # Given a function whose Timeout is 3 s, and an invocation that would take 5 s
    start = time.monotonic()
    # When it is invoked
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"sleep": 5}))
    # Then Lambda answers at the deadline with its timeout error, not the handler's result
    # ("Troubleshoot invocation issues in Lambda": Sandbox.Timedout)
    elapsed = time.monotonic() - start
    error = json.loads(response["Payload"].read())
    assert response["FunctionError"]
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"RequestId: \S+ Error: Task timed out after 3\.00 seconds", error["errorMessage"]
    )
    assert 3 <= elapsed < 4.5


def test_a_task_whose_function_times_out_fails_with_sandbox_timedout(
    tiny_emulator: EmulatorHandle,
) -> None:
    sfn = tiny_emulator.client("stepfunctions")
    # Given the flow, whose Echo task (a 3 s function) will sleep 5 s; its Catch takes States.ALL
    arn = sfn.start_execution(
        stateMachineArn=tiny_emulator.state_machines["Flow"], input=json.dumps({"sleep": 5})
    )["executionArn"]
    # When it runs / Then the task failed with Lambda's timeout error, caught as on AWS
    output = json.loads(wait_for_execution(tiny_emulator, arn)["output"])
    assert output["Error"]["Error"] == "Sandbox.Timedout"
    assert "Task timed out after 3.00 seconds" in output["Error"]["Cause"]


def test_invocations_run_concurrently(tiny_emulator: EmulatorHandle) -> None:
    lam = tiny_emulator.client("lambda")
    name = tiny_emulator.functions["EchoFunction"]
    # Given four invocations that each sleep 0.5 s
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: lam.invoke(FunctionName=name, Payload='{"sleep": 0.5}'), range(4)))
    # Then they overlap: together they take far less than 2 s
    assert time.monotonic() - start < 1.5


def test_state_machine_runs_lambda_and_task_token_round_trip(
    tiny_emulator: EmulatorHandle,
) -> None:
    sfn = tiny_emulator.client("stepfunctions")
    # Given the flow: Echo (lambda:invoke), then Ask (putEvents.waitForTaskToken, answered by a
    # Lambda rule target that calls SendTaskSuccess)
    arn = sfn.start_execution(
        stateMachineArn=tiny_emulator.state_machines["Flow"], input=json.dumps({"x": 1})
    )["executionArn"]
    # When it runs / Then it succeeds with the answer
    execution = wait_for_execution(tiny_emulator, arn)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"answered": {"x": 1}}


def test_state_machine_catch_sees_the_handler_error_type(tiny_emulator: EmulatorHandle) -> None:
    sfn = tiny_emulator.client("stepfunctions")
    # Given an input that makes the Echo handler raise TinyError
    arn = sfn.start_execution(
        stateMachineArn=tiny_emulator.state_machines["Flow"], input=json.dumps({"fail": "bad"})
    )["executionArn"]
    # When it runs / Then the Catch gets Error=TinyError and the Lambda error as Cause
    output = json.loads(wait_for_execution(tiny_emulator, arn)["output"])
    assert output["Error"]["Error"] == "TinyError"
    assert json.loads(output["Error"]["Cause"])["errorMessage"] == "bad"


def test_start_execution_is_idempotent_while_the_execution_runs(
    tiny_emulator: EmulatorHandle,
) -> None:
    sfn = tiny_emulator.client("stepfunctions")
    machine = tiny_emulator.state_machines["Flow"]
    name, document = f"same-{time.time_ns()}", json.dumps({"sleep": 1.5})
    # Given a named execution still running (its Echo step sleeps 1.5 s)
    first = sfn.start_execution(stateMachineArn=machine, name=name, input=document)
    # When it is started again with the same name and input
    again = sfn.start_execution(stateMachineArn=machine, name=name, input=document)
    # Then StartExecution returns that execution, as AWS does
    assert (again["executionArn"], again["startDate"]) == (
        first["executionArn"],
        first["startDate"],
    )
    # When the same name comes with another input / Then ExecutionAlreadyExists
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"sleep": 1}))
    # When the same name and input come after the execution ended / Then ExecutionAlreadyExists
    wait_for_execution(tiny_emulator, first["executionArn"])
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=machine, name=name, input=document)
