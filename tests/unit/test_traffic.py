"""Pure rules for traffic beyond routes (traffic.py), on data built by hand: the rules a request
asks for, how a rerun converges them, network ACL verdicts and Verify's warnings."""

from __future__ import annotations

from typing import Any

import pytest

from vpc_peering.errors import InvalidInput
from vpc_peering.models.documents import PeeringDocument, RouteEntry, SecurityGroupRuleEntry, Side
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import CreateRequest
from vpc_peering.observed import (
    AclEntry,
    NetworkAcl,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    TrafficView,
)
from vpc_peering.settings import Settings
from vpc_peering.traffic import (
    acl_denial,
    check_sources,
    converge_rules,
    plan_rules,
    traffic_warnings,
)

ACCOUNT = "123456789012"
PCX = "pcx-0000000000000000a"
REQ, ACC = "vpc-0000000a", "vpc-0000000b"
SG_REQ, SG_ACC = "sg-0000000a", "sg-0000000b"


def side(vpc_id: str, cidr: str, region: str = "us-east-1") -> Side:
    return Side(vpc_id=vpc_id, account_id=ACCOUNT, region=region, cidr_blocks=[cidr])


def request(*rules: dict[str, Any]) -> CreateRequest:
    return parse(
        CreateRequest,
        {
            "Requester": {"VpcId": REQ},
            "Accepter": {"VpcId": ACC},
            "SecurityGroupRules": list(rules),
        },
    )


def rule(side_name: str, group: str, port: int, source: str = "PeerVpc") -> dict[str, Any]:
    return {
        "Side": side_name,
        "GroupId": group,
        "Protocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "Source": source,
    }


def document(west: bool = False) -> PeeringDocument:
    return PeeringDocument(
        execution_name="e",
        execution_id="id-1",
        requester=side(REQ, "10.0.0.0/16"),
        accepter=side(ACC, "172.16.0.0/16", "us-west-2" if west else "us-east-1"),
        vpc_peering_connection_id=PCX,
        routes=[
            RouteEntry(side="Requester", route_table_id="rtb-a", destination="172.16.0.0/16"),
            RouteEntry(side="Accepter", route_table_id="rtb-b", destination="10.0.0.0/16"),
        ],
    )


GROUPS = {
    SG_REQ: SecurityGroup(SG_REQ, REQ, ACCOUNT, []),
    SG_ACC: SecurityGroup(SG_ACC, ACC, ACCOUNT, []),
}
ROUTED = {"Requester": ["172.16.0.0/16"], "Accepter": ["10.0.0.0/16"]}


