"""Pure planning rules: CIDR overlap, route destinations, table selection, conflicts, quotas.

Nothing here calls AWS; the functions take what EC2 reported and raise a named error that
says which field or resource is at fault.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import ownership, policy, states
from .errors import (
    AssociationConflict,
    CidrNotAllowed,
    CidrOverlap,
    InvalidInput,
    ManagedByGroup,
    PeeringExists,
    PeeringFailed,
    QuotaExceeded,
    RouteConflict,
    VpcNotFound,
)
from .models.documents import (
    Association,
    Check,
    DedicatedTable,
    DnsReport,
    PeeringDocument,
    RouteEntry,
    Side,
    SideDns,
    Verification,
)
from .models.requests import CreateRequest
from .models.vocabulary import TAG_ADOPT, SideName
from .observed import Peering, Route, RouteTable, SideView, Vpc
from .settings import Settings

SIDES: tuple[SideName, SideName] = ("Requester", "Accepter")
#: Peering states from which the pair still needs an accept (by the accept function).

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(cidr: str) -> Network:
    return ipaddress.ip_network(cidr, strict=False)


def check_no_overlap(requester: Vpc, accepter: Vpc) -> None:
    """AWS refuses to peer VPCs whose CIDRs overlap, secondary and IPv6 blocks included."""
    for mine in requester.cidr_blocks + requester.ipv6_cidr_blocks:
        for theirs in accepter.cidr_blocks + accepter.ipv6_cidr_blocks:
            a, b = _net(mine), _net(theirs)
            if a.version == b.version and a.overlaps(b):
                raise CidrOverlap(
                    f"Requester {requester.vpc_id} CIDR {mine} overlaps Accepter "
                    f"{accepter.vpc_id} CIDR {theirs}; VPCs with overlapping CIDRs cannot be peered"
                )


def destinations(side: Side, side_name: SideName, peer: Vpc) -> list[str]:
    """The peer CIDRs this side routes to the peering: asked-for ones must lie inside the peer."""
    peer_cidrs = peer.cidr_blocks + peer.ipv6_cidr_blocks
    peer_blocks = [_net(c) for c in peer_cidrs]
    if side.destination_cidrs:
        for index, cidr in enumerate(side.destination_cidrs):
            net = _net(cidr)
            if not any(net.version == b.version and net.subnet_of(b) for b in peer_blocks):  # type: ignore[arg-type]
                raise InvalidInput(
                    f"{side_name}.DestinationCidrs[{index}]: {cidr} is not inside any CIDR of the "
                    f"peer VPC {peer.vpc_id} ({', '.join(peer_cidrs)})"
                )
        return list(side.destination_cidrs)
    wanted = list(peer.cidr_blocks)
    if side.ipv6:
        ipv6 = {side.vpc_id: side.ipv6_cidr_blocks, peer.vpc_id: peer.ipv6_cidr_blocks}
        lacking = [vpc_id for vpc_id, blocks in ipv6.items() if not blocks]
        if lacking:
            raise InvalidInput(
                f"{side_name}.Ipv6: true, but {' and '.join(lacking)} "
                f"{'has' if len(lacking) == 1 else 'have'} no IPv6 CIDR; associate one, or "
                "leave Ipv6 false"
            )
        wanted += peer.ipv6_cidr_blocks
    return wanted


def check_allowed_cidrs(
    wanted: list[str], peer_name: SideName, peer: Vpc, settings: Settings
) -> None:
    """Every peer CIDR routed lies inside AllowedPeerCidrs; an IPv6 block Amazon assigned to
    the peer VPC is allowed, any other IPv6 block only when listed."""
    allowed = [_net(c) for c in settings.allowed_peer_cidrs]
    for cidr in wanted:
        net = _net(cidr)
        if net.version == 6:
            amazon = [_net(b) for b in peer.ipv6_cidr_blocks if b not in peer.own_ipv6_cidr_blocks]
            if any(b.version == 6 and net.subnet_of(b) for b in amazon):
                continue
        if not any(net.version == a.version and net.subnet_of(a) for a in allowed):  # type: ignore[arg-type]
            raise CidrNotAllowed(
                f"{peer_name} CIDR {cidr} of {peer.vpc_id} is not inside AllowedPeerCidrs "
                f"({', '.join(sorted(settings.allowed_peer_cidrs))}): a peer CIDR outside it is "
                "never routed; nothing was made"
            )


def select_tables(
    side: Side, side_name: SideName, tables: list[RouteTable], subnets: dict[str, str]
) -> list[RouteTable]:
    """The existing route tables of this side that get the peer routes."""
    mine = [t for t in tables if t.vpc_id == side.vpc_id]
    selection = side.selection
    if selection == "none":
        return []
    if selection == "all":
        return mine
    main = [t for t in mine if t.main]
    if selection == "main":
        if not main:
            raise VpcNotFound(f"{side_name}.RouteTables: {side.vpc_id} has no main route table")
        return main
    by_id = {t.route_table_id: t for t in mine}
    if selection == "ids":
        chosen = []
        for index, rtb in enumerate(side.route_table_ids or []):
            if rtb not in by_id:
                raise VpcNotFound(
                    f"{side_name}.RouteTableIds[{index}]: {rtb} is not a route table of "
                    f"{side.vpc_id}"
                )
            chosen.append(by_id[rtb])
        return chosen
    # subnets: the table each subnet uses, its implicit main association included
    chosen_ids: list[str] = []
    for index, subnet in enumerate(side.subnet_ids or []):
        check_subnet(subnet, side, subnets, f"{side_name}.SubnetIds[{index}]")
        explicit = [t for t in mine if subnet in t.subnet_ids]
        table = explicit[0] if explicit else (main[0] if main else None)
        if table is None:
            raise VpcNotFound(f"{side_name}.SubnetIds[{index}]: {subnet} uses no route table")
        if table.route_table_id not in chosen_ids:
            chosen_ids.append(table.route_table_id)
    return [by_id[i] for i in chosen_ids]


def check_subnet(subnet: str, side: Side, subnets: dict[str, str], field: str) -> None:
    if subnets.get(subnet) != side.vpc_id:
        raise VpcNotFound(f"{field}: {subnet} is not a subnet of {side.vpc_id}")


#: Conflicts listed in one error (all are counted).
MAX_LISTED_CONFLICTS = 20


@dataclass
class Conflicts:
    """Every conflict a plan meets, so that a refused create (or a DryRun) names them all,
    not only the first: each table and route, each subnet."""

    routes: list[str] = field(default_factory=list)
    associations: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raise one error naming every conflict found, if any."""
        found = self.routes + self.associations
        if not found:
            return
        error = RouteConflict if self.routes else AssociationConflict
        listed = "; ".join(found[:MAX_LISTED_CONFLICTS])
        more = len(found) - MAX_LISTED_CONFLICTS
        if len(found) == 1:
            raise error(listed)
        raise error(
            f"{len(found)} conflicts: {listed}" + (f"; and {more} more" if more > 0 else "")
        )


