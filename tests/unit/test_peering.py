"""The create machine's steps against moto: plan, create, add routes, DNS, verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vpc_peering import peering, teardown
from vpc_peering.aws import Access
from vpc_peering.errors import (
    AssociationConflict,
    CidrOverlap,
    InvalidInput,
    PeeringExists,
    PeeringFailed,
    QuotaExceeded,
    RouteConflict,
    VerificationFailed,
    VpcNotFound,
)
from vpc_peering.models.vocabulary import (
    TAG_ADOPT,
    TAG_EXECUTION,
    TAG_EXECUTION_ID,
    TAG_MANAGED_BY,
    TAG_PEERING_ID,
    TAG_SIDE,
)
from vpc_peering.settings import Settings

from .helpers import (
    HUB_ACCOUNT,
    MEMBER_ACCOUNT,
    STACK_NAME,
    TutorialVpcs,
    accept_into,
    create_chain,
    mutating,
    peering_status,
    routes_of,
    run_step,
    snapshot,
    tutorial_request,
)


def planned(document: dict[str, Any]) -> set[tuple[str, str | None, str, str]]:
    return {
        (r["Side"], r["RouteTableId"], r["Destination"], r["State"]) for r in document["Routes"]
    }


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


# ------------------------------------------------------------------------------------ plan
def test_plan_routes_every_table_of_both_vpcs_and_changes_nothing(
    tutorial: TutorialVpcs,
    make_route_table: Callable[..., str],
    main_table: Callable[..., str],
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    # Given the tutorial's VPCs, VPC1 with a second table for its subnet
    extra = make_route_table(tutorial.vpc1, subnet_ids=(tutorial.subnet1,))
    main1, main2 = main_table(tutorial.vpc1), main_table(tutorial.vpc2)
    before = snapshot(ec2)
    # When the pair is planned with no route options
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    # Then each side routes the peer's CIDR in every one of its tables, main included
    assert planned(doc) == {
        ("Requester", main1, "172.16.0.0/16", "planned"),
        ("Requester", extra, "172.16.0.0/16", "planned"),
        ("Accepter", main2, "10.0.0.0/16", "planned"),
    }
    # And the sides are resolved from EC2, a new peering is to be created
    assert doc["Requester"]["CidrBlocks"] == ["10.0.0.0/16"]
    assert doc["Accepter"]["CidrBlocks"] == ["172.16.0.0/16"]
    assert (doc["Requester"]["AccountId"], doc["Requester"]["Region"]) == (HUB_ACCOUNT, "us-east-1")
    assert doc["PeeringAction"] == "create"
    assert doc["VpcPeeringConnectionId"] is None
    assert doc["ExecutionName"] == "exec-1"
    assert doc["DedicatedRouteTables"] == []
    # And nothing in EC2 changed
    assert snapshot(ec2) == before


def test_plan_carries_dry_run_and_creates_nothing(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a DryRun request with DNS and tags
    request = tutorial_request(tutorial, DryRun=True, DnsResolution=True, Tags={"Name": "t"})
    before = snapshot(ec2)
    # When planned
    doc = peering.plan(request, "exec-1", access, settings).dump()
    # Then the flags are in the document for the machine's choice, and nothing was made
    assert (doc["DryRun"], doc["DnsResolution"], doc["Tags"]) == (True, True, {"Name": "t"})
    assert len(doc["Routes"]) == 2
    assert snapshot(ec2) == before


def test_plan_without_dry_run_says_so(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    assert peering.plan(tutorial_request(tutorial), "e", access, settings).dry_run is False


def test_plan_with_an_accepter_vpc_not_found_names_the_field(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    # Given an accepter VPC id that does not exist
    request = {
        "Requester": {"VpcId": tutorial.vpc1},
        "Accepter": {"VpcId": "vpc-0123456789abcdef0"},
    }
    # When planned
    with pytest.raises(VpcNotFound) as caught:
        peering.plan(request, "exec-1", access, settings)
    # Then the field and the VPC are named
    assert str(caught.value).startswith("Accepter.VpcId: vpc-0123456789abcdef0 not found")


def test_plan_with_both_vpcs_missing_names_the_requester_first(
    access: Access, settings: Settings
) -> None:
    request = {
        "Requester": {"VpcId": "vpc-0123456789abcdef0"},
        "Accepter": {"VpcId": "vpc-01234567"},
    }
    with pytest.raises(VpcNotFound, match=r"^Requester\.VpcId"):
        peering.plan(request, "exec-1", access, settings)


def test_plan_of_a_vpc_with_itself_is_refused(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc1}}
    with pytest.raises(InvalidInput, match=r"^Accepter\.VpcId"):
        peering.plan(request, "exec-1", access, settings)


def test_plan_of_a_malformed_request_is_invalid_input(access: Access, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match=r"Requester\.VpcId"):
        peering.plan(
            {"Requester": {}, "Accepter": {"VpcId": "vpc-01234567"}}, "e", access, settings
        )


def test_plan_of_overlapping_vpcs_is_refused_and_creates_nothing(
    make_vpc: Callable[..., str], ec2: Any, access: Access, settings: Settings
) -> None:
    # Given two VPCs whose CIDRs overlap
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("10.0.128.0/17")
    before = snapshot(ec2)
    # When planned
    with pytest.raises(CidrOverlap) as caught:
        peering.plan(
            {"Requester": {"VpcId": vpc1}, "Accepter": {"VpcId": vpc2}}, "e", access, settings
        )
    # Then both VPCs are named and nothing was created
    assert vpc1 in str(caught.value)
    assert vpc2 in str(caught.value)
    assert snapshot(ec2) == before


def test_plan_refuses_a_route_conflict_with_an_internet_gateway(
    tutorial: TutorialVpcs,
    make_igw: Callable[..., str],
    main_table: Callable[..., str],
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    # Given VPC1's main table already sends 172.16.0.0/16 to an internet gateway
    igw = make_igw(tutorial.vpc1)
    main1 = main_table(tutorial.vpc1)
    ec2.create_route(RouteTableId=main1, DestinationCidrBlock="172.16.0.0/16", GatewayId=igw)
    # When the pair is planned
    with pytest.raises(RouteConflict) as caught:
        peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    # Then the table and the gateway are named
    assert main1 in str(caught.value)
    assert igw in str(caught.value)
    assert str(caught.value).startswith("Requester")


def test_plan_refuses_a_route_narrower_than_an_existing_gateway_route(
    tutorial: TutorialVpcs,
    make_igw: Callable[..., str],
    main_table: Callable[..., str],
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    # Given VPC2's main table sends all of 10.0.0.0/8 to an internet gateway (no peering yet)
    igw = make_igw(tutorial.vpc2)
    main2 = main_table(tutorial.vpc2)
    ec2.create_route(RouteTableId=main2, DestinationCidrBlock="10.0.0.0/8", GatewayId=igw)
    # When planned: a 10.0.0.0/16 route to the peering would divert part of that traffic
    with pytest.raises(RouteConflict) as caught:
        peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    # Then refused, naming the wider route
    assert "10.0.0.0/8" in str(caught.value)
    assert str(caught.value).startswith(f"Accepter route table {main2}")


def test_plan_is_not_stopped_by_a_default_route(
    tutorial: TutorialVpcs,
    make_igw: Callable[..., str],
    main_table: Callable[..., str],
    ec2: Any,
    access: Access,
    settings: Settings,
) -> None:
    igw = make_igw(tutorial.vpc1)
    ec2.create_route(
        RouteTableId=main_table(tutorial.vpc1), DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    )
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    assert {r.state for r in doc.routes} == {"planned"}


def test_plan_routes_the_accepters_secondary_cidr_too(
    tutorial: TutorialVpcs,
    ec2: Any,
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given a secondary CIDR on the accepter VPC
    ec2.associate_vpc_cidr_block(VpcId=tutorial.vpc2, CidrBlock="172.17.0.0/16")
    # When planned
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    # Then the requester routes both of the accepter's CIDRs
    main1 = main_table(tutorial.vpc1)
    assert {d for s, t, d, _ in planned(doc) if s == "Requester" and t == main1} == {
        "172.16.0.0/16",
        "172.17.0.0/16",
    }
    assert doc["Accepter"]["CidrBlocks"] == ["172.16.0.0/16", "172.17.0.0/16"]


def test_plan_selects_tables_by_subnet_and_main(
    tutorial: TutorialVpcs,
    make_subnet: Callable[..., str],
    make_route_table: Callable[..., str],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given VPC1 with a subnet on its own table and one on the main table (implicitly)
    own = make_subnet(tutorial.vpc1, "10.0.1.0/24")
    own_table = make_route_table(tutorial.vpc1, subnet_ids=(own,))
    request = {
        "Requester": {"VpcId": tutorial.vpc1, "SubnetIds": [own, tutorial.subnet1]},
        "Accepter": {"VpcId": tutorial.vpc2, "RouteTables": "main"},
    }
    # When planned
    doc = peering.plan(request, "exec-1", access, settings).dump()
    # Then the requester uses both subnets' tables, the accepter only its main table
    assert {(s, t) for s, t, _, _ in planned(doc)} == {
        ("Requester", own_table),
        ("Requester", main_table(tutorial.vpc1)),
        ("Accepter", main_table(tutorial.vpc2)),
    }


def test_plan_with_a_subnet_of_the_other_vpc_names_the_field(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    request = {
        "Requester": {"VpcId": tutorial.vpc1, "SubnetIds": [tutorial.subnet1, tutorial.subnet2]},
        "Accepter": {"VpcId": tutorial.vpc2},
    }
    with pytest.raises(VpcNotFound, match=r"^Requester\.SubnetIds\[1\]"):
        peering.plan(request, "exec-1", access, settings)


def test_plan_of_a_dedicated_table_for_an_already_associated_subnet_is_refused(
    tutorial: TutorialVpcs,
    make_route_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given subnet1 is explicitly associated with a table already
    taken = make_route_table(tutorial.vpc1, subnet_ids=(tutorial.subnet1,))
    request = {
        "Requester": {
            "VpcId": tutorial.vpc1,
            "DedicatedRouteTable": {"SubnetIds": [tutorial.subnet1]},
        },
        "Accepter": {"VpcId": tutorial.vpc2},
    }
    # When planned / Then the association conflict names the subnet and the table
    with pytest.raises(AssociationConflict) as caught:
        peering.plan(request, "exec-1", access, settings)
    assert taken in str(caught.value)
    assert str(caught.value).startswith("Requester.DedicatedRouteTable.SubnetIds[0]")


def test_plan_refuses_a_vpc_at_its_peering_quota(
    tutorial: TutorialVpcs,
    make_vpc: Callable[..., str],
    ec2: Any,
    monkeypatch: pytest.MonkeyPatch,
    access: Access,
) -> None:
    # Given VPC1 already peered with a third VPC, and a quota of one peering per VPC
    third = make_vpc("192.168.0.0/16")
    ec2.create_vpc_peering_connection(VpcId=tutorial.vpc1, PeerVpcId=third)
    monkeypatch.setenv("MAX_PEERINGS_PER_VPC", "1")
    # When the tutorial pair is planned
    with pytest.raises(QuotaExceeded, match=r"^Requester\.VpcId"):
        peering.plan(tutorial_request(tutorial), "exec-1", access, Settings.from_env())


def test_plan_refuses_a_table_at_its_route_quota(
    tutorial: TutorialVpcs, monkeypatch: pytest.MonkeyPatch, access: Access
) -> None:
    # Given a quota of one route per table (each table already has its local route)
    monkeypatch.setenv("MAX_ROUTES_PER_TABLE", "1")
    # When planned / Then the quota is named
    with pytest.raises(QuotaExceeded, match="MaxRoutesPerTable"):
        peering.plan(tutorial_request(tutorial), "exec-1", access, Settings.from_env())


def test_plan_follows_an_existing_peering_made_the_other_way_round(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given VPC2 already requested a peering with VPC1 (an earlier execution of this stack)
    pcx = ec2.create_vpc_peering_connection(
        VpcId=tutorial.vpc2,
        PeerVpcId=tutorial.vpc1,
        TagSpecifications=[
            {
                "ResourceType": "vpc-peering-connection",
                "Tags": [{"Key": TAG_MANAGED_BY, "Value": STACK_NAME}],
            }
        ],
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    # When VPC1 -> VPC2 is planned
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    # Then the existing peering is reused and EC2's roles are followed
    assert (doc["PeeringAction"], doc["VpcPeeringConnectionId"]) == ("reuse", pcx)
    assert doc["Requester"]["VpcId"] == tutorial.vpc2
    assert doc["Accepter"]["VpcId"] == tutorial.vpc1
    assert {(s, d) for s, _, d, _ in planned(doc)} == {
        ("Requester", "10.0.0.0/16"),
        ("Accepter", "172.16.0.0/16"),
    }


def test_plan_refuses_a_pending_request_made_by_hand_before_anything_is_made(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given VPC2 requested a peering with VPC1 by hand (no ownership tag)
    pcx = ec2.create_vpc_peering_connection(VpcId=tutorial.vpc2, PeerVpcId=tutorial.vpc1)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    # When VPC1 -> VPC2 is planned / Then Plan refuses it, saying how to proceed
    with pytest.raises(PeeringExists, match=f'{pcx} .pending-acceptance.*"Adopt": true'):
        peering.plan(tutorial_request(tutorial), "exec-1", access, settings)


def hand_made(ec2: Any, t: TutorialVpcs, accept: bool = True, **tags: str) -> str:
    """A peering of the tutorial's VPCs made by hand (with these tags), accepted or pending."""
    listed = [{"Key": k, "Value": v} for k, v in tags.items()]
    spec = [{"ResourceType": "vpc-peering-connection", "Tags": listed}] if tags else []
    pcx: str = ec2.create_vpc_peering_connection(
        VpcId=t.vpc1, PeerVpcId=t.vpc2, TagSpecifications=spec
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    if accept:
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    return pcx


def peering_tags(ec2: Any, pcx: str) -> dict[str, str]:
    item = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    return tags_of(item["VpcPeeringConnections"][0])


def test_a_create_for_a_pair_peered_by_hand_is_refused_and_changes_nothing(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings, ec2_calls: list[str]
) -> None:
    # Given an active peering of the pair made by hand
    pcx = hand_made(ec2, tutorial)
    ec2_calls.clear()
    # When a create is planned / Then PeeringExists names it, its state and the way on
    with pytest.raises(PeeringExists) as caught:
        peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    assert f"{pcx} (active)" in str(caught.value)
    assert '"Adopt": true' in str(caught.value)
    assert mutating(ec2_calls) == []


def test_adopt_makes_a_hand_made_peering_this_stacks_and_cleanup_then_removes_it(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given an active peering of the pair made by hand, with a tag of its own, whose owner
    # consents to its adoption by this stack
    pcx = hand_made(ec2, tutorial, team="net", **{TAG_ADOPT: STACK_NAME})
    # When created with Adopt
    done = create_chain(tutorial_request(tutorial, Adopt=True), "exec-1", access, settings)
    # Then the peering is reused, tagged as this stack's (its own tags kept), and routed
    assert (done["VpcPeeringConnectionId"], done["PeeringAction"]) == (pcx, "reuse")
    tags = peering_tags(ec2, pcx)
    assert tags[TAG_MANAGED_BY] == STACK_NAME
    assert tags["vpc-peering:adopted-by"] == done["ExecutionId"]
    assert tags["team"] == "net"
    assert "vpc-peering:execution-id" not in tags  # compensation never takes it for its own
    assert {r["State"] for r in done["Routes"]} == {"created"}
    # When cleaned up / Then it is managed like one it made: routes and peering removed
    cleaned = teardown.cleanup_plan(done, "c-1", access, settings)
    cleaned = teardown.delete_peering(
        teardown.remove_routes(cleaned, access, settings), access, settings
    )
    assert cleaned.managed
    assert cleaned.removed.peering_deleted
    assert len(cleaned.removed.routes) == 2


def test_adopt_of_a_pending_request_made_by_hand_accepts_it(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    pcx = hand_made(ec2, tutorial, accept=False, **{TAG_ADOPT: STACK_NAME})
    done = create_chain(tutorial_request(tutorial, Adopt=True), "exec-1", access, settings)
    assert (done["VpcPeeringConnectionId"], done["Status"]) == (pcx, "active")
    assert done["Acceptance"]["AcceptedNow"] is True


def test_a_failed_create_gives_an_adopted_peering_back_as_it_was(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a hand-made peering adopted by a create that then failed
    pcx = hand_made(ec2, tutorial, team="net", **{TAG_ADOPT: STACK_NAME})
    doc = peering.plan(tutorial_request(tutorial, Adopt=True), "exec-1", access, settings)
    doc = peering.create_peering(doc, access, settings)
    failed = {**doc.dump(), "Error": {"Error": "PeeringFailed", "Cause": "injected"}}
    # When compensated
    teardown.compensate(failed, access, settings)
    # Then the peering is still there, with its own tags only
    assert peering_status(ec2, pcx) == "active"
    assert peering_tags(ec2, pcx) == {"team": "net", TAG_ADOPT: STACK_NAME}


@pytest.mark.parametrize("consent", [None, "another-stack"])
def test_adopt_without_the_owners_consent_is_refused_and_says_how_to_consent(
    tutorial: TutorialVpcs,
    ec2: Any,
    access: Access,
    settings: Settings,
    ec2_calls: list[str],
    consent: str | None,
) -> None:
    # Given another team's hand-made peering, not tagged vpc-peering:adopt=<this stack>
    pcx = hand_made(ec2, tutorial, **({TAG_ADOPT: consent} if consent else {}))
    ec2_calls.clear()
    # When a create asks to adopt it / Then PeeringExists says how its owner consents
    with pytest.raises(PeeringExists) as caught:
        peering.plan(tutorial_request(tutorial, Adopt=True), "exec-1", access, settings)
    assert f"no tag {TAG_ADOPT}={STACK_NAME} in the requester's account" in str(caught.value)
    assert mutating(ec2_calls) == []
    assert TAG_MANAGED_BY not in peering_tags(ec2, pcx)


def test_adopt_never_takes_a_peering_another_stack_manages(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    pcx = hand_made(ec2, tutorial, **{TAG_MANAGED_BY: "other-stack"})
    with pytest.raises(PeeringExists, match=f"{pcx} .*managed by stack other-stack"):
        peering.plan(tutorial_request(tutorial, Adopt=True), "exec-1", access, settings)


def test_a_rerun_converges_dns_and_tags_to_the_request(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a pair created with DNS on and a Name
    first = tutorial_request(tutorial, DnsResolution=True, Tags={"Name": "A-B"})
    done = create_chain(first, "exec-1", access, settings)
    pcx = done["VpcPeeringConnectionId"]
    # When rerun with DNS off on the accepter only, and another Name
    again = tutorial_request(tutorial, DnsResolution=True, Tags={"Name": "A-B-renamed"})
    again["Accepter"]["DnsResolution"] = False
    rerun = create_chain(again, "exec-2", access, settings)
    # Then EC2 has exactly what the rerun asked, and it says it changed the DNS options
    item = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ][0]
    assert item["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert item["AccepterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is False
    assert peering_tags(ec2, pcx)["Name"] == "A-B-renamed"
    assert peering_tags(ec2, pcx)[TAG_MANAGED_BY] == STACK_NAME  # ownership untouched
    assert rerun["Dns"]["Changed"] is True
    # And Verify checked the accepter's option is off, as asked
    checks = {c["Subject"]: c for c in rerun["Verification"]["Checks"]}
    assert checks["Accepter DNS resolution from remote VPC"]["Ok"] is True


# --------------------------------------------------------------------------- create steps
def test_create_peering_tags_it_as_this_stacks_and_this_executions(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a plan
    doc = peering.plan(tutorial_request(tutorial, Tags={"team": "net"}), "exec-1", access, settings)
    # When the peering is created
    doc = peering.create_peering(doc, access, settings)
    # Then it is pending, owned by this execution and tagged for cleanup
    assert doc.created_by_execution is True
    assert doc.peering_action == "create"
    item = ec2.describe_vpc_peering_connections(
        VpcPeeringConnectionIds=[doc.vpc_peering_connection_id]
    )["VpcPeeringConnections"][0]
    assert item["Status"]["Code"] == "pending-acceptance"
    assert (item["RequesterVpcInfo"]["VpcId"], item["AccepterVpcInfo"]["VpcId"]) == (
        tutorial.vpc1,
        tutorial.vpc2,
    )
    assert tags_of(item) == {
        "team": "net",
        "Name": "vpc1-vpc2",  # by default, after the VPCs' Name tags
        TAG_MANAGED_BY: STACK_NAME,
        TAG_EXECUTION: "exec-1",
        TAG_EXECUTION_ID: doc.execution_id,
    }
    assert len(doc.execution_id) == 32  # minted in Plan, unique to this execution


def test_create_peering_is_idempotent_for_the_same_execution(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given the document CreatePeering received, and a first run of it
    planned_doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    first = run_step(peering.create_peering, planned_doc, access, settings)
    # When the same step runs again on the same input (a retry)
    second = run_step(peering.create_peering, planned_doc, access, settings)
    # Then it finds its own peering: same id, still this execution's, no second peering
    assert second["VpcPeeringConnectionId"] == first["VpcPeeringConnectionId"]
    assert (second["CreatedByExecution"], second["PeeringAction"]) == (True, "create")
    assert len(ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]) == 1


def test_create_peering_reuses_another_executions_pending_peering(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given exec-1 created the peering and exec-2 planned before it existed
    exec2_plan = peering.plan(tutorial_request(tutorial), "exec-2", access, settings).dump()
    first = run_step(
        peering.create_peering,
        peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump(),
        access,
        settings,
    )
    # When exec-2 creates
    second = run_step(peering.create_peering, exec2_plan, access, settings)
    # Then it reuses exec-1's peering and does not own it
    assert second["VpcPeeringConnectionId"] == first["VpcPeeringConnectionId"]
    assert (second["CreatedByExecution"], second["PeeringAction"]) == (False, "reuse")
    assert len(ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]) == 1


def test_add_routes_needs_an_active_peering(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a created but not yet accepted peering
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    doc = peering.create_peering(doc, access, settings)
    before = snapshot(ec2)
    # When routes are added / Then refused, and no route was made
    with pytest.raises(PeeringFailed, match="not active"):
        peering.add_routes(doc, access, settings)
    assert snapshot(ec2) == before


def test_add_routes_without_a_peering_is_invalid(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings)
    with pytest.raises(InvalidInput, match="VpcPeeringConnectionId"):
        peering.add_routes(doc, access, settings)


def dedicated_request(t: TutorialVpcs) -> dict[str, Any]:
    """The tutorial's way: a new route table for subnet1 in VPC1, every table of VPC2."""
    return {
        "Requester": {"VpcId": t.vpc1, "DedicatedRouteTable": {"SubnetIds": [t.subnet1]}},
        "Accepter": {"VpcId": t.vpc2},
        "DnsResolution": True,
        "Tags": {"Name": "tutorial"},
    }


def test_full_chain_then_rerun_changes_nothing(
    tutorial: TutorialVpcs,
    ec2: Any,
    main_table: Callable[..., str],
    ec2_calls: list[str],
    access: Access,
    settings: Settings,
) -> None:
    # Given the tutorial's request, run through every step
    request = dedicated_request(tutorial)
    done = create_chain(request, "exec-1", access, settings)
    pcx = done["VpcPeeringConnectionId"]
    # Then the peering is active, the routes and DNS are in place and verified
    assert done["Status"] == "active"
    assert done["Acceptance"] == {
        "VpcPeeringConnectionId": pcx,
        "Status": "active",
        "AcceptedNow": True,
    }
    assert done["Verification"]["Ok"] is True
    assert done["Dns"]["Changed"] is True
    [dedicated] = done["DedicatedRouteTables"]
    rtb = dedicated["RouteTableId"]
    assert dedicated["State"] == "created"
    assert {r["State"] for r in done["Routes"]} == {"created"}
    assert routes_of(ec2, rtb)["172.16.0.0/16"] == pcx
    assert routes_of(ec2, main_table(tutorial.vpc2))["10.0.0.0/16"] == pcx
    assert "172.16.0.0/16" not in routes_of(ec2, main_table(tutorial.vpc1))  # "none" + dedicated
    item = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ][0]
    assert item["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert item["AccepterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True

    # When the same request is planned again by another execution
    before = snapshot(ec2)
    ec2_calls.clear()
    again = peering.plan(request, "exec-2", access, settings).dump()
    # Then the peering is reused and every route and the dedicated table are present
    assert (again["PeeringAction"], again["VpcPeeringConnectionId"]) == ("reuse", pcx)
    assert again["Status"] == "active"
    assert {r["State"] for r in again["Routes"]} == {"present"}
    same_routes = [
        (r["Side"], r["RouteTableId"], r["Destination"], r["Dedicated"]) for r in again["Routes"]
    ]
    assert same_routes == [
        (r["Side"], r["RouteTableId"], r["Destination"], r["Dedicated"]) for r in done["Routes"]
    ]
    assert again["DedicatedRouteTables"] == [
        {
            **dedicated,
            "State": "present",
            "Associations": [
                {
                    "SubnetId": tutorial.subnet1,
                    "AssociationId": dedicated["Associations"][0]["AssociationId"],
                }
            ],
        }
    ]
    # And running the remaining steps makes no mutating call and changes nothing
    for step in (peering.create_peering, peering.add_routes, peering.configure_dns, peering.verify):
        again = run_step(step, again, access, settings)
    assert again["Verification"]["Ok"] is True
    assert again["Dns"]["Changed"] is False
    assert again["CreatedByExecution"] is False
    assert ec2_calls, "the recorder saw the steps' reads"
    assert mutating(ec2_calls) == []
    assert snapshot(ec2) == before


def test_dedicated_table_is_tagged_and_associated(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given the tutorial's request with a dedicated table for subnet1
    # When the create chain runs
    done = create_chain(dedicated_request(tutorial), "exec-1", access, settings)
    # Then the table is in VPC1, tagged as this stack's for this peering and side
    rtb = done["DedicatedRouteTables"][0]["RouteTableId"]
    table = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
    assert table["VpcId"] == tutorial.vpc1
    assert tags_of(table) == {
        "Name": "tutorial-requester",
        TAG_MANAGED_BY: STACK_NAME,
        TAG_EXECUTION: "exec-1",
        TAG_EXECUTION_ID: done["ExecutionId"],
        TAG_PEERING_ID: done["VpcPeeringConnectionId"],
        TAG_SIDE: "Requester",
    }
    # And subnet1 is associated with it (and with nothing else explicitly)
    associations = [a for a in table["Associations"] if not a.get("Main")]
    assert [a["SubnetId"] for a in associations] == [tutorial.subnet1]
    assert done["DedicatedRouteTables"][0]["Associations"] == [
        {"SubnetId": tutorial.subnet1, "AssociationId": associations[0]["RouteTableAssociationId"]}
    ]


def test_add_routes_retried_after_partial_success_adopts_its_own_routes(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given AddRoutes ran once (routes exist) and Step Functions retries it with the same input
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    doc = run_step(peering.create_peering, doc, access, settings)
    doc = accept_into(doc, access, settings)
    run_step(peering.add_routes, doc, access, settings)
    before = snapshot(ec2)
    # When it runs again
    retried = run_step(peering.add_routes, doc, access, settings)
    # Then every route is reported created (found via this peering) and nothing changed
    assert {r["State"] for r in retried["Routes"]} == {"created"}
    assert snapshot(ec2) == before


def test_add_routes_refuses_a_route_someone_else_took_meanwhile(
    tutorial: TutorialVpcs,
    ec2: Any,
    make_igw: Callable[..., str],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given an accepted peering, and a gateway route to 10.0.0.0/16 added in VPC2 after planning
    doc = peering.plan(tutorial_request(tutorial), "exec-1", access, settings).dump()
    doc = accept_into(run_step(peering.create_peering, doc, access, settings), access, settings)
    igw = make_igw(tutorial.vpc2)
    ec2.create_route(
        RouteTableId=main_table(tutorial.vpc2), DestinationCidrBlock="10.0.0.0/16", GatewayId=igw
    )
    # When routes are added / Then the conflict is named, and the gateway route is kept
    with pytest.raises(RouteConflict, match=igw):
        run_step(peering.add_routes, doc, access, settings)
    assert routes_of(ec2, main_table(tutorial.vpc2))["10.0.0.0/16"] == igw


def test_verify_fails_naming_a_missing_route(
    tutorial: TutorialVpcs,
    ec2: Any,
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given the chain ran, then someone deleted the accepter's route
    done = create_chain(tutorial_request(tutorial), "exec-1", access, settings)
    main2 = main_table(tutorial.vpc2)
    ec2.delete_route(RouteTableId=main2, DestinationCidrBlock="10.0.0.0/16")
    # When verified again
    with pytest.raises(VerificationFailed) as caught:
        run_step(peering.verify, done, access, settings)
    # Then the missing route is named
    assert f"Accepter route {main2} 10.0.0.0/16: missing" in str(caught.value)


def test_verify_fails_naming_a_dedicated_table_no_longer_associated(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given the chain made the dedicated table, then someone disassociated subnet1 from it
    done = create_chain(dedicated_request(tutorial), "exec-1", access, settings)
    [dedicated] = done["DedicatedRouteTables"]
    ec2.disassociate_route_table(AssociationId=dedicated["Associations"][0]["AssociationId"])
    # When verified again
    with pytest.raises(VerificationFailed) as caught:
        run_step(peering.verify, done, access, settings)
    # Then the table and the subnet are named
    assert (
        f"Requester route table {dedicated['RouteTableId']} associations: "
        f"not associated: {tutorial.subnet1}"
    ) in str(caught.value)


def test_configure_dns_not_requested_leaves_both_sides_off(
    tutorial: TutorialVpcs, ec2: Any, access: Access, settings: Settings
) -> None:
    done = create_chain(tutorial_request(tutorial), "exec-1", access, settings)
    assert done["Dns"] == {
        "Requested": False,
        "Requester": {"AllowDnsResolutionFromRemoteVpc": False},
        "Accepter": {"AllowDnsResolutionFromRemoteVpc": False},
        "Changed": False,
    }
    item = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"][0]
    assert item["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is False


def test_ipv6_routes_are_added_when_both_sides_ask(
    make_vpc: Callable[..., str],
    ec2: Any,
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given two dual-stack VPCs
    vpc1, vpc2 = make_vpc("10.0.0.0/16", ipv6=True), make_vpc("172.16.0.0/16", ipv6=True)
    v6_of = {
        v["VpcId"]: v["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
        for v in ec2.describe_vpcs(VpcIds=[vpc1, vpc2])["Vpcs"]
    }
    request = {
        "Requester": {"VpcId": vpc1, "Ipv6": True},
        "Accepter": {"VpcId": vpc2, "Ipv6": True},
    }
    # When the chain runs
    done = create_chain(request, "exec-1", access, settings)
    # Then each side routes the peer's IPv4 and IPv6 blocks to the peering
    pcx = done["VpcPeeringConnectionId"]
    assert routes_of(ec2, main_table(vpc1))[v6_of[vpc2]] == pcx
    assert routes_of(ec2, main_table(vpc2))[v6_of[vpc1]] == pcx
    assert routes_of(ec2, main_table(vpc1))["172.16.0.0/16"] == pcx


def test_cross_account_chain_through_the_member_role(
    make_vpc: Callable[..., str],
    make_subnet: Callable[..., str],
    ec2_in: Callable[[str], Any],
    main_table: Callable[..., str],
    access: Access,
    settings: Settings,
) -> None:
    # Given VPC1 in the hub and VPC2 in a member account (reached through its role)
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER_ACCOUNT)
    make_subnet(vpc2, "172.16.0.0/24", account=MEMBER_ACCOUNT)
    request = {
        "Requester": {"VpcId": vpc1},
        "Accepter": {"VpcId": vpc2, "AccountId": MEMBER_ACCOUNT},
    }
    # When the chain runs
    done = create_chain(request, "exec-1", access, settings)
    # Then the peering joins the two accounts and each side has its route
    pcx = done["VpcPeeringConnectionId"]
    member = ec2_in(MEMBER_ACCOUNT)
    item = member.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ][0]
    assert item["Status"]["Code"] == "active"
    assert (item["RequesterVpcInfo"]["OwnerId"], item["AccepterVpcInfo"]["OwnerId"]) == (
        HUB_ACCOUNT,
        MEMBER_ACCOUNT,
    )
    assert routes_of(member, main_table(vpc2, account=MEMBER_ACCOUNT))["10.0.0.0/16"] == pcx
    assert routes_of(ec2_in(HUB_ACCOUNT), main_table(vpc1))["172.16.0.0/16"] == pcx
    # And the accepter VPC is not visible to the hub's own credentials
    assert vpc2 not in {v["VpcId"] for v in ec2_in(HUB_ACCOUNT).describe_vpcs()["Vpcs"]}


def test_explicit_role_must_be_the_member_role(
    tutorial: TutorialVpcs, access: Access, settings: Settings
) -> None:
    request = {
        "Requester": {"VpcId": tutorial.vpc1},
        "Accepter": {
            "VpcId": tutorial.vpc2,
            "RoleArn": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/Admin",
        },
    }
    with pytest.raises(InvalidInput, match=r"^Accepter\.RoleArn"):
        peering.plan(request, "exec-1", access, settings)


@pytest.mark.parametrize(("group", "warned"), [(None, True), ("blue", False)])
def test_verify_reads_for_warnings_only_where_a_person_reads_them(
    tutorial: TutorialVpcs,
    access: Access,
    settings: Settings,
    ec2_calls: list[str],
    group: str | None,
    warned: bool,
) -> None:
    # Given a finished create: an explicit one, or a group's pair (a reconcile's child, whose
    # output nobody reads pair by pair)
    done = create_chain(tutorial_request(tutorial), "exec-1", access, settings)
    done["Group"] = group
    ec2_calls.clear()
    # When verified
    verified = run_step(peering.verify, done, access, settings)
    # Then only the explicit create reads network ACLs, flow logs and groups for its warnings
    reads = {"DescribeNetworkAcls", "DescribeFlowLogs", "DescribeSecurityGroups"}
    assert (reads <= set(ec2_calls)) is warned, ec2_calls
    assert bool(reads & set(ec2_calls)) is warned, ec2_calls
    assert bool(verified["Warnings"]) is warned
