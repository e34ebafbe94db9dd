"""A network of VPCs, route tables and peerings built by hand, as the reconcile machine's
Discover would read it from EC2 in each account and region (no AWS at all)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from vpc_peering.errors import PeeringError
from vpc_peering.group_policy import PolicyState, open_policy
from vpc_peering.groups import GROUP_NAME, GROUP_TAGS, VpcKey
from vpc_peering.locations import location_for
from vpc_peering.models.vocabulary import TAG_GROUP, TAG_MANAGED_BY, TAG_PEERING_ID
from vpc_peering.network import LocationView
from vpc_peering.observed import (
    Peering,
    PeeringSide,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Vpc,
)
from vpc_peering.settings import Settings

HUB = "123456789012"
MEMBER = "111111111111"
R1, R2 = "us-east-1", "us-west-2"
STACK = "vpc-peering"
MANAGED_TAGS = {
    "vpc-peering:mesh",
    "vpc-peering:hub",
    "vpc-peering:spoke",
    "vpc-peering:accept-from",
}

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids):017x}"


@dataclass
class World:
    """VPCs (each with a main route table), routes and peerings, seen per account and region:
    a peering's tags only where its requester is, as on AWS."""

    settings: Settings
    vpcs: dict[VpcKey, Vpc] = field(default_factory=dict)
    tables: dict[VpcKey, list[RouteTable]] = field(default_factory=dict)
    peerings: list[Peering] = field(default_factory=list)
    broken: dict[tuple[str, str], PeeringError] = field(default_factory=dict)
    accepter_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    security_groups: dict[VpcKey, list[SecurityGroup]] = field(default_factory=dict)

    def security_group(self, key: VpcKey, allow: str | None = None) -> SecurityGroup:
        """A security group of the VPC, tagged ``vpc-peering:allow`` = ``allow`` if given."""
        tags = {"vpc-peering:allow": allow} if allow is not None else {}
        group = SecurityGroup(new_id("sg"), key.vpc_id, key.account_id, [], tags)
        self.security_groups.setdefault(key, []).append(group)
        return group

    def rule(
        self, group: SecurityGroup, cidr: str, port: int, peering_id: str | None = None
    ) -> None:
        """An ingress rule (tcp ``port`` from ``cidr``), this stack's for ``peering_id``."""
        tags = {TAG_MANAGED_BY: STACK, TAG_PEERING_ID: peering_id} if peering_id else {}
        group.ingress.append(
            SecurityGroupRule(group.group_id, "tcp", port, port, cidr, None, new_id("sgr"), tags)
        )

    def vpc(
        self,
        cidr: str,
        account: str = HUB,
        region: str = R1,
        tables: int = 1,
        secondary: tuple[str, ...] = (),
        **tags: str,
    ) -> VpcKey:
        """(A VPC in an account outside the managed ones is a vendor's: never read.)"""
        return self._vpc(cidr, account, region, tables, secondary, tags)

    def _vpc(
        self,
        cidr: str,
        account: str,
        region: str,
        tables: int,
        secondary: tuple[str, ...],
        tags: dict[str, str],
    ) -> VpcKey:
        """A VPC with a main route table (and ``tables - 1`` more); keyword arguments are its
        tags, ``mesh="blue"`` meaning ``vpc-peering:mesh=blue`` (underscores as dashes)."""
        key = VpcKey(account, region, new_id("vpc"))
        all_tags = {f"vpc-peering:{k.replace('_', '-')}": v for k, v in tags.items()}
        self.vpcs[key] = Vpc(key.vpc_id, account, [cidr, *secondary], [], all_tags)
        self.tables[key] = [
            RouteTable(
                route_table_id=new_id("rtb"),
                vpc_id=key.vpc_id,
                main=index == 0,
                subnet_ids=[],
                associations={},
                routes=[Route(cidr, "local", "active", "CreateRouteTable", None)],
                tags={},
            )
            for index in range(tables)
        ]
        return key

    def tag(self, key: VpcKey, **tags: str) -> None:
        self.vpcs[key].tags = {f"vpc-peering:{k.replace('_', '-')}": v for k, v in tags.items()}

    def peer(
        self,
        requester: VpcKey,
        accepter: VpcKey,
        status: str = "active",
        group: str | None = "blue",
        routed: bool = True,
        dns: tuple[bool, bool] = (False, False),
        managed: bool = True,
        accepter_tags: dict[str, str] | None = None,
    ) -> str:
        """A peering (a group peering of this stack by default), routed in every table of both
        sides this world knows; ``accepter_tags``: the tags the accepter's account sees (a
        request made elsewhere); else it sees none, as on AWS."""
        peering_id = new_id("pcx")
        tags = {TAG_MANAGED_BY: STACK} if managed else {}
        if group:
            tags[TAG_GROUP] = group
        cidrs = {
            k: (self.vpcs[k].cidr_blocks if k in self.vpcs else []) for k in (requester, accepter)
        }
        self.peerings.append(
            Peering(
                peering_id,
                status,
                "",
                PeeringSide(
                    requester.vpc_id,
                    requester.account_id,
                    requester.region,
                    dns[0],
                    cidrs[requester],
                ),
                PeeringSide(
                    accepter.vpc_id, accepter.account_id, accepter.region, dns[1], cidrs[accepter]
                ),
                tags,
            )
        )
        self.accepter_tags[peering_id] = accepter_tags or {}
        if routed:
            for side, peer in ((requester, accepter), (accepter, requester)):
                if side not in self.tables:
                    continue
                for table in self.tables[side]:
                    for cidr in self.vpcs[peer].cidr_blocks:
                        self.route(table, cidr, peering_id)
        return peering_id

    def route(self, table: RouteTable, destination: str, peering_id: str) -> None:
        table.routes.append(Route(destination, peering_id, "active", "CreateRoute", peering_id))

    def policy(self) -> PolicyState:
        """A group policy that admits every group the VPCs' tags name, from every managed
        account (the tests of other rules assume open groups)."""
        groups = {v.tags[t] for v in self.vpcs.values() for t in GROUP_TAGS if t in v.tags}
        groups = {g for g in groups if GROUP_NAME.fullmatch(g)}
        policy = open_policy(groups, self.settings.allowed_account_ids)
        return PolicyState("/vpc-peering/test/group-policy", policy=policy)

    def views(self) -> list[LocationView]:
        """What Discover reads in each managed account and region."""
        views = []
        for account in sorted(self.settings.allowed_account_ids):
            for region in sorted(self.settings.managed_regions):
                loc = location_for(account, region, None, self.settings)
                if (account, region) in self.broken:
                    views.append(LocationView(loc, error=self.broken[(account, region)]))
                    continue
                here = [k for k in self.vpcs if (k.account_id, k.region) == (account, region)]
                tagged = [self.vpcs[k] for k in here if MANAGED_TAGS & set(self.vpcs[k].tags)]
                seen = [
                    self._seen_from(p, account, region)
                    for p in self.peerings
                    if self._involves(p, account, region)
                ]
                tables = [t for v in tagged for t in self._tables_of(v)]
                groups = [g for k in here for g in self.security_groups.get(k, [])]
                views.append(
                    LocationView(
                        loc,
                        tagged,
                        tables,
                        seen,
                        [g for g in groups if "vpc-peering:allow" in g.tags],
                        [r for g in groups for r in g.ingress if r.tags.get(TAG_MANAGED_BY)],
                    )
                )
        return views

    def _tables_of(self, vpc: Vpc) -> list[RouteTable]:
        return next(t for k, t in self.tables.items() if k.vpc_id == vpc.vpc_id)

    @staticmethod
    def _involves(p: Peering, account: str, region: str) -> bool:
        return (account, region) in (
            (p.requester.owner_id, p.requester.region),
            (p.accepter.owner_id, p.accepter.region),
        )

    def _seen_from(self, p: Peering, account: str, region: str) -> Peering:
        if (account, region) == (p.requester.owner_id, p.requester.region):
            tags = p.tags
        else:
            tags = self.accepter_tags.get(p.peering_id, {})
        return Peering(p.peering_id, p.status, p.message, p.requester, p.accepter, tags)
