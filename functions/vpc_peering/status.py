"""The network as an operator sees it (pure): from what the hub read in every managed account
and region, each group's members and the state of each pair it wants, and every peering this
stack manages. The state of a pair is what the reconcile would do about it (one home for that
judgement: ``network.plan_network``), said as a state."""

from __future__ import annotations

from . import states
from .errors import GROUP_POLICY_DENIED, GROUP_POLICY_INVALID, PeeringError
from .group_policy import Approvals, PolicyState
from .groups import Member, VpcKey, membership, wanted_pairs
from .models.network import (
    CandidateState,
    NetworkStatus,
    PairState,
    StatusCandidate,
    StatusPair,
    StatusPeering,
    StatusVpc,
)
from .models.vocabulary import TAG_GROUP
from .network import LocationView, NetworkPlan, Scope, plan_network
from .observed import Peering, PeeringSide, Vpc
from .ownership import accepted_here, owned_by_stack
from .settings import Settings

#: What the reconcile's action on a pair says of the pair's state now.
STATE_OF_ACTION: dict[str, PairState] = {"create": "missing", "repair": "repair"}


def network_status(
    views: list[LocationView],
    settings: Settings,
    policy_state: PolicyState,
    approvals: Approvals | None = None,
    group: str | None = None,
    tagged: bool = False,
) -> NetworkStatus:
    """Every group's members and pairs (or one group's), and every managed peering, judged as
    the reconcile judges them (the hub's group policy and approvals included); ``tagged``: also
    every VPC whose tags name a group, whatever the policy says. A VPC tagged into a group
    that does not admit it is listed with why (``NotAdmitted``)."""
    plan = plan_network(views, Scope(group=group), settings, policy_state, approvals)
    vpcs = {
        VpcKey(v.location.account_id, v.location.region, vpc.vpc_id): vpc
        for v in views
        for vpc in v.vpcs
    }
    members = {k: m for k, m in plan.members.items() if group is None or group in m.groups}
    status = NetworkStatus(
        accounts=sorted({v.location.account_id for v in views}),
        regions=sorted({v.location.region for v in views}),
        vpcs=[_vpc(key, vpcs.get(key), member) for key, member in sorted(members.items())],
        failed=[f for f in plan.failed if group is None or f.group in (None, group)],
        pending_approval=plan.ignored if group is None else [],
        not_admitted=_not_admitted(plan, vpcs, policy_state, group),
        group_policy=plan.policy_closed,
    )
    for key, member in sorted(members.items()):
        for name in sorted(member.groups):
            status.groups.setdefault(name, []).append(str(key))
    peerings = _peerings(views, settings)
    status.peerings = [_peering(p, vpcs) for p in peerings]
    if tagged:
        status.tagged = _tagged(vpcs)
    live = {frozenset((_key(p.requester), _key(p.accepter))): p for p in peerings}
    for pair, want in sorted(wanted_pairs(plan.members.values()).items()):
        if group is not None and group not in want.groups:
            continue
        status.pairs.append(_pair(pair, sorted(want.groups), plan, live.get(frozenset(pair))))
    return status


def _asked(key: VpcKey, vpc: Vpc) -> Member | None:
    """The groups a VPC's tags ask for, or None (none, or invalid tags: the reconcile lists
    those as failures)."""
    try:
        member = membership(key, vpc.tags)
    except PeeringError:
        return None
    return member if member is not None and member.groups else None


def _tagged(vpcs: dict[VpcKey, Vpc]) -> list[StatusVpc]:
    """Every VPC whose tags name a group, as its tags ask."""
    found = []
    for key, vpc in sorted(vpcs.items()):
        member = _asked(key, vpc)
        if member is not None:
            found.append(_vpc(key, vpc, member))
    return found


