"""Inputs and outputs of both state machines.

Field names on the wire are PascalCase, like the AWS APIs they sit beside. The create machine
passes one ``PeeringDocument`` from state to state; each step adds what it did, and the final
document is the execution output, which the cleanup machine accepts as its input.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, get_args

import botocore.loaders
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from .errors import AccountNotAllowed, InvalidInput

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


class DedicatedRouteTableRequest(_Strict):
    """The tutorial's way: a new route table, owned by this tool, associated with these subnets."""

    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=200)

    @field_validator("subnet_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _unique(value, "a subnet")


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
    member role for another account), so ``location`` needs nothing else. An ``external`` side
    (the requester of a request accepted in accepter-only mode) is never reached at all."""

    vpc_id: str
    account_id: str
    region: str
    role_arn: str | None = None
    external: bool = False

    @property
    def location(self) -> Location:
        if self.external:
            raise AccountNotAllowed(
                f"{self.vpc_id} in account {self.account_id} is an external requester's: this "
                "stack never acts there"
            )
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
    #: DNS resolution from the remote VPC on this side; unset: the request's DnsResolution.
    dns_resolution: StrictBool | None = None
    #: Allow a peering route narrower than an existing route to another target (a summary
    #: route to a transit gateway or VPN, say); the output names each route it narrows.
    allow_more_specific_routes: StrictBool = False

    @field_validator("route_table_ids", "subnet_ids")
    @classmethod
    def _unique_ids(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique(value, "an id")

    @field_validator("destination_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return _unique([_network(v, "DestinationCidrs") for v in value], "a CIDR")

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
            raise ValueError(
                f"RoleArn {self.role_arn} must be a role in AccountId {self.account_id}"
            )
        return self


class SecurityGroupRuleRequest(_Strict):
    """Ingress on a group of one side's VPC from the peer: its routed CIDRs (``PeerVpc``), or
    one of its security groups (same region only: AWS references a peer's group no further)."""

    side: SideName
    group_id: SecurityGroupId
    protocol: Literal["tcp", "udp", "icmp", "-1"]
    #: tcp, udp: the port range; icmp: the type and code (-1: any); -1 (every protocol): none.
    from_port: StrictInt | None = None
    to_port: StrictInt | None = None
    source: RuleSource

    @model_validator(mode="after")
    def _ports(self) -> SecurityGroupRuleRequest:
        given = f"FromPort {self.from_port}, ToPort {self.to_port}"
        if self.protocol == "-1":
            if {self.from_port, self.to_port} - {None, -1}:
                raise ValueError(f"Protocol -1 (every protocol) takes no ports (got {given})")
            self.from_port = self.to_port = -1
        elif self.protocol == "icmp":
            self.from_port = -1 if self.from_port is None else self.from_port
            self.to_port = -1 if self.to_port is None else self.to_port
            if not (-1 <= self.from_port <= 255 and -1 <= self.to_port <= 255):
                raise ValueError(
                    f"icmp takes an ICMP type (FromPort) and code (ToPort), each -1 (any) to "
                    f"255 (got {given})"
                )
        else:
            if self.from_port is None or self.to_port is None:
                raise ValueError(f"{self.protocol} needs FromPort and ToPort (got {given})")
            if not (0 <= self.from_port <= self.to_port <= 65535):
                raise ValueError(
                    f"{self.protocol} ports must be 0 to 65535 with FromPort <= ToPort "
                    f"(got {given})"
                )
        return self

    @property
    def label(self) -> str:
        """``Accepter sg-0abc... tcp 5432 from PeerVpc``: the rule as a user wrote it."""
        ports = port_label(self.protocol, self.from_port, self.to_port)
        return f"{self.side} {self.group_id} {ports} from {self.source}"


def port_label(protocol: str, from_port: int | None, to_port: int | None) -> str:
    """``tcp 5432``, ``tcp 8000-8080``, ``icmp -1/-1``, ``all traffic``."""
    if protocol == "-1":
        return "all traffic"
    if protocol == "icmp":
        return f"icmp {from_port}/{to_port}"
    ports = str(from_port) if from_port == to_port else f"{from_port}-{to_port}"
    return f"{protocol} {ports}"


class CreateRequest(_Strict):
    """Input of the create machine."""

    requester: SideRequest
    accepter: SideRequest
    dns_resolution: StrictBool = False
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)
    dry_run: StrictBool = False
    #: Set by the reconcile machine: the peering is a group peering (tagged vpc-peering:group),
    #: which a reconcile removes once no group wants the pair.
    group: GroupName | None = None
    #: Manage a live peering of the pair that this stack did not make (tag it as this stack's):
    #: from then on cleanup removes its routes and the peering.
    adopt: StrictBool = False
    #: Accepter-only mode (set by the reconcile machine): accept this request, made from the
    #: Requester's account (which the stack never acts in), and route the Accepter's side only.
    accept_incoming: PeeringId | None = None
    #: Ingress from the peer on security groups of either VPC, tagged as this peering's: a
    #: rerun adds what is new and revokes this peering's rules no longer asked.
    security_group_rules: list[SecurityGroupRuleRequest] = Field(
        default_factory=list, max_length=50
    )

    @field_validator("security_group_rules")
    @classmethod
    def _unique_rules(cls, value: list[SecurityGroupRuleRequest]) -> list[SecurityGroupRuleRequest]:
        _unique([rule.label for rule in value], "a rule")
        return value

    #: Act on a peering a group manages all the same (ManagedByGroup otherwise); the next
    #: reconcile of the group puts it back as the tags say.
    force: StrictBool = False

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
    #: The VPC's Name tag, as EC2 has it (for people: outputs and the default peering name).
    name: str | None = None
    route_tables: str | None = None
    route_table_ids: list[str] | None = None
    subnet_ids: list[str] | None = None
    dedicated_route_table: DedicatedRouteTableRequest | None = None
    destination_cidrs: list[str] | None = None
    ipv6: bool = False
    #: DNS resolution from the remote VPC on this side, as asked (resolved in Plan).
    dns_resolution: bool = False
    allow_more_specific_routes: bool = False


