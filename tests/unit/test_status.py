"""The network status (pure): each group's members and the state of each pair, the managed
peerings, and the requests pending approval, from what the hub read."""

from __future__ import annotations

import pytest

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
