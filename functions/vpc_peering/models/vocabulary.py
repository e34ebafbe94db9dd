"""The project's vocabulary: id and name patterns, the tag keys this tool writes, the base
models. Imported by every other model module; imports none of them."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import botocore.loaders
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
)
from pydantic.alias_generators import to_pascal

#: pydantic matches these with Rust's regex, where ``$`` is the end of the text. Python's ``$``
#: also matches before a final newline: Python code checks a whole value with ``fullmatch``.
VPC_ID = r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$"

SUBNET_ID = r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$"

ROUTE_TABLE_ID = r"^rtb-[0-9a-f]{8}([0-9a-f]{9})?$"

PEERING_ID = r"^pcx-[0-9a-f]{8}([0-9a-f]{9})?$"

SECURITY_GROUP_ID = r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$"

#: A security-group rule's source: the peer VPC's routed CIDRs, or a security group of the peer.
RULE_SOURCE = r"^(PeerVpc|sg-[0-9a-f]{8}([0-9a-f]{9})?)$"

# [0-9], not \d: pydantic's regex engine lets \d match any Unicode digit.
ACCOUNT_ID = r"^[0-9]{12}$"

ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"

REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"

#: A tag-declared group's name: letters, digits, ``.``, ``_`` and ``-``, at most 64.
GROUP_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

#: What each pattern is, for an error message: a user is told what a value should be, never a
#: regular expression.
PATTERN_NAMES = {
    VPC_ID: "a VPC id (vpc- and 8 or 17 hex digits)",
    SUBNET_ID: "a subnet id (subnet- and 8 or 17 hex digits)",
    ROUTE_TABLE_ID: "a route table id (rtb- and 8 or 17 hex digits)",
    PEERING_ID: "a VPC peering connection id (pcx- and 8 or 17 hex digits)",
    SECURITY_GROUP_ID: "a security group id (sg- and 8 or 17 hex digits)",
    RULE_SOURCE: "PeerVpc or a security group id of the peer VPC (sg- and 8 or 17 hex digits)",
    ACCOUNT_ID: "an account id (12 digits)",
    ROLE_ARN: "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
    REGION: "a region name (e.g. us-east-1)",
    GROUP_NAME_PATTERN: "a group name (1 to 64 letters, digits, '.', '_' or '-')",
}

VpcId = Annotated[str, StringConstraints(pattern=VPC_ID)]

SubnetId = Annotated[str, StringConstraints(pattern=SUBNET_ID)]

RouteTableId = Annotated[str, StringConstraints(pattern=ROUTE_TABLE_ID)]

PeeringId = Annotated[str, StringConstraints(pattern=PEERING_ID)]

SecurityGroupId = Annotated[str, StringConstraints(pattern=SECURITY_GROUP_ID)]

RuleSource = Annotated[str, StringConstraints(pattern=RULE_SOURCE)]

AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID)]

RoleArn = Annotated[str, StringConstraints(pattern=ROLE_ARN)]


@cache
def _region_patterns() -> tuple[re.Pattern[str], ...]:
    """The region name patterns of every AWS partition, from botocore's endpoint data."""
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return tuple(re.compile(p["regionRegex"]) for p in endpoints["partitions"])


def _known_region(value: str) -> str:
    if not any(p.fullmatch(value) for p in _region_patterns()):
        raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
    return value


Region = Annotated[str, StringConstraints(pattern=REGION), AfterValidator(_known_region)]

#: Besides letters, digits and spaces, the only characters EC2 allows in tag keys and values.
TAG_SYMBOLS = frozenset("_.:/=+-@")


def tag_text_problem(value: str) -> str | None:
    """Why EC2 would refuse this tag key or value (letters, digits, spaces and
    ``_ . : / = + - @`` only), or None."""
    for index, char in enumerate(value):
        if char in TAG_SYMBOLS or char == " " or unicodedata.category(char)[0] in "LN":
            continue
        return (
            f"{char!r} (U+{ord(char):04X}) at position {index} is not allowed in an EC2 tag "
            "(letters, digits, spaces and _ . : / = + - @ only)"
        )
    return None


GroupName = Annotated[str, StringConstraints(pattern=GROUP_NAME_PATTERN)]

TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]

TagValue = Annotated[str, StringConstraints(max_length=256)]

SideName = Literal["Requester", "Accepter"]

#: Tag keys this tool writes; requests may not set them.
TAG_MANAGED_BY = "vpc-peering:managed-by"

TAG_EXECUTION = "vpc-peering:execution"

#: Unique to one execution (minted in Plan): what proves "this execution made it". The
#: execution name alone cannot: a name can be used again (after 90 days, or by a new stack).
TAG_EXECUTION_ID = "vpc-peering:execution-id"

TAG_PEERING_ID = "vpc-peering:peering-id"

TAG_SIDE = "vpc-peering:side"

#: On a peering the reconcile machine made for a tag-declared group: the group's name. Only
#: peerings carrying it (and this stack's managed-by tag) are ever removed by a reconcile.
TAG_GROUP = "vpc-peering:group"

#: On a peering made elsewhere that a create adopted (``"Adopt": true``): the adopting
#: execution's id. Compensation of that execution takes the ownership tags off again.
TAG_ADOPTED_BY = "vpc-peering:adopted-by"

#: On our (the accepter's) view of a request made elsewhere that this stack accepted: the
#: accepter VPC. Its ownership is read there: the requester's account may be out of reach.
TAG_ACCEPTED_FOR = "vpc-peering:accepted-for"

#: Beside it: the requester's CIDRs accepted (space-separated), pinned at acceptance. Only these
#: are routed; one the requester adds later waits until the VPC's accept-from tag is set again.
TAG_ACCEPTED_CIDRS = "vpc-peering:accepted-cidrs"

#: On a peering made elsewhere, written by its owner in the requester's account: the name of
#: the stack allowed to adopt it (``"Adopt": true``). Without it, nothing is adopted.
TAG_ADOPT = "vpc-peering:adopt"

RESERVED_TAG_PREFIXES = ("aws:", "vpc-peering:")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="ignore", defer_build=True
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class _Strict(_Model):
    """Request models: unknown fields are errors, so a typo is caught instead of ignored."""

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="forbid", defer_build=True
    )


def _unique(values: list[str], what: str) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"must not repeat {what} ({', '.join(repeated)})")
    return values


def _network(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid CIDR block ({exc})") from exc


@dataclass(frozen=True)
class Location:
    """An account and region, and the role to assume there (``None``: the hub's credentials)."""

    account_id: str
    region: str
    role_arn: str | None = None

    def __str__(self) -> str:
        return f"account {self.account_id} in {self.region}"


#: Where a failure happened. Plan: the first step refused the input or its checks, before
#: anything was made; Create / Cleanup: a later step of that machine; Compensate: compensation
#: itself could not finish.
type FailureStage = Literal["Plan", "Create", "Cleanup", "Compensate"]
