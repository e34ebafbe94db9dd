"""Schedules: EventBridge schedule rules and EventBridge Scheduler schedules fire, as AWS's do.

Why: moto stores a rule's ``ScheduleExpression`` and a Scheduler schedule, and never acts on
either, so a stack started by a schedule (a nightly sweep) would deploy and silently never run.

What: a timer thread fires every enabled ``rate(N minute|minutes|hour|hours|day|days)``
schedule of every account and region once per period, the first time one period after it first
sees the schedule. A rule's firing hands its targets a "Scheduled Event" (source
``aws.events``, detail ``{}``, ``resources`` = [rule ARN], the rule's account and region, the
firing time), through the same delivery as any event (each target's
``Input``/``InputPath``/``InputTransformer`` applies). A Scheduler schedule's firing hands its
one target (a Lambda function or a state machine: Scheduler's templated targets) the target's
``Input`` as it is, no event around it ("EventBridge Scheduler: templated targets"; no ``Input``:
``{}``, unverified). ``time_scale`` divides every period (3600: ``rate(1 hour)`` fires every
second) so that tests need not wait. A disabled schedule never fires. A period the timer missed
(the process was busy) is skipped, never caught up in a burst.

Gaps (emulator/README.md): ``cron(...)`` (and Scheduler's ``at(...)``) deploy and can be fired on
request, but never on the timer; the first firing is one period after the schedule is first
seen, where AWS picks its own moment within the period; Scheduler's flexible time windows,
retries, dead-letter queues, start and end dates are not applied.

Control (``/_emulator/schedules``): ``GET`` lists the schedules with expression, state and
fire counts; ``POST /_emulator/schedules/fire`` with optional ``{"rule": "<name, ARN or
logical id>"}`` fires now (every schedule when none is named) and says what it fired.
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
from moto.scheduler.models import Schedule, scheduler_backends

from emulator import event_delivery

logger = logging.getLogger("emulator.schedules")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_TICK_SECONDS = 0.25
MIN_TICK_SECONDS = 0.01

#: (reference) -> the (account, region, name) it names besides names and ARNs: the logical ids
#: of the deployed stacks' rules and schedules (``stacks.rule_locations``).
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


@dataclass(frozen=True)
class Timed:
    """One schedule of either kind: an EventBridge schedule rule or a Scheduler schedule."""

    name: str
    arn: str
    account: str
    region: str
    expression: str
    state: str
    rule: Rule | None = None
    schedule: Schedule | None = None

    def fire(self) -> str | None:
        """Deliver now; the event's id (a Scheduler schedule sends no event: None)."""
        if self.rule is not None:
            event = scheduled_event(self.rule)
            event_delivery.fire_rule(self.rule, event)
            return str(event["id"])
        assert self.schedule is not None
        event_delivery.deliver_scheduled_input(
            self.name, self.account, self.region, self.schedule.target
        )
        return None


def schedules() -> Iterator[Timed]:
    """Every schedule rule and every Scheduler schedule, in every account and region."""
    for rule in schedule_rules():
        yield Timed(
            rule.name, rule.arn, rule.account_id, rule.region_name,
            str(rule.scheduled_expression), str(rule.state or "ENABLED"), rule=rule,
        )  # fmt: skip
    for _, by_region in list(scheduler_backends.items()):
        for _, backend in list(by_region.items()):
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    _, _, _, region, account, _ = schedule.arn.split(":", 5)
                    yield Timed(
                        schedule.name, schedule.arn, account, region,
                        schedule.schedule_expression, schedule.state, schedule=schedule,
                    )  # fmt: skip


@dataclass
class _Tracked:
    expression: str
    period: float | None  # scaled seconds; None: never on the timer (cron)
    next_due: float | None  # time.monotonic()
    fire_count: int = 0


class Scheduler:
    """Fires schedules on a timer thread and on request; thread-safe."""

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
        """Fire every enabled rate schedule that is due; return what fired."""
        now = time.monotonic() if now is None else now
        fired = []
        for timed in schedules():
            with self._lock:
                tracked = self._track(timed, now)
                due = tracked.next_due is not None and now >= tracked.next_due
                if due and tracked.period is not None and tracked.next_due is not None:
                    tracked.next_due += tracked.period
                    if tracked.next_due <= now:  # missed periods are skipped, not caught up
                        tracked.next_due = now + tracked.period
            if due and timed.state != "DISABLED":
                fired.append(self._fire(timed))
        return fired

    def _track(self, timed: Timed, now: float) -> _Tracked:
        """The schedule's state; (re)started when the schedule or its expression is new."""
        tracked = self._tracked.get(timed.arn)
        if tracked is None or tracked.expression != timed.expression:
            seconds = rate_seconds(timed.expression)
            period = seconds / self.time_scale if seconds is not None else None
            next_due = now + period if period is not None else None
            count = tracked.fire_count if tracked else 0
            tracked = _Tracked(timed.expression, period, next_due, count)
            self._tracked[timed.arn] = tracked
        return tracked

    def _fire(self, timed: Timed) -> dict[str, Any]:
        with self._lock:
            self._track(timed, time.monotonic()).fire_count += 1
        event_id = timed.fire()
        logger.info("schedule %s (%s) fired: event %s", timed.arn, timed.expression, event_id)
        return {"rule": timed.name, "arn": timed.arn, "event_id": event_id}

    def fire(self, reference: str | None = None) -> dict[str, Any]:
        """Fire now the schedules ``reference`` names (all when None); disabled ones are
        skipped. KeyError when ``reference`` names no schedule."""
        chosen = [t for t in schedules() if reference is None or self._names(t, reference)]
        if reference is not None and not chosen:
            raise KeyError(reference)
        fired = [self._fire(t) for t in chosen if t.state != "DISABLED"]
        skipped = [
            {"rule": t.name, "arn": t.arn, "reason": "DISABLED"}
            for t in chosen
            if t.state == "DISABLED"
        ]
        return {"fired": fired, "skipped": skipped}

    def _names(self, timed: Timed, reference: str) -> bool:
        if reference in (timed.name, timed.arn):
            return True
        return (timed.account, timed.region, timed.name) in self._logical_ids(reference)

    def report(self) -> list[dict[str, Any]]:
        """Each schedule: name, ARN, account, region, expression, state, fire count."""
        now = time.monotonic()
        rows = []
        for timed in schedules():
            with self._lock:
                tracked = self._track(timed, now)
                rows.append(
                    {
                        "rule": timed.name,
                        "arn": timed.arn,
                        "account": timed.account,
                        "region": timed.region,
                        "expression": tracked.expression,
                        "state": timed.state,
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
            return 404, {"error": f"no schedule named {exc.args[0]!r}"}
