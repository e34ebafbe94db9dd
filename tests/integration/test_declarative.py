"""Issue 7 through the emulator (the real ASL and handlers): a rerun converges the pair to the
request, a peering made elsewhere is refused (PeeringExists) or adopted (Adopt), inputs are
refused in words naming each field and value, every conflict is named at once, narrower routes
under a summary route are allowed per side, and cleanup says how it ended (Result)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle, mutating

from .conftest import (
    HUB,
    MEMBER,
    Account,
    Vpc,
    peering_status,
    routes_to,
    side,
    snapshot,
)

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]
Accounts = dict[str, Account]

STACK = "vpc-peering"
MANAGED_BY = "vpc-peering:managed-by"
ADOPTED_BY = "vpc-peering:adopted-by"
EXECUTION_ID = "vpc-peering:execution-id"
#: What an input error must never show: pydantic's wording, or a regular expression.
NOT_IN_WORDS = ("Value error", "Input should", "String should", "^", "[0-9", "{8}", "$")


def described(accounts: Accounts, vpc: Vpc, peering_id: str) -> dict[str, Any]:
    """The peering as EC2 shows it in this VPC's account and region."""
    found = (
        accounts[vpc.account]
        .ec2(vpc.region)
        .describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
            "VpcPeeringConnections"
        ]
    )
    assert found, f"{peering_id} not visible from {vpc.account} {vpc.region}"
    return dict(found[0])


def tags_of(accounts: Accounts, vpc: Vpc, peering_id: str) -> dict[str, str]:
    """The peering's tags as this VPC's account sees them (the requester's: where they live)."""
    return {t["Key"]: t["Value"] for t in described(accounts, vpc, peering_id).get("Tags", [])}


def dns_of(accounts: Accounts, vpc: Vpc, peering_id: str) -> tuple[bool, bool]:
    """AllowDnsResolutionFromRemoteVpc of the requester and accepter sides, as EC2 has them."""
    pcx = described(accounts, vpc, peering_id)
    return (
        pcx["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"],
        pcx["AccepterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"],
    )