def plan_routes(
    side_name: SideName,
    tables: list[RouteTable],
    wanted: list[str],
    peering_id: str | None,
    max_routes: int,
    conflicts: Conflicts | None = None,
    allow_narrower: bool = False,
    group: str | None = None,
) -> list[RouteEntry]:
    """One entry per table and destination; refuse any route that would take others' traffic
    (each refusal raised at once, or added to ``conflicts`` to be reported together)."""
    entries: list[RouteEntry] = []
    for table in tables:
        new = 0
        for destination in wanted:
            try:
                state = route_state(
                    side_name, table, destination, peering_id, allow_narrower, group
                )
            except RouteConflict as exc:
                if conflicts is None:
                    raise
                conflicts.routes.append(str(exc))
                continue
            wider = wider_route(table, destination, peering_id) if allow_narrower else None
            new += state == "planned"
            entries.append(
                RouteEntry(
                    side=side_name,
                    route_table_id=table.route_table_id,
                    destination=destination,
                    state=state,
                    narrows=f"{wider.destination} via {wider.target}" if wider else None,
                )
            )
        if new and len(table.routes) + new > max_routes:
            raise QuotaExceeded(
                f"{side_name} route table {table.route_table_id} has {len(table.routes)} routes; "
                f"adding {new} exceeds the quota of {max_routes} (MaxRoutesPerTable)"
            )
    return entries


