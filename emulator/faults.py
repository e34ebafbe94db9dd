"""Fault injection: make the Nth call of a named AWS operation fail with a chosen AWS error.

A rule matches calls by service and operation (and optionally account and region); matching
calls are counted, and calls number ``nth`` .. ``nth + times - 1`` are answered with the error
instead of reaching moto. A rule with ``delay_seconds`` and no error code holds those calls for
that long, then lets them through: a window in which a test changes what the call will find
(the race between a plan and the step that acts on it), without timing luck. The error is
shaped for the call's protocol (EC2 XML, query XML, JSON, REST-JSON) so botocore parses it as
it would AWS's, retries included.

Rules are set per test over HTTP (``POST /_emulator/faults``), or at start-up for command-line
use (``python -m emulator --fault ec2:CreateRoute:UnauthorizedOperation:2``).

:class:`PeeringStatusForcer` covers what an error response cannot: VPC peering states moto never
produces (``provisioning``, ``failed``, ``expired``, ``deleting``; ``rejected`` by EC2 rather than
by a ``RejectVpcPeeringConnection`` call). Over HTTP (``/_emulator/peering-status``) it sets one
peering's status now, or the status the next peerings get right after they are created or
accepted, optionally flipping to another status after a delay (``provisioning`` for 2 s, then
``pending-acceptance``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
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
    delay_seconds: float = 0.0
    #: EventBridge ``PutEvents`` only: answer 200 with the entry failed (``FailedEntryCount``
    #: 1, the entry's ``ErrorCode`` = ``error_code``), as EventBridge reports a refused entry.
    failed_entry: bool = False
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
        delay = 0.0
        with self._lock:
            for rule in self.rules:
                if not rule.matches(call):
                    continue
                rule.seen += 1
                last = rule.nth + rule.times - 1 if rule.times else None
                if rule.seen >= rule.nth and (last is None or rule.seen <= last):
                    rule.fired += 1
                    if rule.failed_entry:
                        return failed_entry_response(rule.error_code, rule.message)
                    if rule.error_code:
                        return error_response(call, rule.error_code, rule.message)
                    delay = max(delay, rule.delay_seconds)
        if delay:
            time.sleep(delay)  # outside the lock: other calls go on meanwhile
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
                    delay_seconds=float(data.get("delay_seconds", 0.0)),
                    failed_entry=bool(data.get("failed_entry", False)),
                )
                if rule.failed_entry and (rule.service, rule.operation) != ("events", "PutEvents"):
                    raise ValueError("failed_entry applies to events:PutEvents only")
                if rule.failed_entry and not rule.error_code:
                    raise ValueError("a failed_entry rule needs the entry's error_code")
                if not rule.error_code and not 0 < rule.delay_seconds <= 60:
                    raise ValueError("a rule without error_code needs 0 < delay_seconds <= 60")
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


def failed_entry_response(code: str, message: str) -> HookResponse:
    """A PutEvents answer whose (single) entry EventBridge refused: HTTP 200, FailedEntryCount
    1. Our tasks put one entry per call; a call of several gets one failed entry too."""
    payload = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": message}]}
    return HookResponse(200, json.dumps(payload).encode(), "application/x-amz-json-1.1")


# ----------------------------------------------------------------------- peering statuses
#: Every ``Status.Code`` EC2 documents for a VPC peering connection.
PEERING_STATUSES = frozenset(
    {
        "initiating-request",
        "pending-acceptance",
        "provisioning",
        "active",
        "deleting",
        "deleted",
        "rejected",
        "failed",
        "expired",
    }
)
#: A ``Status.Message`` in the style of EC2's, for when a rule gives none.
DEFAULT_STATUS_MESSAGES = {
    "initiating-request": "Initiating Request",
    "pending-acceptance": "Pending Acceptance",
    "provisioning": "Provisioning",
    "active": "Active",
    "deleting": "Deleting",
    "deleted": "Deleted",
    "rejected": "Rejected",
    "failed": "Failed due to incorrect VPC-ID, Account ID, or overlapping CIDR range",
    "expired": "Expired",
}
STATUS_EVENTS = ("create", "accept")


@dataclass
class StatusRule:
    """Give the next ``times`` peerings ``status`` right after ``on`` (create or accept); with
    ``then``, switch them to that status ``after_seconds`` later (if still ``status``)."""

    status: str
    on: str = "create"
    times: int = 1
    message: str | None = None
    then: str | None = None
    then_message: str | None = None
    after_seconds: float = 0.0
    applied: list[str] = field(default_factory=list)  # peering ids, in order


@dataclass
class PeeringStatusForcer:
    """Force VPC peering statuses in moto's EC2 backend (the ``peering-status`` control route).

    moto keeps one ``VPCPeeringConnection`` object per peering (shared by the requester's and
    the accepter's backends), with its status in ``_status.code``/``_status.message``; this sets
    those fields. ``install`` wraps moto's create and accept so that pending rules apply right
    after them: the create response still says ``initiating-request`` (moto's response
    transformer, as AWS does), every later read says the forced status; the accept response
    already carries it.
    """

    rules: list[StatusRule] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    _timers: list[threading.Timer] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def install(self) -> None:
        """Route moto's create and accept through this forcer (the last one installed wins)."""
        global _active_forcer
        _active_forcer = self
        _patch_moto()

    # --------------------------------------------------------------------------- actions
    def add_rule(self, rule: StatusRule) -> None:
        _check_status(rule.status)
        if rule.then is not None:
            _check_status(rule.then)
        if rule.on not in STATUS_EVENTS:
            raise ValueError(f"on must be one of {', '.join(STATUS_EVENTS)}, not {rule.on!r}")
        if rule.times < 1 or rule.after_seconds < 0:
            raise ValueError("times must be >= 1 and after_seconds >= 0")
        with self._lock:
            self.rules.append(rule)

    def set_status(
        self,
        peering_id: str,
        status: str,
        message: str | None = None,
        then: str | None = None,
        then_message: str | None = None,
        after_seconds: float = 0.0,
    ) -> dict[str, str]:
        """Set a peering's status now (and schedule ``then``); KeyError if moto has no such id."""
        _check_status(status)
        if then is not None:
            _check_status(then)
        pcx = _find_peering(peering_id)
        if pcx is None:
            raise KeyError(peering_id)
        self._apply(pcx, status, message, "set")
        if then is not None:
            self._schedule(pcx, status, then, then_message, after_seconds)
        return dict(pcx.status)

    def forget(self, peering_id: str) -> None:
        """Make a deleted (or failed, rejected, expired) peering disappear from Describe, as AWS
        does some time after it ended; moto keeps it for ever. Routes to it stay, as in AWS.
        KeyError if moto has no such id; ValueError if it has not ended."""
        from moto.ec2.models import EC2Backend

        pcx = _find_peering(peering_id)
        if pcx is None:
            raise KeyError(peering_id)
        if pcx._status.code not in ("deleted", "failed", "rejected", "expired"):
            raise ValueError(f"{peering_id} is {pcx._status.code}; only an ended peering goes")
        backends: Any = EC2Backend.get_vpc_pcx_refs()
        with self._lock:
            for backend in backends:
                backend.vpc_pcxs.pop(peering_id, None)
            self.history.append({"id": peering_id, "status": "forgotten", "why": "forget"})

    def clear(self) -> dict[str, Any]:
        """Drop pending rules and cancel scheduled switches; return what there was."""
        with self._lock:
            report = self.report()
            self.rules.clear()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self.history.clear()
        return report

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"rules": [asdict(r) for r in self.rules], "history": list(self.history)}

    # ------------------------------------------------------------------- moto callbacks
    def after(self, event: str, pcx: Any) -> None:
        """Called by the patched moto right after a peering was created or accepted."""
        with self._lock:
            rule = next((r for r in self.rules if r.on == event and len(r.applied) < r.times), None)
            if rule is None:
                return
            rule.applied.append(pcx.id)
            self._apply(pcx, rule.status, rule.message, f"on {event}")
            if rule.then is not None:
                self._schedule(pcx, rule.status, rule.then, rule.then_message, rule.after_seconds)

    def _apply(self, pcx: Any, status: str, message: str | None, why: str) -> None:
        with self._lock:
            pcx._status.code = status
            pcx._status.message = message or DEFAULT_STATUS_MESSAGES[status]
            self.history.append(
                {"id": pcx.id, "status": status, "why": why, "at": round(time.time(), 3)}
            )

    def _schedule(
        self, pcx: Any, expected: str, then: str, message: str | None, after_seconds: float
    ) -> None:
        def switch() -> None:
            with self._lock:
                # Only if nobody moved it meanwhile (deleted by a compensation, accepted, ...).
                if pcx._status.code == expected:
                    self._apply(pcx, then, message, f"after {after_seconds:g} s")

        timer = threading.Timer(after_seconds, switch)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    # --------------------------------------------------------------------------- control
    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        """``GET`` rules and history; ``DELETE`` clears; ``POST`` one of:

        * ``{"id": "pcx-...", "status": "failed", "message": "..."}``: set it now;
        * ``{"on_create": true, "status": "provisioning", "times": 1}`` (or ``on_accept``): the
          next ``times`` peerings created (accepted) get that status right after;
        * either with ``"then": "pending-acceptance", "after_seconds": 2``: switch later;
        * ``{"id": "pcx-...", "forget": true}``: an ended peering disappears from Describe.
        """
        if method == "GET":
            return 200, self.report()
        if method == "DELETE":
            return 200, self.clear()
        if method != "POST":
            return 405, {"error": f"{method} not allowed on peering-status"}
        try:
            data = json.loads(body or b"{}")
            if isinstance(data, dict) and data.get("forget") and data.get("id"):
                try:
                    self.forget(str(data["id"]))
                except KeyError:
                    return 404, {"error": f"no VPC peering connection {data['id']}"}
                return 200, {"id": data["id"], "forgotten": True}
            if not isinstance(data, dict) or "status" not in data:
                raise ValueError("a JSON object with a status is required")
            common: dict[str, Any] = {
                "message": data.get("message"),
                "then": data.get("then"),
                "then_message": data.get("then_message"),
                "after_seconds": float(data.get("after_seconds", 0.0)),
            }
            events = [e for e in STATUS_EVENTS if data.get(f"on_{e}")]
            if data.get("id"):
                if events:
                    raise ValueError("give an id or on_create / on_accept, not both")
                try:
                    status = self.set_status(str(data["id"]), str(data["status"]), **common)
                except KeyError:
                    return 404, {"error": f"no VPC peering connection {data['id']}"}
                return 200, {"id": data["id"], "Status": status}
            if len(events) != 1:
                raise ValueError("give an id, or exactly one of on_create / on_accept")
            rule = StatusRule(
                status=str(data["status"]), on=events[0], times=int(data.get("times", 1)), **common
            )
            self.add_rule(rule)
        except (ValueError, TypeError) as exc:
            return 400, {"error": f"bad peering-status request: {exc}"}
        return 201, asdict(rule)


