"""Pure rules for traffic across a peering beyond routes: the security-group rules a create
asks for (checked, planned, converged), their verification, and the warnings Verify gives
about what may still stop traffic (network ACLs, no rule admitting the peer, no flow logs).

Nothing here calls AWS: it decides from what EC2 showed (``observed``) and the document.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from . import ownership, planning
from .errors import InvalidInput
from .models.documents import Check, PeeringDocument, SecurityGroupRuleEntry, Side, TrafficWarning
from .models.requests import CreateRequest, port_label
from .models.vocabulary import SideName
from .observed import (
    NetworkAcl,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    TrafficView,
    Vpc,
)
from .settings import Settings

SIDES: tuple[SideName, SideName] = ("Requester", "Accepter")
#: EC2's last network ACL rule, shown as ``*``: it denies what no other rule allows.
DEFAULT_ACL_RULE = 32767


def peer_of(name: SideName) -> SideName:
    return "Accepter" if name == "Requester" else "Requester"


# ----------------------------------------------------------------------------- the request
def check_sources(request: CreateRequest, sides: Mapping[SideName, Side]) -> None:
    """What is wrong with the requested rules before anything is read: a rule on a side this
    stack never acts on, or a reference to a peer's group across regions (AWS references a
    peer VPC's security group only within one region)."""
    for index, rule in enumerate(request.security_group_rules):
        side, peer = sides[rule.side], sides[peer_of(rule.side)]
        where = f"SecurityGroupRules[{index}]"
        if side.external:
            raise InvalidInput(
                f"{where}.Side: {rule.side} is an external requester's VPC ({side.vpc_id}); "
                "this stack never changes anything there"
            )
        if rule.source != "PeerVpc" and peer.external:
            raise InvalidInput(
                f"{where}.Source: {rule.source} would be a security group of an external "
                f"requester's VPC ({peer.vpc_id}), which this stack never reads; use "
                '"Source": "PeerVpc"'
            )
        if rule.source != "PeerVpc" and side.region != peer.region:
            raise InvalidInput(
                f"{where}.Source: {rule.source} is a security group of the peer VPC "
                f"{peer.vpc_id} in {peer.region}, but {rule.side} {side.vpc_id} is in "
                f"{side.region}: AWS lets a rule reference a peer VPC's security group only when "
                'both VPCs are in the same region; use "Source": "PeerVpc" (the peer\'s CIDRs) '
                "instead"
            )


def plan_rules(
    request: CreateRequest,
    doc: PeeringDocument,
    groups: Mapping[str, SecurityGroup],
    routed: Mapping[SideName, list[str]],
) -> list[SecurityGroupRuleEntry]:
    """The EC2 rules the request asks for: each group must be one of its side's VPC, each
    source group one of the peer VPC; a ``PeerVpc`` source is one rule per CIDR of the peer
    that the side routes to the peering (``routed``). Sides follow the document's (EC2's)
    roles, which may be the request's the other way round."""
    by_vpc = {doc.side(name).vpc_id: name for name in SIDES}
    named = {"Requester": request.requester.vpc_id, "Accepter": request.accepter.vpc_id}
    entries: list[SecurityGroupRuleEntry] = []
    for index, rule in enumerate(request.security_group_rules):
        name = by_vpc[named[rule.side]]
        side, peer = doc.side(name), doc.side(peer_of(name))
        where = f"SecurityGroupRules[{index}]"
        _check_group(groups.get(rule.group_id), rule.group_id, side, f"{where}.GroupId")
        if rule.source != "PeerVpc":
            _check_group(groups.get(rule.source), rule.source, peer, f"{where}.Source")
        assert rule.from_port is not None
        assert rule.to_port is not None
        cidrs: list[str | None] = list(routed[name]) if rule.source == "PeerVpc" else [None]
        for cidr in cidrs:
            entry = SecurityGroupRuleEntry(
                side=name,
                group_id=rule.group_id,
                protocol=rule.protocol,
                from_port=rule.from_port,
                to_port=rule.to_port,
                source=rule.source,
                cidr=cidr,
            )
            if entry.key not in {e.key for e in entries}:
                entries.append(entry)
    return entries


