"""Auto-accept: EC2's record of the peering and the stack's policy decide, not the event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vpc_peering import acceptance, peering
from vpc_peering.aws import Access
from vpc_peering.errors import AcceptDenied, PeeringFailed, TransientAwsError
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import AcceptanceRequest
from vpc_peering.settings import Settings

from .helpers import MEMBER_ACCOUNT, TutorialVpcs, accept_detail, peering_status


@pytest.fixture
def pending(tutorial: TutorialVpcs, access: Access, settings: Settings) -> dict[str, Any]:
    """The document after CreatePeering for the tutorial pair: a pending peering."""
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    doc = peering.plan(request, "exec-1", access, settings)
    return peering.create_peering(doc, access, settings).dump()


def acceptance_request(document: dict[str, Any], **changes: Any) -> AcceptanceRequest:
    detail = accept_detail(document)
    for side, fields in changes.items():
        detail[side] = {**detail[side], **fields}
    return parse(AcceptanceRequest, detail, root="detail")


def test_trusted_requester_is_accepted(pending: dict[str, Any], ec2: Any, access: Access) -> None:
    # Given a pending peering requested by the hub account (trusted by default)
    pcx = pending["VpcPeeringConnectionId"]
    assert peering_status(ec2, pcx) == "pending-acceptance"
    # When the acceptance request is handled
    outcome = acceptance.accept(acceptance_request(pending), access, Settings.from_env())
    # Then the peering is accepted and active
    assert outcome.dump() == {
        "VpcPeeringConnectionId": pcx,
        "Status": "active",
        "AcceptedNow": True,
    }
    assert peering_status(ec2, pcx) == "active"


def test_untrusted_requester_account_is_denied_and_left_pending(
    pending: dict[str, Any], ec2: Any, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only another account is trusted to request peerings
    monkeypatch.setenv("TRUSTED_REQUESTER_ACCOUNT_IDS", MEMBER_ACCOUNT)
    settings = Settings.from_env()
    # When the acceptance request is handled
    with pytest.raises(AcceptDenied) as caught:
        acceptance.accept(acceptance_request(pending), access, settings)
    # Then the requester's account is named as untrusted, and the peering stays pending
    assert "requester account 123456789012 is not trusted" in str(caught.value)
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "pending-acceptance"


@pytest.mark.parametrize(
    ("side", "field", "value"),
    [
        ("Requester", "VpcId", "vpc-0123456789abcdef0"),
        ("Requester", "AccountId", MEMBER_ACCOUNT),
        ("Accepter", "VpcId", "vpc-0123456789abcdef0"),
        ("Requester", "Region", "us-east-2"),
    ],
)
def test_event_sides_not_matching_ec2_are_denied(
    pending: dict[str, Any], ec2: Any, access: Access, side: str, field: str, value: str
) -> None:
    # Given an event whose side disagrees with EC2's record of the peering
    request = acceptance_request(pending, **{side: {field: value}})
    # When handled
    with pytest.raises(AcceptDenied) as caught:
        acceptance.accept(request, access, Settings.from_env())
    # Then it is refused, naming the side, and the peering stays pending
    assert f"the event's {side.lower()}" in str(caught.value)
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "pending-acceptance"


def test_peering_not_visible_where_the_event_points_is_retried(
    pending: dict[str, Any], ec2: Any, access: Access
) -> None:
    # Given an event that places the accepter in a region where EC2 does not know the peering
    request = acceptance_request(pending, Accepter={"Region": "us-east-2"})
    # When handled / Then it is a transient error (the delivery is retried), nothing accepted
    with pytest.raises(TransientAwsError, match="not visible yet"):
        acceptance.accept(request, access, Settings.from_env())
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "pending-acceptance"


def test_opt_in_tag_missing_is_denied(
    pending: dict[str, Any], ec2: Any, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the policy requires the accepter VPC to opt in, and it has no such tag
    monkeypatch.setenv("ACCEPTER_OPT_IN_TAG_KEY", "peering-opt-in")
    # When handled
    with pytest.raises(AcceptDenied) as caught:
        acceptance.accept(acceptance_request(pending), access, Settings.from_env())
    # Then the missing tag is named, and the peering stays pending
    assert "peering-opt-in=true" in str(caught.value)
    assert pending["Accepter"]["VpcId"] in str(caught.value)
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "pending-acceptance"


@pytest.mark.parametrize(("value", "accepted"), [("true", True), ("false", False), ("yes", False)])
def test_opt_in_tag_must_be_true(
    pending: dict[str, Any],
    ec2: Any,
    access: Access,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    accepted: bool,
) -> None:
    # Given the accepter VPC carries the opt-in tag with this value
    monkeypatch.setenv("ACCEPTER_OPT_IN_TAG_KEY", "peering-opt-in")
    ec2.create_tags(
        Resources=[pending["Accepter"]["VpcId"]], Tags=[{"Key": "peering-opt-in", "Value": value}]
    )
    request = acceptance_request(pending)
    # When handled / Then only "true" is accepted
    if accepted:
        assert acceptance.accept(request, access, Settings.from_env()).accepted is True
        assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "active"
    else:
        with pytest.raises(AcceptDenied):
            acceptance.accept(request, access, Settings.from_env())
        assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "pending-acceptance"


def test_already_active_is_not_accepted_again(
    pending: dict[str, Any], ec2: Any, access: Access, ec2_calls: list[str]
) -> None:
    # Given the peering was accepted already
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pending["VpcPeeringConnectionId"])
    # When another acceptance request arrives
    outcome = acceptance.accept(acceptance_request(pending), access, Settings.from_env())
    # Then nothing is accepted now and no accept call is made
    assert (outcome.status, outcome.accepted) == ("active", False)
    assert outcome.dump()["AcceptedNow"] is False
    assert "AcceptVpcPeeringConnection" not in ec2_calls
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "active"


def test_a_deleted_peering_is_not_accepted(
    pending: dict[str, Any], ec2: Any, access: Access
) -> None:
    # Given the peering was deleted before the accept function ran
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pending["VpcPeeringConnectionId"])
    # When handled / Then it fails as gone
    with pytest.raises(PeeringFailed, match="deleted"):
        acceptance.accept(acceptance_request(pending), access, Settings.from_env())


def test_cross_account_peering_is_accepted_as_the_accepter_account(
    make_vpc: Callable[..., str],
    ec2_in: Callable[[str], Any],
    access: Access,
    settings: Settings,
    ec2_calls: list[str],
) -> None:
    # Given a hub VPC's peering request to a member account's VPC
    vpc1 = make_vpc("10.0.0.0/16")
    vpc2 = make_vpc("172.16.0.0/16", account=MEMBER_ACCOUNT)
    request = {
        "Requester": {"VpcId": vpc1},
        "Accepter": {"VpcId": vpc2, "AccountId": MEMBER_ACCOUNT},
    }
    doc = peering.create_peering(
        peering.plan(request, "exec-1", access, settings), access, settings
    )
    pcx = doc.vpc_peering_connection_id
    assert pcx is not None
    # When accepted
    outcome = acceptance.accept(acceptance_request(doc.dump()), access, settings)
    # Then the member account sees it active
    assert outcome.accepted is True
    assert peering_status(ec2_in(MEMBER_ACCOUNT), pcx) == "active"


def test_forged_event_naming_a_peering_made_by_hand_is_denied(
    tutorial: TutorialVpcs, ec2: Any, access: Access
) -> None:
    # Given a pending peering someone made by hand between trusted VPCs (no ownership tags)
    pcx = ec2.create_vpc_peering_connection(VpcId=tutorial.vpc1, PeerVpcId=tutorial.vpc2)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    side = {"AccountId": "123456789012", "Region": "us-east-1"}
    detail = {
        "TaskToken": "token",
        "VpcPeeringConnectionId": pcx,
        "Requester": {"VpcId": tutorial.vpc1, **side},
        "Accepter": {"VpcId": tutorial.vpc2, **side},
        "ExecutionName": "exec-1",
    }
    # When an event naming it arrives, with sides that match EC2 exactly
    with pytest.raises(AcceptDenied) as caught:
        acceptance.accept(parse(AcceptanceRequest, detail), access, Settings.from_env())
    # Then it is refused because this stack did not request it, and it stays pending
    assert "was not requested by stack vpc-peering" in str(caught.value)
    assert peering_status(ec2, pcx) == "pending-acceptance"


def test_pending_peering_from_an_earlier_execution_of_this_stack_is_accepted(
    pending: dict[str, Any], ec2: Any, access: Access
) -> None:
    # Given this stack's pending peering, made by execution exec-1 (Plan reuses pending ones)
    detail = accept_detail(pending)
    # When a later execution asks for it to be accepted
    detail["ExecutionName"] = "exec-2"
    outcome = acceptance.accept(parse(AcceptanceRequest, detail), access, Settings.from_env())
    # Then it is accepted: it is this stack's own request
    assert outcome.accepted is True
    assert peering_status(ec2, pending["VpcPeeringConnectionId"]) == "active"
