"""EC2 tag changes become "Tag Change on Resource" events on the default bus (tag_events.py).

The hub stack's TagRule (event_stacks.py) sends every aws.tag event with a changed key
starting with "emu:" to TagQueue; each test reads the events of the resources it made.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .event_stacks import EventsSetUp, receive

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def tag_spec(kind: str, **tags: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def events_about(
    setup: EventsSetUp,
    resource_id: str,
    count: int = 1,
    until: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> list[dict[str, Any]]:
    """The tag events of ``resource_id`` (every resource: "") in TagQueue, read until there are
    ``count`` of them (or ``until`` holds for them, or a timeout: the caller asserts on what
    came)."""
    sqs = setup.hub.client("sqs")
    url = setup.queue_url("events-tag-events")
    enough = until or (lambda events: len(events) >= count)

    def mine(bodies: list[Any]) -> list[dict[str, Any]]:
        return [
            b for b in bodies if b["resources"][0].endswith("/" + resource_id) or not resource_id
        ]

    return mine(receive(sqs, url, lambda bodies: enough(mine(bodies))))


def test_tags_given_at_creation_emit_one_event_with_every_key(
    events_setup: EventsSetUp,
) -> None:
    ec2 = events_setup.hub.client("ec2")
    # Given / When a VPC is created with two tags (moto applies them one key at a time)
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=tag_spec("vpc", **{"emu:mesh": "blue", "Name": "app"}),
    )["Vpc"]["VpcId"]
    # Then one event, shaped as AWS documents it, names both keys and every tag
    (event,) = events_about(events_setup, vpc, 1)
    assert set(event) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail",
    }  # fmt: skip
    assert (event["version"], event["source"]) == ("0", "aws.tag")
    assert event["detail-type"] == "Tag Change on Resource"
    assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
    assert ISO_TIME.fullmatch(event["time"])
    assert event["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:vpc/{vpc}"]
    assert event["detail"] == {
        "changed-tag-keys": ["Name", "emu:mesh"],
        "service": "ec2",
        "resource-type": "vpc",
        "version": 1,
        "tags": {"emu:mesh": "blue", "Name": "app"},
    }


def test_changes_and_removals_count_versions_and_show_the_tags_after(
    events_setup: EventsSetUp,
) -> None:
    ec2 = events_setup.hub.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    # Given a tagged VPC
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:mesh", "Value": "blue"}])
    # When the tag changes value, an unwatched key is added, then the tag is removed
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:mesh", "Value": "green"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "other", "Value": "x"}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "emu:mesh"}])
    # Then the rule (prefix "emu:" inside the changed-tag-keys array) saw three of the four
    # changes, in order, with the version of each change and the tags after it
    events = events_about(events_setup, vpc, 3)
    details = [(e["detail"]["version"], e["detail"]["changed-tag-keys"]) for e in events]
    assert details == [(1, ["emu:mesh"]), (2, ["emu:mesh"]), (4, ["emu:mesh"])]
    assert events[1]["detail"]["tags"] == {"emu:mesh": "green"}
    # And the removed key is among the changed keys but not among the tags
    assert events[2]["detail"]["tags"] == {"other": "x"}


def test_one_event_per_resource_per_call_with_the_arn_type_of_each(
    events_setup: EventsSetUp,
) -> None:
    ec2 = events_setup.hub.client("ec2")
    # Given a VPC, a subnet, a route table, a security group and a peering
    vpc = ec2.create_vpc(CidrBlock="10.22.0.0/16")["Vpc"]["VpcId"]
    peer = ec2.create_vpc(CidrBlock="10.23.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.22.1.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="g", Description="d")["GroupId"]
    pcx_tags = tag_spec("vpc-peering-connection", **{"emu:p": "1"})
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer, TagSpecifications=pcx_tags)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    # When one CreateTags call tags four of them with two keys
    ec2.create_tags(
        Resources=[subnet, table, group, vpc],
        Tags=[{"Key": "emu:a", "Value": "1"}, {"Key": "emu:b", "Value": "2"}],
    )
    # Then each gets one event with both keys, under the resource type of its ARN
    expected = {
        subnet: "subnet",
        table: "route-table",
        group: "security-group",
        vpc: "vpc",
        pcx: "vpc-peering-connection",  # tagged at its creation
    }
    events = events_about(events_setup, "", len(expected))
    arns = {f"arn:aws:ec2:us-east-1:123456789012:{kind}/{rid}" for rid, kind in expected.items()}
    assert sorted(e["resources"][0] for e in events if e["resources"][0] in arns) == sorted(arns)
    for event in events:
        resource_id = event["resources"][0].rsplit("/", 1)[1]
        assert event["detail"]["resource-type"] == expected[resource_id]
        keys = ["emu:p"] if resource_id == pcx else ["emu:a", "emu:b"]
        assert event["detail"]["changed-tag-keys"] == keys


def test_a_call_that_changes_nothing_emits_nothing(events_setup: EventsSetUp) -> None:
    ec2 = events_setup.hub.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.24.0.0/16")["Vpc"]["VpcId"]
    # Given a VPC tagged emu:x=1
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:x", "Value": "1"}])
    # When the same value is written again and an absent key is deleted, then emu:x changes
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:x", "Value": "1"}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "emu:absent"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:x", "Value": "2"}])
    # Then only the two real changes were events: versions 1 and 2, nothing in between
    events = events_about(
        events_setup,
        vpc,
        until=lambda events: any(e["detail"]["tags"] == {"emu:x": "2"} for e in events),
    )
    assert [(e["detail"]["version"], e["detail"]["tags"]) for e in events] == [
        (1, {"emu:x": "1"}),
        (2, {"emu:x": "2"}),
    ]
