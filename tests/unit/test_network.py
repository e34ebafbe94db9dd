"""The reconcile machine's decisions (``groups`` and ``network``), on networks built by hand."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from vpc_peering import network
from vpc_peering.actions import ACTIONS, MAX_CAUSE
from vpc_peering.errors import AccessDenied, InvalidInput
from vpc_peering.groups import Member, VpcKey, allow_rules, membership, wanted_pairs
from vpc_peering.network import (
    MAX_ROUND_ITEMS,
    Scope,
    WorkItem,
    hold_removals,
    plan_network,
    schedule,
)
from vpc_peering.observed import RouteTable
from vpc_peering.settings import Settings

from .network_world import HUB, MEMBER, R1, R2, World


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


def actions(plan_work: list[WorkItem]) -> list[tuple[str, frozenset[str]]]:
    return sorted((w.action, frozenset({w.requester.vpc_id, w.accepter.vpc_id})) for w in plan_work)


def pair(a: VpcKey, b: VpcKey) -> frozenset[str]:
    return frozenset({a.vpc_id, b.vpc_id})


# ------------------------------------------------------------------------------ tags
def test_a_mesh_tag_makes_a_member_with_default_options() -> None:
    key = VpcKey(HUB, R1, "vpc-00000000000000001")
    member = membership(key, {"vpc-peering:mesh": "blue"})
    assert member == Member(key, mesh="blue", route_tables="all", dns=False)


def test_untagged_vpcs_are_in_no_group() -> None:
    key = VpcKey(HUB, R1, "vpc-00000000000000001")
    assert membership(key, {"Name": "x", "vpc-peering:dns": "true"}) is None


@pytest.mark.parametrize(
    ("tags", "named"),
    [
        ({"vpc-peering:mesh": "blue team"}, "vpc-peering:mesh: 'blue team'"),
        ({"vpc-peering:hub": "x" * 65}, "vpc-peering:hub: 'xxxx"),
        ({"vpc-peering:spoke": ""}, "vpc-peering:spoke: ''"),
        ({"vpc-peering:mesh": "b", "vpc-peering:route-tables": "some"}, "route-tables: 'some'"),
        ({"vpc-peering:mesh": "b", "vpc-peering:dns": "yes"}, "vpc-peering:dns: 'yes'"),
    ],
)
def test_a_bad_group_or_option_names_the_tag_and_its_value(
    tags: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named.replace("(", r"\(")):
        membership(VpcKey(HUB, R1, "vpc-00000000000000001"), tags)


@pytest.mark.parametrize("tag", ["mesh", "hub", "spoke"])
def test_a_group_name_is_matched_whole_a_final_newline_included(tag: str) -> None:
    # Given a group tag whose value ends with a newline (Python's $ matches before it)
    tags = {f"vpc-peering:{tag}": "x\n"}
    # When its membership is read / Then it is refused, naming the tag and the value as repr
    with pytest.raises(InvalidInput, match=re.escape(f"vpc-peering:{tag}: 'x\\n' is not a group")):
        membership(VpcKey(HUB, R1, "vpc-00000000000000001"), tags)


def test_hub_and_spoke_pairs_each_spoke_with_each_hub_only() -> None:
    keys = [VpcKey(HUB, R1, f"vpc-0000000000000000{i}") for i in range(5)]
    members = [
        Member(keys[0], hub="g"),
        Member(keys[1], hub="g"),
        Member(keys[2], spoke="g"),
        Member(keys[3], spoke="g"),
        Member(keys[4], spoke="other"),
    ]
    wanted = wanted_pairs(members)
    assert set(wanted) == {(h, s) for h in keys[:2] for s in keys[2:4]}


def test_a_pair_wanted_by_two_groups_is_one_pair_tagged_with_the_first() -> None:
    a, b = VpcKey(HUB, R1, "vpc-00000000000000001"), VpcKey(HUB, R1, "vpc-00000000000000002")
    wanted = wanted_pairs([Member(a, mesh="red", hub="blue"), Member(b, mesh="red", spoke="blue")])
    assert [(w.groups, w.group) for w in wanted.values()] == [({"red", "blue"}, "blue")]


# ------------------------------------------------------------------------------ plans
def test_three_tagged_vpcs_make_three_creates(world: World, settings: Settings) -> None:
    # Given three VPCs tagged into one mesh, nothing peered
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then every pair is a create
    assert plan.desired == 3
    assert actions(plan.work) == sorted(("create", p) for p in (pair(a, b), pair(a, c), pair(b, c)))
    assert (plan.failed, plan.skipped, plan.unchanged) == ([], [], 0)


def test_a_converged_mesh_needs_nothing(world: World, settings: Settings) -> None:
    # Given a mesh whose peerings and routes are all there
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    for x, y in itertools.combinations((a, b, c), 2):
        world.peer(x, y)
    # When planned / Then nothing to do
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert (plan.desired, plan.unchanged, plan.work, plan.failed) == (3, 3, [], [])


@pytest.mark.parametrize(
    "drift", ["route deleted", "new route table", "secondary cidr", "dns", "pending"]
)
def test_drift_on_a_wanted_pair_is_a_repair(world: World, settings: Settings, drift: str) -> None:
    # Given a converged pair, then one kind of drift
    a = world.vpc("10.0.0.0/16", mesh="blue", dns="true" if drift == "dns" else "false")
    b = world.vpc("10.1.0.0/16", mesh="blue")
    world.peer(a, b, status="pending-acceptance" if drift == "pending" else "active")
    if drift == "route deleted":
        world.tables[a][0].routes.pop()
    elif drift == "new route table":
        world.tables[a].append(RouteTable("rtb-000000000000000ff", a.vpc_id, False, [], {}, [], {}))
    elif drift == "secondary cidr":
        world.vpcs[b].cidr_blocks.append("10.2.0.0/16")
    # When planned / Then the pair is repaired by the create machine, nothing else
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert actions(plan.work) == [("repair", pair(a, b))]


def test_a_peering_made_by_hand_between_members_is_left_alone(
    world: World, settings: Settings
) -> None:
    # Given two members peered by hand (no tags of this stack)
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    pcx = world.peer(a, b, group=None, managed=False)
    # When planned / Then the pair is skipped with the peering named, and nothing is done
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert plan.work == []
    assert [(s.vpc_peering_connection_id, "made by hand" in s.reason) for s in plan.skipped] == [
        (pcx, True)
    ]


def test_an_explicit_create_peering_between_members_is_left_alone_too(
    world: World, settings: Settings
) -> None:
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    world.peer(a, b, group=None, managed=True)  # this stack's, but not for a group
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert (plan.work, len(plan.skipped)) == ([], 1)


def test_a_vpc_leaving_the_group_has_its_group_peerings_removed(
    world: World, settings: Settings
) -> None:
    # Given a converged mesh of three, then one VPC untagged
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    pcx = {frozenset((x, y)): world.peer(x, y) for x, y in itertools.combinations((a, b, c), 2)}
    world.tag(c)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then c's two group peerings are removed, a-b stays
    removed = {w.peering_id for w in plan.work if w.action == "remove"}
    assert removed == {pcx[frozenset((a, c))], pcx[frozenset((b, c))]}
    assert (plan.desired, plan.unchanged, len(plan.work)) == (1, 1, 2)


def test_each_work_item_says_why(world: World, settings: Settings) -> None:
    # Given a mesh of three: a-b made and missing a route, a-c to make, b-d to remove
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    d = world.vpc("10.9.0.0/16")
    world.peer(a, b)
    world.tables[a][0].routes = [
        r for r in world.tables[a][0].routes if r.destination != "10.1.0.0/16"
    ]
    world.peer(b, d)
    world.peer(b, c)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then each item says what is missing or which tag asks for it
    why = {(w.action, pair(w.requester, w.accepter)): w.reason for w in plan.work}
    assert why[("create", pair(a, c))] == "no peering yet; vpc-peering:mesh=blue on both VPCs"
    assert "10.1.0.0/16 missing" in why[("repair", pair(a, b))]
    assert why[("remove", pair(b, d))] == f"{d.vpc_id} no longer tagged into group blue"


def test_more_removals_than_the_limit_are_all_held(world: World, settings: Settings) -> None:
    # Given a converged mesh of four whose tags were all stripped, and a new pair to make
    keys = [world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(4)]
    for x, y in itertools.combinations(keys, 2):
        world.peer(x, y)
    for key in keys:
        world.tag(key)
    world.vpc("10.8.0.0/16", mesh="red"), world.vpc("10.9.0.0/16", mesh="red")
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # When the guard allows 5 removals (six are planned)
    hold_removals(plan, limit=5, confirmed=False)
    # Then none of the six is removed; the create stays
    assert len(plan.removals_held) == 6
    assert [w.action for w in plan.work] == ["create"]


@pytest.mark.parametrize(("limit", "confirmed"), [(6, False), (0, True)])
def test_removals_within_the_limit_or_confirmed_go_on(
    world: World, settings: Settings, limit: int, confirmed: bool
) -> None:
    keys = [world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(4)]
    for x, y in itertools.combinations(keys, 2):
        world.peer(x, y)
    for key in keys:
        world.tag(key)
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    hold_removals(plan, limit=limit, confirmed=confirmed)
    assert (len(plan.work), plan.removals_held) == (6, [])


def test_cleaning_up_after_a_peering_already_gone_is_not_a_removal_the_guard_counts(
    world: World, settings: Settings
) -> None:
    # Given a group peering deleted by hand (blackhole routes left), and a guard of 0
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    world.peer(a, b, status="deleted")
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    hold_removals(plan, limit=0, confirmed=False)
    # Then its cleanup and the new peering go on
    assert [w.action for w in plan.work] == ["remove", "create"]
    assert plan.removals_held == []


def test_every_action_has_one_row_saying_what_it_runs_and_counts() -> None:
    assert {a for a, spec in ACTIONS.items() if spec.machine == "cleanup"} == {
        "remove",
        "remove-incoming",
        "reject",
    }
    assert {a for a, spec in ACTIONS.items() if spec.frees} == {"remove", "remove-incoming"}


def test_a_hand_made_peering_survives_its_vpcs_leaving_the_group(
    world: World, settings: Settings
) -> None:
    a, b = world.vpc("10.0.0.0/16"), world.vpc("10.1.0.0/16")  # untagged
    world.peer(a, b, group=None, managed=False)
    world.peer(a, b, group=None, managed=True)
    assert plan_network(world.views(), Scope(), settings, world.policy()).work == []


def test_overlapping_members_fail_their_pair_and_the_others_go_on(
    world: World, settings: Settings
) -> None:
    # Given a mesh where two members overlap
    a = world.vpc("10.0.0.0/16", mesh="blue")
    b = world.vpc("10.0.128.0/17", mesh="blue")
    c = world.vpc("10.1.0.0/16", mesh="blue")
    d = world.vpc("10.2.0.0/16", mesh="blue")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then a-b fails with CidrOverlap naming both
    errors = sorted((f.error, f.pair or "") for f in plan.failed)
    assert errors[0][0] == "CidrOverlap"
    assert str(a) in errors[0][1]
    assert str(b) in errors[0][1]
    # And c and d each keep one of a and b, never both: their tables would route the two
    # overlapping CIDRs to two peers (RouteConflict, the first pair in order kept)
    assert [e for e, _ in errors[1:]] == ["RouteConflict", "RouteConflict"]
    made = {frozenset({w.requester, w.accepter}) for w in plan.work}
    assert frozenset({c, d}) in made
    for x in (c, d):
        assert len({frozenset({a, x}), frozenset({b, x})} & made) == 1
    assert "two peers of one VPC with overlapping CIDRs" in plan.failed[-1].cause


def test_a_vpc_with_a_bad_tag_is_reported_and_its_peerings_left_as_they_are(
    world: World, settings: Settings
) -> None:
    # Given a converged pair, then one VPC's group tag becomes invalid
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    world.peer(a, b)
    world.tag(b, mesh="not ok!")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then the VPC and the tag are named, and its peering is not removed
    assert [(f.vpc, f.error) for f in plan.failed] == [(str(b), "InvalidInput")]
    assert "vpc-peering:mesh: 'not ok!'" in plan.failed[0].cause
    assert plan.work == []


def test_two_vpcs_in_a_group_named_with_a_final_newline_fail_alone(
    world: World, settings: Settings
) -> None:
    # Given two VPCs tagged vpc-peering:mesh = "x\n", and an unrelated group of two
    bad = [world.vpc(f"10.{i}.0.0/16", mesh="x\n") for i in range(2)]
    a, b = world.vpc("10.8.0.0/16", mesh="blue"), world.vpc("10.9.0.0/16", mesh="blue")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then each bad VPC is its own failure, naming the tag and its value (the newline shown)
    assert sorted((f.vpc, f.error) for f in plan.failed) == sorted(
        (str(k), "InvalidInput") for k in bad
    )
    assert all("vpc-peering:mesh: 'x\\n'" in f.cause for f in plan.failed)
    # And the other pair is made
    assert actions(plan.work) == [("create", pair(a, b))]


def test_a_group_peering_to_a_vpc_outside_the_managed_regions_is_not_removed(
    world: World, settings: Settings
) -> None:
    # Given a group peering from a managed VPC to one in a region no longer managed
    a = world.vpc("10.0.0.0/16")
    far = world.vpc("10.1.0.0/16", region=R2)
    pcx = world.peer(a, far)
    # When planned (ManagedRegions is us-east-1 only)
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then it is skipped, with the reason, not removed
    assert plan.work == []
    assert [s.vpc_peering_connection_id for s in plan.skipped] == [pcx]


def test_an_unreadable_account_is_a_failure_and_its_peerings_are_kept(
    world: World, settings: Settings
) -> None:
    # Given a group peering from a member of the group into a member account whose role
    # cannot be assumed (its VPC's tags cannot be read)
    a = world.vpc("10.0.0.0/16", mesh="blue")
    m = world.vpc("10.1.0.0/16", account=MEMBER)
    world.peer(a, m)
    world.broken[(MEMBER, R1)] = AccessDenied("sts:AssumeRole was denied")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then the account is a failure, and so is the pair, named with the location and the
    # error; the peering (wanted or not, nobody knows) stays
    where = f"account {MEMBER} in {R1}"
    assert [(f.location, f.pair, f.error) for f in plan.failed] == [
        (where, None, "AccessDenied"),
        (None, f"{a} ~ {m}", "AccessDenied"),
    ]
    assert f"{where} could not be read (sts:AssumeRole was denied)" in plan.failed[1].cause
    assert plan.work == []


def test_a_peering_whose_readable_requester_left_every_group_is_removed_from_that_side(
    world: World, settings: Settings
) -> None:
    # Given a group peering whose requester's VPC is in no group any more, and whose
    # accepter's account cannot be read
    a = world.vpc("10.0.0.0/16")
    m = world.vpc("10.1.0.0/16", account=MEMBER, mesh="blue")
    pcx = world.peer(a, m)
    world.broken[(MEMBER, R1)] = AccessDenied("sts:AssumeRole was denied")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then no tag the accepter may carry can want the pair: it is removed (the cleanup
    # machine acts from the requester's side), and the account is still a failure
    assert [(w.action, w.requester, w.peering_id) for w in plan.work] == [("remove", a, pcx)]
    assert [(f.location, f.error) for f in plan.failed] == [
        (f"account {MEMBER} in {R1}", "AccessDenied")
    ]


def test_a_peering_whose_requester_cannot_be_read_is_kept(world: World, settings: Settings) -> None:
    # Given a group peering requested from an account that cannot be read (its tags are
    # there), to a VPC in no group
    m = world.vpc("10.1.0.0/16", account=MEMBER, mesh="blue")
    a = world.vpc("10.0.0.0/16")
    world.peer(m, a)
    world.broken[(MEMBER, R1)] = AccessDenied("sts:AssumeRole was denied")
    # When planned / Then nothing proves it is this stack's: nothing is done
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert plan.work == []
    assert [f.location for f in plan.failed] == [f"account {MEMBER} in {R1}"]


def test_a_pending_request_from_an_unreadable_account_is_not_rejected(
    world: World, settings: Settings
) -> None:
    # Given a pending request from a managed account that cannot be read (whether this stack
    # made it is not known), and RejectUnwanted
    ours = world.vpc("10.0.0.0/16", accept_from=MEMBER)
    m = world.vpc("10.1.0.0/16", account=MEMBER)
    world.peer(m, ours, status="pending-acceptance", group=None, managed=False, routed=False)
    world.broken[(MEMBER, R1)] = AccessDenied("sts:AssumeRole was denied")
    rejecting = settings.model_copy(update={"reject_unwanted": True})
    # When planned
    plan = plan_network(world.views(), Scope(), rejecting, world.policy())
    # Then it is neither rejected nor accepted: the pair is that location's failure
    assert plan.work == []
    assert [(f.pair, f.error) for f in plan.failed][1:] == [(f"{m} ~ {ours}", "AccessDenied")]


def test_a_group_peering_deleted_by_hand_is_cleaned_then_made_again(
    world: World, settings: Settings
) -> None:
    # Given a converged pair whose peering was deleted by hand (its routes are blackholes)
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    dead = world.peer(a, b, status="deleted")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then the dead peering's routes are cleaned up first, then a new one is made
    assert [(w.action, w.peering_id) for w in plan.work] == [("remove", dead), ("create", None)]
    rounds = schedule(plan.work)
    assert [[w.action for w in r] for r in rounds] == [["remove"], ["create"]]


def test_scope_group_and_scope_vpc_narrow_what_is_done(world: World, settings: Settings) -> None:
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    c, d = world.vpc("10.2.0.0/16", mesh="red"), world.vpc("10.3.0.0/16", mesh="red")
    red = plan_network(world.views(), Scope(group="red"), settings, world.policy())
    assert actions(red.work) == [("create", pair(c, d))]
    one = plan_network(world.views(), Scope(vpc=a), settings, world.policy())
    assert actions(one.work) == [("create", pair(a, b))]


def test_peerings_beyond_the_quota_fail_before_anything_is_made(
    world: World, settings: Settings
) -> None:
    # Given a mesh of four where each VPC may have only two peerings
    small = settings.model_copy(update={"max_peerings_per_vpc": 2})
    keys = [world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(4)]
    # When planned
    plan = plan_network(world.views(), Scope(), small, world.policy())
    # Then some creates fail QuotaExceeded naming MaxPeeringsPerVpc, and no VPC exceeds two
    assert plan.failed
    assert {f.error for f in plan.failed} == {"QuotaExceeded"}
    assert "MaxPeeringsPerVpc" in plan.failed[0].cause
    counts = {k: sum(k in (w.requester, w.accepter) for w in plan.work) for k in keys}
    assert max(counts.values()) <= 2


def test_a_cross_account_pair_is_requested_by_the_trusted_side(
    world: World, settings: Settings
) -> None:
    # Given a member VPC (account 111111111111, not a trusted requester) and a hub VPC
    m = world.vpc("10.0.0.0/16", account=MEMBER, mesh="blue")
    h = world.vpc("10.1.0.0/16", mesh="blue")
    # When planned / Then the hub's VPC requests, so the accept policy allows the peering
    [item] = plan_network(world.views(), Scope(), settings, world.policy()).work
    assert (item.requester, item.accepter) == (h, m)


# --------------------------------------------------------------- vpc-peering:allow tags
@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("prod tcp/443", ["prod sg-1 tcp 443 443"]),
        ("prod tcp/443,tcp/8000-8080", ["prod sg-1 tcp 443 443", "prod sg-1 tcp 8000 8080"]),
        ("prod udp/53, tcp/53", ["prod sg-1 udp 53 53", "prod sg-1 tcp 53 53"]),
        ("prod icmp", ["prod sg-1 icmp -1 -1"]),
        ("prod icmp/8", ["prod sg-1 icmp 8 -1"]),
        ("prod icmp/3/4", ["prod sg-1 icmp 3 4"]),
        ("prod -1", ["prod sg-1 -1 -1 -1"]),
        ("prod tcp/443,tcp/443", ["prod sg-1 tcp 443 443"]),
    ],
)
def test_an_allow_tag_is_read_as_rules(value: str, rules: list[str]) -> None:
    assert allow_rules("sg-1", value) == rules


@pytest.mark.parametrize(
    "value",
    [
        "prod",
        "prod ",
        "prod tcp",
        "prod tcp/70000",
        "prod tcp/90-80",
        "prod sctp/1",
        "tcp/443",
        "bad! tcp/443",
        "prod tcp/443,",
        "prod icmp/256",
        "prod tcp/443\n",
    ],
)
def test_a_bad_allow_tag_names_the_tag_the_group_and_the_value(value: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(f"vpc-peering:allow on sg-1: {value!r}")):
        allow_rules("sg-1", value)


def test_an_allow_tag_asks_its_rule_of_each_group_pair_on_its_side(
    world: World, settings: Settings
) -> None:
    # Given a pair of a mesh, and a security group of one VPC tagged for that group (and one
    # for another group, which asks nothing here)
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    group = world.security_group(a, allow="blue tcp/443,tcp/8000-8080")
    world.security_group(a, allow="red tcp/22")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    [item] = plan.work
    side = network.planned_side(plan.members[a], a)
    request = network.pair_request(side, network.planned_side(plan.members[b], b), "blue")
    # Then the create machine is asked for the rules on a's side, from the peer VPC
    assert item.action == "create"
    assert [
        (r.side, r.group_id, r.protocol, r.from_port, r.to_port, r.source)
        for r in request.security_group_rules
    ] == [
        ("Requester" if a == item.requester else "Accepter", group.group_id, "tcp", p, q, "PeerVpc")
        for p, q in ((443, 443), (8000, 8080))
    ]


def test_a_pair_whose_asked_rules_are_there_is_unchanged(world: World, settings: Settings) -> None:
    # Given a converged pair whose tagged group has its rule, made for the peering
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    pcx = world.peer(a, b)
    world.rule(world.security_group(a, allow="blue tcp/443"), "10.1.0.0/16", 443, pcx)
    # And one made by hand in the peer's tagged group (the create machine reuses it)
    world.rule(world.security_group(b, allow="blue tcp/5432"), "10.0.0.0/16", 5432)
    # When planned / Then nothing to do
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert (plan.unchanged, plan.work, plan.failed) == (1, [], [])


def test_a_rule_missing_or_no_longer_asked_is_a_repair_naming_it(
    world: World, settings: Settings
) -> None:
    # Given a converged pair: a's tagged group lacks its rule (revoked by hand), b's group has
    # a rule made for the peering that no tag asks any more
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    pcx = world.peer(a, b)
    asked = world.security_group(a, allow="blue tcp/443")
    old = world.security_group(b)
    world.rule(old, "10.0.0.0/16", 22, pcx)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then the pair is a repair whose reason names both rules
    [item] = plan.work
    assert item.action == "repair"
    assert f"{asked.group_id} tcp 443 from 10.1.0.0/16 missing" in item.reason
    assert f"{old.group_id} tcp 22 from 10.0.0.0/16 no longer asked" in item.reason


def test_too_many_allowed_rules_are_the_vpcs_failure(world: World, settings: Settings) -> None:
    # Given a VPC whose tagged groups ask for more rules than a plan carries per side
    a = world.vpc("10.0.0.0/16", mesh="blue")
    world.vpc("10.1.0.0/16", mesh="blue")
    ports = ",".join(f"tcp/{p}" for p in range(network.MAX_ALLOW_RULES + 1))
    world.security_group(a, allow=f"blue {ports}")
    # When planned / Then that VPC fails, saying why, and nothing is done for it
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    assert [(f.vpc, f.error) for f in plan.failed] == [(str(a), "InvalidInput")]
    assert f"more than {network.MAX_ALLOW_RULES}" in plan.failed[0].cause
    assert plan.work == []


def test_a_bad_allow_tag_is_its_vpcs_failure_and_the_others_go_on(
    world: World, settings: Settings
) -> None:
    # Given a mesh of three, one VPC's security group tagged with a bad value
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    group = world.security_group(a, allow="blue tcp/443-80")
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then that VPC is a failure naming the tag and the value, and the others' pair is made
    [failed] = plan.failed
    assert (failed.vpc, failed.error) == (str(a), "InvalidInput")
    assert f"vpc-peering:allow on {group.group_id}: 'blue tcp/443-80'" in failed.cause
    assert actions(plan.work) == [("create", pair(b, c))]


# ----------------------------------------------------------------------------- rounds
def _check_rounds(work: list[WorkItem], rounds: list[list[WorkItem]]) -> None:
    assert sorted(w.label for r in rounds for w in r) == sorted(w.label for w in work)
    for r in rounds:
        assert len(r) <= MAX_ROUND_ITEMS
        keys = [k for w in r for k in (w.requester, w.accepter)]
        assert len(keys) == len(set(keys)), "two items of a round share a VPC"


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 11, 50])
def test_a_full_mesh_takes_the_fewest_rounds(n: int) -> None:
    keys = [VpcKey(HUB, R1, f"vpc-{i:017x}") for i in range(n)]
    work = [WorkItem("create", a, b, "g") for a, b in itertools.combinations(keys, 2)]
    rounds = schedule(work)
    _check_rounds(work, rounds)
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)


def test_removals_run_before_creates() -> None:
    keys = [VpcKey(HUB, R1, f"vpc-{i:017x}") for i in range(4)]
    work = [
        WorkItem("create", keys[0], keys[1], "g"),
        WorkItem("remove", keys[2], keys[3], "g", "pcx-1"),
    ]
    assert [[w.action for w in r] for r in schedule(work)] == [["remove"], ["create"]]


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    edges=st.sets(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=200),
    limit=st.integers(1, 40),
)
def test_any_graph_is_scheduled_once_per_item_with_no_shared_vpc(
    edges: set[tuple[int, int]], limit: int
) -> None:
    keys = [VpcKey(HUB, R1, f"vpc-{i:017x}") for i in range(30)]
    work = [
        WorkItem("create", keys[a], keys[b], "g")
        for a, b in {tuple(sorted(e)) for e in edges if e[0] != e[1]}
    ]
    _check_rounds(work, schedule(work, max_items=limit))


# -------------------------------------------------------------------- accepter-only mode
VENDOR = "444444444444"
STRANGER = "555555555555"


@pytest.fixture
def vendor_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"external_requester_account_ids": frozenset({VENDOR})})


def accepted(world: World, vendor: VpcKey, ours: VpcKey, status: str = "active") -> str:
    """A request of the vendor's that this stack accepted for ``ours``, routed on our side,
    the vendor's CIDRs at acceptance pinned."""
    tags = {
        "vpc-peering:managed-by": "vpc-peering",
        "vpc-peering:accepted-for": ours.vpc_id,
        "vpc-peering:accepted-cidrs": " ".join(world.vpcs[vendor].cidr_blocks),
    }
    return world.peer(vendor, ours, status=status, group=None, managed=False, accepter_tags=tags)


