"""``status``: the network as the hub reads it, as text; ``list``'s rows from the same read.
Every string that came from AWS goes through :func:`render.safe` (``columns`` does it)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .network import NetworkView
from .render import Style, columns, safe
from .schedule import in_words

#: The error of a group policy that cannot be used (``vpc_peering.errors``).
GROUP_POLICY_INVALID = "GroupPolicyInvalid"

#: A pair's state in the matrix: its letter and what it means.
STATES = {
    "active": ("A", "active, routed both ways"),
    "pending": ("P", "pending"),
    "missing": ("M", "missing"),
    "repair": ("R", "needs repair"),
    "failed": ("F", "failed"),
    "refused": ("X", "refused"),
}


def vpc_key(vpc: dict[str, Any]) -> str:
    """How the status names a VPC in pairs and groups: ``vpc-id (account region)``."""
    return f"{vpc.get('VpcId')} ({vpc.get('AccountId')} {vpc.get('Region')})"


def status_lines(view: NetworkView, style: Style) -> list[str]:
    status = view.status
    vpcs = {vpc_key(v): v for v in status.get("Vpcs", [])}
    lines = [
        f"Network of stack {safe(view.stack_name)}, as the hub reads it with the stack's roles",
        f"  accounts {', '.join(map(safe, status.get('Accounts', [])))}; "
        f"regions {', '.join(map(safe, status.get('Regions', [])))}",
    ]
    pairs = status.get("Pairs", [])
    groups: dict[str, list[str]] = status.get("Groups") or {}
    outside = status.get("NotAdmitted") or []
    if status.get("GroupPolicy"):
        lines += ["", f"{style.bad} {safe(status['GroupPolicy'])}"]
    named = sorted(set(groups) | {str(c.get("Group")) for c in outside})
    if not named:
        lines += ["", "No VPC is tagged into a group (vpc-peering:mesh, :hub or :spoke)."]
    for group in named:
        lines += ["", *_group_lines(group, groups.get(group, []), vpcs, pairs, style)]
        lines += _not_admitted_lines(group, outside)
    explicit = [p for p in status.get("Peerings", []) if not p.get("Group")]
    if explicit:
        lines += ["", "Peerings made by explicit creates (in no group)", *peering_rows(explicit)]
    pending = status.get("PendingApproval", [])
    if pending:
        lines += ["", "Requests made elsewhere, pending approval (the accept policy)"]
        lines += columns(
            [str(i.get("VpcPeeringConnectionId")), f"{i.get('Requester')} -> {i.get('Accepter')}",
             str(i.get("Reason", ""))]
            for i in pending
        )  # fmt: skip
    for heading, failures in failure_sections(status):
        lines += ["", heading]
        for f in failures:
            lines.append(
                f"  {style.bad} {safe(failure_subject(f))}: {safe(f.get('Error'))}: "
                f"{safe(f.get('Cause'))}"
            )
    lines += ["", *_reconcile_lines(view)]
    return lines


#: The headings failures are listed under, by what failed (a pair's failure is on its group's
#: matrix, and listed here only when no group shown wants the pair).
FAILURE_HEADINGS = {
    "location": "Accounts and regions not read",
    "vpc": "VPCs whose tags are not valid",
    "policy": "Group policy",
    "pair": "Pairs that failed (in no group shown)",
    "other": "Other failures",
}


def failure_subject(failure: dict[str, Any]) -> str:
    return str(
        failure.get("Location") or failure.get("Vpc") or failure.get("Pair")
        or ("group policy" if failure.get("Error") == GROUP_POLICY_INVALID else "reconcile")
    )  # fmt: skip


def failure_sections(status: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The status's failures, each once, under a heading that fits it: what was not read, VPCs
    whose tags are wrong, the group policy (unless the status says it already), pairs no group
    shown has on its matrix, anything else."""
    shown = {
        label
        for p in status.get("Pairs", [])
        for label in (f"{p.get('Requester')} ~ {p.get('Accepter')}",
                      f"{p.get('Accepter')} ~ {p.get('Requester')}")
    }  # fmt: skip
    found: dict[str, list[dict[str, Any]]] = {}
    for f in status.get("Failed", []):
        if f.get("Location"):
            kind = "location"
        elif f.get("Vpc"):
            kind = "vpc"
        elif f.get("Pair"):
            if f["Pair"] in shown:
                continue  # on its group's matrix, with its cause
            kind = "pair"
        elif f.get("Error") == GROUP_POLICY_INVALID:
            if status.get("GroupPolicy"):
                continue  # said at the top, once
            kind = "policy"
        else:
            kind = "other"
        found.setdefault(kind, []).append(f)
    return [(FAILURE_HEADINGS[k], found[k]) for k in FAILURE_HEADINGS if k in found]


def _not_admitted_lines(group: str, outside: list[dict[str, Any]]) -> list[str]:
    """The VPCs tagged into ``group`` that are not its members, and why."""
    mine = [c for c in outside if c.get("Group") == group]
    if not mine:
        return []
    rows = [["VPC", "NAME", "ACCOUNT", "REGION", "CIDRS", "STATE"]]
    for c in mine:
        why = ": ".join(str(x) for x in (c.get("Error"), c.get("Cause")) if x)
        rows.append([
            str(c.get("VpcId")), str(c.get("Name") or "-"), str(c.get("AccountId", "")),
            str(c.get("Region", "")), ",".join(c.get("CidrBlocks", [])) or "-",
            f"{c.get('State')}" + (f" ({why})" if why else ""),
        ])  # fmt: skip
    return [
        f"  Tagged into {safe(group)}, not members ({len(mine)})",
        *columns(rows, indent="    "),
    ]


