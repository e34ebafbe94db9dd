"""Issue 19 through the emulator (the real ASL and handlers): security-group rules asked with a
create are added tagged as the stack's and the peering's, verified, converged on a rerun and
revoked by cleanup (a rule made by hand is never touched); a peer-group reference across regions
is refused; Verify warns of a network ACL that denies the peer and of VPCs without flow logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle

from .conftest import MEMBER, Account, Vpc, side

Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]
Accounts = dict[str, Account]

STACK = "vpc-peering"


def new_group(accounts: Accounts, vpc: Vpc, name: str) -> str:
    ec2 = accounts[vpc.account].ec2(vpc.region)
    created = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc.vpc_id)
    return str(created["GroupId"])


def ingress(accounts: Accounts, vpc: Vpc, group_id: str) -> list[dict[str, Any]]:
    """The group's ingress rules as DescribeSecurityGroupRules shows them (ids, tags)."""
    ec2 = accounts[vpc.account].ec2(vpc.region)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    return [r for r in rules if not r["IsEgress"]]


def tags(rule: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in rule.get("Tags", [])}


def rule(
    side_name: str, group_id: str, port: int | tuple[int, int], source: str = "PeerVpc"
) -> dict[str, Any]:
    low, high = port if isinstance(port, tuple) else (port, port)
    return {
        "Side": side_name,
        "GroupId": group_id,
        "Protocol": "tcp",
        "FromPort": low,
        "ToPort": high,
        "Source": source,
    }


def test_two_rules_are_added_tagged_and_verified_then_a_rerun_revokes_the_dropped_one(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given two VPCs, a database group in the accepter and an app group in the requester
    app = make_vpc("10.40.0.0/16", subnets=("10.40.1.0/24",))
    db = make_vpc("172.20.0.0/16", subnets=("172.20.1.0/24",))
    app_sg, db_sg = new_group(accounts, app, "app"), new_group(accounts, db, "db")
    asked = [rule("Accepter", db_sg, 5432), rule("Accepter", db_sg, (8000, 8080), app_sg)]
    # When a create asks for both rules
    first = create({"Requester": side(app), "Accepter": side(db), "SecurityGroupRules": asked})
    # Then both are added, each tagged as this stack's and this peering's
    assert first.succeeded, (first.error, first.cause)
    peering_id = first.output["VpcPeeringConnectionId"]
    assert "ConfigureSecurityGroups" in first.states_entered
    rules = ingress(accounts, db, db_sg)
    by_source = {r.get("CidrIpv4") or r["ReferencedGroupInfo"]["GroupId"]: r for r in rules}
    assert set(by_source) == {app.cidr, app_sg}
    assert (by_source[app.cidr]["FromPort"], by_source[app.cidr]["ToPort"]) == (5432, 5432)
    assert (by_source[app_sg]["FromPort"], by_source[app_sg]["ToPort"]) == (8000, 8080)
    for made in rules:
        assert tags(made)["vpc-peering:managed-by"] == STACK
        assert tags(made)["vpc-peering:peering-id"] == peering_id
    states = {e["Cidr"] or e["Source"]: e["State"] for e in first.output["SecurityGroupRules"]}
    assert states == {app.cidr: "created", app_sg: "created"}
    # And Verify checked both
    rule_checks = [
        c for c in first.output["Verification"]["Checks"] if "security group rule" in c["Subject"]
    ]
    assert len(rule_checks) == 2
    assert all(c["Ok"] for c in rule_checks)

    # When the create runs again asking only for the CIDR rule
    second = create({"Requester": side(app), "Accepter": side(db), "SecurityGroupRules": asked[:1]})
    # Then the dropped rule is revoked and the kept one left as it was
    assert second.succeeded, (second.error, second.cause)
    left = ingress(accounts, db, db_sg)
    assert [r.get("CidrIpv4") for r in left] == [app.cidr]
    assert left[0]["SecurityGroupRuleId"] == by_source[app.cidr]["SecurityGroupRuleId"]
    states = {e["Cidr"] or e["Source"]: e["State"] for e in second.output["SecurityGroupRules"]}
    assert states == {app.cidr: "present", app_sg: "revoked"}

    # When the peering is cleaned up / Then its rule goes too
    removed = cleanup(second.output)
    assert removed.succeeded, (removed.error, removed.cause)
    assert ingress(accounts, db, db_sg) == []
    assert len(removed.output["Removed"]["SecurityGroupRules"]) == 1


def test_cleanup_leaves_a_hand_made_rule_in_the_same_group_and_reports_stale_references(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a pair with a rule of the tool's in a group, and rules made by hand in the same
    # group: one from the peer's CIDR on another port, one from the peer's security group
    app = make_vpc("10.41.0.0/16")
    db = make_vpc("172.21.0.0/16")
    app_sg, db_sg = new_group(accounts, app, "app"), new_group(accounts, db, "db")
    made = create(
        {
            "Requester": side(app),
            "Accepter": side(db),
            "SecurityGroupRules": [rule("Accepter", db_sg, 5432)],
        }
    )
    assert made.succeeded, (made.error, made.cause)
    ec2 = accounts[db.account].ec2(db.region)
    ec2.authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": app.cidr}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": app_sg}],
            },
        ],
    )
    # When the peering is cleaned up
    removed = cleanup(made.output)
    # Then only the tool's rule is revoked; the hand-made ones stay
    assert removed.succeeded, (removed.error, removed.cause)
    left = ingress(accounts, db, db_sg)
    assert sorted(r["FromPort"] for r in left) == [22, 6379]
    # And the hand-made reference to the peer's group, stale now, is reported, not removed
    (stale,) = removed.output["StaleReferences"]
    assert (stale["GroupId"], stale["ReferencedGroupId"], stale["FromPort"]) == (
        db_sg,
        app_sg,
        6379,
    )
    assert stale["Side"] == "Accepter"


