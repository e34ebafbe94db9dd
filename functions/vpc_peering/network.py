"""The reconcile machine's decisions, pure: from what EC2 shows in every managed account and
region, the pairs the groups want, what each needs (nothing, a create, a repair), the group
peerings no group wants any more, and the rounds to do it in.

Nothing here calls AWS. Each pair is judged by the create machine's own planner
(``planning.plan_pair``) on the data read once per account and region, so a pair the create
machine would refuse (overlap, conflict, quota, accept policy) is reported without starting it,
and a pair the create machine would find complete is left alone without starting it.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from . import group_policy, ownership, planning, policy, states, traffic
from .actions import ACTIONS, Action, clip
from .errors import (
    GROUP_POLICY_INVALID,
    AcceptDenied,
    CidrOverlap,
    InvalidInput,
    PeeringError,
    PeeringExists,
)
from .groups import (
    TAG_ACCEPT_FROM,
    TAG_ALLOW,
    Member,
    Pair,
    VpcKey,
    Wanted,
    allow_rules,
    membership,
    options,
    pair_of,
    wanted_pairs,
)
from .models.documents import PeeringDocument
from .models.network import ReconcileFailure, ReconcileIgnored, ReconcileSkip
from .models.requests import (
    CleanupRequest,
    CreateRequest,
    SecurityGroupRuleRequest,
    SideRefInput,
    SideRequest,
)
from .models.vocabulary import TAG_PEERING_ID, Location, SideName
from .observed import (
    Peering,
    PeeringSide,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    SideView,
    Vpc,
)
from .settings import Settings
from .sides import incoming_view, resolve_sides

#: Items of one round at most: the round's Map runs them MaxParallelPairs at a time, and
#: its output (one result per item) stays far below Step Functions' 256 KB.
MAX_ROUND_ITEMS = 40
#: vpc-peering:allow rules one VPC's security groups may ask for, all groups together (EC2's
#: default is 60 inbound rules per security group; these travel in the plan, once per side).
MAX_ALLOW_RULES = 20


def failure(exc: Exception, **subject: str | None) -> ReconcileFailure:
    """One VPC's, pair's or location's failure: a domain error by its name; anything else (a
    bug, or an input no rule foresaw) as InternalError, its type and text clipped."""
    if isinstance(exc, PeeringError):
        return ReconcileFailure(error=exc.name, cause=clip(str(exc)), **subject)
    return ReconcileFailure(
        error="InternalError", cause=clip(f"{type(exc).__name__}: {exc}"), **subject
    )


@dataclass
class LocationView:
    """What EC2 shows in one account and region, read once for the whole network."""

    location: Location
    vpcs: list[Vpc] = field(default_factory=list)  # VPCs carrying a group tag
    route_tables: list[RouteTable] = field(default_factory=list)  # of those VPCs
    peerings: list[Peering] = field(default_factory=list)  # every peering EC2 shows here
    #: Security groups carrying vpc-peering:allow, and the ingress rules this stack tagged.
    allow_groups: list[SecurityGroup] = field(default_factory=list)
    rules: list[SecurityGroupRule] = field(default_factory=list)
    #: Why the account and region could not be read (a domain error; anything else is an
    #: InternalError)
    error: Exception | None = None

    def key(self, vpc_id: str) -> VpcKey:
        return VpcKey(self.location.account_id, self.location.region, vpc_id)

    def failure(self) -> tuple[str, str]:
        """Why this location could not be read: the error's name, and a cause naming it."""
        error = self.error
        assert error is not None
        if isinstance(error, PeeringError):
            return error.name, clip(f"{self.location} could not be read ({error})")
        text = f"{type(error).__name__}: {error}"
        return "InternalError", clip(f"{self.location} could not be read ({text})")


@dataclass(frozen=True)
class Scope:
    """What one reconcile acts on: everything, one group's pairs, one VPC's pairs, or (started
    by tag changes) the groups of the VPCs whose tags changed."""

    group: str | None = None
    vpc: VpcKey | None = None
    #: The VPCs whose tags changed: the scope is their groups (``groups``, resolved from what
    #: EC2 shows: the groups their tags name now, and those of their group peerings).
    changed: frozenset[VpcKey] | None = None
    groups: frozenset[str] | None = None

    def wants(self, pair: Pair, groups: Iterable[str]) -> bool:
        if self.vpc is not None and self.vpc not in pair:
            return False
        if self.groups is not None and not self.groups & set(groups):
            return False
        return self.group is None or self.group in set(groups)

    def lists_refusal(self, key: VpcKey, group: str) -> bool:
        """Whether a refusal is this reconcile's to list."""
        if self.vpc is not None:
            return key == self.vpc
        if self.group is not None:
            return group == self.group
        if self.changed is not None:
            return key in self.changed or group in (self.groups or ())
        return True

    def wants_incoming(self, accepter: VpcKey) -> bool:
        """Whether a request made elsewhere to ``accepter`` is in scope."""
        if self.group is not None or (self.vpc is not None and self.vpc != accepter):
            return False
        return self.changed is None or accepter in self.changed


@dataclass(frozen=True)
class WorkItem:
    action: Action
    requester: VpcKey
    accepter: VpcKey
    group: str
    peering_id: str | None = None
    #: Why: what is missing, which tag asks for it, or why a peering goes.
    reason: str = field(default="", compare=False)
    #: A removal of a peering that is already gone (deleted by hand): only its routes are left.
    gone: bool = field(default=False, compare=False)
    #: Accepter-only mode: the requester CIDRs accepted (pinned), for the child to route.
    accept_cidrs: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.requester} ~ {self.accepter}"


