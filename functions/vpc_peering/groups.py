"""Tag-declared groups, pure: what a VPC's tags ask for, and the pairs a set of VPCs wants.

A VPC joins groups by its tags: ``vpc-peering:mesh`` (every member of the group peers with
every other), ``vpc-peering:hub`` and ``vpc-peering:spoke`` (each spoke peers with each hub of
its group; spokes do not peer with each other); ``vpc-peering:route-tables`` (``all``,
``main`` or ``none``) and ``vpc-peering:dns`` (``true``/``false``) say how that VPC's side of
its group peerings is routed. ``vpc-peering:allow`` on a security group of a member VPC asks
for ingress from every peer of that VPC in a group. The tags are the only source of truth:
nothing else is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import InvalidInput
from .models.vocabulary import GROUP_NAME_PATTERN

TAG_PREFIX = "vpc-peering:"
TAG_MESH = "vpc-peering:mesh"
TAG_HUB = "vpc-peering:hub"
TAG_SPOKE = "vpc-peering:spoke"
TAG_ROUTE_TABLES = "vpc-peering:route-tables"
TAG_DNS = "vpc-peering:dns"
#: Accepter-only mode: the accounts (space-separated) whose requests to this VPC may be accepted.
TAG_ACCEPT_FROM = "vpc-peering:accept-from"
#: On a security group: ``<group> <protocol>/<port or range>[,...]``, ingress from every peer of
#: its VPC in that group (their CIDRs routed to the peering).
TAG_ALLOW = "vpc-peering:allow"
ALLOW_FORMAT = (
    "'<group> <protocol>/<port or range>[,...]' (tcp/443, udp/53, tcp/8000-8080, icmp, "
    "icmp/TYPE, icmp/TYPE/CODE, -1 for every protocol), e.g. 'prod tcp/443,tcp/8000-8080'"
)
_PORTS = re.compile(r"(tcp|udp)/([0-9]{1,5})(?:-([0-9]{1,5}))?")
_ICMP = re.compile(r"icmp(?:/([0-9]{1,3})(?:/([0-9]{1,3}))?)?")
#: The tags that make a VPC a member of a group (DescribeVpcs filters on these keys).
GROUP_TAGS = (TAG_MESH, TAG_HUB, TAG_SPOKE)
#: The tags Discover looks for: group membership, and accepter-only mode.
MANAGED_TAGS = (*GROUP_TAGS, TAG_ACCEPT_FROM)
GROUP_NAME = re.compile(GROUP_NAME_PATTERN)
ROUTE_TABLE_OPTIONS = ("all", "main", "none")

RouteTables = Literal["all", "main", "none"]


@dataclass(frozen=True, order=True)
class VpcKey:
    """A VPC wherever it is: account, region and id (sorts by account, then region)."""

    account_id: str
    region: str
    vpc_id: str

    def __str__(self) -> str:
        return f"{self.vpc_id} ({self.account_id} {self.region})"


@dataclass(frozen=True)
class Member:
    """A VPC's group memberships and options, as its tags declare them."""

    key: VpcKey
    mesh: str | None = None
    hub: str | None = None
    spoke: str | None = None
    route_tables: RouteTables = "all"
    dns: bool = False
    #: Its security groups' ``vpc-peering:allow`` rules (``allow_rules``), every group's.
    allows: tuple[str, ...] = ()

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(g for g in (self.mesh, self.hub, self.spoke) if g)


def _group(tags: Mapping[str, str], key: str) -> str | None:
    if key not in tags:
        return None
    value = tags[key]
    if not GROUP_NAME.fullmatch(value):  # whole: a pattern's $ also matches before a final \n
        raise InvalidInput(
            f"{key}: {value!r} is not a group name (1 to 64 letters, digits, '.', '_' or '-')"
        )
    return value


def options(tags: Mapping[str, str]) -> tuple[RouteTables, bool]:
    """How a VPC's side of its peerings is routed, by its tags: route tables, DNS."""
    route_tables = tags.get(TAG_ROUTE_TABLES, "all")
    if route_tables not in ROUTE_TABLE_OPTIONS:
        raise InvalidInput(
            f"{TAG_ROUTE_TABLES}: {route_tables!r} is not one of {', '.join(ROUTE_TABLE_OPTIONS)}"
        )
    dns = tags.get(TAG_DNS, "false")
    if dns not in ("true", "false"):
        raise InvalidInput(f"{TAG_DNS}: {dns!r} is not true or false")
    return route_tables, dns == "true"  # type: ignore[return-value]