class RouteEntry(_Model):
    """One route of the peering: planned, then created or found already there."""

    side: SideName
    route_table_id: str | None
    destination: str
    dedicated: bool = False
    state: Literal["planned", "present", "created", "removed", "absent"] = "planned"
    #: The existing route to another target this one is narrower than (AllowMoreSpecificRoutes).
    narrows: str | None = None

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
    """The DNS option of each side as set (to exactly what was asked), and whether it changed."""

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


class SecurityGroupRuleEntry(_Model):
    """One EC2 ingress rule of a requested ``SecurityGroupRules`` item (a ``PeerVpc`` source is
    one rule per routed CIDR of the peer), or a rule of this peering no longer asked.

    State: ``planned``; ``created`` (by this execution); ``present`` (this stack's rule for this
    peering, from an earlier run); ``reused`` (the same rule made by someone else: never
    revoked by this stack); ``revoked`` (this peering's, no longer asked: revoked now)."""

    side: SideName
    group_id: str
    protocol: str
    from_port: int
    to_port: int
    #: ``PeerVpc`` or the peer's security group id.
    source: str
    #: For a ``PeerVpc`` source: the peer CIDR this rule admits.
    cidr: str | None = None
    rule_id: str | None = None
    state: Literal["planned", "present", "created", "reused", "revoked"] = "planned"

    @property
    def referenced_group(self) -> str | None:
        return None if self.source == "PeerVpc" else self.source

    @property
    def key(self) -> tuple[str, str, int, int, str]:
        """What makes two rules the same in EC2: group, protocol, ports, CIDR or group."""
        return (
            self.group_id,
            self.protocol,
            self.from_port,
            self.to_port,
            self.cidr or self.source,
        )

    @property
    def label(self) -> str:
        return (
            f"{self.side} {self.group_id} {port_label(self.protocol, self.from_port, self.to_port)}"
            f" from {self.cidr or self.source}"
        )


class TrafficWarning(_Model):
    """Something that may stop traffic across the peering (never a failure), and what to do."""

    kind: Literal["NetworkAcl", "NoSecurityGroupRule", "NoFlowLogs"]
    side: SideName
    subject: str
    detail: str
    advice: str


