"""The create machine's steps: plan, create, add routes, DNS, verify.

Each step takes the document the previous step returned and returns it with what it did.
Every step is idempotent: run twice, the second run finds its work done and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from . import ec2, locks, ownership, policy
from .aws import Access, Location, location_for
from .errors import (
    AssociationConflict,
    InvalidInput,
    PeeringFailed,
    RouteConflict,
    TransientAwsError,
    VerificationFailed,
)
from .models import (
    GONE_STATES,
    TAG_PEERING_ID,
    TAG_SIDE,
    Association,
    CreateRequest,
    DedicatedTable,
    DnsReport,
    PeeringDocument,
    RouteEntry,
    Side,
    SideDns,
    SideName,
    SideRequest,
    parse,
)
from .observability import logger
from .observed import SideView, Vpc
from .planning import check_pair, choose_existing, plan_pair
from .settings import Settings

#: The largest plan document Plan lets through. Later steps add about as much again (a check
#: per route in Verify, the error and its cause on failure); Step Functions fails an execution
#: whose state passes 256 KB with States.DataLimitExceeded, which no Catch can route to
#: compensation. So Plan refuses, creating nothing, what could grow past that.
MAX_PLAN_BYTES = 96 * 1024


# ------------------------------------------------------------------------------------ plan
def resolve_side(
    request: SideRequest, name: SideName, settings: Settings, dns_default: bool = False
) -> Side:
    """Where a side lives, resolved once for the whole execution: account (checked against the
    boundary), region, and the role to assume there (the member role for another account); and
    its DNS option (its own, else the request's ``DnsResolution``)."""
    account = request.account_id or (
        request.role_arn.split(":")[4] if request.role_arn else settings.hub_account_id
    )
    field = "RoleArn" if request.role_arn and not request.account_id else "AccountId"
    region = request.region or settings.hub_region
    loc = location_for(account, region, request.role_arn, settings, f"{name}.", field)
    options = request.model_dump(exclude={"vpc_id", "account_id", "region", "role_arn"})
    dns = request.dns_resolution
    return Side.model_validate(
        {
            **options,
            "vpc_id": request.vpc_id,
            "account_id": account,
            "region": region,
            "role_arn": loc.role_arn,
            "dns_resolution": dns_default if dns is None else dns,
        }
    )


def external_side(request: SideRequest, settings: Settings) -> Side:
    """The requester of a request made elsewhere (accepter-only mode): named as EC2 reports it,
    never reached (no location, no route, no option set there)."""
    if request.account_id is None:
        raise InvalidInput(
            "Requester.AccountId: required with AcceptIncoming (the requester's account, as "
            "the request names it)"
        )
    return Side(
        vpc_id=request.vpc_id,
        account_id=request.account_id,
        region=request.region or settings.hub_region,
        external=True,
        route_tables="none",
    )


def resolve_sides(request: CreateRequest, settings: Settings) -> dict[SideName, Side]:
    """Both sides of a request, resolved (the boundary checked before anything else)."""
    requester = (
        external_side(request.requester, settings)
        if request.accept_incoming
        else resolve_side(request.requester, "Requester", settings, request.dns_resolution)
    )
    return {
        "Requester": requester,
        "Accepter": resolve_side(request.accepter, "Accepter", settings, request.dns_resolution),
    }


def plan(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> PeeringDocument:
    """Validate the request against EC2 and plan every change; change nothing."""
    request = parse(CreateRequest, raw_request)
    # The boundary before anything else: no read, no lease, nothing, outside it.
    sides = resolve_sides(request, settings)
    req, acc = sides["Requester"], sides["Accepter"]
    if (req.vpc_id, req.account_id, req.region) == (acc.vpc_id, acc.account_id, acc.region):
        raise InvalidInput(
            f"Accepter.VpcId: {acc.vpc_id} is the same VPC as Requester.VpcId; a VPC cannot be "
            "peered with itself"
        )
    if request.dry_run:
        return _observe_and_plan(request, sides, execution_name, access, settings)
    # Held until Verify (success) or Compensate (failure) gives it back.
    key, owner = locks.pair_lease(req, acc, "create", execution_name)
    locks.acquire(access, settings, key, owner)
    try:
        return _observe_and_plan(request, sides, execution_name, access, settings)
    except BaseException:
        locks.release(access, settings, key, owner)
        raise


def _observe_and_plan(
    request: CreateRequest,
    sides: dict[SideName, Side],
    execution_name: str,
    access: Access,
    settings: Settings,
) -> PeeringDocument:
    views = ec2.observe_sides(
        access,
        {name: (side.location, side.vpc_id) for name, side in sides.items() if not side.external},
        subnets_for={n for n, s in sides.items() if s.subnet_ids or s.dedicated_route_table},
    )
    if request.accept_incoming:
        views["Requester"] = incoming_view(request.accept_incoming, sides, views["Accepter"])
    execution = (execution_name, uuid.uuid4().hex)
    doc = plan_pair(request, sides, views, settings, execution)
    _check_size(doc)
    logger.info(
        "planned",
        action=doc.peering_action,
        vpc_peering_connection_id=doc.vpc_peering_connection_id,
        routes_to_add=sum(r.state == "planned" for r in doc.routes),
        routes_present=sum(r.state == "present" for r in doc.routes),
    )
    return doc


def incoming_view(peering_id: str, sides: dict[SideName, Side], ours: SideView) -> SideView:
    """What is known of an external requester's side: only what EC2 shows of the request in our
    (the accepter's) account and region: its VPC and CIDRs, and the request itself."""
    found = [p for p in ours.peerings if p.peering_id == peering_id]
    acc = sides["Accepter"]
    if not found:
        raise PeeringFailed(
            f"AcceptIncoming: {peering_id} is not a live request involving {acc.vpc_id} in "
            f"{acc.location}"
        )
    peering = found[0]
    policy.check_side("requester", sides["Requester"], peering.requester, peering_id)
    policy.check_side("accepter", acc, peering.accepter, peering_id)
    info = peering.requester
    vpc = Vpc(info.vpc_id, info.owner_id, info.cidr_blocks, info.ipv6_cidr_blocks, {})
    return SideView(vpc, [], {}, [peering])


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
#: EC2's longest tag value.
MAX_TAG_VALUE = 256


def ownership_tags(doc: PeeringDocument, settings: Settings) -> dict[str, str]:
    # By default named after the VPCs' Name tags (their ids where they have none).
    default = (
        f"{doc.requester.name or doc.requester.vpc_id}-{doc.accepter.name or doc.accepter.vpc_id}"
    )
    name = doc.tags.get("Name") or default[:MAX_TAG_VALUE]
    return {
        **doc.tags,
        "Name": name,
        **ownership.creation_tags(settings, doc.execution_name, doc.execution_id, doc.group),
    }


def create_peering(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Create the peering (tagged as this stack's), or reuse the live one of the pair."""
    req, acc = doc.requester, doc.accepter
    loc = doc.peering_location
    live = ec2.describe_pair_peerings(access, loc, req.vpc_id, acc.vpc_id)
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
        _converge_tags(doc, existing, access, doc.peering_location, settings)
        return doc
    if doc.incoming:
        raise PeeringFailed(
            f"the request {doc.vpc_peering_connection_id} from {req.vpc_id} is no longer live in "
            f"{loc}: nothing to accept (this stack never requests on an external account's behalf)"
        )
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


def _converge_tags(
    doc: PeeringDocument, existing: ec2.Peering, access: Access, loc: Location, settings: Settings
) -> None:
    """A reused peering gets what the request asks of its tags: adopted when asked (Plan
    decided), then each tag the request names set to its value (a rerun converges; tags it
    does not name, and the ownership tags, are left alone). Tags are written where the stack
    reads them: in the requester's account, or ours for a request accepted in accepter-only
    mode."""
    tags = dict(existing.tags)
    if doc.adopt and not ownership.owned_by_stack(tags, settings):
        accepted_for = doc.accepter.vpc_id if doc.incoming else None
        adoption = ownership.adoption_tags(settings, doc.execution_id, accepted_for)
        ec2.create_tags(access, loc, existing.peering_id, adoption)
        tags |= adoption
        logger.info("peering adopted", vpc_peering_connection_id=existing.peering_id)
    if not ownership.owned_by_stack(tags, settings):
        return
    changed = {k: v for k, v in doc.tags.items() if tags.get(k) != v}
    if changed:
        ec2.create_tags(access, loc, existing.peering_id, changed)
        logger.info("peering tags updated", keys=sorted(changed))


# ---------------------------------------------------------------------------------- routes
def _client_token(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def add_routes(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Create the dedicated route tables (tutorial's create/associate) and every planned route."""
    peering_id = _require_peering(doc)
    _require_active(doc, access, settings)
    for table in doc.dedicated_route_tables:
        side = doc.side(table.side)
        loc = side.location
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
        loc = side.location
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
    peering = ec2.describe_peering(access, doc.peering_location, peering_id)
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
        if ownership.made_by_execution(existing.tags, settings, doc.execution_id, table.side):
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
        ours = ownership.made_by_execution(holder.tags, settings, doc.execution_id, table.side)
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
    """Set DNS resolution from the remote VPC on each side to exactly what was asked (on, or
    off), each side in its own account and region; a side already as asked is not touched, nor
    an external requester's (accepter-only mode: only our side is ours to set)."""
    wanted: dict[SideName, bool] = {name: side.dns_resolution for name, side in doc.reachable()}
    doc.dns = DnsReport(
        requested=any(wanted.values()),
        requester=SideDns(allow_dns_resolution_from_remote_vpc=doc.requester.dns_resolution),
        accepter=SideDns(allow_dns_resolution_from_remote_vpc=doc.accepter.dns_resolution),
    )
    peering_id = _require_peering(doc)
    if not any(wanted.values()) and doc.created_by_execution:
        return doc  # a new peering starts with both options off: nothing to read or change
    peering = ec2.describe_peering(access, doc.peering_location, peering_id)
    if peering is None or peering.status != "active":
        raise PeeringFailed(f"{peering_id} is not active; DNS options need an active peering")
    now: dict[SideName, bool] = {
        "Requester": peering.requester.allow_dns,
        "Accepter": peering.accepter.allow_dns,
    }
    change = {name: value for name, value in wanted.items() if value != now[name]}
    if len(change) == 2 and doc.requester.location == doc.accepter.location:
        loc = doc.requester.location
        ec2.set_dns_options(access, loc, peering_id, change["Requester"], change["Accepter"])
    else:
        for name, value in change.items():
            options = (value, None) if name == "Requester" else (None, value)
            ec2.set_dns_options(access, doc.side(name).location, peering_id, *options)
    doc.dns.changed = bool(change)
    return doc


# ---------------------------------------------------------------------------------- verify
def verify(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Read everything back from EC2: peering active, every route there, DNS as asked."""
    peering_id = _require_peering(doc)
    peering = ec2.describe_peering(access, doc.peering_location, peering_id)
    tables = ec2.route_tables_at(
        access, [(side.location, side.vpc_id) for _, side in doc.reachable()]
    )
    doc.verification = check_pair(doc, peering, tables)
    doc.status = peering.status if peering else "not found"
    doc.changed = doc.changes()
    if not doc.verification.ok:
        problems = [f"{c.subject}: {c.detail}" for c in doc.verification.checks if not c.ok]
        raise VerificationFailed(f"{len(problems)} check(s) failed: " + "; ".join(problems[:5]))
    logger.info(
        "verified", vpc_peering_connection_id=peering_id, checks=len(doc.verification.checks)
    )
    lease = locks.pair_lease(doc.requester, doc.accepter, "create", doc.execution_name)
    locks.release(access, settings, *lease)
    return doc