def _check_group(group: SecurityGroup | None, group_id: str, side: Side, field: str) -> None:
    if group is None or group.vpc_id != side.vpc_id:
        found = f"it is in {group.vpc_id}" if group else f"not found in {side.location}"
        raise InvalidInput(
            f"{field}: {group_id} is not a security group of {side.vpc_id} ({found})"
        )


def routed_by_side(doc: PeeringDocument) -> dict[SideName, list[str]]:
    """The peer CIDRs each side routes to the peering (what a PeerVpc source admits)."""
    routed: dict[SideName, list[str]] = {}
    for name in SIDES:
        peer = doc.side(peer_of(name))
        peer_vpc = Vpc(peer.vpc_id, peer.account_id, peer.cidr_blocks, peer.ipv6_cidr_blocks, {})
        routed[name] = planning.destinations(doc.side(name), name, peer_vpc)
    return routed


def rules_drift(
    asked: Iterable[SecurityGroupRuleEntry],
    groups: Mapping[str, SecurityGroup],
    of_peering: Iterable[SecurityGroupRule],
) -> list[str]:
    """How a peering's rules differ from those asked, for a person: an asked rule missing
    from its group (``groups``, as DescribeSecurityGroups shows them: a rule someone else made
    counts, as the create machine reuses it), and this peering's rules (``of_peering``, tagged
    for it) no longer asked."""
    wanted = list(asked)
    found = []
    for entry in wanted:
        group = groups.get(entry.group_id)
        if group is None or entry.key not in {rule.key for rule in group.ingress}:
            found.append(f"security group rule {entry.label} missing")
    keys = {entry.key for entry in wanted}
    found += [
        f"security group rule {rule.group_id} "
        f"{port_label(rule.protocol, rule.from_port, rule.to_port)} from "
        f"{rule.cidr or rule.referenced_group} no longer asked"
        for rule in of_peering
        if rule.key not in keys
    ]
    return found


def requested_group_ids(request: CreateRequest) -> dict[SideName, list[str]]:
    """The security groups the request names, by the side (as the request names it) where
    they must be: each rule's group on its side, a source group on the peer's."""
    ids: dict[SideName, list[str]] = {"Requester": [], "Accepter": []}
    for rule in request.security_group_rules:
        ids[rule.side].append(rule.group_id)
        if rule.source != "PeerVpc":
            ids[peer_of(rule.side)].append(rule.source)
    return {name: sorted(set(found)) for name, found in ids.items()}


# ------------------------------------------------------------------------- converging rules
def converge_rules(
    doc: PeeringDocument,
    existing: Iterable[SecurityGroupRule],
    of_peering: Iterable[SecurityGroupRule],
    settings: Settings,
) -> list[SecurityGroupRule]:
    """Mark each asked rule already in EC2 (``existing``: the asked groups' rules) as this
    execution's, this peering's or someone else's; return this peering's rules no longer
    asked (``of_peering``: the rules tagged for this peering), to be revoked. A rule made by
    someone else is never among them."""
    peering_id = doc.vpc_peering_connection_id or ""
    found = {rule.key: rule for rule in existing}
    for entry in doc.security_group_rules:
        if entry.state not in ("planned", "created", "present", "reused"):
            continue
        rule = found.get(entry.key)
        if rule is None:
            entry.state, entry.rule_id = "planned", None
        elif ownership.made_by_execution(rule.tags, settings, doc.execution_id):
            entry.state, entry.rule_id = "created", rule.rule_id
        elif ownership.made_for_peering(rule.tags, settings, peering_id):
            entry.state, entry.rule_id = "present", rule.rule_id
        else:
            entry.state, entry.rule_id = "reused", rule.rule_id
    asked = {e.key for e in doc.security_group_rules if e.state != "revoked"}
    return [
        rule
        for rule in of_peering
        if rule.key not in asked and ownership.made_for_peering(rule.tags, settings, peering_id)
    ]


