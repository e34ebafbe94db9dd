"""Write both state machines' ASL from the short description below (`make asl`).

Each machine is its list of steps, first step first; a step says only what differs from the
others of its kind (function, timeout, extra retriers, where its errors go, what comes next).
The builders under the descriptions add the rest: the Lambda invoke, its payload and result
handling, the retriers every Task shares, the EventBridge entries. tests/contract checks the
committed statemachine/*.asl.json are what this writes, so edit here and run `make asl`.
`${...}` are the DefinitionSubstitutions of template.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

type Json = dict[str, Any]
type State = tuple[str, Json]


# The machines ---------------------------------------------------------------------------------


def create() -> Json:
    to_compensate = on_error("Compensate", result_path="$.Error")
    refused = on_error("ReportFailure", result_path="$.Error")
    return machine(
        "Peer two VPCs: validate and plan, create, auto-accept through EventBridge, add routes,"
        " DNS, security-group rules, verify. Any failure after Plan runs Compensate, which removes"
        " what this execution made.",
        received("Plan"),
        invoke(
            "Plan",
            function="PlanFunctionArn",
            payload="Request",
            timeout=60,
            also_retry=[PEERING_IN_PROGRESS],
            catch=refused,
            next="IsDryRun",
        ),
        choice(
            "IsDryRun",
            [{"Variable": "$.DryRun", "BooleanEquals": True, "Next": "DryRunPlanned"}],
            default="CreatePeering",
        ),
        succeed("DryRunPlanned", comment="DryRun: the plan is the output; nothing was changed."),
        invoke(
            "CreatePeering",
            function="CreatePeeringFunctionArn",
            timeout=60,
            catch=to_compensate,
            next="NeedsAcceptance",
        ),
        choice(
            "NeedsAcceptance",
            [{"Variable": "$.Status", "StringEquals": "active", "Next": "AddRoutes"}],
            default="RequestAcceptance",
        ),
        await_event(
            "RequestAcceptance",
            comment="Publish 'VPC Peering Acceptance Requested' with a task token; the accept"
            " function (an EventBridge rule target) reads the peering from EC2, applies the"
            " accept policy, accepts and reports back.",
            detail_type="VPC Peering Acceptance Requested",
            detail=["VpcPeeringConnectionId", "Requester", "Accepter"],
            heartbeat=300,
            timeout=900,
            result_path="$.Acceptance",
            catch=to_compensate,
            next="AddRoutes",
        ),
        invoke(
            "AddRoutes",
            function="AddRoutesFunctionArn",
            timeout=120,
            catch=to_compensate,
            next="ConfigureDns",
        ),
        invoke(
            "ConfigureDns",
            function="ConfigureDnsFunctionArn",
            timeout=60,
            catch=to_compensate,
            next="ConfigureSecurityGroups",
        ),
        invoke(
            "ConfigureSecurityGroups",
            function="ConfigureSecurityGroupsFunctionArn",
            timeout=120,
            catch=to_compensate,
            next="Verify",
        ),
        invoke(
            "Verify",
            function="VerifyFunctionArn",
            timeout=60,
            catch=to_compensate,
            next="DidChange",
        ),
        choice(
            "DidChange",
            [{"Variable": "$.Changed[0]", "IsPresent": True, "Next": "PublishEstablished"}],
            default="Peered",
        ),
        publish(
            "PublishEstablished",
            detail_type="VPC Peering Established",
            detail=["VpcPeeringConnectionId", "Status", "Requester", "Accepter", "Changed"],
            next="Peered",
        ),
        succeed("Peered"),
        invoke(
            "ReportFailure",
            function="ReportFailureFunctionArn",
            timeout=10,
            catch=on_error("FailedUnreported", result_path=None),
            machine="create",
            next="PublishFailed",
        ),
        invoke(
            "Compensate",
            function="CompensateFunctionArn",
            timeout=180,
            catch=on_error(
                "DidCreateAnything",
                result_path="$.CompensationError",
                comment="The compensate function itself failed (after its retries): report"
                " CompensationFailed with the peering id, publish it, fail.",
            ),
            next="PublishFailed",
        ),
        choice(
            "DidCreateAnything",
            [
                {
                    "Variable": "$.VpcPeeringConnectionId",
                    "IsPresent": True,
                    "Next": "CompensationIncomplete",
                }
            ],
            default="NothingToCompensate",
        ),
        pass_(
            "NothingToCompensate",
            comment="The step after Plan failed before a peering was made: nothing to undo, so"
            " that step's own error is the execution's.",
            parameters={
                "Error.$": "$.Error.Error",
                "Cause.$": "$.Error.Cause",
                "Stage": "Create",
                "DryRun": False,
                "VpcPeeringConnectionId": None,
                "RequesterVpcId.$": "$.Requester.VpcId",
                "AccepterVpcId.$": "$.Accepter.VpcId",
            },
            next="PublishFailed",
        ),
        pass_(
            "CompensationIncomplete",
            comment="Compensation could not run to its end: say which peering may remain and how"
            " to remove it, then publish 'VPC Peering Failed' like any other failure.",
            parameters={
                "Error": "CompensationFailed",
                "Cause.$": "States.Format('compensation did not complete ({}); what this"
                " execution made may remain, peering {} included. Run the cleanup machine with"
                " that peering id (or this execution output).',"
                " $.CompensationError.Error, $.VpcPeeringConnectionId)",
                "Stage": "Compensate",
                "DryRun": False,
                "VpcPeeringConnectionId.$": "$.VpcPeeringConnectionId",
                "RequesterVpcId.$": "$.Requester.VpcId",
                "AccepterVpcId.$": "$.Accepter.VpcId",
            },
            next="PublishFailed",
        ),
        *failure_tail(
            "Failed",
            detail_type="VPC Peering Failed",
            detail=FAILURE_FIELDS,
            unreported="FailedUnreported",
            unreported_fields={"Stage": "Plan", "DryRun": False},
        ),
    )


def cleanup() -> Json:
    to_report = on_error("ReportFailure", result_path="$.Error")
    return machine(
        "Undo a peering in reverse order: routes that target it (both VPCs), the route tables this"
        " stack created, then the peering itself. Safe to run again.",
        received("CleanupPlan"),
        invoke(
            "CleanupPlan",
            function="CleanupPlanFunctionArn",
            payload="Request",
            timeout=60,
            also_retry=[PEERING_IN_PROGRESS],
            catch=to_report,
            next="RemoveRoutes",
        ),
        invoke(
            "RemoveRoutes",
            function="RemoveRoutesFunctionArn",
            timeout=120,
            catch=to_report,
            next="DeletePeering",
        ),
        invoke(
            "DeletePeering",
            function="DeletePeeringFunctionArn",
            timeout=120,
            catch=to_report,
            next="DidRemove",
        ),
        choice(
            "DidRemove",
            [{"Variable": "$.Changed[0]", "IsPresent": True, "Next": "PublishRemoved"}],
            default="Removed",
        ),
        publish(
            "PublishRemoved",
            detail_type="VPC Peering Removed",
            detail=["VpcPeeringConnectionId", "Result", "Changed", "Removed"],
            next="Removed",
        ),
        succeed("Removed"),
        invoke(
            "ReportFailure",
            function="ReportFailureFunctionArn",
            timeout=10,
            catch=on_error("CleanupFailedUnreported", result_path=None),
            machine="cleanup",
            next="PublishCleanupFailed",
        ),
        *failure_tail(
            "CleanupFailed",
            detail_type="VPC Peering Cleanup Failed",
            detail=FAILURE_FIELDS,
            unreported="CleanupFailedUnreported",
            unreported_fields={"Stage": "Cleanup", "DryRun": False},
        ),
    )


def reconcile() -> Json:
    to_report = on_error("Report", result_path="$.Error")
    round_failed = on_error("RoundFailed", result_path=None)
    return machine(
        "Make the network follow the VPC tags: Discover reads every managed account and region"
        " once and decides each pair; rounds of pairs that share no VPC then run the create or"
        " cleanup machine for each pair (MaxParallelPairs at a time); Report sums it up.",
        received("NeedsWait"),
        choice(
            "NeedsWait",
            [{"Variable": "$.Request.NotBefore", "IsPresent": True, "Next": "WaitForWindow"}],
            default="Discover",
        ),
        wait_until(
            "WaitForWindow",
            comment="Started by a tag change: begin after its time window, so that one"
            " execution covers every change of the window.",
            timestamp_path="$.Request.NotBefore",
            next="Discover",
        ),
        invoke(
            "Discover",
            function="DiscoverFunctionArn",
            payload="Request",
            timeout=300,
            also_retry=[RECONCILE_IN_PROGRESS],
            catch=to_report,
            next="HasNews",
        ),
        choice(
            "HasNews",
            [{"Variable": "$.Announcements[0]", "IsPresent": True, "Next": "Announce"}],
            default="HasWork",
        ),
        announce(
            "Announce",
            comment="Put each piece of news Discover found (a new refusal by the group policy,"
            " a new join request) on the stack's bus, once; best effort.",
            items_path="$.Announcements",
            next="HasWork",
        ),
        choice(
            "HasWork",
            [{"Variable": "$.HasWork", "BooleanEquals": True, "Next": "RunRounds"}],
            default="Report",
        ),
        distributed_map(
            "RunRounds",
            comment="One round at a time (no two rounds' pairs may share a VPC's route tables),"
            " read from the plan object Discover wrote (each item: a round's pairs, fully"
            " formed); each round is a child execution of its own, so the reconcile's history"
            " and state stay small however many pairs there are.",
            item_reader={
                "Resource": "arn:${Partition}:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": "${PlanBucketName}", "Key.$": "$.PlanKey"},
            },
            item_selector={
                "Round.$": "$$.Map.Item.Value.Round",
                "Pairs.$": "$$.Map.Item.Value.Pairs",
                "Reconcile.$": "$$.Execution.Name",
                "MaxParallelPairs.$": "$.MaxParallelPairs",
                "OutcomeBytes.$": "$.OutcomeBytes",
            },
            result_writer={
                "Resource": "arn:${Partition}:states:::s3:putObject",
                "Parameters": {"Bucket": "${PlanBucketName}", "Prefix": "plans/results"},
            },
            max_concurrency=1,
            result_path="$.Rounds",
            catch=to_report,
            next="Report",
            states=[
                inline_map(
                    "RunPairs",
                    comment="Each pair's create or cleanup execution, MaxParallelPairs at a time;"
                    " a failed one is recorded, not fatal.",
                    items_path="$.Pairs",
                    max_concurrency_path="$.MaxParallelPairs",
                    result_path="$.Pairs",
                    catch=round_failed,
                    next="RecordRound",
                    states=[
                        start_child(
                            "RunPair",
                            timeout=CHILD_TIMEOUT_SECONDS,
                            catch=on_error("PairFailed", result_path="$.Error"),
                        ),
                        succeed(
                            "PairFailed",
                            comment="The child failed: its error is in $.Error for RecordRound.",
                        ),
                    ],
                ),
                invoke(
                    "RecordRound",
                    function="RecordRoundFunctionArn",
                    timeout=60,
                    catch=round_failed,
                    next=None,
                ),
                fail(
                    "RoundFailed",
                    error="InternalError",
                    cause="A round's own steps failed (not one of its pairs); see the round's"
                    " execution history.",
                ),
            ],
        ),
        invoke(
            "Report",
            function="ReconcileReportFunctionArn",
            payload="Request",
            payload_path="$",
            timeout=120,
            catch=on_error("ReportFailed", result_path=None),
            next="Converged",
        ),
        choice(
            "Converged",
            [
                {"Variable": "$.DryRun", "BooleanEquals": True, "Next": "Planned"},
                {"Variable": "$.Status", "StringEquals": "SUCCEEDED", "Next": "PublishReconciled"},
                {"Variable": "$.Error", "StringEquals": "RemovalsHeld", "Next": "PublishHeld"},
            ],
            default="PublishIncomplete",
        ),
        succeed(
            "Planned",
            comment="A dry run: the output's Plan is what a real run would do; nothing changed,"
            " nothing is published.",
        ),
        publish(
            "PublishHeld",
            detail_type="VPC Peering Removals Held",
            detail=["RemovalsHeldCount", "RemovalsHeld", "Scope", "ExecutionName", "Cause"],
            next="PublishIncomplete",
        ),
        publish(
            "PublishReconciled",
            detail_type="VPC Peering Network Reconciled",
            detail=REPORT_FIELDS,
            next="Reconciled",
        ),
        succeed("Reconciled"),
        *failure_tail(
            "Incomplete",
            detail_type="VPC Peering Network Reconciled",
            detail=[*REPORT_FIELDS, "Error", "Cause"],
            unreported="ReportFailed",
            unreported_fields={"Status": "FAILED"},
        ),
        timeout=RECONCILE_TIMEOUT_SECONDS,
    )


#: What "VPC Peering Failed" and "VPC Peering Cleanup Failed" carry (FailureReport).
FAILURE_FIELDS = [
    "Error",
    "Cause",
    "Stage",
    "DryRun",
    "VpcPeeringConnectionId",
    "RequesterVpcId",
    "AccepterVpcId",
]
#: What the "VPC Peering Network Reconciled" event carries (the output has the lists too).
REPORT_FIELDS = [
    "Status",
    "Desired",
    "Created",
    "Removed",
    "Repaired",
    "Unchanged",
    "FailedCount",
    "Deferred",
]
#: A child execution may run this long: beyond the create machine's own worst case (its ASL's
#: timeouts and retries, computed in tests/contract/test_asl.py).
CHILD_TIMEOUT_SECONDS = 4 * 3600
#: A reconcile may run this long (6 days): the reconcile lease's TTL (7 days) outlives it.
RECONCILE_TIMEOUT_SECONDS = 6 * 24 * 3600


MACHINES = {
    "create.asl.json": create,
    "cleanup.asl.json": cleanup,
    "reconcile.asl.json": reconcile,
}


# Retriers -------------------------------------------------------------------------------------


def retrier(
    errors: list[str], *, interval: int, attempts: int, max_delay: int, backoff: float = 2.0
) -> Json:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
        "MaxDelaySeconds": max_delay,
        "JitterStrategy": "FULL",
    }


LAMBDA_SERVICE_ERRORS = retrier(
    [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    interval=1,
    attempts=4,
    max_delay=10,
)
# Raised by the functions when throttling or eventual consistency outlasted the client retries.
TRANSIENT_AWS_ERROR = retrier(["TransientAwsError"], interval=2, attempts=4, max_delay=20)
# Another execution is changing the same VPC pair: wait for it, a little longer each time.
PEERING_IN_PROGRESS = retrier(
    ["PeeringInProgress"], interval=3, attempts=10, backoff=1.5, max_delay=20
)
# Another reconcile changes the network: wait for it. A first build of a large mesh holds the lease
# for hours on AWS (CreateRoute refills at 5/s per account and region: 15,500 routes of a 125-VPC
# mesh in one place take 52 min at least), so wait up to about 12 hours: 1,440 attempts of at most
# 60 s, 30 s on average with full jitter (about 4,300 history events, far under 25,000).
RECONCILE_IN_PROGRESS = retrier(
    ["ReconcileInProgress"], interval=5, attempts=1440, backoff=1.5, max_delay=60
)
# Step Functions refusing or throttling a child's start (the same name and input restart
# nothing: StartExecution is idempotent while the child runs). The execution limit has two
# spellings: AWS's nested-workflows page says StepFunctions.ExecutionLimitExceeded, the API's
# exception (and moto) ...Exception; both are retried.
STEP_FUNCTIONS_ERRORS = retrier(
    [
        "StepFunctions.ExecutionLimitExceeded",
        "StepFunctions.ExecutionLimitExceededException",
        "StepFunctions.ThrottlingException",
        "StepFunctions.SdkClientException",
        "StepFunctions.AWSStepFunctionsException",
    ],
    interval=2,
    attempts=5,
    max_delay=30,
)
# EventBridge.FailedEntry: PutEvents answered, but refused the entry (FailedEntryCount > 0:
# "Add EventBridge events with Step Functions"); an entry fails mostly for InternalFailure or
# ThrottlingException, so it is retried like them.
EVENTBRIDGE_ERRORS = [
    "EventBridge.EventBridgeException",
    "EventBridge.FailedEntry",
    "EventBridge.InternalException",
    "EventBridge.ThrottlingException",
]


# States ---------------------------------------------------------------------------------------


def machine(comment: str, *states: State, timeout: int | None = None) -> Json:
    """The machine starts at its first state; ``timeout``: the execution's own TimeoutSeconds."""
    definition: Json = {"Comment": comment, "StartAt": states[0][0], "States": dict(states)}
    return definition | ({"TimeoutSeconds": timeout} if timeout else {})


