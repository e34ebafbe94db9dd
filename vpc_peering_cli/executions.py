"""Start an execution and follow it, state by state, until it ends.

Only StartExecution, DescribeExecution and GetExecutionHistory are used, so it works on AWS and
on any endpoint that answers like it. Each state's run (entered, exited, errors a Catch or a
Retry took there) is read from the history; :func:`state_runs` is pure, for tests.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import botocore.exceptions

from .aws import ToolError, UsageError, aws_errors, error_code

RUNNING = "RUNNING"
#: History events that say a task (or a Map run) failed; a Retry or a Catch may follow.
_FAILURE_EVENTS = (
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "MapRunFailed",
)
_SUCCESS_EVENTS = ("TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded")


@dataclass
class StateRun:
    """One run of a state: ``kind`` is the state's type as the history names it (Task, Pass,
    Choice, Map, Fail, ...); ``errors`` the task errors raised there, in order;
    ``recovered``: a later attempt succeeded (a Retry took the errors)."""

    name: str
    kind: str
    entered: datetime
    exited: datetime | None = None
    errors: list[str] = field(default_factory=list)
    recovered: bool = False

    @property
    def failed(self) -> bool:
        """It ended on an error (a Catch took it), or it is a Fail state."""
        return self.kind == "Fail" or (bool(self.errors) and not self.recovered)

    def seconds(self, now: datetime) -> float:
        return max(0.0, ((self.exited or now) - self.entered).total_seconds())


def state_runs(events: list[dict[str, Any]]) -> list[StateRun]:
    """Every state run of a history, in the order they were entered."""
    runs: list[StateRun] = []
    open_runs: list[int] = []  # indices into runs, of states entered and not yet exited
    for event in events:
        kind: str = event["type"]
        if kind.endswith("StateEntered") and "stateEnteredEventDetails" in event:
            name = event["stateEnteredEventDetails"]["name"]
            runs.append(StateRun(name, kind.removesuffix("StateEntered"), event["timestamp"]))
            open_runs.append(len(runs) - 1)
        elif kind.endswith("StateExited") and "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            index = next((i for i in reversed(open_runs) if runs[i].name == name), None)
            if index is not None:
                runs[index].exited = event["timestamp"]
                open_runs.remove(index)
        elif kind in _FAILURE_EVENTS and open_runs:
            details: dict[str, Any] = next(
                (v for k, v in event.items() if k.endswith("EventDetails")), {}
            )
            runs[open_runs[-1]].errors.append(str(details.get("error") or kind))
            runs[open_runs[-1]].recovered = False
        elif kind in _SUCCESS_EVENTS and open_runs and runs[open_runs[-1]].errors:
            runs[open_runs[-1]].recovered = True
    return runs


@dataclass
class Outcome:
    """How an execution ended (or stands, when it was not followed to its end)."""

    execution_arn: str
    state_machine_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    runs: list[StateRun] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def failure(self) -> dict[str, str]:
        """``{"Error", "Cause"}`` of a failed, aborted or timed-out execution."""
        return {
            "Error": self.error or f"Execution{self.status.title().replace('_', '')}",
            "Cause": self.cause or f"the execution ended {self.status}",
        }


class Progress(Protocol):
    """Shown while following: the runs so far, as often as they are read."""

    def update(self, runs: list[StateRun], now: datetime) -> None: ...

    def tick(self, now: datetime) -> None: ...

    def finish(self, runs: list[StateRun], now: datetime) -> None: ...

    def note(self, text: str) -> None:
        """How the running state is getting on (a reconcile's rounds and pairs)."""


def start_execution(sfn: Any, state_machine_arn: str, execution_input: Any, found_by: str) -> str:
    """Start the machine; its execution ARN."""
    with aws_errors("stepfunctions StartExecution"):
        try:
            response = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=str(uuid.uuid4()),
                input=json.dumps(execution_input),
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "StateMachineDoesNotExist":
                raise ToolError(
                    f"no state machine {state_machine_arn} ({found_by}): "
                    "is the stack deployed there (--stack-name, --region, --endpoint-url)?"
                ) from exc
            raise
    return str(response["executionArn"])


def history(sfn: Any, execution_arn: str, with_data: bool = False) -> list[dict[str, Any]]:
    """Every event of the execution's history; the states' inputs and outputs only
    ``with_data``."""
    events: list[dict[str, Any]] = []
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, includeExecutionData=with_data
    )
    for page in pages:
        events.extend(page["events"])
    return events


def describe(sfn: Any, execution_arn: str) -> dict[str, Any]:
    with aws_errors("stepfunctions DescribeExecution"):
        try:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                raise ToolError(f"no execution {execution_arn}") from exc
            if error_code(exc) == "InvalidArn":
                raise UsageError(f"{execution_arn} is not an execution ARN") from exc
            raise
    return described


