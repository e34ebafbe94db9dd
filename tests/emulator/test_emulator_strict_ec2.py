"""EC2 as strict as AWS documents it (emulator/ec2_limits.py, emulator/ec2_fixes.py; the table
in emulator/README.md): quotas with EC2's own error codes, request throttling, peering tags kept
per account and region.

Each test works in a region of its own and sets quotas for that account and region only, so no
other test of the shared tiny-stack emulator meets them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator.ec2_limits import DEFAULT_QUOTAS, documented_bucket
from emulator.testing import EmulatorHandle, running_emulator

ACCOUNT = "123456789012"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def emu(tiny_emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    yield tiny_emulator
    tiny_emulator.reset_ec2_quotas()
    tiny_emulator.stop_ec2_throttling()


def ec2_in(emu: EmulatorHandle, region: str) -> Any:
    return emu.client("ec2", region=region, config=NO_RETRIES)


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def new_vpc(ec2: Any, cidr: str, ipv6: bool = False) -> str:
    return str(ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]["VpcId"])


def main_table(ec2: Any, vpc_id: str) -> str:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    return str(tables["RouteTables"][0]["RouteTableId"])


def gateway(ec2: Any, vpc_id: str) -> str:
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    return str(igw)


# ------------------------------------------------------------------------------- quotas
def test_quotas_start_at_aws_defaults(emu: EmulatorHandle) -> None:
    # Given a fresh emulator's quotas
    quotas = emu.ec2_quotas()
    # Then they are AWS's defaults: 50 active peerings per VPC, 25 outstanding requests, 50
    # routes per table
    assert (
        quotas["defaults"]
        == DEFAULT_QUOTAS
        == {
            "active_peerings_per_vpc": 50,
            "outstanding_requests_per_vpc": 25,
            "routes_per_table": 50,
        }
    )


def test_a_route_table_holds_50_routes_by_default_then_route_limit_exceeded(
    emu: EmulatorHandle,
) -> None:
    # Given a table with its local route and 49 routes (50 IPv4 routes: the default quota)
    ec2 = ec2_in(emu, "ap-south-1")
    vpc = new_vpc(ec2, "10.0.0.0/16")
    table, igw = main_table(ec2, vpc), gateway(ec2, vpc)
    for i in range(49):
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"172.16.{i}.0/24", GatewayId=igw)

    # When one more is added
    with pytest.raises(ClientError) as caught:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.17.0.0/24", GatewayId=igw)

    # Then EC2's own code refuses it, and one route deleted makes room again
    assert error_code(caught) == "RouteLimitExceeded"
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="172.16.0.0/24")
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.17.0.0/24", GatewayId=igw)


def test_route_quota_counts_ipv4_and_ipv6_apart_and_can_be_raised(emu: EmulatorHandle) -> None:
    # Given a quota of 2 routes per table in one account and region
    region = "ap-south-2"
    emu.set_ec2_quotas(account=ACCOUNT, region=region, routes_per_table=2)
    ec2 = ec2_in(emu, region)
    vpc = new_vpc(ec2, "10.1.0.0/16", ipv6=True)
    table, igw = main_table(ec2, vpc), gateway(ec2, vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.0.0/24", GatewayId=igw)

    # When a third IPv4 route is added, then an IPv6 one
    with pytest.raises(ClientError) as caught:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.1.0/24", GatewayId=igw)
    ec2.create_route(RouteTableId=table, DestinationIpv6CidrBlock="2600:1f00::/56", GatewayId=igw)

    # Then only the IPv4 one is refused (local + 1 = 2 IPv4; local + 1 = 2 IPv6)
    assert error_code(caught) == "RouteLimitExceeded"
    # And a raised quota lets it in; another region keeps the default
    emu.set_ec2_quotas(account=ACCOUNT, region=region, routes_per_table=3)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.1.0/24", GatewayId=igw)
    assert emu.ec2_quotas()["defaults"]["routes_per_table"] == 50


def test_accepting_beyond_the_active_peerings_of_a_vpc_is_refused(emu: EmulatorHandle) -> None:
    # Given a quota of 2 active peerings per VPC, and a hub with two active peerings
    region = "ap-southeast-3"
    emu.set_ec2_quotas(account=ACCOUNT, region=region, active_peerings_per_vpc=2)
    ec2 = ec2_in(emu, region)
    hub = new_vpc(ec2, "10.2.0.0/16")
    peerings = [
        ec2.create_vpc_peering_connection(VpcId=hub, PeerVpcId=new_vpc(ec2, f"10.3.{i}.0/24"))[
            "VpcPeeringConnection"
        ]["VpcPeeringConnectionId"]
        for i in range(3)
    ]
    for pcx in peerings[:2]:
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)

    # When the third is accepted
    with pytest.raises(ClientError) as caught:
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peerings[2])

    # Then EC2's code refuses it and it stays pending; deleting an active one frees the quota
    assert error_code(caught) == "ActiveVpcPeeringConnectionPerVpcLimitExceeded"
    third = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peerings[2]])
    assert third["VpcPeeringConnections"][0]["Status"]["Code"] == "pending-acceptance"
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=peerings[0])
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peerings[2])


def test_outstanding_requests_of_a_vpc_are_limited(emu: EmulatorHandle) -> None:
    # Given a quota of 2 outstanding requests, and a VPC with two pending requests
    region = "ap-southeast-4"
    emu.set_ec2_quotas(account=ACCOUNT, region=region, outstanding_requests_per_vpc=2)
    ec2 = ec2_in(emu, region)
    a, b = new_vpc(ec2, "10.4.0.0/16"), new_vpc(ec2, "10.5.0.0/16")
    peers = [new_vpc(ec2, f"10.6.{i}.0/24") for i in range(4)]
    first = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=peers[0])
    ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=peers[1])

    # When it requests a third
    with pytest.raises(ClientError) as caught:
        ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=peers[2])

    # Then EC2's code refuses it; another VPC may still request; an accepted one frees room
    assert error_code(caught) == "OutstandingVpcPeeringConnectionLimitExceeded"
    ec2.create_vpc_peering_connection(VpcId=b, PeerVpcId=peers[3])
    pcx = first["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=peers[2])


def test_an_unknown_quota_or_a_bad_value_is_refused(emu: EmulatorHandle) -> None:
    for body in ({"peerings": 3}, {"routes_per_table": -1}, {"routes_per_table": 2, "region": "x"}):
        with pytest.raises(Exception, match="400"):
            emu._control("POST", "ec2-quotas", body)


# ---------------------------------------------------------------------------- throttling
def test_documented_buckets() -> None:
    # "Request token bucket sizes and refill rates": (capacity, refill per second)
    assert documented_bucket("DescribeRouteTables") == (100, 20)  # non-mutating
    assert documented_bucket("CreateRoute") == (50, 5)  # mutating
    assert documented_bucket("CreateVpcPeeringConnection") == (50, 5)  # resource-intensive
    assert documented_bucket("AcceptVpcPeeringConnection") == (50, 5)
    assert documented_bucket("CreateTags") == (100, 10)  # uncategorized


def test_throttling_is_off_until_asked(emu: EmulatorHandle) -> None:
    ec2 = ec2_in(emu, "ca-west-1")
    for _ in range(120):  # beyond DescribeVpcs' bucket of 100
        ec2.describe_vpcs()
    assert emu.ec2_throttling()["enabled"] is False


def test_an_empty_bucket_answers_request_limit_exceeded_per_action_account_and_region(
    emu: EmulatorHandle,
) -> None:
    # Given throttling on, DescribeVpcs with a bucket of 3 refilled a token every 4 seconds
    emu.throttle_ec2(DescribeVpcs=(3, 0.25))
    ec2 = ec2_in(emu, "me-central-1")
    for _ in range(3):
        ec2.describe_vpcs()

    # When a fourth call comes at once
    with pytest.raises(ClientError) as caught:
        ec2.describe_vpcs()

    # Then RequestLimitExceeded (HTTP 503, as EC2 answers it)
    assert error_code(caught) == "RequestLimitExceeded"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # And another action, and the same action in another region, have buckets of their own
    ec2.describe_route_tables()
    ec2_in(emu, "me-south-1").describe_vpcs()
    # And the bucket refills
    time.sleep(4.1)
    ec2.describe_vpcs()
    report = emu.ec2_throttling()
    assert report["throttled"]["DescribeVpcs"] == 1, report
    table = next(
        t
        for t in report["tokens"]
        if (t["region"], t["action"]) == ("me-central-1", "DescribeRouteTables")
    )
    assert (table["capacity"], table["refill"]) == (100, 20)  # the documented bucket


def test_sdk_retries_ride_out_a_short_throttle(emu: EmulatorHandle) -> None:
    # Given CreateTags with a bucket of 1 refilled 2 a second
    emu.throttle_ec2(CreateTags=(1, 2))
    ec2 = emu.client("ec2", region="il-central-1")  # botocore's default retries
    vpc = new_vpc(ec2, "10.7.0.0/16")

    # When tags are written three times at once
    for i in range(3):
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "n", "Value": str(i)}])

    # Then they all landed, some after RequestLimitExceeded and a retry
    assert emu.ec2_throttling()["throttled"]["CreateTags"] >= 1
    tags = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]
    assert tags == [{"Key": "n", "Value": "2"}]


# ---------------------------------------------------------------------- tags per region
def test_a_same_account_cross_region_peering_keeps_tags_where_written(
    emu: EmulatorHandle,
) -> None:
    # Given a peering of one account from eu-south-1 to eu-south-2, tagged at creation
    requester, accepter = ec2_in(emu, "eu-south-1"), ec2_in(emu, "eu-south-2")
    a, b = new_vpc(requester, "10.8.0.0/16"), new_vpc(accepter, "10.9.0.0/16")
    pcx = requester.create_vpc_peering_connection(
        VpcId=a,
        PeerVpcId=b,
        PeerRegion="eu-south-2",
        TagSpecifications=[
            {"ResourceType": "vpc-peering-connection", "Tags": [{"Key": "made", "Value": "here"}]}
        ],
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]

    def tags(ec2: Any) -> dict[str, str]:
        found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
        return {t["Key"]: t["Value"] for t in found["VpcPeeringConnections"][0].get("Tags", [])}

    # When the accepter's region tags it too
    accepter.create_tags(Resources=[pcx], Tags=[{"Key": "seen", "Value": "there"}])

    # Then each region shows the tags written there only
    assert tags(requester) == {"made": "here"}
    assert tags(accepter) == {"seen": "there"}
    # And a tag filter matches in the region that wrote it only
    by_tag = [{"Name": "tag:made", "Values": ["here"]}]
    assert requester.describe_vpc_peering_connections(Filters=by_tag)["VpcPeeringConnections"]
    found = accepter.describe_vpc_peering_connections(Filters=by_tag)["VpcPeeringConnections"]
    assert pcx not in {p["VpcPeeringConnectionId"] for p in found}


def test_the_command_line_raises_quotas_and_turns_throttling_on(tiny_dir: Path) -> None:
    # Given an emulator started with --ec2-quota routes_per_table=70 and --ec2-throttling
    with running_emulator(
        template=tiny_dir / "template.yaml",
        parameter_overrides={"OutDir": str(tiny_dir / "out")},
        stack_name="tiny",
        ec2_quotas={"routes_per_table": 70},
        ec2_throttling=True,
    ) as emu:
        # Then the quota is raised everywhere and throttling is on from the start
        assert emu.ec2_quotas()["defaults"]["routes_per_table"] == 70
        assert emu.ec2_throttling()["enabled"] is True