def _comparable(table: RouteTable, net: Network) -> Iterable[tuple[Route, Network]]:
    """The table's CIDR routes of the same IP version as ``net``, with their networks."""
    for route in table.routes:
        if route.destination.startswith("pl-"):
            # A prefix list counts as the routes of its entries (its CIDRs, read with the table).
            for cidr in route.prefix_cidrs:
                existing = _net(cidr)
                if existing.version == net.version:
                    yield route, existing
        elif route.destination:
            existing = _net(route.destination)
            if existing.version == net.version:
                yield route, existing


def route_state(
    side_name: SideName,
    table: RouteTable,
    destination: str,
    peering_id: str | None,
    allow_narrower: bool = False,
    group: str | None = None,
) -> str:
    """``present`` if this peering already routes it, ``planned`` if free; else a conflict.

    A destination equal to an existing route to another target is refused (never replaced).
    One narrower than an existing non-local route to another target is refused too (it would
    divert part of that route's traffic) unless ``allow_narrower`` (the side's
    AllowMoreSpecificRoutes: a summary route to a transit gateway or VPN, say, that the
    peering route is meant to narrow). Default routes (/0) are exempt.
    """
    net = _net(destination)
    for route, existing in _comparable(table, net):
        if existing == net:
            if peering_id and route.peering_id == peering_id:
                return "present"
            if route.destination.startswith("pl-"):
                if allow_narrower:
                    continue
                raise RouteConflict(
                    f"{side_name} route table {table.route_table_id}: {destination} is an entry "
                    f"of prefix list {route.destination}, routed via {route.target}; a peering "
                    f"route to it would take that traffic (set {side_name}.AllowMoreSpecificRoutes "
                    "if that is what you want)"
                )
            raise RouteConflict(
                f"{side_name} route table {table.route_table_id} already has a route to "
                f"{destination} via {route.target} ({route.state}); refusing to replace it"
            )
    wider = wider_route(table, destination, peering_id)
    if wider is not None and not allow_narrower:
        where = (
            f"an entry of prefix list {wider.destination}"
            if wider.destination.startswith("pl-")
            else f"the existing route {wider.destination}"
        )
        raise RouteConflict(
            f"{side_name} route table {table.route_table_id}: {destination} is inside "
            f"{where} via {wider.target}; a narrower route to the "
            f"peering would divert part of its traffic ({narrowing_remedy(side_name, group)})"
        )
    return "planned"


def narrowing_remedy(side_name: SideName, group: str | None) -> str:
    """What to do about a route the peering would narrow: an explicit create may allow it; a
    group's pair cannot (its tags have no such option), so its route tables must change."""
    if group:
        return (
            f"group {group}'s peerings never narrow a route: route this VPC's other tables "
            "(tag it vpc-peering:route-tables=main or none), or change that route"
        )
    return f"set {side_name}.AllowMoreSpecificRoutes if that is what you want"


def wider_route(table: RouteTable, destination: str, peering_id: str | None) -> Route | None:
    """An existing non-local, non-default route to another target that contains
    ``destination``: the route a peering route to it would narrow."""
    net = _net(destination)
    for route, existing in _comparable(table, net):
        if (
            existing == net
            or route.is_local
            or existing.prefixlen == 0
            or (peering_id is not None and route.peering_id == peering_id)
        ):
            continue
        if net.subnet_of(existing):  # type: ignore[arg-type]
            return route
    return None