class StaleReference(_Model):
    """A security-group rule that references a group of the peer VPC, stale since the peering
    went (EC2's DescribeStaleSecurityGroups); reported, not removed, unless this stack made it."""

    side: SideName
    vpc_id: str
    group_id: str
    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    referenced_group_id: str
    referenced_vpc_id: str | None = None


class PeeringDocument(_Model):
    """The state the create machine carries; its final form is the execution output."""

    execution_name: str
    #: Minted in Plan, unique to this execution; tagged on what it creates (TAG_EXECUTION_ID).
    execution_id: str = ""
    dry_run: bool = False
    dns_resolution: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    group: str | None = None
    #: The pair's peering was made elsewhere and this create adopts it (``Adopt``).
    adopt: bool = False
    #: Accepter-only mode: a request made elsewhere, accepted and routed on our side only.
    incoming: bool = False
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
    security_group_rules: list[SecurityGroupRuleEntry] = Field(default_factory=list)
    verification: Verification | None = None
    #: What may stop traffic across the peering (Verify; never failures), each with what to do.
    warnings: list[TrafficWarning] = Field(default_factory=list)
    #: The group whose peering this explicit create changed anyway (Force): the next
    #: reconcile of the group puts it back as the tags say.
    forced_over_group: str | None = None
    #: What this execution changed (set by Verify): "peering", "acceptance", "route tables",
    #: "routes", "dns". Empty: a rerun that found everything as asked ("VPC Peering
    #: Established" is then not published).
    changed: list[str] = Field(default_factory=list)

    def changes(self) -> list[str]:
        """What this execution changed, as far as its document records it."""
        made = {
            "peering": self.created_by_execution,
            "acceptance": bool(self.acceptance and self.acceptance.accepted),
            "route tables": any(t.state == "created" for t in self.dedicated_route_tables),
            "routes": any(r.state == "created" for r in self.routes),
            "dns": bool(self.dns and self.dns.changed),
            "security group rules": any(
                e.state in ("created", "revoked") for e in self.security_group_rules
            ),
        }
        return [what for what, done in made.items() if done]

    def side(self, name: SideName) -> Side:
        return self.requester if name == "Requester" else self.accepter

    @property
    def peering_location(self) -> Location:
        """Where the peering is read and tagged: the requester's account and region, or ours
        (the accepter's) for a request accepted in accepter-only mode."""
        return (self.accepter if self.incoming else self.requester).location

    def reachable(self) -> list[tuple[SideName, Side]]:
        """The sides this stack acts on (an external requester's is not one)."""
        named: list[tuple[SideName, Side]] = [
            ("Requester", self.requester),
            ("Accepter", self.accepter),
        ]
        return [(name, side) for name, side in named if not side.external]


class CleanupRequest(_Strict):
    """Input of the cleanup machine: a peering id, or a create output as it is (its other
    fields are read past); any other field is an error, so a typo is named, not ignored."""

    vpc_peering_connection_id: PeeringId
    region: Region | None = None
    account_id: AccountId | None = None
    role_arn: RoleArn | None = None
    requester: SideRefInput | None = None
    accepter: SideRefInput | None = None
    #: Set by the reconcile machine with RejectUnwanted: reject this request made elsewhere,
    #: which the accept policy refuses (a pending request to the Accepter's VPC).
    reject: StrictBool = False
    #: Set by the reconcile machine: the group whose peering this removal is (no group wants
    #: the pair any more). An explicit cleanup of a group's peering is ManagedByGroup.
    group: GroupName | None = None
    #: Remove a peering a group manages all the same; the next reconcile puts it back.
    force: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _create_output(cls, data: Any) -> Any:
        """A create output is read past its own fields; a DryRun's is refused, saying why."""
        if not isinstance(data, dict):
            return data
        if data.get("DryRun") is True:
            raise ValueError(
                "this is the output of a DryRun create: nothing was created, so there is "
                "nothing to clean up (give the VpcPeeringConnectionId of a real peering)"
            )
        output = {f.alias or n for n, f in PeeringDocument.model_fields.items()}
        own = {f.alias or n for n, f in cls.model_fields.items()}
        if "PeeringAction" in data:
            # A create output's Group says what the peering was made for, not that this
            # cleanup is the group's own removal (only the reconcile says that).
            own = own - {"Group"}
        return {k: v for k, v in data.items() if k in own or k not in output}


