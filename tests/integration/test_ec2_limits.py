"""The product on an EC2 as strict as AWS's (emulator/ec2_limits.py): EC2's own quota codes
become QuotaExceeded, with nothing left behind; EC2's request throttling is ridden out by
retries, and when it persists the create fails TransientAwsError, with nothing left behind.

The quotas are lowered in the hub account and us-east-1 only, for one test at a time, on VPCs
each test makes (per-VPC and per-table quotas: other tests' VPCs are not concerned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle

from .conftest import HUB, Account, Vpc, snapshot

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]
REGION = "us-east-1"


@pytest.fixture
def strict(emu: EmulatorHandle) -> Iterator[EmulatorHandle]:
    yield emu
    emu.reset_ec2_quotas()
    emu.stop_ec2_throttling()


def request(a: Vpc, b: Vpc) -> dict[str, object]:
    return {"Requester": {"VpcId": a.vpc_id}, "Accepter": {"VpcId": b.vpc_id}}


def live_peerings(accounts: dict[str, Account], a: Vpc, b: Vpc) -> list[str]:
    found = (
        accounts[HUB]
        .ec2()
        .describe_vpc_peering_connections(
            Filters=[
                {"Name": "requester-vpc-info.vpc-id", "Values": [a.vpc_id]},
                {"Name": "accepter-vpc-info.vpc-id", "Values": [b.vpc_id]},
                {"Name": "status-code", "Values": ["pending-acceptance", "active", "provisioning"]},
            ]
        )["VpcPeeringConnections"]
    )
    return [p["VpcPeeringConnectionId"] for p in found]


def test_route_limit_exceeded_fails_the_create_as_quota_exceeded_and_leaves_nothing(
    strict: EmulatorHandle, make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given EC2 allowing 1 route per table (the local route fills it; MaxRoutesPerTable is 50)
    strict.set_ec2_quotas(account=HUB, region=REGION, routes_per_table=1)
    a, b = make_vpc("10.40.0.0/16"), make_vpc("10.41.0.0/16")
    before = snapshot(accounts, a, b)

    # When the pair is created
    result = create(request(a, b))

    # Then the create fails QuotaExceeded naming EC2's code, and compensation undid the peering
    assert result.error == "QuotaExceeded", (result.error, result.cause)
    assert "RouteLimitExceeded" in (result.cause or "")
    assert live_peerings(accounts, a, b) == []
    assert snapshot(accounts, a, b) == before


def test_the_active_peerings_quota_at_accept_fails_the_create_as_quota_exceeded(
    strict: EmulatorHandle, make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given EC2 allowing 1 active peering per VPC, and a hub VPC peered once
    strict.set_ec2_quotas(account=HUB, region=REGION, active_peerings_per_vpc=1)
    hub, first, second = (
        make_vpc("10.42.0.0/16"),
        make_vpc("10.43.0.0/16"),
        make_vpc("10.44.0.0/16"),
    )
    assert create(request(hub, first)).succeeded

    # When a second pair of the hub is created (MaxPeeringsPerVpc, 50, lets Plan pass)
    result = create(request(hub, second))

    # Then AcceptVpcPeeringConnection's ActiveVpcPeeringConnectionPerVpcLimitExceeded is a
    # QuotaExceeded (it was AwsCallFailed: the product did not know EC2's code), and the
    # refused request was deleted
    assert result.error == "QuotaExceeded", (result.error, result.cause)
    assert "ActiveVpcPeeringConnectionPerVpcLimitExceeded" in (result.cause or "")
    assert live_peerings(accounts, hub, second) == []


def test_the_outstanding_requests_quota_fails_the_create_as_quota_exceeded(
    strict: EmulatorHandle, make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given EC2 allowing no outstanding request
    strict.set_ec2_quotas(account=HUB, region=REGION, outstanding_requests_per_vpc=0)
    a, b = make_vpc("10.45.0.0/16"), make_vpc("10.46.0.0/16")

    # When the pair is created
    result = create(request(a, b))

    # Then CreateVpcPeeringConnection's code is a QuotaExceeded and nothing was made
    assert result.error == "QuotaExceeded", (result.error, result.cause)
    assert "OutstandingVpcPeeringConnectionLimitExceeded" in (result.cause or "")
    assert live_peerings(accounts, a, b) == []


def test_a_create_rides_out_ec2_throttling(
    strict: EmulatorHandle, make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given EC2 throttling on, CreateRoute's and DescribeRouteTables' buckets nearly empty
    a, b = make_vpc("10.47.0.0/16"), make_vpc("10.48.0.0/16")
    strict.throttle_ec2(CreateRoute=(1, 0.5), DescribeRouteTables=(1, 1))

    # When the pair is created
    result = create(request(a, b))

    # Then it succeeds, after RequestLimitExceeded answers the SDK retried
    assert result.succeeded, (result.error, result.cause)
    throttled = strict.ec2_throttling()["throttled"]
    assert throttled.get("CreateRoute", 0) + throttled.get("DescribeRouteTables", 0) >= 1


def test_persistent_throttling_fails_the_create_as_transient_and_leaves_nothing(
    strict: EmulatorHandle, make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given EC2 throttling every CreateVpcPeeringConnection (an empty bucket never refilled)
    a, b = make_vpc("10.49.0.0/16"), make_vpc("10.50.0.0/16")
    strict.throttle_ec2(CreateVpcPeeringConnection=(0, 0))

    # When the pair is created (waited for as long as the retries may take: 5 invocations of
    # CreatePeering, each making 6 attempts with up to 1+2+4+8+16 s of SDK backoff, and the
    # machine's 4 retries of up to 2+4+8+16 s: 185 s at most, about 90 s on average)
    result = create(request(a, b), timeout=300)

    # Then the create fails TransientAwsError naming EC2's code (after the SDK's and the
    # machine's retries), and nothing was made
    assert result.error == "TransientAwsError", (result.error, result.cause)
    assert "RequestLimitExceeded" in (result.cause or "")
    assert strict.ec2_throttling()["throttled"]["CreateVpcPeeringConnection"] >= 2
    assert live_peerings(accounts, a, b) == []
