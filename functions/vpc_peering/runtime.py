"""How a Lambda event becomes a domain call: the one wrapper every step handler shares.

The state machines send ``{"Document": <state>, "ExecutionName": ...}`` (or ``"Request"`` for
the first step); the handler validates it into the step's model, calls the step, and returns
the updated document as JSON-ready data.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from .aws import Access
from .callbacks import TaskCallbacks
from .errors import ConfigurationError, InvalidInput, PeeringError, TransientAwsError
from .models.documents import FailureReport
from .models.messages import parse
from .observability import logger, metrics, tracer
from .settings import Settings

Handler = Callable[[dict[str, Any], LambdaContext], Any]


@cache
def load_settings() -> Settings:
    """Validated once per cold start; a misconfigured stack fails every invocation with
    ConfigurationError naming the parameters, before anything is read or changed."""
    try:
        return Settings.from_env()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'parameters'}: "
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"the stack's configuration is invalid: {problems}") from None


def _event_part(event: Any, key: str) -> Any:
    if not isinstance(event, dict) or key not in event:
        raise InvalidInput(f"event: missing {key!r}; this function is a state machine step")
    return event[key]


def _execution_name(event: Any) -> str:
    name = event.get("ExecutionName") if isinstance(event, dict) else None
    return str(name) if name else "unknown"


def _instrument(step_name: str, fn: Handler) -> Handler:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
        logger.append_keys(step=step_name, execution=_execution_name(event))
        result = fn(event, context)
        metrics.add_metric(name=f"{step_name}Succeeded", unit=MetricUnit.Count, value=1)
        return result

    return lambda_handler


def request_step(
    step_name: str, step: Callable[[Any, str, Access, Settings], BaseModel]
) -> Handler:
    """A first step: takes the raw execution input as ``Request``."""

    def run(event: dict[str, Any], context: LambdaContext) -> Any:
        settings = load_settings()
        request = _event_part(event, "Request")
        execution = _execution_name(event)
        return step(
            request, execution, Access(settings, execution, step_name), settings
        ).model_dump(mode="json", by_alias=True)

    return _instrument(step_name, run)


def document_step[DocT: BaseModel](
    step_name: str, model: type[DocT], step: Callable[[DocT, Access, Settings], BaseModel]
) -> Handler:
    """A later step: takes the document the previous step returned, returns the next one."""

    def run(event: dict[str, Any], context: LambdaContext) -> Any:
        settings = load_settings()
        doc = parse(model, _event_part(event, "Document"), root="Document")
        access = Access(settings, _execution_name(event), step_name)
        return step(doc, access, settings).model_dump(mode="json", by_alias=True)

    return _instrument(step_name, run)


def event_step[RequestT: BaseModel](
    step_name: str, model: type[RequestT], step: Callable[[RequestT, Access, Settings], BaseModel]
) -> Handler:
    """An EventBridge target that answers a waiting task: the event's ``detail`` carries the
    task token and the request. The token is checked first, with a heartbeat: an event whose
    token no execution waits on is dropped before the step runs. A domain error becomes the
    task's failure (its name and message); a transient one fails the invocation, so Lambda
    delivers the event again."""

    def run(event: dict[str, Any], context: LambdaContext) -> Any:
        detail = event.get("detail") if isinstance(event, dict) else None
        token = detail.get("TaskToken") if isinstance(detail, dict) else None
        if not isinstance(token, str) or not token:
            logger.warning("event without a task token ignored")
            return {"Reported": False}
        settings = load_settings()
        task = TaskCallbacks(Access(settings), settings)
        if not task.waiting(token):
            logger.warning("no execution waits on this token; event ignored")
            return {"Reported": False}
        try:
            request = parse(model, detail, root="detail")
            outcome = step(request, Access(settings, _execution_name(detail), step_name), settings)
        except TransientAwsError:
            raise
        except PeeringError as exc:
            logger.warning("refused", error=exc.name, cause=str(exc))
            metrics.add_metric(name=f"{step_name}Refused", unit=MetricUnit.Count, value=1)
            reported = task.fail(token, exc.name, str(exc))
            return {"Reported": True, "Error": exc.name} if reported else {"Reported": False}
        if not task.succeed(token, outcome):
            logger.info("execution no longer waiting; report dropped")
            return {"Reported": False}
        return {"Reported": True, **outcome.model_dump(mode="json", by_alias=True)}

    return _instrument(step_name, run)


def event_target[EventT: BaseModel](
    step_name: str, model: type[EventT], step: Callable[[EventT, Access, Settings], BaseModel]
) -> Handler:
    """An EventBridge rule target taking the whole event. An event the step refuses (a domain
    error) is logged and dropped: delivered again, it would be refused again. A transient
    error fails the invocation, so Lambda delivers the event again."""

    def run(event: dict[str, Any], context: LambdaContext) -> Any:
        settings = load_settings()
        try:
            result = step(
                parse(model, event, root="event"), Access(settings, step=step_name), settings
            )
        except TransientAwsError:
            raise
        except PeeringError as exc:
            logger.warning("event refused", error=exc.name, cause=str(exc))
            metrics.add_metric(name=f"{step_name}Refused", unit=MetricUnit.Count, value=1)
            return {"Refused": exc.name, "Cause": str(exc)}
        return result.model_dump(mode="json", by_alias=True)

    return _instrument(step_name, run)


def raw_step(step_name: str, step: Callable[[dict[str, Any], Access, Settings], Any]) -> Handler:
    """A step that must cope with any input shape (failure handling). A misconfigured stack is
    reported as what it is (ConfigurationError, naming the parameters): nothing could have been
    made, since the first step fails the same way."""

    def run(event: dict[str, Any], context: LambdaContext) -> Any:
        try:
            settings = load_settings()
        except ConfigurationError as exc:  # the stack's fault, not a refusal: not counted
            return FailureReport(error=exc.name, cause=str(exc), stage="Plan").dump()
        document = event.get("Document") if isinstance(event, dict) else None
        access = Access(settings, _execution_name(event), step_name)
        result = step(document if isinstance(document, dict) else {}, access, settings)
        _count_refusal(event, result)
        return result

    return _instrument(step_name, run)


#: The machines whose refusals at Plan are counted, each by its own metric
#: (``<Machine>RefusedAtPlan``): its alarm counts the failed executions that were not such a
#: refusal, so that a typo or a dry run pages nobody (template.yaml, ``...FailedAlarm``).
REFUSAL_METRICS = {"create": "CreateRefusedAtPlan", "cleanup": "CleanupRefusedAtPlan"}


def _count_refusal(event: Any, result: Any) -> None:
    """A failure summary saying Stage Plan (nothing was made: bad input, a dry run, Plan's
    checks) counts as its machine's refusal."""
    machine = event.get("Machine") if isinstance(event, dict) else None
    stage = result.get("Stage") if isinstance(result, dict) else None
    if stage == "Plan" and machine in REFUSAL_METRICS:
        metrics.add_metric(name=REFUSAL_METRICS[machine], unit=MetricUnit.Count, value=1)