def _without_empty(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A report as it was before security-group rules existed, when it revoked none."""
    return {k: v for k, v in data.items() if k != key or v}


class CompensationReport(_Model):
    """What compensation removed."""

    security_group_rules_revoked: list[SecurityGroupRuleEntry] = Field(default_factory=list)
    routes_removed: list[RouteEntry] = Field(default_factory=list)
    route_tables_deleted: list[str] = Field(default_factory=list)
    peering_deleted: bool = False

    @model_serializer(mode="wrap")
    def _rules_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty(handler(self), "SecurityGroupRulesRevoked")


#: Where a failure happened. Plan: the first step refused the input or its checks, before
#: anything was made; Create / Cleanup: a later step of that machine; Compensate: compensation
#: itself could not finish.
type FailureStage = Literal["Plan", "Create", "Cleanup", "Compensate"]


class FailureReport(_Model):
    """A failed create's or cleanup's end: the error name and cause for the Fail state and the
    "VPC Peering Failed" / "VPC Peering Cleanup Failed" event, the peering and its VPCs, and
    what compensation removed."""

    error: str
    cause: str
    stage: FailureStage
    #: A dry run refused by Plan (rules can ignore it: nothing was to be made).
    dry_run: bool = False
    vpc_peering_connection_id: str | None = None
    requester_vpc_id: str | None = None
    accepter_vpc_id: str | None = None
    compensation: CompensationReport | None = None


class Removed(_Model):
    security_group_rules: list[SecurityGroupRuleEntry] = Field(default_factory=list)
    routes: list[RouteEntry] = Field(default_factory=list)
    route_tables: list[str] = Field(default_factory=list)
    peering_deleted: bool = False

    @model_serializer(mode="wrap")
    def _rules_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty(handler(self), "SecurityGroupRules")


class CleanupDocument(_Model):
    """The state the cleanup machine carries; its final form is the execution output."""

    execution_name: str
    vpc_peering_connection_id: str
    status_before: str | None = None
    status: str | None = None
    managed: bool = False
    #: A request made elsewhere that this stack accepted (accepter-only mode): read, and
    #: removed, in our (the accepter's) account and region; the requester's is never touched.
    incoming: bool = False
    #: A request made elsewhere that the accept policy refuses, rejected (RejectUnwanted).
    reject: bool = False
    requester: SideRef | None = None
    accepter: SideRef | None = None
    routes: list[RouteEntry] = Field(default_factory=list)
    dedicated_route_tables: list[DedicatedTable] = Field(default_factory=list)
    #: This stack's rules for this peering (tagged so), revoked before the peering goes.
    security_group_rules: list[SecurityGroupRuleEntry] = Field(default_factory=list)
    removed: Removed = Field(default_factory=Removed)
    #: Rules in either VPC that reference a group of the peer and went stale with the peering,
    #: made by someone else: reported here, left alone (this stack's own are revoked).
    stale_references: list[StaleReference] = Field(default_factory=list)
    #: Sides whose account and region could not be read, with the error: the peering was
    #: removed from the requester's side, and routes to it on these are left (blackholes,
    #: which a later reconcile removes once it can read them).
    unreadable: list[str] = Field(default_factory=list)
    #: How it ended: Removed (this cleanup deleted the peering), AlreadyDeleted (it was gone
    #: before; what pointed to it was cleared), or NotFound (EC2 knows no such peering where
    #: the input said to look: nothing was done).
    result: Literal["Removed", "AlreadyDeleted", "NotFound", "Rejected", ""] = ""
    #: The group the peering was made for (its vpc-peering:group tag), if any.
    group: str | None = None
    #: The group whose peering this explicit cleanup removed anyway (Force): the next
    #: reconcile of the group makes it again.
    forced_over_group: str | None = None
    #: What this cleanup changed (set by DeletePeering): "peering", "routes", "route tables".
    #: Empty: nothing was there to remove ("VPC Peering Removed" is then not published).
    changed: list[str] = Field(default_factory=list)

    def changes(self) -> list[str]:
        """What this cleanup removed (or rejected), as far as its document records it."""
        made = {
            "peering": self.removed.peering_deleted or self.result == "Rejected",
            "routes": bool(self.removed.routes),
            "route tables": bool(self.removed.route_tables),
            "security group rules": bool(self.removed.security_group_rules),
        }
        return [what for what, done in made.items() if done]

    @property
    def unread_sides(self) -> set[str]:
        """The side names ``unreadable`` names (``Accepter: ...``, ``Requester and ...``)."""
        return {n for text in self.unreadable for n in text.split(":", 1)[0].split(" and ")}

    def reachable(self) -> list[tuple[SideName, SideRef]]:
        """The sides this stack acts on (an external requester's is not one)."""
        named: list[tuple[SideName, SideRef | None]] = [
            ("Requester", self.requester),
            ("Accepter", self.accepter),
        ]
        return [(n, side) for n, side in named if side is not None and not side.external]

    @property
    def peering_location(self) -> Location:
        """Where the peering is read and deleted: the requester's account and region, or ours
        for a request made elsewhere."""
        side = self.accepter if self.incoming else self.requester
        assert side is not None
        return side.location


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


# -------------------------------------------------------------------- reconcile machine
class VpcRef(_Strict):
    """A VPC named in a reconcile input; account and region default to the hub's."""

    vpc_id: VpcId
    account_id: AccountId | None = None
    region: Region | None = None


class ReconcileRequest(_Strict):
    """Input of the reconcile machine: ``{}`` (everything in scope), one group, or one VPC."""

    group: GroupName | None = None
    vpc: VpcRef | None = None
    #: Set by the tag-event starter: begin no earlier than this (the end of its time window),
    #: so one execution covers every tag change of the window.
    not_before: AwareDatetime | None = None
    #: Decide everything, change nothing: the output's Plan lists what a real run would do.
    dry_run: bool = False
    #: Let the removals go even when there are more than MaxRemovalsPerReconcile.
    confirm_removals: bool = False
    #: Set by the tag-event starter: the scope is the groups of the VPCs whose tags changed
    #: since the last tag-started reconcile took them (the queue in the lock table).
    tag_changes: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> ReconcileRequest:
        if self.group is not None and self.vpc is not None:
            raise ValueError("give Group or Vpc, not both")
        return self


class ReconcileScope(_Model):
    accounts: list[str]
    regions: list[str]
    group: str | None = None
    vpc: str | None = None
    #: Started by tag changes: the VPCs whose tags changed (the scope is their groups).
    changed_vpcs: list[str] | None = None


class ReconcileFailure(_Model):
    """Something a reconcile could not make converge: a pair, a VPC whose tags are invalid, or
    an account and region it could not read."""

    pair: str | None = None
    vpc: str | None = None
    location: str | None = None
    group: str | None = None
    action: str | None = None
    error: str
    cause: str

    @property
    def subject(self) -> str:
        return self.pair or self.vpc or self.location or "reconcile"


class ReconcileSkip(_Model):
    """A pair or peering a reconcile leaves alone on purpose, and why."""

    pair: str
    group: str | None = None
    vpc_peering_connection_id: str | None = None
    reason: str


class ReconcileIgnored(_Model):
    """A request made elsewhere that stays pending: the accept policy does not allow it (or the
    requester's CIDRs overlap ours), and the reason."""

    vpc_peering_connection_id: str
    requester: str
    accepter: str
    status: str
    reason: str


class ReconcileRefusal(_Model):
    """A VPC the group policy keeps out of a group (GroupPolicyDenied): the policy working,
    not a failure."""

    group: str
    vpc_id: str
    account_id: str
    region: str
    error: str = "GroupPolicyDenied"
    cause: str


class PendingJoin(_Model):
    """A VPC waiting for approval to join a group (``"Join": "approval"``)."""

    group: str
    vpc_id: str
    account_id: str
    region: str
    cidrs: list[str]


class Announcement(_Model):
    """An event Discover hands to the machine to put on the stack's bus (once per news)."""

    detail_type: str
    detail: dict[str, Any]


class PairSideRef(_Model):
    vpc_id: str
    account_id: str
    region: str


class ReconcilePair(_Model):
    """A pair a reconcile acted on (or would, or held back): its two VPCs, and its group."""

    requester: PairSideRef
    accepter: PairSideRef
    group: str | None = None


class PlannedPair(ReconcilePair):
    """A dry run's line: what a real run would do for the pair, and why."""

    action: str
    reason: str


class ReconcileCounts(_Model):
    """What child executions did, counted (a round's, and the whole reconcile's)."""

    created: int = 0
    removed: int = 0
    repaired: int = 0
    #: Accepter-only mode: requests made elsewhere accepted, and rejected (RejectUnwanted).
    accepted: int = 0
    rejected: int = 0
    failed_count: int = 0

    def add(self, other: ReconcileCounts) -> None:
        for name in ReconcileCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ReconcileReport(ReconcileCounts):
    """What a reconcile found and did (the execution output; on failure, the published event)."""

    scope: ReconcileScope
    desired: int = 0
    unchanged: int = 0
    failed: list[ReconcileFailure] = Field(default_factory=list)
    skipped: list[ReconcileSkip] = Field(default_factory=list)
    skipped_count: int = 0
    ignored: list[ReconcileIgnored] = Field(default_factory=list)
    ignored_count: int = 0
    #: Kept for the output's and the event's contract: always 0 and empty now. The rounds are
    #: in the plan object (S3), so no work is ever deferred for the state's size.
    deferred: int = 0
    deferred_pairs: list[ReconcilePair] = Field(default_factory=list)
    dry_run: bool = False
    #: A dry run: what a real run would do (listed within a byte budget; every one counted).
    plan: list[PlannedPair] = Field(default_factory=list)
    plan_counts: dict[str, int] = Field(default_factory=dict)
    #: Removals the guard held back (MaxRemovalsPerReconcile), and how many.
    removals_held: list[ReconcilePair] = Field(default_factory=list)
    removals_held_count: int = 0
    #: VPCs the group policy keeps out of a group (listed within a byte budget), and how many.
    refused: list[ReconcileRefusal] = Field(default_factory=list)
    refused_count: int = 0
    #: VPCs waiting for approval to join a group, and how many.
    pending_approval: list[PendingJoin] = Field(default_factory=list)
    pending_approval_count: int = 0
    #: Set when the group policy could not be used: one line naming the parameter and the
    #: first problem (every group is then closed and nothing about groups changes).
    group_policy: str | None = None
    #: The pairs the child executions made, removed and repaired (listed within a byte budget;
    #: the counts above count them all).
    created_pairs: list[ReconcilePair] = Field(default_factory=list)
    removed_pairs: list[ReconcilePair] = Field(default_factory=list)
    repaired_pairs: list[ReconcilePair] = Field(default_factory=list)


class ReconcileOutcome(ReconcileReport):
    """The report, and how the reconcile ends: SUCCEEDED, or INCOMPLETE / FAILED with the error
    name and cause of its Fail state (absent on success)."""

    execution_name: str = ""
    status: Literal["SUCCEEDED", "INCOMPLETE", "FAILED"] = "SUCCEEDED"
    error: str | None = None
    cause: str | None = None

    @model_serializer(mode="wrap")
    def _error_unless_succeeded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.status == "SUCCEEDED":
            return {k: v for k, v in data.items() if v is not None or k not in ("Error", "Cause")}
        # The reconcile machine's PublishIncomplete and Incomplete states read $.Error and
        # $.Cause whenever Status is not SUCCEEDED: a missing one would be States.Runtime.
        data["Error"] = data.get("Error") or "InternalError"
        data["Cause"] = data.get("Cause") or f"the reconcile ended {self.status} without a cause"
        return data


class TagChangeDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    changed_tag_keys: list[str] = Field(alias="changed-tag-keys")
    service: str
    resource_type: str = Field(alias="resource-type")


class TagChangeEvent(BaseModel):
    """An EventBridge "Tag Change on Resource" event (source aws.tag), as delivered: on the
    default bus of its account and region, or forwarded from there to the stack's bus."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    id: str
    account: AccountId
    region: Region
    source: Literal["aws.tag"]
    detail_type: Literal["Tag Change on Resource"] = Field(alias="detail-type")
    resources: list[str] = Field(min_length=1)
    detail: TagChangeDetail


class TagChangeOutcome(_Model):
    started: bool
    execution_arn: str | None = None
    reason: str = ""


class PairRun(_Model):
    """One pair's work, built once by Discover: what the report names (the pair, its action
    and group) and the child execution that does it (which machine, its name and input)."""

    action: str
    label: str
    requester: PairSideRef
    accepter: PairSideRef
    group: str | None = None
    state_machine_arn: str
    name: str
    input: CreateRequest | CleanupRequest

    @field_serializer("input")
    def _child_input(self, value: BaseModel) -> dict[str, Any]:
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)


class RoundRun(_Model):
    """One round of the plan (pairs that share no VPC, so they run at the same time), as the
    plan object in S3 holds it: one item of the reconcile's distributed Map."""

    round: int
    pairs: list[PairRun]


class NetworkPlanDocument(_Model):
    """What Discover decided: the reconcile machine's state until the report. The rounds are
    in the plan object (``PlanKey`` in the stack's plan bucket), not in the state: a plan of
    any size runs, and nothing is deferred for size."""

    execution_name: str
    request: ReconcileRequest
    #: The plan object's key in the plan bucket ("" when there is no work: nothing written).
    plan_key: str = ""
    round_count: int = 0
    has_work: bool = False
    max_parallel_pairs: int = 10
    #: Bytes each round's outcome may take (all of them must fit the reconcile's state).
    outcome_bytes: int = 2048
    #: Events to put on the stack's bus before the rounds (new refusals, new join requests).
    announcements: list[Announcement] = Field(default_factory=list)
    report: ReconcileReport
    #: The rounds Discover wrote to the plan object (not in the state).
    rounds: list[RoundRun] = Field(default_factory=list, exclude=True)


class RoundInput(_Model):
    """One round, as the reconcile machine's distributed Map hands it to its child: the plan
    object's item and the reconcile's settings."""

    round: int
    pairs: list[PairRun]
    reconcile: str
    max_parallel_pairs: int
    outcome_bytes: int = 2048


class ChildError(_Model):
    error: str = ""
    cause: str = ""


class PairResult(_Model):
    """A child execution as the round's Map ends it: its run, and the error if it failed."""

    action: str
    label: str
    group: str | None = None
    name: str = ""
    error: ChildError | None = None


class RoundResult(_Model):
    round: int
    reconcile: str
    outcome_bytes: int = 2048
    pairs: list[PairResult]


class RoundOutcome(ReconcileCounts):
    """A round's counts, and its first few failures (the rest counted): small, so that every
    round's outcome fits the reconcile execution's state."""

    round: int
    failed: list[ReconcileFailure] = Field(default_factory=list)
    #: The pairs whose child execution ended well, by position in the plan: [round, index]
    #: (Report names them from the plan object).
    done: list[tuple[int, int]] = Field(default_factory=list)


#: Bounds on an InvalidInput message, whatever the input's size.
MAX_PATH = 120
MAX_PROBLEM = 300
MAX_PROBLEMS = 10


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse[ModelT: BaseModel](model: type[ModelT], data: Any, root: str = "") -> ModelT:
    """Validate ``data`` into ``model``; bad input becomes ``InvalidInput`` naming each field
    and the value it had, in words (never a pattern, never pydantic's wording).

    The message is bounded: long paths and values are clipped, and at most ten problems are
    listed, so a hostile input cannot make a huge error (or log line, or event).
    """
    if not isinstance(data, dict):
        where = root or "input"
        raise InvalidInput(f"{where}: must be a JSON object, got {_shown(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
            loc = _location(((root,) if root else ()) + tuple(err["loc"]))
            text = f"{_clip(loc or 'input', MAX_PATH)}: {_problem(model, err)}"
            problems.append(_clip(text, MAX_PROBLEM))
        more = exc.error_count() - len(problems)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise InvalidInput("; ".join(problems) + suffix) from None


def _location(parts: tuple[Any, ...]) -> str:
    """``Requester.SubnetIds[0]``: fields joined by dots, list positions in brackets."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _shown(value: Any) -> str:
    """A value as the user wrote it, clipped: ``'VPC-0ABC '``, ``12``, ``a list``."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return _clip(repr(value), 60)


_BOOLEAN = ("bool_type", "bool_parsing")
_CONTAINERS = {
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
}


def _problem(model: type[BaseModel], err: Any) -> str:
    """One validation error in words, with the offending value."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    shown = _shown(value)
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field" + _did_you_mean(model, err["loc"])
    if kind == "string_pattern_mismatch":
        return f"{shown} is not {PATTERN_NAMES.get(ctx.get('pattern', ''), 'valid here')}"
    if kind == "literal_error":
        return f"{shown} is not one of {ctx.get('expected', '')}".rstrip()
    if kind in _BOOLEAN:
        return f"must be true or false, got {shown}"
    if kind in _CONTAINERS:
        return f"must be {_CONTAINERS[kind]}, got {shown}"
    if kind.startswith(("datetime", "date_", "timezone")):
        return f"{shown} is not a date and time with a time zone (e.g. 2026-01-01T00:00:00Z)"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short"):
        return f"{message[0].lower()}{message[1:]}, got {shown}"
    return message


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``; did you mean VpcPeeringConnectionId?`` when a field of that object is close."""
    names = _field_names(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == str(loc[-1]).lower()]
    return f"; did you mean {close[0]}?" if close else ""


def _field_names(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names (as written on the wire) of the object at ``path`` in ``model``."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        field = fields.get(str(part))
        current = _model_in(field.annotation) if field else None
    return [f.alias or n for n, f in current.model_fields.items()] if current else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------ the operator's view
class StatusRequest(_Strict):
    """Input of the network status function: every group, or one."""

    group: GroupName | None = None


class StatusVpc(_Model):
    """A VPC as the status shows it: where it is, its Name tag and CIDRs, its groups."""

    vpc_id: str
    account_id: str
    region: str
    name: str | None = None
    cidr_blocks: list[str] = Field(default_factory=list)
    #: "mesh:blue", "hub:core", "spoke:core".
    groups: list[str] = Field(default_factory=list)


#: A pair's state in the matrix: active and routed both ways; a peering on its way; none; one
#: that needs routes or DNS; the reconcile could not make it (failed) or will not (refused).
type PairState = Literal["active", "pending", "missing", "repair", "failed", "refused"]


class StatusPair(_Model):
    """A pair a group wants, and how it is."""

    requester: str
    accepter: str
    groups: list[str]
    state: PairState
    vpc_peering_connection_id: str | None = None
    peering_status: str | None = None
    detail: str = ""


class StatusPeering(_Model):
    """A peering this stack manages (made, adopted or accepted), wherever it is."""

    vpc_peering_connection_id: str
    status: str
    requester: StatusVpc
    accepter: StatusVpc
    name: str | None = None
    group: str | None = None


class NetworkStatus(_Model):
    """The network as the hub reads it with the stack's roles: every group's members and
    pairs, every managed peering (those no group wants are explicit creates), what could not
    be read, and VPCs whose tags are wrong."""

    accounts: list[str]
    regions: list[str]
    groups: dict[str, list[str]] = Field(default_factory=dict)
    vpcs: list[StatusVpc] = Field(default_factory=list)
    pairs: list[StatusPair] = Field(default_factory=list)
    peerings: list[StatusPeering] = Field(default_factory=list)
    #: Requests made elsewhere to a managed VPC, left pending (they wait for approval: the
    #: accept policy does not allow them yet), and why.
    pending_approval: list[ReconcileIgnored] = Field(default_factory=list)
    failed: list[ReconcileFailure] = Field(default_factory=list)
