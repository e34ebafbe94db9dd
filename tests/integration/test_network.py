"""Tag-triggered networks through the emulator: VPC tags declare groups, and the reconcile
machine (the real ASL, the real handlers) makes the peerings follow them, triggered by tag
change events (forwarded from member accounts and regions as on AWS), by its schedule, or by
hand.

One emulator for the module: its parameters put the boundary at three accounts and two regions,
with the member forwarding template deployed in every other account and region. Tag changes
start reconciles of everything in scope, so each test uses groups of its own and waits for the
reconciles its tags started before asserting (``settled``).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator

import pytest

from emulator.testing import EmulatorHandle, running_emulator
from tools.members import forwarding_stacks

from .conftest import HUB, MEMBER, OUTSIDE, UNTRUSTED
from .network import Network, Tagged

PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER},{UNTRUSTED}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ManagedRegions": "us-east-1,us-west-2",
    "TagEventWindowSeconds": "2",
    "MaxParallelPairs": "4",
}


@pytest.fixture(scope="module")
def net() -> Iterator[EmulatorHandle]:
    stacks = forwarding_stacks(PARAMETERS)
    # An account outside the boundary that forwards anyway (a misconfigured or rogue member):
    # the hub bus's policy must refuse it.
    stacks += forwarding_stacks({"AllowedAccountIds": OUTSIDE}, hub_account=HUB)[:1]
    with running_emulator(parameter_overrides=PARAMETERS, extra_stacks=stacks) as handle:
        yield handle


@pytest.fixture
def network(net: EmulatorHandle) -> Network:
    return Network(net)


def group_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def pair(a: Tagged, b: Tagged) -> frozenset[tuple[str, str, str]]:
    return frozenset({a.key, b.key})


def assert_meshed(network: Network, group: str, *vpcs: Tagged) -> None:
    """Every pair of these VPCs is peered for the group, and every route table of each VPC
    routes every peer's CIDR to that pair's peering."""
    peerings = network.peerings(group)
    assert set(peerings) == {pair(a, b) for a, b in itertools.combinations(vpcs, 2)}
    for vpc in vpcs:
        for table, routes in network.routes(vpc).items():
            for peer in vpcs:
                if peer is not vpc:
                    expected = peerings[pair(vpc, peer)]["VpcPeeringConnectionId"]
                    assert routes.get(peer.cidr) == expected, (table, peer.cidr, routes)


# ----------------------------------------------------------------------------------- tags
def test_three_tagged_vpcs_form_a_mesh_with_routes_in_every_table(network: Network) -> None:
    # Given three VPCs with two route tables each
    group = group_name()
    before = network.arns()
    vpcs = [network.vpc(tables=2) for _ in range(3)]
    # When they are tagged into one mesh, and nothing else is done
    for vpc in vpcs:
        network.tag(vpc, mesh=group)
    results = network.settled(before)
    # Then the reconcile their tag changes started peered them all, routed in every table
    assert any(r.succeeded and r.output["Created"] == 3 for r in results), results
    assert_meshed(network, group, *vpcs)
    # And every peering is tagged for the group, accepted through the accept policy
    assert {p["Status"]["Code"] for p in network.peerings(group).values()} == {"active"}


def test_untagging_one_vpc_removes_its_peerings_and_keeps_the_others(network: Network) -> None:
    # Given a tagged mesh of three that converged
    group = group_name()
    before = network.arns()
    a, b, c = (network.vpc(mesh=group) for _ in range(3))
    network.settled(before)
    assert len(network.peerings(group)) == 3
    # When one VPC's mesh tag is removed
    before = network.arns()
    network.untag(c, "mesh")
    results = network.settled(before)
    # Then its two peerings and their routes are gone; the other pair stays
    assert any(r.succeeded and r.output["Removed"] == 2 for r in results), results
    assert set(network.peerings(group)) == {pair(a, b)}
    assert not any(a.cidr in routes or b.cidr in routes for routes in network.routes(c).values())
    assert_meshed(network, group, a, b)


def test_a_member_account_vpc_in_another_region_joins_by_its_tag_alone(
    network: Network,
) -> None:
    # Given a hub VPC in the mesh
    group = group_name()
    before = network.arns()
    hub = network.vpc(mesh=group)
    network.settled(before)
    # When a VPC of a member account, in another region, is tagged into the same mesh (its
    # tag change is forwarded from that account's default bus to the hub's bus)
    before = network.arns()
    member = network.vpc(account=MEMBER, region="us-west-2", mesh=group)
    network.settled(before)
    # Then they are peered across account and region, routed on both sides
    assert_meshed(network, group, hub, member)


def test_a_tag_change_in_an_account_outside_the_boundary_never_reaches_the_hub(
    network: Network, net: EmulatorHandle
) -> None:
    # Given an account outside AllowedAccountIds that forwards its tag changes anyway
    net.clear_refused_events()
    # When a VPC there is tagged
    outsider = network.vpc(account=OUTSIDE, mesh=group_name())
    # Then the hub bus's policy refuses the event, and nothing is peered with it
    refused = []
    for _ in range(40):
        refused = [e for e in net.refused_events() if e.get("from_account") == OUTSIDE]
        if refused:
            break
        time.sleep(0.25)
    assert refused, "the forwarded event was not refused"
    ec2 = network.ec2(OUTSIDE)
    assert (
        ec2.describe_vpc_peering_connections(
            Filters=[{"Name": "requester-vpc-info.vpc-id", "Values": [outsider.vpc_id]}]
        )["VpcPeeringConnections"]
        == []
    )


def test_a_burst_of_tag_changes_starts_one_reconcile_per_window(network: Network) -> None:
    # Given six VPCs tagged into one mesh in a loop, as fast as the API answers
    group = group_name()
    before = network.arns()
    vpcs = [network.vpc() for _ in range(6)]
    started = time.monotonic()
    for vpc in vpcs:
        network.tag(vpc, mesh=group)
    elapsed = time.monotonic() - started
    results = network.settled(before, timeout=240)
    # Then one reconcile per time window (2 s) the burst touched started, not one per VPC
    windows = int(elapsed // 2) + 2
    assert len(results) <= windows < len(vpcs), (len(results), elapsed)
    # And the 15 pairs were each created once
    assert sum(r.output["Created"] for r in results if r.output) == 15
    assert_meshed(network, group, *vpcs)


# ------------------------------------------------------------------------------ by hand
def test_hub_and_spoke_peers_each_spoke_with_each_hub_only(network: Network) -> None:
    group = group_name()
    before = network.arns()
    hub = network.vpc(hub=group)
    spokes = [network.vpc(spoke=group), network.vpc(region="us-west-2", spoke=group)]
    network.settled(before)
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert (result.output["Desired"], result.output["Unchanged"]) == (2, 2)
    assert set(network.peerings(group)) == {pair(hub, s) for s in spokes}


def test_overlapping_members_fail_their_pairs_and_the_others_are_made(network: Network) -> None:
    # Given a mesh of three where c overlaps a (c is the upper half of a's /16)
    group = group_name()
    before = network.arns()
    a = network.vpc(mesh=group)
    b = network.vpc(mesh=group)
    half = a.cidr.replace(".0.0/16", ".128.0/17")
    c = Tagged(network.ec2().create_vpc(CidrBlock=half)["Vpc"]["VpcId"], HUB, "us-east-1", half)
    network.tag(c, mesh=group)
    network.settled(before)
    # When the group is reconciled
    result = network.reconcile({"Group": group})
    # Then it ends ReconcileIncomplete, naming each failed pair with its error: a-c overlap,
    # and b cannot route to both a and c (their CIDRs overlap): one of them is kept
    assert (result.status, result.error) == ("FAILED", "ReconcileIncomplete")
    cause = result.cause or ""
    assert "2 of the reconcile's pairs did not converge" in cause
    overlap = next(part for part in cause.split(": ", 1)[1].split("; ") if "CidrOverlap" in part)
    assert a.vpc_id in overlap
    assert c.vpc_id in overlap
    assert "RouteConflict" in cause
    # And the pair that can be made is made, whichever pair ran first when the tags changed
    assert len(network.peerings(group)) == 1
    assert set(network.peerings(group)) <= {pair(a, b), pair(b, c)}
    network.leave(a, b, c)


def test_a_failed_round_is_reported_and_the_other_rounds_still_run(
    network: Network, net: EmulatorHandle
) -> None:
    # Given three VPCs (a mesh of three: three rounds, one pair each), and the reconcile's
    # eighth Lambda invocation (RecordRound of its first round: after Discover and the six
    # steps of the round's one create execution) refused, so that round's child execution
    # fails (RoundFailed)
    group = group_name()
    vpcs = [network.vpc() for _ in range(3)]
    net.clear_faults()
    net.add_fault("lambda", "Invoke", "ResourceNotFoundException", nth=8)
    # When they are tagged into the group and the reconcile their tags start has run
    before = network.arns()
    try:
        for vpc in vpcs:
            network.tag(vpc, mesh=group)
        results = network.settled(before)
        fired = [r["fired"] for r in net.faults()]
    finally:
        net.clear_faults()
    # Then the failed round did not fail RunRounds: the reconcile ended ReconcileIncomplete,
    # its one pair counted and the round's error named, the two other rounds made
    assert fired == [1]
    incomplete = [r for r in results if r.error == "ReconcileIncomplete"]
    assert incomplete, [(r.status, r.error, r.cause) for r in results]
    cause = incomplete[0].cause or ""
    assert "1 of the reconcile's pairs did not converge" in cause, cause
    assert "created 2" in cause, cause
    assert "reconcile: InternalError" in cause, cause
    # And the next reconcile makes the missing pair: the mesh is complete
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert_meshed(network, group, *vpcs)


def test_a_second_reconcile_of_a_converged_group_changes_nothing(network: Network) -> None:
    group = group_name()
    before = network.arns()
    vpcs = [network.vpc(mesh=group) for _ in range(3)]
    network.settled(before)
    calls_before = len(network.emu.calls())
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert (result.output["Unchanged"], result.output["Created"], result.output["Repaired"]) == (
        3,
        0,
        0,
    )
    mutating = [
        c["operation"]
        for c in network.emu.calls()[calls_before:]
        if c["service"] == "ec2" and not c["operation"].startswith("Describe")
    ]
    assert mutating == []
    assert_meshed(network, group, *vpcs)


def test_drift_is_repaired_by_a_sweep(network: Network, net: EmulatorHandle) -> None:
    # Given a converged pair
    group = group_name()
    before = network.arns()
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    network.settled(before)
    [peering] = network.peerings(group).values()
    ec2 = network.ec2()
    # When a route is deleted by hand and a route table is added to b
    [table_a] = network.routes(a)
    ec2.delete_route(RouteTableId=table_a, DestinationCidrBlock=b.cidr)
    ec2.create_route_table(VpcId=b.vpc_id)
    # And the schedule fires its sweep
    before = network.arns()
    fired = net.fire_schedules()
    assert fired["fired"], fired
    network.settled(before)
    # Then the pair was repaired on the same peering: the route is back, the new table routes
    # to a (the sweep covers every group in scope: its status depends on other tests' groups)
    same = network.peerings(group)[pair(a, b)]["VpcPeeringConnectionId"]
    assert same == peering["VpcPeeringConnectionId"]
    assert_meshed(network, group, a, b)


def test_a_group_peering_deleted_by_hand_is_made_again_and_its_blackholes_cleared(
    network: Network,
) -> None:
    # Given a converged pair whose peering is then deleted by hand (its routes blackholes)
    group = group_name()
    before = network.arns()
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    network.settled(before)
    [old] = network.peerings(group).values()
    network.ec2().delete_vpc_peering_connection(
        VpcPeeringConnectionId=old["VpcPeeringConnectionId"]
    )
    # When the group is reconciled
    result = network.reconcile({"Group": group})
    # Then a new peering connects them, routed, and no route points to the old one
    assert result.succeeded, (result.error, result.cause)
    assert (result.output["Created"], result.output["Removed"]) == (1, 1)
    [new] = network.peerings(group).values()
    assert new["VpcPeeringConnectionId"] != old["VpcPeeringConnectionId"]
    assert_meshed(network, group, a, b)


def test_a_peering_made_by_hand_between_members_survives_untagging(network: Network) -> None:
    # Given two VPCs peered by hand, then tagged into a mesh
    group = group_name()
    a, b = network.vpc(), network.vpc()
    ec2 = network.ec2()
    pcx = ec2.create_vpc_peering_connection(VpcId=a.vpc_id, PeerVpcId=b.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    before = network.arns()
    network.tag(a, mesh=group)
    network.tag(b, mesh=group)
    network.settled(before)
    # When the group is reconciled / Then the pair is skipped, its peering named, not adopted
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert [s["VpcPeeringConnectionId"] for s in result.output["Skipped"]] == [pcx]
    # When both are untagged and the VPCs reconciled
    before = network.arns()
    network.untag(a, "mesh")
    network.untag(b, "mesh")
    network.settled(before)
    # Then the hand-made peering is still there
    status = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ][0]["Status"]["Code"]
    assert status == "active"


def test_a_bad_tag_is_reported_for_its_vpc_and_nothing_is_done_for_it(network: Network) -> None:
    group = group_name()
    before = network.arns()
    good = network.vpc(mesh=group)
    bad = network.vpc(mesh=group, route_tables="some")
    network.settled(before)
    result = network.reconcile({"Group": group})
    assert (result.status, result.error) == ("FAILED", "ReconcileIncomplete")
    assert bad.vpc_id in (result.cause or "")
    assert network.peerings(group) == {}
    assert good.vpc_id not in (result.cause or "")
    network.leave(good, bad)


def test_a_tag_change_answers_for_its_own_groups_only(network: Network) -> None:
    # Given a group whose pair cannot converge (overlapping CIDRs): a standing failure
    red = group_name()
    before = network.arns()
    a = network.vpc(mesh=red)
    half = a.cidr.replace(".0.0/16", ".128.0/17")
    b = Tagged(network.ec2().create_vpc(CidrBlock=half)["Vpc"]["VpcId"], HUB, "us-east-1", half)
    network.tag(b, mesh=red)
    network.settled(before)
    # When two VPCs are tagged into another group
    green = group_name()
    before = network.arns()
    c, d = network.vpc(mesh=green), network.vpc(mesh=green)
    results = network.settled(before)
    # Then the reconcile their tags started made their pair and SUCCEEDED: red's failure is
    # not its own; its output names the VPCs whose tag changes started it
    mine = [r for r in results if r.output and c.vpc_id in str(r.output["Scope"]["ChangedVpcs"])]
    assert mine, results
    assert all(r.succeeded for r in mine), [(r.error, r.cause) for r in mine]
    assert any(d.vpc_id in str(r.output["Scope"]["ChangedVpcs"]) for r in mine)
    assert set(network.peerings(green)) == {pair(c, d)}
    assert all(r.output["Created"] <= 1 for r in mine)
    network.leave(a, b, c, d)


# ------------------------------------------------------------- failures stay where they happen
def test_a_group_named_with_a_final_newline_fails_its_vpcs_and_the_others_are_made(
    network: Network,
) -> None:
    # Given two VPCs tagged vpc-peering:mesh = "x\n" (Python's $ matches before a final
    # newline), tagged at the same time as an unrelated pair
    group = group_name()
    before = network.arns()
    bad = [network.vpc(mesh="x\n") for _ in range(2)]
    a, b = network.vpc(mesh=group), network.vpc(mesh=group)
    # When the reconciles their tag changes started have ended
    results = network.settled(before)
    # Then none failed as a whole (InternalError): each bad VPC is its own InvalidInput
    assert all(r.error != "InternalError" for r in results), [(r.error, r.cause) for r in results]
    last = next(r for r in results if bad[1].vpc_id in (r.cause or ""))
    assert last.error == "ReconcileIncomplete", (last.error, last.cause)
    for vpc in bad:
        assert f"{vpc.vpc_id} ({HUB} us-east-1): InvalidInput" in (last.cause or "")
    # And the other pair is peered
    assert_meshed(network, group, a, b)
    network.leave(*bad)


def test_a_throttled_member_location_fails_alone_and_an_unrelated_pair_is_made(
    network: Network, net: EmulatorHandle
) -> None:
    # Given a member account whose DescribeVpcs in us-west-2 is throttled, every call
    where = f"account {MEMBER} in us-west-2"
    net.add_fault(
        "ec2", "DescribeVpcs", "RequestLimitExceeded", times=0, account=MEMBER, region="us-west-2"
    )
    try:
        # When two hub VPCs are tagged into a new group
        group = group_name()
        before = network.arns()
        a, b = network.vpc(mesh=group), network.vpc(mesh=group)
        results = network.settled(before, timeout=300)
    finally:
        net.clear_faults()
    # Then their pair is made, and the reconciles end incomplete naming that location
    assert_meshed(network, group, a, b)
    for result in results:
        assert result.error == "ReconcileIncomplete", (result.error, result.cause)
        assert f"{where}: TransientAwsError" in (result.cause or "")
    assert any("created 1," in (r.cause or "") for r in results)


def test_an_untagged_pair_is_removed_from_the_requesters_side_when_the_other_is_unreadable(
    network: Network, net: EmulatorHandle
) -> None:
    # Given a converged pair across regions (a, in us-east-1, is its requester)
    group = group_name()
    before = network.arns()
    a, b = network.vpc(mesh=group), network.vpc(region="us-west-2", mesh=group)
    network.settled(before)
    [peering] = network.peerings(group).values()
    pcx = peering["VpcPeeringConnectionId"]
    assert peering["RequesterVpcInfo"]["VpcId"] == a.vpc_id
    # And b's account and region can no longer be read at all
    for operation in ("DescribeVpcs", "DescribeRouteTables", "DescribeVpcPeeringConnections"):
        net.add_fault(
            "ec2", operation, "UnauthorizedOperation", times=0, account=HUB, region="us-west-2"
        )
    try:
        # When a is untagged
        before = network.arns()
        network.untag(a, "mesh")
        results = network.settled(before)
        # Then the peering is removed from a's side: a's route to it, then the peering
        ec2 = network.ec2()
        status = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
            "VpcPeeringConnections"
        ][0]["Status"]["Code"]
        assert status == "deleted"
        assert not any(b.cidr in routes for routes in network.routes(a).values())
        assert any("removed 1," in (r.cause or "") for r in results)
        assert all(f"account {HUB} in us-west-2: AccessDenied" in (r.cause or "") for r in results)
    finally:
        net.clear_faults()
    # And b's route to it is left (a blackhole), until a reconcile can read b again
    assert any(routes.get(a.cidr) == pcx for routes in network.routes(b).values())
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert result.output["Removed"] == 1
    assert not any(a.cidr in routes for routes in network.routes(b).values())
    network.leave(b)


# ---------------------------------------------------------------------- vpc-peering:allow
def made_for(network: Network, group: str, a: Tagged, b: Tagged) -> dict[str, str]:
    """The tags a rule made for the pair's group peering carries (this stack's, the peering's)."""
    peering_id = network.peerings(group)[pair(a, b)]["VpcPeeringConnectionId"]
    return {"vpc-peering:managed-by": "vpc-peering", "vpc-peering:peering-id": peering_id}


