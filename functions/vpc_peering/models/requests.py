"""What the machines take: the create, cleanup and reconcile machines' inputs, the accept
function's request, the tag change event."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from ..errors import AccountNotAllowed
from .messages import _clip
from .vocabulary import (
    RESERVED_TAG_PREFIXES,
    AccountId,
    GroupName,
    Location,
    PeeringId,
    Region,
    RoleArn,
    RouteTableId,
    RuleSource,
    SecurityGroupId,
    SideName,
    SubnetId,
    TagKey,
    TagValue,
    VpcId,
    _Model,
    _network,
    _Strict,
    _unique,
    tag_text_problem,
)


class DedicatedRouteTableRequest(_Strict):
    """The tutorial's way: a new route table, owned by this tool, associated with these subnets."""

    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=200)

    @field_validator("subnet_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _unique(value, "a subnet")


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
    #: Accepter-only mode: the requester's CIDRs to route (the pin, set by the reconcile): only
    #: those it still reports. None: those pinned on the peering, else every one it reports.
    accept_cidrs: list[str] | None = Field(default=None, max_length=100)
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
        from .documents import PeeringDocument  # (documents imports this module)

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
    #: Set by the schedule rule: this reconcile is the sweep (``vpc-peering status`` shows the
    #: last one by it). It changes nothing else: a sweep reconciles everything in scope.
    sweep: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> ReconcileRequest:
        if self.group is not None and self.vpc is not None:
            raise ValueError("give Group or Vpc, not both")
        return self


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


# ------------------------------------------------------------------ the operator's view
class StatusRequest(_Strict):
    """Input of the network status function: every group, or one."""

    group: GroupName | None = None
    #: Also list every VPC whose tags name a group, whatever the group policy says (what
    #: ``vpc-peering policy --from-tags`` writes a policy from).
    tagged: StrictBool = False
