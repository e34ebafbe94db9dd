"""Accepter-only mode through the emulator: a vendor, in an account of its own outside the
boundary, sends peering requests exactly as a vendor would (its own credentials,
``create-vpc-peering-connection --peer-owner-id``); a VPC opts in with its
``vpc-peering:accept-from`` tag, and the reconcile machine accepts what the double opt-in
allows, routes our side only, and removes it again when the tag goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator

from .conftest import HUB, MEMBER
from .network import Network, Tagged

VENDOR = "444444444444"
STRANGER = "555555555555"
PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ExternalRequesterAccountIds": VENDOR,
    "TagEventWindowSeconds": "2",
}


@pytest.fixture(scope="module")
def emu_accepting() -> Iterator[EmulatorHandle]:
    with running_emulator(parameter_overrides=PARAMETERS) as handle:
        yield handle


@pytest.fixture
def network(emu_accepting: EmulatorHandle) -> Network:
    return Network(emu_accepting)


def request_from(
    network: Network, account: str, ours: Tagged, cidr: str = ""
) -> tuple[str, Tagged]:
    """The vendor's side: its own VPC (a secondary CIDR too) and its request to ``ours``."""
    vendor = network.vpc(account=account)
    ec2 = network.ec2(account)
    secondary = vendor_secondary(vendor)
    if cidr:
        vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        vendor = Tagged(vpc_id, account, "us-east-1", cidr)
    else:
        ec2.associate_vpc_cidr_block(VpcId=vendor.vpc_id, CidrBlock=secondary)
    pcx = ec2.create_vpc_peering_connection(
        VpcId=vendor.vpc_id, PeerVpcId=ours.vpc_id, PeerOwnerId=ours.account
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    return pcx, vendor


def status(network: Network, account: str, pcx: str) -> str:
    found = network.ec2(account).describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    return str(found["VpcPeeringConnections"][0]["Status"]["Code"])


def vendor_secondary(vendor: Tagged) -> str:
    """The vendor VPC's second CIDR: shared address space (100.64.0.0/10, inside the default
    AllowedPeerCidrs), one /16 per VPC."""
    return f"100.{64 + int(vendor.cidr.split('.')[1]) % 64}.0.0/16"


def routes_to(network: Network, vpc: Tagged, pcx: str) -> dict[str, list[str]]:
    """Route table id -> destinations routed to the peering, for every table of the VPC."""
    return {
        table: sorted(d for d, target in routes.items() if target == pcx)
        for table, routes in network.routes(vpc).items()
    }


def reconcile_ours(network: Network, ours: Tagged) -> Any:
    return network.reconcile({"Vpc": {"VpcId": ours.vpc_id, "AccountId": ours.account}})


def test_an_opted_in_vpc_accepts_a_vendor_request_and_routes_our_side_only(
    network: Network,
) -> None:
    # Given our VPC, with two route tables, accepting requests from the vendor's account
    before = network.arns()
    ours = network.vpc(tables=2, accept_from=VENDOR)
    network.settled(before)
    # And the vendor's request to it, from the vendor's own account (a VPC with two CIDRs)
    pcx, vendor = request_from(network, VENDOR, ours)
    vendor_cidrs = sorted([vendor.cidr, vendor_secondary(vendor)])
    vendor_tables_before = network.routes(vendor)
    # When our VPC is reconciled (the sweep would do the same)
    result = reconcile_ours(network, ours)
    # Then the request is accepted, and every table of ours routes both vendor CIDRs to it
    assert result.succeeded, (result.error, result.cause)
    assert result.output["Accepted"] == 1
    assert status(network, HUB, pcx) == "active"
    assert set(map(tuple, routes_to(network, ours, pcx).values())) == {tuple(vendor_cidrs)}
    # And nothing changed in the vendor's account
    assert network.routes(vendor) == vendor_tables_before
    # And our view of the peering says it is this stack's, accepted for our VPC
    tags = {
        t["Key"]: t["Value"]
        for t in network.ec2().describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
            "VpcPeeringConnections"
        ][0]["Tags"]
    }
    assert tags["vpc-peering:accepted-for"] == ours.vpc_id
    # When reconciled again / Then nothing changes (no mutating call)
    calls = len(network.emu.calls())
    again = reconcile_ours(network, ours)
    assert again.succeeded, (again.error, again.cause)
    assert (again.output["Accepted"], again.output["Unchanged"]) == (0, 1)
    changed = [
        c["operation"]
        for c in network.emu.calls()[calls:]
        if c["service"] == "ec2" and not c["operation"].startswith("Describe")
    ]
    assert changed == []