@dataclass
class NetworkPlan:
    members: dict[VpcKey, Member] = field(default_factory=dict)
    work: list[WorkItem] = field(default_factory=list)
    desired: int = 0
    unchanged: int = 0
    failed: list[ReconcileFailure] = field(default_factory=list)
    skipped: list[ReconcileSkip] = field(default_factory=list)
    ignored: list[ReconcileIgnored] = field(default_factory=list)
    #: Removals of live group peerings held back by the removal guard (hold_removals).
    removals_held: list[WorkItem] = field(default_factory=list)
    #: Memberships the group policy refuses (the policy working, not failures).
    refused: list[group_policy.Refusal] = field(default_factory=list)
    #: Every refusal, in scope or not (what has been announced is kept for all of them).
    all_refused: list[group_policy.Refusal] = field(default_factory=list)
    #: Join requests waiting for approval (in scope; and all of them).
    pending: list[group_policy.JoinRequest] = field(default_factory=list)
    all_pending: list[group_policy.JoinRequest] = field(default_factory=list)
    #: The one line said when the group policy cannot be used (every group closed).
    policy_closed: str | None = None
    #: Groups whose policy says AllowMoreSpecificRoutes.
    narrowing: list[str] = field(default_factory=list)


def hold_removals(plan: NetworkPlan, limit: int, confirmed: bool) -> None:
    """The guard on mass removals: when the plan would remove more live group peerings than
    ``limit`` (MaxRemovalsPerReconcile), none of them is removed (unless ``confirmed``): they
    move to ``removals_held``. A peering already gone whose routes are left is not counted (its
    cleanup removes nothing that carries traffic)."""
    removals = [w for w in plan.work if w.action == "remove" and not w.gone]
    if confirmed or len(removals) <= limit:
        return
    held = set(map(id, removals))
    plan.work = [w for w in plan.work if id(w) not in held]
    plan.removals_held = removals


def side_key(info: PeeringSide) -> VpcKey:
    return VpcKey(info.owner_id, info.region, info.vpc_id)


def _peering_pair(peering: Peering) -> Pair:
    return pair_of(side_key(peering.requester), side_key(peering.accepter))


def _where(key: VpcKey) -> tuple[str, str]:
    return (key.account_id, key.region)


class _Network:
    """The observations, indexed: members, tables by VPC, peerings as their requester sees them."""

    def __init__(self, views: list[LocationView], settings: Settings) -> None:
        self.settings = settings
        self.readable = {
            (v.location.account_id, v.location.region) for v in views if v.error is None
        }
        self.unreadable = {
            (v.location.account_id, v.location.region): v for v in views if v.error is not None
        }
        #: Requests to a VPC in scope whose requester's location could not be read: whether
        #: this stack made them is not known, so nothing is decided for them.
        self.undecided: list[Peering] = []
        self.vpcs: dict[VpcKey, Vpc] = {}
        self.tables: dict[VpcKey, list[RouteTable]] = {}
        #: Security groups tagged vpc-peering:allow, by VPC and by id; this stack's rules by
        #: the peering they were made for.
        self.allow_groups: dict[VpcKey, list[SecurityGroup]] = {}
        self.groups_by_id: dict[str, SecurityGroup] = {}
        self.rules_of: dict[str, list[SecurityGroupRule]] = {}
        self.seen_at: dict[tuple[str, str], list[Peering]] = {}
        by_id: dict[str, Peering] = {}
        for view in views:
            where = (view.location.account_id, view.location.region)
            self.seen_at[where] = view.peerings
            for vpc in view.vpcs:
                self.vpcs[view.key(vpc.vpc_id)] = vpc
            for table in view.route_tables:
                self.tables.setdefault(view.key(table.vpc_id), []).append(table)
            for group in view.allow_groups:
                self.allow_groups.setdefault(view.key(group.vpc_id), []).append(group)
                self.groups_by_id[group.group_id] = group
            for rule in view.rules:
                peering_id = rule.tags.get(TAG_PEERING_ID, "")
                if ownership.made_for_peering(rule.tags, settings, peering_id):
                    self.rules_of.setdefault(peering_id, []).append(rule)
            for peering in view.peerings:
                # Tags are read where they were written: in the requester's account and region.
                if (peering.requester.owner_id, peering.requester.region) == where:
                    by_id[peering.peering_id] = peering
        self.peerings = sorted(by_id.values(), key=lambda p: p.peering_id)
        self.of_pair: dict[Pair, list[Peering]] = {}
        for peering in self.peerings:
            self.of_pair.setdefault(_peering_pair(peering), []).append(peering)
        self.incoming = self._incoming(views, by_id)

    def _incoming(self, views: list[LocationView], by_id: dict[str, Peering]) -> list[Peering]:
        """Requests made elsewhere to a VPC in scope, as our (the accepter's) account sees
        them: those this stack accepted (its tag on our view), and pending ones this stack
        did not request."""
        found: dict[str, Peering] = {}
        for view in views:
            where = (view.location.account_id, view.location.region)
            for peering in view.peerings:
                if (peering.accepter.owner_id, peering.accepter.region) != where:
                    continue
                accepter = peering.accepter.vpc_id
                if _where(side_key(peering.requester)) in self.unreadable:
                    if ownership.accepted_here(peering.tags, self.settings, accepter) or (
                        peering.status == states.PENDING
                    ):
                        self.undecided.append(peering)
                    continue
                requested = by_id.get(peering.peering_id)
                ours = requested is not None and ownership.owned_by_stack(
                    requested.tags, self.settings
                )
                if ownership.accepted_here(peering.tags, self.settings, accepter) or (
                    peering.status == states.PENDING and not ours
                ):
                    found[peering.peering_id] = peering
        return sorted(found.values(), key=lambda p: p.peering_id)

    def readable_side(self, key: VpcKey) -> bool:
        return (key.account_id, key.region) in self.readable

    def view_of(self, key: VpcKey, hide: set[str]) -> SideView:
        """What plan_pair needs of one side, as read at its location; routes to the peerings
        in ``hide`` left out (this reconcile removes them first)."""
        tables = [
            replace(t, routes=[r for r in t.routes if r.peering_id not in hide])
            for t in self.tables.get(key, [])
        ]
        here = self.seen_at.get((key.account_id, key.region), [])
        peerings = [p for p in here if p.live and p.involves(key.vpc_id)]
        return SideView(self.vpcs.get(key), tables, {}, peerings)

    def routes_to(self, peering_id: str, keys: Iterable[VpcKey]) -> bool:
        return any(
            route.peering_id == peering_id
            for key in keys
            for table in self.tables.get(key, [])
            for route in table.routes
        )


