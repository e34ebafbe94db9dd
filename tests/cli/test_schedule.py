"""When the next sweep runs (``vpc_peering_cli/schedule.py``): pure, no clock, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vpc_peering_cli.schedule import in_words, next_sweep, rate_seconds

NOW = datetime(2026, 12, 7, 10, 17, 30, tzinfo=UTC)  # a Monday


def test_a_rate_counts_whole_periods_from_the_last_sweep_else_from_the_deployment() -> None:
    # Given rate(1 hour), a sweep at 09:40, a deployment at 08:05
    last, deployed = NOW.replace(hour=9, minute=40), NOW.replace(hour=8, minute=5)

    # Then the next is one period after the last sweep; without one, whole periods after the
    # deployment; neither is exact (EventBridge does not say when a rate's periods begin)
    after_sweep = next_sweep("rate(1 hour)", NOW, last, deployed)
    assert (after_sweep.at, after_sweep.exact) == (NOW.replace(hour=10, minute=40), False)
    assert next_sweep("rate(1 hour)", NOW, None, deployed).at == NOW.replace(hour=11, minute=5)
    # a sweep missed (the stack was busy, or deleted for a while): the next period still counts
    assert next_sweep("rate(30 minutes)", NOW, last - timedelta(hours=5), None).at == (
        NOW.replace(hour=10, minute=40)
    )
    assert next_sweep("rate(1 day)", NOW, None, None).at is None
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds("cron(0 * * * ? *)") is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 * * * ? *)", datetime(2026, 12, 7, 11, 0, tzinfo=UTC)),
        ("cron(15 10 * * ? *)", datetime(2026, 12, 8, 10, 15, tzinfo=UTC)),
        ("cron(0/20 * * * ? *)", datetime(2026, 12, 7, 10, 20, tzinfo=UTC)),
        ("cron(0 2 ? * SUN *)", datetime(2026, 12, 13, 2, 0, tzinfo=UTC)),
        ("cron(0 2 ? * 1 *)", datetime(2026, 12, 13, 2, 0, tzinfo=UTC)),  # 1 = SUN
        ("cron(0 18 ? * MON-FRI *)", datetime(2026, 12, 7, 18, 0, tzinfo=UTC)),
        ("cron(30 6 1 JUL,JAN ? *)", datetime(2027, 1, 1, 6, 30, tzinfo=UTC)),
        ("cron(0 0 29 FEB ? 2028)", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_cron_is_exact_in_utc(expression: str, expected: datetime) -> None:
    upcoming = next_sweep(expression, NOW, None, None)
    assert (upcoming.at, upcoming.exact) == (expected, True)


@pytest.mark.parametrize(
    "expression",
    ["cron(0 0 L * ? *)", "cron(0 0 ? * 6#3 *)", "cron(0 0 15W * ? *)", "cron(0 0 * *)",
     "cron(0 25 * * ? *)", "cron(0 0 1 1 ? 2020)", "every hour"],
)  # fmt: skip
def test_what_cannot_be_told_is_said_never_guessed(expression: str) -> None:
    upcoming = next_sweep(expression, NOW, None, None)
    assert upcoming.at is None
    assert upcoming.note


def test_in_words() -> None:
    assert in_words(NOW + timedelta(minutes=42, seconds=1), NOW) == "in 43 min"
    assert in_words(NOW + timedelta(hours=3), NOW) == "in 3 h"
    assert in_words(NOW + timedelta(hours=3, minutes=5), NOW) == "in 3 h 5 min"
    assert in_words(NOW + timedelta(days=6), NOW) == "in 6 days"
