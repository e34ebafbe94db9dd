"""EC2 where moto differed from AWS (ec2_fixes.py): filters, paging, CIDR sets, blackholes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorHandle


def new_vpc(ec2: Any, cidr: str, **tags: str) -> str:
    spec = [{"ResourceType": "vpc", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    kwargs: dict[str, Any] = {"TagSpecifications": spec} if tags else {}
    return str(ec2.create_vpc(CidrBlock=cidr, **kwargs)["Vpc"]["VpcId"])


def peer(ec2: Any, requester: str, accepter: str, accept: bool = False) -> str:
    pcx = ec2.create_vpc_peering_connection(VpcId=requester, PeerVpcId=accepter)
    pcx_id = str(pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"])
    if accept:
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    return pcx_id


def peering_ids(ec2: Any, *filters: tuple[str, list[str]]) -> set[str]:
    response = ec2.describe_vpc_peering_connections(
        Filters=[{"Name": name, "Values": values} for name, values in filters]
    )
    return {p["VpcPeeringConnectionId"] for p in response["VpcPeeringConnections"]}


def test_tag_filters_with_several_values_match_any_of_them(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    k1, k2, k3, team = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("k1", "k2", "k3", "team"))
    # Given three VPCs, each with a key of its own and a team tag
    one = new_vpc(ec2, "10.60.0.0/16", **{k1: "x", team: "blue"})
    two = new_vpc(ec2, "10.61.0.0/16", **{k2: "x", team: "green"})
    new_vpc(ec2, "10.62.0.0/16", **{k3: "x", team: "red"})

    def vpcs(*filters: tuple[str, list[str]]) -> set[str]:
        found = ec2.describe_vpcs(Filters=[{"Name": n, "Values": v} for n, v in filters])["Vpcs"]
        return {v["VpcId"] for v in found}

    # When tag-key names two keys / Then either key matches (moto found none)
    assert vpcs(("tag-key", [k1, k2])) == {one, two}
    # When tag:<key> names two values / Then either value matches
    assert vpcs((f"tag:{team}", ["blue", "green"])) == {one, two}
    # When two filters are given / Then both must hold
    assert vpcs(("tag-key", [k1, k2]), (f"tag:{team}", ["green", "red"])) == {two}
    # And wildcards work in several values too
    assert vpcs(("tag-key", [f"{k1[:3]}*", "nothing-*"])) >= {one}


def test_route_tables_by_a_hundred_vpc_ids_page_by_page(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given six VPCs (each has its main route table) and 94 ids of VPCs that do not exist
    vpcs = [new_vpc(ec2, f"10.70.{i}.0/24") for i in range(6)]
    ids = vpcs + [f"vpc-{i:017x}" for i in range(94)]
    vpc_filter = [{"Name": "vpc-id", "Values": ids}]
    # When they are described with a vpc-id filter of those 100 values, 5 per page
    first = ec2.describe_route_tables(Filters=vpc_filter, MaxResults=5)
    second = ec2.describe_route_tables(
        Filters=vpc_filter, MaxResults=5, NextToken=first["NextToken"]
    )
    # Then two pages hold the six main route tables, and the last has no NextToken
    assert len(first["RouteTables"]) == 5
    assert "NextToken" not in second
    tables = first["RouteTables"] + second["RouteTables"]
    assert sorted(t["VpcId"] for t in tables) == sorted(vpcs)
    # And boto3's paginator walks the same pages
    pages = ec2.get_paginator("describe_route_tables").paginate(
        Filters=vpc_filter, PaginationConfig={"PageSize": 5}
    )
    assert [len(page["RouteTables"]) for page in pages] == [5, 1]
    # And a page size out of EC2's range (5-100) is refused
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_route_tables(MaxResults=101)


def test_describe_vpcs_pages(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    key = f"page-{uuid.uuid4().hex[:8]}"
    created = {new_vpc(ec2, f"10.71.{i}.0/24", **{key: "1"}) for i in range(7)}
    # When VPCs are listed 5 at a time / Then the pages add up to all of them
    pages = ec2.get_paginator("describe_vpcs").paginate(
        Filters=[{"Name": "tag-key", "Values": [key]}], PaginationConfig={"PageSize": 5}
    )
    sizes, found = [], set()
    for page in pages:
        sizes.append(len(page["Vpcs"]))
        found |= {v["VpcId"] for v in page["Vpcs"]}
    assert (sizes, found) == ([5, 2], created)


def test_peering_filters_as_ec2_applies_them(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given A (with a second CIDR), B and C; A-B active and tagged, A-C pending, B-C deleted
    a, b, c = (new_vpc(ec2, f"10.{n}.0.0/16") for n in (80, 82, 83))
    ec2.associate_vpc_cidr_block(VpcId=a, CidrBlock="10.81.0.0/16")
    ab, ac, bc = peer(ec2, a, b, accept=True), peer(ec2, a, c), peer(ec2, b, c)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=bc)
    key = f"mesh-{uuid.uuid4().hex[:8]}"
    ec2.create_tags(Resources=[ab], Tags=[{"Key": key, "Value": "blue"}])
    ours = ("vpc-peering-connection-id", [ab, ac, bc])
    # When / Then: each filter alone
    assert peering_ids(ec2, ours, ("status-code", ["active"])) == {ab}
    assert peering_ids(ec2, ("requester-vpc-info.vpc-id", [a])) == {ab, ac}
    assert peering_ids(ec2, ("accepter-vpc-info.vpc-id", [c])) == {ac, bc}
    assert peering_ids(ec2, ("requester-vpc-info.cidr-block", ["10.81.0.0/16"])) == {ab, ac}
    assert peering_ids(ec2, ("accepter-vpc-info.cidr-block", ["10.83.0.0/16"])) == {ac, bc}
    assert peering_ids(ec2, ours, ("requester-vpc-info.owner-id", ["123456789012"])) == {ab, ac, bc}
    assert peering_ids(ec2, ours, ("accepter-vpc-info.owner-id", ["999999999999"])) == set()
    assert peering_ids(ec2, (f"tag:{key}", ["blue"])) == {ab}
    assert peering_ids(ec2, ("tag-key", [key])) == {ab}
    assert peering_ids(ec2, ours, ("tag-value", ["blue"])) == {ab}
    # Values OR, filters AND
    both = ("status-code", ["pending-acceptance", "active"])
    assert peering_ids(ec2, ours, both) == {ab, ac}
    assert peering_ids(ec2, both, ("accepter-vpc-info.vpc-id", [c])) == {ac}
    # And a filter EC2 does not know is refused, as EC2 refuses it
    with pytest.raises(ClientError, match="The filter 'vpc-id' is invalid") as caught:
        peering_ids(ec2, ("vpc-id", [a]))
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_peerings_page(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    hub = new_vpc(ec2, "10.90.0.0/16")
    created = {peer(ec2, hub, new_vpc(ec2, f"10.91.{i}.0/24")) for i in range(6)}
    # When the hub's peerings are listed 5 at a time
    pages = ec2.get_paginator("describe_vpc_peering_connections").paginate(
        Filters=[{"Name": "requester-vpc-info.vpc-id", "Values": [hub]}],
        PaginationConfig={"PageSize": 5},
    )
    sizes = [len(page["VpcPeeringConnections"]) for page in pages]
    # Then two pages hold the six
    assert sizes == [5, 1]
    assert peering_ids(ec2, ("requester-vpc-info.vpc-id", [hub])) == created


def test_peering_vpc_info_lists_every_cidr(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given a VPC with a second IPv4 CIDR and an IPv6 CIDR, peered with another
    a, b = new_vpc(ec2, "10.100.0.0/16"), new_vpc(ec2, "10.102.0.0/16")
    ec2.associate_vpc_cidr_block(VpcId=a, CidrBlock="10.101.0.0/16")
    ec2.associate_vpc_cidr_block(VpcId=a, AmazonProvidedIpv6CidrBlock=True)
    pcx = peer(ec2, a, b)
    # When the peering is described
    (described,) = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ]
    # Then each side carries all its CIDRs, besides the primary one
    requester, accepter = described["RequesterVpcInfo"], described["AccepterVpcInfo"]
    assert requester["CidrBlock"] == "10.100.0.0/16"
    assert requester["CidrBlockSet"] == [
        {"CidrBlock": "10.100.0.0/16"},
        {"CidrBlock": "10.101.0.0/16"},
    ]
    (ipv6,) = requester["Ipv6CidrBlockSet"]
    assert ipv6["Ipv6CidrBlock"].endswith("::/56")
    assert accepter["CidrBlockSet"] == [{"CidrBlock": "10.102.0.0/16"}]
    assert "Ipv6CidrBlockSet" not in accepter


def route_state(ec2: Any, table: str, destination: str) -> str:
    (described,) = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
    (route,) = [r for r in described["Routes"] if r.get("DestinationCidrBlock") == destination]
    return str(route["State"])


@pytest.mark.parametrize("ending", ["delete", "reject", "forget"])
def test_a_route_to_an_ended_peering_is_a_blackhole(
    tiny_emulator: EmulatorHandle, ending: str
) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given a route through a peering
    a, b = new_vpc(ec2, "10.110.0.0/16"), new_vpc(ec2, "10.111.0.0/16")
    pcx = peer(ec2, a, b, accept=ending != "reject")
    table = ec2.create_route_table(VpcId=a)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=table, DestinationCidrBlock="10.111.0.0/16", VpcPeeringConnectionId=pcx
    )
    assert route_state(ec2, table, "10.111.0.0/16") == "active"
    # When the peering ends (deleted, rejected, or deleted and then gone from Describe)
    if ending == "reject":
        ec2.reject_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    else:
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    if ending == "forget":
        tiny_emulator.forget_peering(pcx)
    # Then the route is a blackhole, and the route.state filter finds it
    assert route_state(ec2, table, "10.111.0.0/16") == "blackhole"
    found = ec2.describe_route_tables(
        Filters=[
            {"Name": "route.state", "Values": ["blackhole"]},
            {"Name": "vpc-id", "Values": [a]},
        ]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [table]
    # And a new route to the same destination is refused until the blackhole is deleted
    other = peer(ec2, a, new_vpc(ec2, "10.112.0.0/16"), accept=True)
    with pytest.raises(ClientError) as caught:
        ec2.create_route(
            RouteTableId=table, DestinationCidrBlock="10.111.0.0/16", VpcPeeringConnectionId=other
        )
    assert caught.value.response["Error"]["Code"] == "RouteAlreadyExists"
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="10.111.0.0/16")
    ec2.create_route(
        RouteTableId=table, DestinationCidrBlock="10.111.0.0/16", VpcPeeringConnectionId=other
    )
    assert route_state(ec2, table, "10.111.0.0/16") == "active"