def plan_network(
    views: list[LocationView],
    scope: Scope,
    settings: Settings,
    policy_state: group_policy.PolicyState,
    approvals: group_policy.Approvals | None = None,
) -> NetworkPlan:
    """Everything a reconcile will do, from what EC2 showed and the hub's group policy (and
    nothing else). A VPC's group tags only ask: the policy decides who is a member. Without a
    usable policy every group is closed and no group peering is created, changed or removed
    (accepter-only mode goes on: the group policy does not govern it)."""
    net = _Network(views, settings)
    plan = NetworkPlan()
    for view in views:
        if view.error is not None:
            name, cause = view.failure()
            plan.failed.append(
                ReconcileFailure(location=str(view.location), error=name, cause=cause)
            )
    # Each VPC, each pair and each peering is planned on its own: whatever one of them raises
    # is its own failure, and the plan of every other goes on.
    frozen = _ask_membership(net, plan)
    admission = group_policy.admit(
        plan.members,
        net.vpcs,
        policy_state,
        settings.managed_regions,
        group_policy.networks(settings.allowed_peer_cidrs),
        _current_members(net),
        approvals,
    )
    if not policy_state.usable:
        plan.policy_closed = policy_state.closed_line()
        if plan.members or _group_peerings(net):
            plan.failed.append(
                ReconcileFailure(error=GROUP_POLICY_INVALID, cause=clip(plan.policy_closed))
            )
    # Without a usable policy there are no members (admit admits none), and the removals
    # below are not planned: every group peering is left as it is.
    asked = plan.members
    plan.members = admission.members
    if policy_state.policy is not None:
        plan.narrowing = sorted(
            g for g, rule in policy_state.policy.groups.items() if rule.allow_more_specific_routes
        )
    wanted = wanted_pairs(plan.members.values())
    if scope.changed is not None:
        scope = replace(scope, groups=_groups_of(net, asked, scope.changed))
    plan.all_refused = admission.refused
    plan.all_pending = admission.pending
    plan.pending = [p for p in admission.pending if scope.lists_refusal(p.key, p.group)]
    plan.refused = [r for r in admission.refused if scope.lists_refusal(r.key, r.group)]
    candidates: list[_Candidate] = []
    for pair, want in sorted(wanted.items()):
        if scope.wants(pair, want.groups):
            plan.desired += 1
            try:
                candidate = _plan_wanted(net, plan, want)
            except Exception as exc:  # isolated: that pair's failure
                label = f"{pair[0]} ~ {pair[1]}"
                plan.failed.append(failure(exc, pair=label, group=want.group, action="create"))
                continue
            if candidate is not None:
                candidates.append(candidate)
    candidates += _plan_incoming(net, plan, frozen, scope)
    _fit_together(net, plan, candidates)
    if policy_state.usable:
        refusals = {(r.key, r.group): r.cause for r in admission.refused}
        # An approved member asked again (its CIDRs grew) keeps its approved pairs as they are.
        held = {(g, k) for g, k in admission.held}
        _plan_removals(net, plan, wanted, frozen, scope, refusals, held)
    return plan


def _ask_membership(net: _Network, plan: NetworkPlan) -> set[VpcKey]:
    """Each VPC's request to be a member (its group tags, its security groups' allow rules),
    into ``plan.members``; a VPC whose tags cannot be read is its own failure and is frozen
    (left exactly as it is). Returns the frozen VPCs."""
    frozen: set[VpcKey] = set()
    for key, vpc in sorted(net.vpcs.items()):
        try:
            member = membership(key, vpc.tags)
            if member is not None:
                member = replace(member, allows=tuple(_allow_rules(net, key)))
        except Exception as exc:  # isolated: that VPC's failure
            frozen.add(key)
            plan.failed.append(failure(exc, vpc=str(key)))
            continue
        if member is not None:
            plan.members[key] = member
    return frozen


def _allow_rules(net: _Network, key: VpcKey) -> list[str]:
    """The rules a VPC's security groups tagged vpc-peering:allow ask for, at most
    MAX_ALLOW_RULES (every side's rules travel in the reconcile's plan)."""
    allows = [
        rule
        for group in sorted(net.allow_groups.get(key, []), key=lambda g: g.group_id)
        for rule in allow_rules(group.group_id, group.tags[TAG_ALLOW])
    ]
    if len(allows) > MAX_ALLOW_RULES:
        raise InvalidInput(
            f"{TAG_ALLOW}: the security groups of {key.vpc_id} ask for {len(allows)} "
            f"rules, more than {MAX_ALLOW_RULES} (every side's rules travel in the "
            "reconcile's plan); use a port range, or fewer tagged groups"
        )
    return allows


def _current_members(net: _Network) -> dict[str, set[VpcKey]]:
    """Each group's members now: the VPCs of its live group peerings."""
    current: dict[str, set[VpcKey]] = {}
    for peering, group in _group_peerings(net):
        if peering.live:
            current.setdefault(group, set()).update(_peering_pair(peering))
    return current