def received(next: str) -> State:
    """A machine's first state: the execution input, whatever it is, becomes
    ``{"Request": input}``. Every later state's input is then an object, so every Catch
    writes the error to ``$.Error`` (one error shape for compensation and reporting)."""
    return pass_(
        "Received",
        comment="Wrap the raw input, so that a failure of the first step has the same shape"
        ' ({..., "Error": {Error, Cause}}) as any other.',
        parameters={"Request.$": "$"},
        next=next,
    )


def on_error(next: str, *, result_path: str | None, comment: str | None = None) -> Json:
    """Catch everything and go to `next`, the error at `result_path` ("$": the error alone,
    None: drop it and keep the input)."""
    caught: Json = {"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next}
    if comment is not None:
        caught["Comment"] = comment
    return caught


def invoke(
    name: str,
    *,
    function: str,
    timeout: int,
    catch: Json,
    next: str | None,
    payload: str = "Document",
    payload_path: str | None = None,
    also_retry: Sequence[Json] = (),
    machine: str | None = None,
) -> State:
    """A Lambda step: the function gets {payload: the state input, ExecutionName}; the state
    output is what it returns. `payload` is "Request" for a machine's first step (the input
    execution input, at `payload_path` "$.Request"), "Document" after it (the whole state).
    `machine`: also given to the function, for a step two machines share. `next` None: the
    last state of its machine or Map."""
    path = payload_path or ("$.Request" if payload == "Request" else "$")
    return name, {
        "Type": "Task",
        "Resource": "arn:${Partition}:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": f"${{{function}}}",
            "Payload": {f"{payload}.$": path, "ExecutionName.$": "$$.Execution.Name"}
            | ({"Machine": machine} if machine else {}),
        },
        "ResultSelector": {"Result.$": "$.Payload"},
        "OutputPath": "$.Result",
        "TimeoutSeconds": timeout,
        "Retry": [LAMBDA_SERVICE_ERRORS, TRANSIENT_AWS_ERROR, *also_retry],
        "Catch": [catch],
        **({"Next": next} if next else {"End": True}),
    }


