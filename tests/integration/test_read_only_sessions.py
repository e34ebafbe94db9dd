"""Read-only steps act in member accounts through a session that can only read.

Plan, Verify, CleanupPlan, Discover and NetworkStatus assume the member role with a session
policy (``aws.READ_ONLY_STEPS``); the emulator enforces session policies as IAM does. Proven
here: such a session cannot change anything, and across a create, a cleanup, a group reconcile
and a status read the calls each step's sessions make are exactly its policy's actions (a call
missing from a policy would fail the step: the emulator refuses it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle
from vpc_peering.aws import READ_ONLY_STEPS, session_policy

from .conftest import HUB, MEMBER, MEMBER_ROLE, Vpc, side
from .network import Network

Run = Callable[..., ExecutionResult]

#: Actions a read-only step makes on a path this module's stack does not take, with where.
NOT_CALLED_HERE = {
    ("CleanupPlan", "ec2:DescribeVpcs"): (
        "a Reject (RejectUnwanted=true) reads the accepter VPC's accept-from tag: "
        "test_consent.py runs it in a member account, under the same enforcement"
    ),
}


def _member_session(emu: EmulatorHandle, policy: str) -> Any:
    creds = emu.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}",
        RoleSessionName="vpc-peering@read-only-test",
        Policy=policy,
    )["Credentials"]
    return emu.client(
        "ec2",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@pytest.mark.parametrize("step", sorted(READ_ONLY_STEPS))
def test_a_read_only_steps_session_cannot_change_a_member_account(
    emu: EmulatorHandle, make_vpc: Callable[..., Vpc], step: str
) -> None:
    # Given a member VPC, and the member role assumed with the step's session policy
    vpc = make_vpc("10.201.0.0/16", account=MEMBER)
    policy = session_policy(step)
    assert policy is not None
    ec2 = _member_session(emu, policy)
    # When it reads route tables (every read-only step does) / Then it may
    read = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}])
    assert [t["RouteTableId"] for t in read["RouteTables"]] == [vpc.main_route_table]
    # When it tries any change a writing step makes / Then each is refused
    attempts = {
        "CreateRoute": lambda: ec2.create_route(
            RouteTableId=vpc.main_route_table,
            DestinationCidrBlock="10.202.0.0/16",
            VpcPeeringConnectionId="pcx-00000000000000000",
        ),
        "CreateRouteTable": lambda: ec2.create_route_table(VpcId=vpc.vpc_id),
        "CreateTags": lambda: ec2.create_tags(
            Resources=[vpc.vpc_id], Tags=[{"Key": "vpc-peering:mesh", "Value": "x"}]
        ),
        "CreateVpcPeeringConnection": lambda: ec2.create_vpc_peering_connection(
            VpcId=vpc.vpc_id, PeerVpcId=vpc.vpc_id
        ),
        "DeleteRouteTable": lambda: ec2.delete_route_table(RouteTableId=vpc.main_route_table),
    }
    for action, attempt in attempts.items():
        with pytest.raises(ClientError) as caught:
            attempt()
        assert caught.value.response["Error"]["Code"] == "UnauthorizedOperation", action
    # And nothing changed
    tables = emu.account_client("ec2", MEMBER).describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in tables] == [vpc.main_route_table]


def _prefix_list_route(emu: EmulatorHandle, vpc: Vpc) -> None:
    """A route to a prefix list (through an internet gateway) in the VPC's main table."""
    ec2 = emu.account_client("ec2", vpc.account, vpc.region)
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="partners",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "192.168.77.0/24"}],
    )["PrefixList"]["PrefixListId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc.vpc_id)
    ec2.create_route(
        RouteTableId=vpc.main_route_table, DestinationPrefixListId=prefix_list, GatewayId=gateway
    )


def test_each_read_only_step_calls_exactly_its_policys_actions(
    emu: EmulatorHandle, make_vpc: Callable[..., Vpc], create: Run, cleanup: Run
) -> None:
    # Given a member VPC with a subnet, an allowed security group and a prefix-list route, and
    # a hub VPC
    member = make_vpc("10.203.0.0/16", account=MEMBER, subnets=("10.203.1.0/24",))
    hub = make_vpc("10.204.0.0/16", account=HUB)
    _prefix_list_route(emu, member)
    member_ec2 = emu.account_client("ec2", MEMBER)
    group = member_ec2.create_security_group(GroupName="db", Description="db", VpcId=member.vpc_id)[
        "GroupId"
    ]
    emu.reset_calls()
    # When a create (a dedicated route table, a security-group rule) and its cleanup run
    made = create(
        {
            "Requester": side(hub),
            "Accepter": side(member, DedicatedRouteTable={"SubnetIds": member.subnets}),
            "SecurityGroupRules": [
                {
                    "Side": "Accepter",
                    "GroupId": group,
                    "Protocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "Source": "PeerVpc",
                }
            ],
        }
    )
    assert made.succeeded, (made.error, made.cause)
    removed = cleanup(made.output)
    assert removed.succeeded, (removed.error, removed.cause)
    # And the same the other way round (the member requests: its account holds the peering)
    back = create({"Requester": side(member), "Accepter": side(hub)})
    assert back.succeeded, (back.error, back.cause)
    assert cleanup(back.output).succeeded
    # And a group with both VPCs is reconciled (a security group there asks for a rule), and
    # the hub reads the network's status
    network = Network(emu)
    member_ec2.create_tags(
        Resources=[group],
        Tags=[{"Key": "vpc-peering:allow", "Value": "read-only-sessions tcp/5432"}],
    )
    before = network.arns()
    network.tag(_tagged(member), mesh="read-only-sessions")
    network.tag(_tagged(hub), mesh="read-only-sessions")
    assert all(r.status != "FAILED" for r in network.settled(before)), "reconcile failed"
    status = json.load(
        emu.client("lambda").invoke(
            FunctionName=emu.functions["NetworkStatusFunction"],
            Payload=json.dumps({"Request": {}}).encode(),
        )["Payload"]
    )
    assert "errorMessage" not in status, status
    # Then every session with a policy called only what it allows, and every action a step's
    # policy allows was called by that step's sessions (steps sharing one policy together)
    sessions = {s["AccessKey"]: s["Policy"] for s in emu.session_policies()}
    called: dict[str, set[str]] = defaultdict(set)
    for call in emu.calls():
        if call["access_key"] in sessions:
            called[sessions[call["access_key"]]].add(f"{call['service']}:{call['operation']}")
    expected = {
        session_policy(step): {a for a in actions if (step, a) not in NOT_CALLED_HERE}
        for step, actions in READ_ONLY_STEPS.items()
    }
    assert set(called) <= set(expected)
    assert {policy: called.get(policy, set()) for policy in expected} == expected
    network.leave(_tagged(member), _tagged(hub))


def _tagged(vpc: Vpc) -> Any:
    from .network import Tagged

    return Tagged(vpc.vpc_id, vpc.account, vpc.region, vpc.cidr)
