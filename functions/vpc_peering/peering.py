"""The create machine's steps: plan, create, add routes, DNS, verify.

Each step takes the document the previous step returned and returns it with what it did.
Every step is idempotent: run twice, the second run finds its work done and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from typing import Any

from . import acceptance, ec2, locks, ownership
from .aws import Access, Location, check_allowed, location_for
from .errors import (
    AssociationConflict,
    InvalidInput,
    PeeringFailed,
    RouteConflict,
    TransientAwsError,
    VerificationFailed,
    VpcNotFound,
)
from .models import (
    GONE_STATES,
    TAG_PEERING_ID,
    TAG_SIDE,
    Association,
    Check,
    CreateRequest,
    DedicatedTable,
    DnsReport,
    PeeringDocument,
    RouteEntry,
    Side,
    SideDns,
    SideName,
    SideRef,
    SideRequest,
    Verification,
    parse,
)
from .observability import logger
from .planning import (
    check_no_overlap,
    check_peering_quota,
    choose_existing,
    destinations,
    plan_dedicated,
    plan_routes,
    select_tables,
)
from .settings import Settings

SIDES: tuple[SideName, SideName] = ("Requester", "Accepter")
#: The largest plan document Plan lets through. Later steps add about as much again (a check
#: per route in Verify, the error and its cause on failure); Step Functions fails an execution
#: whose state passes 256 KB with States.DataLimitExceeded, which no Catch can route to
#: compensation. So Plan refuses, creating nothing, what could grow past that.
MAX_PLAN_BYTES = 96 * 1024
#: Peering states from which the pair still needs an accept (by the accept function).
NEEDS_ACCEPT = frozenset({"initiating-request", "pending-acceptance"})


def side_location(side: Side, settings: Settings, field: str = "") -> Location:
    return location_for(side.account_id, side.region, side.role_arn, settings, field)


def _by_location(doc_sides: dict[SideName, Side], settings: Settings) -> dict[Location, list[str]]:
    """VPC ids grouped by where they are read, so one call serves both sides when it can."""
    grouped: dict[Location, list[str]] = defaultdict(list)
    for name, side in doc_sides.items():
        loc = side_location(side, settings, f"{name}.")
        if side.vpc_id not in grouped[loc]:
            grouped[loc].append(side.vpc_id)
    return grouped


# ------------------------------------------------------------------------------------ plan
def resolve_side(request: SideRequest, settings: Settings) -> Side:
    return Side(
        vpc_id=request.vpc_id,
        account_id=request.account_id
        or (request.role_arn.split(":")[4] if request.role_arn else settings.hub_account_id),
        region=request.region or settings.hub_region,
        role_arn=request.role_arn,
        route_tables=request.route_tables,
        route_table_ids=request.route_table_ids,
        subnet_ids=request.subnet_ids,
        dedicated_route_table=request.dedicated_route_table,
        destination_cidrs=request.destination_cidrs,
        ipv6=request.ipv6,
    )


def plan(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> PeeringDocument:
    """Validate the request against EC2 and plan every change; change nothing."""
    request = parse(CreateRequest, raw_request)
    sides: dict[SideName, Side] = {
        "Requester": resolve_side(request.requester, settings),
        "Accepter": resolve_side(request.accepter, settings),
    }
    # The boundary before anything else: no read, no lease, nothing, outside it.
    for name in SIDES:
        given = request.requester if name == "Requester" else request.accepter
        field = "RoleArn" if given.role_arn and not given.account_id else "AccountId"
        check_allowed(sides[name].account_id, settings, f"{name}.{field}")
    req, acc = sides["Requester"], sides["Accepter"]
    if (req.vpc_id, req.account_id, req.region) == (acc.vpc_id, acc.account_id, acc.region):
        raise InvalidInput("Accepter.VpcId: must be a different VPC from Requester.VpcId")
    grouped = _by_location(sides, settings)
    if request.dry_run:
        return _plan(request, sides, grouped, execution_name, access, settings)
    # Held until Verify (success) or Compensate (failure) gives it back.
    key, owner = pair_lock(req, acc, execution_name)
    locks.acquire(access, settings, key, owner)
    try:
        return _plan(request, sides, grouped, execution_name, access, settings)
    except BaseException:
        locks.release(access, settings, key, owner)
        raise


def pair_lock(
    requester: Side | SideRef, accepter: Side | SideRef, execution: str
) -> tuple[str, str]:
    """The lease key of this VPC pair, and this create execution as its owner."""
    key = locks.pair_key(
        (requester.account_id, requester.region, requester.vpc_id),
        (accepter.account_id, accepter.region, accepter.vpc_id),
    )
    return key, f"create:{execution}"


def _plan(
    request: CreateRequest,
    sides: dict[SideName, Side],
    grouped: dict[Location, list[str]],
    execution_name: str,
    access: Access,
    settings: Settings,
) -> PeeringDocument:
    req, acc = sides["Requester"], sides["Accepter"]

    vpcs: dict[tuple[Location, str], ec2.Vpc] = {}
    tables: dict[Location, list[ec2.RouteTable]] = {}
    peerings: dict[Location, list[ec2.Peering]] = {}
    subnets: dict[Location, dict[str, str]] = {}
    for loc, vpc_ids in grouped.items():
        found = ec2.describe_vpcs(access, loc, vpc_ids)
        for vpc_id in vpc_ids:
            if vpc_id in found:
                vpcs[(loc, vpc_id)] = found[vpc_id]
    for name, side in sides.items():
        loc = side_location(side, settings)
        if (loc, side.vpc_id) not in vpcs:
            raise VpcNotFound(f"{name}.VpcId: {side.vpc_id} not found in {loc}")
        vpc = vpcs[(loc, side.vpc_id)]
        side.cidr_blocks, side.ipv6_cidr_blocks = vpc.cidr_blocks, vpc.ipv6_cidr_blocks
    check_no_overlap(
        vpcs[(side_location(req, settings), req.vpc_id)],
        vpcs[(side_location(acc, settings), acc.vpc_id)],
    )
    for loc, vpc_ids in grouped.items():
        tables[loc] = ec2.describe_route_tables(access, loc, vpc_ids)
        peerings[loc] = ec2.describe_live_peerings(access, loc, vpc_ids)
        needs_subnets = any(
            s.subnet_ids or s.dedicated_route_table
            for s in sides.values()
            if side_location(s, settings) == loc
        )
        subnets[loc] = ec2.describe_subnets(access, loc, vpc_ids) if needs_subnets else {}

    all_peerings = [p for group in peerings.values() for p in group]
    existing = choose_existing(all_peerings, req, acc)
    if existing is None:
        for name, side in sides.items():
            check_peering_quota(
                side, name, peerings[side_location(side, settings)], settings.max_peerings_per_vpc
            )
    elif existing.status in GONE_STATES:  # pragma: no cover - choose_existing keeps live ones
        existing = None
    peering_id = existing.peering_id if existing else None

    doc = PeeringDocument(
        execution_name=execution_name,
        execution_id=uuid.uuid4().hex,
        dry_run=request.dry_run,
        dns_resolution=request.dns_resolution,
        tags=request.tags,
        requester=req,
        accepter=acc,
        vpc_peering_connection_id=peering_id,
        status=existing.status if existing else None,
        peering_action="reuse" if existing else "create",
    )
    if existing and existing.requester.vpc_id != req.vpc_id:
        # The pair is already peered the other way round: follow EC2's roles from here on.
        doc.requester, doc.accepter = acc, req
        logger.info("existing peering is reversed", vpc_peering_connection_id=peering_id)
    if existing is None or existing.status in NEEDS_ACCEPT:
        _check_accept_policy(doc, existing, vpcs, peerings, settings)

    for name in SIDES:
        side, peer = doc.side(name), doc.side("Accepter" if name == "Requester" else "Requester")
        loc = side_location(side, settings)
        peer_vpc = vpcs[(side_location(peer, settings), peer.vpc_id)]
        wanted = destinations(side, name, peer_vpc)
        side_tables = [t for t in tables[loc] if t.vpc_id == side.vpc_id]
        owned = [
            t
            for t in side_tables
            if peering_id and ownership.own_table_of_peering(t.tags, settings, peering_id, name)
        ]
        # The dedicated table of an earlier run is planned once, as the dedicated table.
        chosen = [t for t in select_tables(side, name, side_tables, subnets[loc]) if t not in owned]
        doc.routes += plan_routes(name, chosen, wanted, peering_id, settings.max_routes_per_table)
        dedicated, dedicated_routes = plan_dedicated(
            side, name, side_tables, subnets[loc], owned[0] if owned else None, wanted, peering_id
        )
        if dedicated:
            doc.dedicated_route_tables.append(dedicated)
            doc.routes += dedicated_routes
    _check_size(doc)
    logger.info(
        "planned",
        action=doc.peering_action,
        vpc_peering_connection_id=peering_id,
        routes_to_add=sum(r.state == "planned" for r in doc.routes),
        routes_present=sum(r.state == "present" for r in doc.routes),
    )
    return doc


def _check_accept_policy(
    doc: PeeringDocument,
    existing: ec2.Peering | None,
    vpcs: dict[tuple[Location, str], ec2.Vpc],
    peerings: dict[Location, list[ec2.Peering]],
    settings: Settings,
) -> None:
    """The accept policy, applied before anything exists: a peering the accept function would
    refuse is not created at all (AcceptDenied here, nothing made, nothing to compensate)."""
    req, acc = doc.requester, doc.accepter
    subject = existing.peering_id if existing else f"peering {req.vpc_id} -> {acc.vpc_id}"
    acceptance.check_trusted_requester(req.account_id, subject, settings)
    acc_vpc = vpcs[(side_location(acc, settings), acc.vpc_id)]
    acceptance.check_opt_in(acc.vpc_id, acc_vpc.tags, subject, settings)
    if existing is not None:
        # A pending request of the pair: accepted only if this stack made it. Its tags are
        # visible in the requester's account and region.
        requester_view = [
            p
            for p in peerings.get(side_location(req, settings), [])
            if p.peering_id == existing.peering_id
        ]
        tags = requester_view[0].tags if requester_view else {}
        acceptance.check_requested_by_stack(existing.peering_id, tags, settings)


def _check_size(doc: PeeringDocument) -> None:
    size = len(json.dumps(doc.dump()))
    if size > MAX_PLAN_BYTES:
        raise InvalidInput(
            f"the plan has {len(doc.routes)} routes and is {size // 1024} KB, over the "
            f"{MAX_PLAN_BYTES // 1024} KB one execution can carry through Step Functions' 256 KB "
            "state limit; select fewer route tables (RouteTableIds, SubnetIds, RouteTables: main) "
            "or DestinationCidrs, or split the request"
        )


# ---------------------------------------------------------------------------------- create
def ownership_tags(doc: PeeringDocument, settings: Settings) -> dict[str, str]:
    name = doc.tags.get("Name") or f"{doc.requester.vpc_id}-{doc.accepter.vpc_id}"
    return {
        **doc.tags,
        "Name": name,
        **ownership.creation_tags(settings, doc.execution_name, doc.execution_id),
    }


def create_peering(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Create the peering (tagged as this stack's), or reuse the live one of the pair."""
    req, acc = doc.requester, doc.accepter
    loc = side_location(req, settings)
    live = ec2.describe_live_peerings(access, loc, [req.vpc_id])
    mine = [p for p in live if ownership.made_by_execution(p.tags, settings, doc.execution_id)]
    existing = mine[0] if mine else choose_existing(live, req, acc)
    if existing is not None:
        if existing.requester.vpc_id != req.vpc_id:
            doc.requester, doc.accepter = acc, req
        doc.vpc_peering_connection_id = existing.peering_id
        doc.status = existing.status
        doc.created_by_execution = ownership.made_by_execution(
            existing.tags, settings, doc.execution_id
        )
        doc.peering_action = "create" if doc.created_by_execution else "reuse"
        logger.info(
            "reusing peering", vpc_peering_connection_id=existing.peering_id, status=existing.status
        )
        return doc
    peering = ec2.create_peering(
        access,
        loc,
        req.vpc_id,
        acc.vpc_id,
        peer_owner_id=acc.account_id if acc.account_id != req.account_id else None,
        peer_region=acc.region if acc.region != req.region else None,
        tags=ownership_tags(doc, settings),
    )
    doc.vpc_peering_connection_id = peering.peering_id
    doc.status = peering.status
    doc.created_by_execution = True
    doc.peering_action = "create"
    logger.info(
        "peering created", vpc_peering_connection_id=peering.peering_id, status=peering.status
    )
    if peering.status in GONE_STATES:
        raise PeeringFailed(f"{peering.peering_id} is {peering.status}: {peering.message}")
    return doc