def _group_peerings(net: _Network) -> list[tuple[Peering, str]]:
    """The group peerings, each with its group (one whose tags cannot be read is left out
    here: its removal planning reports it)."""
    found = []
    for peering in net.peerings:
        try:
            group = ownership.group_of(peering.tags, net.settings)
        except Exception:  # isolated: _plan_removals names it as that peering's failure
            group = None
        if group:
            found.append((peering, group))
    return found


def _groups_of(
    net: _Network, members: dict[VpcKey, Member], vpcs: frozenset[VpcKey]
) -> frozenset[str]:
    """The groups these VPCs are in now, and those of their group peerings (the groups they
    may have left)."""
    found = {g for k in vpcs if k in members for g in members[k].groups}
    for peering in net.peerings:
        group = ownership.group_of(peering.tags, net.settings)
        if group and {side_key(peering.requester), side_key(peering.accepter)} & vpcs:
            found.add(group)
    return frozenset(found)


class PlannedSide(NamedTuple):
    """A side as a child's input needs it: where the VPC is, its tags' options, and the rules
    its security groups' vpc-peering:allow tags ask (``groups.allow_rules``: "group sg proto
    from to" each)."""

    account_id: str
    region: str
    vpc_id: str
    route_tables: str = "all"
    dns: bool = False
    allows: tuple[str, ...] = ()

    @property
    def key(self) -> VpcKey:
        return VpcKey(self.account_id, self.region, self.vpc_id)


def side_request(side: PlannedSide, narrower: bool = False) -> SideRequest:
    """A request side: where the VPC is, and its tags' options; ``narrower``: the group
    policy's AllowMoreSpecificRoutes (never a member's tag)."""
    return SideRequest.model_validate(
        {
            "VpcId": side.vpc_id,
            "AccountId": side.account_id,
            "Region": side.region,
            "RouteTables": side.route_tables,
            "DnsResolution": side.dns,
            "AllowMoreSpecificRoutes": narrower,
        }
    )


def pair_request(
    requester: PlannedSide, accepter: PlannedSide, group: str, narrower: bool = False
) -> CreateRequest:
    """The create machine's input for a group pair (Discover plans with it, and starts the
    create machine with it): with the rules the sides' vpc-peering:allow tags ask for the
    group, from the peer VPC; ``narrower``: the group's AllowMoreSpecificRoutes."""
    return CreateRequest(
        requester=side_request(requester, narrower),
        accepter=side_request(accepter, narrower),
        group=group,
        security_group_rules=[
            SecurityGroupRuleRequest(
                side=name,
                group_id=group_id,
                protocol=protocol,
                from_port=int(low),
                to_port=int(high),
                source="PeerVpc",
            )
            for name, side in (("Requester", requester), ("Accepter", accepter))
            for rule_group, group_id, protocol, low, high in (a.split() for a in side.allows)
            if rule_group == group
        ],
    )


def incoming_request(
    requester: PlannedSide,
    accepter: PlannedSide,
    peering_id: str,
    accept_cidrs: list[str] | None = None,
) -> CreateRequest:
    """The create machine's input for a request made elsewhere (accepter-only mode): the
    requester as EC2 reports it, our side with its VPC's options, the requester CIDRs pinned."""
    external = SideRequest(
        vpc_id=requester.vpc_id, account_id=requester.account_id, region=requester.region
    )
    return CreateRequest(
        requester=external,
        accepter=side_request(accepter),
        accept_incoming=peering_id,
        accept_cidrs=accept_cidrs,
    )


def _side_ref(side: PlannedSide) -> SideRefInput:
    return SideRefInput(vpc_id=side.vpc_id, account_id=side.account_id, region=side.region)


def incoming_removal_request(
    accepter: PlannedSide, peering_id: str, reject: bool = False
) -> CleanupRequest:
    """The cleanup machine's input for a request made elsewhere: looked up in our account and
    region only (the requester's is never read); ``reject``: one the policy refuses."""
    return CleanupRequest(
        vpc_peering_connection_id=peering_id, accepter=_side_ref(accepter), reject=reject
    )


def removal_request(
    requester: PlannedSide, accepter: PlannedSide, peering_id: str, group: str | None = None
) -> CleanupRequest:
    """The cleanup machine's input for a group peering (both sides say where to look; the
    group says the removal is the group's own, not an explicit cleanup)."""
    return CleanupRequest(
        vpc_peering_connection_id=peering_id,
        requester=_side_ref(requester),
        accepter=_side_ref(accepter),
        group=group,
    )


def planned_side(member: Member | None, key: VpcKey) -> PlannedSide:
    if member is None:
        return PlannedSide(key.account_id, key.region, key.vpc_id)
    return PlannedSide(
        key.account_id,
        key.region,
        key.vpc_id,
        member.route_tables,
        member.dns,
        tuple(member.allows),
    )


def child_input(
    item: WorkItem, members: dict[VpcKey, Member], narrowing: Iterable[str] = ()
) -> CreateRequest | CleanupRequest:
    """The input of the child execution that does ``item``: the create or cleanup machine's
    request, built once, by Discover; ``narrowing``: the groups whose policy says
    AllowMoreSpecificRoutes."""
    requester = planned_side(members.get(item.requester), item.requester)
    accepter = planned_side(members.get(item.accepter), item.accepter)
    peering_id = item.peering_id or ""
    match item.action:
        case "remove":
            return removal_request(requester, accepter, peering_id, item.group or None)
        case "remove-incoming" | "reject":
            return incoming_removal_request(accepter, peering_id, item.action == "reject")
        case "accept" | "repair-incoming":
            cidrs = list(item.accept_cidrs) if item.accept_cidrs is not None else None
            return incoming_request(requester, accepter, peering_id, cidrs)
        case _:
            return pair_request(requester, accepter, item.group, item.group in set(narrowing))