def owned(found: dict[str, str], expected: dict[str, str]) -> bool:
    return all(found.get(k) == v for k, v in expected.items())


def test_an_allow_tag_opens_its_ports_to_each_peer_of_the_group_on_both_sides(
    network: Network,
) -> None:
    # Given two VPCs, each with a security group tagged to allow a port from its group peers
    group = group_name()
    a, b = network.vpc(), network.vpc(region="us-west-2")
    web = network.security_group(a, allow=f"{group} tcp/443,tcp/8000-8080")
    db = network.security_group(b, allow=f"{group} tcp/5432")
    # When the VPCs are tagged into the group (the tag change starts the reconcile)
    before = network.arns()
    network.tag(a, mesh=group)
    network.tag(b, mesh=group)
    network.settled(before)
    # Then the pair is peered, and each group admits the peer's CIDR on its ports, every rule
    # tagged as this stack's and the peering's
    mine = made_for(network, group, a, b)
    web_rules, db_rules = network.ingress(a, web), network.ingress(b, db)
    assert set(web_rules) == {("tcp", 443, 443, b.cidr), ("tcp", 8000, 8080, b.cidr)}
    assert set(db_rules) == {("tcp", 5432, 5432, a.cidr)}
    assert all(owned(t, mine) for t in [*web_rules.values(), *db_rules.values()])
    # And a second reconcile finds the pair unchanged
    result = network.reconcile({"Group": group})
    assert result.succeeded, (result.error, result.cause)
    assert (result.output["Unchanged"], result.output["Repaired"]) == (1, 0)