# ----------------------------------------------------------------------------- the request
@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"FromPort": 90, "ToPort": 80}, "FromPort 90, ToPort 80"),
        ({"FromPort": 0, "ToPort": 70000}, "0 to 65535"),
        ({"Protocol": "-1", "FromPort": 22, "ToPort": 22}, "takes no ports"),
        ({"Protocol": "icmp", "FromPort": 300, "ToPort": 0}, "ICMP type"),
        ({"Protocol": "gre"}, "'gre' is not one of"),
        ({"Source": "vpc-0000000a"}, "PeerVpc or a security group id"),
    ],
)
def test_a_bad_rule_is_named_with_its_value(given: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        request(rule("Accepter", SG_ACC, 5432) | given)
    assert "SecurityGroupRules[0]" in str(raised.value)
    assert says in str(raised.value)


def test_the_same_rule_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must not repeat a rule"):
        request(rule("Accepter", SG_ACC, 5432), rule("Accepter", SG_ACC, 5432))


def test_a_peer_group_across_regions_is_refused_naming_the_rule_and_why() -> None:
    doc = document(west=True)
    sides = {"Requester": doc.requester, "Accepter": doc.accepter}
    asked = request(rule("Accepter", SG_ACC, 5432), rule("Accepter", SG_ACC, 443, SG_REQ))
    with pytest.raises(InvalidInput) as raised:
        check_sources(asked, sides)
    text = str(raised.value)
    assert text.startswith(f"SecurityGroupRules[1].Source: {SG_REQ} is a security group")
    assert "same region" in text
    # A PeerVpc source across regions is fine
    check_sources(request(rule("Accepter", SG_ACC, 5432)), sides)


def test_peer_vpc_is_one_rule_per_routed_cidr_and_groups_must_be_their_sides() -> None:
    doc = document()
    asked = request(rule("Accepter", SG_ACC, 5432), rule("Accepter", SG_ACC, 443, SG_REQ))
    entries = plan_rules(asked, doc, GROUPS, {**ROUTED, "Accepter": ["10.0.0.0/16", "10.1.0.0/16"]})
    assert [(e.side, e.cidr or e.source) for e in entries] == [
        ("Accepter", "10.0.0.0/16"),
        ("Accepter", "10.1.0.0/16"),
        ("Accepter", SG_REQ),
    ]
    with pytest.raises(InvalidInput, match=rf"SecurityGroupRules\[0\].GroupId: {SG_REQ} is not"):
        plan_rules(request(rule("Accepter", SG_REQ, 22)), doc, GROUPS, ROUTED)


# ------------------------------------------------------------------------------- convergence
def test_a_rerun_revokes_only_this_peerings_rules_no_longer_asked(settings: Settings) -> None:
    doc = document()
    doc.security_group_rules = [
        SecurityGroupRuleEntry(
            side="Accepter", group_id=SG_ACC, protocol="tcp", from_port=5432, to_port=5432,
            source="PeerVpc", cidr="10.0.0.0/16",
        )
    ]  # fmt: skip
    ours = {"vpc-peering:managed-by": settings.stack_name, "vpc-peering:peering-id": PCX}
    kept = SecurityGroupRule(SG_ACC, "tcp", 5432, 5432, "10.0.0.0/16", None, "sgr-1", ours)
    dropped = SecurityGroupRule(SG_ACC, "tcp", 22, 22, "10.0.0.0/16", None, "sgr-2", ours)
    by_hand = SecurityGroupRule(SG_ACC, "tcp", 80, 80, "10.0.0.0/16", None, "sgr-3", {})
    other_peering = {**ours, "vpc-peering:peering-id": "pcx-0000000000000000b"}
    elsewhere = SecurityGroupRule(
        SG_ACC, "tcp", 81, 81, "10.0.0.0/16", None, "sgr-4", other_peering
    )
    revoke = converge_rules(
        doc, [kept, dropped, by_hand], [kept, dropped, by_hand, elsewhere], settings
    )
    assert revoke == [dropped]
    assert (doc.security_group_rules[0].state, doc.security_group_rules[0].rule_id) == (
        "present",
        "sgr-1",
    )


def test_an_identical_rule_made_by_hand_is_reused_not_owned(settings: Settings) -> None:
    doc = document()
    doc.security_group_rules = [
        SecurityGroupRuleEntry(
            side="Accepter", group_id=SG_ACC, protocol="tcp", from_port=5432, to_port=5432,
            source="PeerVpc", cidr="10.0.0.0/16",
        )
    ]  # fmt: skip
    by_hand = SecurityGroupRule(SG_ACC, "tcp", 5432, 5432, "10.0.0.0/16", None, "sgr-9", {})
    assert converge_rules(doc, [by_hand], [], settings) == []
    assert doc.security_group_rules[0].state == "reused"


# ---------------------------------------------------------------------------- network ACLs
def acl(*entries: tuple[int, bool, str, str]) -> NetworkAcl:
    return NetworkAcl(
        "acl-1",
        ACC,
        ["subnet-1"],
        [AclEntry(n, egress, "-1", action == "allow", cidr) for n, egress, action, cidr in entries],
    )


def test_acl_rules_decide_in_number_order() -> None:
    peer = "10.0.0.0/16"
    allow_all = (100, False, "allow", "0.0.0.0/0")
    assert acl_denial(acl(allow_all), peer, egress=False) is None
    assert acl_denial(acl((90, False, "deny", "10.0.5.0/24"), allow_all), peer, False) == (
        "rule 90 denies 10.0.5.0/24"
    )
    assert acl_denial(acl((110, False, "deny", peer), allow_all), peer, False) is None
    assert "final rule (*)" in (
        acl_denial(acl((100, False, "allow", "10.0.0.0/24")), peer, False) or ""
    )
    assert acl_denial(acl((32767, True, "deny", "0.0.0.0/0")), peer, True) == (
        "rule * denies 0.0.0.0/0"
    )


LOCAL = Route("10.0.0.0/16", "local", "active", "", None)


def test_warnings_for_a_denying_acl_no_admitting_rule_and_no_flow_logs() -> None:
    doc = document()
    tables = {
        "rtb-a": RouteTable("rtb-a", REQ, True, [], {}, [LOCAL], {}),
        "rtb-b": RouteTable("rtb-b", ACC, False, ["subnet-1"], {"subnet-1": "a-1"}, [], {}),
    }  # fmt: skip
    admitting = SecurityGroup(
        SG_REQ, REQ, ACCOUNT, [SecurityGroupRule(SG_REQ, "tcp", 443, 443, "172.16.0.0/16", None)]
    )
    views = {
        "Requester": TrafficView([admitting], [], flow_logs=True),
        "Accepter": TrafficView(
            [GROUPS[SG_ACC]],
            [acl((90, False, "deny", "10.0.0.0/8"), (100, False, "allow", "0.0.0.0/0"),
                 (100, True, "allow", "0.0.0.0/0"))],
            flow_logs=False,
        ),
    }  # fmt: skip
    warnings = traffic_warnings(doc, views, tables)
    assert [(w.kind, w.side) for w in warnings] == [
        ("NetworkAcl", "Accepter"),
        ("NoSecurityGroupRule", "Accepter"),
        ("NoFlowLogs", "Accepter"),
    ]
    assert "inbound from the peer's 10.0.0.0/16, rule 90 denies 10.0.0.0/8" in warnings[0].detail
    assert "subnet-1" in warnings[0].detail
    assert all(w.advice for w in warnings)
