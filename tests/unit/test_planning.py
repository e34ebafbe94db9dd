"""Pure planning rules, on EC2 data built by hand (no AWS at all)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpc_peering.ec2 import Peering, PeeringSide, Route, RouteTable, Vpc
from vpc_peering.errors import (
    AssociationConflict,
    CidrNotAllowed,
    CidrOverlap,
    InvalidInput,
    QuotaExceeded,
    RouteConflict,
    VpcNotFound,
)
from vpc_peering.models.documents import Side
from vpc_peering.models.requests import DedicatedRouteTableRequest
from vpc_peering.planning import (
    Conflicts,
    check_allowed_cidrs,
    check_no_overlap,
    check_peering_quota,
    choose_existing,
    destinations,
    plan_dedicated,
    plan_routes,
    route_state,
    select_tables,
)
from vpc_peering.settings import Settings

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111111111111"
REGION = "us-east-1"
PCX = "pcx-0000000000000000a"


def vpc(vpc_id: str, *cidrs: str, ipv6: tuple[str, ...] = ()) -> Vpc:
    return Vpc(vpc_id, ACCOUNT, list(cidrs), list(ipv6), {})


def route(destination: str, target: str = "local", state: str = "active") -> Route:
    return Route(
        destination=destination,
        target=target,
        state=state,
        origin="CreateRoute",
        peering_id=target if target.startswith("pcx-") else None,
    )


def table(
    rtb: str,
    *routes: Route,
    vpc_id: str = "vpc-1",
    main: bool = False,
    subnets: tuple[str, ...] = (),
    tags: dict[str, str] | None = None,
) -> RouteTable:
    return RouteTable(
        route_table_id=rtb,
        vpc_id=vpc_id,
        main=main,
        subnet_ids=sorted(subnets),
        associations={s: f"rtbassoc-{s}" for s in subnets},
        routes=list(routes) or [route("10.0.0.0/16")],
        tags=tags or {},
    )


def side(vpc_id: str = "vpc-1", **fields: Any) -> Side:
    return Side(vpc_id=vpc_id, account_id=ACCOUNT, region=REGION, **fields)


def peering(
    pcx: str,
    status: str,
    requester: tuple[str, str, str] = ("vpc-1", ACCOUNT, REGION),
    accepter: tuple[str, str, str] = ("vpc-2", ACCOUNT, REGION),
) -> Peering:
    return Peering(
        peering_id=pcx,
        status=status,
        message="",
        requester=PeeringSide(*requester, allow_dns=False),
        accepter=PeeringSide(*accepter, allow_dns=False),
    )


# ------------------------------------------------------------------------------- overlap
def test_disjoint_vpcs_do_not_overlap() -> None:
    # Given the tutorial's VPCs / When checked / Then no error
    check_no_overlap(vpc("vpc-1", "10.0.0.0/16"), vpc("vpc-2", "172.16.0.0/16"))


def test_primary_cidrs_overlapping_is_refused_naming_both() -> None:
    # Given two VPCs whose primary CIDRs overlap
    with pytest.raises(CidrOverlap) as caught:
        check_no_overlap(vpc("vpc-1", "10.0.0.0/16"), vpc("vpc-2", "10.0.128.0/17"))
    # Then both VPCs and CIDRs are named
    message = str(caught.value)
    assert "vpc-1" in message
    assert "10.0.0.0/16" in message
    assert "vpc-2" in message
    assert "10.0.128.0/17" in message


def test_secondary_cidr_overlap_is_refused() -> None:
    # Given disjoint primaries but an accepter secondary CIDR inside the requester's range
    requester = vpc("vpc-1", "10.0.0.0/16", "100.64.0.0/16")
    accepter = vpc("vpc-2", "172.16.0.0/16", "100.64.10.0/24")
    # When checked / Then refused naming the secondary blocks
    with pytest.raises(CidrOverlap, match=r"100\.64\.0\.0/16 overlaps .* 100\.64\.10\.0/24"):
        check_no_overlap(requester, accepter)


def test_ipv6_overlap_is_refused() -> None:
    requester = vpc("vpc-1", "10.0.0.0/16", ipv6=("2600:1f18:aaaa:bb00::/56",))
    accepter = vpc("vpc-2", "172.16.0.0/16", ipv6=("2600:1f18:aaaa:bb00::/64",))
    with pytest.raises(CidrOverlap, match="2600:1f18:aaaa:bb00::/56"):
        check_no_overlap(requester, accepter)


def test_distinct_ipv6_blocks_do_not_overlap() -> None:
    requester = vpc("vpc-1", "10.0.0.0/16", ipv6=("2600:1f18:aaaa:bb00::/56",))
    accepter = vpc("vpc-2", "172.16.0.0/16", ipv6=("2600:1f18:aaaa:cc00::/56",))
    check_no_overlap(requester, accepter)


ipv4_networks = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
    st.ip_addresses(v=4),
    st.integers(min_value=8, max_value=28),
)


@given(ipv4_networks, ipv4_networks)
def test_overlap_check_agrees_with_ipaddress(a: ipaddress.IPv4Network, b: Any) -> None:
    # Given any two IPv4 networks
    overlaps = a.overlaps(b)
    # When checked both ways round
    for first, second in ((a, b), (b, a)):
        try:
            check_no_overlap(vpc("vpc-1", str(first)), vpc("vpc-2", str(second)))
            refused = False
        except CidrOverlap:
            refused = True
        # Then it refuses exactly the overlapping pairs
        assert refused == overlaps


# ---------------------------------------------------------------------------- destinations
def test_default_destinations_are_every_ipv4_cidr_of_the_peer() -> None:
    # Given a peer with a primary and a secondary CIDR
    peer = vpc("vpc-2", "172.16.0.0/16", "172.17.0.0/16")
    # When the destinations are computed
    # Then both are routed, in EC2's order
    assert destinations(side(), "Requester", peer) == ["172.16.0.0/16", "172.17.0.0/16"]


def test_ipv6_destinations_only_when_asked_and_both_sides_have_ipv6() -> None:
    peer = vpc("vpc-2", "172.16.0.0/16", ipv6=("2600:1f18::/56",))
    mine_v6 = ["2600:1f19::/56"]
    # Given Ipv6 asked, and both sides have IPv6: the peer's IPv6 block is routed too
    assert destinations(side(ipv6=True, ipv6_cidr_blocks=mine_v6), "Requester", peer) == [
        "172.16.0.0/16",
        "2600:1f18::/56",
    ]
    # Given Ipv6 not asked: IPv4 only
    assert destinations(side(ipv6_cidr_blocks=mine_v6), "Requester", peer) == ["172.16.0.0/16"]


def test_ipv6_asked_where_a_side_has_no_ipv6_cidr_names_the_side_and_the_vpc() -> None:
    peer = vpc("vpc-2", "172.16.0.0/16", ipv6=("2600:1f18::/56",))
    # Given Ipv6 asked but this side has no IPv6: refused, not silently IPv4 only
    with pytest.raises(InvalidInput, match=r"Requester\.Ipv6: true, but vpc-1 has no IPv6 CIDR"):
        destinations(side(ipv6=True), "Requester", peer)
    # Given Ipv6 asked but the peer has no IPv6: refused naming the peer
    no_v6_peer = vpc("vpc-2", "172.16.0.0/16")
    mine = side(ipv6=True, ipv6_cidr_blocks=["2600:1f19::/56"])
    with pytest.raises(InvalidInput, match=r"Accepter\.Ipv6: true, but vpc-2 has no IPv6 CIDR"):
        destinations(mine, "Accepter", no_v6_peer)


def test_requested_destinations_inside_the_peer_are_kept() -> None:
    peer = vpc("vpc-2", "172.16.0.0/16", "172.17.0.0/16", ipv6=("2600:1f18::/56",))
    wanted = ["172.16.1.0/24", "172.17.0.0/16", "2600:1f18::/64"]
    assert destinations(side(destination_cidrs=wanted), "Accepter", peer) == wanted


def test_requested_destination_outside_the_peer_is_refused_naming_its_index() -> None:
    # Given a second destination outside every CIDR of the peer
    peer = vpc("vpc-2", "172.16.0.0/16")
    wanted = ["172.16.1.0/24", "172.18.0.0/24"]
    # When computed
    with pytest.raises(InvalidInput) as caught:
        destinations(side(destination_cidrs=wanted), "Accepter", peer)
    # Then the field, its index and the peer's CIDRs are named
    message = str(caught.value)
    assert message.startswith("Accepter.DestinationCidrs[1]: 172.18.0.0/24")
    assert "172.16.0.0/16" in message


def test_requested_destination_wider_than_the_peer_is_refused() -> None:
    peer = vpc("vpc-2", "172.16.0.0/16")
    with pytest.raises(InvalidInput, match=r"Requester\.DestinationCidrs\[0\]"):
        destinations(side(destination_cidrs=["172.16.0.0/12"]), "Requester", peer)


# ----------------------------------------------------------------------------- route_state
LOCAL = route("10.0.0.0/16")


def test_free_destination_is_planned() -> None:
    rtb = table("rtb-1", LOCAL, route("0.0.0.0/0", "igw-1"))
    assert route_state("Requester", rtb, "172.16.0.0/16", None) == "planned"


def test_same_destination_via_another_target_is_a_conflict_naming_table_and_target() -> None:
    # Given a table already routing the peer's CIDR to an internet gateway
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", "igw-1"))
    # When the route is planned
    with pytest.raises(RouteConflict) as caught:
        route_state("Requester", rtb, "172.16.0.0/16", None)
    # Then the table and the other target are named
    assert "rtb-1" in str(caught.value)
    assert "igw-1" in str(caught.value)


def test_same_destination_via_another_peering_is_a_conflict() -> None:
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", "pcx-0000000000000000b"))
    with pytest.raises(RouteConflict, match="pcx-0000000000000000b"):
        route_state("Requester", rtb, "172.16.0.0/16", PCX)


def test_blackhole_route_to_the_destination_is_a_conflict() -> None:
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", "pcx-0000000000000000b", "blackhole"))
    with pytest.raises(RouteConflict, match="blackhole"):
        route_state("Requester", rtb, "172.16.0.0/16", PCX)


def test_same_destination_via_this_peering_is_present() -> None:
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", PCX))
    assert route_state("Requester", rtb, "172.16.0.0/16", PCX) == "present"


def test_route_via_this_peering_without_a_known_peering_is_a_conflict() -> None:
    # Given no peering chosen yet (a new one will be created), an existing peering route
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", PCX))
    # Then it belongs to someone else's peering: refuse
    with pytest.raises(RouteConflict):
        route_state("Requester", rtb, "172.16.0.0/16", None)


@pytest.mark.parametrize("peering_id", [None, PCX])
def test_narrower_than_an_existing_route_to_another_target_is_a_conflict(
    peering_id: str | None,
) -> None:
    # Given a /12 to a transit gateway (first run: no peering yet; rerun: a peering exists)
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/12", "tgw-1"))
    # When a /16 inside it is planned to the peering
    with pytest.raises(RouteConflict) as caught:
        route_state("Requester", rtb, "172.16.0.0/16", peering_id)
    # Then the wider route and its target are named
    assert "172.16.0.0/12" in str(caught.value)
    assert "tgw-1" in str(caught.value)


def test_allow_more_specific_routes_plans_a_narrower_route_and_names_what_it_narrows() -> None:
    # Given a summary route to a transit gateway, and the side allowing more specific routes
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/12", "tgw-1"))
    # When the peer's /16 is planned
    [entry] = plan_routes("Requester", [rtb], ["172.16.0.0/16"], None, 50, allow_narrower=True)
    # Then it is planned, and the route it narrows is named
    assert (entry.state, entry.narrows) == ("planned", "172.16.0.0/12 via tgw-1")


def test_allow_more_specific_routes_never_allows_the_same_destination_elsewhere() -> None:
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/16", "tgw-1"))
    with pytest.raises(RouteConflict, match=r"already has a route to 172\.16\.0\.0/16 via tgw-1"):
        route_state("Requester", rtb, "172.16.0.0/16", None, allow_narrower=True)


def test_a_refused_plan_names_every_conflicting_route_not_only_the_first() -> None:
    # Given two tables, each with routes the plan would collide with
    a = table("rtb-a", LOCAL, route("172.16.0.0/16", "igw-1"), route("172.17.0.0/16", "igw-1"))
    b = table("rtb-b", LOCAL, route("172.16.0.0/12", "tgw-1"))
    conflicts = Conflicts()
    # When both tables are planned, the conflicts gathered
    plan_routes("Requester", [a, b], ["172.16.0.0/16", "172.17.0.0/16"], None, 50, conflicts)
    # Then one error names each table and route
    with pytest.raises(RouteConflict) as caught:
        conflicts.check()
    message = str(caught.value)
    assert message.startswith("4 conflicts: ")
    for expected in (
        "rtb-a already has a route to 172.16.0.0/16 via igw-1",
        "rtb-a already has a route to 172.17.0.0/16 via igw-1",
        "rtb-b: 172.16.0.0/16 is inside the existing route 172.16.0.0/12 via tgw-1",
        "rtb-b: 172.17.0.0/16 is inside the existing route 172.16.0.0/12 via tgw-1",
    ):
        assert expected in message


def test_narrower_than_an_ipv6_route_to_another_target_is_a_conflict() -> None:
    rtb = table("rtb-1", LOCAL, route("2600:1f18::/48", "igw-1"))
    with pytest.raises(RouteConflict, match="2600:1f18::/48"):
        route_state("Requester", rtb, "2600:1f18::/56", None)


def test_wider_than_an_existing_narrow_route_is_planned() -> None:
    # Longest prefix wins: the existing /24 keeps its traffic
    rtb = table("rtb-1", LOCAL, route("172.16.5.0/24", "igw-1"))
    assert route_state("Requester", rtb, "172.16.0.0/16", None) == "planned"


@pytest.mark.parametrize("default", ["0.0.0.0/0", "::/0"])
def test_default_route_is_exempt(default: str) -> None:
    rtb = table("rtb-1", LOCAL, route(default, "igw-1"))
    destination = "2600:1f18::/56" if ":" in default else "172.16.0.0/16"
    assert route_state("Requester", rtb, destination, None) == "planned"


def test_local_route_is_ignored() -> None:
    # Given a local route covering the destination (and a peering id, so only is_local skips it)
    rtb = table("rtb-1", route("10.0.0.0/8"))
    assert route_state("Requester", rtb, "10.1.0.0/16", PCX) == "planned"


def test_narrower_than_a_route_via_this_peering_is_planned() -> None:
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/12", PCX))
    assert route_state("Requester", rtb, "172.16.0.0/16", PCX) == "planned"


def test_prefix_list_routes_and_other_versions_are_ignored() -> None:
    rtb = table("rtb-1", LOCAL, route("pl-12345678", "vpce-1"), route("2600::/16", "igw-1"))
    assert route_state("Requester", rtb, "172.16.0.0/16", None) == "planned"


# --------------------------------------------------------------------------- select_tables
MAIN = table("rtb-main", vpc_id="vpc-1", main=True)
SUBNET_TABLE = table("rtb-a", vpc_id="vpc-1", subnets=("subnet-aaaaaaaa",))
SPARE = table("rtb-b", vpc_id="vpc-1")
FOREIGN = table("rtb-x", vpc_id="vpc-9", main=True)
TABLES = [MAIN, SUBNET_TABLE, SPARE, FOREIGN]
SUBNETS = {"subnet-aaaaaaaa": "vpc-1", "subnet-11111111": "vpc-1"}


def ids(tables: list[RouteTable]) -> list[str]:
    return [t.route_table_id for t in tables]


def test_select_all_is_every_table_of_this_vpc() -> None:
    assert ids(select_tables(side(), "Requester", TABLES, SUBNETS)) == [
        "rtb-main",
        "rtb-a",
        "rtb-b",
    ]


def test_select_main() -> None:
    chosen = select_tables(side(route_tables="main"), "Requester", TABLES, SUBNETS)
    assert ids(chosen) == ["rtb-main"]


def test_select_main_without_a_main_table_names_the_field() -> None:
    with pytest.raises(VpcNotFound, match=r"^Accepter\.RouteTables"):
        select_tables(side(route_tables="main"), "Accepter", [SPARE], SUBNETS)


def test_select_none() -> None:
    assert select_tables(side(route_tables="none"), "Requester", TABLES, SUBNETS) == []


def test_dedicated_table_alone_selects_none() -> None:
    dedicated = DedicatedRouteTableRequest(subnet_ids=["subnet-11111111"])
    assert select_tables(side(dedicated_route_table=dedicated), "Requester", TABLES, SUBNETS) == []


def test_select_ids_in_given_order() -> None:
    chosen = select_tables(side(route_table_ids=["rtb-b", "rtb-main"]), "Requester", TABLES, {})
    assert ids(chosen) == ["rtb-b", "rtb-main"]


def test_select_unknown_id_names_the_field_index() -> None:
    # Given the second id is a table of another VPC
    with pytest.raises(VpcNotFound) as caught:
        select_tables(side(route_table_ids=["rtb-a", "rtb-x"]), "Requester", TABLES, {})
    # Then its index is named
    assert str(caught.value).startswith("Requester.RouteTableIds[1]: rtb-x")


def test_select_subnets_uses_explicit_then_implicit_main_association() -> None:
    # Given one subnet with its own table and one that uses the main table implicitly
    selected = side(subnet_ids=["subnet-aaaaaaaa", "subnet-11111111"])
    # When selected
    chosen = select_tables(selected, "Requester", TABLES, SUBNETS)
    # Then both tables are chosen, once each
    assert ids(chosen) == ["rtb-a", "rtb-main"]


def test_select_subnets_sharing_a_table_chooses_it_once() -> None:
    subnets = {"subnet-11111111": "vpc-1", "subnet-22222222": "vpc-1"}
    chosen = select_tables(
        side(subnet_ids=["subnet-11111111", "subnet-22222222"]), "Accepter", TABLES, subnets
    )
    assert ids(chosen) == ["rtb-main"]


def test_select_unknown_subnet_names_the_field_index() -> None:
    with pytest.raises(VpcNotFound) as caught:
        select_tables(
            side(subnet_ids=["subnet-aaaaaaaa", "subnet-ffffffff"]), "Accepter", TABLES, SUBNETS
        )
    assert str(caught.value).startswith("Accepter.SubnetIds[1]: subnet-ffffffff")


def test_select_subnet_without_any_table_names_the_field_index() -> None:
    with pytest.raises(VpcNotFound, match=r"^Requester\.SubnetIds\[0\]"):
        select_tables(side(subnet_ids=["subnet-11111111"]), "Requester", [SPARE], SUBNETS)


# ----------------------------------------------------------------------------- plan_routes
def test_plan_routes_one_entry_per_table_and_destination() -> None:
    tables = [table("rtb-1", LOCAL), table("rtb-2", LOCAL, route("172.16.0.0/16", PCX))]
    entries = plan_routes("Requester", tables, ["172.16.0.0/16", "172.17.0.0/16"], PCX, 50)
    assert [(e.route_table_id, e.destination, e.state) for e in entries] == [
        ("rtb-1", "172.16.0.0/16", "planned"),
        ("rtb-1", "172.17.0.0/16", "planned"),
        ("rtb-2", "172.16.0.0/16", "present"),
        ("rtb-2", "172.17.0.0/16", "planned"),
    ]
    assert all(e.side == "Requester" and not e.dedicated for e in entries)


def test_plan_routes_over_quota_is_refused_naming_table_and_setting() -> None:
    # Given a table with 3 routes and a quota of 4
    full = table("rtb-1", LOCAL, route("0.0.0.0/0", "igw-1"), route("192.168.0.0/16", "tgw-1"))
    # When two new routes are planned
    with pytest.raises(QuotaExceeded) as caught:
        plan_routes("Accepter", [full], ["172.16.0.0/16", "172.17.0.0/16"], None, 4)
    # Then the table and the setting are named
    assert "rtb-1" in str(caught.value)
    assert "MaxRoutesPerTable" in str(caught.value)


def test_plan_routes_at_quota_exactly_is_allowed() -> None:
    full = table("rtb-1", LOCAL, route("0.0.0.0/0", "igw-1"))
    assert len(plan_routes("Accepter", [full], ["172.16.0.0/16"], None, 3)) == 1


def test_plan_routes_present_routes_do_not_count_against_the_quota() -> None:
    # Given a table at its quota whose route to the peer is already there
    full = table("rtb-1", LOCAL, route("172.16.0.0/16", PCX))
    # Then planning it again adds nothing and is allowed
    entries = plan_routes("Accepter", [full], ["172.16.0.0/16"], PCX, 2)
    assert [e.state for e in entries] == ["present"]


def test_plan_routes_conflict_propagates() -> None:
    with pytest.raises(RouteConflict):
        plan_routes(
            "Requester",
            [table("rtb-1", route("172.16.0.0/16", "igw-1"))],
            ["172.16.0.0/16"],
            None,
            50,
        )


# -------------------------------------------------------------------------- plan_dedicated
def test_plan_dedicated_new_table_routes_every_destination() -> None:
    dedicated_side = side(
        dedicated_route_table=DedicatedRouteTableRequest(subnet_ids=["subnet-11111111"])
    )
    table_plan, routes = plan_dedicated(
        dedicated_side, "Requester", TABLES, SUBNETS, None, ["172.16.0.0/16"], None
    )
    assert table_plan is not None
    assert (table_plan.route_table_id, table_plan.state, table_plan.subnet_ids) == (
        None,
        "planned",
        ["subnet-11111111"],
    )
    assert [(r.route_table_id, r.destination, r.dedicated) for r in routes] == [
        (None, "172.16.0.0/16", True)
    ]


def test_plan_dedicated_subnet_with_its_own_table_is_an_association_conflict() -> None:
    dedicated_side = side(
        dedicated_route_table=DedicatedRouteTableRequest(subnet_ids=["subnet-aaaaaaaa"])
    )
    with pytest.raises(AssociationConflict) as caught:
        plan_dedicated(dedicated_side, "Requester", TABLES, SUBNETS, None, ["172.16.0.0/16"], None)
    assert str(caught.value).startswith(
        "Requester.DedicatedRouteTable.SubnetIds[0]: subnet-aaaaaaaa"
    )
    assert "rtb-a" in str(caught.value)


def test_plan_dedicated_existing_table_is_present_with_its_associations() -> None:
    # Given the table an earlier run made, associated and routing to the peering
    owned = table("rtb-d", LOCAL, route("172.16.0.0/16", PCX), subnets=("subnet-11111111",))
    dedicated_side = side(
        dedicated_route_table=DedicatedRouteTableRequest(subnet_ids=["subnet-11111111"])
    )
    # When planned again
    table_plan, routes = plan_dedicated(
        dedicated_side, "Requester", [*TABLES, owned], SUBNETS, owned, ["172.16.0.0/16"], PCX
    )
    # Then the table and its route are present, with the association recorded
    assert table_plan is not None
    assert (table_plan.route_table_id, table_plan.state) == ("rtb-d", "present")
    assert [(a.subnet_id, a.association_id) for a in table_plan.associations] == [
        ("subnet-11111111", "rtbassoc-subnet-11111111")
    ]
    assert [(r.route_table_id, r.state, r.dedicated) for r in routes] == [
        ("rtb-d", "present", True)
    ]


# ------------------------------------------------------------------------- choose_existing
REQ, ACC = side("vpc-1"), side("vpc-2")


def test_choose_existing_prefers_active_over_pending() -> None:
    found = choose_existing(
        [
            peering("pcx-0000000000000000a", "pending-acceptance"),
            peering("pcx-0000000000000000b", "active"),
            peering("pcx-0000000000000000c", "initiating-request"),
        ],
        REQ,
        ACC,
    )
    assert found is not None
    assert found.peering_id == "pcx-0000000000000000b"


def test_choose_existing_matches_the_pair_reversed() -> None:
    reversed_pair = peering(
        "pcx-0000000000000000a",
        "active",
        requester=("vpc-2", ACCOUNT, REGION),
        accepter=("vpc-1", ACCOUNT, REGION),
    )
    found = choose_existing([reversed_pair], REQ, ACC)
    assert found is reversed_pair


@pytest.mark.parametrize("status", ["deleted", "deleting", "failed", "rejected", "expired"])
def test_choose_existing_ignores_peerings_that_are_gone(status: str) -> None:
    assert choose_existing([peering("pcx-0000000000000000a", status)], REQ, ACC) is None


def test_choose_existing_ignores_other_pairs_accounts_and_regions() -> None:
    others = [
        peering("pcx-0000000000000000a", "active", accepter=("vpc-3", ACCOUNT, REGION)),
        peering("pcx-0000000000000000b", "active", accepter=("vpc-2", OTHER_ACCOUNT, REGION)),
        peering("pcx-0000000000000000c", "active", accepter=("vpc-2", ACCOUNT, "eu-west-1")),
    ]
    assert choose_existing(others, REQ, ACC) is None


def test_choose_existing_among_equals_is_deterministic() -> None:
    pending = [
        peering(p, "pending-acceptance") for p in ("pcx-000000000000000b2", "pcx-000000000000000b1")
    ]
    found = choose_existing(pending, REQ, ACC)
    assert found is not None
    assert found.peering_id == "pcx-000000000000000b1"


# -------------------------------------------------------------------- check_peering_quota
def test_peering_quota_counts_live_peerings_of_the_vpc() -> None:
    # Given two live peerings of vpc-1 (one listed twice, as two accounts report it) and a dead one
    peerings = [
        peering("pcx-0000000000000000a", "active", accepter=("vpc-3", ACCOUNT, REGION)),
        peering("pcx-0000000000000000a", "active", accepter=("vpc-3", ACCOUNT, REGION)),
        peering("pcx-0000000000000000b", "pending-acceptance", accepter=("vpc-4", ACCOUNT, REGION)),
        peering("pcx-0000000000000000c", "deleted", accepter=("vpc-5", ACCOUNT, REGION)),
        peering(
            "pcx-0000000000000000d",
            "active",
            ("vpc-7", ACCOUNT, REGION),
            ("vpc-8", ACCOUNT, REGION),
        ),
    ]
    # Then a quota of 3 leaves room, a quota of 2 does not
    check_peering_quota(REQ, "Requester", peerings, 3)
    with pytest.raises(QuotaExceeded) as caught:
        check_peering_quota(REQ, "Requester", peerings, 2)
    assert str(caught.value).startswith("Requester.VpcId: vpc-1 already has 2")
    assert "MaxPeeringsPerVpc" in str(caught.value)


def test_a_groups_narrowing_conflict_says_what_a_group_can_do() -> None:
    # Given a summary route to a transit gateway that a group's peering route would narrow
    rtb = table("rtb-1", LOCAL, route("172.16.0.0/12", "tgw-1"))
    # When a group's pair plans its route / Then the remedy is the group's, not a create field
    with pytest.raises(RouteConflict) as raised:
        route_state("Requester", rtb, "172.16.0.0/16", None, group="blue")
    assert "AllowMoreSpecificRoutes" not in str(raised.value)
    assert "vpc-peering:route-tables=main or none" in str(raised.value)
    with pytest.raises(RouteConflict, match=r"Requester\.AllowMoreSpecificRoutes"):
        route_state("Requester", rtb, "172.16.0.0/16", None)


# ------------------------------------------------------------------- AllowedPeerCidrs
def _settings(cidrs: str | None = None) -> Settings:
    env = {"STACK_NAME": "s", "HUB_ACCOUNT_ID": ACCOUNT, "AWS_REGION": "us-east-1"}
    env["MEMBER_ROLE_NAME"] = "r"
    if cidrs is not None:
        env["ALLOWED_PEER_CIDRS"] = cidrs
    return Settings.from_env(env)


@pytest.mark.parametrize("public", ["8.8.8.0/24", "52.216.0.0/16"])
def test_a_peer_cidr_outside_allowed_peer_cidrs_names_the_side_the_cidr_and_the_parameter(
    public: str,
) -> None:
    peer = vpc("vpc-2", "172.16.0.0/16", public)
    with pytest.raises(CidrNotAllowed) as caught:
        check_allowed_cidrs(["172.16.0.0/16", public], "Accepter", peer, _settings())
    assert str(caught.value).startswith(
        f"Accepter CIDR {public} of vpc-2 is not inside AllowedPeerCidrs"
    )


def test_private_cidrs_and_amazon_ipv6_are_allowed_and_other_ipv6_only_when_listed() -> None:
    amazon = vpc("vpc-2", "10.1.0.0/16", ipv6=("2600:1f18::/56",))
    check_allowed_cidrs(["10.1.0.0/16", "2600:1f18::/56"], "Requester", amazon, _settings())
    byoip = vpc("vpc-3", "10.2.0.0/16", ipv6=("2001:db8::/56",))
    byoip.own_ipv6_cidr_blocks = ["2001:db8::/56"]
    with pytest.raises(CidrNotAllowed, match="Requester CIDR 2001:db8::/56"):
        check_allowed_cidrs(["2001:db8::/56"], "Requester", byoip, _settings())
    listed = _settings("10.0.0.0/8,2001:db8::/32")
    check_allowed_cidrs(["10.2.0.0/16", "2001:db8::/56"], "Requester", byoip, listed)


# ------------------------------------------------------------------- prefix lists
def test_a_destination_inside_a_prefix_list_route_is_a_narrower_route_naming_the_list() -> None:
    # Given a route to an S3 prefix list (its entries read with the table) via an endpoint
    s3 = Route("pl-63a5400a", "vpce-0abc", "active", "CreateRoute", None, ["52.216.0.0/15"])
    rtb = table("rtb-1", LOCAL, s3)
    # When a peer CIDR inside an entry is routed / Then it is a RouteConflict naming the list
    with pytest.raises(RouteConflict, match=r"inside an entry of prefix list pl-63a5400a via vpce"):
        route_state("Requester", rtb, "52.216.0.0/16", None)
    with pytest.raises(RouteConflict, match=r"is an entry of prefix list pl-63a5400a"):
        route_state("Requester", rtb, "52.216.0.0/15", None)
    # Unless AllowMoreSpecificRoutes; and a destination outside every entry is free
    assert route_state("Requester", rtb, "52.216.0.0/16", None, allow_narrower=True) == "planned"
    assert route_state("Requester", rtb, "172.16.0.0/16", None) == "planned"