def test_a_vendors_request_to_an_opted_in_vpc_is_accepted_and_routed_on_our_side(
    world: World, vendor_settings: Settings
) -> None:
    # Given a VPC that accepts requests from the vendor, and the vendor's pending request
    ours = world.vpc("10.0.0.0/16", accept_from=f"{VENDOR} {STRANGER}")
    vendor = world.vpc("192.168.0.0/16", account=VENDOR)
    pcx = world.peer(vendor, ours, status="pending-acceptance", group=None, managed=False,
                     routed=False)  # fmt: skip
    # When planned
    plan = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    # Then it is accepted: the create machine runs in accepter-only mode for that request
    assert [(w.action, w.peering_id, w.requester) for w in plan.work] == [("accept", pcx, vendor)]
    assert (plan.desired, plan.ignored, plan.failed) == (1, [], [])


@pytest.mark.parametrize(
    ("requester_account", "accept_from", "reason"),
    [
        (STRANGER, f"{VENDOR} {STRANGER}", "not in ExternalRequesterAccountIds"),
        (VENDOR, STRANGER, "not in accepter VPC"),
        (VENDOR, None, "has no vpc-peering:accept-from tag"),
    ],
)
def test_a_request_the_double_opt_in_refuses_stays_pending_and_is_listed(
    world: World,
    vendor_settings: Settings,
    requester_account: str,
    accept_from: str | None,
    reason: str,
) -> None:
    tags = {"accept_from": accept_from} if accept_from else {"mesh": "blue"}
    ours = world.vpc("10.0.0.0/16", **tags)
    other = world.vpc("192.168.0.0/16", account=requester_account)
    pcx = world.peer(other, ours, status="pending-acceptance", group=None, managed=False,
                     routed=False)  # fmt: skip
    plan = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert plan.work == []
    [ignored] = plan.ignored
    assert (ignored.vpc_peering_connection_id, ignored.status) == (pcx, "pending-acceptance")
    assert reason in ignored.reason