def membership(key: VpcKey, tags: Mapping[str, str]) -> Member | None:
    """What this VPC's tags ask for; None when it is in no group. A bad group name or option
    is ``InvalidInput`` naming the tag and its value (the VPC is then left as it is)."""
    mesh, hub, spoke = (_group(tags, k) for k in GROUP_TAGS)
    accept_from(tags)  # checked here too: a bad tag is reported once, for its VPC
    if not (mesh or hub or spoke):
        return None
    route_tables, dns = options(tags)
    return Member(key, mesh, hub, spoke, route_tables, dns)


def accept_from(tags: Mapping[str, str]) -> frozenset[str]:
    """The accounts a VPC's ``vpc-peering:accept-from`` tag names (none without the tag); a
    word that is not a 12-digit account id is ``InvalidInput`` naming the tag and the word."""
    words = tags.get(TAG_ACCEPT_FROM, "").split()
    bad = [w for w in words if not (len(w) == 12 and all("0" <= c <= "9" for c in w))]
    if bad:
        raise InvalidInput(
            f"{TAG_ACCEPT_FROM}: {bad[0]!r} is not an account id (12 digits; the tag's value is "
            "account ids separated by spaces)"
        )
    return frozenset(words)


def allow_rules(group_id: str, value: str) -> list[str]:
    """A security group's ``vpc-peering:allow`` value as rules, each ``<group> <security group>
    <protocol> <from> <to>`` (for icmp the type and code, -1: any; -1 and -1 for every
    protocol); a bad value is ``InvalidInput`` naming the tag, the group and the value."""
    where = f"{TAG_ALLOW} on {group_id}: {value!r}"
    name, _, spec = value.partition(" ")
    if not GROUP_NAME.fullmatch(name):
        raise InvalidInput(f"{where}: {name!r} is not a group name; the value is {ALLOW_FORMAT}")
    rules = []
    for raw in spec.split(","):
        item = raw.strip(" ")
        rule = _allow_item(item)
        if rule is None:
            raise InvalidInput(
                f"{where}: {item!r} is not a protocol and a port or range (tcp or udp 0 to "
                f"65535, icmp type and code 0 to 255, or -1); the value is {ALLOW_FORMAT}"
            )
        text = f"{name} {group_id} {rule}"
        if text not in rules:
            rules.append(text)
    return rules


def _allow_item(item: str) -> str | None:
    """``tcp/8000-8080`` as ``tcp 8000 8080``; None when it is not a rule."""
    if item == "-1":
        return "-1 -1 -1"
    if found := _PORTS.fullmatch(item):
        low, high = int(found[2]), int(found[3] or found[2])
        return f"{found[1]} {low} {high}" if low <= high <= 65535 else None
    if found := _ICMP.fullmatch(item):
        kind, code = int(found[1] or -1), int(found[2] or -1)
        return f"icmp {kind} {code}" if kind <= 255 and code <= 255 else None
    return None


Pair = tuple[VpcKey, VpcKey]


def pair_of(a: VpcKey, b: VpcKey) -> Pair:
    """The same pair either way round (sorted)."""
    return (a, b) if a <= b else (b, a)


@dataclass
class Wanted:
    """A pair some groups want peered, and which."""

    pair: Pair
    groups: set[str] = field(default_factory=set)

    @property
    def group(self) -> str:
        """The group the peering is tagged with: the first by name, when several want it."""
        return min(self.groups)


def wanted_pairs(members: Iterable[Member]) -> dict[Pair, Wanted]:
    """Every pair the groups want: all pairs of a mesh; each spoke with each hub of its group."""
    meshes: dict[str, list[VpcKey]] = {}
    hubs: dict[str, list[VpcKey]] = {}
    spokes: dict[str, list[VpcKey]] = {}
    for member in members:
        for index, group in ((meshes, member.mesh), (hubs, member.hub), (spokes, member.spoke)):
            if group:
                index.setdefault(group, []).append(member.key)
    wanted: dict[Pair, Wanted] = {}

    def want(a: VpcKey, b: VpcKey, group: str) -> None:
        if a != b:
            pair = pair_of(a, b)
            wanted.setdefault(pair, Wanted(pair)).groups.add(group)

    for group, keys in meshes.items():
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                want(a, b, group)
    for group, hub_keys in hubs.items():
        for hub in hub_keys:
            for spoke in spokes.get(group, []):
                want(hub, spoke, group)
    return wanted