def plan_dedicated(
    side: Side,
    side_name: SideName,
    tables: list[RouteTable],
    subnets: dict[str, str],
    existing: RouteTable | None,
    wanted: list[str],
    peering_id: str | None,
    conflicts: Conflicts | None = None,
) -> tuple[DedicatedTable | None, list[RouteEntry]]:
    """The dedicated route table of a side (new, or found from an earlier run) and its routes."""
    if side.dedicated_route_table is None:
        return None, []
    subnet_ids = side.dedicated_route_table.subnet_ids
    for index, subnet in enumerate(subnet_ids):
        field = f"{side_name}.DedicatedRouteTable.SubnetIds[{index}]"
        check_subnet(subnet, side, subnets, field)
        for table in tables:
            if subnet in table.subnet_ids and (
                existing is None or table.route_table_id != existing.route_table_id
            ):
                problem = (
                    f"{field}: {subnet} is already associated with route table "
                    f"{table.route_table_id}; this tool does not replace associations"
                )
                if conflicts is None:
                    raise AssociationConflict(problem)
                conflicts.associations.append(problem)
    if existing is None:
        dedicated = DedicatedTable(side=side_name, vpc_id=side.vpc_id, subnet_ids=subnet_ids)
        routes = [
            RouteEntry(side=side_name, route_table_id=None, destination=d, dedicated=True)
            for d in wanted
        ]
        return dedicated, routes
    dedicated = DedicatedTable(
        side=side_name,
        vpc_id=side.vpc_id,
        route_table_id=existing.route_table_id,
        subnet_ids=subnet_ids,
        associations=[
            Association(subnet_id=s, association_id=existing.associations[s])
            for s in subnet_ids
            if s in existing.associations
        ],
        state="present",
    )
    routes = plan_routes(
        side_name,
        [existing],
        wanted,
        peering_id,
        10**6,
        conflicts,
        side.allow_more_specific_routes,
    )
    for route in routes:
        route.dedicated = True
    return dedicated, routes


def choose_existing(peerings: Iterable[Peering], requester: Side, accepter: Side) -> Peering | None:
    """A live peering of this pair, in either direction: active first, then pending ones."""

    def same(a: Side, vpc_id: str, owner: str, region: str) -> bool:
        return a.vpc_id == vpc_id and a.account_id == owner and a.region == region

    pair = [
        p
        for p in peerings
        if p.live
        and (
            (
                same(requester, p.requester.vpc_id, p.requester.owner_id, p.requester.region)
                and same(accepter, p.accepter.vpc_id, p.accepter.owner_id, p.accepter.region)
            )
            or (
                same(accepter, p.requester.vpc_id, p.requester.owner_id, p.requester.region)
                and same(requester, p.accepter.vpc_id, p.accepter.owner_id, p.accepter.region)
            )
        )
    ]
    order = states.PREFERENCE
    pair.sort(key=lambda p: (order.get(p.status, 9), p.peering_id))
    return pair[0] if pair else None


def check_peering_quota(
    side: Side, side_name: SideName, peerings: Iterable[Peering], limit: int
) -> None:
    count = len({p.peering_id for p in peerings if p.live and p.involves(side.vpc_id)})
    if count >= limit:
        raise QuotaExceeded(
            f"{side_name}.VpcId: {side.vpc_id} already has {count} active or pending peering "
            f"connections; the quota is {limit} (MaxPeeringsPerVpc)"
        )


