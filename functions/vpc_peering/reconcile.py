"""The reconcile machine's steps, and the starter that turns tag changes into reconciles.

Discover reads every managed account and region once (tagged VPCs, their route tables, every
peering), decides with ``network`` (pure), and hands the work on in rounds; a round's child
starts the create or cleanup machine for each of its pairs (PrepareRound names and builds
their inputs), RecordRound sums up how they ended, and Report turns it all into the
execution's result. One reconcile changes the network at a time (the reconcile lease).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from . import ec2, locks, network
from .aws import Access, Location, aws_call, check_allowed, location_for
from .errors import (
    ConfigurationError,
    InvalidInput,
    PeeringError,
    ReconcileInProgress,
    TransientAwsError,
)
from .groups import MANAGED_TAGS, VpcKey
from .models import (
    NetworkPlanDocument,
    PairRun,
    ReconcileFailure,
    ReconcileOutcome,
    ReconcileReport,
    ReconcileRequest,
    ReconcileScope,
    RoundInput,
    RoundOutcome,
    RoundPlan,
    RoundResult,
    RoundRun,
    SideEntry,
    TagChangeEvent,
    TagChangeOutcome,
    parse,
)
from .network import LocationView, Scope, WorkItem
from .observability import logger
from .settings import Settings
from .teardown import summarize_error

#: Work item actions, by their code in a plan's compact items (network.Action).
ACTIONS = (
    "create",
    "repair",
    "remove",
    "accept",
    "repair-incoming",
    "remove-incoming",
    "reject",
)
#: Which report count a child execution that ended well adds to.
COUNTED = {
    "create": "created",
    "repair": "repaired",
    "repair-incoming": "repaired",
    "remove": "removed",
    "remove-incoming": "removed",
    "accept": "accepted",
    "reject": "rejected",
}
#: Failures and skips listed in a report (all are counted); the rest are in the history.
MAX_LISTED = 100
#: Failures a round passes on in full (the rest counted): every round's outcome must fit the
#: reconcile execution's 256 KB state, however many rounds and failures there are.
ROUND_LISTED = 3
MAX_CAUSE = 400
#: Discover's output must leave room in the 256 KB state for the rounds' outcomes.
MAX_PLAN_BYTES = 160 * 1024
#: A reconcile started by tag events begins this long after its window ends: time for EC2 to
#: show the last tag change of the window (eventual consistency), and for clocks to differ.
SETTLE_SECONDS = 5
READ_THREADS = 8
_VPC_ARN = re.compile(r"^arn:aws[a-z-]*:ec2:([a-z0-9-]+):([0-9]{12}):vpc/(vpc-[0-9a-f]+)$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# -------------------------------------------------------------------------------- discover
def managed_locations(settings: Settings) -> list[Location]:
    """Every account and region a reconcile looks in: AllowedAccountIds x ManagedRegions."""
    return [
        location_for(account, region, None, settings)
        for account in sorted(settings.allowed_account_ids)
        for region in sorted(settings.managed_regions)
    ]


def resolve_scope(request: ReconcileRequest, settings: Settings) -> tuple[Scope, ReconcileScope]:
    """What this reconcile acts on; a VPC named outside the managed accounts and regions is
    refused before anything is read."""
    described = ReconcileScope(
        accounts=sorted(settings.allowed_account_ids),
        regions=sorted(settings.managed_regions),
        group=request.group,
    )
    if request.vpc is None:
        return Scope(group=request.group), described
    account = request.vpc.account_id or settings.hub_account_id
    region = request.vpc.region or settings.hub_region
    check_allowed(account, settings, "Vpc.AccountId")
    if not settings.region_managed(region):
        raise InvalidInput(
            f"Vpc.Region: {region} is not in ManagedRegions "
            f"({', '.join(sorted(settings.managed_regions))})"
        )
    key = VpcKey(account, region, request.vpc.vpc_id)
    described.vpc = str(key)
    return Scope(vpc=key), described


def _read(access: Access, loc: Location) -> LocationView:
    """One account and region: its tagged VPCs, their route tables, every peering (three
    reads and their pages). A refusal is that location's failure, not the reconcile's."""
    try:
        vpcs = ec2.describe_tagged_vpcs(access, loc, MANAGED_TAGS)
        tables = ec2.describe_route_tables(access, loc, [v.vpc_id for v in vpcs]) if vpcs else []
        return LocationView(loc, vpcs, tables, ec2.describe_peerings(access, loc))
    except TransientAwsError:
        raise  # the step retries
    except PeeringError as exc:
        logger.warning("location not read", location=str(loc), error=exc.name)
        return LocationView(loc, error=exc)


def observe_network(access: Access, settings: Settings) -> list[LocationView]:
    """Every managed account and region, read in parallel."""
    locations = managed_locations(settings)
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(locations))) as pool:
        return list(pool.map(lambda loc: _read(access, loc), locations))


def discover(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> NetworkPlanDocument:
    """Take the reconcile lease, read the network once, decide everything, plan the rounds."""
    request = parse(ReconcileRequest, raw_request)
    scope, described = resolve_scope(request, settings)
    if not (settings.create_state_machine_arn and settings.cleanup_state_machine_arn):
        raise ConfigurationError("the create and cleanup state machine ARNs are not configured")
    key, owner = locks.reconcile_lease(execution_name)
    locks.acquire(
        access,
        settings,
        key,
        owner,
        busy=ReconcileInProgress,
        seconds=locks.RECONCILE_LEASE_SECONDS,
        what="the network",
    )
    try:
        plan = network.plan_network(observe_network(access, settings), scope, settings)
        doc = plan_document(plan, request, described, execution_name, settings)
    except BaseException:
        locks.release(access, settings, key, owner)
        raise
    logger.info(
        "discovered",
        desired=doc.report.desired,
        unchanged=doc.report.unchanged,
        work=len(plan.work),
        rounds=len(doc.rounds),
        failed=doc.report.failed_count,
    )
    return doc


def plan_document(
    plan: network.NetworkPlan,
    request: ReconcileRequest,
    scope: ReconcileScope,
    execution_name: str,
    settings: Settings,
) -> NetworkPlanDocument:
    """The plan in the compact form the machine carries: each side and group once, each work
    item as indexes into them, round by round."""
    sides: dict[VpcKey, int] = {}
    entries: list[SideEntry] = []
    groups: dict[str, int] = {}

    def index(key: VpcKey) -> int:
        if key not in sides:
            sides[key] = len(entries)
            entries.append(network.side_entry(plan.members.get(key), key))
        return sides[key]

    def entry(item: WorkItem) -> list[int | str]:
        group = groups.setdefault(item.group, len(groups))
        row: list[int | str] = [
            index(item.requester),
            index(item.accepter),
            ACTIONS.index(item.action),
            group,
        ]
        return row + ([item.peering_id] if item.peering_id else [])

    rounds = [
        RoundPlan(round=number, items=[entry(item) for item in items])
        for number, items in enumerate(network.schedule(plan.work))
    ]
    report = ReconcileReport(
        scope=scope,
        desired=plan.desired,
        unchanged=plan.unchanged,
        failed=plan.failed[:MAX_LISTED],
        failed_count=len(plan.failed),
        skipped=plan.skipped[:MAX_LISTED],
        ignored=plan.ignored[:MAX_LISTED],
    )
    doc = NetworkPlanDocument(
        execution_name=execution_name,
        request=request,
        sides=entries,
        groups=list(groups),
        rounds=rounds,
        has_work=bool(rounds),
        max_parallel_pairs=settings.max_parallel_pairs,
        report=report,
    )
    deferred = 0
    while doc.rounds and len(json.dumps(doc.dump())) > MAX_PLAN_BYTES:
        deferred += len(doc.rounds.pop().items)
    if deferred:
        doc.has_work = bool(doc.rounds)
        doc.report.failed_count += 1
        doc.report.failed.append(
            ReconcileFailure(
                error="ReconcileIncomplete",
                cause=f"{deferred} pair(s) deferred: the plan is more than one execution can "
                "carry; the next reconcile goes on with them",
            )
        )
    return doc


# ---------------------------------------------------------------------------------- rounds
def child_name(reconcile: str, round_number: int, index: int) -> str:
    """A child execution's name: the reconcile's, its round and place (at most 80 characters
    of [A-Za-z0-9_-]; a long reconcile name keeps its start and a hash of the whole)."""
    base = _NAME_UNSAFE.sub("-", reconcile)
    if len(base) > 60:
        base = f"{base[:51]}-{hashlib.sha256(reconcile.encode()).hexdigest()[:8]}"
    return f"{base}-{round_number:03d}-{index:02d}"


def prepare_round(doc: RoundInput, access: Access, settings: Settings) -> RoundRun:
    """Each work item of the round as a child execution: machine, name, input."""
    pairs = []
    for index, item in enumerate(doc.round.items):
        requester, accepter = doc.sides[int(item[0])], doc.sides[int(item[1])]
        action = ACTIONS[int(item[2])]
        group = doc.groups[int(item[3])] or None
        peering_id = str(item[4]) if len(item) > 4 else ""
        label = f"{network.key_of(requester)} ~ {network.key_of(accepter)}"
        child: Any
        if action == "remove":
            child = network.removal_request(requester, accepter, peering_id)
        elif action in ("remove-incoming", "reject"):
            child = network.incoming_removal_request(accepter, peering_id, action == "reject")
        elif action in ("accept", "repair-incoming"):
            child = network.incoming_request(requester, accepter, peering_id)
        else:
            child = network.pair_request(requester, accepter, group or "")
        machine = (
            settings.cleanup_state_machine_arn
            if action in network.CLEANUP_ACTIONS
            else settings.create_state_machine_arn
        )
        if machine is None:
            raise ConfigurationError("the create and cleanup state machine ARNs are not configured")
        pairs.append(
            PairRun(
                action=action,
                label=label,
                group=group,
                state_machine_arn=machine,
                name=child_name(doc.reconcile, doc.round.round, index),
                input=child,
            )
        )
    return RoundRun(
        round=doc.round.round,
        reconcile=doc.reconcile,
        max_parallel_pairs=doc.max_parallel_pairs,
        pairs=pairs,
    )


def child_failure(error: str, cause: str) -> tuple[str, str]:
    """The error name and cause a failed child execution ended with. Step Functions reports a
    failed ``startExecution.sync`` as States.TaskFailed whose cause is the child's
    DescribeExecution, as JSON; anything else (the start itself refused) is its own error."""
    try:
        details = json.loads(cause)
    except ValueError:
        details = None
    if isinstance(details, dict):
        name = details.get("Error") or details.get("error")
        text = details.get("Cause") or details.get("cause") or ""
        if name:
            return str(name), str(text)
    if error == "States.Timeout":
        return "Timeout", "the child execution outlived its task's TimeoutSeconds"
    return error or "InternalError", cause


def _clip(text: str, limit: int = MAX_CAUSE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def record_round(doc: RoundResult, access: Access, settings: Settings) -> RoundOutcome:
    """How the round's child executions ended, in brief."""
    outcome = RoundOutcome(round=doc.round)
    for pair in doc.pairs:
        if pair.error is None:
            count = COUNTED[pair.action]
            setattr(outcome, count, getattr(outcome, count) + 1)
            continue
        name, cause = child_failure(pair.error.error, pair.error.cause)
        outcome.failed_count += 1
        logger.warning(
            "pair failed", pair=pair.label, error=name, cause=_clip(cause), execution=pair.name
        )
        if len(outcome.failed) < ROUND_LISTED:
            outcome.failed.append(
                ReconcileFailure(
                    pair=pair.label,
                    group=pair.group,
                    action=pair.action,
                    error=name,
                    cause=_clip(f"{cause} (execution {pair.name})"),
                )
            )
    return outcome


