"""The reconcile machine's first step, Discover, and the read-only network status.

Discover reads every managed account and region once (tagged VPCs, their route tables, every
peering), decides with ``network`` (pure), and builds each pair's work once, fully formed (a
:class:`PairRun`: the child's machine, name and input); it writes the rounds to the plan
bucket, which the reconcile machine's distributed Map reads (``ItemReader``). A round's child
starts the create or cleanup machine for each of its pairs, RecordRound sums up how they ended
(the pairs done by their place in the plan), and Report names them from the plan object and
turns it all into the execution's result (``outcomes``). One reconcile changes the network at a
time (the reconcile lease). Tag changes start reconciles in ``tag_start``.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import ec2, group_policy, hub_store, locks, network, status
from .actions import ACTIONS, clip
from .aws import Access, Location, safe_name
from .errors import (
    GROUP_POLICY_DENIED,
    ConfigurationError,
    InvalidInput,
    PeeringError,
    ReconcileInProgress,
    TransientAwsError,
)
from .groups import MANAGED_TAGS, TAG_ALLOW, VpcKey
from .locations import check_allowed, location_for
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
    ReconcilePair,
    ReconcileRefusal,
    ReconcileReport,
    ReconcileScope,
    RoundRun,
)
from .models.requests import ReconcileRequest, StatusRequest
from .models.vocabulary import TAG_MANAGED_BY
from .network import LocationView, Scope, WorkItem
from .observability import logger
from .outcomes import MAX_LISTED, within_bytes
from .plan_store import plan_key, write_plan
from .settings import Settings

#: Every round's outcome together (the distributed Map's result, in the reconcile's state):
#: each round gets its share, at least MIN_OUTCOME_BYTES (its counts always fit).
ROUND_OUTCOMES_BYTES = 64 * 1024
MIN_OUTCOME_BYTES = 400
#: Discover's output (the report, without the rounds: they are in the plan object) at most,
#: leaving room in the 256 KB state for the rounds' outcomes.
MAX_PLAN_BYTES = 160 * 1024
#: Bytes of JSON the lists of a report may take: Discover's (Failed, Skipped, Ignored,
#: RemovalsHeld, shared), a dry run's Plan, the pairs created, removed and repaired (together).
#: Every item is counted; the first are listed, their causes clipped.
REPORT_LIST_BYTES = 56 * 1024
PLAN_LIST_BYTES = 48 * 1024
READ_THREADS = 8
#: Reads of one location Discover tries (each after the client's own retries) before it
#: reports the location as not read; the pause grows by this much after each.
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 2.0


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
        problem = clip(f"could not be read ({exc})")
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
        error=GROUP_POLICY_DENIED,
        cause=clip(refusal.cause),
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


def clipped(item: ReconcileFailure) -> ReconcileFailure:
    return item.model_copy(update={"cause": clip(item.cause)})


def _report(
    plan: network.NetworkPlan,
    request: ReconcileRequest,
    scope: ReconcileScope,
    budget: int = REPORT_LIST_BYTES,
) -> ReconcileReport:
    """Discover's findings, each list clipped and within its share of ``budget`` bytes (every
    item counted)."""
    held = [pair_ref(w.requester, w.accepter, w.group) for w in plan.removals_held]
    skipped = [s.model_copy(update={"reason": clip(s.reason)}) for s in plan.skipped]
    ignored = [i.model_copy(update={"reason": clip(i.reason)}) for i in plan.ignored]
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
            action=ACTIONS[item.action].shown,
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
    spec = ACTIONS[item.action]
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


# ---------------------------------------------------------------------------------- rounds
def child_name(reconcile: str, round_number: int, index: int) -> str:
    """A child execution's name: the reconcile's, its round and place (at most 80 characters
    of [A-Za-z0-9_-]; a long reconcile name keeps its start and a hash of the whole)."""
    base = safe_name(reconcile)
    if len(base) > 60:
        base = f"{base[:51]}-{hashlib.sha256(reconcile.encode()).hexdigest()[:8]}"
    return f"{base}-{round_number:03d}-{index:02d}"


# ---------------------------------------------------------------------------------- status
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