def _requester_first(a: Member, b: Member, settings: Settings) -> tuple[Member, Member]:
    """Who requests a new peering: a side whose account the accept policy trusts, if only one
    is (the other side then accepts it); otherwise the pair's first."""
    trusted = settings.trusted_requester_account_ids
    if a.key.account_id not in trusted and b.key.account_id in trusted:
        return b, a
    return a, b


@dataclass
class _Candidate:
    """A wanted pair as Discover judged it: its work (None: unchanged), and its plan."""

    pair: Pair
    item: WorkItem
    doc: PeeringDocument
    unchanged: bool = False


def _plan_wanted(net: _Network, plan: NetworkPlan, want: Wanted) -> _Candidate | None:
    """One wanted pair: complete, or a create or a repair, with its plan; None when it is left
    alone (peered by someone else) or the create machine would refuse it (a failure now)."""
    req, acc = _requester_first(
        plan.members[want.pair[0]], plan.members[want.pair[1]], net.settings
    )
    label = f"{req.key} ~ {acc.key}"
    # In tag mode either VPC may end up the accepter: the opt-in is asked of both.
    try:
        for member in (req, acc):
            vpc = net.vpcs.get(member.key)
            policy.check_opt_in(member.key.vpc_id, vpc.tags if vpc else {}, label, net.settings)
    except AcceptDenied as exc:
        plan.failed.append(
            ReconcileFailure(
                pair=label, group=want.group, action="create", error=exc.name, cause=str(exc)
            )
        )
        return None
    request = pair_request(
        planned_side(req, req.key),
        planned_side(acc, acc.key),
        want.group,
        want.group in plan.narrowing,
    )
    peerings = net.of_pair.get(want.pair, [])
    # A group peering deleted by hand leaves blackhole routes to it, which a new peering's
    # routes would collide with: its cleanup runs first (a round before the create).
    dead = [
        p
        for p in peerings
        if p.status in states.GONE
        and ownership.group_of(p.tags, net.settings)
        and net.routes_to(p.peering_id, want.pair)
    ]
    hide = {p.peering_id for p in dead}
    try:
        sides = resolve_sides(request, net.settings)
        views: dict[SideName, SideView] = {
            "Requester": net.view_of(req.key, hide),
            "Accepter": net.view_of(acc.key, hide),
        }
        doc = planning.plan_pair(request, sides, views, net.settings, ("reconcile", ""))
    except PeeringExists as exc:
        plan.skipped.append(
            ReconcileSkip(
                pair=label,
                group=want.group,
                vpc_peering_connection_id=next((p.peering_id for p in peerings if p.live), None),
                reason=str(exc),
            )
        )
        return None
    except PeeringError as exc:
        plan.failed.append(
            ReconcileFailure(
                pair=label, group=want.group, action="create", error=exc.name, cause=str(exc)
            )
        )
        return None
    if doc.vpc_peering_connection_id is not None:
        existing = next(
            (p for p in peerings if p.peering_id == doc.vpc_peering_connection_id), None
        )
        differences = planning.drift(doc, existing) if existing is not None else []
        if existing is not None:
            differences += _rules_drift(net, request, doc, existing.peering_id)
        reason = "; ".join(differences) or "the peering is not as its plan asks"
        item = WorkItem("repair", req.key, acc.key, want.group, reason=reason)
        unchanged = existing is not None and not differences
        return _Candidate(want.pair, item, doc, unchanged)
    for gone in dead:
        requester, accepter = side_key(gone.requester), side_key(gone.accepter)
        plan.work.append(
            WorkItem(
                "remove",
                requester,
                accepter,
                want.group,
                gone.peering_id,
                reason=f"{gone.peering_id} is {gone.status}: its routes are left, removed before "
                "the pair is peered again",
                gone=True,
            )
        )
    reason = f"no peering yet; {asked_by(plan.members, want.pair, want.group)}"
    return _Candidate(
        want.pair, WorkItem("create", req.key, acc.key, want.group, reason=reason), doc
    )


def _rules_drift(
    net: _Network, request: CreateRequest, doc: PeeringDocument, peering_id: str
) -> list[str]:
    """How the pair's security-group rules differ from those its tags ask (vpc-peering:allow):
    read once per account and region like the rest, so an unchanged pair starts nothing."""
    of_peering = net.rules_of.get(peering_id, [])
    if not request.security_group_rules and not of_peering:
        return []
    asked = traffic.plan_rules(request, doc, net.groups_by_id, traffic.routed_by_side(doc))
    return traffic.rules_drift(asked, net.groups_by_id, of_peering)


def _roles(member: Member | None, group: str) -> list[str]:
    if member is None:
        return []
    tags = (("mesh", member.mesh), ("hub", member.hub), ("spoke", member.spoke))
    return [f"vpc-peering:{name}={group}" for name, value in tags if value == group]


def asked_by(members: dict[VpcKey, Member], pair: Pair, group: str) -> str:
    """Which tags ask for this pair in ``group``, said for a person."""
    a, b = (", ".join(_roles(members.get(k), group)) for k in pair)
    if a == b:
        return f"{a} on both VPCs"
    return f"{a} on {pair[0].vpc_id}, {b} on {pair[1].vpc_id}"


def unwanted_because(members: dict[VpcKey, Member], pair: Pair, group: str) -> str:
    """Why no group wants a group peering any more, said for a person."""
    gone = [k.vpc_id for k in pair if not _roles(members.get(k), group)]
    if gone:
        return f"{' and '.join(gone)} no longer tagged into group {group}"
    return f"group {group} no longer pairs these VPCs ({asked_by(members, pair, group)})"