def rule_tags(
    doc: PeeringDocument, entry: SecurityGroupRuleEntry, settings: Settings
) -> dict[str, str]:
    """What makes a rule provably this stack's, this execution's and this peering's."""
    peering_id = doc.vpc_peering_connection_id or ""
    return ownership.peering_resource_tags(
        settings, doc.execution_name, doc.execution_id, peering_id, entry.side
    )


def as_rule(entry: SecurityGroupRuleEntry) -> SecurityGroupRule:
    return SecurityGroupRule(
        group_id=entry.group_id,
        protocol=entry.protocol,
        from_port=entry.from_port,
        to_port=entry.to_port,
        cidr=entry.cidr,
        referenced_group=entry.referenced_group,
        rule_id=entry.rule_id,
    )


def revoked_entry(side: SideName, rule: SecurityGroupRule) -> SecurityGroupRuleEntry:
    return SecurityGroupRuleEntry(
        side=side,
        group_id=rule.group_id,
        protocol=rule.protocol,
        from_port=rule.from_port,
        to_port=rule.to_port,
        source="PeerVpc" if rule.cidr else rule.referenced_group or "",
        cidr=rule.cidr,
        rule_id=rule.rule_id,
        state="revoked",
    )


# ------------------------------------------------------------------------------ verification
def check_rules(doc: PeeringDocument, views: Mapping[SideName, TrafficView]) -> list[Check]:
    """Each asked rule is in its group, as EC2 shows the side's security groups."""
    checks = []
    for entry in doc.security_group_rules:
        if entry.state == "revoked" or entry.side not in views:
            continue
        there = {r.key for g in views[entry.side].groups for r in g.ingress}
        ok = entry.key in there
        checks.append(
            Check(
                subject=f"security group rule {entry.label}",
                ok=ok,
                detail=("allowed" if ok else "missing")
                + (" (someone else's rule)" if entry.state == "reused" else ""),
            )
        )
    return checks


# ---------------------------------------------------------------------------------- warnings
def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _overlaps(a: str, b: str) -> bool:
    x, y = _net(a), _net(b)
    return x.version == y.version and x.overlaps(y)


def _covers(outer: str, inner: str) -> bool:
    x, y = _net(outer), _net(inner)
    return x.version == y.version and y.subnet_of(x)  # type: ignore[arg-type]


def routed_cidrs(doc: PeeringDocument, name: SideName) -> list[str]:
    """The peer CIDRs this side routes to the peering."""
    return sorted({r.destination for r in doc.routes if r.side == name})


def routed_subnets(
    doc: PeeringDocument, name: SideName, tables: Mapping[str, RouteTable], acls: list[NetworkAcl]
) -> set[str]:
    """The subnets of this side whose route table has a route to the peering (a subnet with
    no explicit association uses the main table)."""
    vpc_id = doc.side(name).vpc_id
    mine = [t for t in tables.values() if t.vpc_id == vpc_id]
    routed = {r.route_table_id for r in doc.routes if r.side == name and r.route_table_id}
    explicit = {s for t in mine for s in t.subnet_ids}
    subnets = {s for t in mine if t.route_table_id in routed for s in t.subnet_ids}
    if any(t.main and t.route_table_id in routed for t in mine):
        every = {s for acl in acls if acl.vpc_id == vpc_id for s in acl.subnet_ids}
        subnets |= every - explicit
    return subnets


def acl_denial(acl: NetworkAcl, cidr: str, egress: bool) -> str | None:
    """How this ACL denies traffic with the peer CIDR in one direction, or None: its rules in
    order, the first that matches decides (a rule for some protocols or part of the CIDR lets
    the rest go on to the next one)."""
    for entry in sorted((e for e in acl.entries if e.egress == egress), key=lambda e: e.number):
        if not entry.cidr or not _overlaps(entry.cidr, cidr):
            continue
        if not entry.allow:
            number = "*" if entry.number == DEFAULT_ACL_RULE else str(entry.number)
            return f"rule {number} denies {entry.cidr}"
        if entry.protocol == "-1" and _covers(entry.cidr, cidr):
            return None
    return "no rule allows it, so the final rule (*) denies it"