def test_an_allow_tag_changed_changes_the_rule_and_removed_revokes_it(network: Network) -> None:
    # Given a converged pair whose security group in a allows tcp/443 from its peer, beside a
    # rule made by hand in the same group
    group = group_name()
    a, b = network.vpc(), network.vpc()
    web = network.security_group(a, allow=f"{group} tcp/443")
    network.ec2().authorize_security_group_ingress(
        GroupId=web, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="192.168.0.0/16"
    )
    before = network.arns()
    network.tag(a, mesh=group)
    network.tag(b, mesh=group)
    network.settled(before)
    assert ("tcp", 443, 443, b.cidr) in network.ingress(a, web)
    # When the tag asks for another port, and the group is reconciled
    network.allow(a, web, f"{group} tcp/8443")
    result = network.reconcile({"Group": group})
    # Then the pair was repaired: the new rule made, the old one revoked, the hand-made kept
    assert result.succeeded, (result.error, result.cause)
    assert result.output["Repaired"] == 1
    assert set(network.ingress(a, web)) == {
        ("tcp", 8443, 8443, b.cidr),
        ("tcp", 22, 22, "192.168.0.0/16"),
    }
    # When the tag is removed, and the group is reconciled
    network.allow(a, web, None)
    result = network.reconcile({"Group": group})
    # Then the rule is revoked; the peering and the hand-made rule stay
    assert result.succeeded, (result.error, result.cause)
    assert result.output["Repaired"] == 1
    assert set(network.ingress(a, web)) == {("tcp", 22, 22, "192.168.0.0/16")}
    assert set(network.peerings(group)) == {pair(a, b)}