def _doc_key(doc: PeeringDocument, name: SideName) -> VpcKey:
    side = doc.side(name)
    return VpcKey(side.account_id, side.region, side.vpc_id)


class _Fit:
    """What the pairs of one reconcile claim together, checked one pair at a time: each pair
    was planned against EC2 as it is, but together they must still fit. A VPC cannot route to
    two peers whose CIDRs overlap (which one gets the traffic would depend on which pair ran
    first), and the quotas hold: peerings per VPC, routes per table."""

    def __init__(self, net: _Network, settings: Settings) -> None:
        self.settings = settings
        live = [p for p in net.peerings if p.live]
        live += [
            p for p in net.incoming if p.live and p.peering_id not in {q.peering_id for q in live}
        ]
        self.peerings = Counter(
            k for p in live for k in (side_key(p.requester), side_key(p.accepter))
        )
        self.routes = {t.route_table_id: len(t.routes) for ts in net.tables.values() for t in ts}
        self.claims: dict[VpcKey, list[tuple[Any, VpcKey]]] = {}

    def _destinations(self, doc: PeeringDocument) -> list[tuple[VpcKey, VpcKey, str]]:
        """(VPC, its peer, destination) of every route of the pair."""
        keys = {name: _doc_key(doc, name) for name in ("Requester", "Accepter")}
        other = {"Requester": keys["Accepter"], "Accepter": keys["Requester"]}
        return sorted({(keys[r.side], other[r.side], r.destination) for r in doc.routes})

    def problem(self, candidate: _Candidate) -> tuple[str, str] | None:
        """Why this pair cannot be added to the others (error name, cause), or None."""
        for key, peer, destination in self._destinations(candidate.doc):
            net = ipaddress.ip_network(destination)
            for claimed, claimer in self.claims.get(key, []):
                if claimer != peer and claimed.version == net.version and claimed.overlaps(net):
                    return "RouteConflict", (
                        f"{key} would route {destination} to {peer} and {claimed} to {claimer}: "
                        "two peers of one VPC with overlapping CIDRs (the first pair is kept)"
                    )
        if candidate.item.action in ("create", "accept"):
            quota = self.settings.max_peerings_per_vpc
            for key in candidate.pair:
                if self.peerings[key] + 1 > quota:
                    return "QuotaExceeded", (
                        f"{key} would have {self.peerings[key] + 1} peering connections with the "
                        f"ones this reconcile adds; the quota is {quota} (MaxPeeringsPerVpc)"
                    )
        for table_id, count in self._new_routes(candidate).items():
            if self.routes.get(table_id, 0) + count > self.settings.max_routes_per_table:
                return "QuotaExceeded", (
                    f"route table {table_id} would have {self.routes.get(table_id, 0) + count} "
                    f"routes with the ones this reconcile adds; the quota is "
                    f"{self.settings.max_routes_per_table} (MaxRoutesPerTable)"
                )
        return None

    @staticmethod
    def _new_routes(candidate: _Candidate) -> Counter[str]:
        return Counter(
            r.route_table_id
            for r in candidate.doc.routes
            if r.state == "planned" and r.route_table_id
        )

    def add(self, candidate: _Candidate) -> None:
        for key, peer, destination in self._destinations(candidate.doc):
            self.claims.setdefault(key, []).append((ipaddress.ip_network(destination), peer))
        if candidate.item.action in ("create", "accept"):
            self.peerings.update(candidate.pair)
        for table_id, count in self._new_routes(candidate).items():
            self.routes[table_id] = self.routes.get(table_id, 0) + count


def _fit_together(net: _Network, plan: NetworkPlan, candidates: list[_Candidate]) -> None:
    """Pairs already complete first, then repairs, then creates, each in a fixed order: a pair
    that does not fit with those before it is a failure now, not a surprise in its create."""
    fit = _Fit(net, net.settings)
    order = {"repair": 1, "repair-incoming": 1, "create": 2, "accept": 2}
    ranked = sorted(
        candidates,
        key=lambda c: (0 if c.unchanged else order[c.item.action], c.item.group, c.item.label),
    )
    for candidate in ranked:
        item = candidate.item
        try:
            if candidate.unchanged:
                fit.add(candidate)
                plan.unchanged += 1
                continue
            problem = fit.problem(candidate)
        except Exception as exc:  # isolated: that pair's failure
            plan.failed.append(failure(exc, pair=item.label, group=item.group, action=item.action))
            continue
        if problem:
            plan.failed.append(
                ReconcileFailure(
                    pair=item.label,
                    group=item.group,
                    action=item.action,
                    error=problem[0],
                    cause=problem[1],
                )
            )
            continue
        fit.add(candidate)
        plan.work.append(candidate.item)


