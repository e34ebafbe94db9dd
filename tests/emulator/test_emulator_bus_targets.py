"""Events across accounts and regions: bus targets, bus policies, PutEvents by ARN.

Stacks (event_stacks.py): the hub bus admits MEMBER (Policy property, any event) and
CONDITIONAL (EventBusPolicy, source member.allowed only), not STRANGER; every event on it goes
to HubQueue and to the relay bus in us-west-2 (RelayQueue). Members forward their emu: tag
events and whatever is put on their "sender" bus to the hub bus.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .event_stacks import CONDITIONAL, MEMBER, STRANGER, EventsSetUp, receive

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def marked(bodies: list[Any], mark: str) -> list[dict[str, Any]]:
    return [b for b in bodies if b.get("detail", {}).get("mark") == mark]


def put(setup: EventsSetUp, account: str, bus: str, source: str, region: str = "us-east-1") -> str:
    """Put one event with a unique mark in its detail; return the mark."""
    mark = str(uuid.uuid4())
    entry = {
        "EventBusName": bus,
        "Source": source,
        "DetailType": "Test",
        "Detail": json.dumps({"mark": mark}),
    }
    response = setup.hub.account_client("events", account, region).put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0
    return mark


def read_hub(setup: EventsSetUp, *marks: str) -> list[dict[str, Any]]:
    """HubQueue's events, read until one with each mark came (or a timeout)."""
    sqs, url = setup.hub.client("sqs"), setup.queue_url("events-hub-events")
    return receive(sqs, url, lambda bodies: all(marked(bodies, m) for m in marks))


def read_relay(setup: EventsSetUp, mark: str) -> list[dict[str, Any]]:
    sqs = setup.hub.client("sqs", region="us-west-2")
    url = setup.queue_url("relay-events", region="us-west-2")
    return receive(sqs, url, lambda bodies: bool(marked(bodies, mark)))


def test_a_member_tag_event_reaches_the_hub_as_it_was_sent(events_setup: EventsSetUp) -> None:
    member_ec2 = events_setup.hub.account_client("ec2", MEMBER, "eu-west-1")
    # Given a VPC in the member account and region
    vpc = member_ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    # When it is tagged (the member's default bus forwards emu: tag events to the hub bus)
    member_ec2.create_tags(Resources=[vpc], Tags=[{"Key": "emu:mesh", "Value": "blue"}])
    # Then the hub bus's rule delivers it with the account, region and resources of origin
    sqs, url = events_setup.hub.client("sqs"), events_setup.queue_url("events-hub-events")
    bodies = receive(sqs, url, lambda bodies: any(vpc in str(b.get("resources")) for b in bodies))
    (event,) = [b for b in bodies if vpc in str(b.get("resources"))]
    assert (event["source"], event["detail-type"]) == ("aws.tag", "Tag Change on Resource")
    assert (event["account"], event["region"]) == (MEMBER, "eu-west-1")
    assert event["resources"] == [f"arn:aws:ec2:eu-west-1:{MEMBER}:vpc/{vpc}"]
    assert event["detail"]["tags"] == {"emu:mesh": "blue"}
    assert ISO_TIME.fullmatch(event["time"])
    # And it goes no further: the hub bus's relay target does not forward a forwarded event
    sentinel = put(
        events_setup, events_setup.hub.account_id, events_setup.hub_bus_arn, "hub.sentinel"
    )
    relayed = read_relay(events_setup, sentinel)
    assert marked(relayed, sentinel), "the hub's own events are relayed"
    assert not [b for b in relayed if b["id"] == event["id"]]


def test_an_event_relayed_to_another_region_keeps_its_origin(events_setup: EventsSetUp) -> None:
    # Given / When the hub account puts an event on its bus (no policy needed in one account)
    mark = put(events_setup, events_setup.hub.account_id, "events-hub", "hub.direct")
    # Then the relay bus in us-west-2 gets it with the same id, account, region and time
    (at_hub,) = marked(read_hub(events_setup, mark), mark)
    (relayed,) = marked(read_relay(events_setup, mark), mark)
    assert relayed == at_hub
    assert (relayed["account"], relayed["region"]) == ("123456789012", "us-east-1")


def test_a_policy_condition_admits_one_source_and_refuses_another(
    events_setup: EventsSetUp,
) -> None:
    events_setup.hub.clear_refused_events()
    # Given the conditional account's sender bus, forwarding everything to the hub
    # When it gets an event the hub's condition refuses, then one it admits
    refused = put(events_setup, CONDITIONAL, "sender", "member.other")
    admitted = put(events_setup, CONDITIONAL, "sender", "member.allowed")
    # Then only the admitted one reaches the hub, from the conditional account
    bodies = read_hub(events_setup, admitted)
    (event,) = marked(bodies, admitted)
    assert (event["account"], event["source"]) == (CONDITIONAL, "member.allowed")
    assert not marked(bodies, refused)
    # And the refusal is listed: which event, from where, by which rule, to which bus
    (record,) = events_setup.hub.refused_events()
    assert record["source"] == "member.other"
    assert (record["from_account"], record["bus_arn"]) == (CONDITIONAL, events_setup.hub_bus_arn)
    assert record["via"] == f"arn:aws:events:us-east-1:{CONDITIONAL}:rule/sender/member-ForwardSent"


def test_an_account_the_policy_does_not_name_is_refused(events_setup: EventsSetUp) -> None:
    events_setup.hub.clear_refused_events()
    # Given / When the stranger's sender bus forwards an event to the hub
    put(events_setup, STRANGER, "sender", "member.allowed")
    # Then the hub's policy refuses it: no statement names that account
    (record,) = events_setup.hub.refused_events()
    assert record["from_account"] == STRANGER
    assert "no statement" in record["reason"]


def test_put_events_to_a_bus_arn_of_another_account(events_setup: EventsSetUp) -> None:
    events_setup.hub.clear_refused_events()
    # Given / When the member account calls PutEvents naming the hub bus by ARN
    mark = put(events_setup, MEMBER, events_setup.hub_bus_arn, "member.direct")
    # Then the hub bus's rules get the event, sent by the member account
    (event,) = marked(read_hub(events_setup, mark), mark)
    assert (event["account"], event["region"]) == (MEMBER, "us-east-1")
    # When an account the policy does not admit does the same
    with pytest.raises(ClientError) as caught:
        put(events_setup, STRANGER, events_setup.hub_bus_arn, "member.direct")
    # Then the call fails with AccessDeniedException, and the refusal is listed
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    (record,) = events_setup.hub.refused_events()
    assert (record["from_account"], record["via"]) == (STRANGER, "PutEvents")


def test_both_policy_forms_are_deployed_on_the_hub_bus(events_setup: EventsSetUp) -> None:
    # Given / When the hub bus is described
    described = events_setup.hub.client("events").describe_event_bus(Name="events-hub")
    # Then it has the statement of its Policy property and the EventBusPolicy's
    statements = {s["Sid"]: s for s in json.loads(described["Policy"])["Statement"]}
    assert set(statements) == {"MemberPuts", "OnlyAllowedSource"}
    assert statements["OnlyAllowedSource"]["Condition"] == {
        "StringEquals": {"events:source": "member.allowed"}
    }
    assert statements["OnlyAllowedSource"]["Resource"] == events_setup.hub_bus_arn