def start_child(name: str, *, timeout: int, catch: Json) -> State:
    """Run a child execution to its end (``startExecution.sync:2``): the machine, name and
    input come from the state (``StateMachineArn``, ``Name``, ``Input``); the state keeps its
    input, with the child's status in ``$.Outcome`` (or its error in ``$.Error``)."""
    return name, {
        "Type": "Task",
        "Resource": "arn:${Partition}:states:::states:startExecution.sync:2",
        "Parameters": {
            "StateMachineArn.$": "$.StateMachineArn",
            "Name.$": "$.Name",
            "Input.$": "$.Input",
        },
        "ResultSelector": {"Status.$": "$.Status"},
        "ResultPath": "$.Outcome",
        "TimeoutSeconds": timeout,
        "Retry": [STEP_FUNCTIONS_ERRORS],
        "Catch": [catch],
        "End": True,
    }


def _processor(states: Sequence[State], mode: str) -> Json:
    config: Json = {"Mode": mode}
    if mode == "DISTRIBUTED":
        config["ExecutionType"] = "STANDARD"
    return {"ProcessorConfig": config, "StartAt": states[0][0], "States": dict(states)}


def distributed_map(
    name: str,
    *,
    comment: str,
    item_reader: Json,
    item_selector: Json,
    result_writer: Json,
    max_concurrency: int,
    result_path: str,
    catch: Json,
    next: str,
    states: Sequence[State],
) -> State:
    """A Map whose iterations are child executions with histories of their own, its items read
    by ``item_reader`` (from S3: no item list in the state), its children's results written by
    ``result_writer`` (to S3: the state gets the manifest's place, however many children failed
    and however large their inputs). A failed child never fails the Map Run
    (ToleratedFailurePercentage 100: on AWS none is tolerated by default,
    States.ExceedToleratedFailureThreshold); its result is its execution's (Status FAILED,
    Error, Cause, Input), for the next state to read."""
    return name, {
        "Type": "Map",
        "Comment": comment,
        "ItemReader": item_reader,
        "ItemSelector": item_selector,
        "ItemProcessor": _processor(states, "DISTRIBUTED"),
        "ResultWriter": result_writer,
        "MaxConcurrency": max_concurrency,
        "ToleratedFailurePercentage": 100,
        "Label": name,
        "ResultPath": result_path,
        "Catch": [catch],
        "Next": next,
    }


