"""Undoing: compensation of a failed create, and the cleanup machine's steps.

Both remove, in reverse order of creation, routes that target the peering, the route tables
this stack created, then the peering. Neither touches what this tool did not create: the
peering and route tables must carry this stack's ``vpc-peering:managed-by`` tag, and only
routes whose target is this very peering are removed. Running either twice changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from . import ec2, locks, ownership, policy, states, traffic
from .aws import Access, Location
from .errors import (
    SUMMARY_CAUSE,
    AcceptDenied,
    InvalidInput,
    NotManaged,
    PeeringError,
    TransientAwsError,
    summarize_error,
)
from .groups import TAG_ACCEPT_FROM
from .locations import location_for
from .models.documents import (
    Association,
    CleanupDocument,
    CompensationReport,
    DedicatedTable,
    FailureReport,
    PeeringDocument,
    RouteEntry,
    SecurityGroupRuleEntry,
    StaleReference,
)
from .models.messages import parse
from .models.requests import CleanupRequest, SideRef
from .models.vocabulary import TAG_EXECUTION_ID, TAG_MANAGED_BY, TAG_PEERING_ID, TAG_SIDE, SideName
from .observability import logger
from .planning import check_explicit
from .settings import Settings

MAX_CAUSE = SUMMARY_CAUSE
#: An id or name copied from an input into a failure report is clipped to this.
MAX_ID = 256
DELETE_WAIT_SECONDS = 30.0
#: How long a peering a create output names may stay invisible (EC2 eventual consistency).
NOT_FOUND_WAIT_SECONDS = 8.0
#: Compensation's search for the peering this execution created (EC2 eventual consistency).
TAG_SEARCH_ATTEMPTS = 3
TAG_SEARCH_INTERVAL_SECONDS = 1.5
#: Reads of the other side's route tables a cleanup tries before it leaves that side.
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 2.0


# ------------------------------------------------------------------------- error summaries
# ---------------------------------------------------------------------------- compensation
class _Undo:
    """What compensation removed so far, and what it still meant to remove (for the cause of a
    CompensationFailed: the operator must learn what is left, not dig through history)."""

    def __init__(self) -> None:
        self.removed: CompensationReport = CompensationReport()
        self.peering_id: str | None = None
        self.peering_left = False
        self.routes_left: list[RouteEntry] = []
        self.tables_left: list[str] = []

    def left(self) -> str:
        parts = []
        if self.peering_left and self.peering_id:
            parts.append(f"peering {self.peering_id}")
        if self.routes_left:
            routes = ", ".join(f"{r.route_table_id} {r.destination}" for r in self.routes_left[:10])
            parts.append(f"{len(self.routes_left)} route(s) to it ({routes})")
        if self.tables_left:
            parts.append(f"route table(s) {', '.join(self.tables_left)}")
        return "; ".join(parts) or "nothing known"


def compensate(raw: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    """Remove what this execution made (and only that), then name the error for the Fail state.

    A compensation that cannot finish ends as ``CompensationFailed`` whose cause names the
    peering and what is left; transient errors are raised instead, for the state's Retry.
    """
    # Every Catch writes the error to $.Error and keeps the state's input beside it: the
    # document of the step that failed, or {"Request": ...} when Plan failed (nothing made:
    # the machine reports that with ReportFailure, and so does this).
    doc_data = {k: v for k, v in raw.items() if k != "Error"}
    if "Request" in doc_data:
        return report_failure(raw, access, settings)
    name, cause = summarize_error(raw.get("Error"), doc_data)
    report = FailureReport(
        error=name,
        cause=cause,
        stage="Create",
        vpc_peering_connection_id=_text(doc_data.get("VpcPeeringConnectionId")),
        requester_vpc_id=_vpc_id(doc_data.get("Requester")),
        accepter_vpc_id=_vpc_id(doc_data.get("Accepter")),
    )
    try:
        doc = PeeringDocument.model_validate(doc_data)
    except ValidationError:
        doc = None
    if doc is None:
        logger.info("nothing to compensate", error=name)
        return report.dump()
    undo = _Undo()
    try:
        _compensate_doc(doc, undo, access, settings)
    except TransientAwsError:
        raise  # the Compensate state retries; its Catch reports CompensationFailed after that
    except PeeringError as exc:
        report.error, report.stage = "CompensationFailed", "Compensate"
        report.cause = _clip(
            f"compensation did not complete ({exc.name}: {exc}); left: {undo.left()}. Run the "
            f"cleanup machine with {undo.peering_id or 'the peering id'}. The create had "
            f"failed with {name}: {cause}"
        )
        logger.error("compensation failed", error=exc.name, left=undo.left())
    finally:
        # Even when compensation fails: the remedy it asks for, a cleanup of the peering, must
        # not then wait out this execution's lease.
        if not doc.dry_run:
            key, owner = locks.pair_lease(doc.requester, doc.accepter, "create", doc.execution_name)
            locks.release(access, settings, key, owner)
    report.vpc_peering_connection_id = undo.peering_id or doc.vpc_peering_connection_id
    report.compensation = undo.removed
    logger.info(
        "compensated",
        error=report.error,
        routes_removed=len(undo.removed.routes_removed),
        route_tables_deleted=len(undo.removed.route_tables_deleted),
        peering_deleted=undo.removed.peering_deleted,
    )
    return report.dump()


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 3] + "..."


def _find_own_peering(
    doc: PeeringDocument, access: Access, loc: Location, settings: Settings
) -> ec2.Peering | None:
    """The peering this execution created, found by its execution id tag, not by the document:
    the create call may have succeeded without its answer reaching the document (and a plan
    that said "reuse" may have ended in a create). EC2 may not list it at once: look a few
    times before concluding there is none."""
    for attempt in range(TAG_SEARCH_ATTEMPTS):
        if attempt:
            time.sleep(TAG_SEARCH_INTERVAL_SECONDS)
        live = ec2.describe_pair_peerings(access, loc, doc.requester.vpc_id, doc.accepter.vpc_id)
        mine = [p for p in live if ownership.made_by_execution(p.tags, settings, doc.execution_id)]
        if mine:
            return mine[0]
    return None


def _compensate_doc(doc: PeeringDocument, undo: _Undo, access: Access, settings: Settings) -> None:
    sides = dict(doc.reachable())
    locs = {name: s.location for name, s in sides.items()}
    created: ec2.Peering | None = None
    if not ((doc.created_by_execution and doc.vpc_peering_connection_id) or doc.incoming):
        created = _find_own_peering(doc, access, locs["Requester"], settings)
    peering_id = created.peering_id if created else doc.vpc_peering_connection_id
    ours = bool(created) or doc.created_by_execution
    undo.peering_id, undo.peering_left = peering_id, ours
    if peering_id and doc.security_group_rules:
        # Rules this execution added (found by its tag: the answer may not have reached the
        # document); rules of earlier runs stay with the peering they were made for.
        found = tagged_rules(access, locs, TAG_EXECUTION_ID, doc.execution_id)
        mine = [
            (n, r)
            for n, r in found
            if ownership.made_by_execution(r.tags, settings, doc.execution_id)
        ]
        undo.removed.security_group_rules_revoked += revoke_rules(access, locs, mine)
    if peering_id:
        # Routes the plan found absent and this execution may have added (present ones stay).
        by_side: dict[SideName, list[RouteEntry]] = {}
        for route in doc.routes:
            if route.state in ("planned", "created") and route.route_table_id:
                by_side.setdefault(route.side, []).append(route)
        for routes in by_side.values():
            undo.routes_left += routes
        for side_name, routes in by_side.items():
            loc = locs[side_name]
            for route in still_targeting(access, loc, routes, peering_id):
                assert route.route_table_id is not None
                if ec2.delete_route(access, loc, route.route_table_id, route.destination):
                    undo.removed.routes_removed.append(route)
            for route in routes:
                undo.routes_left.remove(route)
        for side_name, side in sides.items():
            tables = ec2.describe_route_tables(access, locs[side_name], [side.vpc_id])
            own = [
                t for t in tables if ownership.made_by_execution(t.tags, settings, doc.execution_id)
            ]
            undo.tables_left += [t.route_table_id for t in own]
            for table in own:
                _remove_table(access, locs[side_name], table)
                undo.removed.route_tables_deleted.append(table.route_table_id)
                undo.tables_left.remove(table.route_table_id)
    if peering_id and doc.adopt and not ours:
        _give_back(doc, peering_id, access, doc.peering_location, settings)
    if peering_id and ours:
        peering = created or ec2.describe_peering(access, locs["Requester"], peering_id)
        if (
            peering is not None
            and peering.status not in states.GONE
            and ownership.made_by_execution(peering.tags, settings, doc.execution_id)
        ):
            undo.removed.peering_deleted = ec2.delete_peering(access, locs["Requester"], peering_id)
        undo.peering_left = False


def tagged_rules(
    access: Access, locs: dict[SideName, Location], key: str, value: str
) -> list[tuple[SideName, ec2.SecurityGroupRule]]:
    """The ingress rules tagged ``key`` = ``value`` in each side's account and region (one read
    per account and region), with the side their ``vpc-peering:side`` tag names."""
    found: list[tuple[SideName, ec2.SecurityGroupRule]] = []
    for loc in set(locs.values()):
        for rule in ec2.describe_tagged_rules(access, loc, key, value):
            names = [n for n, at in locs.items() if at == loc and rule.tags.get(TAG_SIDE) == n]
            found += [(names[0], rule)] if names else []
    return found


def revoke_rules(
    access: Access,
    locs: dict[SideName, Location],
    rules: list[tuple[SideName, ec2.SecurityGroupRule]],
) -> list[SecurityGroupRuleEntry]:
    """Revoke these rules, one call per group; what was revoked (or already gone)."""
    by_group: dict[tuple[SideName, str], list[ec2.SecurityGroupRule]] = {}
    for name, rule in rules:
        by_group.setdefault((name, rule.group_id), []).append(rule)
    revoked: list[SecurityGroupRuleEntry] = []
    for (name, group_id), group_rules in by_group.items():
        ids = [r.rule_id for r in group_rules if r.rule_id]
        ec2.revoke_ingress(access, locs[name], group_id, ids)
        revoked += [traffic.revoked_entry(name, r) for r in group_rules]
        logger.info("security group rules revoked", side=name, group_id=group_id, count=len(ids))
    return revoked


def _give_back(
    doc: PeeringDocument, peering_id: str, access: Access, loc: Location, settings: Settings
) -> None:
    """A peering this execution adopted is left as it was found: its ownership tags come off
    (it was made elsewhere; this stack never owned it before)."""
    peering = ec2.describe_peering(access, loc, peering_id)
    if peering is not None and ownership.adopted_by_execution(
        peering.tags, settings, doc.execution_id
    ):
        keys = list(ownership.ADOPTION_KEYS)
        ec2.delete_tags(access, loc, peering_id, keys)
        logger.info("adoption undone", vpc_peering_connection_id=peering_id)


def still_targeting(
    access: Access, loc: Location, routes: list[RouteEntry], peering_id: str | None
) -> list[RouteEntry]:
    """The routes that, read from EC2 now, still target this peering. Read just before a delete:
    between plan and delete (and across retries) a route may have been replaced, and a route
    to another target is never removed."""
    table_ids = sorted({r.route_table_id for r in routes if r.route_table_id})
    if not table_ids or not peering_id:
        return []
    tables = ec2.describe_route_tables_by_id(access, loc, table_ids)
    current: dict[tuple[str | None, str], str | None] = {
        (t.route_table_id, r.destination): r.peering_id for t in tables for r in t.routes
    }
    return [r for r in routes if current.get((r.route_table_id, r.destination)) == peering_id]


def _remove_table(access: Access, loc: Location, table: ec2.RouteTable) -> None:
    """Disassociate every subnet, then delete (the tutorial's reverse order)."""
    for association in table.associations.values():
        ec2.disassociate_route_table(access, loc, association)
    ec2.delete_route_table(access, loc, table.route_table_id)


# --------------------------------------------------------------------------------- cleanup
def _resolved(side: SideRef, settings: Settings, field: str) -> SideRef:
    """The side with its location resolved once for the whole execution (the role to assume
    there), after checking its account against the boundary."""
    loc = location_for(side.account_id, side.region, side.role_arn, settings, field)
    return side.model_copy(update={"role_arn": loc.role_arn})


def _side_as_ec2_has_it(
    name: str, info: ec2.PeeringSide, given: list[SideRef], settings: Settings
) -> SideRef:
    """A side as EC2 reports it (a role the input gave for that very VPC is kept), resolved."""
    role = next((g.role_arn for g in given if g.vpc_id == info.vpc_id and g.role_arn), None)
    side = SideRef(vpc_id=info.vpc_id, account_id=info.owner_id, region=info.region, role_arn=role)
    return _resolved(side, settings, f"{name}.")


def _named_locations(request: CleanupRequest, settings: Settings) -> list[Location]:
    """Every place the input names (its account/region, each side's): the peering is looked
    up at all of them before it is called gone. Each is checked against AllowedAccountIds."""
    named: list[Location] = []
    sides = [(n, s) for n, s in (("Requester", request.requester), ("Accepter", request.accepter))]
    if request.account_id or request.region or request.role_arn or not any(s for _, s in sides):
        named.append(
            location_for(
                request.account_id or settings.hub_account_id,
                request.region or settings.hub_region,
                request.role_arn,
                settings,
            )
        )
    for name, side in sides:
        if side is not None and not side.external:  # an external requester is never called
            loc = location_for(side.account_id, side.region, side.role_arn, settings, f"{name}.")
            if loc not in named:
                named.append(loc)
    return named


def _look_up(
    access: Access, named: list[Location], peering_id: str
) -> tuple[ec2.Peering, Location] | None:
    """The peering as first seen at one of the named locations, and that location."""
    for loc in named:
        peering = ec2.describe_peering(access, loc, peering_id)
        if peering is not None:
            return peering, loc
    return None


def cleanup_plan(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> CleanupDocument:
    """Find the peering, the routes that target it and this stack's route tables; change nothing.

    Ownership is proven only by EC2's record of the peering: this stack's tag on it, read in
    the requester's account, where the tags were written. The input only says where to look.
    """
    request = parse(CleanupRequest, raw_request)
    peering_id = request.vpc_peering_connection_id
    given: list[SideRef] = [s for s in (request.requester, request.accepter) if s is not None]
    named = _named_locations(request, settings)
    doc = CleanupDocument(execution_name=execution_name, vpc_peering_connection_id=peering_id)
    if request.reject:
        return _plan_reject(doc, request, named, access, settings)
    found = _look_up(access, named, peering_id)
    if found is None and len(given) == 2:
        # The create output says it existed: NotFound may be EC2's eventual consistency right
        # after the create. Look again for a while before concluding it is gone.
        found = _look_up_eventually(access, named, peering_id)
    if found is not None:
        if not _prove_ownership(doc, *found, given, access, settings):
            return doc
        if doc.group and request.group != doc.group and doc.status not in states.GONE:
            doc.forced_over_group = check_explicit(peering_id, doc.group, request.force, "cleanup")
    elif len(given) == 2:
        # EC2 does not know the peering: nothing proves it was ours. Only routes to it inside
        # route tables this stack tagged as its own are cleared (they are blackholes now).
        doc.status_before = doc.status = "not found"
        doc.requester = _resolved(given[0], settings, "Requester.")
        doc.accepter = _resolved(given[1], settings, "Accepter.")
    else:
        doc.status_before = doc.status = "not found"
        logger.info("peering not found; nothing to do", vpc_peering_connection_id=peering_id)
        return doc
    with locks.held_on_success(access, settings, *cleanup_lock(doc)):
        _find_leftovers(doc, peering_id, access, settings)
    logger.info(
        "cleanup planned",
        vpc_peering_connection_id=peering_id,
        status=doc.status,
        managed=doc.managed,
        routes=len(doc.routes),
        route_tables=len(doc.dedicated_route_tables),
    )
    return doc


def _plan_reject(
    doc: CleanupDocument,
    request: CleanupRequest,
    named: list[Location],
    access: Access,
    settings: Settings,
) -> CleanupDocument:
    """RejectUnwanted: a pending request made elsewhere, to a VPC in scope, that the accept
    policy refuses (decided again here, from EC2's record in the accepter's account and that
    VPC's tags) is rejected; never one this stack requested, never one the policy allows."""
    peering_id = doc.vpc_peering_connection_id
    if not settings.reject_unwanted:
        raise InvalidInput("Reject: true, but this stack's RejectUnwanted is false")
    if request.accepter is None:
        raise InvalidInput("Accepter: required with Reject (the VPC the request was made to)")
    acc_loc = location_for(
        request.accepter.account_id, request.accepter.region, None, settings, "Accepter."
    )
    peering = ec2.describe_peering(access, acc_loc, peering_id)
    if peering is None or peering.status != states.PENDING:
        doc.status_before = doc.status = peering.status if peering else "not found"
        return doc  # answered, expired or gone since: nothing to reject
    vpc_id = peering.accepter.vpc_id
    if vpc_id != request.accepter.vpc_id:
        raise InvalidInput(
            f"Accepter.VpcId: {peering_id} is a request to {vpc_id}, not to "
            f"{request.accepter.vpc_id}"
        )
    requester = peering.requester
    if settings.account_allowed(requester.owner_id):
        req_loc = location_for(requester.owner_id, requester.region, None, settings)
        seen = ec2.describe_peering(access, req_loc, peering_id)
        if seen is not None and ownership.owned_by_stack(seen.tags, settings):
            raise NotManaged(f"{peering_id} was requested by this stack: it is not rejected")
        other = ownership.managed_by_another(seen.tags, settings) if seen else None
        if other:
            raise NotManaged(f"{peering_id} is managed by stack {other}: it is not rejected")
    vpc = ec2.describe_vpcs(access, acc_loc, [vpc_id]).get(vpc_id)
    if TAG_ACCEPT_FROM not in (vpc.tags if vpc else {}):
        raise NotManaged(
            f"{vpc_id} takes no part in accepter-only mode (no {TAG_ACCEPT_FROM} tag): requests "
            f"into it, such as {peering_id}, are not this stack's to reject"
        )
    try:
        policy.check_incoming(peering, vpc.tags if vpc else {}, settings)
    except AcceptDenied as refused:
        doc.status_before = doc.status = peering.status
        doc.requester = SideRef(
            vpc_id=requester.vpc_id,
            account_id=requester.owner_id,
            region=requester.region,
            external=True,
        )
        doc.accepter = request.accepter.model_copy(update={"role_arn": acc_loc.role_arn})
        doc.incoming = doc.reject = True
        logger.info("rejecting", vpc_peering_connection_id=peering_id, reason=str(refused))
        return doc
    raise InvalidInput(f"Reject: the accept policy allows {peering_id}; it is not rejected")


def _prove_ownership(
    doc: CleanupDocument,
    peering: ec2.Peering,
    seen_at: Location,
    given: list[SideRef],
    access: Access,
    settings: Settings,
) -> bool:
    """Take the sides from EC2's record (both inside the boundary) and decide from its tags,
    read in the requester's account (an accepter-side tag proves nothing), whether this stack
    made it. False: gone and not ours, nothing to do; NotManaged: there and not ours."""
    peering_id = peering.peering_id
    doc.status_before = doc.status = peering.status
    doc.accepter = _side_as_ec2_has_it("Accepter", peering.accepter, given, settings)
    acc_loc = doc.accepter.location
    here = (seen_at.account_id, seen_at.region) == (acc_loc.account_id, acc_loc.region)
    if here and ownership.accepted_here(peering.tags, settings, peering.accepter.vpc_id):
        # A request made elsewhere that this stack accepted (accepter-only mode): its tags on
        # our view prove it; the requester's account is never read.
        info = peering.requester
        doc.requester = SideRef(
            vpc_id=info.vpc_id, account_id=info.owner_id, region=info.region, external=True
        )
        doc.managed = doc.incoming = True
        return True
    doc.requester = _side_as_ec2_has_it("Requester", peering.requester, given, settings)
    req_loc = doc.requester.location
    same = (seen_at.account_id, seen_at.region) == (req_loc.account_id, req_loc.region)
    record = peering if same else ec2.describe_peering(access, req_loc, peering_id)
    doc.managed = ownership.owned_by_stack(record.tags if record else {}, settings)
    if doc.managed:
        doc.group = ownership.group_of(record.tags if record else {}, settings)
        return True
    if peering.status in states.GONE:
        logger.info(
            "peering gone and not ours; nothing to do", vpc_peering_connection_id=peering_id
        )
        return False
    raise NotManaged(
        f"{peering_id} was not created by stack {settings.stack_name} (no "
        f"{TAG_MANAGED_BY}={settings.stack_name} tag on it in the requester's account "
        f"{peering.requester.owner_id}); cleanup only removes what this tool created"
    )


def cleanup_lock(doc: CleanupDocument) -> tuple[str, str]:
    """The pair's lease key, and this cleanup execution as its owner."""
    assert doc.requester is not None
    assert doc.accepter is not None
    return locks.pair_lease(doc.requester, doc.accepter, "cleanup", doc.execution_name)


def _look_up_eventually(
    access: Access, named: list[Location], peering_id: str
) -> tuple[ec2.Peering, Location] | None:
    deadline = time.monotonic() + NOT_FOUND_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(1.0)
        found = _look_up(access, named, peering_id)
        if found is not None:
            return found
    return None


def _find_leftovers(
    doc: CleanupDocument, peering_id: str, access: Access, settings: Settings
) -> None:
    """Routes that target the peering, and this stack's route tables for it, in both VPCs.

    Unmanaged (the peering is unknown to EC2): only the routes to it inside route tables this
    stack tagged as its own, and no table is deleted.
    """
    assert doc.requester is not None
    assert doc.accepter is not None
    sides = dict(doc.reachable())
    locs = {name: side.location for name, side in sides.items()}
    # One read per account and region: both VPCs at once when they share one.
    tables_at: dict[Location, list[ec2.RouteTable]] = {}
    for loc in dict.fromkeys(locs.values()):  # the requester's first
        vpc_ids = sorted({s.vpc_id for n, s in sides.items() if locs[n] == loc})
        try:
            tables_at[loc] = _read_tables(access, loc, vpc_ids)
        except PeeringError as exc:
            if not doc.managed or loc == doc.peering_location:
                raise
            # The peering's own record, read where its tags are, proved it ours: it is
            # removed from that side; the routes here are left, and named.
            names = " and ".join(n for n in sides if locs[n] == loc)
            doc.unreadable.append(f"{names}: {loc} could not be read ({exc.name}: {exc})")
            logger.warning("side not read; its routes are left", location=str(loc), error=exc.name)
            sides = {n: s for n, s in sides.items() if locs[n] != loc}
    # This stack's rules for this peering, on the sides read: the tags prove them ours,
    # whatever EC2 knows of the peering.
    readable = {name: locs[name] for name in sides}
    doc.security_group_rules = [
        traffic.revoked_entry(name, rule).model_copy(update={"state": "present"})
        for name, rule in tagged_rules(access, readable, TAG_PEERING_ID, peering_id)
        if ownership.made_for_peering(rule.tags, settings, peering_id)
    ]
    for side_name, side in sides.items():
        for table in tables_at[locs[side_name]]:
            if table.vpc_id != side.vpc_id:
                continue
            if not doc.managed and not ownership.owned_by_stack(table.tags, settings):
                continue
            owned = doc.managed and ownership.own_table_of_peering(table.tags, settings, peering_id)
            for route in table.routes:
                if route.peering_id == peering_id:
                    doc.routes.append(
                        RouteEntry(
                            side=side_name,
                            route_table_id=table.route_table_id,
                            destination=route.destination,
                            dedicated=owned,
                            state="present",
                        )
                    )
            if owned:
                doc.dedicated_route_tables.append(
                    DedicatedTable(
                        side=side_name,
                        vpc_id=side.vpc_id,
                        route_table_id=table.route_table_id,
                        subnet_ids=table.subnet_ids,
                        associations=[
                            Association(subnet_id=s, association_id=a)
                            for s, a in table.associations.items()
                        ],
                        state="present",
                    )
                )


def _read_tables(access: Access, loc: Location, vpc_ids: list[str]) -> list[ec2.RouteTable]:
    """The VPCs' route tables; throttling is tried again (twice) before it is given up."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return ec2.describe_route_tables(access, loc, vpc_ids)
        except TransientAwsError:
            if attempt == READ_ATTEMPTS:
                raise
            time.sleep(READ_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


def _loc(doc: CleanupDocument, side_name: str) -> Location:
    side = doc.requester if side_name == "Requester" else doc.accepter
    assert side is not None
    return side.location


def remove_routes(doc: CleanupDocument, access: Access, settings: Settings) -> CleanupDocument:
    """Delete the routes to the peering, then disassociate and delete this stack's tables.

    Each side's tables are read again just before its routes are deleted, and a route that no
    longer targets this peering (replaced since the plan, or by another hand) is left alone.
    Routes inside this stack's own tables go with the table (one call instead of one per route).
    """
    present = [e for e in doc.security_group_rules if e.state == "present"]
    if present:
        locs = {name: side.location for name, side in doc.reachable()}
        rules = [(e.side, traffic.as_rule(e)) for e in present]
        doc.removed.security_group_rules += revoke_rules(access, locs, rules)
        for entry in present:
            entry.state = "revoked"
    owned = {t.route_table_id for t in doc.dedicated_route_tables if t.state != "removed"}
    pending: dict[Location, list[RouteEntry]] = {}
    for route in doc.routes:
        if route.state in ("removed", "absent") or route.route_table_id is None:
            continue
        if route.route_table_id not in owned:
            pending.setdefault(_loc(doc, route.side), []).append(route)
    for loc, routes in pending.items():
        targeting = still_targeting(access, loc, routes, doc.vpc_peering_connection_id)
        for route in routes:
            assert route.route_table_id is not None
            if route not in targeting:
                logger.info(
                    "route no longer targets the peering; left alone",
                    route_table_id=route.route_table_id,
                    destination=route.destination,
                )
                route.state = "absent"
                continue
            if ec2.delete_route(access, loc, route.route_table_id, route.destination):
                doc.removed.routes.append(route.model_copy(update={"state": "removed"}))
            route.state = "removed"
    for table in doc.dedicated_route_tables:
        if table.state == "removed" or table.route_table_id is None:
            continue
        loc = _loc(doc, table.side)
        for association in table.associations:
            if association.association_id:
                ec2.disassociate_route_table(access, loc, association.association_id)
        if ec2.delete_route_table(access, loc, table.route_table_id):
            doc.removed.route_tables.append(table.route_table_id)
            for route in doc.routes:
                if route.route_table_id == table.route_table_id and route.state != "removed":
                    doc.removed.routes.append(route.model_copy(update={"state": "removed"}))
        for route in doc.routes:
            if route.route_table_id == table.route_table_id:
                route.state = "removed"
        table.state = "removed"
    return doc


def delete_peering(doc: CleanupDocument, access: Access, settings: Settings) -> CleanupDocument:
    """Delete the peering if it is ours and still there, then confirm EC2 reports it gone;
    the document then says what this cleanup changed."""
    doc = _delete_peering(doc, access, settings)
    doc.changed = doc.changes()
    return doc


def _delete_peering(doc: CleanupDocument, access: Access, settings: Settings) -> CleanupDocument:
    peering_id = doc.vpc_peering_connection_id
    if doc.requester is None or doc.accepter is None:
        doc.result = "NotFound"
        return doc
    if doc.reject:
        ec2.reject_peering(access, doc.peering_location, peering_id)
        doc.status, doc.result = states.REJECTED, "Rejected"
        logger.info("request rejected", vpc_peering_connection_id=peering_id)
        return doc
    if doc.managed and doc.status not in states.GONE | {"not found"}:
        _delete_and_confirm(doc, access, settings)
    if doc.managed and doc.status in states.GONE | {"not found"}:
        _stale_references(doc, access, settings)
    locks.release(access, settings, *cleanup_lock(doc))
    if doc.removed.peering_deleted:
        doc.result = "Removed"
    else:
        doc.result = "NotFound" if doc.status_before == "not found" else "AlreadyDeleted"
    logger.info("cleanup done", vpc_peering_connection_id=peering_id, result=doc.result)
    return doc


def _stale_references(doc: CleanupDocument, access: Access, settings: Settings) -> None:
    """Rules in either VPC that reference a group of the peer, stale now that the peering is
    gone (DescribeStaleSecurityGroups): this stack's own for this peering are revoked, the
    others reported in ``StaleReferences`` (someone else's to remove)."""
    peering_id = doc.vpc_peering_connection_id
    sides = {n: s for n, s in doc.reachable() if n not in doc.unread_sides}
    doc.stale_references = []  # found again on a retry
    peers = {n: (doc.accepter if n == "Requester" else doc.requester) for n in sides}
    for name, side in sides.items():
        loc, peer = side.location, peers[name]
        assert peer is not None
        stale = [
            s
            for s in ec2.describe_stale_references(access, loc, side.vpc_id)
            if s.referenced_vpc == peer.vpc_id or s.peering_id == peering_id
        ]
        if not stale:
            continue
        rules = ec2.describe_group_rules(access, loc, sorted({s.group_id for s in stale}))
        ours = {
            r.key: r
            for r in rules
            if r.referenced_group and ownership.made_for_peering(r.tags, settings, peering_id)
        }
        revoke: list[tuple[SideName, ec2.SecurityGroupRule]] = []
        for item in stale:
            mine = ours.get(item.rule.key)
            if mine is not None:
                revoke.append((name, mine))
                continue
            doc.stale_references.append(
                StaleReference(
                    side=name,
                    vpc_id=side.vpc_id,
                    group_id=item.group_id,
                    protocol=item.protocol,
                    from_port=item.from_port,
                    to_port=item.to_port,
                    referenced_group_id=item.referenced_group,
                    referenced_vpc_id=item.referenced_vpc,
                )
            )
        doc.removed.security_group_rules += revoke_rules(access, {name: loc}, revoke)
    if doc.stale_references:
        logger.info("stale references left", count=len(doc.stale_references))


def _delete_and_confirm(doc: CleanupDocument, access: Access, settings: Settings) -> None:
    """Delete the peering where it is read (an accepter may delete an active one; a request
    still pending, made elsewhere, it can only reject), then wait until EC2 says it is gone."""
    peering_id = doc.vpc_peering_connection_id
    loc = doc.peering_location
    pending_here = doc.incoming and doc.status == states.PENDING
    end = ec2.reject_peering if pending_here else ec2.delete_peering
    if end(access, loc, peering_id):
        doc.removed.peering_deleted = True
    final = ec2.wait_for_status(
        access,
        loc,
        peering_id,
        wanted=frozenset({states.DELETED, states.REJECTED}),
        leave=frozenset({states.DELETING, states.ACTIVE, states.PENDING, states.PROVISIONING}),
        timeout=DELETE_WAIT_SECONDS,
    )
    doc.status = final.status if final else "not found"


def report_failure(raw: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    """Name the error of a create refused at Plan or of a failed cleanup, with the peering and
    VPCs it concerns, and give back a cleanup's pair lease if it was taken.

    The first step's failure (only the request is here: nothing was made) is Stage Plan, with
    the request's DryRun; any later one is a cleanup's (a create's goes to Compensate)."""
    doc_data = {k: v for k, v in raw.items() if k != "Error"}
    name, cause = summarize_error(raw.get("Error"), doc_data)
    if "Request" in doc_data:
        request = doc_data["Request"] if isinstance(doc_data["Request"], dict) else {}
        return FailureReport(
            error=name,
            cause=cause,
            stage="Plan",
            dry_run=request.get("DryRun") is True,
            vpc_peering_connection_id=_text(request.get("VpcPeeringConnectionId")),
            requester_vpc_id=_vpc_id(request.get("Requester")),
            accepter_vpc_id=_vpc_id(request.get("Accepter")),
        ).dump()
    report = FailureReport(
        error=name,
        cause=cause,
        stage="Cleanup",
        vpc_peering_connection_id=_text(doc_data.get("VpcPeeringConnectionId")),
        requester_vpc_id=_vpc_id(doc_data.get("Requester")),
        accepter_vpc_id=_vpc_id(doc_data.get("Accepter")),
    )
    try:
        doc = CleanupDocument.model_validate(doc_data)
    except ValidationError:
        doc = None
    if doc is not None and doc.requester is not None and doc.accepter is not None:
        locks.release(access, settings, *cleanup_lock(doc))
    return report.dump()


def _text(value: Any) -> str | None:
    """A string of the input as it was given (clipped), or None: the input may be anything."""
    return value[:MAX_ID] if isinstance(value, str) else None


def _vpc_id(side: Any) -> str | None:
    return _text(side.get("VpcId")) if isinstance(side, dict) else None