def failure_document(sfn: Any, execution_arn: str) -> dict[str, Any] | None:
    """The document a failed execution ended with: the input of its Fail state (a create's
    compensation report, a reconcile's counts and failed pairs); None if there is none."""
    with aws_errors("stepfunctions GetExecutionHistory"):
        events = history(sfn, execution_arn, with_data=True)
    for event in reversed(events):
        if event["type"] == "FailStateEntered":
            text = event.get("stateEnteredEventDetails", {}).get("input")
            try:
                document = json.loads(text) if text else None
            except ValueError:
                return None
            return document if isinstance(document, dict) else None
    return None


#: The reconcile machine's distributed Map: its rounds are child executions.
ROUNDS_STATE = "RunRounds"
_CHILD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


def rounds_planned(sfn: Any, execution_arn: str) -> int:
    """How many rounds the reconcile planned: the RoundCount Discover gave its distributed Map
    (the rounds themselves are in the plan object it reads; read once, from the history with
    its data); 0 when it cannot be told."""
    try:
        events = history(sfn, execution_arn, with_data=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return 0
    for event in events:
        details = event.get("stateEnteredEventDetails", {})
        if event["type"] == "MapStateEntered" and details.get("name") == ROUNDS_STATE:
            try:
                return int(json.loads(details.get("input") or "{}").get("RoundCount") or 0)
            except (ValueError, AttributeError, TypeError):
                return 0
    return 0


def rounds_progress(sfn: Any, execution_arn: str, total: int | None = None) -> str | None:
    """A reconcile's rounds done (its Map Run's counts) and pairs done (the create and cleanup
    executions named for it, ``<reconcile>-<round>-<pair>``); None when nothing can be told."""
    try:
        runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
        if not runs:
            return None
        counts = sfn.describe_map_run(mapRunArn=runs[-1]["mapRunArn"]).get("itemCounts", {})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    done = int(counts.get("succeeded", 0)) + int(counts.get("failed", 0))
    total = max(total or 0, int(counts.get("total", 0)))
    text = f"round {min(done + 1, total)} of {total}"
    pairs = _pairs_done(sfn, execution_arn)
    if pairs is not None:
        text += f", {pairs[0]} pairs done" + (f" ({pairs[1]} failed)" if pairs[1] else "")
    return text


def _pairs_done(sfn: Any, execution_arn: str) -> tuple[int, int] | None:
    """Pairs (child executions of the create and cleanup machines) done, and failed."""
    head, _, name = execution_arn.rpartition(":")
    prefix, _, machine = head.rpartition(":")
    if not _CHILD_NAME.match(name) or not machine.endswith("-reconcile"):
        return None
    stack = machine.removesuffix("-reconcile")
    machines = prefix.replace(":execution", ":stateMachine")
    done = failed = 0
    try:
        for child in ("create", "cleanup"):
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=f"{machines}:{stack}-{child}"
            )
            for page in pages:
                for execution in page["executions"]:
                    if not execution["name"].startswith(f"{name}-"):
                        continue
                    if execution["status"] != RUNNING:
                        done += 1
                        failed += execution["status"] != "SUCCEEDED"
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    return done, failed


@dataclass
class Polling:
    """How often to ask: quickly after a change, then less often while nothing happens (a
    create may wait hours for acceptance); the live line is redrawn every ``tick`` between."""

    first: float = 0.25
    most: float = 2.0
    growth: float = 1.5
    tick: float = 0.1
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def follow(
    sfn: Any, execution_arn: str, progress: Progress, polling: Polling | None = None
) -> Outcome:
    """Follow the execution until it ends, reporting its state runs as they come.

    Bounded by the execution itself: Step Functions ends every execution (each machine's
    states have timeouts; a Standard execution lasts at most a year). Ctrl-C stops following,
    not the execution."""
    polling = polling or Polling()
    interval = polling.first
    total_rounds: int | None = None
    seen = -1
    while True:
        described = describe(sfn, execution_arn)
        with aws_errors("stepfunctions GetExecutionHistory"):
            events = history(sfn, execution_arn)
        runs = state_runs(events)
        progress.update(runs, polling.now())
        if described["status"] != RUNNING:
            break
        if any(r.name == ROUNDS_STATE and r.exited is None for r in runs):
            if total_rounds is None:
                total_rounds = rounds_planned(sfn, execution_arn)
            text = rounds_progress(sfn, execution_arn, total_rounds)
            if text:
                progress.note(text)
        interval = (
            polling.first if len(events) != seen else min(interval * polling.growth, polling.most)
        )
        seen = len(events)
        waited = 0.0
        while waited < interval:
            step = min(polling.tick, interval - waited)
            polling.sleep(step)
            waited += step
            progress.tick(polling.now())
    progress.finish(runs, polling.now())
    output = described.get("output")
    return Outcome(
        execution_arn=execution_arn,
        state_machine_arn=str(described.get("stateMachineArn", "")),
        status=str(described["status"]),
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        runs=runs,
    )