def test_with_reject_unwanted_a_refused_request_is_rejected(
    world: World, vendor_settings: Settings
) -> None:
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    stranger = world.vpc("192.168.0.0/16", account=STRANGER)
    pcx = world.peer(stranger, ours, status="pending-acceptance", group=None, managed=False,
                     routed=False)  # fmt: skip
    rejecting = vendor_settings.model_copy(update={"reject_unwanted": True})
    plan = plan_network(world.views(), Scope(), rejecting, world.policy())
    assert [(w.action, w.peering_id) for w in plan.work] == [("reject", pcx)]


@pytest.mark.parametrize("accepter", ["mesh", "other-stack"])
def test_reject_unwanted_leaves_other_teams_and_other_stacks_requests_alone(
    world: World, vendor_settings: Settings, accepter: str
) -> None:
    # Given a pending request into a group member that takes no part in accepter-only mode (no
    # vpc-peering:accept-from), or into an opted-in VPC but requested by another stack
    if accepter == "mesh":
        ours = world.vpc("10.0.0.0/16", mesh="blue")
        tags: dict[str, str] = {}
    else:
        ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
        tags = {"vpc-peering:managed-by": "other-stack"}
    stranger = world.vpc("192.168.0.0/16", account=STRANGER)
    pcx = world.peer(stranger, ours, status="pending-acceptance", group=None, managed=False,
                     routed=False, accepter_tags=tags)  # fmt: skip
    rejecting = vendor_settings.model_copy(update={"reject_unwanted": True})
    # When planned with RejectUnwanted / Then it is not rejected: it stays pending, listed
    plan = plan_network(world.views(), Scope(), rejecting, world.policy())
    assert plan.work == []
    assert [i.vpc_peering_connection_id for i in plan.ignored] == [pcx]


