"""Reaching a side: locations, assumed-role clients, and AWS errors as domain errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from vpc_peering.aws import Access, Location, aws_call
from vpc_peering.errors import AccessDenied, AwsCallFailed, InvalidInput, TransientAwsError
from vpc_peering.locations import location_for, partition_for
from vpc_peering.settings import Settings

from .helpers import HUB_ACCOUNT, MEMBER_ACCOUNT, MEMBER_ROLE_NAME, REGION

MEMBER_ROLE = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{MEMBER_ROLE_NAME}"


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "msg"}}, "DescribeVpcs")


def test_hub_account_uses_the_hubs_own_credentials(settings: Settings) -> None:
    assert location_for(HUB_ACCOUNT, REGION, None, settings) == Location(HUB_ACCOUNT, REGION)


def test_other_account_uses_its_member_role(settings: Settings) -> None:
    assert location_for(MEMBER_ACCOUNT, REGION, None, settings).role_arn == MEMBER_ROLE


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_partition_follows_the_region(region: str, partition: str) -> None:
    assert partition_for(region) == partition


def test_explicit_role_must_be_the_member_role(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match=r"^Accepter\.RoleArn: role name 'Admin'"):
        location_for(
            MEMBER_ACCOUNT,
            REGION,
            f"arn:aws:iam::{MEMBER_ACCOUNT}:role/Admin",
            settings,
            "Accepter.",
        )


def test_explicit_role_must_be_in_the_sides_account(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match=f"must be a role in account {HUB_ACCOUNT}"):
        location_for(HUB_ACCOUNT, REGION, MEMBER_ROLE, settings, "Requester.")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("RequestLimitExceeded", TransientAwsError),
        ("Throttling", TransientAwsError),
        ("UnauthorizedOperation", AccessDenied),
        ("AccessDenied", AccessDenied),
        ("InvalidParameterValue", AwsCallFailed),
    ],
)
def test_aws_errors_become_named_domain_errors(code: str, error: type[Exception]) -> None:
    # Given an AWS call failing with this code
    # When it runs inside aws_call
    with pytest.raises(error) as caught, aws_call("ec2:DescribeVpcs", "account 1 in r"):
        raise client_error(code)
    # Then the domain error names the call, where, and AWS's code
    assert "ec2:DescribeVpcs in account 1 in r" in str(caught.value)
    assert code in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.__cause__.response["Error"]["Code"] == code


def test_connection_errors_are_transient() -> None:
    with pytest.raises(TransientAwsError), aws_call("ec2:DescribeVpcs", "here"):
        raise EndpointConnectionError(endpoint_url="https://ec2.example")


def test_member_account_is_reached_through_sts_without_an_iam_role_in_moto(
    access: Access,
) -> None:
    # Given a member location (moto's AssumeRole does not require the role to exist)
    member = Location(MEMBER_ACCOUNT, REGION, MEMBER_ROLE)
    # When Access makes clients there and in the hub
    member_identity = access.client("sts", member).get_caller_identity()
    hub_identity = access.client("sts", Location(HUB_ACCOUNT, REGION)).get_caller_identity()
    # Then the assumed-role credentials act in the member account, the hub's in the hub
    assert member_identity["Account"] == MEMBER_ACCOUNT
    assert MEMBER_ROLE_NAME in member_identity["Arn"]
    assert hub_identity["Account"] == HUB_ACCOUNT
    # And clients are cached per role, region and service
    assert access.ec2(member) is access.ec2(member)
    assert access.ec2(member) is not access.ec2(Location(HUB_ACCOUNT, REGION))