def test_a_cidr_the_vendor_adds_after_acceptance_is_routed_only_once_the_tag_is_set_again(
    network: Network,
) -> None:
    # Attack (issue 16, item 3): the requester's CIDRs were read again at every sweep, so a
    # CIDR the vendor added after acceptance was routed with nobody asked again.
    # Given a vendor request accepted into our VPC, its two CIDRs routed and pinned
    before = network.arns()
    ours = network.vpc(accept_from=VENDOR)
    network.settled(before)
    pcx, vendor = request_from(network, VENDOR, ours)
    accepted = reconcile_ours(network, ours)
    assert accepted.succeeded, (accepted.error, accepted.cause)
    pinned = sorted([vendor.cidr, vendor_secondary(vendor)])
    assert set(map(tuple, routes_to(network, ours, pcx).values())) == {tuple(pinned)}
    [seen] = network.ec2().describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ]
    tags = {t["Key"]: t["Value"] for t in seen["Tags"]}
    assert tags["vpc-peering:accepted-cidrs"] == " ".join(pinned)
    # When the vendor adds a CIDR to its VPC (inside AllowedPeerCidrs), and a sweep runs
    added = f"172.{16 + int(vendor.cidr.split('.')[1]) % 16}.0.0/16"
    network.ec2(VENDOR).associate_vpc_cidr_block(VpcId=vendor.vpc_id, CidrBlock=added)
    swept = network.reconcile({})
    # Then the request now reports it, but nothing routes it: the pair is unchanged
    assert swept.status != "FAILED", (swept.error, swept.cause)
    [seen] = network.ec2().describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ]
    assert added in {b["CidrBlock"] for b in seen["RequesterVpcInfo"]["CidrBlockSet"]}
    assert set(map(tuple, routes_to(network, ours, pcx).values())) == {tuple(pinned)}
    # When our VPC's accept-from tag is set again (a value EC2 reports as changed)
    before = network.arns()
    network.tag(ours, accept_from=f"{VENDOR} {STRANGER}")
    network.settled(before)
    # Then the new CIDR is routed too, and pinned
    now = sorted([*pinned, added])
    assert set(map(tuple, routes_to(network, ours, pcx).values())) == {tuple(now)}
    [seen] = network.ec2().describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])[
        "VpcPeeringConnections"
    ]
    assert {t["Key"]: t["Value"] for t in seen["Tags"]}["vpc-peering:accepted-cidrs"] == " ".join(
        now
    )


def test_requests_the_double_opt_in_refuses_stay_pending_and_are_listed(
    network: Network,
) -> None:
    # Given a VPC whose tag accepts the vendor and another account (which the stack's
    # ExternalRequesterAccountIds does not name), a request from that account, and a vendor
    # request to a VPC of ours that does not opt in
    before = network.arns()
    opted_in = network.vpc(accept_from=f"{VENDOR} {STRANGER}")
    network.settled(before)
    silent = network.vpc()
    from_stranger, _ = request_from(network, STRANGER, opted_in)
    to_silent, _ = request_from(network, VENDOR, silent)
    # When everything is reconciled
    result = network.reconcile({})
    # Then both stay pending, each listed as Ignored with its reason
    for pcx in (from_stranger, to_silent):
        assert status(network, HUB, pcx) == "pending-acceptance"
    ignored = {i["VpcPeeringConnectionId"]: i["Reason"] for i in _output(result)["Ignored"]}
    assert "not in ExternalRequesterAccountIds" in ignored[from_stranger]
    assert "has no vpc-peering:accept-from tag" in ignored[to_silent]


def test_a_vendor_whose_cidrs_overlap_ours_is_refused_with_the_reason(network: Network) -> None:
    before = network.arns()
    ours = network.vpc(accept_from=VENDOR)
    network.settled(before)
    pcx, _ = request_from(network, VENDOR, ours, cidr=ours.cidr.replace(".0.0/16", ".64.0/18"))
    result = reconcile_ours(network, ours)
    assert result.succeeded, (result.error, result.cause)
    [ignored] = result.output["Ignored"]
    assert ignored["VpcPeeringConnectionId"] == pcx
    assert "overlaps" in ignored["Reason"]
    assert status(network, HUB, pcx) == "pending-acceptance"


def test_removing_the_tag_removes_our_routes_and_the_peering(network: Network) -> None:
    # Given an accepted, routed vendor peering
    before = network.arns()
    ours = network.vpc(accept_from=VENDOR)
    network.settled(before)
    pcx, _ = request_from(network, VENDOR, ours)
    assert reconcile_ours(network, ours).succeeded
    assert any(routes_to(network, ours, pcx).values())
    # When the VPC's accept-from tag is removed (its tag change starts the reconcile)
    before = network.arns()
    network.untag(ours, "accept-from")
    network.settled(before)
    # Then our routes to it are gone and the peering is deleted
    assert not any(routes_to(network, ours, pcx).values())
    assert status(network, HUB, pcx) == "deleted"


def test_a_peering_the_vendor_deleted_gets_our_routes_removed_by_the_sweep(
    network: Network, emu_accepting: EmulatorHandle
) -> None:
    # Given an accepted, routed vendor peering, which the vendor then deletes
    before = network.arns()
    ours = network.vpc(accept_from=VENDOR)
    network.settled(before)
    pcx, _ = request_from(network, VENDOR, ours)
    assert reconcile_ours(network, ours).succeeded
    network.ec2(VENDOR).delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    # When the schedule's sweep runs
    before = network.arns()
    assert emu_accepting.fire_schedules()["fired"]
    network.settled(before)
    # Then our routes to it (blackholes now) are gone
    assert not any(routes_to(network, ours, pcx).values())


def _output(result: Any) -> dict[str, Any]:
    """A reconcile's report, whether it succeeded or not (a failed one reports on its event:
    here, the tests' reconciles succeed unless another test's group fails)."""
    assert result.output is not None, (result.error, result.cause)
    return dict(result.output)
