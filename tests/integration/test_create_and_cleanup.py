"""Both machines from the real ASL, with the real handlers, through the local emulator."""

from __future__ import annotations

from collections.abc import Callable

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle, mutating

from .conftest import (
    HUB,
    MEMBER,
    UNTRUSTED,
    Account,
    Vpc,
    peering_status,
    routes_to,
    side,
    snapshot,
)

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]


def test_tutorial_pair_is_peered_routed_verified_and_cleaned_up(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given the tutorial's two VPCs with a subnet each
    vpc1 = make_vpc("10.0.0.0/16", subnets=("10.0.1.0/24",), name="VPC1")
    vpc2 = make_vpc("172.16.0.0/16", subnets=("172.16.1.0/24",), name="VPC2")
    before = snapshot(accounts, vpc1, vpc2)

    # When the create machine runs with only the two VPC ids
    result = create(
        {
            "Requester": {"VpcId": vpc1.vpc_id},
            "Accepter": {"VpcId": vpc2.vpc_id},
            "Tags": {"Name": "VPC1-VPC2-Peering"},
        }
    )

    # Then the peering is active, accepted through EventBridge, routed both ways and verified
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    peering_id = out["VpcPeeringConnectionId"]
    assert out["Status"] == "active"
    assert "RequestAcceptance" in result.states_entered
    assert out["Acceptance"]["AcceptedNow"] is True
    assert out["Verification"]["Ok"] is True
    assert peering_status(accounts, vpc1, peering_id) == "active"
    assert routes_to(accounts, vpc1, peering_id) == [(vpc1.main_route_table, "172.16.0.0/16")]
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]
    assert {r["State"] for r in out["Routes"]} == {"created"}
    tags = {
        t["Key"]: t["Value"]
        for t in accounts[HUB]
        .ec2()
        .describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
            "VpcPeeringConnections"
        ][0]["Tags"]
    }
    assert tags["Name"] == "VPC1-VPC2-Peering"
    assert tags["vpc-peering:managed-by"] == "vpc-peering"

    # When the cleanup machine runs with the create output as it is
    cleaned = cleanup(out)

    # Then the routes and the peering are gone and the VPCs are as they were
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert cleaned.output["Removed"]["PeeringDeleted"] is True
    assert len(cleaned.output["Removed"]["Routes"]) == 2
    assert peering_status(accounts, vpc1, peering_id) == "deleted"
    assert snapshot(accounts, vpc1, vpc2) == before