def traffic_warnings(
    doc: PeeringDocument,
    views: Mapping[SideName, TrafficView],
    tables: Mapping[str, RouteTable],
) -> list[TrafficWarning]:
    """What may stop traffic across the peering though every check passed, side by side."""
    warnings: list[TrafficWarning] = []
    for name, side in doc.reachable():
        view, peer = views[name], doc.side(peer_of(name))
        cidrs = routed_cidrs(doc, name)
        warnings += _acl_warnings(doc, name, view, cidrs, tables)
        if not _admits_peer(view, views.get(peer_of(name)), cidrs):
            warnings.append(
                TrafficWarning(
                    kind="NoSecurityGroupRule",
                    side=name,
                    subject=side.vpc_id,
                    detail=f"no security group of {side.vpc_id} admits traffic from the peer "
                    f"{peer.vpc_id} ({', '.join(cidrs) or 'no CIDR routed'})",
                    advice="add a rule to the create's SecurityGroupRules "
                    f'({{"Side": "{name}", "GroupId": "sg-...", "Protocol": "tcp", '
                    '"FromPort": 443, "ToPort": 443, "Source": "PeerVpc"}), or vpc-peering '
                    f"create --allow {name}:sg-...:tcp:443",
                )
            )
        if not view.flow_logs:
            warnings.append(
                TrafficWarning(
                    kind="NoFlowLogs",
                    side=name,
                    subject=side.vpc_id,
                    detail=f"{side.vpc_id} has no flow logs: traffic across the peering (accepted "
                    "or rejected) is not recorded",
                    advice=f"aws ec2 create-flow-logs --resource-type VPC --resource-ids "
                    f"{side.vpc_id} --traffic-type ALL --log-destination-type cloud-watch-logs "
                    "--log-group-name <group> --deliver-logs-permission-arn <role>",
                )
            )
    return warnings


def _acl_warnings(
    doc: PeeringDocument,
    name: SideName,
    view: TrafficView,
    cidrs: list[str],
    tables: Mapping[str, RouteTable],
) -> list[TrafficWarning]:
    subnets = routed_subnets(doc, name, tables, view.acls)
    found = []
    for acl in view.acls:
        affected = sorted(subnets & set(acl.subnet_ids))
        if not affected:
            continue
        for cidr in cidrs:
            for egress in (False, True):
                denial = acl_denial(acl, cidr, egress)
                if denial is None:
                    continue
                way = "outbound to" if egress else "inbound from"
                flag = "--egress" if egress else "--ingress"
                found.append(
                    TrafficWarning(
                        kind="NetworkAcl",
                        side=name,
                        subject=acl.acl_id,
                        detail=f"network ACL {acl.acl_id} of routed subnet(s) "
                        f"{', '.join(affected)}: {way} the peer's {cidr}, {denial}",
                        advice=f"allow {cidr} in a rule numbered before it (aws ec2 "
                        f"create-network-acl-entry --network-acl-id {acl.acl_id} --rule-number "
                        f"<n> --protocol -1 --rule-action allow {flag} --cidr-block {cidr}); "
                        "network ACLs are stateless: allow both directions",
                    )
                )
    return found


def _admits_peer(view: TrafficView, peer: TrafficView | None, cidrs: list[str]) -> bool:
    peer_groups = {g.group_id for g in peer.groups} if peer else set()
    for group in view.groups:
        for rule in group.ingress:
            if rule.referenced_group and rule.referenced_group in peer_groups:
                return True
            if rule.cidr and any(_overlaps(rule.cidr, c) for c in cidrs):
                return True
    return False
