"""Event bus resource policies (bus_policy.py): which cross-account events a bus admits."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.bus_policy import PutRequest, evaluate

BUS = "arn:aws:events:us-east-1:123456789012:event-bus/hub"
SENDER = "111111111111"


def request(source: str = "member.tags", sender: str = SENDER) -> PutRequest:
    return PutRequest(sender_account=sender, bus_arn=BUS, source=source, detail_type="Tag Change")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**fields: Any) -> dict[str, Any]:
    return {"Sid": "S", "Effect": "Allow", "Action": "events:PutEvents", "Resource": BUS, **fields}


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": SENDER},
        {"AWS": f"arn:aws:iam::{SENDER}:root"},
        {"AWS": ["222222222222", f"arn:aws:iam::{SENDER}:root"]},
    ],
)
def test_principals_that_cover_the_sender_account(principal: Any) -> None:
    # Given an Allow for that principal / When the sender puts an event / Then it is admitted
    assert evaluate(policy(allow(Principal=principal)), request()).allowed


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "222222222222"},
        {"AWS": f"arn:aws:iam::{SENDER}:role/forwarder"},  # not evaluated: never applies
        {"Service": "events.amazonaws.com"},
    ],
)
def test_principals_that_do_not(principal: Any) -> None:
    assert not evaluate(policy(allow(Principal=principal)), request()).allowed


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("Action", "events:*", True),
        ("Action", ["events:PutRule", "events:PutEvents"], True),
        ("Action", "events:PutRule", False),
        ("Resource", "arn:aws:events:us-east-1:123456789012:event-bus/*", True),
        ("Resource", "arn:aws:events:us-east-1:123456789012:event-bus/other", False),
    ],
)
def test_action_and_resource(field: str, value: Any, allowed: bool) -> None:
    statement = allow(Principal={"AWS": SENDER}, **{field: value})
    assert evaluate(policy(statement), request()).allowed is allowed


def test_a_statement_without_resource_is_about_its_bus() -> None:
    statement = {"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents"}
    assert evaluate(policy(statement), request()).allowed


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({"StringEquals": {"events:source": "member.tags"}}, True),
        ({"StringEquals": {"events:source": ["other", "member.tags"]}}, True),
        ({"StringEquals": {"events:source": "other"}}, False),
        ({"StringLike": {"events:detail-type": "Tag *"}}, True),
        ({"StringNotEquals": {"events:source": "member.tags"}}, False),
        ({"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [SENDER]}}, True),
        ({"StringEquals": {"aws:PrincipalAccount": "222222222222"}}, False),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}, False),  # cannot be known here
        ({"ArnLike": {"aws:SourceArn": "*"}}, False),  # operator not evaluated
        (
            {
                "StringEquals": {"events:source": "member.tags"},
                "StringLike": {"events:detail-type": "Other*"},
            },
            False,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], allowed: bool) -> None:
    statement = allow(Principal="*", Condition=condition)
    assert evaluate(policy(statement), request()).allowed is allowed


def test_an_explicit_deny_wins_and_no_policy_refuses() -> None:
    deny = {**allow(Principal={"AWS": SENDER}), "Sid": "D", "Effect": "Deny"}
    decision = evaluate(policy(allow(Principal="*"), deny), request())
    assert (decision.allowed, decision.reason) == (False, "denied by statement D")
    assert not evaluate(None, request()).allowed
    assert "no resource policy" in evaluate(None, request()).reason
