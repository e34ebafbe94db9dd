"""Inputs and outputs of both state machines.

Field names on the wire are PascalCase, like the AWS APIs they sit beside. The create machine
passes one ``PeeringDocument`` from state to state; each step adds what it did, and the final
document is the execution output, which the cleanup machine accepts as its input.
"""

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
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from .errors import InvalidInput

VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")]
RouteTableId = Annotated[str, StringConstraints(pattern=r"^rtb-[0-9a-f]{8}([0-9a-f]{9})?$")]
PeeringId = Annotated[str, StringConstraints(pattern=r"^pcx-[0-9a-f]{8}([0-9a-f]{9})?$")]
# [0-9], not \d: pydantic's regex engine lets \d match any Unicode digit.
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
RoleArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"),
]


@cache
def _region_patterns() -> tuple[re.Pattern[str], ...]:
    """The region name patterns of every AWS partition, from botocore's endpoint data."""
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return tuple(re.compile(p["regionRegex"]) for p in endpoints["partitions"])


def _known_region(value: str) -> str:
    if not any(p.match(value) for p in _region_patterns()):
        raise ValueError("not an AWS region name (e.g. us-east-1)")
    return value


Region = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"),
    AfterValidator(_known_region),
]
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
RESERVED_TAG_PREFIXES = ("aws:", "vpc-peering:")

#: Peering states in which a connection exists or is on its way; anything else is gone.
LIVE_STATES = frozenset({"initiating-request", "pending-acceptance", "provisioning", "active"})
GONE_STATES = frozenset({"deleted", "deleting", "failed", "rejected", "expired"})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class _Strict(_Model):
    """Request models: unknown fields are errors, so a typo is caught instead of ignored."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid")


def _network(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid CIDR block ({exc})") from exc


class DedicatedRouteTableRequest(_Strict):
    """The tutorial's way: a new route table, owned by this tool, associated with these subnets."""

    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=200)

    @field_validator("subnet_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a subnet")
        return value


@dataclass(frozen=True)
class Location:
    """An account and region, and the role to assume there (``None``: the hub's credentials)."""

    account_id: str
    region: str
    role_arn: str | None = None

    def __str__(self) -> str:
        return f"account {self.account_id} in {self.region}"


class SideRef(_Model):
    """Where a side lives and how to reach it. In a document the role is the resolved one (the
    member role for another account), so ``location`` needs nothing else."""

    vpc_id: str
    account_id: str
    region: str
    role_arn: str | None = None

    @property
    def location(self) -> Location:
        return Location(self.account_id, self.region, self.role_arn)


class SideRefInput(SideRef):
    """A side as an input names it (a create output given to cleanup, an event's side):
    validated, and anything else the side carries is ignored. Its location is resolved, and
    checked against the boundary, by the step that reads it."""

    vpc_id: VpcId
    account_id: AccountId
    region: Region
    role_arn: RoleArn | None = None


class _Selection:
    """Which existing route tables of a side get the peer routes (requests and resolved sides
    carry the same route options)."""

    route_tables: str | None
    route_table_ids: list[str] | None
    subnet_ids: list[str] | None
    dedicated_route_table: DedicatedRouteTableRequest | None

    @property
    def selection(self) -> str:
        """all, main, none, ids or subnets."""
        if self.route_table_ids is not None:
            return "ids"
        if self.subnet_ids is not None:
            return "subnets"
        if self.route_tables is not None:
            return self.route_tables
        return "none" if self.dedicated_route_table else "all"


class SideRequest(_Selection, _Strict):
    """One side of a requested peering and where its routes go."""

    vpc_id: VpcId
    region: Region | None = None
    account_id: AccountId | None = None
    role_arn: RoleArn | None = None
    route_tables: Literal["all", "main", "none"] | None = None
    route_table_ids: list[RouteTableId] | None = Field(default=None, min_length=1, max_length=200)
    subnet_ids: list[SubnetId] | None = Field(default=None, min_length=1, max_length=200)
    dedicated_route_table: DedicatedRouteTableRequest | None = None
    destination_cidrs: list[str] | None = Field(default=None, min_length=1, max_length=50)
    ipv6: StrictBool = False

    @field_validator("route_table_ids", "subnet_ids")
    @classmethod
    def _unique_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat an id")
        return value

    @field_validator("destination_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cidrs = [_network(v, "DestinationCidrs") for v in value]
        if len(set(cidrs)) != len(cidrs):
            raise ValueError("must not repeat a CIDR")
        return cidrs

    @model_validator(mode="after")
    def _one_selector(self) -> SideRequest:
        given = [
            name
            for name, value in (
                ("RouteTables", self.route_tables),
                ("RouteTableIds", self.route_table_ids),
                ("SubnetIds", self.subnet_ids),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of RouteTables, RouteTableIds, SubnetIds (got {given})"
            )
        if self.role_arn and self.account_id and f"::{self.account_id}:" not in self.role_arn:
            raise ValueError("RoleArn must be a role in AccountId")
        return self


class CreateRequest(_Strict):
    """Input of the create machine."""

    requester: SideRequest
    accepter: SideRequest
    dns_resolution: StrictBool = False
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)
    dry_run: StrictBool = False

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.lower().startswith(RESERVED_TAG_PREFIXES))
        if reserved:
            raise ValueError(f"keys starting with aws: or vpc-peering: are reserved ({reserved})")
        for key, text in value.items():
            problem = tag_text_problem(key)
            if problem:
                raise ValueError(f"key {_clip(repr(key), 80)}: {problem}")
            problem = tag_text_problem(text)
            if problem:
                raise ValueError(f"{_clip(repr(key), 80)}: value {problem}")
        return value


