"""The network as the hub reads it: ``status``, ``list`` and ``graph`` invoke the stack's
read-only NetworkStatus function (output ``NetworkStatusFunctionName``), which reads every
managed account and region with the stack's roles, so what they show does not depend on the
caller's account or region. The last reconcile and the last sweep come from the hub's Step
Functions (a sweep is the reconcile whose input says ``"Sweep": true``, as the schedule starts
it), the next sweep from the stack's ``ReconcileSchedule`` parameter (``schedule.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .aws import Aws, ToolError, aws_errors
from .schedule import NextSweep, next_sweep
from .stack import stack_description

FUNCTION_OUTPUT = "NetworkStatusFunctionName"
#: The reconciles tag changes start are named so (``reconcile.on_tag_change``): never a sweep.
TAG_STARTED_PREFIX = "tags-"
#: How far back the last sweep is looked for: executions listed, and read (newest first).
SWEEP_SEARCH = 100
SWEEP_DESCRIBES = 10


@dataclass
class NetworkView:
    """What the status function returned, and the stack's last reconcile and sweep."""

    status: dict[str, Any]
    last_reconcile: dict[str, Any] | None = None
    schedule: str | None = None
    stack_name: str = ""
    region: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: The last reconcile the schedule started (as ``last_reconcile``), None if none yet.
    last_sweep: dict[str, Any] | None = None
    next_sweep: NextSweep | None = None

    def as_json(self) -> dict[str, Any]:
        upcoming = self.next_sweep
        return {
            **self.status,
            "LastReconcile": self.last_reconcile,
            "ReconcileSchedule": self.schedule,
            "Sweep": {
                "Schedule": self.schedule,
                "Next": upcoming.at.isoformat() if upcoming and upcoming.at else None,
                "NextExact": bool(upcoming and upcoming.exact),
                "NextNote": upcoming.note if upcoming else "",
                "Last": self.last_sweep,
            },
        }


def read_network(aws: Aws, stack_name: str, group: str | None = None) -> NetworkView:
    """The hub's view of the network (one group's with ``group``); a stack that does not exist,
    is not this application's, or a group no VPC is tagged into (members, and VPCs the group
    does not admit), is said as such."""
    stack, outputs, function = status_function(aws, stack_name)
    request: dict[str, Any] = {"Group": group} if group else {}
    status = invoke_status(aws, function, {"Request": request})
    tagged = set(status.get("Groups") or {}) | {
        str(c.get("Group")) for c in status.get("NotAdmitted") or []
    }
    if group and group not in tagged:
        raise ToolError(
            f"no VPC is tagged into group {group!r} in the managed accounts and regions"
        )
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    machine = outputs.get("ReconcileStateMachineArn")
    schedule = parameters.get("ReconcileSchedule") or None
    last_sweep = _last_sweep(aws, machine) if schedule and machine else None
    upcoming = None
    if schedule:
        deployed = stack.get("LastUpdatedTime") or stack.get("CreationTime")
        swept = datetime.fromisoformat(last_sweep["StartDate"]) if last_sweep else None
        upcoming = next_sweep(schedule, datetime.now(UTC), swept, deployed)
    return NetworkView(
        status=status,
        last_reconcile=_last_reconcile(aws, machine),
        schedule=schedule,
        stack_name=stack_name,
        region=aws.region,
        last_sweep=last_sweep,
        next_sweep=upcoming,
    )


def status_function(aws: Aws, stack_name: str) -> tuple[dict[str, Any], dict[str, str], str]:
    """The stack, its outputs and its NetworkStatus function; a stack that does not exist, or is
    not this application's, is said as such."""
    stack = stack_description(aws, stack_name)
    if stack is None:
        raise ToolError(f"no stack {stack_name} in {aws.region} (--stack-name, --region)")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    function = outputs.get(FUNCTION_OUTPUT)
    if function is None:
        raise ToolError(
            f"stack {stack_name} in {aws.region} has no output {FUNCTION_OUTPUT}: is it this "
            "application's stack (--stack-name), deployed from this version?"
        )
    return stack, outputs, function


def invoke_status(aws: Aws, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    with aws_errors(f"lambda Invoke {function}"):
        response = aws.client("lambda").invoke(
            FunctionName=function, Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read()
    try:
        result = json.loads(body or b"null")
    except ValueError as exc:
        raise ToolError(f"{function} answered something that is not JSON") from exc
    if response.get("FunctionError") or not isinstance(result, dict):
        error = result if isinstance(result, dict) else {}
        raise ToolError(
            f"{function} failed: {error.get('errorType', 'Error')}: "
            f"{error.get('errorMessage', str(result)[:500])}"
        )
    return result


def _running(executions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not executions:
        return None
    newest = max(executions, key=lambda e: e["startDate"])
    return {"Name": newest["name"], "StartDate": newest["startDate"].isoformat()}


def _last_reconcile(aws: Aws, machine_arn: str | None) -> dict[str, Any] | None:
    """The most recent reconcile that ended (name, status, times, its report) and the one
    running now, if any."""
    if not machine_arn:
        return None
    sfn = aws.client("stepfunctions")
    with aws_errors("stepfunctions ListExecutions"):
        executions = sfn.list_executions(stateMachineArn=machine_arn, maxResults=20)["executions"]
    running = [e for e in executions if e["status"] == "RUNNING"]
    ended = [e for e in executions if e["status"] != "RUNNING"]
    if not ended:
        return {"Running": _running(running)} if running else None
    last = max(ended, key=lambda e: e["startDate"])
    with aws_errors("stepfunctions DescribeExecution"):
        described = sfn.describe_execution(executionArn=last["executionArn"])
    return {**_summary(described), "Running": _running(running)}


def _last_sweep(aws: Aws, machine_arn: str) -> dict[str, Any] | None:
    """The newest reconcile the schedule started (its input says ``"Sweep": true``), among the
    last :data:`SWEEP_SEARCH` executions; tag-started ones (``tags-...``) are not read."""
    sfn = aws.client("stepfunctions")
    with aws_errors("stepfunctions ListExecutions"):
        executions = sfn.list_executions(stateMachineArn=machine_arn, maxResults=SWEEP_SEARCH)[
            "executions"
        ]
    candidates = sorted(
        (e for e in executions if not e["name"].startswith(TAG_STARTED_PREFIX)),
        key=lambda e: e["startDate"],
        reverse=True,
    )
    for execution in candidates[:SWEEP_DESCRIBES]:
        with aws_errors("stepfunctions DescribeExecution"):
            described = sfn.describe_execution(executionArn=execution["executionArn"])
        try:
            given = json.loads(described.get("input") or "null")
        except ValueError:
            continue
        if isinstance(given, dict) and given.get("Sweep") is True:
            return _summary(described)
    return None


def _summary(described: dict[str, Any]) -> dict[str, Any]:
    """A reconcile execution as ``status`` shows it: name, status, times, its report's counts,
    its error."""
    stopped = described.get("stopDate")
    found: dict[str, Any] = {
        "Name": described["name"],
        "Status": described["status"],
        "StartDate": described["startDate"].isoformat(),
        "StopDate": stopped.isoformat() if stopped else None,
    }
    try:
        output = json.loads(described.get("output") or "null")
    except ValueError:
        output = None
    if isinstance(output, dict):
        found["Report"] = {
            k: output.get(k)
            for k in (
                "Status",
                "Desired",
                "Created",
                "Removed",
                "Repaired",
                "Unchanged",
                "FailedCount",
                "DryRun",
            )
            if k in output
        }
    if described.get("error"):
        found["Error"] = described.get("error")
        found["Cause"] = described.get("cause")
    return found
