"""EventBridge delivery where moto differs from AWS: Lambda, state machine and event bus targets.

Why: moto's ``PutEvents`` raises NotImplementedError when a matching rule targets a Lambda
function or a state machine (the create machine relies on exactly that: its
``events:putEvents.waitForTaskToken`` task is answered by a Lambda rule target), and it hands an
event to another bus by putting it again, which loses the event's account, region, resources,
time and id and ignores the receiving bus's policy.

* Lambda and state machine targets: delivered asynchronously, as in EventBridge: ``PutEvents``
  returns before the target runs, so a ``waitForTaskToken`` task is already waiting when the
  target reports back. A Lambda target that raises is retried like an asynchronous Lambda
  invocation (two more attempts, ~1 s apart), then the event is logged and dropped.
* Event bus targets (another account and/or region, or the same): the event arrives unchanged
  (id, source, detail-type, detail, resources, time, account and region of origin), and the
  receiving bus's rules match it. Forwarding is one hop: an event that arrived through a bus
  target is not sent on by the receiving bus's own bus targets. A cross-account delivery needs
  the receiving bus's resource policy to allow it (``bus_policy.py``); a refused one is logged,
  dropped and listed by :func:`refused` (``GET /_emulator/events/refused``). Input
  transformation is not applied to bus targets (EventBridge does not offer it for them).
* ``PutEvents`` naming a bus by ARN goes to that bus (moto looks the name up in the caller's
  account); into another account only if the bus policy allows it, else the whole call fails
  with ``AccessDeniedException``.
* SQS targets: the event as EventBridge sends it (moto's own drops ``account`` and ignores
  ``Input``/``InputPath``), synchronously.
* SNS targets: published to the topic, synchronously (moto's SNS delivers to the topic's SQS
  subscribers); an ``InputTransformer`` whose template is text, not JSON, sends that text
  (moto's parser takes JSON templates only).
* Other target kinds (log groups, archives, API destinations) are left to moto's own
  ``send_to_targets``.

Service events (``tag_events.py``) and scheduled events (``schedules.py``) enter through
:func:`emit_to_default_bus` and :func:`fire_rule`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.events.exceptions import ValidationException
from moto.events.models import EventBus, EventsBackend, Rule, events_backends
from moto.events.utils import _BASE_EVENT_MESSAGE, EventMessageType, EventTemplateParser
from moto.utilities.arns import parse_arn

from emulator import bus_policy

logger = logging.getLogger("emulator.events")

LAMBDA_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
MAX_PUT_EVENTS_ENTRIES = 10  # PutEvents' documented limit
#: Only AWS services put events whose source begins ``aws.``: an account's PutEvents entry with
#: one fails with ``NotAuthorizedForSourceException`` ("PutEventsResultEntry", ErrorCode:
#: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html),
#: so a forged ``aws.tag`` event cannot reach a bus. The emulator's own service events
#: (``tag_events.py``, ``schedules.py``) go through ``emit_to_default_bus``/``fire_rule``.
RESERVED_SOURCE_PREFIX = "aws."
REFUSED_KEPT = 1000  # the most recent refusals listed by refused()

_original_send_to_targets: Callable[..., None] | None = None
_refused: deque[dict[str, Any]] = deque(maxlen=REFUSED_KEPT)
_refused_lock = threading.Lock()


def original_send_to_targets() -> Callable[..., None]:
    """moto's own ``Rule.send_to_targets``, for targets this module does not handle."""
    if _original_send_to_targets is None:
        raise RuntimeError("event_delivery.install() has not run")
    return _original_send_to_targets


def install() -> None:
    """Patch moto's ``Rule.send_to_targets`` and ``EventsBackend.put_events`` (idempotent)."""
    global _original_send_to_targets
    if _original_send_to_targets is None:
        _original_send_to_targets = Rule.send_to_targets
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
        EventsBackend.put_events = _put_events  # type: ignore[method-assign]


# ------------------------------------------------------------------------------ entry points