def test_a_peer_group_reference_across_regions_is_refused(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given VPCs in two regions and a group in each
    east = make_vpc("10.42.0.0/16")
    west = make_vpc("172.22.0.0/16", region="us-west-2")
    east_sg, west_sg = new_group(accounts, east, "east"), new_group(accounts, west, "west")
    # When a rule on one references the other's group
    result = create(
        {
            "Requester": side(east),
            "Accepter": side(west),
            "SecurityGroupRules": [
                rule("Accepter", west_sg, 443),
                rule("Requester", east_sg, 443, west_sg),
            ],
        }
    )
    # Then the create fails with InvalidInput naming the rule and why, and makes nothing
    assert result.status == "FAILED"
    assert result.error == "InvalidInput"
    assert "SecurityGroupRules[1].Source" in (result.cause or "")
    assert west_sg in (result.cause or "")
    assert "same region" in (result.cause or "")
    assert "CreatePeering" not in result.states_entered


def test_bad_rules_are_named_with_their_values(make_vpc: MakeVpc, create: Run) -> None:
    app = make_vpc("10.43.0.0/16")
    db = make_vpc("172.23.0.0/16")
    result = create(
        {
            "Requester": side(app),
            "Accepter": side(db),
            "SecurityGroupRules": [
                {"Side": "Accepter", "GroupId": "sg-nothex", "Protocol": "tcp",
                 "FromPort": 1, "ToPort": 2, "Source": "PeerVpc"},
                {"Side": "Accepter", "GroupId": "sg-0123456789abcdef0", "Protocol": "tcp",
                 "FromPort": 90, "ToPort": 80, "Source": "PeerVpc"},
            ],
        }
    )  # fmt: skip
    assert result.error == "InvalidInput"
    cause = result.cause or ""
    assert "SecurityGroupRules[0].GroupId: 'sg-nothex' is not a security group id" in cause
    assert "SecurityGroupRules[1]" in cause
    assert "FromPort 90, ToPort 80" in cause


def test_a_group_of_another_vpc_is_refused(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    app = make_vpc("10.44.0.0/16")
    db = make_vpc("172.24.0.0/16")
    app_sg = new_group(accounts, app, "app")
    result = create(
        {
            "Requester": side(app),
            "Accepter": side(db),
            "SecurityGroupRules": [rule("Accepter", app_sg, 5432)],
        }
    )
    assert result.error == "InvalidInput"
    assert f"SecurityGroupRules[0].GroupId: {app_sg} is not a security group of {db.vpc_id}" in (
        result.cause or ""
    )


def test_warnings_name_a_denying_network_acl_and_vpcs_without_flow_logs(
    make_vpc: MakeVpc, create: Run, accounts: Accounts
) -> None:
    # Given a pair whose accepter subnet has a network ACL denying the requester's CIDR in,
    # and flow logs on the requester VPC only
    app = make_vpc("10.45.0.0/16", subnets=("10.45.1.0/24",))
    db = make_vpc("172.25.0.0/16", subnets=("172.25.1.0/24",))
    ec2 = accounts[db.account].ec2(db.region)
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [db.vpc_id]}])
    association = acls["NetworkAcls"][0]["Associations"][0]["NetworkAclAssociationId"]
    acl = ec2.create_network_acl(VpcId=db.vpc_id)["NetworkAcl"]["NetworkAclId"]
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=90, Protocol="-1", RuleAction="deny",
            Egress=egress, CidrBlock="10.45.0.0/16",
        )  # fmt: skip
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow",
            Egress=egress, CidrBlock="0.0.0.0/0",
        )  # fmt: skip
    logged = (
        accounts[app.account]
        .ec2(app.region)
        .create_flow_logs(
            ResourceIds=[app.vpc_id],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName="peering-flow-logs",
            DeliverLogsPermissionArn=f"arn:aws:iam::{app.account}:role/flow-logs",
        )
    )
    assert not logged.get("Unsuccessful"), logged
    # When the pair is created
    result = create({"Requester": side(app), "Accepter": side(db)})
    # Then it succeeds (warnings are never failures) and warns of the ACL, naming the rule
    # number and the CIDR, both ways, and of the VPC without flow logs, each with what to do
    assert result.succeeded, (result.error, result.cause)
    warnings = result.output["Warnings"]
    denied = [w for w in warnings if w["Kind"] == "NetworkAcl"]
    assert {w["Subject"] for w in denied} == {acl}
    assert len(denied) == 2
    for warning in denied:
        assert "rule 90 denies 10.45.0.0/16" in warning["Detail"]
        assert "create-network-acl-entry" in warning["Advice"]
    no_logs = [w for w in warnings if w["Kind"] == "NoFlowLogs"]
    assert [w["Subject"] for w in no_logs] == [db.vpc_id]
    assert "create-flow-logs" in no_logs[0]["Advice"]
    # And both sides, with no rule admitting the peer, are told so
    no_rule = {w["Side"] for w in warnings if w["Kind"] == "NoSecurityGroupRule"}
    assert no_rule == {"Requester", "Accepter"}
    assert result.output["Verification"]["Ok"] is True