def test_a_vendor_whose_cidr_overlaps_ours_is_ignored_with_the_reason(
    world: World, vendor_settings: Settings
) -> None:
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    vendor = world.vpc("10.0.128.0/17", account=VENDOR)
    world.peer(vendor, ours, status="pending-acceptance", group=None, managed=False, routed=False)
    plan = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert plan.work == []
    assert "overlaps" in plan.ignored[0].reason


def test_an_accepted_request_is_kept_while_wanted_and_removed_once_the_tag_goes(
    world: World, vendor_settings: Settings
) -> None:
    # Given a vendor request this stack accepted, routed on our side
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    vendor = world.vpc("192.168.0.0/16", account=VENDOR)
    pcx = accepted(world, vendor, ours)
    # Then it needs nothing while the tag says so
    kept = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert (kept.unchanged, kept.work) == (1, [])
    # When a route is deleted by hand / Then it is repaired
    world.tables[ours][0].routes.pop()
    assert [
        w.action for w in plan_network(world.views(), Scope(), vendor_settings, world.policy()).work
    ] == ["repair-incoming"]
    # When the tag is removed / Then our routes and the peering are removed
    world.tag(ours)
    gone = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert [(w.action, w.peering_id) for w in gone.work] == [("remove-incoming", pcx)]