# ---------------------------------------------------------------------------------- report
def report(raw: Any, execution_name: str, access: Access, settings: Settings) -> ReconcileOutcome:
    """The reconcile's result: Discover's findings and every round's outcome summed; give the
    lease back. Ends INCOMPLETE (ReconcileIncomplete, the failed pairs named) when anything
    did not converge, FAILED with the error when the reconcile itself could not run."""
    state = raw if isinstance(raw, dict) else {}
    locks.release(access, settings, *locks.reconcile_lease(execution_name))
    error = state.get("Error")
    if "Report" not in state:
        # Discover failed: nothing was decided, nothing changed.
        name, cause = _error_of(error)
        return ReconcileOutcome(
            scope=ReconcileScope(
                accounts=sorted(settings.allowed_account_ids),
                regions=sorted(settings.managed_regions),
            ),
            execution_name=execution_name,
            status="FAILED",
            error=name,
            cause=cause,
        )
    outcome = ReconcileOutcome.model_validate({**state["Report"], "ExecutionName": execution_name})
    for item in state.get("Rounds") or []:
        if isinstance(item, dict) and "Items" not in item:
            _add_round(outcome, round_outcome(item))
    if error is not None:
        name, cause = _error_of(error)
        outcome.failed_count += 1
        outcome.failed.append(ReconcileFailure(error=name, cause=_clip(cause)))
    outcome.failed = outcome.failed[:MAX_LISTED]
    if outcome.failed_count:
        outcome.status, outcome.error = "INCOMPLETE", "ReconcileIncomplete"
        outcome.cause = incomplete_cause(outcome)
    logger.info(
        "reconciled",
        status=outcome.status,
        pairs_desired=outcome.desired,
        pairs_created=outcome.created,
        pairs_repaired=outcome.repaired,
        pairs_removed=outcome.removed,
        pairs_unchanged=outcome.unchanged,
        pairs_failed=outcome.failed_count,
    )
    return outcome


