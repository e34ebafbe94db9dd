"""The network status (pure): each group's members and the state of each pair, the managed
peerings, and the requests pending approval, from what the hub read."""

from __future__ import annotations

import json

import pytest

from vpc_peering.group_policy import read
from vpc_peering.settings import Settings
from vpc_peering.status import network_status

from .network_world import MEMBER, R1, World

VENDOR = "444444444444"


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


def test_each_pair_of_a_group_has_its_state_and_members_their_names(world: World) -> None:
    # Given a mesh of three: one pair active and routed, one pending, one not made
    a = world.vpc("10.0.0.0/16", mesh="blue")
    b = world.vpc("10.1.0.0/16", account=MEMBER, mesh="blue")
    c = world.vpc("10.2.0.0/16", mesh="blue")
    world.vpcs[a].tags["Name"] = "app"
    active = world.peer(a, b)
    world.peer(a, c, status="pending-acceptance", routed=False)

    # When the status is made
    status = network_status(world.views(), world.settings, world.policy())

    # Then every member is listed with its Name, account, region and CIDRs
    assert status.groups == {"blue": [str(k) for k in sorted((a, b, c))]}
    app = next(v for v in status.vpcs if v.vpc_id == a.vpc_id)
    assert (app.name, app.cidr_blocks, app.groups) == ("app", ["10.0.0.0/16"], ["mesh:blue"])
    # and each pair its state, as the reconcile judges it
    states = {frozenset((p.requester, p.accepter)): p for p in status.pairs}
    assert states[frozenset((str(a), str(b)))].state == "active"
    assert states[frozenset((str(a), str(b)))].vpc_peering_connection_id == active
    assert states[frozenset((str(a), str(c)))].state == "pending"
    assert states[frozenset((str(b), str(c)))].state == "missing"
    # and the managed peerings, wherever they are, with their group
    assert {p.group for p in status.peerings} == {"blue"}
    assert len(status.peerings) == 2


def test_one_group_only_and_an_explicit_peering_is_listed(world: World) -> None:
    a, b = world.vpc("10.0.0.0/16", mesh="blue"), world.vpc("10.1.0.0/16", mesh="blue")
    c, d = world.vpc("10.2.0.0/16", mesh="red"), world.vpc("10.3.0.0/16", mesh="red")
    x, y = world.vpc("10.4.0.0/16"), world.vpc("10.5.0.0/16")
    world.peer(a, b)
    world.peer(c, d, group="red")
    explicit = world.peer(x, y, group=None)

    blue = network_status(world.views(), world.settings, world.policy(), group="blue")
    everything = network_status(world.views(), world.settings, world.policy())

    assert set(blue.groups) == {"blue"}
    assert {p.state for p in blue.pairs} == {"active"}
    assert len(blue.pairs) == 1
    assert explicit in {p.vpc_peering_connection_id for p in everything.peerings}
    assert (
        next(p for p in everything.peerings if p.vpc_peering_connection_id == explicit).group
        is None
    )


def test_a_request_made_elsewhere_waits_for_approval(world: World, settings: Settings) -> None:
    vendor_settings = settings.model_copy(
        update={"external_requester_account_ids": frozenset({VENDOR})}
    )
    world.settings = vendor_settings
    ours = world.vpc("10.0.0.0/16", mesh="blue")
    other = world.vpc("192.168.0.0/16", account=VENDOR)
    pcx = world.peer(other, ours, status="pending-acceptance", group=None, managed=False,
                     routed=False)  # fmt: skip

    status = network_status(world.views(), vendor_settings, world.policy())

    [pending] = status.pending_approval
    assert pending.vpc_peering_connection_id == pcx
    assert "accept-from" in pending.reason
    assert R1 in str(status.regions)


PARAMETER = "/vpc-peering/test/group-policy"


def test_vpcs_tagged_into_a_group_but_not_admitted_are_listed_with_why(world: World) -> None:
    # Given blue open to the hub's account, red in no policy, and green needing approval
    a = world.vpc("10.0.0.0/16", mesh="blue")
    b = world.vpc("10.1.0.0/16", mesh="blue")
    outsider = world.vpc("10.2.0.0/16", account=MEMBER, mesh="blue")
    red = world.vpc("10.3.0.0/16", mesh="red")
    green = world.vpc("10.4.0.0/16", mesh="green")
    world.vpcs[red].tags["Name"] = "sandbox"
    policy = read(
        PARAMETER,
        json.dumps({"Groups": {
            "blue": {"Accounts": [a.account_id]},
            "green": {"Accounts": [a.account_id], "Join": "approval"},
        }}),
    )  # fmt: skip

    # When the status is made, for every group and for red alone
    status = network_status(world.views(), world.settings, policy)
    only_red = network_status(world.views(), world.settings, policy, group="red")

    # Then the members are only those admitted, and each other tagged VPC is listed under the
    # group it asked for, with its state and the cause
    assert status.groups == {"blue": [str(k) for k in sorted((a, b))]}
    found = {(c.group, c.vpc_id): c for c in status.not_admitted}
    assert set(found) == {("blue", outsider.vpc_id), ("red", red.vpc_id), ("green", green.vpc_id)}
    refused = found[("red", red.vpc_id)]
    assert (refused.state, refused.error, refused.name) == (
        "refused",
        "GroupPolicyDenied",
        "sandbox",
    )
    assert refused.cause == "group red is not in the group policy"
    assert refused.groups == ["mesh:red"]
    assert found[("blue", outsider.vpc_id)].state == "refused"
    assert MEMBER in found[("blue", outsider.vpc_id)].cause
    waiting = found[("green", green.vpc_id)]
    assert (waiting.state, waiting.error) == ("pending approval", None)
    assert "10.4.0.0/16" in waiting.cause
    assert status.group_policy is None
    # and one group's status has its own only
    assert [(c.group, c.vpc_id) for c in only_red.not_admitted] == [("red", red.vpc_id)]
    assert only_red.groups == {}


def test_without_a_usable_policy_every_tagged_vpc_is_shut_out_and_the_policy_named(
    world: World,
) -> None:
    # Given two VPCs tagged into blue and no group policy at all
    a = world.vpc("10.0.0.0/16", mesh="blue")
    b = world.vpc("10.1.0.0/16", mesh="blue")

    # When the status is made
    status = network_status(world.views(), world.settings, read(PARAMETER, None))

    # Then no VPC is a member, each tagged one is listed as refused because the policy cannot
    # be used, and the one line naming the parameter is given
    assert status.groups == {}
    assert {(c.vpc_id, c.state, c.error) for c in status.not_admitted} == {
        (a.vpc_id, "refused", "GroupPolicyInvalid"),
        (b.vpc_id, "refused", "GroupPolicyInvalid"),
    }
    assert status.group_policy is not None
    assert PARAMETER in status.group_policy
    assert "every group is closed" in status.group_policy
