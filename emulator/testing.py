"""Run the emulator from tests: a subprocess, a handle with its endpoint, ARNs and call log.

Why a subprocess: the in-process Lambda runtime sets ``os.environ`` and ``sys.path`` and imports
the handlers; keeping that out of the test process keeps tests honest (they talk to the
emulator only through AWS APIs) and lets several emulators (e.g. different parameter overrides)
run side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60.0
#: How EC2 names the operations that change something (CreateRoute, AcceptVpcPeering...,
#: DisassociateRouteTable, ...); the others read (Describe*, Get*).
MUTATING_PREFIXES = (
    "Create",
    "Accept",
    "Associate",
    "Disassociate",
    "Delete",
    "Modify",
    "Replace",
    "Reject",
    "Authorize",  # AuthorizeSecurityGroupIngress
    "Revoke",  # RevokeSecurityGroupIngress
)


def is_mutating(operation: str) -> bool:
    """Whether an EC2 operation (by its API name) changes something."""
    return operation.startswith(MUTATING_PREFIXES)


def mutating(calls: list[dict[str, str]]) -> list[str]:
    """The EC2 operations in a call log (:meth:`EmulatorHandle.calls`) that change something."""
    return [c["operation"] for c in calls if c["service"] == "ec2" and is_mutating(c["operation"])]


@dataclass(frozen=True)
class EmulatorHandle:
    """A running emulator, as described by its ready file."""

    endpoint: str
    region: str
    account_id: str
    stack_name: str
    event_bus_name: str | None
    functions: dict[str, str]  # logical id -> function name
    state_machines: dict[str, str]  # logical id -> ARN
    log_path: Path | None  # None when attached to an emulator started elsewhere
    pid: int
    outputs: dict[str, Any] = field(default_factory=dict)

    def state_machine_arn(self, logical_id: str) -> str:
        """The ARN of the template's state machine ``logical_id``."""
        try:
            return self.state_machines[logical_id]
        except KeyError:
            raise LookupError(
                f"the deployed template has no state machine {logical_id!r} "
                f"(it has {', '.join(sorted(self.state_machines)) or 'none'})"
            ) from None

    def client(self, service: str, region: str | None = None, **session_kwargs: Any) -> Any:
        """A new boto3 client for the emulator; ``session_kwargs`` override the fake credentials
        (``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``: e.g. the ones
        STS AssumeRole returned, to act in another account)."""
        credentials: dict[str, Any] = {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            **session_kwargs,
        }
        return _new_client(service, region or self.region, self.endpoint, credentials)

    def calls(self) -> list[dict[str, str]]:
        """Every AWS API call since the last reset: service, operation, region, access_key,
        account, protocol; in arrival order."""
        url = f"{self.endpoint}/_emulator/calls"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http endpoint
            calls: list[dict[str, str]] = json.load(response)
        return calls

    def reset_calls(self) -> None:
        url = f"{self.endpoint}/_emulator/calls/reset"
        request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - http endpoint
            pass

    def add_fault(
        self,
        service: str,
        operation: str,
        error_code: str,
        nth: int = 1,
        times: int = 1,
        delay_seconds: float = 0.0,
        failed_entry: bool = False,
        **match: str,
    ) -> None:
        """Fail calls ``nth`` .. ``nth + times - 1`` of an operation (times 0: every one after);
        with ``error_code`` empty, hold each of them ``delay_seconds``, then let it through;
        ``failed_entry`` (PutEvents): answer 200 with the entry failed with ``error_code``."""
        rule = {"service": service, "operation": operation, "error_code": error_code}
        body = {**rule, "nth": nth, "times": times, "delay_seconds": delay_seconds, **match}
        if failed_entry:
            body["failed_entry"] = True
        self._control("POST", "faults", body)

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules with how many matching calls each saw and failed."""
        result: list[dict[str, Any]] = self._control("GET", "faults")
        return result

    def clear_faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("DELETE", "faults")
        return result

    def force_peering_status(
        self,
        status: str,
        *,
        peering_id: str | None = None,
        on_create: bool = False,
        on_accept: bool = False,
        times: int = 1,
        message: str | None = None,
        then: str | None = None,
        after_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Give a peering a status moto never produces (``failed``, ``expired``, ...): the one
        named by ``peering_id`` now, or the next ``times`` peerings right after they are created
        (``on_create``) or accepted (``on_accept``); with ``then``, switch to that status
        ``after_seconds`` later (e.g. ``provisioning`` then ``pending-acceptance``)."""
        payload: dict[str, Any] = {"status": status, "after_seconds": after_seconds}
        if peering_id is not None:
            payload["id"] = peering_id
        payload.update(on_create=on_create, on_accept=on_accept, times=times)
        if message is not None:
            payload["message"] = message
        if then is not None:
            payload["then"] = then
        result: dict[str, Any] = self._control("POST", "peering-status", payload)
        return result

    def session_policies(self) -> list[dict[str, str]]:
        """Each access key whose AssumeRole session carries a session policy, with the policy
        (the emulator enforces its actions: ``session_policies.py``)."""
        result: list[dict[str, str]] = self._control("GET", "session-policies")
        return result

    def forget_peering(self, peering_id: str) -> None:
        """An ended peering disappears from Describe, as AWS lets it some time after it ended."""
        self._control("POST", "peering-status", {"id": peering_id, "forget": True})

    def peering_status_rules(self) -> dict[str, Any]:
        """Pending status rules, and every status forced so far (id, status, why, at)."""
        result: dict[str, Any] = self._control("GET", "peering-status")
        return result

    def clear_peering_status(self) -> dict[str, Any]:
        """Drop pending status rules and scheduled switches."""
        result: dict[str, Any] = self._control("DELETE", "peering-status")
        return result

    def set_ec2_quotas(
        self, account: str | None = None, region: str | None = None, **values: int
    ) -> dict[str, Any]:
        """Set EC2 quotas (``routes_per_table=3``...) everywhere, or in one account and region."""
        body: dict[str, Any] = {**values}
        if account is not None or region is not None:
            body |= {"account": account, "region": region}
        result: dict[str, Any] = self._control("POST", "ec2-quotas", body)
        return result

    def ec2_quotas(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control("GET", "ec2-quotas")
        return result

    def reset_ec2_quotas(self) -> dict[str, Any]:
        """Back to AWS's default quotas."""
        result: dict[str, Any] = self._control("DELETE", "ec2-quotas")
        return result

    def throttle_ec2(self, **buckets: tuple[float, float]) -> dict[str, Any]:
        """Turn EC2 throttling on (every bucket full), with some actions' buckets resized:
        ``throttle_ec2(CreateRoute=(1, 0.5))``."""
        body = {"enabled": True, "buckets": {a: list(size) for a, size in buckets.items()}}
        result: dict[str, Any] = self._control("POST", "ec2-throttling", body)
        return result

    def ec2_throttling(self) -> dict[str, Any]:
        """Whether throttling is on, the resized buckets, requests refused per action, tokens."""
        result: dict[str, Any] = self._control("GET", "ec2-throttling")
        return result

    def stop_ec2_throttling(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control("DELETE", "ec2-throttling")
        return result

    def account_client(self, service: str, account_id: str, region: str | None = None) -> Any:
        """A boto3 client acting in ``account_id`` (STS AssumeRole credentials for another
        account than the emulator's own)."""
        if account_id == self.account_id:
            return self.client(service, region=region)
        role = f"arn:aws:iam::{account_id}:role/emulator-test"
        creds = self.client("sts").assume_role(RoleArn=role, RoleSessionName="test")
        return self.client(
            service,
            region=region,
            aws_access_key_id=creds["Credentials"]["AccessKeyId"],
            aws_secret_access_key=creds["Credentials"]["SecretAccessKey"],
            aws_session_token=creds["Credentials"]["SessionToken"],
        )

    def fire_schedules(self, rule: str | None = None) -> dict[str, Any]:
        """Fire now the schedule rule named ``rule`` (name, ARN or logical id), or all of them;
        ``{"fired": [{"rule", "arn", "event_id"}], "skipped": [{"rule", "arn", "reason"}]}``."""
        result: dict[str, Any] = self._control(
            "POST", "schedules/fire", {} if rule is None else {"rule": rule}
        )
        return result

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule rule: rule, arn, account, region, expression, state, fires_on_timer,
        period_seconds (scaled), fire_count."""
        result: list[dict[str, Any]] = self._control("GET", "schedules")
        return result

    def deploy_stack(
        self,
        template: str | Path,
        stack_name: str,
        account_id: str | None = None,
        region: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Deploy a template into an account and region (default: the emulator's own); returns
        what was deployed by logical id (``functions``, ``state_machines``, ``event_buses``,
        ``rules``, ``outputs``, ``stack_id``...). Functions only in the emulator's own account
        and region. Raises ``urllib.error.HTTPError`` (400, or 409 when the name is taken
        there) with the emulator's reason when it cannot deploy."""
        payload = {
            "template": str(Path(template).resolve()),
            "stack_name": stack_name,
            "account_id": account_id or self.account_id,
            "region": region or self.region,
            "parameters": parameters or {},
        }
        result: dict[str, Any] = self._control("POST", "stacks", payload, timeout=120)
        return result

    def stacks(self) -> list[dict[str, Any]]:
        """Every stack the emulator deployed (its own first), as :meth:`deploy_stack` returns."""
        result: list[dict[str, Any]] = self._control("GET", "stacks")
        return result

    def refused_events(self) -> list[dict[str, Any]]:
        """Events a bus policy refused: event_id, source, detail-type, from_account,
        from_region, bus_arn, via (rule ARN or "PutEvents"), reason, at."""
        result: list[dict[str, Any]] = self._control("GET", "events/refused")
        return result

    def clear_refused_events(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("DELETE", "events/refused")
        return result

    def _control(self, method: str, route: str, payload: Any = None, timeout: float = 10) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(  # noqa: S310 - the local emulator's http endpoint
            f"{self.endpoint}/_emulator/{route}", method=method, data=data
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:  # the same error, with the emulator's reason
            reason = f"{method} /_emulator/{route}: {exc.read().decode(errors='replace')}"
            raise urllib.error.HTTPError(exc.url, exc.code, reason, exc.headers, None) from exc


_session: boto3.Session | None = None
_session_lock = threading.Lock()


def _new_client(service: str, region: str, endpoint: str, credentials: dict[str, Any]) -> Any:
    """A client from one shared session: a new session per client re-reads the service models
    (~0.15 s a client); a session is not thread-safe, hence the lock."""
    global _session
    with _session_lock:
        if _session is None:  # explicit keys: no profile or environment lookup
            _session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto accepts any key
                region_name=region,
            )
        return _session.client(  # type: ignore[call-overload]
            service, region_name=region, endpoint_url=endpoint, **credentials
        )


@contextmanager
def running_emulator(
    port: int | None = None,
    parameter_overrides: dict[str, str] | None = None,
    stack_name: str = "vpc-peering",
    *,
    template: str | Path | None = None,
    region: str = "us-east-1",
    start_timeout: float = START_TIMEOUT_SECONDS,
    schedule_time_scale: float = 1.0,
    extra_stacks: list[dict[str, Any]] | None = None,
    ec2_quotas: dict[str, int] | None = None,
    ec2_throttling: bool = False,
) -> Iterator[EmulatorHandle]:
    """Start ``python -m emulator`` (free port when ``port`` is None), yield its handle, stop it.

    ``schedule_time_scale`` divides every schedule period (3600: ``rate(1 hour)`` fires every
    second); ``extra_stacks`` are deployed at start-up, each as :meth:`EmulatorHandle.deploy_stack`
    takes it (``{"template", "stack_name", "account_id", "region", "parameters"}``);
    ``ec2_quotas`` changes EC2 quotas from AWS's defaults (``{"routes_per_table": 100}``) and
    ``ec2_throttling`` turns on EC2's documented request throttling. The
    emulator's stdout and stderr go to ``handle.log_path`` (kept after exit, for debugging).
    """
    work_dir = Path(tempfile.mkdtemp(prefix="emulator-"))
    ready_file = work_dir / "ready.json"
    log_path = work_dir / "emulator.log"
    command = [
        sys.executable,
        "-m",
        "emulator",
        "--port",
        str(port if port is not None else 0),
        "--stack-name",
        stack_name,
        "--region",
        region,
        "--ready-file",
        str(ready_file),
    ]
    if template is not None:
        command += ["--template", str(Path(template).resolve())]
    if parameter_overrides:
        command += ["--parameter-overrides", *(f"{k}={v}" for k, v in parameter_overrides.items())]
    if schedule_time_scale != 1.0:
        command += ["--schedule-time-scale", repr(schedule_time_scale)]
    for name, value in (ec2_quotas or {}).items():
        command += ["--ec2-quota", f"{name}={value}"]
    if ec2_throttling:
        command.append("--ec2-throttling")
    for extra in extra_stacks or []:  # the emulator runs in REPO_ROOT: absolute template paths
        resolved = {**extra, "template": str(Path(extra["template"]).resolve())}
        command += ["--extra-stack", json.dumps(resolved)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        info = _wait_for_ready(process, ready_file, log_path, start_timeout)
        yield _handle(info, log_path)
    finally:
        _stop(process)


def attach_emulator(endpoint: str) -> EmulatorHandle:
    """A handle on an emulator that is already running (e.g. ``make local``)."""
    url = f"{endpoint.rstrip('/')}/_emulator/info"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http endpoint
        info: dict[str, Any] = json.load(response)
    return _handle(info, None)


def _handle(info: dict[str, Any], log_path: Path | None) -> EmulatorHandle:
    return EmulatorHandle(
        endpoint=info["endpoint"],
        region=info["region"],
        account_id=info["account_id"],
        stack_name=info["stack_name"],
        event_bus_name=info["event_bus_name"],
        functions=info["functions"],
        state_machines=info["state_machines"],
        log_path=log_path,
        pid=info["pid"],
        outputs=info["outputs"],
    )


def _wait_for_ready(
    process: subprocess.Popen[bytes], ready_file: Path, log_path: Path, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"emulator exited with {process.returncode} before it was ready; "
                f"log {log_path}:\n{_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"emulator not ready after {timeout:.0f} s; log {log_path}:\n{_tail(log_path)}"
            )
        time.sleep(0.05)
    info: dict[str, Any] = json.loads(ready_file.read_text(encoding="utf-8"))
    return info


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