def inline_map(
    name: str,
    *,
    comment: str,
    items_path: str,
    max_concurrency_path: str,
    result_path: str,
    catch: Json,
    next: str,
    states: Sequence[State],
) -> State:
    """A Map whose iterations run inside this execution, a bounded number at a time."""
    return name, {
        "Type": "Map",
        "Comment": comment,
        "ItemsPath": items_path,
        "ItemProcessor": _processor(states, "INLINE"),
        "MaxConcurrencyPath": max_concurrency_path,
        "ResultPath": result_path,
        "Catch": [catch],
        "Next": next,
    }


def wait_until(name: str, *, comment: str, timestamp_path: str, next: str) -> State:
    return name, {
        "Type": "Wait",
        "Comment": comment,
        "TimestampPath": timestamp_path,
        "Next": next,
    }


def _entries(detail_type: str, detail: Json) -> Json:
    """Parameters of a putEvents task: one event on the stack's bus."""
    return {
        "Entries": [
            {
                "EventBusName": "${EventBusName}",
                "Source": "${EventSource}",
                "DetailType": detail_type,
                "Detail": detail,
            }
        ]
    }


def _copied(fields: list[str]) -> Json:
    """Event detail: these fields of the state input, then the execution name."""
    return {f"{field}.$": f"$.{field}" for field in fields} | {
        "ExecutionName.$": "$$.Execution.Name"
    }