def test_a_cidr_the_vendor_adds_after_acceptance_waits_until_the_tag_is_set_again(
    world: World, vendor_settings: Settings
) -> None:
    # Given a vendor request this stack accepted (its CIDR pinned), and then a CIDR the vendor
    # adds to its VPC, which the request now reports too
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    vendor = world.vpc("192.168.0.0/17", account=VENDOR)
    pcx = accepted(world, vendor, ours)
    world.vpcs[vendor].cidr_blocks.append("192.168.200.0/24")  # the peering's list is the VPC's
    [peering] = [p for p in world.peerings if p.peering_id == pcx]
    assert "192.168.200.0/24" in peering.requester.cidr_blocks
    # When a sweep plans it / Then nothing is to do: the new CIDR is not routed
    swept = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert (swept.unchanged, swept.work) == (1, [])
    # When a reconcile started by the VPC's tag change plans it (the tag set again)
    retagged = plan_network(
        world.views(), Scope(changed=frozenset({ours})), vendor_settings, world.policy()
    )
    # Then the request is repaired with both CIDRs pinned, the new one routed
    assert (retagged.failed, retagged.ignored, retagged.skipped) == ([], [], []), retagged
    [item] = retagged.work
    assert (item.action, item.accept_cidrs) == (
        "repair-incoming",
        ("192.168.0.0/17", "192.168.200.0/24"),
    )
    assert "192.168.200.0/24 missing" in item.reason


