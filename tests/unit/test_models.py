"""Request validation: a malformed create request is refused, naming the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from vpc_peering.errors import InvalidInput
from vpc_peering.models.documents import PeeringDocument
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import CleanupRequest, CreateRequest, SideRequest

VPC_A = "vpc-0123456789abcdef0"
VPC_B = "vpc-0fedcba9876543210"
SUBNET = "subnet-0123456789abcdef0"
RTB = "rtb-0123456789abcdef0"


def request(**overrides: Any) -> dict[str, Any]:
    """A valid create request, with top-level fields replaced by ``overrides``."""
    base: dict[str, Any] = {"Requester": {"VpcId": VPC_A}, "Accepter": {"VpcId": VPC_B}}
    base.update(overrides)
    return base


def invalid(data: Any, model: type = CreateRequest, root: str = "") -> str:
    """The InvalidInput message ``parse`` raises for ``data``."""
    with pytest.raises(InvalidInput) as caught:
        parse(model, data, root=root)
    return str(caught.value)


def test_minimal_request_is_valid_with_defaults() -> None:
    # Given a request naming only the two VPCs
    # When it is parsed
    parsed = parse(CreateRequest, request())
    # Then both sides route from every table and nothing optional is on
    assert parsed.requester.vpc_id == VPC_A
    assert parsed.accepter.vpc_id == VPC_B
    assert parsed.requester.selection == "all"
    assert parsed.dry_run is False
    assert parsed.dns_resolution is False
    assert parsed.tags == {}


def test_missing_vpc_id_names_the_field_path() -> None:
    # Given a requester without VpcId
    # When it is parsed
    message = invalid(request(Requester={"RouteTables": "main"}))
    # Then the message names Requester.VpcId as missing
    assert "Requester.VpcId" in message
    assert "required" in message.lower()


@pytest.mark.parametrize(
    ("side", "field", "value"),
    [
        ("Requester", "VpcId", "vpc-xyz"),
        ("Accepter", "VpcId", "vpc-0123456"),  # 7 hex digits
        ("Accepter", "VpcId", "subnet-0123456789abcdef0"),
        ("Requester", "SubnetIds", ["subnet-ZZ"]),
        ("Requester", "RouteTableIds", ["rtb-123"]),
        ("Accepter", "AccountId", "12345"),
        ("Accepter", "Region", "moon"),
        ("Accepter", "RoleArn", "arn:aws:iam::111111111111:user/someone"),
    ],
)
def test_malformed_ids_are_refused_naming_the_field(side: str, field: str, value: Any) -> None:
    # Given a side with a malformed identifier
    data = request(**{side: {"VpcId": VPC_A if side == "Requester" else VPC_B, field: value}})
    # When it is parsed
    message = invalid(data)
    # Then the message names the side and the field
    assert f"{side}.{field}" in message


def test_valid_long_and_short_ids_are_accepted() -> None:
    # Given 8- and 17-hex-digit ids
    data = request(
        Requester={"VpcId": "vpc-0123abcd", "SubnetIds": [SUBNET]},
        Accepter={"VpcId": VPC_B, "RouteTableIds": [RTB, "rtb-89abcdef"]},
    )
    # When parsed / Then accepted
    parsed = parse(CreateRequest, data)
    assert parsed.requester.selection == "subnets"
    assert parsed.accepter.selection == "ids"


def test_destination_cidr_with_host_bits_set_is_refused() -> None:
    # Given a destination CIDR whose host bits are set
    data = request(Accepter={"VpcId": VPC_B, "DestinationCidrs": ["10.0.0.0/16", "10.0.0.1/16"]})
    # When it is parsed
    message = invalid(data)
    # Then the field and the bad value are named
    assert "Accepter.DestinationCidrs" in message
    assert "10.0.0.1/16" in message


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "not-a-cidr", "300.0.0.0/8", ""])
def test_destination_cidr_that_is_not_a_network_is_refused(cidr: str) -> None:
    # Given a destination that is not a CIDR block
    data = request(Requester={"VpcId": VPC_A, "DestinationCidrs": [cidr]})
    # When parsed / Then refused naming the field
    assert "Requester.DestinationCidrs" in invalid(data)


def test_destination_cidrs_are_normalised_and_may_be_ipv6() -> None:
    # Given an IPv4 and an IPv6 destination
    data = request(
        Requester={"VpcId": VPC_A, "DestinationCidrs": ["10.1.0.0/16", "2600:1f18::/56"]}
    )
    # When parsed
    parsed = parse(CreateRequest, data)
    # Then both are kept
    assert parsed.requester.destination_cidrs == ["10.1.0.0/16", "2600:1f18::/56"]


def test_repeated_destination_cidr_is_refused() -> None:
    data = request(Requester={"VpcId": VPC_A, "DestinationCidrs": ["10.1.0.0/16", "10.1.0.0/16"]})
    assert "Requester.DestinationCidrs" in invalid(data)


@pytest.mark.parametrize(
    "selectors",
    [
        {"RouteTables": "all", "SubnetIds": [SUBNET]},
        {"RouteTables": "main", "RouteTableIds": [RTB]},
        {"RouteTableIds": [RTB], "SubnetIds": [SUBNET]},
    ],
)
def test_two_route_selectors_at_once_are_refused(selectors: dict[str, Any]) -> None:
    # Given a side that selects route tables two ways
    data = request(Requester={"VpcId": VPC_A, **selectors})
    # When it is parsed
    message = invalid(data)
    # Then the side is named and the rule explained
    assert message.startswith("Requester")
    assert "at most one of RouteTables, RouteTableIds, SubnetIds" in message


def test_route_tables_keyword_must_be_known() -> None:
    message = invalid(request(Requester={"VpcId": VPC_A, "RouteTables": "some"}))
    assert "Requester.RouteTables" in message


def test_dedicated_table_alone_selects_no_existing_table() -> None:
    # Given a side with only a dedicated route table
    side = SideRequest.model_validate(
        {"VpcId": VPC_A, "DedicatedRouteTable": {"SubnetIds": [SUBNET]}}
    )
    # Then no existing table is selected
    assert side.selection == "none"


def test_dedicated_table_needs_subnets() -> None:
    message = invalid(request(Requester={"VpcId": VPC_A, "DedicatedRouteTable": {"SubnetIds": []}}))
    assert "Requester.DedicatedRouteTable.SubnetIds" in message


@pytest.mark.parametrize("key", ["aws:cloudformation:stack", "vpc-peering:managed-by", "AWS:x"])
def test_reserved_tag_keys_are_refused(key: str) -> None:
    # Given a tag key with a reserved prefix (any case)
    # When parsed
    message = invalid(request(Tags={"Name": "ok", key: "v"}))
    # Then Tags is named along with the offending key
    assert message.startswith("Tags")
    assert key in message


def test_ordinary_tags_are_kept() -> None:
    parsed = parse(CreateRequest, request(Tags={"Name": "tutorial", "team": "net"}))
    assert parsed.tags == {"Name": "tutorial", "team": "net"}


def test_unknown_field_typo_is_refused_not_ignored() -> None:
    # Given "Requestor" for "Requester"
    data = {"Requestor": {"VpcId": VPC_A}, "Accepter": {"VpcId": VPC_B}}
    # When parsed
    message = invalid(data)
    # Then the typo is named as unknown, with the field it resembles, and that one as missing
    assert "Requestor: unknown field; did you mean Requester?" in message
    assert "Requester: required" in message


def test_unknown_field_inside_a_side_is_refused() -> None:
    message = invalid(request(Accepter={"VpcId": VPC_B, "RouteTable": "main"}))
    assert "Accepter.RouteTable" in message


@pytest.mark.parametrize("value", ["yes", "true", 1, None])
def test_dry_run_must_be_a_real_boolean(value: Any) -> None:
    # Given DryRun that is not a JSON boolean
    # When parsed / Then refused naming DryRun
    assert "DryRun" in invalid(request(DryRun=value))


def test_ipv6_and_dns_resolution_must_be_real_booleans() -> None:
    message = invalid(request(DnsResolution="true", Requester={"VpcId": VPC_A, "Ipv6": "yes"}))
    assert "DnsResolution" in message
    assert "Requester.Ipv6" in message


def test_role_arn_must_be_in_the_account_given() -> None:
    data = request(
        Accepter={
            "VpcId": VPC_B,
            "AccountId": "222222222222",
            "RoleArn": "arn:aws:iam::111111111111:role/VpcPeeringMemberRole",
        }
    )
    assert (
        "RoleArn arn:aws:iam::111111111111:role/VpcPeeringMemberRole must be a role in "
        "AccountId 222222222222"
    ) in invalid(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"Requester": {"VpcId": "VPC-0ABC "}},
            "Requester.VpcId: 'VPC-0ABC ' is not a VPC id (vpc- and 8 or 17 hex digits)",
        ),
        (
            {"Accepter": {"VpcId": VPC_B, "RouteTables": "some"}},
            "Accepter.RouteTables: 'some' is not one of 'all', 'main' or 'none'",
        ),
        (
            {"Accepter": {"VpcId": VPC_B, "SubnetIds": ["subnet-1"]}},
            "Accepter.SubnetIds[0]: 'subnet-1' is not a subnet id",
        ),
        (
            {"Accepter": {"VpcId": VPC_B, "AccountId": "12345"}},
            "Accepter.AccountId: '12345' is not an account id (12 digits)",
        ),
        (
            {"Accepter": {"VpcId": VPC_B, "Region": "mars-1"}},
            "Accepter.Region: 'mars-1' is not a region name (e.g. us-east-1)",
        ),
        ({"DryRun": "true"}, "DryRun: must be true or false, got 'true'"),
        ({"Tags": {"team": 7}}, "Tags.team: must be a string, got 7"),
        ({"Group": "blue team"}, "Group: 'blue team' is not a group name"),
        (
            {"Requester": {"VpcId": VPC_A, "DestinationCidrs": ["10.0.0.0/8", "10.0.0.0/8"]}},
            "Requester.DestinationCidrs: must not repeat a CIDR (10.0.0.0/8)",
        ),
        (
            {"Requester": {"VpcId": VPC_A, "Regoin": "us-east-1"}},
            "Requester.Regoin: unknown field; did you mean Region?",
        ),
    ],
)
def test_each_problem_names_the_field_and_its_value_in_words(
    data: dict[str, Any], expected: str
) -> None:
    # Given a request with one bad field
    message = invalid(request(**data))
    # Then the field and the value are named, in words: no pattern, no pydantic wording
    assert expected in message
    assert "^" not in message
    assert "Value error" not in message
    assert "Input should" not in message


@pytest.mark.parametrize("data", [[1, 2], "a string", None, 42])
def test_non_object_input_is_refused(data: Any) -> None:
    # Given input that is not a JSON object
    # When parsed
    message = invalid(data)
    # Then the message says so
    assert message.startswith("input: must be a JSON object")


def test_non_object_document_names_the_root() -> None:
    assert invalid("x", PeeringDocument, root="Document").startswith("Document: must be a JSON")


def test_root_prefixes_every_field_path() -> None:
    message = invalid({"ExecutionName": "x"}, PeeringDocument, root="Document")
    assert "Document.Requester" in message
    assert "Document.Accepter" in message


def test_many_problems_are_capped_and_counted() -> None:
    # Given a request with more than ten problems
    data = request(
        Requester={"VpcId": "bad", "Region": "x", "AccountId": "y", "Ipv6": "z", "A": 1, "B": 2},
        Accepter={"VpcId": "bad", "Region": "x", "AccountId": "y", "Ipv6": "z", "C": 3},
        DryRun="no",
    )
    # When parsed / Then ten are listed and the rest counted
    message = invalid(data)
    assert message.count(";") == 9
    assert message.endswith("more)")


def test_cleanup_request_needs_a_peering_id() -> None:
    assert "VpcPeeringConnectionId" in invalid(
        {"VpcPeeringConnectionId": "pcx-nope"}, CleanupRequest
    )
    parsed = parse(CleanupRequest, {"VpcPeeringConnectionId": "pcx-0123456789abcdef0"})
    assert parsed.requester is None