# ------------------------------------------------------------------------------ the pair
def plan_pair(
    request: CreateRequest,
    sides: dict[SideName, Side],
    views: dict[SideName, SideView],
    settings: Settings,
    execution: tuple[str, str],
) -> PeeringDocument:
    """The whole create plan from what EC2 showed: checks, the peering to make or reuse, and
    every route and dedicated table of both sides. ``execution`` is its name and id."""
    vpcs = {name: _vpc_of(name, sides[name], views[name]) for name in SIDES}
    for name, vpc in vpcs.items():
        sides[name].cidr_blocks, sides[name].ipv6_cidr_blocks = (
            vpc.cidr_blocks,
            vpc.ipv6_cidr_blocks,
        )
        sides[name].name = vpc.tags.get("Name")
    check_no_overlap(vpcs["Requester"], vpcs["Accepter"])
    req, acc = sides["Requester"], sides["Accepter"]
    existing = choose_existing([p for v in views.values() for p in v.peerings], req, acc)
    if existing is None:
        for name in SIDES:
            check_peering_quota(
                sides[name], name, views[name].peerings, settings.max_peerings_per_vpc
            )
    doc = PeeringDocument(
        execution_name=execution[0],
        execution_id=execution[1],
        dry_run=request.dry_run,
        dns_resolution=request.dns_resolution,
        tags=request.tags,
        group=request.group,
        requester=req,
        accepter=acc,
        vpc_peering_connection_id=existing.peering_id if existing else None,
        status=existing.status if existing else None,
        peering_action="reuse" if existing else "create",
    )
    if existing and existing.requester.vpc_id != req.vpc_id:
        # The pair is already peered the other way round: follow EC2's roles from here on.
        doc.requester, doc.accepter = acc, req
        views = {"Requester": views["Accepter"], "Accepter": views["Requester"]}
        vpcs = {"Requester": vpcs["Accepter"], "Accepter": vpcs["Requester"]}
    if request.accept_incoming:
        doc.incoming = True
        doc.adopt = check_incoming_request(
            request.accept_incoming, existing, vpcs["Accepter"], settings
        )
    elif existing is not None:
        tags = requester_tags(existing, views["Requester"])
        if request.group:
            check_group_peering(existing, tags, settings)
        else:
            group = ownership.group_of(tags, settings)
            if group is not None:
                doc.forced_over_group = check_explicit(
                    existing.peering_id, group, request.force, "create"
                )
            doc.adopt = needs_adoption(existing, tags, request.adopt, settings)
    if not doc.incoming and (existing is None or existing.status in states.NEEDS_ACCEPT):
        check_accept_policy(doc, existing, vpcs["Accepter"], views["Requester"], settings)
    doc.dns = planned_dns(doc, existing)
    conflicts = Conflicts()
    for name in SIDES:
        peer = vpcs["Accepter" if name == "Requester" else "Requester"]
        _plan_side(doc, name, views[name], peer, settings, conflicts)
    conflicts.check()
    return doc


def _vpc_of(name: SideName, side: Side, view: SideView) -> Vpc:
    if view.vpc is None:
        raise VpcNotFound(f"{name}.VpcId: {side.vpc_id} not found in {side.location}")
    return view.vpc


def check_accept_policy(
    doc: PeeringDocument,
    existing: Peering | None,
    accepter_vpc: Vpc,
    requester_view: SideView,
    settings: Settings,
) -> None:
    """The accept policy, applied before anything exists: a peering the accept function would
    refuse is not created at all (AcceptDenied here, nothing made, nothing to compensate)."""
    req, acc = doc.requester, doc.accepter
    subject = existing.peering_id if existing else f"peering {req.vpc_id} -> {acc.vpc_id}"
    policy.check_trusted_requester(req.account_id, subject, settings)
    policy.check_opt_in(acc.vpc_id, accepter_vpc.tags, subject, settings)
    if existing is not None and not doc.adopt:
        # A pending request of the pair: accepted only if this stack made it (or adopts it:
        # CreatePeering tags it as this stack's before it is accepted).
        tags = requester_tags(existing, requester_view)
        policy.check_requested_by_stack(existing.peering_id, tags, settings)


def requester_tags(peering: Peering, requester_view: SideView) -> dict[str, str]:
    """The peering's tags as its requester's account sees them (where they were written; the
    accepter's account may see none)."""
    seen = [p for p in requester_view.peerings if p.peering_id == peering.peering_id]
    return seen[0].tags if seen else {}


def needs_adoption(
    existing: Peering, tags: dict[str, str], adopt: bool, settings: Settings
) -> bool:
    """Whether the create must adopt the pair's live peering: never one this stack made, never
    one another stack manages; one made by hand only when asked (``Adopt``), else
    ``PeeringExists`` (routes added to a peering the stack does not own could never be removed
    by its cleanup)."""
    if ownership.owned_by_stack(tags, settings):
        return False
    subject = (
        f"{existing.peering_id} ({existing.status}) already connects "
        f"{existing.requester.vpc_id} and {existing.accepter.vpc_id}"
    )
    other = ownership.managed_by_another(tags, settings)
    if other:
        raise PeeringExists(
            f"{subject} and is managed by stack {other}; this stack leaves it alone"
        )
    if adopt and tags.get(TAG_ADOPT) == settings.stack_name:
        return True
    if adopt:
        raise PeeringExists(
            f"{subject} and its owner has not consented to its adoption: the peering carries no "
            f"tag {TAG_ADOPT}={settings.stack_name} in the requester's account "
            f"({existing.requester.owner_id} {existing.requester.region}); its owner tags it so "
            "to let this stack adopt it (and its cleanup delete it), then run the create again"
        )
    raise PeeringExists(
        f"{subject} and was not made by stack {settings.stack_name} (made by hand, or by another "
        'tool); run the create again with "Adopt": true to manage it with this stack (its '
        "cleanup then removes the routes and the peering), or delete it first"
    )


