"""Event bus resource policies: may this account put this event on this bus?

Why: in AWS a bus receives events from another account (a rule's bus target, or ``PutEvents``
naming the bus by ARN) only when its resource policy allows the sender; moto stores bus
policies but never reads them. Same-account deliveries need no policy, so callers ask only
for cross-account ones.

What is evaluated, as IAM does for a resource policy on its own (no identity policies, no
SCPs): an explicit ``Deny`` that applies wins; else an ``Allow`` that applies allows; else the
request is refused. A statement applies when its ``Action`` covers ``events:PutEvents``
(wildcards allowed), its ``Resource`` (if any) covers the bus ARN, its ``Principal`` covers the
sender account (``"*"``, ``{"AWS": "*"}``, the account id or ``arn:aws:iam::<id>:root``, alone or
in a list) and every ``Condition`` holds. Conditions know the keys ``events:source``,
``events:detail-type`` and ``aws:PrincipalAccount`` with the operators ``StringEquals``,
``StringNotEquals``, ``StringEqualsIgnoreCase``, ``StringLike``, ``StringNotLike`` (optionally
``ForAnyValue:``/``ForAllValues:``, which for these single-valued keys mean the same). Any
other key or operator (``aws:PrincipalOrgID``, ``ArnLike``, ...) counts as not holding: the
emulator cannot know an organization, and a statement it cannot evaluate must not let an event
through. Principals naming a role or user (``arn:aws:iam::<id>:role/x``), ``NotPrincipal``,
``NotAction`` and ``NotResource`` never apply, for the same reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ACTION = "events:PutEvents"
_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")
_KNOWN_OPERATORS = frozenset(
    {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike", "StringNotLike"}
)


@dataclass(frozen=True)
class PutRequest:
    """One event offered to a bus by an account (the rule's account, or PutEvents' caller)."""

    sender_account: str
    bus_arn: str
    source: str
    detail_type: str

    def context(self) -> dict[str, str]:
        """The condition keys this request carries (lower case: IAM keys ignore case)."""
        return {
            "events:source": self.source,
            "events:detail-type": self.detail_type,
            "aws:principalaccount": self.sender_account,
        }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(policy: str | dict[str, Any] | None, request: PutRequest) -> Decision:
    """Whether the bus policy lets ``request`` in, and why (a statement id or the refusal)."""
    statements = _statements(policy)
    if not statements:
        return Decision(False, f"the bus {request.bus_arn} has no resource policy")
    applying = [s for s in statements if _applies(s, request)]
    for statement in applying:
        if statement.get("Effect") == "Deny":
            return Decision(False, f"denied by statement {statement.get('Sid', '?')}")
    for statement in applying:
        if statement.get("Effect") == "Allow":
            return Decision(True, f"allowed by statement {statement.get('Sid', '?')}")
    return Decision(
        False,
        f"no statement of the policy of {request.bus_arn} allows {ACTION} from account "
        f"{request.sender_account} for this event",
    )


def _statements(policy: str | dict[str, Any] | None) -> list[dict[str, Any]]:
    if not policy:
        return []
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    return [s for s in _as_list(statements) if isinstance(s, dict)]


def _applies(statement: dict[str, Any], request: PutRequest) -> bool:
    if {"NotPrincipal", "NotAction", "NotResource"} & set(statement):
        return False
    return (
        _action_matches(statement.get("Action"))
        and _resource_matches(statement.get("Resource"), request.bus_arn)
        and _principal_matches(statement.get("Principal"), request.sender_account)
        and _conditions_hold(statement.get("Condition") or {}, request.context())
    )


def _action_matches(actions: Any) -> bool:
    return any(_like(ACTION.lower(), str(a).lower()) for a in _as_list(actions))


def _resource_matches(resources: Any, bus_arn: str) -> bool:
    if resources is None:  # a statement without Resource is about the bus it is attached to
        return True
    return any(_like(bus_arn, str(r)) for r in _as_list(resources))


def _principal_matches(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _as_list(principal.get("AWS")):
        text = str(value)
        root = _ROOT.match(text)
        if text in ("*", account) or (root is not None and root.group(1) == account):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, pairs in conditions.items()
        for key, expected in (pairs.items() if isinstance(pairs, dict) else [("", None)])
    )


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    base = operator.split(":", 1)[1] if ":" in operator else operator
    qualifier = operator.split(":", 1)[0] if ":" in operator else ""
    if base not in _KNOWN_OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return False
    actual = context.get(key.lower())
    if actual is None:
        return False
    values = [str(v) for v in _as_list(expected)]
    match base:
        case "StringEquals":
            return actual in values
        case "StringNotEquals":
            return actual not in values
        case "StringEqualsIgnoreCase":
            return actual.lower() in (v.lower() for v in values)
        case "StringLike":
            return any(_like(actual, v) for v in values)
        case _:  # StringNotLike
            return not any(_like(actual, v) for v in values)


def _like(text: str, pattern: str) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (str, dict)):
        return list(value)
    return [value]
