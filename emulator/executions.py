"""Start a Step Functions execution and follow it state by state (demo, tests, benchmarks).

Works against any Step Functions endpoint (the emulator or AWS): it only uses
StartExecution, DescribeExecution and GetExecutionHistory.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENTERED = "StateEntered"


@dataclass
class ExecutionResult:
    execution_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states_entered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, in order."""
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def entered_states(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in events
        if e["type"].endswith(ENTERED) and "stateEnteredEventDetails" in e
    ]


def run_execution(
    sfn: Any,
    state_machine_arn: str,
    execution_input: Any,
    name: str | None = None,
    on_state: Callable[[str, float], None] | None = None,
    timeout: float = 180.0,
    poll: float = 0.2,
) -> ExecutionResult:
    """Start an execution and wait (bounded) until it ends, reporting each state entered."""
    started = time.monotonic()
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name or str(uuid.uuid4()),
        input=json.dumps(execution_input),
    )["executionArn"]
    return follow_execution(sfn, arn, on_state, timeout, poll, started)


def follow_execution(
    sfn: Any,
    execution_arn: str,
    on_state: Callable[[str, float], None] | None = None,
    timeout: float = 180.0,
    poll: float = 0.2,
    started: float | None = None,
) -> ExecutionResult:
    started = time.monotonic() if started is None else started
    reported = 0
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        states = entered_states(history(sfn, execution_arn))
        if on_state:
            for state in states[reported:]:
                on_state(state, time.monotonic() - started)
        reported = len(states)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:.0f}s")
        time.sleep(poll)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=execution_arn,
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        states_entered=states,
        seconds=time.monotonic() - started,
    )