def test_a_bad_allow_tag_is_its_vpcs_failure_naming_the_tag_and_the_others_are_made(
    network: Network,
) -> None:
    # Given a mesh of three, one VPC's security group tagged with a range upside down
    group = group_name()
    a, b, c = network.vpc(), network.vpc(), network.vpc()
    bad = network.security_group(a, allow=f"{group} tcp/443-80")
    before = network.arns()
    for vpc in (a, b, c):
        network.tag(vpc, mesh=group)
    network.settled(before)
    # When the group is reconciled
    result = network.reconcile({"Group": group})
    # Then it ends ReconcileIncomplete naming a
    assert (result.status, result.error) == ("FAILED", "ReconcileIncomplete")
    assert a.vpc_id in (result.cause or "")
    # And a's Failed entry (as a dry run lists it) names the tag, the group and the value
    dry = network.reconcile({"Group": group, "DryRun": True})
    [failed] = [f for f in dry.output["Failed"] if f.get("Vpc")]
    assert a.vpc_id in failed["Vpc"]
    assert failed["Error"] == "InvalidInput"
    assert f"vpc-peering:allow on {bad}: '{group} tcp/443-80'" in failed["Cause"]
    # And the others' pair is made
    assert set(network.peerings(group)) == {pair(b, c)}
    network.allow(a, bad, None)
    network.leave(a, b, c)


def test_a_rule_revoked_by_hand_is_repaired_by_a_sweep(
    network: Network, net: EmulatorHandle
) -> None:
    # Given a converged pair whose tagged group admits the peer
    group = group_name()
    a, b = network.vpc(), network.vpc()
    db = network.security_group(b, allow=f"{group} tcp/5432")
    before = network.arns()
    network.tag(a, mesh=group)
    network.tag(b, mesh=group)
    network.settled(before)
    rules = network.ec2().describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [db]}]
    )["SecurityGroupRules"]
    [made] = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]
    # When the rule is revoked by hand, and the schedule fires its sweep
    network.ec2().revoke_security_group_ingress(GroupId=db, SecurityGroupRuleIds=[made])
    assert network.ingress(b, db) == {}
    before = network.arns()
    fired = net.fire_schedules()
    assert fired["fired"], fired
    network.settled(before)
    # Then the rule is back, made for the same peering
    rules_now = network.ingress(b, db)
    assert set(rules_now) == {("tcp", 5432, 5432, a.cidr)}
    assert owned(rules_now[("tcp", 5432, 5432, a.cidr)], made_for(network, group, a, b))