def round_outcome(item: dict[str, Any]) -> RoundOutcome:
    """A round's entry in RunRounds' results: the outcome RecordRound made, or, when the round's
    child execution failed, that execution's result (Status FAILED, Error, Cause, Input: Step
    Functions returns a failed child's result unchanged, "ResultWriter (Map)"). Every pair of a
    failed round counts as not converged: which of them did is not known here."""
    if item.get("Status") != "FAILED":
        return RoundOutcome.model_validate(item)
    number, pairs = -1, 1
    try:
        planned = RoundInput.model_validate(json.loads(str(item.get("Input")))).round
        number, pairs = planned.round, max(len(planned.items), 1)
    except ValueError:  # pydantic's ValidationError is a ValueError, as JSON's is
        pass
    error = str(item.get("Error") or "InternalError")
    cause = f"round {number} ({pairs} pairs) failed: {item.get('Cause') or 'no cause'}"
    execution = item.get("ExecutionArn")
    failure = ReconcileFailure(
        error=error, cause=_clip(f"{cause} (execution {execution})" if execution else cause)
    )
    return RoundOutcome(round=number, failed_count=pairs, failed=[failure])


def _add_round(outcome: ReconcileOutcome, result: RoundOutcome) -> None:
    outcome.add(result)
    outcome.failed += result.failed