def peer_by_hand(
    accounts: Accounts, requester: Vpc, accepter: Vpc, accept: bool = True, **tags: str
) -> str:
    """A peering made outside the tool (the AWS CLI tutorial's way), accepted unless told."""
    ec2 = accounts[requester.account].ec2(requester.region)
    extra: dict[str, Any] = {}
    if accepter.account != requester.account:
        extra["PeerOwnerId"] = accepter.account
    if accepter.region != requester.region:
        extra["PeerRegion"] = accepter.region
    if tags:
        extra["TagSpecifications"] = [
            {
                "ResourceType": "vpc-peering-connection",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ]
    peering_id = str(
        ec2.create_vpc_peering_connection(
            VpcId=requester.vpc_id, PeerVpcId=accepter.vpc_id, **extra
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    )
    if accept:
        accounts[accepter.account].ec2(accepter.region).accept_vpc_peering_connection(
            VpcPeeringConnectionId=peering_id
        )
    return peering_id


def summary_route(accounts: Accounts, vpc: Vpc, table: str, destination: str) -> str:
    """A route to a new transit gateway in ``table`` (a summary route, say); the tgw id."""
    ec2 = accounts[vpc.account].ec2(vpc.region)
    tgw = str(ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"])
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=destination, TransitGatewayId=tgw)
    return tgw


def igw_route(accounts: Accounts, vpc: Vpc, table: str, destination: str) -> str:
    """A route to a new internet gateway of the VPC in ``table``; the igw id."""
    ec2 = accounts[vpc.account].ec2(vpc.region)
    igw = str(ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"])
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc.vpc_id)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=destination, GatewayId=igw)
    return igw


def checks(result: ExecutionResult) -> dict[str, dict[str, Any]]:
    return {c["Subject"]: c for c in result.output["Verification"]["Checks"]}


def assert_in_words(cause: str) -> None:
    for wording in NOT_IN_WORDS:
        assert wording not in cause, f"{wording!r} in {cause!r}"


# ------------------------------------------------------------------- declarative rerun
def test_rerun_turns_dns_off_and_renames_the_peering(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given a pair peered by the tool with DNS on, Name A-B and a user tag
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    first = create(
        {
            "Requester": side(vpc1),
            "Accepter": side(vpc2),
            "DnsResolution": True,
            "Tags": {"Name": "A-B", "Team": "blue"},
        }
    )
    assert first.succeeded, (first.error, first.cause)
    peering_id = first.output["VpcPeeringConnectionId"]
    assert dns_of(accounts, vpc1, peering_id) == (True, True)
    owned = {k: v for k, v in tags_of(accounts, vpc1, peering_id).items() if k.startswith("vpc-")}
    assert owned[MANAGED_BY] == STACK

    # When the same pair is asked again with DNS off and a new Name
    second = create(
        {
            "Requester": side(vpc1),
            "Accepter": side(vpc2),
            "DnsResolution": False,
            "Tags": {"Name": "A-B-renamed"},
        }
    )

    # Then it succeeds and EC2 has DNS off on both sides and the new Name; the tag it did not
    # name and the ownership tags are as they were
    assert second.succeeded, (second.error, second.cause)
    assert second.output["VpcPeeringConnectionId"] == peering_id
    assert second.output["PeeringAction"] == "reuse"
    assert dns_of(accounts, vpc1, peering_id) == (False, False)
    tags = tags_of(accounts, vpc1, peering_id)
    assert tags["Name"] == "A-B-renamed"
    assert tags["Team"] == "blue"
    assert {k: v for k, v in tags.items() if k.startswith("vpc-")} == owned
    # And the output says what was set, and Verify checked DNS on both sides
    dns = second.output["Dns"]
    assert dns["Changed"] is True
    assert dns["Requester"]["AllowDnsResolutionFromRemoteVpc"] is False
    assert dns["Accepter"]["AllowDnsResolutionFromRemoteVpc"] is False
    found = checks(second)
    for name in ("Requester", "Accepter"):
        check = found[f"{name} DNS resolution from remote VPC"]
        assert (check["Ok"], check["Detail"]) == (True, "not allowed")


def test_dns_resolution_of_a_side_overrides_the_request(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given two VPCs
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")

    # When peered with DNS on, but off for the accepter side
    first = create(
        {
            "Requester": side(vpc1),
            "Accepter": side(vpc2, DnsResolution=False),
            "DnsResolution": True,
        }
    )

    # Then EC2 allows it on the requester side only, and Verify checked both
    assert first.succeeded, (first.error, first.cause)
    peering_id = first.output["VpcPeeringConnectionId"]
    assert dns_of(accounts, vpc1, peering_id) == (True, False)
    found = checks(first)
    assert found["Requester DNS resolution from remote VPC"]["Detail"] == "allowed"
    assert found["Accepter DNS resolution from remote VPC"]["Detail"] == "not allowed"

    # When rerun with DNS off, but on for the accepter side
    second = create(
        {
            "Requester": side(vpc1),
            "Accepter": side(vpc2, DnsResolution=True),
            "DnsResolution": False,
        }
    )

    # Then each side is exactly as asked
    assert second.succeeded, (second.error, second.cause)
    assert dns_of(accounts, vpc1, peering_id) == (False, True)


def test_rerun_routes_new_cidrs_and_new_tables(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a pair peered by the tool
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    request = {"Requester": side(vpc1), "Accepter": side(vpc2)}
    first = create(request)
    assert first.succeeded, (first.error, first.cause)
    peering_id = first.output["VpcPeeringConnectionId"]
    # And since then the accepter got a secondary CIDR and the requester a new route table
    accounts[HUB].ec2().associate_vpc_cidr_block(VpcId=vpc2.vpc_id, CidrBlock="172.17.0.0/16")
    new_table = (
        accounts[HUB].ec2().create_route_table(VpcId=vpc1.vpc_id)["RouteTable"]["RouteTableId"]
    )

    # When the same request runs again
    second = create(request)

    # Then the missing routes are added (and only those), and verified
    assert second.succeeded, (second.error, second.cause)
    states = {
        (r["RouteTableId"], r["Destination"]): r["State"]
        for r in second.output["Routes"]
        if r["Side"] == "Requester"
    }
    assert states == {
        (vpc1.main_route_table, "172.16.0.0/16"): "present",
        (vpc1.main_route_table, "172.17.0.0/16"): "created",
        (new_table, "172.16.0.0/16"): "created",
        (new_table, "172.17.0.0/16"): "created",
    }
    assert routes_to(accounts, vpc1, peering_id) == sorted(states)
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]
    assert second.output["Verification"]["Ok"] is True

    # When cleaned up, every route goes, new ones included, and the new table (not the
    # tool's) stays with its local routes only
    cleaned = cleanup(second.output)
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert len(cleaned.output["Removed"]["Routes"]) == 5
    assert routes_to(accounts, vpc1, peering_id) == []
    assert routes_to(accounts, vpc2, peering_id) == []
    assert peering_status(accounts, vpc1, peering_id) == "deleted"
    table = accounts[HUB].ec2().describe_route_tables(RouteTableIds=[new_table])["RouteTables"]
    assert [r["GatewayId"] for r in table[0]["Routes"]] == ["local"]


# ------------------------------------------------------------------ PeeringExists, Adopt
def test_peering_made_by_hand_is_refused_with_peering_exists(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given a pair already peered by hand, with a route to it
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    peering_id = peer_by_hand(accounts, vpc1, vpc2, Name="by-hand")
    accounts[HUB].ec2().create_route(
        RouteTableId=vpc1.main_route_table,
        DestinationCidrBlock="172.16.0.0/16",
        VpcPeeringConnectionId=peering_id,
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When the create machine is asked for the pair
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then Plan refuses with PeeringExists naming the peering, its state and the way on
    assert result.status == "FAILED"
    assert result.error == "PeeringExists"
    cause = result.cause or ""
    assert f"{peering_id} (active)" in cause
    assert '"Adopt": true' in cause
    assert "CreatePeering" not in result.states_entered
    # And nothing changed: not the routes, not the peering's tags
    assert snapshot(accounts, vpc1, vpc2) == before
    assert tags_of(accounts, vpc1, peering_id) == {"Name": "by-hand"}


ADOPT = "vpc-peering:adopt"


def consent(accounts: Accounts, vpc: Vpc, peering_id: str) -> None:
    """The owner's consent to adoption by this stack: the tag, in the requester's account."""
    accounts[vpc.account].ec2(vpc.region).create_tags(
        Resources=[peering_id], Tags=[{"Key": ADOPT, "Value": STACK}]
    )


def test_adopted_peering_is_routed_and_then_removed_by_cleanup(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a pair peered by hand
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)
    peering_id = peer_by_hand(accounts, vpc1, vpc2, Name="by-hand")
    # Without its owner's consent it is not adopted (issue 16: Adopt took other teams' peerings)
    refused = create({"Requester": side(vpc1), "Accepter": side(vpc2), "Adopt": True})
    assert refused.error == "PeeringExists"
    assert f"no tag {ADOPT}={STACK} in the requester's account" in (refused.cause or "")
    assert MANAGED_BY not in tags_of(accounts, vpc1, peering_id)
    # Its owner consents, in the requester's account
    consent(accounts, vpc1, peering_id)

    # When the create machine adopts it
    result = create(
        {"Requester": side(vpc1), "Accepter": side(vpc2), "Adopt": True, "Tags": {"Name": "A-B"}}
    )

    # Then it reuses it, routes both sides, and tags it as the stack's (adopted, not created)
    assert result.succeeded, (result.error, result.cause)
    out = result.output
    assert out["VpcPeeringConnectionId"] == peering_id
    assert (out["PeeringAction"], out["CreatedByExecution"], out["Adopt"]) == (
        "reuse",
        False,
        True,
    )
    assert routes_to(accounts, vpc1, peering_id) == [(vpc1.main_route_table, "172.16.0.0/16")]
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]
    tags = tags_of(accounts, vpc1, peering_id)
    assert tags[MANAGED_BY] == STACK
    assert tags[ADOPTED_BY]
    assert EXECUTION_ID not in tags
    assert tags["Name"] == "A-B"

    # When the cleanup machine runs with the create output
    cleaned = cleanup(out)

    # Then the routes and the peering are gone, and it says it removed them
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert cleaned.output["Result"] == "Removed"
    assert cleaned.output["Removed"]["PeeringDeleted"] is True
    assert len(cleaned.output["Removed"]["Routes"]) == 2
    assert peering_status(accounts, vpc1, peering_id) == "deleted"
    assert snapshot(accounts, vpc1, vpc2) == before


def test_pending_request_made_by_hand_is_accepted_only_with_adopt(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a peering request made by hand and not accepted
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    peering_id = peer_by_hand(accounts, vpc1, vpc2, accept=False, **{ADOPT: STACK})
    pending = peering_status(accounts, vpc1, peering_id)
    assert pending in ("initiating-request", "pending-acceptance")
    request = {"Requester": side(vpc1), "Accepter": side(vpc2)}

    # When the create machine is asked for the pair without Adopt
    refused = create(request)

    # Then it is refused with PeeringExists naming the pending state, and stays pending
    assert refused.error == "PeeringExists"
    assert f"{peering_id} ({pending})" in (refused.cause or "")
    assert "RequestAcceptance" not in refused.states_entered
    assert peering_status(accounts, vpc1, peering_id) == pending

    # When asked again with Adopt
    adopted = create({**request, "Adopt": True})

    # Then the request is accepted through the accept function, and routed
    assert adopted.succeeded, (adopted.error, adopted.cause)
    assert adopted.output["VpcPeeringConnectionId"] == peering_id
    assert "RequestAcceptance" in adopted.states_entered
    assert adopted.output["Acceptance"]["AcceptedNow"] is True
    assert peering_status(accounts, vpc1, peering_id) == "active"
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]
    assert cleanup(adopted.output).output["Result"] == "Removed"


def test_failed_adopting_create_gives_the_peering_back(
    make_vpc: MakeVpc, create: Run, faults: EmulatorHandle, accounts: Accounts
) -> None:
    # Given a pair peered by hand, and EC2 refusing the second CreateRoute
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    peering_id = peer_by_hand(accounts, vpc1, vpc2, Name="by-hand", **{ADOPT: STACK})
    before = snapshot(accounts, vpc1, vpc2)
    faults.add_fault("ec2", "CreateRoute", "UnauthorizedOperation", nth=2)

    # When the create machine adopts it
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "Adopt": True})

    # Then it fails, and compensation removed its route and took its ownership tags off,
    # leaving the peering (not its to delete) as it was found
    assert result.status == "FAILED"
    assert result.error == "AccessDenied"
    assert "Compensate" in result.states_entered
    assert faults.faults()[0]["fired"] == 1
    assert peering_status(accounts, vpc1, peering_id) == "active"
    assert tags_of(accounts, vpc1, peering_id) == {"Name": "by-hand", ADOPT: STACK}
    assert snapshot(accounts, vpc1, vpc2) == before


def test_cross_account_peering_made_by_hand_is_adopted_and_removed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a peering requested by hand in the member account and accepted by the hub
    vpc1 = make_vpc("10.0.0.0/16", account=MEMBER)
    vpc2 = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)
    peering_id = peer_by_hand(accounts, vpc1, vpc2, **{ADOPT: STACK})
    assert peering_status(accounts, vpc2, peering_id) == "active"

    # When the create machine adopts it
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "Adopt": True})

    # Then it is tagged as the stack's where its tags live (the member, its requester), and
    # routed in both accounts
    assert result.succeeded, (result.error, result.cause)
    assert result.output["VpcPeeringConnectionId"] == peering_id
    assert tags_of(accounts, vpc1, peering_id)[MANAGED_BY] == STACK
    assert routes_to(accounts, vpc1, peering_id) == [(vpc1.main_route_table, "172.16.0.0/16")]
    assert routes_to(accounts, vpc2, peering_id) == [(vpc2.main_route_table, "10.0.0.0/16")]

    # When cleaned up with the create output
    cleaned = cleanup(result.output)

    # Then both accounts are as they were before the peering was made
    assert cleaned.succeeded, (cleaned.error, cleaned.cause)
    assert cleaned.output["Result"] == "Removed"
    assert snapshot(accounts, vpc1, vpc2) == before