def _plan_incoming(
    net: _Network, plan: NetworkPlan, frozen: set[VpcKey], scope: Scope
) -> list[_Candidate]:
    """Accepter-only mode: each request made elsewhere to a VPC in scope is accepted (or kept,
    or repaired) when the double opt-in allows it and the create machine's planner would route
    our side; one this stack accepted that is no longer wanted, or that its requester deleted,
    is removed; any other stays as it is, listed as Ignored with the reason (or is rejected,
    with RejectUnwanted)."""
    candidates = []
    for peering in net.incoming + net.undecided:
        req, acc = side_key(peering.requester), side_key(peering.accepter)
        if not scope.wants_incoming(acc):
            continue
        if acc in frozen:
            continue  # its tags are invalid: reported, and left as it is
        if peering in net.undecided:
            if peering.live:
                name, cause = net.unreadable[_where(req)].failure()
                plan.failed.append(
                    ReconcileFailure(
                        pair=f"{req} ~ {acc}",
                        action="accept",
                        error=name,
                        cause=clip(
                            f"{cause}: whether this stack requested "
                            f"{peering.peering_id} is not known; left as it is"
                        ),
                    )
                )
            continue
        try:
            candidate = _plan_one_incoming(net, plan, peering, scope)
        except Exception as exc:  # isolated: that request's failure
            label = f"{req} ~ {acc}"
            plan.failed.append(failure(exc, pair=label, action="accept"))
            continue
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _plan_one_incoming(
    net: _Network, plan: NetworkPlan, peering: Peering, scope: Scope
) -> _Candidate | None:
    req, acc = side_key(peering.requester), side_key(peering.accepter)
    vpc = net.vpcs.get(acc)
    tags = vpc.tags if vpc else {}
    ours = ownership.accepted_here(peering.tags, net.settings, acc.vpc_id)
    pcx = peering.peering_id
    if not peering.live:
        if ours and net.routes_to(pcx, [acc]):
            plan.work.append(
                WorkItem(
                    "remove-incoming",
                    req,
                    acc,
                    "",
                    pcx,
                    reason=f"{pcx} is {peering.status}: its routes on our side are left",
                    gone=True,
                )
            )
        return None
    try:
        policy.check_incoming(peering, tags, net.settings)
        policy.check_opt_in(acc.vpc_id, tags, pcx, net.settings)
    except AcceptDenied as refused:
        _refused(plan, peering, ours, str(refused), net.settings, may_reject(net, peering, tags))
        return None
    plan.desired += 1
    return _plan_accept(net, plan, peering, vpc, ours, scope)


def _refused(
    plan: NetworkPlan,
    peering: Peering,
    ours: bool,
    reason: str,
    settings: Settings,
    rejectable: bool = False,
) -> None:
    """A request the policy does not (or no longer) allows: removed if this stack accepted it,
    rejected with RejectUnwanted when ``rejectable`` (see ``may_reject``), else left pending
    and listed."""
    req, acc = side_key(peering.requester), side_key(peering.accepter)
    if ours:
        plan.work.append(WorkItem("remove-incoming", req, acc, "", peering.peering_id, reason))
    elif settings.reject_unwanted and rejectable:
        plan.work.append(WorkItem("reject", req, acc, "", peering.peering_id, reason))
    else:
        plan.ignored.append(_ignored(peering, reason))


def may_reject(net: _Network, peering: Peering, accepter_tags: dict[str, str]) -> bool:
    """RejectUnwanted rejects only requests into VPCs that take part in accepter-only mode
    (tagged vpc-peering:accept-from), never one another stack manages (its managed-by tag,
    wherever it is seen): other teams' and other stacks' requests are left to them."""
    if TAG_ACCEPT_FROM not in accepter_tags:
        return False
    seen = [peering.tags]
    requested = next((p for p in net.peerings if p.peering_id == peering.peering_id), None)
    if requested is not None:
        seen.append(requested.tags)
    return not any(ownership.managed_by_another(t, net.settings) for t in seen)


def _ignored(peering: Peering, reason: str) -> ReconcileIgnored:
    return ReconcileIgnored(
        vpc_peering_connection_id=peering.peering_id,
        requester=str(side_key(peering.requester)),
        accepter=str(side_key(peering.accepter)),
        status=peering.status,
        reason=reason,
    )


def accepted_cidrs(peering: Peering, ours: bool, retag: bool) -> tuple[list[str], bool]:
    """The requester CIDRs to route for a request in accepter-only mode, and whether that pin is
    new. Pinned at acceptance (the accepted-cidrs tag on our view of the peering): a CIDR the
    requester adds later is not routed until the VPC's accept-from tag is set again (``retag``:
    this reconcile was started by a tag change of that VPC), when every CIDR it reports is
    pinned again. A request not accepted yet, or accepted before pins existed, pins what it
    reports now."""
    reported = [*peering.requester.cidr_blocks, *peering.requester.ipv6_cidr_blocks]
    recorded = ownership.pinned_cidrs(peering.tags) if ours else None
    if recorded is None or retag:
        return sorted(set(reported)), recorded != set(reported)
    return sorted(recorded), False


def _plan_accept(
    net: _Network,
    plan: NetworkPlan,
    peering: Peering,
    vpc: Vpc | None,
    ours: bool,
    scope: Scope,
) -> _Candidate | None:
    """A wanted request, judged by the create machine's planner in accepter-only mode: our
    side's routes (to the CIDRs pinned at acceptance), conflicts and quotas; a requester whose
    CIDRs overlap ours is Ignored."""
    req, acc = side_key(peering.requester), side_key(peering.accepter)
    pcx = peering.peering_id
    label = f"{req} ~ {acc}"
    retag = scope.changed is not None and acc in scope.changed
    pin, pin_changed = accepted_cidrs(peering, ours, retag)
    try:
        route_tables, dns = options(vpc.tags if vpc else {})
        our_side = PlannedSide(acc.account_id, acc.region, acc.vpc_id, route_tables, dns)
        request = incoming_request(planned_side(None, req), our_side, pcx, pin)
        sides = resolve_sides(request, net.settings)
        ours_view = net.view_of(acc, set())
        views: dict[SideName, SideView] = {
            "Requester": incoming_view(pcx, sides, ours_view, pin),
            "Accepter": ours_view,
        }
        doc = planning.plan_pair(request, sides, views, net.settings, ("reconcile", ""))
    except CidrOverlap as exc:
        plan.ignored.append(_ignored(peering, str(exc)))
        return None
    except PeeringError as exc:
        plan.failed.append(
            ReconcileFailure(pair=label, action="accept", error=exc.name, cause=str(exc))
        )
        return None
    if ours and peering.status == states.ACTIVE:
        differences = planning.drift(doc, peering)
        if pin_changed:
            differences.append(f"accepted CIDRs to pin: {' '.join(pin) or 'none'}")
        item = WorkItem(
            "repair-incoming",
            req,
            acc,
            "",
            pcx,
            reason="; ".join(differences),
            accept_cidrs=tuple(pin),
        )
        return _Candidate((req, acc), item, doc, not differences)
    reason = (
        f"requested from {req.account_id}, which the accept policy and the VPC's "
        "vpc-peering:accept-from tag allow"
    )
    item = WorkItem("accept", req, acc, "", pcx, reason, accept_cidrs=tuple(pin))
    return _Candidate((req, acc), item, doc)


