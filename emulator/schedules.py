"""Schedules: EventBridge rules with a ``ScheduleExpression`` fire, as AWS fires them.

Why: moto stores a rule's ``ScheduleExpression`` and never acts on it, so a stack started by a
schedule (a nightly sweep) would deploy and silently never run.

What: a timer thread fires every enabled ``rate(N minute|minutes|hour|hours|day|days)`` rule
of every account and region once per period, the first time one period after it first sees the
rule. A firing hands the rule's targets a "Scheduled Event" (source ``aws.events``, detail
``{}``, ``resources`` = [rule ARN], the rule's account and region, the firing time), through
the same delivery as any event (each target's ``Input``/``InputPath``/``InputTransformer``
applies). ``time_scale`` divides every period (3600: ``rate(1 hour)`` fires every second) so
that tests need not wait. A disabled rule never fires. A period the timer missed (the process
was busy) is skipped, never caught up in a burst.

Gaps (emulator/README.md): ``cron(...)`` rules deploy and can be fired on request, but never on
the timer; the first firing is one period after the rule is first seen, where AWS picks its own
moment within the period.

Control (``/_emulator/schedules``): ``GET`` lists the schedule rules with expression, state and
fire counts; ``POST /_emulator/schedules/fire`` with optional ``{"rule": "<name, ARN or
logical id>"}`` fires now (every schedule rule when none is named) and says what it fired.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moto.events.models import Rule, events_backends
from moto.events.utils import EventMessageType

from emulator import event_delivery

logger = logging.getLogger("emulator.schedules")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_TICK_SECONDS = 0.25
MIN_TICK_SECONDS = 0.01

#: (reference) -> the (account, region, rule name) it names besides rule names and ARNs: the
#: logical ids of the deployed stacks' rules (``stacks.rule_locations``).
LogicalIdResolver = Callable[[str], list[tuple[str, str, str]]]


def rate_seconds(expression: str) -> float | None:
    """The period of a ``rate(...)`` expression in seconds; None for anything else (cron)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule: Rule) -> EventMessageType:
    """The event EventBridge hands a schedule rule's targets."""
    return event_delivery.service_event(
        source="aws.events",
        detail_type="Scheduled Event",
        account=rule.account_id,
        region=rule.region_name,
        resources=[rule.arn],
        detail={},
    )


def schedule_rules() -> Iterator[Rule]:
    """Every rule with a ScheduleExpression, in every account and region moto knows."""
    for _, by_region in list(events_backends.items()):
        for _, backend in list(by_region.items()):
            for bus in list(backend.event_buses.values()):
                for rule in list(bus.rules.values()):
                    if rule.scheduled_expression:
                        yield rule


@dataclass
class _Tracked:
    expression: str
    period: float | None  # scaled seconds; None: never on the timer (cron)
    next_due: float | None  # time.monotonic()
    fire_count: int = 0


class Scheduler:
    """Fires schedule rules on a timer thread and on request; thread-safe."""

    def __init__(self, time_scale: float = 1.0, logical_ids: LogicalIdResolver | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._logical_ids = logical_ids or (lambda _: [])
        self._tracked: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="schedules", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the timer must survive a bad rule
                logger.exception("schedule tick failed")
            self._stop.wait(self._tick_seconds())

    def _tick_seconds(self) -> float:
        with self._lock:
            periods = [t.period for t in self._tracked.values() if t.period]
        shortest = min(periods, default=MAX_TICK_SECONDS * 4) / 4
        return max(MIN_TICK_SECONDS, min(MAX_TICK_SECONDS, shortest))

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Fire every enabled rate rule that is due; return what fired."""
        now = time.monotonic() if now is None else now
        fired = []
        for rule in schedule_rules():
            with self._lock:
                tracked = self._track(rule, now)
                due = tracked.next_due is not None and now >= tracked.next_due
                if due and tracked.period is not None and tracked.next_due is not None:
                    tracked.next_due += tracked.period
                    if tracked.next_due <= now:  # missed periods are skipped, not caught up
                        tracked.next_due = now + tracked.period
            if due and rule.state != "DISABLED":
                fired.append(self._fire(rule))
        return fired

    def _track(self, rule: Rule, now: float) -> _Tracked:
        """The rule's schedule state; (re)started when the rule or its expression is new."""
        tracked = self._tracked.get(rule.arn)
        expression = str(rule.scheduled_expression)
        if tracked is None or tracked.expression != expression:
            seconds = rate_seconds(expression)
            period = seconds / self.time_scale if seconds is not None else None
            next_due = now + period if period is not None else None
            tracked = _Tracked(expression, period, next_due, tracked.fire_count if tracked else 0)
            self._tracked[rule.arn] = tracked
        return tracked

    def _fire(self, rule: Rule) -> dict[str, Any]:
        event = scheduled_event(rule)
        with self._lock:
            self._track(rule, time.monotonic()).fire_count += 1
        logger.info("schedule %s (%s) fired: event %s", rule.arn, rule.scheduled_expression,
                    event["id"])  # fmt: skip
        event_delivery.fire_rule(rule, event)
        return {"rule": rule.name, "arn": rule.arn, "event_id": event["id"]}

    def fire(self, reference: str | None = None) -> dict[str, Any]:
        """Fire now the schedule rules ``reference`` names (all when None); disabled ones are
        skipped. KeyError when ``reference`` names no schedule rule."""
        rules = [r for r in schedule_rules() if reference is None or self._names(r, reference)]
        if reference is not None and not rules:
            raise KeyError(reference)
        fired = [self._fire(r) for r in rules if r.state != "DISABLED"]
        skipped = [
            {"rule": r.name, "arn": r.arn, "reason": "DISABLED"}
            for r in rules
            if r.state == "DISABLED"
        ]
        return {"fired": fired, "skipped": skipped}

    def _names(self, rule: Rule, reference: str) -> bool:
        if reference in (rule.name, rule.arn):
            return True
        return (rule.account_id, rule.region_name, rule.name) in self._logical_ids(reference)

    def report(self) -> list[dict[str, Any]]:
        """Each schedule rule: name, ARN, account, region, expression, state, fire count."""
        now = time.monotonic()
        rows = []
        for rule in schedule_rules():
            with self._lock:
                tracked = self._track(rule, now)
                rows.append(
                    {
                        "rule": rule.name,
                        "arn": rule.arn,
                        "account": rule.account_id,
                        "region": rule.region_name,
                        "expression": tracked.expression,
                        "state": rule.state,
                        "fires_on_timer": tracked.period is not None,
                        "period_seconds": tracked.period,
                        "fire_count": tracked.fire_count,
                    }
                )
        return rows

    # ---------------------------------------------------------------------------- control
    def control_list(self, method: str, body: bytes) -> tuple[int, Any]:
        if method != "GET":
            return 405, {"error": f"{method} not allowed on schedules"}
        return 200, self.report()

    def control_fire(self, method: str, body: bytes) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": f"{method} not allowed on schedules/fire"}
        try:
            data = json.loads(body or b"{}")
            reference = data.get("rule") if isinstance(data, dict) else None
            return 200, self.fire(None if reference is None else str(reference))
        except ValueError as exc:
            return 400, {"error": f"bad request: {exc}"}
        except KeyError as exc:
            return 404, {"error": f"no schedule rule named {exc.args[0]!r}"}
