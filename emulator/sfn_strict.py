"""Step Functions as strict as AWS documents it, where moto 5.2.5's interpreter is softer.

Each behaviour cites the AWS page it follows and has a test of its own in
tests/emulator/test_emulator_strict_sfn.py; emulator/README.md lists them in one table.

* Terminal errors: ``States.Runtime`` and ``States.DataLimitExceeded`` match no Retrier and no
  Catcher (moto let ``States.ALL`` catch and retry both).
* Payload size: a Task's input after ``Parameters`` over 256 KiB fails with
  ``States.DataLimitExceeded`` (moto measured results and outputs only, and refused exactly
  262,144 bytes, which AWS allows).
* Distributed Map: failed child executions count against ``ToleratedFailureCount``/
  ``ToleratedFailurePercentage`` (0 when neither is given); beyond them the Map Run fails with
  ``States.ExceedToleratedFailureThreshold``. A tolerated failed child's entry in the results is
  its execution result (``Status`` ``FAILED``, ``Error``, ``Cause``, ...), not ``null``.
* ``events:putEvents``: an error response is ``EventBridge.<ErrorCode>`` (moto: States.Runtime),
  and a response with ``FailedEntryCount`` > 0 fails the task with ``EventBridge.FailedEntry``
  whose cause is the response as JSON.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import (
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import (
    Job,
    JobPool,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
    DEFAULT_MAX_CONCURRENCY_VALUE,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (  # noqa: E501
    resource_eval_s3 as s3_writer,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
    ToleratedFailureCountDecl,
    ToleratedFailureCountInt,
    ToleratedFailurePercentage,
    ToleratedFailurePercentageDecl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_events,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (  # noqa: E501
    StateTaskService,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError
from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

#: "Step Functions service quotas", maximum input or output size for a task, state, or
#: execution: 256 KiB of data as a UTF-8 encoded string.
#: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
MAX_PAYLOAD_BYTES = 256 * 1024

#: "Error handling in Step Functions" (error names): "States.ALL ... can't catch the
#: States.DataLimitExceeded terminal error or States.Runtime error types"; States.Runtime
#: "isn't retriable, and will always cause the execution to fail"; States.DataLimitExceeded is
#: "a terminal error". So neither matches any Retrier or Catcher, by name or by States.ALL.
#: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
TERMINAL_ERRORS = frozenset({"States.Runtime", "States.DataLimitExceeded"})

_installed = False


def install() -> None:
    """Apply every strict behaviour (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    _terminal_errors()
    _payload_size()
    _distributed_map_failures()
    _result_writer()
    _put_events_errors()


# ----------------------------------------------------------------------- terminal errors
def _terminal_errors() -> None:
    original = ErrorEqualsDecl._eval_body

    def eval_body(self: ErrorEqualsDecl, env: Environment) -> None:
        error_name: ErrorName = env.stack[-1]
        if error_name.error_name in TERMINAL_ERRORS:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    ErrorEqualsDecl._eval_body = eval_body  # type: ignore[method-assign]


# -------------------------------------------------------------------------- payload size
def within_quota(value: Any) -> bool:
    """Whether ``value`` (a JSON string, or data) is at most 256 KiB as UTF-8 JSON, written
    compactly (moto's measure put spaces after separators and escaped non-ASCII characters)."""
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(value.encode("utf-8")) <= MAX_PAYLOAD_BYTES


def _payload_size() -> None:
    # moto refuses a payload of exactly 262,144 bytes ("<"); the quota is a maximum.
    from moto.stepfunctions.parser.asl.component.state import state as state_module
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        state_task_lambda,
    )

    for module in (state_module, state_task_lambda, state_task_service):
        module.is_within_size_quota = within_quota  # type: ignore[attr-defined]

    original = StateTaskService._before_eval_execution

    def before_eval_execution(
        self: StateTaskService,
        env: Environment,
        resource_runtime_part: Any,
        raw_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        # "Error handling": States.DataLimitExceeded is reported when "the input of a state is
        # larger than the payload size quota, after Parameters processing". moto measured only
        # results and outputs. Measured once here, where the task's parameters are final.
        if not within_quota(raw_parameters):
            cause = (
                f"The state/task '{self._get_sfn_resource()}' has an input after Parameters "
                "with a size exceeding the maximum number of bytes service limit."
            )
            raise _data_limit_exceeded(env, cause)
        original(self, env, resource_runtime_part, raw_parameters, state_credentials)

    StateTaskService._before_eval_execution = before_eval_execution  # type: ignore[method-assign]


def _task_failed(error: str, cause: str, **resource: str) -> EventDetails:
    """The details of a TaskFailed event (moto's TypedDicts list every key as required)."""
    failed = TaskFailedEventDetails(error=error, cause=cause, **resource)  # type: ignore[typeddict-item]
    return EventDetails(taskFailedEventDetails=failed)  # type: ignore[typeddict-item]


def _data_limit_exceeded(env: Environment, cause: str) -> FailureEventException:
    error_type = StatesErrorNameType.StatesStatesDataLimitExceeded
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error_type),
            event_type=HistoryEventType.TaskFailed,
            event_details=_task_failed(error_type.to_name(), cause),
        )
    )