def test_a_request_accepted_before_pins_existed_gets_its_cidrs_pinned(
    world: World, vendor_settings: Settings
) -> None:
    # Given a request this stack accepted without a pin (before the upgrade)
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    vendor = world.vpc("192.168.0.0/16", account=VENDOR)
    tags = {"vpc-peering:managed-by": "vpc-peering", "vpc-peering:accepted-for": ours.vpc_id}
    world.peer(vendor, ours, status="active", group=None, managed=False, accepter_tags=tags)
    # When a sweep plans it / Then it is repaired to pin what the vendor reports now
    [item] = plan_network(world.views(), Scope(), vendor_settings, world.policy()).work
    assert (item.action, item.accept_cidrs) == ("repair-incoming", ("192.168.0.0/16",))
    assert "accepted CIDRs to pin" in item.reason


def test_a_peering_the_vendor_deleted_gets_our_routes_removed(
    world: World, vendor_settings: Settings
) -> None:
    ours = world.vpc("10.0.0.0/16", accept_from=VENDOR)
    vendor = world.vpc("192.168.0.0/16", account=VENDOR)
    pcx = accepted(world, vendor, ours, status="deleted")
    plan = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    assert [(w.action, w.peering_id) for w in plan.work] == [("remove-incoming", pcx)]


