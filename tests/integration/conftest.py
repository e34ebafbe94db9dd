"""Integration fixtures: one emulator for the session (so one per pytest-xdist worker),
accounts, VPC factories, snapshots.

Every test builds its own VPCs, so tests do not see each other's resources; a module whose
tests need an emulator to themselves (emulator-wide fault rules and call counts: test_faults.py)
starts its own with ``product_emulator()``. The hub is moto's
default account; 111111111111 is a trusted member account and 222222222222 an untrusted one
(inside AllowedAccountIds, but not a trusted requester); 333333333333 is outside the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.executions import ExecutionResult, run_execution
from emulator.testing import EmulatorHandle, running_emulator
from tools import CLEANUP_MACHINE, CREATE_MACHINE

HUB = "123456789012"
MEMBER = "111111111111"
UNTRUSTED = "222222222222"
OUTSIDE = "333333333333"
MEMBER_ROLE = "VpcPeeringMemberRole"
ACCOUNTS = (HUB, MEMBER, UNTRUSTED, OUTSIDE)


@contextmanager
def product_emulator() -> Iterator[EmulatorHandle]:
    """The stack on an emulator of its own, with the accounts above: the hub and MEMBER are
    trusted requesters, UNTRUSTED is allowed but not trusted, OUTSIDE is not allowed."""
    with running_emulator(
        parameter_overrides={
            "AllowedAccountIds": f"{HUB},{MEMBER},{UNTRUSTED}",
            "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
        }
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def emu() -> Iterator[EmulatorHandle]:
    """One emulator per session, so one per xdist worker: the tests of a worker run one at a
    time on it."""
    with product_emulator() as handle:
        yield handle


@pytest.fixture(scope="session")
def create_arn(emu: EmulatorHandle) -> str:
    return emu.state_machine_arn(CREATE_MACHINE)


@pytest.fixture(scope="session")
def cleanup_arn(emu: EmulatorHandle) -> str:
    return emu.state_machine_arn(CLEANUP_MACHINE)


@dataclass
class Account:
    """Clients acting in one account: the hub's own credentials or the assumed member role."""

    emu: EmulatorHandle
    account_id: str
    _creds: dict[str, str] = field(default_factory=dict)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        if self.account_id == HUB:
            return self.emu.client(service, region)
        if not self._creds:
            sts = self.emu.client("sts")
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{self.account_id}:role/{MEMBER_ROLE}",
                RoleSessionName="tests",
            )["Credentials"]
            self._creds = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
        return self.emu.client(service, region, **self._creds)

    def ec2(self, region: str = "us-east-1") -> Any:
        return self.client("ec2", region)


def side(vpc: Vpc, **extra: Any) -> dict[str, Any]:
    """A request side naming the VPC fully (id, account, region), plus any options."""
    return {"VpcId": vpc.vpc_id, "AccountId": vpc.account, "Region": vpc.region, **extra}


@pytest.fixture(scope="session")
def accounts(emu: EmulatorHandle) -> dict[str, Account]:
    return {a: Account(emu, a) for a in ACCOUNTS}


@dataclass
class Vpc:
    vpc_id: str
    account: str
    region: str
    cidr: str
    subnets: list[str]
    main_route_table: str


@pytest.fixture
def make_vpc(accounts: dict[str, Account]) -> Callable[..., Vpc]:
    """Create a VPC (and subnets) as the tutorial does, in any account and region."""

    def make(
        cidr: str,
        account: str = HUB,
        region: str = "us-east-1",
        subnets: tuple[str, ...] = (),
        name: str = "test",
        secondary: tuple[str, ...] = (),
        tags: dict[str, str] | None = None,
    ) -> Vpc:
        ec2 = accounts[account].ec2(region)
        all_tags = [{"Key": "Name", "Value": name}] + [
            {"Key": k, "Value": v} for k, v in (tags or {}).items()
        ]
        vpc_id = ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": all_tags}]
        )["Vpc"]["VpcId"]
        for block in secondary:
            ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=block)
        subnet_ids = [
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=s)["Subnet"]["SubnetId"] for s in subnets
        ]
        main = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
        return Vpc(vpc_id, account, region, cidr, subnet_ids, main[0]["RouteTableId"])

    return make


@pytest.fixture
def create(emu: EmulatorHandle, create_arn: str) -> Callable[..., ExecutionResult]:
    def run(payload: Any, name: str | None = None, timeout: float = 120) -> ExecutionResult:
        return run_execution(
            emu.client("stepfunctions"), create_arn, payload, name=name, timeout=timeout
        )

    return run


@pytest.fixture
def cleanup(emu: EmulatorHandle, cleanup_arn: str) -> Callable[..., ExecutionResult]:
    def run(payload: Any) -> ExecutionResult:
        return run_execution(emu.client("stepfunctions"), cleanup_arn, payload, timeout=120)

    return run


def snapshot(accounts: dict[str, Account], *vpcs: Vpc) -> dict[str, Any]:
    """Everything the tool could touch in these VPCs: route tables (routes, associations, tags)
    and the live peerings that involve them."""
    state: dict[str, Any] = {}
    for vpc in vpcs:
        ec2 = accounts[vpc.account].ec2(vpc.region)
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}])[
            "RouteTables"
        ]
        state[vpc.vpc_id] = sorted(
            (
                t["RouteTableId"],
                sorted(
                    (
                        r.get("DestinationCidrBlock")
                        or r.get("DestinationIpv6CidrBlock")
                        or r.get("DestinationPrefixListId"),
                        r.get("GatewayId") or r.get("VpcPeeringConnectionId"),
                    )
                    for r in t["Routes"]
                ),
                sorted(a.get("SubnetId") or "main" for a in t.get("Associations", [])),
            )
            for t in tables
        )
        peerings = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
        state[f"{vpc.vpc_id}/peerings"] = sorted(
            p["VpcPeeringConnectionId"]
            for p in peerings
            if p["Status"]["Code"] not in ("deleted", "rejected", "failed", "expired")
            and vpc.vpc_id in (p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"])
        )
    return state


def routes_to(accounts: dict[str, Account], vpc: Vpc, peering_id: str) -> list[tuple[str, str]]:
    ec2 = accounts[vpc.account].ec2(vpc.region)
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}])[
        "RouteTables"
    ]
    return sorted(
        (t["RouteTableId"], r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"))
        for t in tables
        for r in t["Routes"]
        if r.get("VpcPeeringConnectionId") == peering_id
    )


def peering_status(accounts: dict[str, Account], vpc: Vpc, peering_id: str) -> str:
    ec2 = accounts[vpc.account].ec2(vpc.region)
    found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
        "VpcPeeringConnections"
    ]
    return str(found[0]["Status"]["Code"]) if found else "not found"


@pytest.fixture
def faults(emu: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The emulator, with every fault rule a test adds removed afterwards."""
    emu.clear_faults()
    yield emu
    emu.clear_faults()
