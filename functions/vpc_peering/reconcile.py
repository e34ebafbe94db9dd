"""The reconcile machine's steps, and the starter that turns tag changes into reconciles.

Discover reads every managed account and region once (tagged VPCs, their route tables, every
peering), decides with ``network`` (pure), and builds each pair's work once, fully formed (a
:class:`PairRun`: the child's machine, name and input); it writes the rounds to the plan
bucket, which the reconcile machine's distributed Map reads (``ItemReader``). A round's child
starts the create or cleanup machine for each of its pairs, RecordRound sums up how they ended
(the pairs done by their place in the plan), and Report names them from the plan object and
turns it all into the execution's result. One reconcile changes the network at a time (the
reconcile lease).
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

from . import ec2, group_policy, hub_store, locks, network, status
from .aws import Access, Location, aws_call
from .errors import (
    ConfigurationError,
    InvalidInput,
    PeeringError,
    ReconcileInProgress,
    TransientAwsError,
    summarize_error,
)
from .groups import MANAGED_TAGS, TAG_ALLOW, VpcKey
from .locations import check_allowed, location_for
from .models.documents import TagChangeOutcome
from .models.messages import parse
from .models.network import (
    Announcement,
    NetworkPlanDocument,
    NetworkStatus,
    PairRun,
    PairSideRef,
    PendingJoin,
    PlannedPair,
    ReconcileFailure,
    ReconcileIgnored,
    ReconcileOutcome,
    ReconcilePair,
    ReconcileRefusal,
    ReconcileReport,
    ReconcileScope,
    ReconcileSkip,
    RoundInput,
    RoundOutcome,
    RoundResult,
    RoundRun,
)
from .models.requests import ReconcileRequest, StatusRequest, TagChangeEvent
from .models.vocabulary import TAG_MANAGED_BY
from .network import LocationView, Scope, WorkItem
from .observability import logger
from .settings import Settings

#: Failures and skips listed in a report (all are counted); the rest are in the history.
MAX_LISTED = 100
#: Failures a round passes on in full (the rest counted): every round's outcome must fit the
#: reconcile execution's 256 KB state, however many rounds and failures there are.
ROUND_LISTED = 3
#: Every round's outcome together (the distributed Map's result, in the reconcile's state):
#: each round gets its share, at least MIN_OUTCOME_BYTES (its counts always fit).
ROUND_OUTCOMES_BYTES = 64 * 1024
MIN_OUTCOME_BYTES = 400
MAX_CAUSE = network.MAX_CAUSE
#: Discover's output (the report, without the rounds: they are in the plan object) at most,
#: leaving room in the 256 KB state for the rounds' outcomes.
MAX_PLAN_BYTES = 160 * 1024
#: Where the plan objects are, in the plan bucket (the only prefix Discover may write).
PLAN_PREFIX = "plans/"
#: Bytes of JSON the lists of a report may take: Discover's (Failed, Skipped, Ignored,
#: RemovalsHeld, shared), a dry run's Plan, the pairs created, removed and repaired (together).
#: Every item is counted; the first are listed, their causes clipped.
REPORT_LIST_BYTES = 56 * 1024
FAILED_LIST_BYTES = 32 * 1024
PLAN_LIST_BYTES = 48 * 1024
DONE_LIST_BYTES = 40 * 1024
#: A reconcile started by tag events begins this long after its window ends: time for EC2 to
#: show the last tag change of the window (eventual consistency), and for clocks to differ.
SETTLE_SECONDS = 5
READ_THREADS = 8
#: Reads of one location Discover tries (each after the client's own retries) before it
#: reports the location as not read; the pause grows by this much after each.
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 2.0
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


def _read(access: Access, loc: Location, settings: Settings) -> LocationView:
    """One account and region: its tagged VPCs, their route tables, every peering (three
    reads and their pages); where it has tagged VPCs, also the security groups tagged
    vpc-peering:allow and the ingress rules this stack tagged (two more: five at most). A
    location that cannot be read, after the client's retries and ``READ_ATTEMPTS`` of its own
    (refused, throttled, an answer that cannot be parsed), is that location's failure, not the
    reconcile's: the other locations' pairs go on."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            vpcs = ec2.describe_tagged_vpcs(access, loc, MANAGED_TAGS)
            tables = (
                ec2.describe_route_tables(access, loc, [v.vpc_id for v in vpcs]) if vpcs else []
            )
            view = LocationView(loc, vpcs, tables, ec2.describe_peerings(access, loc))
            if vpcs:
                view.allow_groups = ec2.describe_tagged_security_groups(access, loc, TAG_ALLOW)
                view.rules = ec2.describe_tagged_rules(
                    access, loc, TAG_MANAGED_BY, settings.stack_name
                )
            return view
        except TransientAwsError as exc:
            if attempt < READ_ATTEMPTS:
                time.sleep(READ_RETRY_SECONDS * attempt)
                continue
            error: Exception = exc
        except Exception as exc:  # isolated: that location's failure (PeeringError or a bug)
            error = exc
        logger.warning("location not read", location=str(loc), error=type(error).__name__)
        return LocationView(loc, error=error)
    raise AssertionError("unreachable")