# ------------------------------------------------------------------- distributed map runs
#: "Setting failure thresholds for Distributed Map states": the Map Run fails with
#: States.ExceedToleratedFailureThreshold when failed items exceed ToleratedFailureCount or
#: ToleratedFailurePercentage; both default to 0 (no failure tolerated).
#: https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html
NO_COUNT_LIMIT = 2**62


class _FailedChild(dict[str, Any]):
    """A failed child execution's entry in the Map's results (marked, to count it)."""


def _distributed_map_failures() -> None:
    original_from_props = state_map.StateMap.from_state_props

    def from_state_props(self: state_map.StateMap, state_props: Any) -> None:
        original_from_props(self, state_props)
        # A threshold that is not given does not apply, once the other one is: moto reads an
        # absent one as 0, which would make ToleratedFailurePercentage alone useless.
        count = state_props.get(ToleratedFailureCountDecl)
        percentage = state_props.get(ToleratedFailurePercentageDecl)
        if percentage is not None and count is None:
            self.tolerated_failure_count_decl = ToleratedFailureCountInt(NO_COUNT_LIMIT)
        if count is not None and percentage is None:
            self.tolerated_failure_percentage_decl = ToleratedFailurePercentage(100.0)

    state_map.StateMap.from_state_props = from_state_props  # type: ignore[method-assign]
    original_parse = AmazonStateLanguageParser.parse

    def parse(definition: str) -> Any:
        # moto's grammar takes ToleratedFailurePercentage as a decimal only ("100.0") and
        # refuses a definition with 100, which AWS accepts (a JSON number).
        if '"ToleratedFailurePercentage"' in definition:
            definition = json.dumps(json.loads(definition, object_hook=_decimal_percentage))
        return original_parse(definition)

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
    distributed.DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]
    worker.DistributedItemProcessorWorker._eval_job = _eval_job  # type: ignore[method-assign]


def _decimal_percentage(value: dict[str, Any]) -> dict[str, Any]:
    percentage = value.get("ToleratedFailurePercentage")
    if isinstance(percentage, int) and not isinstance(percentage, bool):
        value["ToleratedFailurePercentage"] = float(percentage)
    return value


def _map_run(
    self: distributed.DistributedIterationComponent,
    env: Environment,
    eval_input: distributed.DistributedIterationComponentEvalInput,
) -> None:
    """moto's Map Run, then the failure thresholds; every child still runs to its end (AWS
    stops the Map Run as soon as a threshold is exceeded)."""
    input_items: list[Any] = env.stack.pop()
    job_pool = JobPool(job_program=self._get_iteration_program(), job_inputs=input_items)
    max_concurrency = eval_input.map_run_record.max_concurrency
    workers = (
        len(input_items) if max_concurrency == DEFAULT_MAX_CONCURRENCY_VALUE else max_concurrency
    )
    for _ in range(workers):
        self._launch_worker(env=env, eval_input=eval_input, job_pool=job_pool)
    job_pool.await_jobs()
    worker_exception = job_pool.get_worker_exception()
    if worker_exception is not None:
        raise worker_exception
    outputs = [job.job_output for job in job_pool.get_closed_jobs()]
    while len(_ENTRIES) > _KEPT_MAP_RUNS:  # those of Maps without a ResultWriter, oldest first
        _ENTRIES.pop(next(iter(_ENTRIES)))
    failed = sum(isinstance(output, _FailedChild) for output in outputs)
    total = len(outputs)
    if failed and (
        failed > eval_input.tolerated_failure_count
        or failed * 100.0 / total > eval_input.tolerated_failure_percentage
    ):
        error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=error),
                event_type=HistoryEventType.MapStateFailed,
                event_details=_task_failed(
                    error.to_name(), "The specified tolerated failure threshold was exceeded"
                ),
            )
        )
    env.stack.append([dict(o) if isinstance(o, _FailedChild) else o for o in outputs])