class Side(_Selection, SideRef):
    """A resolved side: where it lives (its location resolved once, in Plan), its CIDRs as
    EC2 reports them, and the route options of its request."""

    cidr_blocks: list[str] = Field(default_factory=list)
    ipv6_cidr_blocks: list[str] = Field(default_factory=list)
    route_tables: str | None = None
    route_table_ids: list[str] | None = None
    subnet_ids: list[str] | None = None
    dedicated_route_table: DedicatedRouteTableRequest | None = None
    destination_cidrs: list[str] | None = None
    ipv6: bool = False


class RouteEntry(_Model):
    """One route of the peering: planned, then created or found already there."""

    side: SideName
    route_table_id: str | None
    destination: str
    dedicated: bool = False
    state: Literal["planned", "present", "created", "removed", "absent"] = "planned"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.destination


class Association(_Model):
    subnet_id: str
    association_id: str | None = None


class DedicatedTable(_Model):
    """A route table this tool creates for one side (tagged, so cleanup can find it)."""

    side: SideName
    vpc_id: str
    route_table_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    associations: list[Association] = Field(default_factory=list)
    state: Literal["planned", "present", "created", "removed"] = "planned"


class SideDns(_Model):
    allow_dns_resolution_from_remote_vpc: bool = False


class DnsReport(_Model):
    requested: bool
    requester: SideDns | None = None
    accepter: SideDns | None = None
    changed: bool = False


class Check(_Model):
    subject: str
    ok: bool
    detail: str = ""


class Verification(_Model):
    ok: bool
    checks: list[Check]


class PeeringDocument(_Model):
    """The state the create machine carries; its final form is the execution output."""

    execution_name: str
    #: Minted in Plan, unique to this execution; tagged on what it creates (TAG_EXECUTION_ID).
    execution_id: str = ""
    dry_run: bool = False
    dns_resolution: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    requester: Side
    accepter: Side
    vpc_peering_connection_id: str | None = None
    status: str | None = None
    peering_action: Literal["create", "reuse"] = "create"
    created_by_execution: bool = False
    routes: list[RouteEntry] = Field(default_factory=list)
    dedicated_route_tables: list[DedicatedTable] = Field(default_factory=list)
    acceptance: AcceptOutcome | None = None
    dns: DnsReport | None = None
    verification: Verification | None = None

    def side(self, name: SideName) -> Side:
        return self.requester if name == "Requester" else self.accepter


class CleanupRequest(_Model):
    """Input of the cleanup machine: a peering id, or a create output as it is."""

    vpc_peering_connection_id: PeeringId
    region: Region | None = None
    account_id: AccountId | None = None
    role_arn: RoleArn | None = None
    requester: SideRefInput | None = None
    accepter: SideRefInput | None = None


class CompensationReport(_Model):
    """What compensation removed."""

    routes_removed: list[RouteEntry] = Field(default_factory=list)
    route_tables_deleted: list[str] = Field(default_factory=list)
    peering_deleted: bool = False


class FailureReport(_Model):
    """A failed create's end: the error name and cause for the Fail state and the "VPC
    Peering Failed" event, the peering, and what compensation removed."""

    error: str
    cause: str
    vpc_peering_connection_id: str | None = None
    compensation: CompensationReport | None = None


class Removed(_Model):
    routes: list[RouteEntry] = Field(default_factory=list)
    route_tables: list[str] = Field(default_factory=list)
    peering_deleted: bool = False


class CleanupDocument(_Model):
    """The state the cleanup machine carries; its final form is the execution output."""

    execution_name: str
    vpc_peering_connection_id: str
    status_before: str | None = None
    status: str | None = None
    managed: bool = False
    requester: SideRef | None = None
    accepter: SideRef | None = None
    routes: list[RouteEntry] = Field(default_factory=list)
    dedicated_route_tables: list[DedicatedTable] = Field(default_factory=list)
    removed: Removed = Field(default_factory=Removed)


class AcceptOutcome(_Model):
    """What the accept function reports to the waiting create execution (its task result).
    Read, never trusted: anyone holding the task token can send one (AddRoutes asks EC2)."""

    vpc_peering_connection_id: str = ""
    status: str = ""
    accepted: bool = Field(default=False, alias="AcceptedNow")


class AcceptanceRequest(_Model):
    """Detail of a "VPC Peering Acceptance Requested" event. Only the id and token are trusted;
    the sides only say where to look and must match what EC2 reports."""

    task_token: str = Field(min_length=1, max_length=4096)
    vpc_peering_connection_id: PeeringId
    requester: SideRefInput
    accepter: SideRefInput
    execution_name: str | None = None


#: Bounds on an InvalidInput message, whatever the input's size.
MAX_PATH = 120
MAX_PROBLEM = 300
MAX_PROBLEMS = 10


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse[ModelT: BaseModel](model: type[ModelT], data: Any, root: str = "") -> ModelT:
    """Validate ``data`` into ``model``; bad input becomes ``InvalidInput`` naming the fields.

    The message is bounded: long paths and values are clipped, and at most ten problems are
    listed, so a hostile input cannot make a huge error (or log line, or event).
    """
    if not isinstance(data, dict):
        where = root or "input"
        raise InvalidInput(f"{where}: must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
            loc = ".".join(str(p) for p in ((root,) if root else ()) + tuple(err["loc"]))
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(_clip(f"{_clip(loc or 'input', MAX_PATH)}: {msg}", MAX_PROBLEM))
        more = exc.error_count() - len(problems)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise InvalidInput("; ".join(problems) + suffix) from None