_active_forcer: PeeringStatusForcer | None = None
_patched = False


def _check_status(status: str) -> None:
    if status not in PEERING_STATUSES:
        raise ValueError(f"unknown peering status {status!r}")


def _find_peering(peering_id: str) -> Any:
    from moto.ec2.models import EC2Backend

    backends: Any = EC2Backend.get_vpc_pcx_refs()  # moto annotates these as peerings
    for backend in backends:
        pcx = backend.vpc_pcxs.get(peering_id)
        if pcx is not None:
            return pcx
    return None


def _patch_moto() -> None:
    """Wrap moto's create and accept once; they call the active forcer after moto's own work."""
    global _patched
    if _patched:
        return
    _patched = True
    from moto.ec2.models.vpc_peering_connections import VPCPeeringConnectionBackend as Backend

    def wrap(event: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            pcx = original(self, *args, **kwargs)
            if _active_forcer is not None:
                _active_forcer.after(event, pcx)
            return pcx

        wrapper.__name__ = original.__name__
        return wrapper

    Backend.create_vpc_peering_connection = wrap(  # type: ignore[method-assign]
        "create", Backend.create_vpc_peering_connection
    )
    Backend.accept_vpc_peering_connection = wrap(  # type: ignore[method-assign]
        "accept", Backend.accept_vpc_peering_connection
    )
