"""The group policy, pure: who may be a member of which group, decided by the hub.

A VPC's group tag is only a request. The hub's policy (a JSON document in SSM Parameter Store,
``GroupPolicyParameterName``) names each group that may have members and, for each, the
accounts and regions its members may be in, the CIDRs they may bring, who may be a hub, and how
many members it may have. A group the policy does not name has no members; a policy that cannot
be read or is invalid closes every group, and then nothing about groups changes (``closed``).

Nothing here calls AWS: ``read`` turns the parameter's text (or its absence) into a
``PolicyState``, ``admit`` turns what the tags ask for into the members the policy admits and
the refusals, each naming the rule and the value.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from .errors import InvalidInput
from .groups import Member, VpcKey
from .models.messages import parse
from .models.vocabulary import AccountId, GroupName, Region, _Strict
from .observed import Vpc

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block ({exc})") from exc


Cidr = Annotated[str, AfterValidator(_cidr)]


class GroupRule(_Strict):
    """One group's entry in the policy."""

    accounts: list[AccountId] = Field(min_length=1)
    #: Default: every managed region.
    regions: list[Region] | None = None
    #: Every CIDR a member routes must lie inside one of these. Default: AllowedPeerCidrs.
    cidrs: list[Cidr] | None = None
    join: Literal["auto", "approval"] = "auto"
    #: Accounts whose VPCs may carry vpc-peering:hub in this group. Default: Accounts.
    hub_accounts: list[AccountId] | None = None
    max_members: int | None = Field(default=None, ge=1)
    #: Routes narrower than the members' existing routes (prefix lists included) are allowed.
    allow_more_specific_routes: bool = False


class GroupPolicy(_Strict):
    """The document in SSM: ``{"Groups": {"<group>": {...}}}``."""

    groups: dict[str, GroupRule]

    @field_validator("groups")
    @classmethod
    def _names(cls, value: dict[str, GroupRule]) -> dict[str, GroupRule]:
        for name in value:
            GroupNameCheck.model_validate({"Name": name})
        return value


class GroupNameCheck(_Strict):
    name: GroupName


@dataclass(frozen=True)
class PolicyState:
    """The policy as Discover read it: the document, or why every group is closed."""

    parameter: str
    policy: GroupPolicy | None = None
    #: Why there is no usable policy (every group closed; nothing about groups changes).
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.policy is not None

    def closed_line(self) -> str:
        """The one line a reconcile says when the policy cannot be used."""
        return (
            f"group policy {self.parameter}: {self.problem}; every group is closed, and no "
            "group peering is created, changed or removed until it is fixed"
        )


def read(parameter: str, text: str | None) -> PolicyState:
    """The policy from the parameter's value (None: no such parameter); never raises: a
    problem closes every group and is named (the field and its value)."""
    if text is None:
        return PolicyState(parameter, problem="the parameter does not exist")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return PolicyState(parameter, problem=f"not JSON ({exc})")
    try:
        policy = parse(GroupPolicy, data)
    except InvalidInput as exc:
        return PolicyState(parameter, problem=_first(str(exc)))
    return PolicyState(parameter, policy=policy)


def _first(message: str) -> str:
    """The first problem of a validation message (they are joined by '; ')."""
    return message.split("; ")[0]


def approvals_of(stored: Mapping[str, Mapping[str, object]]) -> dict[tuple[str, VpcKey], Approval]:
    """The decisions as the hub stores them (``group|account|region|vpc`` -> fields); an entry
    that is not understood is left out (its VPC then waits for a decision again)."""
    found: dict[tuple[str, VpcKey], Approval] = {}
    for key, fields in stored.items():
        parts = key.split("|")
        decision = fields.get("Decision")
        cidrs = fields.get("Cidrs") or []
        if len(parts) != 4 or decision not in ("approved", "denied") or not isinstance(cidrs, list):
            continue
        group, account, region, vpc_id = parts
        found[(group, VpcKey(account, region, vpc_id))] = Approval(
            decision,
            tuple(str(c) for c in cidrs),
            str(fields.get("By") or ""),
            str(fields.get("At") or ""),
        )
    return found


def open_policy(groups: Iterable[str], accounts: Iterable[str]) -> GroupPolicy:
    """A policy that admits every VPC of ``accounts`` into ``groups`` (tests, demos, and the
    policy `vpc-peering` prints from the current tags)."""
    return GroupPolicy(groups={g: GroupRule(accounts=sorted(set(accounts))) for g in groups})


@dataclass(frozen=True)
class Refusal:
    """A VPC the policy keeps out of a group, and the rule and value that do."""

    group: str
    key: VpcKey
    cause: str


@dataclass(frozen=True)
class Approval:
    """A hub admin's decision on a VPC's join request (``vpc-peering approve``/``deny``): for
    an approval, the CIDRs it pins."""

    decision: Literal["approved", "denied"]
    cidrs: tuple[str, ...] = ()
    by: str = ""
    at: str = ""


#: (group, VPC) -> the decision recorded in the hub.
Approvals = Mapping[tuple[str, VpcKey], Approval]


@dataclass(frozen=True)
class JoinRequest:
    """A VPC asking to join a group whose policy says ``"Join": "approval"``, with the CIDRs
    an approval would pin."""

    group: str
    key: VpcKey
    cidrs: tuple[str, ...]


