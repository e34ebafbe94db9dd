"""The create machine's steps: plan, create, add routes, DNS, verify.

Each step takes the document the previous step returned and returns it with what it did.
Every step is idempotent: run twice, the second run finds its work done and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from . import ec2, locks, ownership, states, traffic
from .aws import Access, Location
from .errors import (
    AssociationConflict,
    InvalidInput,
    PeeringFailed,
    RouteConflict,
    TransientAwsError,
    VerificationFailed,
)
from .models.documents import (
    Association,
    DedicatedTable,
    DnsReport,
    PeeringDocument,
    RouteEntry,
    SecurityGroupRuleEntry,
    Side,
    SideDns,
)
from .models.messages import parse
from .models.requests import CreateRequest
from .models.vocabulary import TAG_ACCEPTED_CIDRS, TAG_PEERING_ID, TAG_SIDE, SideName
from .observability import logger
from .planning import check_pair, choose_existing, plan_pair
from .settings import Settings
from .sides import incoming_view, resolve_sides

#: The largest plan document Plan lets through. Later steps add about as much again (a check
#: per route in Verify, the error and its cause on failure); Step Functions fails an execution
#: whose state passes 256 KB with States.DataLimitExceeded, which no Catch can route to
#: compensation. So Plan refuses, creating nothing, what could grow past that.
MAX_PLAN_BYTES = 96 * 1024


# ------------------------------------------------------------------------------------ plan
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
    traffic.check_sources(request, sides)
    if request.dry_run:
        return _observe_and_plan(request, sides, execution_name, access, settings)
    # Held until Verify (success) or Compensate (failure) gives it back.
    with locks.held_on_success(
        access, settings, *locks.pair_lease(req, acc, "create", execution_name)
    ):
        return _observe_and_plan(request, sides, execution_name, access, settings)


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
        views["Requester"] = incoming_view(
            request.accept_incoming, sides, views["Accepter"], request.accept_cidrs
        )
    execution = (execution_name, uuid.uuid4().hex)
    doc = plan_pair(request, sides, views, settings, execution)
    if request.security_group_rules:
        doc.security_group_rules = _plan_rules(request, sides, doc, access)
    _check_size(doc)
    logger.info(
        "planned",
        action=doc.peering_action,
        vpc_peering_connection_id=doc.vpc_peering_connection_id,
        routes_to_add=sum(r.state == "planned" for r in doc.routes),
        routes_present=sum(r.state == "present" for r in doc.routes),
    )
    return doc


def _plan_rules(
    request: CreateRequest, sides: dict[SideName, Side], doc: PeeringDocument, access: Access
) -> list[SecurityGroupRuleEntry]:
    """The security-group rules asked, checked against the groups EC2 shows (one read per
    account and region), a PeerVpc source expanded to the CIDRs each side routes."""
    wanted = traffic.requested_group_ids(request)
    at: dict[Location, set[str]] = {}
    for name, ids in wanted.items():
        if ids:
            at.setdefault(sides[name].location, set()).update(ids)
    groups: dict[str, ec2.SecurityGroup] = {}
    for loc, group_ids in at.items():
        groups |= ec2.describe_security_groups(access, loc, sorted(group_ids))
    return traffic.plan_rules(request, doc, groups, traffic.routed_by_side(doc))


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
    if peering.status in states.GONE:
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
        if doc.incoming:  # the requester's CIDRs accepted, pinned in the same write
            adoption |= _pin(doc, settings)
        ec2.create_tags(access, loc, existing.peering_id, adoption)
        tags |= adoption
        logger.info("peering adopted", vpc_peering_connection_id=existing.peering_id)
    if not ownership.owned_by_stack(tags, settings):
        return
    if doc.incoming:
        pin = _pin(doc, settings)
        if tags.get(TAG_ACCEPTED_CIDRS) != pin[TAG_ACCEPTED_CIDRS]:
            ec2.create_tags(access, loc, existing.peering_id, pin)
            logger.info("accepted CIDRs pinned", cidrs=pin[TAG_ACCEPTED_CIDRS])
    changed = {k: v for k, v in doc.tags.items() if tags.get(k) != v}
    if changed:
        ec2.create_tags(access, loc, existing.peering_id, changed)
        logger.info("peering tags updated", keys=sorted(changed))


def _pin(doc: PeeringDocument, settings: Settings) -> dict[str, str]:
    """The pin of a request accepted in accepter-only mode: the requester CIDRs Plan routes."""
    cidrs = doc.requester.cidr_blocks + doc.requester.ipv6_cidr_blocks
    return ownership.pin_tags(settings, doc.accepter.vpc_id, cidrs)


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
    if peering is None or status != states.ACTIVE:
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
    if peering is None or peering.status != states.ACTIVE:
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


# ------------------------------------------------------------------------- security groups
def configure_security_groups(
    doc: PeeringDocument, access: Access, settings: Settings
) -> PeeringDocument:
    """Make the security-group rules converge to the request: each asked rule added (tagged as
    this stack's, this execution's and this peering's) unless the same rule is there already;
    this peering's rules no longer asked revoked. A rule someone else made is never touched."""
    peering_id = _require_peering(doc)
    asked = [e for e in doc.security_group_rules if e.state != "revoked"]
    if not asked and doc.created_by_execution:
        return doc  # a peering made by this execution has no rules yet: nothing to read
    locs = {name: side.location for name, side in doc.reachable()}
    existing: list[ec2.SecurityGroupRule] = []
    of_peering: list[tuple[SideName, ec2.SecurityGroupRule]] = []
    for loc in set(locs.values()):
        group_ids = sorted({e.group_id for e in asked if locs[e.side] == loc})
        if group_ids:
            existing += ec2.describe_group_rules(access, loc, group_ids)
        if not doc.created_by_execution:
            for rule in ec2.describe_tagged_rules(access, loc, TAG_PEERING_ID, peering_id):
                names = [n for n, at in locs.items() if at == loc and rule.tags.get(TAG_SIDE) == n]
                of_peering += [(names[0], rule)] if names else []
    dropped = traffic.converge_rules(doc, existing, [r for _, r in of_peering], settings)
    for entry in doc.security_group_rules:
        if entry.state == "planned":
            _authorize(doc, entry, access, locs[entry.side], settings)
    by_group: dict[tuple[SideName, str], list[ec2.SecurityGroupRule]] = {}
    for name, rule in of_peering:
        if rule in dropped:
            by_group.setdefault((name, rule.group_id), []).append(rule)
    for (name, group_id), rules in by_group.items():
        ec2.revoke_ingress(access, locs[name], group_id, [r.rule_id for r in rules if r.rule_id])
        doc.security_group_rules += [traffic.revoked_entry(name, r) for r in rules]
        logger.info("security group rules revoked", side=name, group_id=group_id, count=len(rules))
    return doc


def _authorize(
    doc: PeeringDocument,
    entry: SecurityGroupRuleEntry,
    access: Access,
    loc: Location,
    settings: Settings,
) -> None:
    peer = doc.side(traffic.peer_of(entry.side))
    rule_id = ec2.authorize_ingress(
        access,
        loc,
        traffic.as_rule(entry),
        peer.account_id,
        f"vpc-peering {doc.vpc_peering_connection_id} from {peer.vpc_id}",
        traffic.rule_tags(doc, entry, settings),
    )
    if rule_id is None:
        # The same rule appeared since it was read (an earlier attempt of this step, or
        # someone else): say whose it is.
        rules = ec2.describe_group_rules(access, loc, [entry.group_id])
        traffic.converge_rules(doc, rules, [], settings)
        if entry.state == "planned":
            raise TransientAwsError(
                f"{entry.label}: AuthorizeSecurityGroupIngress said the rule exists, but it is "
                "not visible"
            )
        return
    entry.state, entry.rule_id = "created", rule_id
    logger.info("security group rule added", rule=entry.label, rule_id=rule_id)


# ---------------------------------------------------------------------------------- verify
def verify(doc: PeeringDocument, access: Access, settings: Settings) -> PeeringDocument:
    """Read everything back from EC2: peering active, every route there, DNS as asked, each
    asked security-group rule there; and warn of what may still stop traffic."""
    peering_id = _require_peering(doc)
    peering = ec2.describe_peering(access, doc.peering_location, peering_id)
    where = [(side.location, side.vpc_id) for _, side in doc.reachable()]
    tables = ec2.route_tables_at(access, where)
    # Warnings are for a person reading a create's result: a reconcile's pairs (a group's, or a
    # request accepted for a VPC) are not read one by one, so their child skips those reads.
    warn = doc.group is None and not doc.incoming
    views = ec2.observe_traffic(
        access,
        {name: (side.location, side.vpc_id) for name, side in doc.reachable()},
        groups_too=warn or bool(doc.security_group_rules),
        warnings_too=warn,
    )
    doc.verification = check_pair(doc, peering, tables)
    doc.verification.checks += traffic.check_rules(doc, views)
    doc.verification.ok = all(c.ok for c in doc.verification.checks)
    doc.warnings = traffic.traffic_warnings(doc, views, tables) if warn else []
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