def _not_admitted(
    plan: NetworkPlan, vpcs: dict[VpcKey, Vpc], policy_state: PolicyState, group: str | None
) -> list[StatusCandidate]:
    """Each VPC tagged into a group that is not its member, once per group: refused by the
    policy (its causes), waiting for approval, or shut out because the policy cannot be used
    (every tagged VPC then)."""
    found: dict[tuple[str, VpcKey, str], StatusCandidate] = {}

    def add(name: str, key: VpcKey, state: CandidateState, error: str | None, cause: str) -> None:
        if group not in (None, name):
            return
        known = found.get((name, key, state))
        if known is not None:  # several roles refused in one group: one entry, every cause
            if cause not in known.cause.split("; "):
                known.cause = f"{known.cause}; {cause}"
            return
        vpc = vpcs.get(key)
        member = _asked(key, vpc) if vpc else None
        row = _vpc(key, vpc, member)
        found[(name, key, state)] = StatusCandidate(
            **row.model_dump(exclude={"groups"}),
            groups=[r for r in row.groups if r.split(":", 1)[1] == name],
            group=name,
            state=state,
            error=error,
            cause=cause,
        )

    if not policy_state.usable:
        for key, vpc in sorted(vpcs.items()):
            asked = _asked(key, vpc)
            for name in sorted(asked.groups if asked else ()):
                add(name, key, "refused", GROUP_POLICY_INVALID,
                    f"the group policy cannot be used ({policy_state.problem})")  # fmt: skip
    for refusal in plan.refused:
        add(refusal.group, refusal.key, "refused", GROUP_POLICY_DENIED, refusal.cause)
    for request in plan.pending:
        add(request.group, request.key, "pending approval", None,
            f"asks to join with {', '.join(request.cidrs) or 'no CIDR'}; "
            "vpc-peering approve or deny decides")  # fmt: skip
    return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1], k[2]))]


def _key(side: PeeringSide) -> VpcKey:
    return VpcKey(side.owner_id, side.region, side.vpc_id)


def _vpc(key: VpcKey, vpc: Vpc | None, member: Member | None) -> StatusVpc:
    roles = (
        []
        if member is None
        else [
            f"{role}:{name}"
            for role, name in (("mesh", member.mesh), ("hub", member.hub), ("spoke", member.spoke))
            if name
        ]
    )
    return StatusVpc(
        vpc_id=key.vpc_id,
        account_id=key.account_id,
        region=key.region,
        name=vpc.tags.get("Name") if vpc else None,
        cidr_blocks=[*vpc.cidr_blocks, *vpc.ipv6_cidr_blocks] if vpc else [],
        groups=roles,
    )


def _peerings(views: list[LocationView], settings: Settings) -> list[Peering]:
    """The live peerings this stack manages: made or adopted (its tag where the requester
    wrote it), or accepted in accepter-only mode (its tag on our view), once each."""
    found: dict[str, Peering] = {}
    for view in views:
        where = (view.location.account_id, view.location.region)
        for peering in view.peerings:
            if not peering.live:
                continue
            requester_here = (peering.requester.owner_id, peering.requester.region) == where
            accepter_here = (peering.accepter.owner_id, peering.accepter.region) == where
            if (requester_here and owned_by_stack(peering.tags, settings)) or (
                accepter_here and accepted_here(peering.tags, settings, peering.accepter.vpc_id)
            ):
                found.setdefault(peering.peering_id, peering)
    return sorted(found.values(), key=lambda p: p.peering_id)


def _peering(peering: Peering, vpcs: dict[VpcKey, Vpc]) -> StatusPeering:
    def side(info: PeeringSide) -> StatusVpc:
        vpc = vpcs.get(_key(info))
        return StatusVpc(
            vpc_id=info.vpc_id,
            account_id=info.owner_id,
            region=info.region,
            name=vpc.tags.get("Name") if vpc else None,
            cidr_blocks=[*info.cidr_blocks, *info.ipv6_cidr_blocks],
        )

    return StatusPeering(
        vpc_peering_connection_id=peering.peering_id,
        status=peering.status,
        requester=side(peering.requester),
        accepter=side(peering.accepter),
        name=peering.tags.get("Name"),
        group=peering.tags.get(TAG_GROUP),
    )


def _pair(
    pair: tuple[VpcKey, VpcKey], groups: list[str], plan: NetworkPlan, peering: Peering | None
) -> StatusPair:
    keys = frozenset(pair)
    row = StatusPair(
        requester=str(pair[0]),
        accepter=str(pair[1]),
        groups=groups,
        state="active",
        vpc_peering_connection_id=peering.peering_id if peering else None,
        peering_status=peering.status if peering else None,
    )
    labels = {f"{pair[0]} ~ {pair[1]}", f"{pair[1]} ~ {pair[0]}"}
    failure = next((f for f in plan.failed if f.pair in labels), None)
    if failure is not None:
        row.state, row.detail = "failed", f"{failure.error}: {failure.cause}"
        return row
    skip = next((s for s in plan.skipped if s.pair in labels), None)
    if skip is not None:
        row.state, row.detail = "refused", skip.reason
        return row
    work = next((w for w in plan.work if frozenset((w.requester, w.accepter)) == keys), None)
    if work is not None:
        row.state, row.detail = _state_of(work.action, peering), work.reason
    elif peering is not None and peering.status != states.ACTIVE:
        row.state = "pending"
    return row


def _state_of(action: str, peering: Peering | None) -> PairState:
    if peering is not None and peering.status != states.ACTIVE:
        return "pending"
    return STATE_OF_ACTION.get(action, "repair")