def service_event(
    *,
    source: str,
    detail_type: str,
    account: str,
    region: str,
    resources: list[str],
    detail: dict[str, Any],
) -> EventMessageType:
    """An event an AWS service sends, as moto's delivery code expects it (time as epoch)."""
    now = unix_time()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": now,
        "region": region,
        "resources": resources,
        "detail": detail,
        "ingestion-time": now,  # moto's own targets (SQS, logs) read it
    }


def emit_to_default_bus(account: str, region: str, event: EventMessageType) -> None:
    """Put a service event (e.g. ``aws.tag``) on the default bus of its account and region."""
    deliver_to_bus(events_backends[account][region].event_buses["default"], event)


def fire_rule(rule: Rule, event: EventMessageType) -> None:
    """Hand ``event`` to the rule's targets without matching a pattern (a schedule firing)."""
    deliver_to_rule(rule, event, match=False)


def deliver_to_bus(bus: EventBus, event: EventMessageType, *, forwarded: bool = False) -> None:
    """Offer the event to every rule of the bus; ``forwarded``: it came through a bus target."""
    for rule in list(bus.rules.values()):
        deliver_to_rule(rule, event, forwarded=forwarded)


def refused() -> list[dict[str, Any]]:
    """Cross-account deliveries a bus policy refused (most recent last)."""
    with _refused_lock:
        return list(_refused)


def control_refused(method: str, body: bytes) -> tuple[int, Any]:
    """``GET /_emulator/events/refused`` lists refusals, ``DELETE`` clears (returns them)."""
    if method == "GET":
        return 200, refused()
    if method == "DELETE":
        with _refused_lock:
            cleared = list(_refused)
            _refused.clear()
        return 200, cleared
    return 405, {"error": f"{method} not allowed on events/refused"}


# ----------------------------------------------------------------------------- rule targets


def _send_to_targets(
    self: Rule, original_event: EventMessageType, transform_input: bool = True
) -> None:
    deliver_to_rule(self, original_event, transform_input)


def deliver_to_rule(
    rule: Rule,
    original_event: EventMessageType,
    transform_input: bool = True,
    *,
    forwarded: bool = False,
    match: bool = True,
) -> None:
    """What EventBridge does when an event reaches a rule: match, then each target.

    A schedule rule matches no event (moto lets its empty pattern match every one): only its
    schedule fires it (``match=False``).
    """
    if match and (
        rule.scheduled_expression or not rule.event_pattern.matches_event(original_event)
    ):
        return
    if rule.state == "DISABLED":
        return
    others = []
    for target in rule.targets:
        arn = parse_arn(target["Arn"])
        if arn.service == "lambda" and arn.resource_type == "function":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _start(_deliver_to_lambda, rule, target["Arn"], event)
        elif arn.service == "states" and arn.resource_type == "stateMachine":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _start(_deliver_to_state_machine, rule, target["Arn"], event)
        elif arn.service == "sqs":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _deliver_to_queue(rule, target, event)
        elif arn.service == "sns":
            event = _target_input(target, eventbridge_event(original_event), transform_input)
            _deliver_to_topic(rule, target, event)
        elif arn.service == "events" and arn.resource_type == "event-bus":
            _forward(rule, target["Arn"], original_event, forwarded)
        else:
            others.append(target)
    if others:
        rest = copy.copy(rule)
        rest.targets = others
        original_send_to_targets()(rest, original_event, transform_input)


def deliver_scheduled_input(name: str, account: str, region: str, target: dict[str, Any]) -> None:
    """An EventBridge Scheduler schedule's firing: its target's ``Input`` as it is (JSON text
    parsed), to a Lambda function (invoked, with the rules' retries) or a state machine (an
    execution started): Scheduler's templated targets. Any other target is logged, not sent."""
    text = target.get("Input", "{}")
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = text
    arn = parse_arn(target["Arn"])
    # The deliveries name their source as they name a rule: by name, account and region.
    owner: Any = _ScheduleOwner(name=name, account_id=account, region_name=region)
    if arn.service == "lambda" and arn.resource_type == "function":
        _start(_deliver_to_lambda, owner, target["Arn"], payload)
    elif arn.service == "states" and arn.resource_type == "stateMachine":
        _start(_deliver_to_state_machine, owner, target["Arn"], payload)
    else:
        logger.error("schedule %s: target %s is not emulated, not sent", name, target["Arn"])


