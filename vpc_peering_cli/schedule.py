"""When the next sweep runs, from the stack's ``ReconcileSchedule`` (an EventBridge schedule
expression): pure, so that ``status`` can say it without asking AWS, and tests need no clock.

``cron(...)`` is exact (EventBridge's six fields, in UTC: minutes, hours, day of month, month,
day of week 1-7 = SUN-SAT, year; ``*``, ``?``, lists, ranges, steps and names). ``L``, ``W`` and
``#`` are not worked out: the answer is then "cannot tell", never a wrong time. ``rate(...)``
is approximate: EventBridge starts a rate's periods when the rule is made and does not say when
that was, so the next sweep is counted in whole periods from the last sweep, or else from when
the stack was last deployed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
#: (low, high, names) of each cron field, in order.
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (1, 7, _DAYS),
    (1970, 2199, {}),
)
#: How far ahead a cron is searched (a year field can name a far year; beyond, "cannot tell").
_HORIZON_DAYS = 5 * 366


@dataclass(frozen=True)
class NextSweep:
    """When the next sweep runs: ``at`` (None: cannot tell), and whether that is exact."""

    at: datetime | None
    exact: bool
    note: str = ""


def rate_seconds(expression: str) -> int | None:
    """The period of ``rate(N unit)`` in seconds; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT[match.group(2).rstrip("s")]


def next_sweep(
    expression: str, now: datetime, last_sweep: datetime | None, deployed: datetime | None
) -> NextSweep:
    """The first run of ``expression`` after ``now`` (aware datetimes, any zone)."""
    period = rate_seconds(expression)
    if period is not None:
        anchor = last_sweep or deployed
        if anchor is None:
            return NextSweep(None, False, f"every {_span(period)}")
        periods = max(1, math.ceil((now - anchor).total_seconds() / period))
        return NextSweep(anchor + timedelta(seconds=periods * period), False)
    match = _CRON.match(expression.strip())
    if match is None:
        return NextSweep(None, False, "not a rate or cron expression")
    try:
        fields = _parse_cron(match.group(1))
    except ValueError as exc:
        return NextSweep(None, False, str(exc))
    found = _next_cron(fields, now.astimezone(UTC))
    if found is None:
        return NextSweep(None, False, f"no run in the next {_HORIZON_DAYS // 366} years")
    return NextSweep(found, True)


def _span(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def in_words(at: datetime, now: datetime) -> str:
    """``in 42 min``, ``in 3 h 5 min``, ``in 2 days``: how long until ``at``."""
    minutes = max(0, math.ceil((at - now).total_seconds() / 60))
    if minutes < 60:
        return f"in {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"
    return f"in {round(hours / 24)} days"


def _parse_cron(body: str) -> list[set[int] | None]:
    """Each field's allowed values (None: any, ``*`` or ``?``)."""
    parts = body.split()
    if len(parts) != 6:
        raise ValueError(
            "cron needs six fields (minutes hours day-of-month month day-of-week year)"
        )
    fields: list[set[int] | None] = []
    for text, (low, high, names) in zip(parts, _FIELDS, strict=True):
        # L, W and # left once month and day names (JUL, WED) are taken out.
        unnamed = re.sub(
            r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT",
            "",
            text.upper(),
        )
        if re.search(r"[LW#]", unnamed):
            raise ValueError(f"cannot tell ({text!r}: L, W and # are not worked out here)")
        fields.append(None if text in ("*", "?") else _values(text.upper(), low, high, names))
    return fields


def _values(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"cron: bad step in {item!r}")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(span, names)
            end = high if step_text else start
        if not low <= start <= high or not low <= end <= high:
            raise ValueError(f"cron: {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _number(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"cron: {text!r} is not a number")
    return int(text)


def _next_cron(fields: list[set[int] | None], now: datetime) -> datetime | None:
    minutes, hours, days, months, weekdays, years = fields
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for offset in range(_HORIZON_DAYS):
        day: date = start.date() + timedelta(days=offset)
        weekday = day.isoweekday() % 7 + 1  # EventBridge: 1 = SUN ... 7 = SAT
        if not (
            _allows(years, day.year)
            and _allows(months, day.month)
            and _allows(days, day.day)
            and _allows(weekdays, weekday)
        ):
            continue
        for hour in sorted(hours) if hours is not None else range(24):
            for minute in sorted(minutes) if minutes is not None else range(60):
                moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                if moment >= start:
                    return moment
    return None


def _allows(values: set[int] | None, value: int) -> bool:
    return values is None or value in values