def publish(name: str, *, detail_type: str, detail: list[str], next: str) -> State:
    """Tell subscribers, best effort: the input passes through unchanged, and a putEvents that
    still fails after its retries is dropped rather than failing the execution."""
    return name, {
        "Type": "Task",
        "Resource": "arn:${Partition}:states:::events:putEvents",
        "Parameters": _entries(detail_type, _copied(detail)),
        "ResultPath": None,
        "TimeoutSeconds": 30,
        "Retry": [
            retrier([*EVENTBRIDGE_ERRORS, "States.Timeout"], interval=1, attempts=3, max_delay=10)
        ],
        "Next": next,
        "Catch": [on_error(next, result_path=None)],
    }


def announce(name: str, *, comment: str, items_path: str, next: str) -> State:
    """Put one event per item of ``items_path`` (``{DetailType, Detail}``) on the stack's bus,
    best effort: the input passes through unchanged, and an event still refused after its
    retries is dropped rather than failing the execution."""
    put: State = (
        "PutNews",
        {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::events:putEvents",
            "Parameters": {
                "Entries": [
                    {
                        "EventBusName": "${EventBusName}",
                        "Source": "${EventSource}",
                        "DetailType.$": "$.DetailType",
                        "Detail.$": "$.Detail",
                    }
                ]
            },
            "ResultPath": None,
            "TimeoutSeconds": 30,
            "Retry": [
                retrier(
                    [*EVENTBRIDGE_ERRORS, "States.Timeout"], interval=1, attempts=3, max_delay=10
                )
            ],
            "Catch": [on_error("NewsDropped", result_path=None)],
            "End": True,
        },
    )
    return name, {
        "Type": "Map",
        "Comment": comment,
        "ItemsPath": items_path,
        "ItemProcessor": _processor([put, succeed("NewsDropped")], "INLINE"),
        "MaxConcurrency": 5,
        "ResultPath": None,
        "Catch": [on_error(next, result_path=None)],
        "Next": next,
    }