def _eval_job(self: worker.DistributedItemProcessorWorker, env: Environment, job: Job) -> None:
    """moto's child execution, keeping what it dropped: a failed child's result."""
    record = self._map_run_record
    record.item_counter.total.count()
    record.item_counter.running.count()
    record.execution_counter.total.count()
    record.execution_counter.running.count()
    started = _now()
    child_input: Any = job.job_input
    job_output: Any = None
    error: tuple[str, str] | None = None
    try:
        env.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=job.job_index, Value=job.job_input)
        )
        env.states.reset(job.job_input)
        env.stack.append(env.states.get_input())
        self._eval_input(env_frame=env)
        child_input = env.stack[-1]
        job.job_program.eval(env)
        end = env.program_state()
        if isinstance(end, ProgramError):
            details = end.error or {}
            error = (str(details.get("error", "")), str(details.get("cause", "")))
        elif isinstance(end, ProgramEnded):
            record.item_counter.succeeded.count()
            record.item_counter.results_written.count()
            record.execution_counter.succeeded.count()
            record.execution_counter.results_written.count()
            record.execution_counter.running.offset(-1)
            job_output = env.states.get_input()
            entry = _child_result(record, child_input, started, "SUCCEEDED")
            entry["Output"] = json.dumps(job_output, separators=(",", ":"))
            entry["OutputDetails"] = {"Included": True}
            _ENTRIES.setdefault(record.map_run_arn, {})[job.job_index] = entry
        else:  # stopped
            record.execution_counter.aborted.count()
            record.item_counter.aborted.count()
    except EvalTimeoutError:
        record.item_counter.timed_out.count()
        error = ("States.Timeout", "The child execution timed out")
    except FailureEventException as failure:
        pair = failure.extract_error_cause_pair() or (None, None)
        error = (pair[0] or "States.Runtime", pair[1] or "")
    except Exception as exception:
        error = ("States.Runtime", str(exception))
    finally:
        record.item_counter.running.offset(-1)
    if error is not None:
        if error[0] != "States.Timeout":
            record.execution_counter.failed.count()
            record.item_counter.failed.count()
        job_output = _failed_child(record, child_input, started, *error)
        _ENTRIES.setdefault(record.map_run_arn, {})[job.job_index] = dict(job_output)
    job.job_output = job_output


def _failed_child(
    record: Any, child_input: Any, started: str, error: str, cause: str
) -> _FailedChild:
    """A failed child's entry: "If a child workflow execution fails, Step Functions returns its
    execution result unchanged", as with ``Transformation`` ``NONE`` (the child's execution
    details, as DescribeExecution gives them), whatever the ResultWriter's transformation.
    "ResultWriter (Map)", WriterConfig:
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html"""
    entry = _child_result(record, child_input, started, "FAILED")
    return _FailedChild({**entry, "Error": error, "Cause": cause})