def test_peering_of_another_stack_is_not_adopted(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given a pair peered by another stack (its managed-by tag on the peering)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    peering_id = peer_by_hand(accounts, vpc1, vpc2, **{MANAGED_BY: "other-stack"})
    before = snapshot(accounts, vpc1, vpc2)

    # When the create machine is asked to adopt it
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "Adopt": True})

    # Then PeeringExists names the other stack, and the peering is left as it was
    assert result.error == "PeeringExists"
    assert peering_id in (result.cause or "")
    assert "other-stack" in (result.cause or "")
    assert tags_of(accounts, vpc1, peering_id) == {MANAGED_BY: "other-stack"}
    assert snapshot(accounts, vpc1, vpc2) == before


# ------------------------------------------------------------------------- honest input
def test_ipv6_without_an_ipv6_cidr_names_the_side(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given a requester with an IPv6 CIDR and an accepter without one
    vpc1 = make_vpc("10.0.0.0/16")
    accounts[HUB].ec2().associate_vpc_cidr_block(
        VpcId=vpc1.vpc_id, AmazonProvidedIpv6CidrBlock=True
    )
    vpc2 = make_vpc("172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)

    # When the accepter side asks for IPv6 routes
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2, Ipv6=True)})

    # Then InvalidInput names that side's field and the VPC lacking IPv6; nothing is made
    assert result.error == "InvalidInput"
    cause = result.cause or ""
    assert cause.startswith("Accepter.Ipv6:"), cause
    assert vpc2.vpc_id in cause
    assert vpc1.vpc_id not in cause
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