def await_event(
    name: str,
    *,
    comment: str,
    detail_type: str,
    detail: list[str],
    heartbeat: int,
    timeout: int,
    result_path: str,
    catch: Json,
    next: str,
) -> State:
    """Publish an event carrying a task token and wait for whoever handles it to send the task
    success (its output goes to `result_path`) or failure."""
    return name, {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:${Partition}:states:::events:putEvents.waitForTaskToken",
        "Parameters": _entries(detail_type, {"TaskToken.$": "$$.Task.Token"} | _copied(detail)),
        "HeartbeatSeconds": heartbeat,
        "TimeoutSeconds": timeout,
        "ResultPath": result_path,
        "Retry": [retrier(EVENTBRIDGE_ERRORS, interval=1, attempts=3, max_delay=10)],
        "Catch": [catch],
        "Next": next,
    }


def failure_tail(
    end: str,
    *,
    detail_type: str,
    detail: list[str],
    unreported: str,
    unreported_fields: Json,
) -> list[State]:
    """How every machine ends a failure: its summary step (which goes to ``Publish<end>``) has
    put the Error, Cause and `detail` fields in the state; they are published, then the
    execution fails with that Error and Cause. `unreported`: where the summary step's own
    Catch goes; the same event says so (with `unreported_fields` and the execution name), and
    the execution fails with InternalError."""
    cause = (
        "the failure could not be summarised (its summary step failed); see the execution history"
    )
    fields = {"Error": "InternalError", "Cause": cause} | unreported_fields
    return [
        publish(f"Publish{end}", detail_type=detail_type, detail=detail, next=end),
        fail(end, error_path="$.Error", cause_path="$.Cause"),
        pass_(
            unreported,
            comment="The summary step itself failed: say so in the same event, then fail.",
            parameters=fields,
            next=f"Publish{unreported}",
        ),
        publish(f"Publish{unreported}", detail_type=detail_type, detail=list(fields), next=end),
    ]


def choice(name: str, choices: list[Json], *, default: str) -> State:
    return name, {"Type": "Choice", "Choices": choices, "Default": default}


def pass_(name: str, *, comment: str, parameters: Json, next: str) -> State:
    return name, {"Type": "Pass", "Comment": comment, "Parameters": parameters, "Next": next}


def succeed(name: str, *, comment: str | None = None) -> State:
    return name, {"Type": "Succeed"} | ({"Comment": comment} if comment is not None else {})


def fail(
    name: str,
    *,
    error: str | None = None,
    cause: str | None = None,
    error_path: str | None = None,
    cause_path: str | None = None,
) -> State:
    fields = {"Error": error, "ErrorPath": error_path, "Cause": cause, "CausePath": cause_path}
    return name, {"Type": "Fail"} | {k: v for k, v in fields.items() if v is not None}


# Output ---------------------------------------------------------------------------------------


def render(build: Callable[[], Json]) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> None:
    for name, build in MACHINES.items():
        (ROOT / "statemachine" / name).write_text(render(build))
        print(f"wrote statemachine/{name}")


if __name__ == "__main__":
    main()