def _child_result(record: Any, child_input: Any, started: str, status: str) -> dict[str, Any]:
    """A child execution's result, as DescribeExecution gives it (``Transformation`` ``NONE``)."""
    name = str(uuid.uuid4())
    machine = record.map_state_machine_arn
    return {
        "ExecutionArn": f"{machine.replace(':stateMachine:', ':execution:')}:{name}",
        "Input": json.dumps(child_input, separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Name": name,
        "RedriveCount": 0,
        "StartDate": started,
        "StateMachineArn": machine,
        "Status": status,
        "StopDate": _now(),
    }


# --------------------------------------------------------------------------- ResultWriter
#: Each Map Run's child results by item index (as with Transformation NONE), for its
#: ResultWriter.
_ENTRIES: dict[str, dict[int, dict[str, Any]]] = {}
_KEPT_MAP_RUNS = 64


def _result_writer() -> None:
    """ "ResultWriter (Map)": Step Functions "exports executions with the same status to their
    respective files" under ``<Prefix>/<Map Run id>/`` (``SUCCEEDED_0.json``, ``FAILED_0.json``,
    ``PENDING_0.json``; JSON arrays of the children's results, as with Transformation NONE)
    and writes ``manifest.json`` beside them, listing them; the Map's output is the Map Run's
    ARN and where the manifest is. moto writes an empty manifest only ("TODO: generate result
    files"): the product reads the files, so the emulator writes them.
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html"""
    s3_writer.ResourceEvalS3._handle_put_object = staticmethod(_put_results)  # type: ignore[method-assign,assignment]


def _put_results(env: Environment, runtime_part: Any, credentials: Any) -> None:
    parameters = env.stack.pop()
    env.stack.pop()  # the Map's results: written from the children's, in full
    client = s3_writer.ResourceEvalS3._get_s3_client(
        resource_runtime_part=runtime_part, state_credentials=credentials
    )
    record = env.map_run_record_pool_manager.get_all().pop()
    run_id = record.map_run_arn.split(":")[-1]
    prefix = str(parameters.get("Prefix") or "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    bucket = parameters["Bucket"]
    entries = _ENTRIES.pop(record.map_run_arn, {})
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    by_status: dict[str, list[dict[str, Any]]] = {status: [] for status in files}
    for _, entry in sorted(entries.items()):
        by_status.setdefault(str(entry["Status"]), []).append(entry)
    for status, results in by_status.items():
        if not results:
            continue
        key = f"{prefix}{run_id}/{status}_0.json"
        body = json.dumps(results).encode()
        client.put_object(Bucket=bucket, Key=key, Body=body)
        files[status].append({"Key": key, "Size": len(body)})
    manifest = {
        "DestinationBucket": bucket,
        "MapRunArn": record.map_run_arn,
        "ResultFiles": files,
    }
    key = f"{prefix}{run_id}/manifest.json"
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    env.stack.append(
        {"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


# ----------------------------------------------------------------------------- putEvents
#: "Add EventBridge events with Step Functions": "If the PutEvents API response contains a
#: non-zero FailedEntryCount then the Task state fails with the error EventBridge.FailedEntry."
#: https://docs.aws.amazon.com/step-functions/latest/dg/connect-eventbridge.html
FAILED_ENTRY = "EventBridge.FailedEntry"


def _put_events_errors() -> None:
    events = state_task_service_events.StateTaskServiceEvents
    original = events._from_error

    def from_error(self: Any, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, state_task_service_events.SfnFailedEntryCountException):
            return _task_failure(self, env, FAILED_ENTRY, json.dumps(ex.cause, default=str))
        if isinstance(ex, ClientError):
            # A service integration names an API error <Service>.<ErrorCode>; moto's events
            # integration turned every one into States.Runtime, which nothing may catch.
            code = ex.response.get("Error", {}).get("Code", "EventBridgeException")
            message = ex.response.get("Error", {}).get("Message", "")
            status = ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            cause = f"{message} (Service: EventBridge, Status Code: {status}, Error Code: {code})"
            return _task_failure(self, env, f"EventBridge.{code}", cause)
        result: FailureEvent = original(self, env, ex)
        return result

    events._from_error = from_error  # type: ignore[method-assign]


def _task_failure(task: Any, env: Environment, error: str, cause: str) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=CustomErrorName(error_name=error),
        event_type=HistoryEventType.TaskFailed,
        event_details=_task_failed(
            error,
            cause,
            resource=task._get_sfn_resource(),
            resourceType=task._get_sfn_resource_type(),
        ),
    )
