"""The server: loopback only, call counting, before-request hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from emulator.server import ApiCall, EmulatorApp, HookResponse, create_server
from emulator.testing import EmulatorHandle, attach_emulator

EC2_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-west-1/ec2/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def test_server_binds_loopback_only() -> None:
    # Given / When a server is created on any free port
    server, _ = create_server(0)
    try:
        # Then it listens on 127.0.0.1, not 0.0.0.0
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_running_emulator_listens_on_loopback_only(product_emulator: EmulatorHandle) -> None:
    # Given the running emulator's port
    port = int(product_emulator.endpoint.rsplit(":", 1)[1])
    proc_net_tcp = Path("/proc/net/tcp")
    if not proc_net_tcp.exists():
        pytest.skip("needs Linux /proc/net/tcp")
    # When the kernel's table of listening sockets is read (state 0A = LISTEN)
    listening = [
        fields[1]
        for fields in (line.split() for line in proc_net_tcp.read_text().splitlines()[1:])
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port
    ]
    # Then the only listener is 127.0.0.1 (0100007F, little-endian hex)
    assert listening == [f"0100007F:{port:04X}"]


def test_calls_are_counted(product_emulator: EmulatorHandle) -> None:
    # Given an emptied call log
    product_emulator.reset_calls()
    # When EC2 DescribeVpcs (query protocol) and Lambda ListFunctions (REST) are called
    product_emulator.client("ec2").describe_vpcs()
    product_emulator.client("lambda", region="us-east-1").list_functions()
    # Then both are recorded, in order, with service, operation, region, key and account
    calls = product_emulator.calls()
    assert [(c["service"], c["operation"]) for c in calls] == [
        ("ec2", "DescribeVpcs"),
        ("lambda", "ListFunctions"),
    ]
    assert calls[0]["region"] == "us-east-1"
    assert calls[0]["access_key"] == "testing"
    assert calls[0]["account"] == "123456789012"
    # And a reset empties the log
    product_emulator.reset_calls()
    assert product_emulator.calls() == []


def test_calls_record_the_account_of_assumed_role_credentials(
    product_emulator: EmulatorHandle,
) -> None:
    # Given credentials of a role in another account
    sts = product_emulator.client("sts")
    role = "arn:aws:iam::111111111111:role/VpcPeeringMemberRole"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    product_emulator.reset_calls()
    # When EC2 is called with them
    product_emulator.client(
        "ec2",
        region="eu-west-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).describe_vpcs()
    # Then the call is counted in that account and region
    (call,) = product_emulator.calls()
    assert (call["account"], call["region"]) == ("111111111111", "eu-west-1")


def test_before_request_hook_can_answer_instead_of_moto() -> None:
    # Given the middleware around an app that must not be reached, and a failing hook
    def unreachable(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("moto was called")

    app = EmulatorApp(unreachable)
    seen: list[ApiCall] = []

    def fail_describe_vpcs(call: ApiCall) -> HookResponse | None:
        seen.append(call)
        return HookResponse(status=503, body=b"<Response/>", content_type="text/xml")

    app.before_request_hooks.append(fail_describe_vpcs)
    environ = EnvironBuilder(
        method="POST",
        path="/",
        data="Action=DescribeVpcs&Version=2016-11-15",
        content_type="application/x-www-form-urlencoded",
        headers=[("Authorization", EC2_AUTH)],
    ).get_environ()
    statuses: list[str] = []
    # When a request arrives
    body = app(environ, lambda status, headers: statuses.append(status))
    # Then the hook saw the call and its response was sent
    assert seen == [
        ApiCall("ec2", "DescribeVpcs", "eu-west-1", "AKIDEXAMPLE", "123456789012", "ec2")
    ]
    assert statuses == ["503 Service Unavailable"]
    assert list(body) == [b"<Response/>"]
    assert len(app.calls()) == 1


def test_attach_to_a_running_emulator(product_emulator: EmulatorHandle) -> None:
    # Given a running emulator / When a client attaches by endpoint only
    attached = attach_emulator(product_emulator.endpoint)
    # Then it sees the same stack
    assert attached.state_machines == product_emulator.state_machines
    assert attached.functions == product_emulator.functions
    assert attached.pid == product_emulator.pid