def test_an_identical_rule_made_by_hand_is_reused_and_left_alone_at_cleanup(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a group that already admits the peer's CIDR on 5432, by hand
    app = make_vpc("10.46.0.0/16")
    db = make_vpc("172.26.0.0/16")
    db_sg = new_group(accounts, db, "db")
    accounts[db.account].ec2(db.region).authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "IpRanges": [{"CidrIp": app.cidr}],
            }
        ],
    )
    (by_hand,) = ingress(accounts, db, db_sg)
    # When a create asks for that very rule
    made = create(
        {
            "Requester": side(app),
            "Accepter": side(db),
            "SecurityGroupRules": [rule("Accepter", db_sg, 5432)],
        }
    )
    # Then the hand-made rule is reused (not tagged, not duplicated), and verified
    assert made.succeeded, (made.error, made.cause)
    (entry,) = made.output["SecurityGroupRules"]
    assert (entry["State"], entry["RuleId"]) == ("reused", by_hand["SecurityGroupRuleId"])
    assert ingress(accounts, db, db_sg) == [by_hand]
    # And cleanup leaves it
    removed = cleanup(made.output)
    assert removed.succeeded, (removed.error, removed.cause)
    assert ingress(accounts, db, db_sg) == [by_hand]


def test_compensation_revokes_the_rules_its_execution_added(
    make_vpc: MakeVpc, create: Run, accounts: Accounts, faults: EmulatorHandle
) -> None:
    # Given a create with a rule whose Verify will be refused (after the rule is added)
    app = make_vpc("10.47.0.0/16")
    db = make_vpc("172.27.0.0/16")
    db_sg = new_group(accounts, db, "db")
    faults.add_fault("ec2", "DescribeFlowLogs", "UnauthorizedOperation", times=0)
    # When it runs
    result = create(
        {
            "Requester": side(app),
            "Accepter": side(db),
            "SecurityGroupRules": [rule("Accepter", db_sg, 5432)],
        }
    )
    # Then it fails, and compensation revoked the rule it had added, with the peering
    assert result.status == "FAILED"
    assert result.error == "AccessDenied", result.cause
    assert "ConfigureSecurityGroups" in result.states_entered
    assert "Compensate" in result.states_entered
    assert ingress(accounts, db, db_sg) == []


def test_rules_in_a_member_account_and_another_region_are_made_there_and_removed(
    make_vpc: MakeVpc, create: Run, cleanup: Run, accounts: Accounts
) -> None:
    # Given a hub VPC and a member account's VPC in another region, a group in each
    hub = make_vpc("10.48.0.0/16", subnets=("10.48.1.0/24",))
    member = make_vpc("172.28.0.0/16", account=MEMBER, region="us-west-2")
    hub_sg, member_sg = new_group(accounts, hub, "web"), new_group(accounts, member, "db")
    # When created with a rule on each side, from the peer VPC
    made = create(
        {
            "Requester": side(hub),
            "Accepter": side(member),
            "SecurityGroupRules": [
                rule("Accepter", member_sg, 5432),
                rule("Requester", hub_sg, 443),
            ],
        }
    )
    # Then each rule is made in its own account and region (the member's through its role)
    assert made.succeeded, (made.error, made.cause)
    assert [r["CidrIpv4"] for r in ingress(accounts, member, member_sg)] == [hub.cidr]
    assert [r["CidrIpv4"] for r in ingress(accounts, hub, hub_sg)] == [member.cidr]
    # And both sides have a rule admitting the peer: no such warning
    assert not [w for w in made.output["Warnings"] if w["Kind"] == "NoSecurityGroupRule"]
    # When cleaned up / Then both are revoked
    removed = cleanup(made.output)
    assert removed.succeeded, (removed.error, removed.cause)
    assert ingress(accounts, member, member_sg) == []
    assert ingress(accounts, hub, hub_sg) == []
    assert removed.output["StaleReferences"] == []
