"""Integration fixtures: one emulator for the session, accounts, VPC factories, snapshots.

Every test builds its own VPCs, so tests do not see each other's resources. The hub is moto's
default account; 111111111111 is a trusted member account and 222222222222 an untrusted one
(inside AllowedAccountIds, but not a trusted requester); 333333333333 is outside the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.executions import ExecutionResult, run_execution
from emulator.testing import EmulatorHandle, running_emulator

HUB = "123456789012"
MEMBER = "111111111111"
UNTRUSTED = "222222222222"
OUTSIDE = "333333333333"
MEMBER_ROLE = "VpcPeeringMemberRole"
MUTATING_PREFIXES = (
    "Create",
    "Accept",
    "Associate",
    "Disassociate",
    "Delete",
    "Modify",
    "Replace",
    "Reject",
)


@pytest.fixture(scope="session")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(
        parameter_overrides={
            "AllowedAccountIds": f"{HUB},{MEMBER},{UNTRUSTED}",
            "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
        }
    ) as handle:
        yield handle


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
    return {a: Account(emu, a) for a in (HUB, MEMBER, UNTRUSTED, OUTSIDE)}


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
def create(emu: EmulatorHandle) -> Callable[..., ExecutionResult]:
    def run(payload: Any, name: str | None = None) -> ExecutionResult:
        return run_execution(
            emu.client("stepfunctions"),
            emu.create_state_machine_arn,
            payload,
            name=name,
            timeout=120,
        )

    return run


@pytest.fixture
def cleanup(emu: EmulatorHandle) -> Callable[..., ExecutionResult]:
    def run(payload: Any) -> ExecutionResult:
        return run_execution(
            emu.client("stepfunctions"), emu.cleanup_state_machine_arn, payload, timeout=120
        )

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
                        r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"),
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


def mutating(calls: list[dict[str, str]]) -> list[str]:
    return [
        c["operation"]
        for c in calls
        if c["service"] == "ec2" and c["operation"].startswith(MUTATING_PREFIXES)
    ]


@pytest.fixture
def faults(emu: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The emulator, with every fault rule a test adds removed afterwards."""
    emu.clear_faults()
    yield emu
    emu.clear_faults()