def test_dedicated_route_tables_are_created_associated_and_removed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given two VPCs and one subnet each (the tutorial's create-route-table / associate way)
    vpc1 = make_vpc("10.0.0.0/16", subnets=("10.0.1.0/24",))
    vpc2 = make_vpc("172.16.0.0/16", subnets=("172.16.1.0/24",))
    before = snapshot(accounts, vpc1, vpc2)

    # When peering with a dedicated route table on each side
    result = create(
        {
            "Requester": side(vpc1, DedicatedRouteTable={"SubnetIds": vpc1.subnets}),
            "Accepter": side(vpc2, DedicatedRouteTable={"SubnetIds": vpc2.subnets}),
        }
    )

    # Then each side has a new, tagged table associated with its subnet and routing to the peer
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    peering_id = out["VpcPeeringConnectionId"]
    tables = {t["Side"]: t for t in out["DedicatedRouteTables"]}
    for name, vpc, peer_cidr in (
        ("Requester", vpc1, "172.16.0.0/16"),
        ("Accepter", vpc2, "10.0.0.0/16"),
    ):
        table = tables[name]
        assert table["State"] == "created"
        assert table["Associations"][0]["SubnetId"] == vpc.subnets[0]
        assert table["Associations"][0]["AssociationId"].startswith("rtbassoc-")
        assert routes_to(accounts, vpc, peering_id) == [(table["RouteTableId"], peer_cidr)]
        described = accounts[HUB].ec2().describe_route_tables(RouteTableIds=[table["RouteTableId"]])
        tags = {t["Key"]: t["Value"] for t in described["RouteTables"][0]["Tags"]}
        assert tags["vpc-peering:peering-id"] == peering_id
        assert tags["vpc-peering:side"] == name
    # And the main tables were left alone
    assert vpc1.main_route_table not in [r["RouteTableId"] for r in out["Routes"]]

    # When cleaned up
    cleaned = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then the tables were disassociated and deleted, and nothing else changed
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert sorted(cleaned.output["Removed"]["RouteTables"]) == sorted(
        t["RouteTableId"] for t in out["DedicatedRouteTables"]
    )
    assert snapshot(accounts, vpc1, vpc2) == before


def test_cross_region_peering_with_dns(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given VPCs in two regions
    vpc1 = make_vpc("10.0.0.0/16", region="us-east-1")
    vpc2 = make_vpc("172.16.0.0/16", region="eu-west-1")
    before = snapshot(accounts, vpc1, vpc2)

    # When peered with DNS resolution
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DnsResolution": True})

    # Then it is active in both regions, routed in both, DNS allowed on both sides
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    peering_id = out["VpcPeeringConnectionId"]
    assert peering_status(accounts, vpc2, peering_id) == "active"
    assert routes_to(accounts, vpc1, peering_id) == [(vpc1.main_route_table, "172.16.0.0/16")]
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]
    assert out["Dns"]["Requester"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert out["Dns"]["Accepter"]["AllowDnsResolutionFromRemoteVpc"] is True
    pcx = (
        accounts[HUB]
        .ec2("eu-west-1")
        .describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
            "VpcPeeringConnections"
        ][0]
    )
    assert pcx["AccepterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True

    # When cleaned up by id (the peering is in the stack's region)
    cleaned = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then both regions are back as they were
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert snapshot(accounts, vpc1, vpc2) == before


def test_cross_account_peering_is_accepted_by_the_member_account(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given a hub VPC and a VPC in a trusted member account in another region
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER, region="us-west-2")
    before = snapshot(accounts, vpc1, vpc2)

    # When peered
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then the member account sees it active, with routes in its own table
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    peering_id = out["VpcPeeringConnectionId"]
    assert out["Accepter"]["AccountId"] == MEMBER
    assert peering_status(accounts, vpc2, peering_id) == "active"
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]

    # When cleaned up with the create output
    cleaned = cleanup(out)

    # Then both accounts are back as they were
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert snapshot(accounts, vpc1, vpc2) == before


def test_secondary_cidrs_of_the_peer_are_routed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given an accepter with a secondary CIDR
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", secondary=("172.17.0.0/16",))

    # When peered
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then the requester routes both accepter CIDRs to the peering
    assert result.succeeded, (result.error, result.cause)
    peering_id = result.output["VpcPeeringConnectionId"]
    assert routes_to(accounts, vpc1, peering_id) == [
        (vpc1.main_route_table, "172.16.0.0/16"),
        (vpc1.main_route_table, "172.17.0.0/16"),
    ]
    assert result.output["Accepter"]["CidrBlocks"] == ["172.16.0.0/16", "172.17.0.0/16"]
    assert cleanup(result.output).succeeded


def test_overlapping_vpcs_are_rejected_with_nothing_created(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given VPCs whose CIDRs overlap (the accepter's secondary block)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", secondary=("10.0.128.0/17",))
    before = snapshot(accounts, vpc1, vpc2)

    # When asked to peer them
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then the execution fails with CidrOverlap naming both blocks, and nothing was made
    assert result.status == "FAILED"
    assert result.error == "CidrOverlap"
    assert "10.0.0.0/16" in (result.cause or "")
    assert "10.0.128.0/17" in (result.cause or "")
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


def test_a_peer_cidr_outside_allowed_peer_cidrs_is_refused_with_nothing_created(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given an accepter holding public space as a secondary CIDR (inside S3's range): routed,
    # it would take the requester's traffic to those addresses (issue 16, the CIDR attack)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", secondary=("52.216.0.0/16",))
    before = snapshot(accounts, vpc1, vpc2)

    # When asked to peer them (an explicit create)
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then it fails with CidrNotAllowed naming the side, the CIDR and the parameter; nothing made
    assert result.status == "FAILED"
    assert result.error == "CidrNotAllowed"
    assert "Accepter CIDR 52.216.0.0/16" in (result.cause or "")
    assert "AllowedPeerCidrs" in (result.cause or "")
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


def test_a_peer_cidr_inside_a_prefix_list_route_is_a_route_conflict_naming_the_list(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given VPC1's main table routes a prefix list holding 172.16.0.0/12 to an internet gateway
    # (a VPN's or an appliance's list, say): before issue 16 a peering route narrower than it was
    # added, as prefix-list routes were skipped by the narrower-route guard
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    ec2 = accounts[HUB].ec2()
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc1.vpc_id)
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="onprem",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "172.16.0.0/12", "Description": "on-premises"}],
    )["PrefixList"]["PrefixListId"]
    ec2.create_route(
        RouteTableId=vpc1.main_route_table, DestinationPrefixListId=prefix_list, GatewayId=igw
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When asked to peer
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then RouteConflict names the prefix list, and nothing was made
    assert result.error == "RouteConflict", (result.error, result.cause)
    assert f"inside an entry of prefix list {prefix_list} via {igw}" in (result.cause or "")
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


def test_route_conflict_is_rejected_with_nothing_changed(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given VPC1's main table already sends 172.16.0.0/16 to an internet gateway
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    ec2 = accounts[HUB].ec2()
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc1.vpc_id)
    ec2.create_route(
        RouteTableId=vpc1.main_route_table, DestinationCidrBlock="172.16.0.0/16", GatewayId=igw
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When asked to peer
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then RouteConflict names the table, the destination and the other target
    assert result.error == "RouteConflict"
    cause = result.cause or ""
    assert vpc1.main_route_table in cause
    assert "172.16.0.0/16" in cause
    assert igw in cause
    assert snapshot(accounts, vpc1, vpc2) == before


def test_untrusted_requester_is_not_accepted_and_nothing_is_left(
    make_vpc: MakeVpc, create: Run, accounts: dict[str, Account]
) -> None:
    # Given a requester VPC in an account the stack does not trust
    vpc1 = make_vpc("10.0.0.0/16", account=UNTRUSTED)
    vpc2 = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)

    # When asked to peer
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then Plan already knows the accept policy refuses it: nothing is created, nothing left
    assert result.status == "FAILED"
    assert result.error == "AcceptDenied"
    assert UNTRUSTED in (result.cause or "")
    assert "Compensate" not in result.states_entered  # refused at Plan: nothing to undo
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


def test_second_identical_create_changes_nothing(
    make_vpc: MakeVpc, create: Run, cleanup: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a peering made by the create machine, with DNS and dedicated tables
    vpc1 = make_vpc("10.0.0.0/16", subnets=("10.0.1.0/24",))
    vpc2 = make_vpc("172.16.0.0/16", subnets=("172.16.1.0/24",))
    request = {
        "Requester": side(vpc1, DedicatedRouteTable={"SubnetIds": vpc1.subnets}),
        "Accepter": side(vpc2, RouteTables="all"),
        "DnsResolution": True,
    }
    first = create(request)
    assert first.succeeded, (first.error, first.cause)
    after_first = snapshot(accounts, vpc1, vpc2)

    # When the same request runs again
    emu.reset_calls()
    second = create(request)

    # Then it reuses everything, makes no mutating EC2 call, and changes nothing
    assert second.succeeded, (second.error, second.cause)
    assert second.output["VpcPeeringConnectionId"] == first.output["VpcPeeringConnectionId"]
    assert second.output["PeeringAction"] == "reuse"
    assert {r["State"] for r in second.output["Routes"]} == {"present"}
    assert {t["State"] for t in second.output["DedicatedRouteTables"]} == {"present"}
    assert "RequestAcceptance" not in second.states_entered
    assert mutating(emu.calls()) == []
    assert snapshot(accounts, vpc1, vpc2) == after_first
    assert cleanup(second.output).succeeded


def test_cleanup_leaves_unrelated_routes_and_runs_twice(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given a peering, and an unrelated route added by someone else to the same table
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert result.succeeded, (result.error, result.cause)
    peering_id = result.output["VpcPeeringConnectionId"]
    ec2 = accounts[HUB].ec2()
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc1.vpc_id)
    ec2.create_route(
        RouteTableId=vpc1.main_route_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    )

    # When cleaned up twice
    first = cleanup({"VpcPeeringConnectionId": peering_id})
    between = snapshot(accounts, vpc1, vpc2)
    second = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then the unrelated route survives, and the second run succeeds and changes nothing
    assert first.succeeded, (first.error, first.cause)
    assert second.succeeded, (second.error, second.cause)
    routes = ec2.describe_route_tables(RouteTableIds=[vpc1.main_route_table])["RouteTables"][0][
        "Routes"
    ]
    assert any(r.get("GatewayId") == igw for r in routes)
    assert routes_to(accounts, vpc1, peering_id) == []
    assert second.output["Removed"] == {"Routes": [], "RouteTables": [], "PeeringDeleted": False}
    assert snapshot(accounts, vpc1, vpc2) == between


def test_cleanup_refuses_a_peering_it_did_not_create(
    make_vpc: MakeVpc, cleanup: Run, accounts: dict[str, Account]
) -> None:
    # Given a peering made by hand (no ownership tag) with a route to it
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    ec2 = accounts[HUB].ec2()
    peering_id = ec2.create_vpc_peering_connection(VpcId=vpc1.vpc_id, PeerVpcId=vpc2.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering_id)
    ec2.create_route(
        RouteTableId=vpc1.main_route_table,
        DestinationCidrBlock="172.16.0.0/16",
        VpcPeeringConnectionId=peering_id,
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When cleanup is asked to remove it
    result = cleanup({"VpcPeeringConnectionId": peering_id})

    # Then it refuses with NotManaged and changes nothing
    assert result.error == "NotManaged"
    assert peering_id in (result.cause or "")
    assert snapshot(accounts, vpc1, vpc2) == before


def test_dry_run_returns_the_plan_and_changes_nothing(
    make_vpc: MakeVpc, create: Run, emu: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given two VPCs
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)
    emu.reset_calls()

    # When a dry run is asked
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": True})

    # Then the plan is the output and no mutating call was made
    assert result.succeeded
    assert result.output["DryRun"] is True
    assert result.output["PeeringAction"] == "create"
    assert [(r["RouteTableId"], r["Destination"], r["State"]) for r in result.output["Routes"]] == [
        (vpc1.main_route_table, "172.16.0.0/16", "planned"),
        (vpc2.main_route_table, "10.0.0.0/16", "planned"),
    ]
    assert mutating(emu.calls()) == []
    assert snapshot(accounts, vpc1, vpc2) == before


def test_bad_input_fails_naming_the_field(create: Run) -> None:
    # Given / When a request with a malformed VPC id and a typo'd field
    result = create(
        {"Requester": {"VpcId": "vpc-nope"}, "Acceptor": {"VpcId": "vpc-0123456789abcdef0"}}
    )

    # Then InvalidInput names both fields
    assert result.error == "InvalidInput"
    cause = result.cause or ""
    assert "Requester.VpcId" in cause
    assert "Acceptor" in cause


def test_non_object_input_fails_cleanly(create: Run, cleanup: Run) -> None:
    # Given / When either machine gets something that is not an object
    created = create(["not", "an", "object"])
    cleaned = cleanup("pcx-123")

    # Then both fail with InvalidInput, not a runtime error
    assert (created.error, cleaned.error) == ("InvalidInput", "InvalidInput")


def test_failure_after_create_is_compensated_and_nothing_is_left(
    make_vpc: MakeVpc, create: Run, faults: EmulatorHandle, accounts: dict[str, Account]
) -> None:
    # Given a requester with two route tables, and EC2 refusing the second CreateRoute
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    accounts[HUB].ec2().create_route_table(VpcId=vpc1.vpc_id)
    before = snapshot(accounts, vpc1, vpc2)
    faults.add_fault("ec2", "CreateRoute", "UnauthorizedOperation", nth=2)

    # When the create machine runs
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then it fails with AccessDenied naming the call, after compensation removed the first
    # route and the peering it had made
    assert result.status == "FAILED"
    assert result.error == "AccessDenied"
    assert "ec2:CreateRoute" in (result.cause or "")
    assert result.states_entered[-3:] == ["Compensate", "PublishFailed", "Failed"]
    assert faults.faults()[0]["fired"] == 1
    assert snapshot(accounts, vpc1, vpc2) == before