def check_incoming_request(
    peering_id: str, existing: Peering | None, accepter_vpc: Vpc, settings: Settings
) -> bool:
    """Accepter-only mode: the named request is the pair's live peering, and the accept policy
    for requests made elsewhere allows it (a pending one; an active one this stack accepted
    earlier is kept). Returns whether our view of it must still be tagged as this stack's."""
    if existing is None or existing.peering_id != peering_id:
        seen = existing.peering_id if existing else "none"
        raise PeeringFailed(
            f"AcceptIncoming: {peering_id} is not the live peering of the pair (EC2 shows {seen})"
        )
    ours = ownership.accepted_here(existing.tags, settings, accepter_vpc.vpc_id)
    if existing.status in states.NEEDS_ACCEPT or not ours:
        policy.check_incoming(existing, accepter_vpc.tags, settings)
        policy.check_opt_in(accepter_vpc.vpc_id, accepter_vpc.tags, peering_id, settings)
    return not ours


def planned_dns(doc: PeeringDocument, existing: Peering | None) -> DnsReport:
    """DNS resolution from the remote VPC as ConfigureDns will set it (exactly as asked, so a
    rerun without DnsResolution turns it off), and whether that changes the peering's: a dry
    run says so before it happens."""
    now: dict[str, bool] = {}
    if existing is not None:
        for info in (existing.requester, existing.accepter):
            now[info.vpc_id] = info.allow_dns
    changed = any(side.dns_resolution != now.get(side.vpc_id, False) for _, side in doc.reachable())
    return DnsReport(
        requested=any(side.dns_resolution for _, side in doc.reachable()),
        requester=SideDns(allow_dns_resolution_from_remote_vpc=doc.requester.dns_resolution),
        accepter=SideDns(allow_dns_resolution_from_remote_vpc=doc.accepter.dns_resolution),
        changed=changed,
    )


def check_explicit(peering_id: str, group: str, force: bool, what: str) -> str:
    """An explicit create or cleanup on a group's peering: refused (ManagedByGroup), since the
    next reconcile would undo it, unless ``force``. Returns the group (forced over)."""
    if not force:
        raise ManagedByGroup(
            f"{peering_id} belongs to group {group!r} (its vpc-peering:group tag): the group's "
            f"VPC tags decide it, and the next reconcile would undo this {what}. Change the "
            "tags instead (vpc-peering:mesh, :hub, :spoke, :dns), or force it (Force, "
            "vpc-peering --force) knowing the next reconcile puts it back"
        )
    return group


def check_group_peering(existing: Peering, tags: dict[str, str], settings: Settings) -> None:
    """A group's pair reuses only a peering this stack made for a group: one made by hand or by
    an explicit create is not the group's to change (nor, later, to remove)."""
    if ownership.group_of(tags, settings) is None:
        raise PeeringExists(
            f"{existing.peering_id} ({existing.status}) already connects "
            f"{existing.requester.vpc_id} and {existing.accepter.vpc_id} and was not made for a "
            f"group by stack {settings.stack_name} (made by hand, or by an explicit create); "
            "the group leaves it alone: delete it to let the group make its own, or keep it"
        )


