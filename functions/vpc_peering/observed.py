"""EC2 state as the tool observes it: plain data, no AWS calls.

The EC2 layer (``ec2.py``) fills these from API responses; the pure rules (``planning.py``)
read them. Keeping them apart means the rules depend on data only, never on the module that
makes the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import LIVE_STATES


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
        return self.status in LIVE_STATES

    def involves(self, vpc_id: str) -> bool:
        return vpc_id in (self.requester.vpc_id, self.accepter.vpc_id)


@dataclass
class SideView:
    """What EC2 shows around one side's VPC, read in that side's account and region."""

    vpc: Vpc | None  # None: no such VPC there
    route_tables: list[RouteTable]  # this VPC's
    subnets: dict[str, str]  # subnet id -> VPC id, in this account and region (when needed)
    peerings: list[Peering]  # live, involving a VPC read here; tags as this account sees them