class _ScheduleOwner:
    """What a delivery reads of the rule it delivers for, for a Scheduler schedule."""

    def __init__(self, *, name: str, account_id: str, region_name: str) -> None:
        self.name, self.account_id, self.region_name = name, account_id, region_name


def _forward(rule: Rule, bus_arn: str, event: EventMessageType, forwarded: bool) -> None:
    if forwarded:
        logger.info(
            "rule %s: event %s came through a bus target; not forwarded again to %s",
            rule.arn, event.get("id"), bus_arn,
        )  # fmt: skip
        return
    target = parse_arn(bus_arn)
    bus = _find_bus(target.account, target.region, target.resource_id)
    if bus is None:
        logger.warning("rule %s: target bus %s does not exist; event dropped", rule.arn, bus_arn)
        return
    if target.account != rule.account_id:
        decision = bus_policy.evaluate(bus.policy, _put_request(rule.account_id, bus, event))
        if not decision.allowed:
            _refuse(event, bus, via=rule.arn, reason=decision.reason)
            return
    deliver_to_bus(bus, copy.deepcopy(event), forwarded=True)


def _find_bus(account: str, region: str, name: str) -> EventBus | None:
    bus: EventBus | None = events_backends[account][region].event_buses.get(name)
    return bus


def _put_request(sender: str, bus: EventBus, event: EventMessageType) -> bus_policy.PutRequest:
    return bus_policy.PutRequest(
        sender_account=sender,
        bus_arn=bus.arn,
        source=str(event.get("source", "")),
        detail_type=str(event.get("detail-type", "")),
    )


def _refuse(event: EventMessageType, bus: EventBus, *, via: str, reason: str) -> None:
    record = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event_id": event.get("id"),
        "source": event.get("source"),
        "detail-type": event.get("detail-type"),
        "from_account": event.get("account"),
        "from_region": event.get("region"),
        "bus_arn": bus.arn,
        "via": via,
        "reason": reason,
    }
    logger.warning("event %s refused by %s (via %s): %s", record["event_id"], bus.arn, via, reason)
    with _refused_lock:
        _refused.append(record)


# -------------------------------------------------------------------------------- PutEvents


def _put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's ``put_events``, with a bus ARN honoured (another account: if its policy allows).

    Every entry's bus is resolved and authorised before any is delivered: a refused entry fails
    the whole call, as an authorisation error does in AWS.
    """
    if len(events) > MAX_PUT_EVENTS_ENTRIES:
        raise ValidationException(
            "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed "
            "to satisfy constraint: Member must have length less than or equal to 10"
        )
    planned: list[tuple[dict[str, Any], EventMessageType | None, EventBus | None]] = []
    for entry in events:
        error = _entry_error(entry)
        if error is not None:
            planned.append((error, None, None))
            continue
        event = _event_message(self, entry)
        bus = _destination_bus(self, entry.get("EventBusName"), event)
        planned.append(({"EventId": event["id"]}, event, bus))
    for _, message, destination in planned:
        if message is not None and destination is not None:
            deliver_to_bus(destination, message)
    return [result for result, _, _ in planned]


def _entry_error(entry: dict[str, Any]) -> dict[str, str] | None:
    """The per-entry error moto (and EventBridge) reports, or None for a valid entry."""
    for field in ("Source", "DetailType", "Detail"):
        if not entry.get(field):
            return {
                "ErrorCode": "InvalidArgument",
                "ErrorMessage": f"Parameter {field} is not valid. Reason: {field} is a "
                "required argument.",
            }
    try:
        json.loads(entry["Detail"])
    except ValueError:
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    if str(entry["Source"]).startswith(RESERVED_SOURCE_PREFIX):
        return {
            "ErrorCode": "NotAuthorizedForSourceException",
            "ErrorMessage": "You do not have permissions to publish events with this source "
            "onto this event bus.",
        }
    return None


def _event_message(backend: EventsBackend, entry: dict[str, Any]) -> EventMessageType:
    event = copy.deepcopy(_BASE_EVENT_MESSAGE)
    event["id"] = str(uuid.uuid4())
    event["detail-type"] = entry["DetailType"]
    event["source"] = entry["Source"]
    event["account"] = backend.account_id
    event["time"] = entry.get("Time", unix_time())
    event["region"] = backend.region_name
    event["resources"] = entry.get("Resources", [])
    event["detail"] = json.loads(entry["Detail"])
    event["ingestion-time"] = unix_time()
    return event


def _destination_bus(
    backend: EventsBackend, name_or_arn: str | None, event: EventMessageType
) -> EventBus:
    """The bus an entry names: a name in the caller's account and region, or an ARN."""
    if not name_or_arn or not name_or_arn.startswith("arn:"):
        bus: EventBus = backend.describe_event_bus(name_or_arn or "default")
        return bus
    arn = parse_arn(name_or_arn)
    target: EventBus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
    if arn.account != backend.account_id:
        request = _put_request(backend.account_id, target, event)
        decision = bus_policy.evaluate(target.policy, request)
        if not decision.allowed:
            _refuse(event, target, via="PutEvents", reason=decision.reason)
            raise JsonRESTError(
                "AccessDeniedException",
                f"Account {backend.account_id} is not authorized to perform: events:PutEvents "
                f"on resource: {target.arn} because no resource-based policy allows the "
                f"events:PutEvents action ({decision.reason})",
            )
    return target


