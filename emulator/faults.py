"""Fault injection: make the Nth call of a named AWS operation fail with a chosen AWS error.

A rule matches calls by service and operation (and optionally account and region); matching
calls are counted, and calls number ``nth`` .. ``nth + times - 1`` are answered with the error
instead of reaching moto. The error is shaped for the call's protocol (EC2 XML, query XML,
JSON, REST-JSON) so botocore parses it as it would AWS's, retries included.

Rules are set per test over HTTP (``POST /_emulator/faults``), or at start-up for command-line
use (``python -m emulator --fault ec2:CreateRoute:UnauthorizedOperation:2``).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from .server import ApiCall, HookResponse

#: Error codes AWS sends with a 5xx status (botocore treats these as retryable by status too).
SERVER_ERRORS = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServiceException"}
)
THROTTLES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})


@dataclass
class FaultRule:
    service: str
    operation: str
    error_code: str
    nth: int = 1
    times: int = 1
    message: str = "injected by the emulator"
    account: str | None = None
    region: str | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, call: ApiCall) -> bool:
        return (
            call.service == self.service
            and call.operation == self.operation
            and self.account in (None, call.account)
            and self.region in (None, call.region)
        )

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """``SERVICE:OPERATION:ERROR_CODE[:NTH[:TIMES]]``; TIMES 0 means every call from NTH."""
        parts = spec.split(":")
        if len(parts) < 3 or len(parts) > 5:
            raise ValueError(f"fault {spec!r}: expected SERVICE:OPERATION:ERROR_CODE[:NTH[:TIMES]]")
        nth = int(parts[3]) if len(parts) > 3 else 1
        times = int(parts[4]) if len(parts) > 4 else 1
        return cls(parts[0], parts[1], parts[2], nth=nth, times=times)


@dataclass
class FaultInjector:
    """The before-request hook holding the rules; thread-safe (the server is threaded)."""

    rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> None:
        if rule.nth < 1 or rule.times < 0:
            raise ValueError("nth must be >= 1 and times >= 0")
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> list[dict[str, Any]]:
        with self._lock:
            report = [asdict(r) for r in self.rules]
            self.rules.clear()
        return report

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.rules]

    def __call__(self, call: ApiCall) -> HookResponse | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(call):
                    continue
                rule.seen += 1
                last = rule.nth + rule.times - 1 if rule.times else None
                if rule.seen >= rule.nth and (last is None or rule.seen <= last):
                    rule.fired += 1
                    return error_response(call, rule.error_code, rule.message)
        return None

    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        """``GET`` lists rules with counts, ``POST`` adds one (JSON), ``DELETE`` clears."""
        if method == "GET":
            return 200, self.report()
        if method == "DELETE":
            return 200, self.clear()
        if method == "POST":
            try:
                data = json.loads(body or b"{}")
                rule = FaultRule(
                    service=data["service"],
                    operation=data["operation"],
                    error_code=data["error_code"],
                    nth=int(data.get("nth", 1)),
                    times=int(data.get("times", 1)),
                    message=str(data.get("message", "injected by the emulator")),
                    account=data.get("account"),
                    region=data.get("region"),
                )
                self.add(rule)
            except (KeyError, ValueError, TypeError) as exc:
                return 400, {"error": f"bad fault rule: {exc}"}
            return 201, asdict(rule)
        return 405, {"error": f"{method} not allowed on faults"}


def _status(code: str) -> int:
    if code in SERVER_ERRORS:
        return 500
    if code in THROTTLES and code != "RequestLimitExceeded":
        return 400
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
        return 403
    if code in ("ResourceNotFoundException",):
        return 404
    return 400 if code != "RequestLimitExceeded" else 503


def error_response(call: ApiCall, code: str, message: str) -> HookResponse:
    """An AWS error in the wire format of the call's protocol."""
    request_id = str(uuid.uuid4())
    status = _status(code)
    if call.protocol == "ec2":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            "</Response>"
        )
        return HookResponse(status, body.encode(), "text/xml")
    if call.protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return HookResponse(status, body.encode(), "text/xml")
    payload = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    if call.protocol == "json":
        return HookResponse(status, payload, "application/x-amz-json-1.0")
    return HookResponse(
        status,
        payload,
        "application/json",
        headers=(("x-amzn-ErrorType", code), ("x-amzn-RequestId", request_id)),
    )