@dataclass
class Admission:
    members: dict[VpcKey, Member] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    pending: list[JoinRequest] = field(default_factory=list)
    #: Approved members whose CIDRs grew since: not members until approved again, but their
    #: group peerings (routing the approved CIDRs) stay.
    held: set[tuple[str, VpcKey]] = field(default_factory=set)


def networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def inside(cidr: str, allowed: Iterable[Network]) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    return any(net.version == a.version and net.subnet_of(a) for a in allowed)  # type: ignore[arg-type]


def _problem(
    group: str,
    rule: GroupRule,
    role: str,
    key: VpcKey,
    vpc: Vpc | None,
    managed_regions: frozenset[str],
    allowed_peer_cidrs: list[Network],
) -> str | None:
    """Why this VPC may not be a member of ``group`` in ``role`` (mesh, hub, spoke), or None."""
    where = f"Groups.{group}"
    if key.account_id not in rule.accounts:
        return f"account {key.account_id} is not in {where}.Accounts"
    if role == "hub":
        hubs = rule.hub_accounts if rule.hub_accounts is not None else rule.accounts
        if key.account_id not in hubs:
            return f"account {key.account_id} is not in {where}.HubAccounts (vpc-peering:hub)"
    regions = rule.regions if rule.regions is not None else sorted(managed_regions)
    if key.region not in regions:
        return f"region {key.region} is not in {where}.Regions"
    if rule.cidrs is not None:
        allowed, named = networks(rule.cidrs), f"{where}.Cidrs"
    else:
        allowed, named = allowed_peer_cidrs, "AllowedPeerCidrs"
    for cidr in vpc.cidr_blocks if vpc else []:
        if not inside(cidr, allowed):
            return f"{cidr} is not inside {named}"
    return None


def admit(
    asked: Mapping[VpcKey, Member],
    vpcs: Mapping[VpcKey, Vpc],
    state: PolicyState,
    managed_regions: frozenset[str],
    allowed_peer_cidrs: list[Network],
    current: Mapping[str, set[VpcKey]],
    approvals: Approvals | None = None,
) -> Admission:
    """The members the policy admits (each with the roles it refuses taken off), and a
    refusal for each role refused. ``current``: each group's members now (the VPCs of its live
    group peerings), who keep their places first when a group has MaxMembers."""
    admission = Admission()
    policy = state.policy
    if policy is None:
        return admission  # closed: said once by the caller, not for every VPC
    kept: dict[VpcKey, Member] = {}
    for key, member in sorted(asked.items()):
        roles = {"mesh": member.mesh, "hub": member.hub, "spoke": member.spoke}
        for role, group in roles.items():
            if group is None:
                continue
            rule = policy.groups.get(group)
            if rule is None:
                cause: str | None = f"group {group} is not in the group policy"
            else:
                cause = _problem(
                    group, rule, role, key, vpcs.get(key), managed_regions, allowed_peer_cidrs
                )
            if cause is not None:
                admission.refused.append(Refusal(group, key, cause))
                roles[role] = None
            elif rule is not None and rule.join == "approval":
                vpc = vpcs.get(key)
                cidrs = tuple(vpc.cidr_blocks) if vpc else ()
                decision = (approvals or {}).get((group, key))
                if decision is None:
                    # Nothing is made for it until approved.
                    admission.pending.append(JoinRequest(group, key, cidrs))
                    roles[role] = None
                elif decision.decision == "denied":
                    admission.refused.append(Refusal(group, key, _denied(group, decision)))
                    roles[role] = None
                elif not set(cidrs) <= set(decision.cidrs):
                    # A CIDR added since the approval: asked again, its approved pairs kept.
                    admission.pending.append(JoinRequest(group, key, cidrs))
                    admission.held.add((group, key))
                    roles[role] = None
        kept[key] = replace(member, mesh=roles["mesh"], hub=roles["hub"], spoke=roles["spoke"])
    _limit_members(policy, kept, current, admission)
    admission.members = {k: m for k, m in kept.items() if m.groups}
    return admission


def _denied(group: str, decision: Approval) -> str:
    by = f" by {decision.by}" if decision.by else ""
    at = f" at {decision.at}" if decision.at else ""
    return f"its request to join group {group} was denied{by}{at} (vpc-peering deny)"


def _limit_members(
    policy: GroupPolicy,
    kept: dict[VpcKey, Member],
    current: Mapping[str, set[VpcKey]],
    admission: Admission,
) -> None:
    """MaxMembers: the group's members now keep their places; newcomers fill what is left, in
    order of their keys; the rest are refused."""
    for group, rule in sorted(policy.groups.items()):
        if rule.max_members is None:
            continue
        members = [k for k, m in kept.items() if group in m.groups]
        now = current.get(group, set())
        ordered = sorted(members, key=lambda k: (k not in now, k))
        for key in ordered[rule.max_members :]:
            admission.refused.append(
                Refusal(
                    group,
                    key,
                    f"group {group} is full: Groups.{group}.MaxMembers is {rule.max_members}",
                )
            )
            member = kept[key]
            kept[key] = replace(
                member,
                mesh=None if member.mesh == group else member.mesh,
                hub=None if member.hub == group else member.hub,
                spoke=None if member.spoke == group else member.spoke,
            )
