"""EC2 state as the tool observes it: plain data, no AWS calls.

The EC2 layer (``ec2.py``) fills these from API responses; the pure rules (``planning.py``)
read them. Keeping them apart means the rules depend on data only, never on the module that
makes the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import states


@dataclass
class Vpc:
    vpc_id: str
    owner_id: str
    cidr_blocks: list[str]
    ipv6_cidr_blocks: list[str]
    tags: dict[str, str]
    #: IPv6 blocks not assigned by Amazon (brought by the owner): AllowedPeerCidrs must list them.
    own_ipv6_cidr_blocks: list[str] = field(default_factory=list)


@dataclass
class Route:
    destination: str
    target: str
    state: str
    origin: str
    peering_id: str | None
    #: A prefix-list route (destination ``pl-...``): the list's CIDRs, as read with the table.
    prefix_cidrs: list[str] = field(default_factory=list)

    @property
    def is_local(self) -> bool:
        return self.target == "local"


@dataclass
class RouteTable:
    route_table_id: str
    vpc_id: str
    main: bool
    subnet_ids: list[str]
    associations: dict[str, str]  # subnet id -> association id
    routes: list[Route]
    tags: dict[str, str]


@dataclass
class PeeringSide:
    vpc_id: str
    owner_id: str
    region: str
    allow_dns: bool
    #: The side's CIDRs as the peering reports them (every associated block).
    cidr_blocks: list[str] = field(default_factory=list)
    ipv6_cidr_blocks: list[str] = field(default_factory=list)


@dataclass
class Peering:
    peering_id: str
    status: str
    message: str
    requester: PeeringSide
    accepter: PeeringSide
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status in states.LIVE

    def involves(self, vpc_id: str) -> bool:
        return vpc_id in (self.requester.vpc_id, self.accepter.vpc_id)


@dataclass
class SideView:
    """What EC2 shows around one side's VPC, read in that side's account and region."""

    vpc: Vpc | None  # None: no such VPC there
    route_tables: list[RouteTable]  # this VPC's
    subnets: dict[str, str]  # subnet id -> VPC id, in this account and region (when needed)
    peerings: list[Peering]  # live, involving a VPC read here; tags as this account sees them


@dataclass
class SecurityGroupRule:
    """One ingress rule: from DescribeSecurityGroupRules (with its id and tags), or one
    permission of DescribeSecurityGroups flattened (no id, no tags)."""

    group_id: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    referenced_group: str | None
    rule_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int, int, str]:
        """What makes two rules the same in EC2: group, protocol, ports, CIDR or group."""
        return (
            self.group_id,
            self.protocol,
            self.from_port,
            self.to_port,
            self.cidr or self.referenced_group or "",
        )


@dataclass
class SecurityGroup:
    group_id: str
    vpc_id: str
    owner_id: str
    ingress: list[SecurityGroupRule]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class AclEntry:
    number: int
    egress: bool
    protocol: str
    allow: bool
    cidr: str


@dataclass
class NetworkAcl:
    acl_id: str
    vpc_id: str
    subnet_ids: list[str]
    entries: list[AclEntry]


@dataclass
class StalePermission:
    """A rule of a group that references a group EC2 no longer reaches (DescribeStale...)."""

    group_id: str
    vpc_id: str
    protocol: str
    from_port: int | None
    to_port: int | None
    referenced_group: str
    referenced_vpc: str | None
    peering_id: str | None

    @property
    def rule(self) -> SecurityGroupRule:
        """The ingress rule it is (to compare with the group's rules by ``key``)."""
        ports = (
            -1 if self.from_port is None else self.from_port,
            -1 if self.to_port is None else self.to_port,
        )
        return SecurityGroupRule(self.group_id, self.protocol, *ports, None, self.referenced_group)


@dataclass
class TrafficView:
    """What stands between a side's VPC and its peer beyond routes: its security groups,
    network ACLs, subnets (id -> VPC) and whether it has a flow log."""

    groups: list[SecurityGroup]
    acls: list[NetworkAcl]
    flow_logs: bool