# --------------------------------------------------------------------------- target inputs


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
        template = transformer.get("InputTemplate")
        if template and not _is_json(template):
            return _text_template(template, transformer.get("InputPathsMap", {}), event)
        return EventTemplateParser.parse(
            input_template=template,
            input_paths_map=transformer.get("InputPathsMap", {}),
            # moto's parser reads ingestion-time, which the target's view of the event lacks
            event={**event, "ingestion-time": unix_time()},  # type: ignore[typeddict-item]
        )
    return event


def _is_json(template: str) -> bool:
    """A JSON input template (placeholders aside); anything else is a text template."""
    try:
        json.loads(re.sub(r"<[A-Za-z0-9_.-]+>", "0", template))
    except ValueError:
        return False
    return True


def _text_template(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """A text input template, as EventBridge fills one (moto's parser takes JSON only): a string
    value as it is, any other as JSON, a path the event lacks as ``null``;
    ``<aws.events.event.json>`` the whole event. The target receives the text itself."""
    from jsonpath_ng.ext import parse

    values: dict[str, Any] = {"aws.events.event.json": event}
    for name, path in paths.items():
        matches = parse(path).find(event)
        values[name] = matches[0].value if matches else None

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    return re.sub(r"<([A-Za-z0-9_.-]+)>", fill, template)


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


def _deliver_to_queue(rule: Rule, target: dict[str, Any], event: Any) -> None:
    from moto.sqs.models import sqs_backends

    queue = parse_arn(target["Arn"]).resource_id
    account, region = _account_region(rule, target["Arn"])
    group = (target.get("SqsParameters") or {}).get("MessageGroupId")
    try:
        sqs_backends[account][region].send_message(
            queue_name=queue, message_body=json.dumps(event), group_id=group
        )
    except Exception:
        logger.exception("rule %s: sending to %s failed, event dropped", rule.name, target["Arn"])


def _deliver_to_topic(rule: Rule, target: dict[str, Any], event: Any) -> None:
    """Publish to the topic, as EventBridge does (the text a text template made, else JSON);
    moto's SNS then delivers to the topic's subscribers (SQS queues among them)."""
    from moto.sns.models import sns_backends

    account, region = _account_region(rule, target["Arn"])
    message = event if isinstance(event, str) else json.dumps(event)
    try:
        sns_backends[account][region].publish(message=message, arn=target["Arn"])
    except Exception:
        logger.exception(
            "rule %s: publishing to %s failed, event dropped", rule.name, target["Arn"]
        )


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
