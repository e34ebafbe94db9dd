"""Consent through the emulator (issue 16, item 5), with AccepterOptInTagKey and
RejectUnwanted set: each test replays an attack that worked before.

One emulator for the module, a tag event window of 300 s: the tests drive the reconciles they
mean to see by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from emulator.testing import EmulatorHandle, running_emulator
from tools.policy import set_group

from .conftest import HUB, MEMBER
from .network import Network

OPT_IN = "vpc-peering:opt-in"
PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "AccepterOptInTagKey": OPT_IN,
    "RejectUnwanted": "true",
    "TagEventWindowSeconds": "300",
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(parameter_overrides=PARAMETERS) as handle:
        yield handle


@pytest.fixture
def network(emu: EmulatorHandle) -> Network:
    return Network(emu, admit_groups=False)


def status(network: Network, account: str, pcx: str) -> str:
    found = network.ec2(account).describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    return str(found["VpcPeeringConnections"][0]["Status"]["Code"])


def test_a_victim_without_the_opt_in_is_not_peered_with_an_opted_in_joiner(
    network: Network, emu: EmulatorHandle
) -> None:
    # Attack: the opt-in was asked only of whichever side was the accepter, so in tag mode a
    # victim without the tag (here the requester: its account sorts first) was peered with an
    # opted-in attacker.
    group = f"c-{uuid.uuid4().hex[:8]}"
    set_group(emu, group, {"Accounts": [HUB, MEMBER]})
    victim = network.vpc(MEMBER, mesh=group)
    network.vpc(HUB, mesh=group, opt_in="true")  # the attacker
    result = network.reconcile({"Group": group})
    # Then nothing is made, and the pair's failure names the VPC without the opt-in
    assert network.peerings(group) == {}
    assert result.error == "ReconcileIncomplete"
    assert f"{victim.vpc_id} ({MEMBER} us-east-1) ~" in (result.cause or "")
    assert "AcceptDenied" in (result.cause or "")
    # And once the victim opts in too, the pair is made
    network.tag(victim, opt_in="true")
    assert network.reconcile({"Group": group}).status == "SUCCEEDED"
    assert len(network.peerings(group)) == 1


def test_reject_unwanted_leaves_requests_into_other_teams_vpcs_alone(network: Network) -> None:
    # Attack: RejectUnwanted=true rejected pending requests into every VPC in scope, other
    # teams' included. Given a request between two VPCs no accepter-only tag concerns
    theirs = network.vpc(MEMBER)
    other = network.vpc(MEMBER)
    pcx = network.ec2(MEMBER).create_vpc_peering_connection(
        VpcId=other.vpc_id, PeerVpcId=theirs.vpc_id
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    # When the accepter is reconciled
    result = network.reconcile({"Vpc": {"VpcId": theirs.vpc_id, "AccountId": MEMBER}})
    # Then the request is not rejected: it is not this stack's to answer
    assert result.status == "SUCCEEDED", result
    assert result.output["Rejected"] == 0
    assert status(network, MEMBER, pcx) == "pending-acceptance"
