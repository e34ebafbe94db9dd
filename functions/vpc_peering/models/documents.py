"""What the create and cleanup machines carry from step to step and return: the peering
document (Plan's output, every later step's input), the cleanup document, the failure and
compensation reports, the accept function's outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from .requests import DedicatedRouteTableRequest, SideRef, _Selection, _without_empty, port_label
from .vocabulary import FailureStage, Location, SideName, _Model


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


class CompensationReport(_Model):
    """What compensation removed."""

    security_group_rules_revoked: list[SecurityGroupRuleEntry] = Field(default_factory=list)
    routes_removed: list[RouteEntry] = Field(default_factory=list)
    route_tables_deleted: list[str] = Field(default_factory=list)
    peering_deleted: bool = False

    @model_serializer(mode="wrap")
    def _rules_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty(handler(self), "SecurityGroupRulesRevoked")


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


class TagChangeOutcome(_Model):
    started: bool
    execution_arn: str | None = None
    reason: str = ""
