"""``make local``'s console (``python -m tools.local``, ``emulator/console.py``): one line per
execution and per failure an operator caused; handler output, moto's per-state errors and
tracebacks in the log file the announcement names."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from emulator.console import ConsoleFilter, ConsoleFormatter, execution_line, one_line
from tools.local import LOG_FILE, local_argv

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:us-east-1:123456789012:execution:vpc-peering-create:run-1"


def test_an_execution_line_names_the_execution_machine_status_and_clipped_cause() -> None:
    # Given a failed execution whose cause is a Lambda error payload with hostile text in it
    cause = json.dumps({"errorMessage": "bad\u202ename\nnext " + "x" * 400, "stackTrace": []})
    started = datetime(2026, 12, 7, tzinfo=UTC)

    # When it is summarised
    line = execution_line(ARN, "FAILED", started, started + timedelta(seconds=1.25), "Oops", cause)

    # Then one line: name, machine, status, duration, the error and the message, escaped, clipped
    assert line.startswith("execution run-1 (vpc-peering-create) FAILED in 1.2s: Oops: bad\\u202e")
    assert "\n" not in line
    assert line.endswith("…")
    assert len(line) < 260
    assert execution_line(ARN, "SUCCEEDED", None, None) == (
        "execution run-1 (vpc-peering-create) SUCCEEDED"
    )
    assert one_line("a\u009bb\u2028c") == "a\\x9bb c"  # a line separator is a space


def _record(name: str, level: int, message: str, failing: bool) -> logging.LogRecord:
    exc_info = None
    if failing:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, message, None, exc_info)


def test_the_console_keeps_one_line_per_failure_and_the_emulators_own_faults_in_full() -> None:
    # Given the console's filter and formatter, and records of each kind
    keep, fmt = ConsoleFilter(), ConsoleFormatter(Path(".local/emulator.log"))
    own_refusal = _record("emulator.lambda", logging.INFO, "Plan raised CidrOverlap: x", False)
    client_error = _record("emulator.lambda", logging.INFO, "Plan raised ClientError:\ny", True)
    per_state = _record("moto.stepfunctions.parser.x", logging.ERROR, "Exception=...", False)
    fired = _record("emulator.schedules", logging.INFO, "schedule fired", False)
    request = _record("werkzeug", logging.ERROR, "Error on request", True)
    chatter = _record("botocore.credentials", logging.INFO, "Found credentials", False)

    # Then a function's own refusal, moto's per-state errors and INFO chatter stay in the file
    assert not keep.filter(own_refusal)
    assert not keep.filter(per_state)
    assert not keep.filter(chatter)
    # a handler's other error is one line naming the file with its traceback
    assert keep.filter(client_error)
    line = fmt.format(client_error)
    assert "\n" not in line
    assert line.endswith("Plan raised ClientError: y (traceback: .local/emulator.log)")
    # the emulator's own messages are kept; its faults are shown in full
    assert keep.filter(fired)
    assert keep.filter(request)
    shown = fmt.format(request)
    assert "ERROR werkzeug: Error on request" in shown
    assert "Traceback (most recent call last)" in shown
    assert "RuntimeError: boom" in shown


def test_make_local_writes_its_log_to_a_file_unless_told_otherwise() -> None:
    assert local_argv(["--port", "0"])[2:4] == ["--log-file", LOG_FILE]
    assert local_argv(["--log-file", "x.log"]).count("--log-file") == 1


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"make local did not start:\n{out}\n{err}")
        time.sleep(0.2)
    return json.loads(path.read_text())


def _finish(sfn: object, arn: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)  # type: ignore[attr-defined]
        if described["status"] != "RUNNING":
            return described  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"{arn} still running")


def test_make_local_prints_one_line_per_execution_and_no_traceback(tmp_path: Path) -> None:
    # Given make local's entry point on a free port, its log in a file of this test
    ready, log = tmp_path / "ready.json", tmp_path / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.local", "--port", "0", "--ready-file", str(ready),
         "--log-file", str(log)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        info = _wait_for(ready, process)
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        ec2 = session.client("ec2", endpoint_url=info["endpoint"])
        sfn = session.client("stepfunctions", endpoint_url=info["endpoint"])
        vpcs = [ec2.create_vpc(CidrBlock=c)["Vpc"]["VpcId"] for c in ("10.0.0.0/16",) * 2]
        other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        machine = info["state_machines"]["CreateStateMachine"]

        # When one create fails with a product error (overlapping CIDRs) and one succeeds
        names = {}
        for name, accepter in (("overlap", vpcs[1]), ("fine", other)):
            body = {"Requester": {"VpcId": vpcs[0]}, "Accepter": {"VpcId": accepter}}
            arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(body))
            names[name] = _finish(sfn, arn["executionArn"])["status"]
        time.sleep(0.5)  # the summary is logged just after the status changes
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)

    # Then the console says one line for each execution, the error and cause of the failed
    # one, and nothing else after the announcement: no traceback, no handler output
    assert names == {"overlap": "FAILED", "fine": "SUCCEEDED"}
    said = out + err
    assert "Traceback" not in said
    assert f"log:            {log}" in out
    lines = [line for line in err.splitlines() if line.strip()]
    failed = [line for line in lines if "execution overlap (vpc-peering-create) FAILED" in line]
    assert len(failed) == 1, said
    assert "CidrOverlap: Requester vpc-" in failed[0]
    assert len([line for line in lines if "execution fine (vpc-peering-create) SUCCEEDED" in line])
    assert len(lines) == 2, said
    assert '"level":"INFO"' not in said
    # And the log file has what the console left out
    logged = log.read_text()
    assert '"message":"planned"' in logged
    assert "Error=CidrOverlap" in logged