# ---------------------------------------------------------------------------------- routes
def _client_token(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def add_routes(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Create the dedicated route tables (tutorial's create/associate) and every planned route."""
    peering_id = _require_peering(doc)
    _require_active(doc, access, settings)
    for table in doc.dedicated_route_tables:
        side = doc.side(table.side)
        loc = side_location(side, settings)
        if table.route_table_id is None:
            _find_own_table(doc, table, access, loc, settings)
        if table.route_table_id is None:
            table.route_table_id = ec2.create_route_table(
                access,
                loc,
                side.vpc_id,
                tags={
                    "Name": f"{doc.tags.get('Name') or peering_id}-{table.side.lower()}",
                    **ownership.creation_tags(settings, doc.execution_name, doc.execution_id),
                    TAG_PEERING_ID: peering_id,
                    TAG_SIDE: table.side,
                },
                client_token=_client_token(doc.execution_id, table.side, side.vpc_id),
            )
            table.state = "created"
            logger.info("route table created", route_table_id=table.route_table_id, side=table.side)
        associated = {a.subnet_id for a in table.associations}
        for subnet in table.subnet_ids:
            if subnet in associated:
                continue
            association = ec2.associate_route_table(access, loc, table.route_table_id, subnet)
            if association is None:
                association = _adopt_association(doc, table, subnet, access, loc, settings)
            table.associations.append(Association(subnet_id=subnet, association_id=association))
        for route in doc.routes:
            if route.dedicated and route.side == table.side and route.route_table_id is None:
                route.route_table_id = table.route_table_id
    for route in doc.routes:
        if route.state != "planned":
            continue
        side = doc.side(route.side)
        loc = side_location(side, settings)
        assert route.route_table_id is not None
        if ec2.create_route(access, loc, route.route_table_id, route.destination, peering_id):
            route.state = "created"
            logger.info(
                "route added",
                side=route.side,
                route_table_id=route.route_table_id,
                destination=route.destination,
            )
        else:
            _adopt_existing_route(access, loc, route, peering_id)
    return doc


def _require_active(doc: PeeringDocument, access: Access, settings: Settings) -> None:
    """Routes go only onto a peering EC2 itself reports active, between the document's VPCs.

    Not the accept step's result: a task token appears in the execution history, on the bus
    and in the failure queue, so anyone who read one could report "active" for a pending
    peering. EC2's record is the only proof.
    """
    peering_id = _require_peering(doc)
    peering = ec2.describe_peering(access, side_location(doc.requester, settings), peering_id)
    status = peering.status if peering else "not found"
    doc.status = status
    if peering is None or status != "active":
        raise PeeringFailed(f"{peering_id} is {status}, not active: routes need an active peering")
    seen = {peering.requester.vpc_id, peering.accepter.vpc_id}
    if seen != {doc.requester.vpc_id, doc.accepter.vpc_id}:
        raise PeeringFailed(
            f"{peering_id} connects {' and '.join(sorted(seen))}, not {doc.requester.vpc_id} and "
            f"{doc.accepter.vpc_id}; refusing to route to it"
        )


def _find_own_table(
    doc: PeeringDocument, table: DedicatedTable, access: Access, loc: Location, settings: Settings
) -> None:
    """A retried AddRoutes finds the table its earlier attempt made (by this execution's tags)
    instead of making a second one; CreateRouteTable's ClientToken does the same on AWS, but
    not every EC2 implementation honours it."""
    for existing in ec2.describe_route_tables(access, loc, [table.vpc_id]):
        if (
            ownership.made_by_execution(existing.tags, settings, doc.execution_id)
            and existing.tags.get(TAG_SIDE) == table.side
        ):
            table.route_table_id = existing.route_table_id
            table.state = "created"
            table.associations = [
                Association(subnet_id=s, association_id=a)
                for s, a in existing.associations.items()
                if s in table.subnet_ids
            ]
            return


def _adopt_association(
    doc: PeeringDocument,
    table: DedicatedTable,
    subnet: str,
    access: Access,
    loc: Location,
    settings: Settings,
) -> str:
    """The subnet already has an explicit association. Fine if it is with this execution's
    table for this side (an earlier attempt of this step made it: keep that one, drop the
    duplicate this attempt made); anything else is a conflict."""
    assert table.route_table_id is not None
    for holder in ec2.describe_route_tables(access, loc, [table.vpc_id]):
        if subnet not in holder.associations:
            continue
        ours = (
            ownership.made_by_execution(holder.tags, settings, doc.execution_id)
            and holder.tags.get(TAG_SIDE) == table.side
        )
        if not ours:
            raise AssociationConflict(
                f"{table.side}.DedicatedRouteTable.SubnetIds: {subnet} was associated with route "
                f"table {holder.route_table_id} while this execution ran"
            )
        if holder.route_table_id != table.route_table_id:
            if table.state == "created":
                ec2.delete_route_table(access, loc, table.route_table_id)
            table.route_table_id = holder.route_table_id
        return holder.associations[subnet]
    raise TransientAwsError(f"{subnet}: AssociateRouteTable said associated, but it is not visible")


def _adopt_existing_route(
    access: Access, loc: Location, route: RouteEntry, peering_id: str
) -> None:
    """CreateRoute said the route exists: fine if it goes to this peering (an earlier attempt)."""
    assert route.route_table_id is not None
    side_tables = [
        t
        for t in ec2.describe_route_tables_by_id(access, loc, [route.route_table_id])
        if t.route_table_id == route.route_table_id
    ]
    for table in side_tables:
        for existing in table.routes:
            if existing.destination == route.destination:
                if existing.peering_id == peering_id:
                    route.state = "created"
                    return
                raise RouteConflict(
                    f"{route.side} route table {route.route_table_id} got a route to "
                    f"{route.destination} via {existing.target} while this execution ran"
                )
    # EC2 said it exists but does not show it (yet): let the step run again.
    raise TransientAwsError(
        f"{route.side} route table {route.route_table_id}: CreateRoute {route.destination} said "
        "RouteAlreadyExists but the route is not visible"
    )


def _require_peering(doc: PeeringDocument) -> str:
    if not doc.vpc_peering_connection_id:
        raise InvalidInput("VpcPeeringConnectionId: missing; the create step did not run")
    return doc.vpc_peering_connection_id


# ------------------------------------------------------------------------------------- dns
def configure_dns(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Allow DNS resolution from the remote VPC on both sides, each in its own account/region."""
    if not doc.dns_resolution:
        doc.dns = DnsReport(requested=False)
        return doc
    peering_id = _require_peering(doc)
    req_loc, acc_loc = side_location(doc.requester, settings), side_location(doc.accepter, settings)
    peering = ec2.describe_peering(access, req_loc, peering_id)
    if peering is None or peering.status != "active":
        raise PeeringFailed(f"{peering_id} is not active; DNS options need an active peering")
    need_req, need_acc = not peering.requester.allow_dns, not peering.accepter.allow_dns
    if req_loc == acc_loc and (need_req or need_acc):
        ec2.set_dns_options(access, req_loc, peering_id, need_req, need_acc)
    else:
        if need_req:
            ec2.set_dns_options(access, req_loc, peering_id, True, False)
        if need_acc:
            ec2.set_dns_options(access, acc_loc, peering_id, False, True)
    doc.dns = DnsReport(
        requested=True,
        requester=SideDns(allow_dns_resolution_from_remote_vpc=True),
        accepter=SideDns(allow_dns_resolution_from_remote_vpc=True),
        changed=need_req or need_acc,
    )
    return doc


# ---------------------------------------------------------------------------------- verify
def verify(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Read everything back from EC2: peering active, every route there, DNS as asked."""
    peering_id = _require_peering(doc)
    sides: dict[SideName, Side] = {"Requester": doc.requester, "Accepter": doc.accepter}
    req_loc = side_location(doc.requester, settings)
    checks: list[Check] = []
    peering = ec2.describe_peering(access, req_loc, peering_id)
    status = peering.status if peering else "not found"
    checks.append(Check(subject=f"peering {peering_id}", ok=status == "active", detail=status))
    doc.status = status
    tables: dict[str, ec2.RouteTable] = {}
    for loc, vpc_ids in _by_location(sides, settings).items():
        for table in ec2.describe_route_tables(access, loc, vpc_ids):
            tables[table.route_table_id] = table
    for route in doc.routes:
        routes = tables[route.route_table_id].routes if route.route_table_id in tables else []
        found = [r for r in routes if r.destination == route.destination]
        ok = bool(found) and found[0].peering_id == peering_id and found[0].state == "active"
        detail = f"via {found[0].target} ({found[0].state})" if found else "missing"
        checks.append(
            Check(
                subject=f"{route.side} route {route.route_table_id} {route.destination}",
                ok=ok,
                detail=detail,
            )
        )
    for dedicated in doc.dedicated_route_tables:
        found_table = tables.get(dedicated.route_table_id or "")
        associated = found_table.associations if found_table else {}
        missing = [s for s in dedicated.subnet_ids if s not in associated]
        checks.append(
            Check(
                subject=f"{dedicated.side} route table {dedicated.route_table_id} associations",
                ok=not missing,
                detail=f"not associated: {', '.join(missing)}" if missing else "associated",
            )
        )
        if found_table:
            dedicated.associations = [
                Association(subnet_id=s, association_id=associated.get(s))
                for s in dedicated.subnet_ids
            ]
    if doc.dns_resolution and peering is not None:
        for name, info in (("Requester", peering.requester), ("Accepter", peering.accepter)):
            checks.append(
                Check(
                    subject=f"{name} DNS resolution from remote VPC",
                    ok=info.allow_dns,
                    detail="allowed" if info.allow_dns else "not allowed",
                )
            )
    doc.verification = Verification(ok=all(c.ok for c in checks), checks=checks)
    if not doc.verification.ok:
        problems = [f"{c.subject}: {c.detail}" for c in checks if not c.ok]
        raise VerificationFailed(f"{len(problems)} check(s) failed: " + "; ".join(problems[:5]))
    logger.info("verified", vpc_peering_connection_id=peering_id, checks=len(checks))
    locks.release(access, settings, *pair_lock(doc.requester, doc.accepter, doc.execution_name))
    return doc
