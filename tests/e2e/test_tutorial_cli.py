"""End to end: the tutorial's own AWS CLI commands against `make local`, with the real AWS CLI.

The tutorial's manual steps (create-vpc-peering-connection, accept, create-route-table,
create-route, associate-route-table) are replaced by one `aws stepfunctions start-execution`;
its cleanup steps by the cleanup machine. The VPC and subnet commands, the checks and the final
delete-subnet / delete-vpc are the tutorial's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools import CLEANUP_MACHINE, CREATE_MACHINE
from tools.demo import tutorial_request

from .local_process import free_port, running_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`make local` on a free port, in its own process group; its info once deployed."""
    port = free_port()
    log = tmp_path_factory.mktemp("local") / "make-local.log"
    command = ["make", "--no-print-directory", "local", f"PORT={port}"]
    with running_local(command, port, log) as info:
        yield info


class Cli:
    """The real AWS CLI, pointed at the local endpoint with fake credentials."""

    def __init__(self, endpoint: str, workdir: Path) -> None:
        self.endpoint = endpoint
        self.workdir = workdir
        self.binary = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        }
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            self.env.pop(key, None)

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [self.binary, "--endpoint-url", self.endpoint, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"aws {' '.join(args)}\n{done.stderr}"
        return done.stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--output", "json"))

    def wait_execution(self, execution_arn: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.json(
                "stepfunctions", "describe-execution", "--execution-arn", execution_arn
            )
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, f"{execution_arn} still running"
            time.sleep(0.5)


def test_tutorial_with_the_aws_cli(local: dict[str, Any], tmp_path: Path) -> None:
    aws = Cli(local["endpoint"], tmp_path)

    # Given the tutorial's VPCs and subnets, made with its own commands
    vpc1 = aws(
        "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16",
        "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=VPC1}]",
        "--query", "Vpc.VpcId", "--output", "text",
    )  # fmt: skip
    subnet1 = aws(
        "ec2", "create-subnet", "--vpc-id", vpc1, "--cidr-block", "10.0.1.0/24",
        "--tag-specifications", "ResourceType=subnet,Tags=[{Key=Name,Value=VPC1-Subnet}]",
        "--query", "Subnet.SubnetId", "--output", "text",
    )  # fmt: skip
    vpc2 = aws(
        "ec2", "create-vpc", "--cidr-block", "172.16.0.0/16",
        "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=VPC2}]",
        "--query", "Vpc.VpcId", "--output", "text",
    )  # fmt: skip
    subnet2 = aws(
        "ec2", "create-subnet", "--vpc-id", vpc2, "--cidr-block", "172.16.1.0/24",
        "--tag-specifications", "ResourceType=subnet,Tags=[{Key=Name,Value=VPC2-Subnet}]",
        "--query", "Subnet.SubnetId", "--output", "text",
    )  # fmt: skip

    # When the create machine is started with the AWS CLI, as the README shows
    (tmp_path / "create.json").write_text(
        json.dumps(tutorial_request(vpc1, subnet1, vpc2, subnet2))
    )
    execution = aws(
        "stepfunctions", "start-execution",
        "--state-machine-arn", local["state_machines"][CREATE_MACHINE],
        "--input", "file://create.json", "--query", "executionArn", "--output", "text",
    )  # fmt: skip
    created = aws.wait_execution(execution)

    # Then it succeeded, and the tutorial's describe commands show the result
    assert created["status"] == "SUCCEEDED", created.get("cause")
    output = json.loads(created["output"])
    peering_id = output["VpcPeeringConnectionId"]
    described = aws.json(
        "ec2", "describe-vpc-peering-connections", "--vpc-peering-connection-ids", peering_id
    )["VpcPeeringConnections"][0]
    assert described["Status"]["Code"] == "active"
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["Name"] == "VPC1-VPC2-Peering"
    for vpc, subnet, peer_cidr in (
        (vpc1, subnet1, "172.16.0.0/16"),
        (vpc2, subnet2, "10.0.0.0/16"),
    ):
        tables = aws.json("ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vpc}")[
            "RouteTables"
        ]
        routed = [
            t
            for t in tables
            if any(r.get("VpcPeeringConnectionId") == peering_id for r in t["Routes"])
        ]
        assert len(routed) == 1
        route = next(r for r in routed[0]["Routes"] if r.get("VpcPeeringConnectionId"))
        assert route["DestinationCidrBlock"] == peer_cidr
        assert subnet in [a.get("SubnetId") for a in routed[0]["Associations"]]

    # When the cleanup machine gets the create output as it is
    (tmp_path / "cleanup.json").write_text(created["output"])
    execution = aws(
        "stepfunctions", "start-execution",
        "--state-machine-arn", local["state_machines"][CLEANUP_MACHINE],
        "--input", "file://cleanup.json", "--query", "executionArn", "--output", "text",
    )  # fmt: skip
    cleaned = aws.wait_execution(execution)

    # Then the peering is deleted and no route table of the tool is left
    assert cleaned["status"] == "SUCCEEDED", cleaned.get("cause")
    status = aws(
        "ec2", "describe-vpc-peering-connections", "--vpc-peering-connection-ids", peering_id,
        "--query", "VpcPeeringConnections[0].Status.Code", "--output", "text",
    )  # fmt: skip
    assert status == "deleted"
    tables = aws.json(
        "ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vpc1},{vpc2}"
    )["RouteTables"]
    assert [
        t["RouteTableId"] for t in tables if not any(a.get("Main") for a in t["Associations"])
    ] == []

    # And the tutorial's last commands succeed
    aws("ec2", "delete-subnet", "--subnet-id", subnet2)
    aws("ec2", "delete-subnet", "--subnet-id", subnet1)
    aws("ec2", "delete-vpc", "--vpc-id", vpc2)
    aws("ec2", "delete-vpc", "--vpc-id", vpc1)
    remaining = aws.json("ec2", "describe-vpcs", "--filters", f"Name=vpc-id,Values={vpc1},{vpc2}")
    assert remaining["Vpcs"] == []
