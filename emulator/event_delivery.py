"""EventBridge rule targets that moto does not deliver to: Lambda functions and state machines.

Why: moto's ``PutEvents`` raises NotImplementedError when a matching rule targets a Lambda
function or a state machine, and the create machine relies on exactly that (its
``events:putEvents.waitForTaskToken`` task is answered by a Lambda rule target).

Delivery is asynchronous, as in EventBridge: ``PutEvents`` returns before the target runs, so a
``waitForTaskToken`` task is already waiting when the target reports back. A Lambda target that
raises is retried like an asynchronous Lambda invocation (two more attempts, ~1 s apart), then
the event is logged and dropped. Other target kinds are left to moto's own ``send_to_targets``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from copy import copy
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.events.models import Rule
from moto.events.utils import EventMessageType, EventTemplateParser
from moto.utilities.arns import parse_arn

logger = logging.getLogger("emulator.events")

LAMBDA_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0

_original_send_to_targets: Callable[..., None] | None = None


def original_send_to_targets() -> Callable[..., None]:
    """moto's own ``Rule.send_to_targets``, for targets this module does not handle."""
    if _original_send_to_targets is None:
        raise RuntimeError("event_delivery.install() has not run")
    return _original_send_to_targets


def install() -> None:
    """Patch moto's ``Rule.send_to_targets`` (idempotent)."""
    global _original_send_to_targets
    if _original_send_to_targets is None:
        _original_send_to_targets = Rule.send_to_targets
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]


def _send_to_targets(
    self: Rule, original_event: EventMessageType, transform_input: bool = True
) -> None:
    if not self.event_pattern.matches_event(original_event):
        return
    if self.state == "DISABLED":
        return
    others = []
    for target in self.targets:
        arn = parse_arn(target["Arn"])
        if arn.service == "lambda" and arn.resource_type == "function":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _start(_deliver_to_lambda, self, target["Arn"], event)
        elif arn.service == "states" and arn.resource_type == "stateMachine":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _start(_deliver_to_state_machine, self, target["Arn"], event)
        else:
            others.append(target)
    if others:
        rest = copy(self)
        rest.targets = others
        original_send_to_targets()(rest, original_event, transform_input)


def eventbridge_event(moto_event: EventMessageType) -> dict[str, Any]:
    """The event as EventBridge hands it to a target (moto keeps ``time`` as epoch seconds)."""
    return {
        "version": moto_event.get("version", "0"),
        "id": moto_event["id"],
        "detail-type": moto_event["detail-type"],
        "source": moto_event["source"],
        "account": moto_event["account"],
        "time": _iso_time(moto_event.get("time")),
        "region": moto_event["region"],
        "resources": moto_event.get("resources", []),
        "detail": moto_event.get("detail", {}),
    }


def _iso_time(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            return value  # already a formatted time
    else:
        moment = datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _target_input(target: dict[str, Any], event: dict[str, Any], transform: bool) -> Any:
    """Apply the target's Input, InputPath or InputTransformer, as EventBridge does."""
    if not transform:
        return event
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,  # type: ignore[arg-type]
        )
    return event


def _start(deliver: Callable[[Rule, str, Any], None], rule: Rule, arn: str, event: Any) -> None:
    thread = threading.Thread(
        target=deliver, args=(rule, arn, event), name=f"deliver-{rule.name}", daemon=True
    )
    thread.start()


def _deliver_to_lambda(rule: Rule, arn: str, event: Any) -> None:
    name = parse_arn(arn).resource_id.split(":")[0]
    account, region = _account_region(rule, arn)
    for attempt in range(1, LAMBDA_ATTEMPTS + 1):
        try:
            function = lambda_backends[account][region].get_function(name)
            payload, errored, _ = function._invoke_lambda(event=event)
        except Exception:
            logger.exception("rule %s: invoking %s failed", rule.name, arn)
            errored, payload = True, "exception in the emulator, see above"
        if not errored:
            return
        if attempt < LAMBDA_ATTEMPTS:
            logger.warning(
                "rule %s: %s failed (attempt %d of %d), retrying: %s",
                rule.name, name, attempt, LAMBDA_ATTEMPTS, payload,
            )  # fmt: skip
            time.sleep(RETRY_DELAY_SECONDS)
    logger.error(
        "rule %s: %s failed %d times, event %s dropped: %s",
        rule.name, name, LAMBDA_ATTEMPTS, _event_id(event), payload,
    )  # fmt: skip


def _deliver_to_state_machine(rule: Rule, arn: str, event: Any) -> None:
    from moto.stepfunctions.responses import get_backend

    account, region = _account_region(rule, arn)
    try:
        get_backend(account, region).start_execution(arn, str(uuid.uuid4()), json.dumps(event))
    except Exception:
        logger.exception("rule %s: starting %s failed, event %s dropped", rule.name, arn, event)


def _account_region(rule: Rule, arn: str) -> tuple[str, str]:
    parsed = parse_arn(arn)
    return parsed.account or rule.account_id, parsed.region or rule.region_name


def _event_id(event: Any) -> str:
    return str(event.get("id")) if isinstance(event, dict) else "?"