def observe_network(access: Access, settings: Settings) -> list[LocationView]:
    """Every managed account and region, read in parallel."""
    locations = managed_locations(settings)
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(locations))) as pool:
        return list(pool.map(lambda loc: _read(access, loc, settings), locations))


def discover(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> NetworkPlanDocument:
    """Take the reconcile lease, read the network once, decide everything, plan the rounds."""
    request = parse(ReconcileRequest, raw_request)
    scope, described = resolve_scope(request, settings)
    if not (settings.create_state_machine_arn and settings.cleanup_state_machine_arn):
        raise ConfigurationError("the create and cleanup state machine ARNs are not configured")
    if request.dry_run:
        # Nothing changes, so nothing needs the network to itself: no lease.
        policy, approvals = read_policy(access, settings)
        plan = network.plan_network(
            observe_network(access, settings), scope, settings, policy, approvals
        )
        network.hold_removals(plan, settings.max_removals_per_reconcile, request.confirm_removals)
        return dry_run_document(plan, request, described, execution_name, settings)
    key, owner = take_turn(request, execution_name, access, settings)
    changed: list[tuple[str, str, str]] = []
    with locks.released_on_failure(access, settings, key, owner):
        try:
            if request.tag_changes and settings.lock_table_name:
                changed = locks.take_tag_changes(access, settings)
                scope = Scope(changed=frozenset(VpcKey(*c) for c in changed))
                described.changed_vpcs = [str(VpcKey(*c)) for c in changed]
            policy, approvals = read_policy(access, settings)
            plan = network.plan_network(
                observe_network(access, settings), scope, settings, policy, approvals
            )
            network.hold_removals(
                plan, settings.max_removals_per_reconcile, request.confirm_removals
            )
            doc = plan_document(plan, request, described, execution_name, settings)
            doc.announcements = announce(plan, access, settings)
            write_plan(doc, access, settings)
        except BaseException:
            locks.give_back_tag_changes(access, settings, changed)
            raise
    logger.info(
        "discovered",
        desired=doc.report.desired,
        unchanged=doc.report.unchanged,
        work=len(plan.work),
        rounds=doc.round_count,
        failed=doc.report.failed_count,
    )
    return doc


def read_policy(
    access: Access, settings: Settings
) -> tuple[group_policy.PolicyState, group_policy.Approvals]:
    """The hub's group policy and the approvals recorded for it, read once; a parameter (or
    approvals) that cannot be read closes every group (named, with the reason), as an invalid
    policy does."""
    parameter = settings.policy_parameter()
    try:
        text = hub_store.read_group_policy(access, settings)
        stored = hub_store.read_approvals(access, settings)
    except PeeringError as exc:
        logger.warning("group policy not read", parameter=parameter, error=exc.name)
        problem = network.clip(f"could not be read ({exc})")
        return group_policy.PolicyState(parameter, problem=problem), {}
    return group_policy.read(parameter, text), group_policy.approvals_of(stored)


#: Events one reconcile puts on the bus at most; the rest are announced by the next ones.
MAX_ANNOUNCEMENTS = 20


def announce(plan: network.NetworkPlan, access: Access, settings: Settings) -> list[Announcement]:
    """Each new refusal, once: those not announced before (the lock table keeps what was), at
    most MAX_ANNOUNCEMENTS. A refusal no longer made is forgotten, so it is announced again if
    it comes back. Kept before the machine publishes (at most once: a publish that fails after
    its retries is not repeated)."""
    try:
        before = hub_store.announced(access, settings)
        news: list[Announcement] = []
        now: set[str] = set()
        items: list[tuple[str, str, dict[str, Any]]] = [
            (
                f"refused|{r.group}|{r.key.account_id}|{r.key.region}|{r.key.vpc_id}|{r.cause}",
                "VPC Peering Join Refused",
                refusal_of(r).dump(),
            )
            for r in plan.all_refused
        ]
        items += [
            (
                f"requested|{p.group}|{p.key.account_id}|{p.key.region}|{p.key.vpc_id}|"
                + " ".join(p.cidrs),
                "VPC Peering Join Requested",
                pending_of(p).dump(),
            )
            for p in plan.all_pending
        ]
        for key, detail_type, detail in items:
            digest = hub_store.digest_of(key)
            if digest in before:
                now.add(digest)
            elif len(news) < MAX_ANNOUNCEMENTS:
                now.add(digest)
                news.append(Announcement(detail_type=detail_type, detail=detail))
        if now != before:
            hub_store.record_announced(access, settings, now)
    except PeeringError as exc:  # announcing is best effort: the next reconcile tries again
        logger.warning("announcements not kept", error=exc.name)
        return []
    return news


def refusal_of(refusal: group_policy.Refusal) -> ReconcileRefusal:
    return ReconcileRefusal(
        group=refusal.group,
        vpc_id=refusal.key.vpc_id,
        account_id=refusal.key.account_id,
        region=refusal.key.region,
        error=group_policy.DENIED,
        cause=network.clip(refusal.cause),
    )


def pending_of(request: group_policy.JoinRequest) -> PendingJoin:
    return PendingJoin(
        group=request.group,
        vpc_id=request.key.vpc_id,
        account_id=request.key.account_id,
        region=request.key.region,
        cidrs=list(request.cidrs),
    )


def take_turn(
    request: ReconcileRequest, execution_name: str, access: Access, settings: Settings
) -> tuple[str, str]:
    """Take the reconcile lease (ReconcileInProgress while another reconcile holds it). An
    operator's reconcile (anything not started by tag changes) that has to wait marks itself
    next, and the queued tag-started reconcile lets it go first."""
    key, owner = locks.reconcile_lease(execution_name)
    if request.tag_changes and settings.lock_table_name:
        ahead = locks.operator_waiting(access, settings, owner)
        if ahead is not None:
            raise ReconcileInProgress(f"an operator's reconcile ({ahead}) goes first")
    try:
        locks.acquire(
            access,
            settings,
            key,
            owner,
            busy=ReconcileInProgress,
            seconds=locks.RECONCILE_LEASE_SECONDS,
            what="the network",
        )
    except ReconcileInProgress:
        if not request.tag_changes and settings.lock_table_name:
            locks.wait_first(access, settings, owner)
        raise
    if not request.tag_changes:
        locks.release(access, settings, locks.NEXT_KEY, owner)
    return key, owner


def pair_ref(requester: VpcKey, accepter: VpcKey, group: str | None) -> ReconcilePair:
    """A pair as the report lists it."""

    def side(key: VpcKey) -> PairSideRef:
        return PairSideRef(vpc_id=key.vpc_id, account_id=key.account_id, region=key.region)

    return ReconcilePair(requester=side(requester), accepter=side(accepter), group=group or None)


def within_bytes[
    T: (
        ReconcilePair,
        PlannedPair,
        ReconcileFailure,
        ReconcileSkip,
        ReconcileIgnored,
        ReconcileRefusal,
        PendingJoin,
    )
](items: list[T], budget: int) -> list[T]:
    """The first of ``items`` whose JSON together takes at most ``budget`` bytes."""
    kept: list[T] = []
    size = 0
    for item in items:
        size += len(json.dumps(item.dump())) + 2
        if size > budget:
            break
        kept.append(item)
    return kept


def clipped(item: ReconcileFailure) -> ReconcileFailure:
    return item.model_copy(update={"cause": network.clip(item.cause)})


def _report(
    plan: network.NetworkPlan,
    request: ReconcileRequest,
    scope: ReconcileScope,
    budget: int = REPORT_LIST_BYTES,
) -> ReconcileReport:
    """Discover's findings, each list clipped and within its share of ``budget`` bytes (every
    item counted)."""
    held = [pair_ref(w.requester, w.accepter, w.group) for w in plan.removals_held]
    skipped = [s.model_copy(update={"reason": network.clip(s.reason)}) for s in plan.skipped]
    ignored = [i.model_copy(update={"reason": network.clip(i.reason)}) for i in plan.ignored]
    return ReconcileReport(
        scope=scope,
        desired=plan.desired,
        unchanged=plan.unchanged,
        failed=within_bytes([clipped(f) for f in plan.failed[:MAX_LISTED]], budget // 2),
        failed_count=len(plan.failed),
        skipped=within_bytes(skipped[:MAX_LISTED], budget // 8),
        skipped_count=len(plan.skipped),
        ignored=within_bytes(ignored[:MAX_LISTED], budget // 8),
        ignored_count=len(plan.ignored),
        dry_run=request.dry_run,
        removals_held=within_bytes(held, budget // 8),
        removals_held_count=len(held),
        refused=within_bytes([refusal_of(r) for r in plan.refused[:MAX_LISTED]], budget // 16),
        refused_count=len(plan.refused),
        pending_approval=within_bytes(
            [pending_of(p) for p in plan.pending[:MAX_LISTED]], budget // 16
        ),
        pending_approval_count=len(plan.pending),
        group_policy=plan.policy_closed,
    )


def dry_run_document(
    plan: network.NetworkPlan,
    request: ReconcileRequest,
    scope: ReconcileScope,
    execution_name: str,
    settings: Settings,
) -> NetworkPlanDocument:
    """A dry run's result: the report, with every pair a real run would act on (in the order
    it would), and why; no rounds."""
    report = _report(plan, request, scope)
    ordered = [item for round_ in network.schedule(plan.work) for item in round_]
    planned = [
        PlannedPair(
            **pair_ref(item.requester, item.accepter, item.group).model_dump(),
            action=network.ACTIONS[item.action].shown,
            reason=item.reason,
        )
        for item in ordered
    ]
    report.plan = within_bytes(planned, PLAN_LIST_BYTES)
    counts: dict[str, int] = {}
    for line in planned:
        counts[line.action] = counts.get(line.action, 0) + 1
    report.plan_counts = counts
    return NetworkPlanDocument(
        execution_name=execution_name,
        request=request,
        max_parallel_pairs=settings.max_parallel_pairs,
        report=report,
    )


def plan_document(
    plan: network.NetworkPlan,
    request: ReconcileRequest,
    scope: ReconcileScope,
    execution_name: str,
    settings: Settings,
) -> NetworkPlanDocument:
    """The plan: each pair's work built once (a :class:`PairRun`), round by round; the report.
    The rounds go to the plan object, so nothing is deferred for size (``Deferred`` stays 0)."""
    rounds = [
        RoundRun(
            round=number,
            pairs=[
                pair_run(item, plan, child_name(execution_name, number, index), settings)
                for index, item in enumerate(items)
            ],
        )
        for number, items in enumerate(network.schedule(plan.work))
    ]
    return NetworkPlanDocument(
        execution_name=execution_name,
        request=request,
        plan_key=plan_key(execution_name) if rounds else "",
        round_count=len(rounds),
        has_work=bool(rounds),
        max_parallel_pairs=settings.max_parallel_pairs,
        outcome_bytes=max(MIN_OUTCOME_BYTES, ROUND_OUTCOMES_BYTES // max(1, len(rounds))),
        report=_report(plan, request, scope),
        rounds=rounds,
    )


def pair_run(item: WorkItem, plan: network.NetworkPlan, name: str, settings: Settings) -> PairRun:
    """One pair's work as its child execution runs it: machine, name, input."""
    spec = network.ACTIONS[item.action]
    machine = (
        settings.cleanup_state_machine_arn
        if spec.machine == "cleanup"
        else settings.create_state_machine_arn
    )
    if machine is None:
        raise ConfigurationError("the create and cleanup state machine ARNs are not configured")
    ref = pair_ref(item.requester, item.accepter, item.group)
    return PairRun(
        action=item.action,
        label=item.label,
        requester=ref.requester,
        accepter=ref.accepter,
        group=ref.group,
        state_machine_arn=machine,
        name=name,
        input=network.child_input(item, plan.members, plan.narrowing),
    )


def plan_key(execution_name: str) -> str:
    return f"{PLAN_PREFIX}{_NAME_UNSAFE.sub('-', execution_name)}.json"


def write_plan(doc: NetworkPlanDocument, access: Access, settings: Settings) -> None:
    """The rounds, as the distributed Map reads them: a JSON array, one item per round."""
    if not doc.rounds:
        return
    if not settings.plan_bucket_name:
        raise ConfigurationError("PLAN_BUCKET_NAME is not configured")
    body = json.dumps([round_.dump() for round_ in doc.rounds]).encode()
    hub = Location(settings.hub_account_id, settings.hub_region)
    with aws_call(f"s3:PutObject {doc.plan_key}", hub):
        access.client("s3", hub).put_object(
            Bucket=settings.plan_bucket_name,
            Key=doc.plan_key,
            Body=body,
            ContentType="application/json",
        )


def read_plan(key: str, access: Access, settings: Settings) -> list[RoundRun]:
    """The plan object's rounds; [] (logged) when it cannot be read: the report still counts
    everything, it only cannot name the pairs done."""
    if not key or not settings.plan_bucket_name:
        return []
    hub = Location(settings.hub_account_id, settings.hub_region)
    try:
        with aws_call(f"s3:GetObject {key}", hub):
            body = access.client("s3", hub).get_object(Bucket=settings.plan_bucket_name, Key=key)
            rounds = json.loads(body["Body"].read())
        return [RoundRun.model_validate(r) for r in rounds]
    except Exception as exc:  # the report goes on without the names
        logger.warning("plan not read", key=key, error=type(exc).__name__)
        return []


def delete_plan(key: str, access: Access, settings: Settings) -> None:
    """The plan object is done with (the bucket's lifecycle rule expires any left behind)."""
    if not key or not settings.plan_bucket_name:
        return
    hub = Location(settings.hub_account_id, settings.hub_region)
    try:
        with aws_call(f"s3:DeleteObject {key}", hub):
            access.client("s3", hub).delete_object(Bucket=settings.plan_bucket_name, Key=key)
    except Exception as exc:  # expired by the lifecycle rule instead
        logger.warning("plan not deleted", key=key, error=type(exc).__name__)


# ---------------------------------------------------------------------------------- rounds
def child_name(reconcile: str, round_number: int, index: int) -> str:
    """A child execution's name: the reconcile's, its round and place (at most 80 characters
    of [A-Za-z0-9_-]; a long reconcile name keeps its start and a hash of the whole)."""
    base = _NAME_UNSAFE.sub("-", reconcile)
    if len(base) > 60:
        base = f"{base[:51]}-{hashlib.sha256(reconcile.encode()).hexdigest()[:8]}"
    return f"{base}-{round_number:03d}-{index:02d}"


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


def record_round(doc: RoundResult, access: Access, settings: Settings) -> RoundOutcome:
    """How the round's child executions ended, in brief: counted, and within the round's share
    of bytes, its first failures and the pairs it did (by their place: [round, index])."""
    outcome = RoundOutcome(round=doc.round)
    done: list[tuple[int, int]] = []
    for index, pair in enumerate(doc.pairs):
        if pair.error is None:
            count = network.ACTIONS[pair.action].counter  # type: ignore[index]
            setattr(outcome, count, getattr(outcome, count) + 1)
            done.append((doc.round, index))
            continue
        name, cause = child_failure(pair.error.error, pair.error.cause)
        outcome.failed_count += 1
        logger.warning(
            "pair failed",
            pair=pair.label,
            error=name,
            cause=network.clip(cause),
            execution=pair.name,
        )
        if len(outcome.failed) < ROUND_LISTED:
            outcome.failed.append(
                ReconcileFailure(
                    pair=pair.label,
                    group=pair.group,
                    action=pair.action,
                    error=name,
                    cause=network.clip(f"{cause} (execution {pair.name})"),
                )
            )
    while outcome.failed and len(json.dumps(outcome.dump())) > doc.outcome_bytes:
        outcome.failed.pop()
    room = doc.outcome_bytes - len(json.dumps(outcome.dump()))
    for position in done:
        room -= len(json.dumps(position)) + 2  # and its ", "
        if room < 0:
            break
        outcome.done.append(position)
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
    done: list[tuple[int, int]] = []
    for item in state.get("Rounds") or []:
        if isinstance(item, dict):
            result = round_outcome(item)
            _add_round(outcome, result)
            done += result.done
    key = str(state.get("PlanKey") or "")
    if done:
        _list_done(outcome, done, read_plan(key, access, settings))
    delete_plan(key, access, settings)
    if error is not None:
        name, cause = _error_of(error)
        outcome.failed_count += 1
        outcome.failed.append(ReconcileFailure(error=name, cause=network.clip(cause)))
    outcome.failed = within_bytes(outcome.failed[:MAX_LISTED], FAILED_LIST_BYTES)
    if outcome.dry_run:
        pass  # a plan, not a run: its failures are what a real run would meet
    elif outcome.removals_held_count:
        outcome.status, outcome.error = "FAILED", "RemovalsHeld"
        outcome.cause = held_cause(outcome, settings)
    elif outcome.failed_count:
        outcome.status, outcome.error = "INCOMPLETE", "ReconcileIncomplete"
        outcome.cause = incomplete_cause(outcome)
        if outcome.group_policy and any(f.error == group_policy.UNUSABLE for f in outcome.failed):
            # The one line first: what the operator must fix before any group changes again.
            outcome.cause = f"{outcome.group_policy}. {outcome.cause}"
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


def _list_done(
    outcome: ReconcileOutcome, done: list[tuple[int, int]], rounds: list[RoundRun]
) -> None:
    """The pairs the rounds made, removed and repaired, named from the plan object by their
    place in it, within the report's byte budget."""
    lists = {
        "created": outcome.created_pairs,
        "removed": outcome.removed_pairs,
        "repaired": outcome.repaired_pairs,
    }
    size = 0
    for number, index in done:
        try:
            run = rounds[number].pairs[index]
        except (IndexError, TypeError):
            logger.warning("pair done not in the plan", round=number, index=index)
            continue
        counter = network.ACTIONS[run.action].counter  # type: ignore[index]
        if counter not in lists:
            continue
        pair = ReconcilePair(requester=run.requester, accepter=run.accepter, group=run.group)
        size += len(json.dumps(pair.dump())) + 2
        if size > DONE_LIST_BYTES:
            break
        lists[counter].append(pair)


def held_cause(outcome: ReconcileOutcome, settings: Settings) -> str:
    """Why a reconcile with held removals ends as it does, and what to do."""
    count = outcome.removals_held_count
    cause = (
        f"{count} group peering removals held: more than MaxRemovalsPerReconcile "
        f"({settings.max_removals_per_reconcile}) in one reconcile, so none was removed (the "
        "creates and repairs went on). If the tag changes are meant, run the reconcile again "
        'with {"ConfirmRemovals": true} (vpc-peering reconcile --confirm-removals); '
        "otherwise put the tags back. The pairs are listed under RemovalsHeld"
    )
    if outcome.failed_count:
        cause += f"; and {incomplete_cause(outcome, limit=20_000)}"
    return cause


def round_outcome(item: dict[str, Any]) -> RoundOutcome:
    """A round's entry in RunRounds' results: the outcome RecordRound made, or, when the round's
    child execution failed, that execution's result (Status FAILED, Error, Cause, Input: Step
    Functions returns a failed child's result unchanged, "ResultWriter (Map)"). Every pair of a
    failed round counts as not converged: which of them did is not known here."""
    if item.get("Status") != "FAILED":
        return RoundOutcome.model_validate(item)
    number, pairs = -1, 1
    try:
        planned = RoundInput.model_validate(json.loads(str(item.get("Input"))))
        number, pairs = planned.round, max(len(planned.pairs), 1)
    except ValueError:  # pydantic's ValidationError is a ValueError, as JSON's is
        pass
    error = str(item.get("Error") or "InternalError")
    cause = f"round {number} ({pairs} pairs) failed: {item.get('Cause') or 'no cause'}"
    execution = item.get("ExecutionArn")
    failure = ReconcileFailure(
        error=error, cause=network.clip(f"{cause} (execution {execution})" if execution else cause)
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
    match = _VPC_ARN.fullmatch(event.resources[0])
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
    """Queue this VPC's tag change for the next tag-started reconcile, and start that reconcile
    unless one is queued already (it begins after its time window ends, then takes every change
    queued by then): at most one tag-started reconcile waits at a time, however many tags
    change. A change to a VPC outside the managed accounts and regions starts nothing."""
    vpc = vpc_of_event(event)
    if not settings.account_allowed(vpc.account_id):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in AllowedAccountIds")
    if not settings.region_managed(vpc.region):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in ManagedRegions")
    window = settings.tag_event_window_seconds
    number = int(time.time() // window)
    # Named for the event (a redelivered event starts nothing new: StartExecution is
    # idempotent by name and input), begun after the window ends.
    name = f"tags-{window}s-{number}-{_NAME_UNSAFE.sub('-', event.id)[:36]}"
    not_before = (number + 1) * window + SETTLE_SECONDS
    where = (vpc.account_id, vpc.region, vpc.vpc_id)
    if settings.lock_table_name and not locks.queue_tag_change(access, settings, where, name):
        logger.info("tag change queued", vpc=str(vpc))
        return TagChangeOutcome(
            started=False, reason=f"{vpc}: queued for the reconcile waiting to begin"
        )
    arn = _start_reconcile(access, settings, name, not_before)
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
                input=json.dumps({"NotBefore": moment, "TagChanges": True}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return None
            raise
    return str(started["executionArn"])


def read_status(
    raw_request: Any, execution_name: str, access: Access, settings: Settings
) -> NetworkStatus:
    """The network status (``vpc-peering status``, ``list``, ``graph``): read every managed
    account and region with the stack's roles, change nothing, take no lease."""
    request = parse(StatusRequest, raw_request if raw_request is not None else {})
    policy_state, approvals = read_policy(access, settings)
    return status.network_status(
        observe_network(access, settings),
        settings,
        policy_state,
        approvals,
        request.group,
        request.tagged,
    )