def _plan_side(
    doc: PeeringDocument,
    name: SideName,
    view: SideView,
    peer: Vpc,
    settings: Settings,
    conflicts: Conflicts,
) -> None:
    """This side's routes: into the chosen existing tables, and its dedicated table."""
    side, peering_id = doc.side(name), doc.vpc_peering_connection_id
    wanted = destinations(side, name, peer)
    check_allowed_cidrs(wanted, "Accepter" if name == "Requester" else "Requester", peer, settings)
    owned = [
        t
        for t in view.route_tables
        if peering_id and ownership.own_table_of_peering(t.tags, settings, peering_id, name)
    ]
    # The dedicated table of an earlier run is planned once, as the dedicated table.
    chosen = [
        t for t in select_tables(side, name, view.route_tables, view.subnets) if t not in owned
    ]
    doc.routes += plan_routes(
        name,
        chosen,
        wanted,
        peering_id,
        settings.max_routes_per_table,
        conflicts,
        side.allow_more_specific_routes,
        doc.group,
    )
    dedicated, dedicated_routes = plan_dedicated(
        side,
        name,
        view.route_tables,
        view.subnets,
        owned[0] if owned else None,
        wanted,
        peering_id,
        conflicts,
    )
    if dedicated:
        doc.dedicated_route_tables.append(dedicated)
        doc.routes += dedicated_routes


def drift(doc: PeeringDocument, peering: Peering) -> list[str]:
    """How the pair differs from its plan, as EC2 shows it: empty when a create would change
    nothing (peering active, every planned route there, DNS as asked on both sides)."""
    found = []
    if peering.status != states.ACTIVE:
        found.append(f"peering {peering.peering_id} is {peering.status}")
    found += [
        f"{r.side} route {r.route_table_id or 'new table'} {r.destination} missing"
        for r in doc.routes
        if r.state == "planned"
    ]
    found += [
        f"{t.side} dedicated route table missing"
        for t in doc.dedicated_route_tables
        if t.state == "planned"
    ]
    for name, info in zip(SIDES, (peering.requester, peering.accepter), strict=True):
        if not doc.side(name).external and info.allow_dns != doc.side(name).dns_resolution:
            found.append(f"{name} DNS resolution is {info.allow_dns}, asked {not info.allow_dns}")
    return found


# ------------------------------------------------------------------------- verification
def check_pair(
    doc: PeeringDocument, peering: Peering | None, tables: dict[str, RouteTable]
) -> Verification:
    """Every check of a finished create, from what EC2 shows: the peering active, each planned
    route there and to this peering, each dedicated table associated, DNS as asked. Records
    the dedicated tables' association ids on the document."""
    peering_id = doc.vpc_peering_connection_id
    status = peering.status if peering else "not found"
    checks = [Check(subject=f"peering {peering_id}", ok=status == states.ACTIVE, detail=status)]
    for route in doc.routes:
        table = tables.get(route.route_table_id or "")
        found = [r for r in (table.routes if table else []) if r.destination == route.destination]
        ok = bool(found) and found[0].peering_id == peering_id and found[0].state == "active"
        checks.append(
            Check(
                subject=f"{route.side} route {route.route_table_id} {route.destination}",
                ok=ok,
                detail=f"via {found[0].target} ({found[0].state})" if found else "missing",
            )
        )
    for dedicated in doc.dedicated_route_tables:
        checks.append(_check_associations(dedicated, tables.get(dedicated.route_table_id or "")))
    if peering is not None:
        for name, info in zip(SIDES, (peering.requester, peering.accepter), strict=True):
            if doc.side(name).external:
                continue  # never set there, nor checked
            wanted = doc.side(name).dns_resolution
            checks.append(
                Check(
                    subject=f"{name} DNS resolution from remote VPC",
                    ok=info.allow_dns == wanted,
                    detail=("allowed" if info.allow_dns else "not allowed")
                    + ("" if info.allow_dns == wanted else f", asked {wanted}"),
                )
            )
    return Verification(ok=all(c.ok for c in checks), checks=checks)


def _check_associations(dedicated: DedicatedTable, table: RouteTable | None) -> Check:
    associated = table.associations if table else {}
    missing = [s for s in dedicated.subnet_ids if s not in associated]
    if table:
        dedicated.associations = [
            Association(subnet_id=s, association_id=associated.get(s)) for s in dedicated.subnet_ids
        ]
    return Check(
        subject=f"{dedicated.side} route table {dedicated.route_table_id} associations",
        ok=not missing,
        detail=f"not associated: {', '.join(missing)}" if missing else "associated",
    )