def _plan_removals(
    net: _Network,
    plan: NetworkPlan,
    wanted: dict[Pair, Wanted],
    frozen: set[VpcKey],
    scope: Scope,
    refusals: dict[tuple[VpcKey, str], str],
    held: set[tuple[str, VpcKey]],
) -> None:
    """Group peerings no group wants: removed when both sides are in scope and neither VPC's
    tags are invalid; a peering without this stack's group tag is never a candidate (made by
    hand, or by an explicit create). Each peering is decided on its own."""
    for peering in net.peerings:
        try:
            _plan_removal(net, plan, peering, wanted, frozen, scope, refusals, held)
        except Exception as exc:  # isolated: that peering's failure
            label = f"{side_key(peering.requester)} ~ {side_key(peering.accepter)}"
            plan.failed.append(failure(exc, pair=label, action="remove"))


def _plan_removal(
    net: _Network,
    plan: NetworkPlan,
    peering: Peering,
    wanted: dict[Pair, Wanted],
    frozen: set[VpcKey],
    scope: Scope,
    refusals: dict[tuple[VpcKey, str], str],
    held: set[tuple[str, VpcKey]],
) -> None:
    """One group peering. Its requester's location was read (its tags are read there); when
    its accepter's could not be, the peering is removed only if the requester's VPC is in no
    group at all (no tag the accepter may carry could want the pair): from the requester's
    side, its routes there and the peering; the accepter's routes are left as blackholes that
    a later reconcile removes once it can read them. Otherwise it is that location's failure:
    never removed because a location could not be read."""
    group = ownership.group_of(peering.tags, net.settings)
    pair = _peering_pair(peering)
    if group is None or pair in wanted or not scope.wants(pair, [group]):
        return
    keys = (side_key(peering.requester), side_key(peering.accepter))
    if not peering.live and not net.routes_to(peering.peering_id, keys):
        return  # gone, and nothing left that points to it
    if any(k in frozen for k in keys):
        return  # its tags are invalid: reported above, and left as it is
    if any((group, k) in held for k in keys):
        return  # approved before, asked again for a new CIDR: its approved routes stay
    label = f"{keys[0]} ~ {keys[1]}"
    unread = [net.unreadable[w] for w in map(_where, keys) if w in net.unreadable]
    if unread and keys[0] in plan.members:
        name, cause = unread[0].failure()
        plan.failed.append(
            ReconcileFailure(
                pair=label,
                group=group,
                action="remove",
                error=name,
                cause=clip(
                    f"{cause}: whether a group still wants the pair is not known; left "
                    "as it is until it can be read"
                ),
            )
        )
        return
    if not unread and not all(net.readable_side(k) for k in keys):
        plan.skipped.append(
            ReconcileSkip(
                pair=label,
                group=group,
                vpc_peering_connection_id=peering.peering_id,
                reason="a side is outside AllowedAccountIds x ManagedRegions: left until both "
                "can be read",
            )
        )
        return
    refused = [refusals[(k, group)] for k in keys if (k, group) in refusals]
    if peering.live and refused:
        reason = f"the group policy no longer admits it: {refused[0]}"
    elif peering.live:
        reason = unwanted_because(plan.members, pair, group)
    else:
        reason = f"{peering.peering_id} is {peering.status}: its routes are left"
    plan.work.append(
        WorkItem(
            "remove",
            keys[0],
            keys[1],
            group,
            peering.peering_id,
            reason=reason,
            gone=not peering.live,
        )
    )


# ------------------------------------------------------------------------------ rounds
def schedule(work: list[WorkItem], max_items: int = MAX_ROUND_ITEMS) -> list[list[WorkItem]]:
    """Rounds in which no two items share a VPC (so no two executions race on one VPC's route
    tables), at most ``max_items`` each: removals first (they free routes and quota), then
    creates and repairs. Items are taken in the order of the round-robin tournament over the
    VPCs involved, which makes a full mesh of N VPCs take N-1 rounds (N even) or N (N odd),
    the fewest possible; a sparser graph takes fewer."""
    removals = [w for w in work if ACTIONS[w.action].frees]
    others = [w for w in work if not ACTIONS[w.action].frees]
    return _rounds(removals, max_items) + _rounds(others, max_items)


def _rounds(items: list[WorkItem], max_items: int) -> list[list[WorkItem]]:
    keys = sorted({k for w in items for k in (w.requester, w.accepter)})
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys) + len(keys) % 2  # the circle method needs an even count
    half = pow(2, -1, n - 1) if n > 2 else 1

    def tournament_round(w: WorkItem) -> int:
        i, j = sorted((index[w.requester], index[w.accepter]))
        if n <= 2:
            return 0
        if j == n - 1:
            return i
        return ((i + j) * half) % (n - 1)

    rounds: list[list[WorkItem]] = []
    busy: list[set[VpcKey]] = []
    for item in sorted(items, key=lambda w: (tournament_round(w), w.label)):
        pair = {item.requester, item.accepter}
        for number, used in enumerate(busy):
            if not used & pair and len(rounds[number]) < max_items:
                break
        else:
            number = len(rounds)
            rounds.append([])
            busy.append(set())
        rounds[number].append(item)
        busy[number] |= pair
    return rounds