# ------------------------------------------------------------------------ isolation
def test_an_unexpected_error_planning_one_pair_is_that_pairs_failure(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mesh of three, and a planner that breaks (a bug) on every pair of c
    a, b, c = (world.vpc(f"10.{i}.0.0/16", mesh="blue") for i in range(3))
    real = network.planning.plan_pair

    def plan_pair(request: Any, *args: Any) -> Any:
        if c.vpc_id in (request.requester.vpc_id, request.accepter.vpc_id):
            raise RuntimeError("boom " * 1000)
        return real(request, *args)

    monkeypatch.setattr(network.planning, "plan_pair", plan_pair)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then c's two pairs are InternalError, their cause clipped; a and b are still peered
    assert sorted((f.pair, f.error) for f in plan.failed) == sorted(
        (f"{x} ~ {c}", "InternalError") for x in (a, b)
    )
    assert all(f.cause.startswith("RuntimeError: boom") for f in plan.failed)
    assert all(len(f.cause) <= MAX_CAUSE for f in plan.failed)
    assert actions(plan.work) == [("create", pair(a, b))]


def test_an_unexpected_error_reading_one_vpcs_tags_is_that_vpcs_failure(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a converged pair a-b, and c whose tags break the tag reader
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    c = world.vpc("10.2.0.0/16", mesh="blue")
    world.peer(a, c)
    real = network.membership

    def membership(key: VpcKey, tags: Any) -> Any:
        if key == c:
            raise KeyError("unexpected")
        return real(key, tags)

    monkeypatch.setattr(network, "membership", membership)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then c is its own failure and left as it is (its peering with a is not removed)
    assert [(f.vpc, f.error) for f in plan.failed] == [(str(c), "InternalError")]
    assert actions(plan.work) == [("create", pair(a, b))]


def test_an_unexpected_error_on_one_removal_is_that_peerings_failure(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two group peerings no group wants, one of them with tags that break the reader
    a, b, c = (world.vpc(f"10.{i}.0.0/16") for i in range(3))
    keep = world.peer(a, b)
    gone = world.peer(a, c)
    next(p for p in world.peerings if p.peering_id == keep).tags["boom"] = "1"
    real = network.ownership.group_of

    def group_of(tags: dict[str, str], settings: Settings) -> str | None:
        if "boom" in tags:
            raise ValueError("unexpected")
        return real(tags, settings)

    monkeypatch.setattr(network.ownership, "group_of", group_of)
    # When planned
    plan = plan_network(world.views(), Scope(), settings, world.policy())
    # Then that peering is a failure, the other is removed
    assert [(f.pair, f.action, f.error) for f in plan.failed] == [
        (f"{a} ~ {b}", "remove", "InternalError")
    ]
    assert [(w.action, w.peering_id) for w in plan.work] == [("remove", gone)]


def test_an_unexpected_error_on_one_incoming_request_is_that_requests_failure(
    world: World, vendor_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two vendor requests to two opted-in VPCs, one of which breaks the policy check
    ours = [world.vpc(f"10.{i}.0.0/16", accept_from=VENDOR) for i in range(2)]
    vendors = [world.vpc(f"192.168.{i}.0/24", account=VENDOR) for i in range(2)]
    pcxs = [
        world.peer(v, o, status="pending-acceptance", group=None, managed=False, routed=False)
        for v, o in zip(vendors, ours, strict=True)
    ]
    real = network.policy.check_incoming

    def check_incoming(peering: Any, tags: Any, settings: Settings) -> None:
        if peering.peering_id == pcxs[0]:
            raise ValueError("unexpected")
        real(peering, tags, settings)

    monkeypatch.setattr(network.policy, "check_incoming", check_incoming)
    # When planned
    plan = plan_network(world.views(), Scope(), vendor_settings, world.policy())
    # Then the one is a failure, the other is accepted
    assert [(f.pair, f.error) for f in plan.failed] == [
        (f"{vendors[0]} ~ {ours[0]}", "InternalError")
    ]
    assert [(w.action, w.peering_id) for w in plan.work] == [("accept", pcxs[1])]
