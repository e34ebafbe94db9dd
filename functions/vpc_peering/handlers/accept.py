"""EventBridge target: auto-accept a requested peering and report back to the create machine.

Only the peering id and the task token are taken from the event; the decision is made on
EC2's own record of the peering (see ``acceptance``). The token is checked first, with a
heartbeat: an event whose token no execution is waiting on is dropped before any EC2 call.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..acceptance import accept
from ..aws import Access
from ..errors import PeeringError, TransientAwsError
from ..models import AcceptanceRequest, parse
from ..observability import logger, metrics, tracer
from ..runtime import load_settings

#: Errors that mean no execution waits on this token any more: nothing to report to.
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, dict) else None
    token = detail.get("TaskToken") if isinstance(detail, dict) else None
    if not isinstance(token, str) or not token:
        logger.warning("event without a task token ignored")
        return {"Reported": False}
    settings = load_settings()
    sfn = boto3.client("stepfunctions", region_name=settings.hub_region)
    try:
        sfn.send_task_heartbeat(taskToken=token)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in STALE_TOKEN_CODES:
            logger.warning("no execution waits on this token; event ignored")
            return {"Reported": False}
        raise
    try:
        request = parse(AcceptanceRequest, detail, root="detail")
        logger.append_keys(vpc_peering_connection_id=request.vpc_peering_connection_id)
        access = Access(settings, request.execution_name or "accept")
        outcome = accept(request, access, settings)
    except TransientAwsError:
        raise  # EventBridge/Lambda retry the delivery; the machine's heartbeat bounds the wait
    except PeeringError as exc:
        logger.warning("not accepted", error=exc.name, cause=str(exc))
        metrics.add_metric(name="AcceptDenied", unit=MetricUnit.Count, value=1)
        return _report(sfn, token, failure=(exc.name, str(exc)))
    metrics.add_metric(name="PeeringAccepted", unit=MetricUnit.Count, value=int(outcome.accepted))
    return _report(sfn, token, output=outcome.dump())


def _report(
    sfn: Any,
    token: str,
    output: dict[str, Any] | None = None,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    try:
        if failure:
            sfn.send_task_failure(taskToken=token, error=failure[0], cause=failure[1][:32768])
        else:
            sfn.send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in STALE_TOKEN_CODES:
            raise
        logger.info("execution no longer waiting; report dropped")
        return {"Reported": False}
    return {"Reported": True, **(output or {"Error": failure[0] if failure else None})}
