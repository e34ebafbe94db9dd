"""Undoing: compensation of a failed create, and the cleanup machine's steps.

Both remove, in reverse order of creation, routes that target the peering, the route tables
this stack created, then the peering. Neither touches what this tool did not create: the
peering and route tables must carry this stack's ``vpc-peering:managed-by`` tag, and only
routes whose target is this very peering are removed. Running either twice changes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError

from . import ec2, locks
from .aws import Access, Location, location_for
from .errors import ERROR_NAMES, NotManaged
from .models import (
    GONE_STATES,
    TAG_EXECUTION,
    TAG_MANAGED_BY,
    TAG_PEERING_ID,
    Association,
    CleanupDocument,
    CleanupRequest,
    DedicatedTable,
    PeeringDocument,
    RouteEntry,
    SideRef,
    parse,
)
from .observability import logger
from .peering import pair_lock
from .settings import Settings

MAX_CAUSE = 2000
DELETE_WAIT_SECONDS = 30.0
#: How long a peering a create output names may stay invisible (EC2 eventual consistency).
NOT_FOUND_WAIT_SECONDS = 8.0


# ------------------------------------------------------------------------- error summaries
def summarize_error(error: Any, doc: dict[str, Any] | None = None) -> tuple[str, str]:
    """A short error name from the documented set, and a cause that names field or resource."""
    if isinstance(error, dict):
        name, cause = str(error.get("Error", "")), str(error.get("Cause", ""))
    else:
        name, cause = "InternalError", str(error)
    try:
        details = json.loads(cause)
    except ValueError:
        details = None
    if isinstance(details, dict) and "errorMessage" in details:
        cause = str(details["errorMessage"])
        name = str(details.get("errorType") or name)
    if name in ("States.Timeout", "States.HeartbeatTimeout"):
        if doc and doc.get("VpcPeeringConnectionId") and doc.get("Status") != "active":
            name = "AcceptTimeout"
            cause = (
                f"{doc.get('VpcPeeringConnectionId')} was not accepted in time: the accept "
                "function did not report back (check the accept policy and its logs)"
            )
        else:
            name = "Timeout"
            cause = f"a step timed out: {cause}".strip()
    elif name.endswith(("AccessDeniedException", ".AccessDenied")):
        # The state machine's own call was refused (its role may not invoke or put events).
        cause = f"{name}: {cause}" if cause else name
        name = "AccessDenied"
    elif name not in ERROR_NAMES:
        cause = f"{name}: {cause}" if cause else name
        name = "InternalError"
    return name, cause[:MAX_CAUSE]


# ---------------------------------------------------------------------------- compensation
def compensate(raw: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    """Remove what this execution made (and only that), then name the error for the Fail state."""
    error = raw.get("Error")
    doc_data = {k: v for k, v in raw.items() if k != "Error"} if isinstance(error, dict) else {}
    name, cause = summarize_error(error if isinstance(error, dict) else raw, doc_data)
    result: dict[str, Any] = {
        "Error": name,
        "Cause": cause,
        "VpcPeeringConnectionId": doc_data.get("VpcPeeringConnectionId"),
        "Compensation": None,
    }
    try:
        doc = PeeringDocument.model_validate(doc_data) if doc_data else None
    except ValidationError:
        doc = None
    if doc is None:
        logger.info("nothing to compensate", error=name)
        return result
    try:
        removed = _compensate_doc(doc, access, settings)
    finally:
        # Even when compensation fails: the remedy it asks for, a cleanup of the peering, must
        # not then wait out this execution's lease.
        if not doc.dry_run:
            key, owner = pair_lock(doc.requester, doc.accepter, doc.execution_name)
            locks.release(access, settings, key, owner)
    result["VpcPeeringConnectionId"] = doc.vpc_peering_connection_id
    result["Compensation"] = removed
    logger.info(
        "compensated",
        error=name,
        routes_removed=len(removed["RoutesRemoved"]),
        route_tables_deleted=len(removed["RouteTablesDeleted"]),
        peering_deleted=removed["PeeringDeleted"],
    )
    return result


def _compensate_doc(doc: PeeringDocument, access: Access, settings: Settings) -> dict[str, Any]:
    sides = {"Requester": doc.requester, "Accepter": doc.accepter}
    locs = {
        name: location_for(s.account_id, s.region, s.role_arn, settings)
        for name, s in sides.items()
    }
    peering_id = doc.vpc_peering_connection_id
    if peering_id is None and doc.peering_action == "create":
        # The create call may have succeeded without its answer reaching us: find it by tag.
        live = ec2.describe_live_peerings(access, locs["Requester"], [doc.requester.vpc_id])
        mine = [p for p in live if p.tags.get(TAG_EXECUTION) == doc.execution_name]
        if mine:
            peering_id, doc.created_by_execution = mine[0].peering_id, True
    removed_routes: list[dict[str, Any]] = []
    removed_tables: list[str] = []
    if peering_id:
        # Routes the plan found absent and this execution may have added (present ones stay).
        by_side: dict[str, list[RouteEntry]] = {}
        for route in doc.routes:
            if route.state in ("planned", "created") and route.route_table_id:
                by_side.setdefault(route.side, []).append(route)
        for side_name, routes in by_side.items():
            loc = locs[side_name]
            tables = ec2.describe_route_tables_by_id(
                access, loc, sorted({r.route_table_id for r in routes if r.route_table_id})
            )
            current: dict[tuple[str | None, str], str | None] = {
                (t.route_table_id, r.destination): r.peering_id for t in tables for r in t.routes
            }
            for route in routes:
                if current.get((route.route_table_id, route.destination)) == peering_id:
                    assert route.route_table_id is not None
                    if ec2.delete_route(access, loc, route.route_table_id, route.destination):
                        removed_routes.append(route.dump())
        for side_name, side in sides.items():
            tables = ec2.describe_route_tables(access, locs[side_name], [side.vpc_id])
            for table in tables:
                if (
                    table.tags.get(TAG_MANAGED_BY) == settings.stack_name
                    and table.tags.get(TAG_EXECUTION) == doc.execution_name
                ):
                    _remove_table(access, locs[side_name], table)
                    removed_tables.append(table.route_table_id)
    peering_deleted = False
    if peering_id and doc.created_by_execution:
        peering = ec2.describe_peering(access, locs["Requester"], peering_id)
        if (
            peering is not None
            and peering.status not in GONE_STATES
            and peering.tags.get(TAG_MANAGED_BY) == settings.stack_name
            and peering.tags.get(TAG_EXECUTION) == doc.execution_name
        ):
            peering_deleted = ec2.delete_peering(access, locs["Requester"], peering_id)
    return {
        "RoutesRemoved": removed_routes,
        "RouteTablesDeleted": removed_tables,
        "PeeringDeleted": peering_deleted,
    }


def _remove_table(access: Access, loc: Location, table: ec2.RouteTable) -> None:
    """Disassociate every subnet, then delete (the tutorial's reverse order)."""
    for association in table.associations.values():
        ec2.disassociate_route_table(access, loc, association)
    ec2.delete_route_table(access, loc, table.route_table_id)


# --------------------------------------------------------------------------------- cleanup
def _side_ref(info: ec2.PeeringSide, given: SideRef | None, settings: Settings) -> SideRef:
    role = given.role_arn if given and given.vpc_id == info.vpc_id else None
    return SideRef(vpc_id=info.vpc_id, account_id=info.owner_id, region=info.region, role_arn=role)


def cleanup_plan(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> CleanupDocument:
    """Find the peering, the routes that target it and this stack's route tables; change nothing."""
    request = parse(CleanupRequest, raw_request)
    peering_id = request.vpc_peering_connection_id
    given_req = SideRef.model_validate(request.requester.dump()) if request.requester else None
    given_acc = SideRef.model_validate(request.accepter.dump()) if request.accepter else None
    if given_req:
        loc = location_for(
            given_req.account_id, given_req.region, given_req.role_arn, settings, "Requester."
        )
    else:
        loc = location_for(
            request.account_id or settings.hub_account_id,
            request.region or settings.hub_region,
            request.role_arn,
            settings,
        )
    doc = CleanupDocument(execution_name=execution_name, vpc_peering_connection_id=peering_id)
    peering = ec2.describe_peering(access, loc, peering_id)
    if peering is None and given_req and given_acc:
        # The create output says it existed: NotFound may be EC2's eventual consistency right
        # after the create. Look again for a while before concluding it is gone.
        peering = _describe_eventually(access, loc, peering_id)
    if peering is not None:
        doc.status_before = doc.status = peering.status
        doc.managed = peering.tags.get(TAG_MANAGED_BY) == settings.stack_name
        if not doc.managed:
            if peering.status in GONE_STATES:
                logger.info(
                    "peering gone and not ours; nothing to do", vpc_peering_connection_id=peering_id
                )
                return doc
            raise NotManaged(
                f"{peering_id} was not created by stack {settings.stack_name} (no "
                f"{TAG_MANAGED_BY}={settings.stack_name} tag); cleanup only removes what this "
                "tool created"
            )
        doc.requester = _side_ref(peering.requester, given_req, settings)
        doc.accepter = _side_ref(peering.accepter, given_acc, settings)
    elif given_req and given_acc:
        # EC2 no longer knows the peering: clear leftovers in the VPCs the create output names.
        doc.status_before = doc.status = "not found"
        doc.requester, doc.accepter = given_req, given_acc
        doc.managed = True
    else:
        doc.status_before = doc.status = "not found"
        logger.info("peering not found; nothing to do", vpc_peering_connection_id=peering_id)
        return doc
    key, owner = cleanup_lock(doc)
    locks.acquire(access, settings, key, owner)
    try:
        _find_leftovers(doc, peering_id, access, settings)
    except BaseException:
        locks.release(access, settings, key, owner)
        raise
    logger.info(
        "cleanup planned",
        vpc_peering_connection_id=peering_id,
        status=doc.status,
        routes=len(doc.routes),
        route_tables=len(doc.dedicated_route_tables),
    )
    return doc


def cleanup_lock(doc: CleanupDocument) -> tuple[str, str]:
    """The pair's lease key, and this cleanup execution as its owner."""
    assert doc.requester is not None
    assert doc.accepter is not None
    key, _ = pair_lock(doc.requester, doc.accepter, doc.execution_name)
    return key, f"cleanup:{doc.execution_name}"


def _describe_eventually(access: Access, loc: Location, peering_id: str) -> ec2.Peering | None:
    deadline = time.monotonic() + NOT_FOUND_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(1.0)
        peering = ec2.describe_peering(access, loc, peering_id)
        if peering is not None:
            return peering
    return None


def _find_leftovers(
    doc: CleanupDocument, peering_id: str, access: Access, settings: Settings
) -> None:
    """Routes that target the peering, and this stack's route tables for it, in both VPCs."""
    assert doc.requester is not None
    assert doc.accepter is not None
    for side_name, side in (("Requester", doc.requester), ("Accepter", doc.accepter)):
        side_loc = location_for(
            side.account_id, side.region, side.role_arn, settings, f"{side_name}."
        )
        for table in ec2.describe_route_tables(access, side_loc, [side.vpc_id]):
            owned = (
                table.tags.get(TAG_MANAGED_BY) == settings.stack_name
                and table.tags.get(TAG_PEERING_ID) == peering_id
            )
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


def _loc(doc: CleanupDocument, side_name: str, settings: Settings) -> Location:
    side = doc.requester if side_name == "Requester" else doc.accepter
    assert side is not None
    return location_for(side.account_id, side.region, side.role_arn, settings)


def remove_routes(doc: CleanupDocument, access: Access, settings: Settings) -> CleanupDocument:
    """Delete the routes to the peering, then disassociate and delete this stack's tables.

    Routes inside this stack's own tables go with the table (one call instead of one per route).
    """
    owned = {t.route_table_id for t in doc.dedicated_route_tables if t.state != "removed"}
    for route in doc.routes:
        if route.state == "removed" or route.route_table_id is None:
            continue
        if route.route_table_id in owned:
            continue
        if ec2.delete_route(
            access, _loc(doc, route.side, settings), route.route_table_id, route.destination
        ):
            doc.removed.routes.append(route.model_copy(update={"state": "removed"}))
        route.state = "removed"
    for table in doc.dedicated_route_tables:
        if table.state == "removed" or table.route_table_id is None:
            continue
        loc = _loc(doc, table.side, settings)
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
    """Delete the peering if it is ours and still there, then confirm EC2 reports it gone."""
    peering_id = doc.vpc_peering_connection_id
    if doc.requester is None or doc.accepter is None:
        return doc
    if doc.managed and doc.status not in GONE_STATES | {"not found"}:
        _delete_and_confirm(doc, access, settings)
    locks.release(access, settings, *cleanup_lock(doc))
    logger.info("cleanup done", vpc_peering_connection_id=peering_id, status=doc.status)
    return doc


def _delete_and_confirm(doc: CleanupDocument, access: Access, settings: Settings) -> None:
    peering_id = doc.vpc_peering_connection_id
    loc = _loc(doc, "Requester", settings)
    if ec2.delete_peering(access, loc, peering_id):
        doc.removed.peering_deleted = True
    final = ec2.wait_for_status(
        access,
        loc,
        peering_id,
        wanted=frozenset({"deleted"}),
        leave=frozenset({"deleting", "active", "pending-acceptance", "provisioning"}),
        timeout=DELETE_WAIT_SECONDS,
    )
    doc.status = final.status if final else "not found"


def report_failure(raw: dict[str, Any], access: Access, settings: Settings) -> dict[str, str]:
    """Name a failed cleanup's error, and give back the pair's lease if it was taken."""
    error = raw.get("Error")
    name, cause = summarize_error(error if isinstance(error, dict) else raw, raw)
    if isinstance(error, dict):
        try:
            doc = CleanupDocument.model_validate({k: v for k, v in raw.items() if k != "Error"})
        except ValidationError:
            doc = None
        if doc is not None and doc.requester is not None and doc.accepter is not None:
            locks.release(access, settings, *cleanup_lock(doc))
    return {"Error": name, "Cause": cause}