def _error_of(error: Any) -> tuple[str, str]:
    if not isinstance(error, dict):
        return "InternalError", "the reconcile failed without an error"
    return summarize_error(error)


def incomplete_cause(outcome: ReconcileOutcome, limit: int = 30_000) -> str:
    """Every failure listed (as many as the Fail state's cause holds), each with its error."""
    head = (
        f"{outcome.failed_count} of the reconcile's pairs did not converge (desired "
        f"{outcome.desired}, created {outcome.created}, repaired {outcome.repaired}, removed "
        f"{outcome.removed}, unchanged {outcome.unchanged}): "
    )
    parts: list[str] = []
    size = len(head)
    for failure in outcome.failed:
        group = f" [{failure.group}]" if failure.group else ""
        part = f"{failure.subject}{group}: {failure.error}"
        if size + len(part) + 2 > limit:
            break
        parts.append(part)
        size += len(part) + 2
    rest = outcome.failed_count - len(parts)
    tail = f"; and {rest} more (see the execution output and its child executions)" if rest else ""
    return head + "; ".join(parts) + tail


# ----------------------------------------------------------------------------- tag events
def vpc_of_event(event: TagChangeEvent) -> VpcKey:
    """The VPC whose tags changed; the event's account must be the VPC's (a forwarded event
    keeps the account it happened in)."""
    match = _VPC_ARN.match(event.resources[0])
    if match is None:
        raise InvalidInput(f"resources[0]: {event.resources[0]!r} is not a VPC ARN")
    region, account, vpc_id = match.groups()
    if (account, region) != (event.account, event.region):
        raise InvalidInput(
            f"resources[0]: {event.resources[0]} is not in the event's account and region "
            f"({event.account} {event.region})"
        )
    return VpcKey(account, region, vpc_id)


def on_tag_change(event: TagChangeEvent, access: Access, settings: Settings) -> TagChangeOutcome:
    """Start (or join) the reconcile of this tag change's time window: every change of one
    window is covered by one execution, which begins after the window ends. A change to a VPC
    outside the managed accounts and regions starts nothing."""
    vpc = vpc_of_event(event)
    if not settings.account_allowed(vpc.account_id):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in AllowedAccountIds")
    if not settings.region_managed(vpc.region):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in ManagedRegions")
    window = settings.tag_event_window_seconds
    now = time.time()
    number = int(now // window)
    name = f"tags-{window}s-{number}"
    not_before = (number + 1) * window + SETTLE_SECONDS
    arn = _start_reconcile(access, settings, name, not_before)
    if arn is None:
        # That window's execution has already ended: this change gets one of its own.
        arn = _start_reconcile(access, settings, f"{name}-{event.id[:13]}", now + SETTLE_SECONDS)
    logger.info("reconcile started", vpc=str(vpc), execution_arn=arn)
    return TagChangeOutcome(started=arn is not None, execution_arn=arn, reason=str(vpc))


def _start_reconcile(
    access: Access, settings: Settings, name: str, not_before: float
) -> str | None:
    """StartExecution, idempotent by name: the same name and input while the execution runs
    returns it. None when that name's execution has already ended."""
    if not settings.reconcile_state_machine_arn:
        raise ConfigurationError("RECONCILE_STATE_MACHINE_ARN is not configured")
    moment = datetime.fromtimestamp(not_before, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hub = Location(settings.hub_account_id, settings.hub_region)
    with aws_call(f"states:StartExecution {name}", hub):
        try:
            started = access.client("stepfunctions", hub).start_execution(
                stateMachineArn=settings.reconcile_state_machine_arn,
                name=name,
                input=json.dumps({"NotBefore": moment}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return None
            raise
    return str(started["executionArn"])