def _group_lines(
    group: str,
    members: list[str],
    vpcs: dict[str, dict[str, Any]],
    pairs: list[dict[str, Any]],
    style: Style,
) -> list[str]:
    mine = [p for p in pairs if group in p.get("Groups", [])]
    counts = Counter(p.get("State") for p in mine)
    said = ", ".join(f"{n} {STATES[s][1]}" for s, n in sorted(counts.items()) if s in STATES)
    size = f"{len(members)} VPC(s)" if members else "no member VPC"
    lines = [f"Group {safe(group)}: {size}, {len(mine)} pair(s)" + (f" ({said})" if said else "")]
    if not members:
        return lines
    rows = [["#", "VPC", "NAME", "ACCOUNT", "REGION", "CIDRS", "ROLE"]]
    for index, key in enumerate(members, 1):
        vpc = vpcs.get(key, {})
        roles = [r.split(":", 1)[0] for r in vpc.get("Groups", []) if r.split(":", 1)[-1] == group]
        rows.append([
            str(index), str(vpc.get("VpcId", key)), str(vpc.get("Name") or "-"),
            str(vpc.get("AccountId", "")), str(vpc.get("Region", "")),
            ",".join(vpc.get("CidrBlocks", [])) or "-", ",".join(roles),
        ])  # fmt: skip
    lines += columns(rows)
    state = {frozenset((p.get("Requester"), p.get("Accepter"))): p.get("State") for p in mine}
    matrix = [["", *(str(i) for i in range(1, len(members) + 1))]]
    for i, a in enumerate(members, 1):
        row = [str(i)]
        for b in members:
            if a == b:
                row.append("·" if style.unicode else "-")
            else:
                found = state.get(frozenset((a, b)))
                row.append(STATES[found][0] if found in STATES else " ")
        matrix.append(row)
    lines += ["", *columns(matrix, indent="    ")]
    lines.append("    " + "  ".join(f"{letter} {meaning}" for letter, meaning in STATES.values()))
    problems = [p for p in mine if p.get("State") not in ("active", None)]
    for p in problems:
        mark = style.bad if p.get("State") in ("failed", "refused") else "-"
        detail = f": {safe(p.get('Detail'))}" if p.get("Detail") else ""
        lines.append(
            f"  {mark} {safe(p.get('Requester'))} ~ {safe(p.get('Accepter'))} "
            f"{STATES.get(p.get('State', ''), ('', p.get('State')))[1]}{detail}"
        )
    return lines


def _execution_said(label: str, run: dict[str, Any]) -> str:
    """``<label>: <name> <STATUS>, started ..., ended ... (counts)`` and its error, if any."""
    ended = f", ended {run['StopDate']}" if run.get("StopDate") else ""
    said = f"{label}: {safe(run['Name'])} {safe(run['Status'])}, started {run['StartDate']}{ended}"
    report = run.get("Report") or {}
    counts = [f"{k} {report[k]}" for k in ("Desired", "Created", "Removed", "Repaired",
              "Unchanged", "FailedCount") if k in report]  # fmt: skip
    if report.get("DryRun"):
        counts.insert(0, "dry run")
    if counts:
        said += f" ({', '.join(counts)})"
    if run.get("Error"):
        said += f"\n  {safe(run['Error'])}: {safe(run.get('Cause') or '')}"
    return said


def _reconcile_lines(view: NetworkView, now: datetime | None = None) -> list[str]:
    last = view.last_reconcile or {}
    lines = [
        _execution_said("Last reconcile", last) if "Name" in last
        else "Last reconcile: none ended yet"
    ]  # fmt: skip
    running = last.get("Running")
    if running:
        lines.append(f"Running now: {safe(running['Name'])}, started {running['StartDate']}")
    if not view.schedule:
        lines.append("Sweep: none scheduled (ReconcileSchedule is empty)")
        return lines
    upcoming = view.next_sweep
    if upcoming is not None and upcoming.at is not None:
        when = upcoming.at.isoformat(timespec="minutes")
        soon = in_words(upcoming.at, now or datetime.now(UTC))
        next_said = f"next {when} ({soon})" if upcoming.exact else f"next about {when} ({soon})"
    else:
        next_said = f"next: cannot tell ({safe(upcoming.note) if upcoming else 'unknown'})"
    lines.append(
        f"Sweep: {safe(view.schedule)}, {next_said}; a full reconcile (tag changes start their own)"
    )
    lines.append(
        _execution_said("Last sweep", view.last_sweep) if view.last_sweep
        else "Last sweep: none yet"
    )  # fmt: skip
    return lines


LIST_HEADERS = ["ID", "STATE", "REQUESTER", "NAME", "ACCOUNT", "REGION", "ACCEPTER", "NAME",
                "ACCOUNT", "REGION", "PEERING NAME", "GROUP"]  # fmt: skip


def peering_rows(peerings: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    rows = [LIST_HEADERS]
    for p in peerings:
        requester, accepter = p.get("Requester", {}), p.get("Accepter", {})
        rows.append([
            str(p.get("VpcPeeringConnectionId")), str(p.get("Status")),
            *(str(requester.get(k) or "-") for k in ("VpcId", "Name", "AccountId", "Region")),
            *(str(accepter.get(k) or "-") for k in ("VpcId", "Name", "AccountId", "Region")),
            str(p.get("Name") or "-"), str(p.get("Group") or "-"),
        ])  # fmt: skip
    return columns(rows, indent=indent)