def test_every_bad_field_is_named_with_its_value(create: Run) -> None:
    # Given / When a request with several bad fields at once
    result = create(
        {
            "Requester": {"VpcId": "VPC-0ABC ", "RouteTables": "some"},
            "Accepter": {
                "VpcId": "vpc-0123456789abcdef0",
                "AccountId": "12345",
                "Regoin": "us-east-1",
            },
            "DnsResolution": "yes",
            "Tags": {"aws:owner": "me"},
        }
    )

    # Then one InvalidInput names each field and its value, in words
    assert result.error == "InvalidInput"
    cause = result.cause or ""
    for expected in (
        "Requester.VpcId: 'VPC-0ABC ' is not a VPC id",
        "Requester.RouteTables: 'some' is not one of",
        "Accepter.AccountId: '12345' is not an account id",
        "Accepter.Regoin: unknown field; did you mean Region?",
        "DnsResolution: must be true or false, got 'yes'",
        "Tags: keys starting with aws: or vpc-peering: are reserved",
        "aws:owner",
    ):
        assert expected in cause, f"{expected!r} not in {cause!r}"
    assert_in_words(cause)


def test_same_vpc_on_both_sides_names_the_vpc(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given one VPC
    vpc = make_vpc("10.0.0.0/16")
    before = snapshot(accounts, vpc)

    # When asked to peer it with itself
    result = create({"Requester": side(vpc), "Accepter": side(vpc)})

    # Then the error names the field and the VPC
    assert result.error == "InvalidInput"
    cause = result.cause or ""
    assert f"Accepter.VpcId: {vpc.vpc_id} is the same VPC as Requester.VpcId" in cause
    assert_in_words(cause)
    assert snapshot(accounts, vpc) == before


def test_cleanup_input_errors_are_named(make_vpc: MakeVpc, create: Run, cleanup: Run) -> None:
    # Given the output of a DryRun create
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    dry = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": True})
    assert dry.succeeded, (dry.error, dry.cause)

    # When cleanup gets a typo'd field, and then the DryRun output
    typo = cleanup({"VpcPeeringConnectionID": "pcx-0123456789abcdef0"})
    dry_cleanup = cleanup(dry.output)

    # Then the typo is named with the field it meant
    assert typo.error == "InvalidInput"
    assert "VpcPeeringConnectionID: unknown field; did you mean VpcPeeringConnectionId?" in (
        typo.cause or ""
    )
    assert_in_words(typo.cause or "")
    # And the DryRun output is refused saying what it is
    assert dry_cleanup.error == "InvalidInput"
    assert "DryRun" in (dry_cleanup.cause or "")
    assert "nothing was created" in (dry_cleanup.cause or "")
    assert_in_words(dry_cleanup.cause or "")


# ------------------------------------------------------------------------- every conflict
@pytest.mark.parametrize("dry_run", [True, False])
def test_every_route_conflict_is_named(
    dry_run: bool, make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given two requester tables that each send the accepter's CIDR to an internet gateway
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    second_table = (
        accounts[HUB].ec2().create_route_table(VpcId=vpc1.vpc_id)["RouteTable"]["RouteTableId"]
    )
    igw = igw_route(accounts, vpc1, vpc1.main_route_table, "172.16.0.0/16")
    accounts[HUB].ec2().create_route(
        RouteTableId=second_table, DestinationCidrBlock="172.16.0.0/16", GatewayId=igw
    )
    before = snapshot(accounts, vpc1, vpc2)

    # When a DryRun (or a create) is asked for the pair
    result = create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": dry_run})

    # Then one RouteConflict names both tables and the route, and nothing was made
    assert result.error == "RouteConflict"
    cause = result.cause or ""
    assert cause.startswith("2 conflicts: "), cause
    assert vpc1.main_route_table in cause
    assert second_table in cause
    assert cause.count("172.16.0.0/16") == 2
    assert igw in cause
    assert "CreatePeering" not in result.states_entered
    assert snapshot(accounts, vpc1, vpc2) == before


# ------------------------------------------------------------------ more specific routes
def test_peering_route_may_narrow_a_transit_gateway_summary_only_when_allowed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given the requester sends the 172.16.0.0/12 summary to a transit gateway
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    tgw = summary_route(accounts, vpc1, vpc1.main_route_table, "172.16.0.0/12")
    before = snapshot(accounts, vpc1, vpc2)

    # When peered without AllowMoreSpecificRoutes
    refused = create({"Requester": side(vpc1), "Accepter": side(vpc2)})

    # Then RouteConflict names the summary route and the opt-in; nothing was made
    assert refused.error == "RouteConflict"
    cause = refused.cause or ""
    assert "172.16.0.0/12" in cause
    assert tgw in cause
    assert "Requester.AllowMoreSpecificRoutes" in cause
    assert snapshot(accounts, vpc1, vpc2) == before

    # When peered with AllowMoreSpecificRoutes on the requester side
    result = create({"Requester": side(vpc1, AllowMoreSpecificRoutes=True), "Accepter": side(vpc2)})

    # Then the /16 goes to the peering beside the summary, and the output says what it narrows
    assert result.succeeded, (result.error, result.cause)
    peering_id = result.output["VpcPeeringConnectionId"]
    assert routes_to(accounts, vpc1, peering_id) == [(vpc1.main_route_table, "172.16.0.0/16")]
    narrows = {r["Side"]: r.get("Narrows") for r in result.output["Routes"]}
    assert narrows == {"Requester": f"172.16.0.0/12 via {tgw}", "Accepter": None}

    # When cleaned up, the summary route stays
    assert cleanup(result.output).succeeded
    assert snapshot(accounts, vpc1, vpc2) == before


def test_allow_more_specific_routes_still_refuses_the_same_destination(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given the requester sends the accepter's exact CIDR to a transit gateway
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    tgw = summary_route(accounts, vpc1, vpc1.main_route_table, "172.16.0.0/16")
    before = snapshot(accounts, vpc1, vpc2)

    # When peered with AllowMoreSpecificRoutes
    result = create({"Requester": side(vpc1, AllowMoreSpecificRoutes=True), "Accepter": side(vpc2)})

    # Then it is still a RouteConflict (replacing a route is never allowed)
    assert result.error == "RouteConflict"
    assert tgw in (result.cause or "")
    assert "refusing to replace it" in (result.cause or "")
    assert snapshot(accounts, vpc1, vpc2) == before


# ------------------------------------------------------------------------ cleanup Result
def test_cleanup_of_an_unknown_peering_says_not_found(
    cleanup: Run, emu: EmulatorHandle, accounts: Accounts
) -> None:
    # Given an id EC2 has never shown
    unknown = "pcx-0123456789abcdef0"
    emu.reset_calls()

    # When the cleanup machine is asked to remove it
    result = cleanup({"VpcPeeringConnectionId": unknown})

    # Then it succeeds saying NotFound, having changed nothing
    assert result.succeeded, (result.error, result.cause)
    assert result.output["Result"] == "NotFound"
    assert result.output["Removed"] == {"Routes": [], "RouteTables": [], "PeeringDeleted": False}
    assert mutating(emu.calls()) == []


def test_second_cleanup_says_already_deleted(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a peering made and then removed by the tool
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16")
    created = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert created.succeeded, (created.error, created.cause)
    first = cleanup(created.output)
    assert first.succeeded, (first.error, first.cause)
    assert first.output["Result"] == "Removed"

    # When cleaned up again
    second = cleanup(created.output)

    # Then it succeeds saying AlreadyDeleted, removing nothing
    assert second.succeeded, (second.error, second.cause)
    assert second.output["Result"] == "AlreadyDeleted"
    assert second.output["Removed"]["PeeringDeleted"] is False
