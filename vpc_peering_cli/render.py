"""What the command prints: a line per state while an execution runs, then a summary.

On a terminal the running state is one live line, redrawn in place (``\\r``) with its time so
far; anywhere else (a pipe, a file, ``TERM=dumb``) each state is one plain line printed once it
is done, with no ANSI escape. Summaries are plain lists of lines, built from the machines'
outputs as they are documented (docs/inputs-and-outputs.md), tolerant of fields that
are absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from .executions import StateRun

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"
_ERASE_LINE = "\r\x1b[K"


@dataclass(frozen=True)
class Style:
    """How to draw: ``live`` (redraw the running state in place), ``color`` (ANSI colors),
    ``unicode`` (✓ ✗ rather than ok !!, when the stream can encode them)."""

    live: bool = False
    color: bool = False
    unicode: bool = True

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        try:
            "✓✗⠋".encode(stream.encoding or "utf-8")  # no encoding: a str buffer
            unicode = True
        except (UnicodeEncodeError, LookupError):
            unicode = False
        return cls(live=tty, color=tty and "NO_COLOR" not in os.environ, unicode=unicode)

    def paint(self, text: str, color: str) -> str:
        return f"{color}{text}{_RESET}" if self.color else text

    @property
    def ok(self) -> str:
        return self.paint("✓" if self.unicode else "ok", _GREEN)

    @property
    def bad(self) -> str:
        return self.paint("✗" if self.unicode else "!!", _RED)

    def spinner(self, frame: int) -> str:
        return _SPINNER[frame % len(_SPINNER)] if self.unicode else "..."


PLAIN = Style()


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


NAME_WIDTH = 24


def state_line(run: StateRun, now: datetime, style: Style = PLAIN, ended: bool = False) -> str:
    """One state: its mark, name and time; what went wrong there, if anything.

    ``ended``: the execution is over, so a state never exited did not finish (a Fail state
    has no exit: it is the end)."""
    name = run.name.ljust(NAME_WIDTH)
    if run.kind == "Fail":
        return f"  {style.bad} {run.name}"
    if run.exited is None and ended:
        return f"  - {name} did not finish"
    seconds = format_seconds(run.seconds(now))
    if run.failed:
        return f"  {style.bad} {name} {seconds}  {style.paint(run.errors[-1], _RED)}"
    if run.errors:
        retried = ", ".join(sorted(set(run.errors)))
        return f"  {style.ok} {name} {seconds}  (retried after {retried})"
    return f"  {style.ok} {name} {seconds}"


class StateLines:
    """The :class:`~vpc_peering_cli.executions.Progress` of text output."""

    def __init__(self, stream: TextIO, style: Style) -> None:
        self.stream = stream
        self.style = style
        self.printed: set[int] = set()
        self.running: StateRun | None = None
        self.frame = 0
        self.drawn = False
        self.noted = ""

    def update(self, runs: list[StateRun], now: datetime) -> None:
        self._clear()
        for index, run in enumerate(runs):
            if index not in self.printed and run.exited is not None:
                self.printed.add(index)
                self.stream.write(state_line(run, now, self.style) + "\n")
        open_runs = [r for r in runs if r.exited is None and r.kind != "Fail"]
        self.running = open_runs[-1] if open_runs else None
        self._draw(now)

    def tick(self, now: datetime) -> None:
        self.frame += 1
        self._draw(now)

    def note(self, text: str) -> None:
        """Shown on the live line; without one (a pipe), printed when it changes."""
        if text == self.noted:
            return
        self.noted = text
        if not self.style.live:
            self.stream.write(f"    {text}\n")
            self.stream.flush()

    def finish(self, runs: list[StateRun], now: datetime) -> None:
        self._clear()
        for index, run in enumerate(runs):
            if index not in self.printed:
                self.printed.add(index)
                self.stream.write(state_line(run, now, self.style, ended=True) + "\n")
        self.running = None
        self.stream.flush()

    def _draw(self, now: datetime) -> None:
        if self.style.live and self.running is not None:
            run = self.running
            spinner = self.style.spinner(self.frame)
            seconds = self.style.paint(format_seconds(run.seconds(now)), _DIM)
            noted = f"  {self.noted}" if self.noted and run.name == "RunRounds" else ""
            self.stream.write(
                f"{_ERASE_LINE}  {spinner} {run.name.ljust(NAME_WIDTH)} {seconds}{noted}"
            )
            self.drawn = True
        self.stream.flush()

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write(_ERASE_LINE)
            self.drawn = False


class Silent:
    """Progress of JSON output: nothing until the result."""

    def update(self, runs: list[StateRun], now: datetime) -> None:
        pass

    def tick(self, now: datetime) -> None:
        pass

    def finish(self, runs: list[StateRun], now: datetime) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


#: Characters a terminal would obey rather than show: bidirectional overrides, isolates and
#: marks (they reorder what follows), and the line and paragraph separators.
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


def safe(text: Any) -> str:
    """Text from AWS (a Name tag, a cause) as a terminal can show it and nothing else: C0 and
    C1 control characters (ESC, CSI U+009B, newlines), bidi controls and U+2028/U+2029 are
    written as escapes (``\\x1b``, ``\\u202e``), so no tag value can move the cursor, colour
    the screen or reorder a line."""
    text = str(text)
    if text.isprintable() and not _INVISIBLE.intersection(text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif char in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def columns(rows: Iterable[list[str]], indent: str = "  ") -> list[str]:
    """Rows as lines, each column as wide as its widest cell; every cell made :func:`safe`."""
    rows = [[safe(cell) for cell in row] for row in rows]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def readable_cause(cause: str | None) -> str:
    """A cause as a person reads it: a Lambda error's message rather than its JSON."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return cause


def failure_line(error: str, cause: str | None) -> str:
    """``Error: Cause``, made :func:`safe`."""
    text = readable_cause(cause)
    return safe(f"{error}: {text}" if text else error)


def _side_row(name: str, side: Any) -> list[str]:
    if not isinstance(side, dict):
        return [name, "?"]
    cidrs = [*side.get("CidrBlocks", []), *side.get("Ipv6CidrBlocks", [])]
    return [
        name,
        str(side.get("VpcId", "?")) + (f" ({side['Name']})" if side.get("Name") else ""),
        f"account {side.get('AccountId', '?')}",
        str(side.get("Region", "?")),
        ", ".join(cidrs),
    ]


def _route_lines(routes: list[dict[str, Any]]) -> list[str]:
    """Routes grouped per route table: table, side, each destination and its state."""
    tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for route in routes:
        key = (str(route.get("RouteTableId") or "(new table)"), str(route.get("Side", "")))
        tables.setdefault(key, []).append(route)
    rows = []
    for (table, side), entries in tables.items():
        dedicated = " (dedicated)" if any(e.get("Dedicated") for e in entries) else ""
        destinations = ", ".join(
            f"{e.get('Destination', '?')} {e.get('State', '')}".rstrip() for e in entries
        )
        rows.append([table + dedicated, side, destinations])
    return columns(rows)


def _dns_line(dns: Any, dry_run: bool = False) -> str | None:
    if not isinstance(dns, dict):
        return None
    sides = {
        name: dns[name].get("AllowDnsResolutionFromRemoteVpc")
        for name in ("Requester", "Accepter")
        if isinstance(dns.get(name), dict)
    }
    if sides and len(set(sides.values())) == 1:
        state = "on for both sides" if next(iter(sides.values())) else "off for both sides"
    elif sides:
        state = ", ".join(f"{n.lower()} {'on' if v else 'off'}" for n, v in sides.items())
    else:
        state = "on" if dns.get("Requested") else "off"
    if dry_run:
        changed = " (a change: the peering's is not that now)" if dns.get("Changed") else ""
        return f"DNS resolution from the remote VPC: would be {state}{changed}"
    changed = " (changed now)" if dns.get("Changed") else ""
    if dns.get("Changed") and not any(sides.values()) and not dns.get("Requested"):
        changed = " (turned off now: give --dns to keep it on)"
    return f"DNS resolution from the remote VPC: {state}{changed}"


def _verification_lines(verification: Any, style: Style) -> list[str]:
    if not isinstance(verification, dict):
        return []
    checks = verification.get("Checks", [])
    verdict = "ok" if verification.get("Ok") else "FAILED"
    lines = [f"Verification: {verdict} ({len(checks)} checks)"]
    for check in checks:
        mark = style.ok if check.get("Ok") else style.bad
        detail = f": {check['Detail']}" if check.get("Detail") else ""
        lines.append(safe(f"  {mark} {check.get('Subject', '?')}{detail}"))
    return lines


def create_summary(output: dict[str, Any], style: Style = PLAIN) -> list[str]:
    """The create machine's output: the peering, its sides, routes per table, dedicated route
    tables, DNS and verification; for a dry run, what would be done."""
    lines: list[str] = []
    peering_id = output.get("VpcPeeringConnectionId")
    name = (output.get("Tags") or {}).get("Name")
    named = f" ({safe(name)})" if name else ""
    if output.get("DryRun"):
        lines.append("Dry run: nothing was changed.")
        if output.get("PeeringAction") == "reuse" and peering_id:
            verb = "adopt (tag as this stack's)" if output.get("Adopt") else "reuse"
            lines.append(f"Would {verb} peering {peering_id}{named} ({output.get('Status')})")
        else:
            lines.append(f"Would create a peering{named}")
    else:
        how = (
            "created by this execution"
            if output.get("CreatedByExecution")
            else "reused (it existed)"
            if output.get("PeeringAction") == "reuse"
            else ""
        )
        status = ", ".join(filter(None, [str(output.get("Status") or "?"), how]))
        lines.append(f"Peering {peering_id}{named}: {status}")
    lines += columns(
        [
            _side_row("Requester", output.get("Requester")),
            _side_row("Accepter", output.get("Accepter")),
        ]
    )
    routes = output.get("Routes") or []
    lines.append("Routes" if routes else "Routes: none")
    lines += _route_lines(routes)
    tables = output.get("DedicatedRouteTables") or []
    if tables:
        lines.append("Dedicated route tables")
        lines += columns(
            [
                str(t.get("RouteTableId") or "(new table)"),
                str(t.get("Side", "")),
                "subnets " + ", ".join(t.get("SubnetIds", [])),
                str(t.get("State", "")),
            ]
            for t in tables
        )
    dns = _dns_line(output.get("Dns"), bool(output.get("DryRun")))
    if dns:
        lines.append(dns)
    lines += _rule_lines(output.get("SecurityGroupRules") or [])
    lines += _verification_lines(output.get("Verification"), style)
    lines += warning_lines(output.get("Warnings") or [], style)
    return lines


def _rule_lines(rules: list[Any]) -> list[str]:
    rows = [
        [
            str(r.get("GroupId")),
            str(r.get("Side", "")),
            _ports(r),
            "from " + str(r.get("Cidr") or r.get("Source")),
            str(r.get("State", "")),
        ]
        for r in rules
        if isinstance(r, dict)
    ]
    return ["Security group rules", *columns(rows)] if rows else []


def _ports(rule: dict[str, Any]) -> str:
    protocol, low, high = rule.get("Protocol"), rule.get("FromPort"), rule.get("ToPort")
    if protocol == "-1":
        return "all traffic"
    if protocol == "icmp":
        return f"icmp {low}/{high}"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def warning_lines(warnings: list[Any], style: Style = PLAIN) -> list[str]:
    """Verify's warnings (never failures): what may still stop traffic, and what to do."""
    shown = [w for w in warnings if isinstance(w, dict)]
    if not shown:
        return []
    mark = style.paint("!", _RED)
    lines = [f"Warnings ({len(shown)})"]
    for warning in shown:
        lines.append(f"  {mark} {warning.get('Side', '')}: {warning.get('Detail', '')}")
        if warning.get("Advice"):
            lines.append(f"      {warning['Advice']}")
    return lines


def is_not_found(output: Any) -> bool:
    """The cleanup output says EC2 does not know the peering (its ``Result`` is NotFound; an
    older stack's output only says so in its statuses, "not found")."""
    if not isinstance(output, dict):
        return False
    if output.get("Result"):
        return bool(output["Result"] == "NotFound")
    return any(
        str(output.get(key) or "").replace(" ", "").replace("-", "").lower() == "notfound"
        for key in ("Status", "StatusBefore")
    )


def forced_line(output: dict[str, Any]) -> list[str]:
    """An explicit create or cleanup forced over a group's peering (--force)."""
    group = output.get("ForcedOverGroup")
    if not group:
        return []
    return [
        f"Forced over group {safe(group)}: the next reconcile of the group puts this peering "
        "back as the group's VPC tags say (change the tags to make it last)"
    ]


def cleanup_summary(output: dict[str, Any], style: Style = PLAIN) -> list[str]:
    """The cleanup machine's output: the peering before and after, and what was removed."""
    peering_id = output.get("VpcPeeringConnectionId")
    before, after = output.get("StatusBefore"), output.get("Status")
    if is_not_found(output):
        status = "not found"
    elif before and before != after:
        status = f"{before} before, {after} now"
    else:
        status = str(after or before or "?")
    managed = ", managed by this stack" if output.get("Managed") else ""
    lines = [f"Peering {peering_id}: {status}{managed}"]
    removed = output.get("Removed") or {}
    rows = [
        ["rule", str(r.get("GroupId")), str(r.get("Side", "")), _ports(r)]
        for r in removed.get("SecurityGroupRules", [])
        if isinstance(r, dict)
    ]
    rows += [
        ["route", str(r.get("RouteTableId")), str(r.get("Side", "")), str(r.get("Destination"))]
        for r in removed.get("Routes", [])
    ]
    rows += [["route table", str(t)] for t in removed.get("RouteTables", [])]
    if removed.get("PeeringDeleted"):
        rows.append(["peering", str(peering_id)])
    if rows:
        lines.append("Removed")
        lines += columns(rows)
    else:
        lines.append("Nothing was removed.")
    stale = [s for s in output.get("StaleReferences") or [] if isinstance(s, dict)]
    if stale:
        lines.append(f"Stale references left ({len(stale)}: not made by this stack; remove them)")
        lines += columns(
            [
                str(s.get("GroupId")),
                str(s.get("Side", "")),
                _ports(s),
                "from " + str(s.get("ReferencedGroupId")),
            ]
            for s in stale
        )
    unreadable = [str(u) for u in output.get("Unreadable") or []]
    if unreadable:
        lines.append("Not read (routes to the peering there are left; a reconcile removes them)")
        lines += [f"  {u}" for u in unreadable]
    return lines


def _scope_line(scope: Any, verb: str = "Reconciled") -> str:
    if not isinstance(scope, dict):
        return verb
    where = (
        f"accounts {', '.join(scope.get('Accounts', []))} in {', '.join(scope.get('Regions', []))}"
    )
    narrowed = "".join(
        f", {label} {scope[key]}"
        for key, label in (("Group", "group"), ("Vpc", "VPC"))
        if scope.get(key)
    )
    return f"{verb} {where}{narrowed}"


def _pair_label(pair: Any) -> str:
    """A reconcile output's pair: both VPCs with where they are, and the group."""
    if not isinstance(pair, dict):
        return "?"

    def side(value: Any) -> str:
        if not isinstance(value, dict):
            return "?"
        return f"{value.get('VpcId')} ({value.get('AccountId')} {value.get('Region')})"

    group = f"  [{pair['Group']}]" if pair.get("Group") else ""
    return f"{side(pair.get('Requester'))} ~ {side(pair.get('Accepter'))}{group}"


def _pair_lists(output: dict[str, Any], style: Style) -> list[str]:
    """The pairs a reconcile made, repaired and removed; those it held back; a dry run's plan."""
    lines: list[str] = []
    for key, title, count in (
        ("CreatedPairs", "Created", "Created"),
        ("RepairedPairs", "Repaired", "Repaired"),
        ("RemovedPairs", "Removed", "Removed"),
    ):
        pairs = output.get(key) or []
        if pairs:
            lines.append(title + _more(len(pairs), output.get(count)))
            lines += [f"  {style.ok} {_pair_label(p)}" for p in pairs]
    plan = output.get("Plan") or []
    if output.get("DryRun"):
        counts = output.get("PlanCounts") or {}
        total = sum(v for v in counts.values() if isinstance(v, int))
        if plan:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            lines.append(f"Would do ({shown})" + _more(len(plan), total))
            for line in plan:
                lines += [
                    f"  {line.get('Action', '?'):<7} {_pair_label(line)}",
                    f"          {line.get('Reason', '')}",
                ]
        else:
            lines.append("Nothing to do.")
    held = output.get("RemovalsHeld") or []
    if held:
        lines.append(
            "Removals held"
            + _more(len(held), output.get("RemovalsHeldCount"))
            + ": more than MaxRemovalsPerReconcile; run again with --confirm-removals to let "
            "them go"
        )
        lines += [f"  {style.bad} {_pair_label(p)}" for p in held]
    return lines


def _more(listed: int, total: Any) -> str:
    if isinstance(total, int) and total > listed:
        return f" (first {listed} of {total})"
    return ""


def reconcile_summary(output: dict[str, Any], style: Style = PLAIN) -> list[str]:
    """The reconcile machine's output: the counts, the pairs done (or planned, or held), then
    each failed and skipped pair."""
    counts = ", ".join(
        f"{label} {output.get(key, 0)}"
        for key, label in (
            ("Desired", "desired"),
            ("Created", "created"),
            ("Removed", "removed"),
            ("Repaired", "repaired"),
            ("Unchanged", "unchanged"),
            ("Accepted", "accepted"),
            ("Rejected", "rejected"),
            ("IgnoredCount", "ignored"),
            ("FailedCount", "failed"),
        )
    )
    verb = "Plan (dry run, nothing changed) for" if output.get("DryRun") else "Reconciled"
    lines = [_scope_line(output.get("Scope"), verb), f"  {counts}"]
    lines += _pair_lists(output, style)
    failed = output.get("Failed") or []
    if failed:
        lines.append("Failed")
        for failure in failed:
            subject = (
                failure.get("Pair")
                or failure.get("Vpc")
                or failure.get("Location")
                or ("group policy" if failure.get("Error") == "GroupPolicyInvalid" else "reconcile")
            )
            cause = failure_line(str(failure.get("Error", "Error")), failure.get("Cause"))
            lines += [f"  {style.bad} {safe(subject)}", f"      {cause}"]
    lines += _joins(output)
    ignored = output.get("Ignored") or []
    if ignored:
        lines.append("Ignored (requests made elsewhere, left pending)")
        lines += columns(
            [
                str(i.get("VpcPeeringConnectionId", "?")),
                f"{i.get('Requester', '?')} -> {i.get('Accepter', '?')}",
                str(i.get("Reason", "")),
            ]
            for i in ignored
        )
    skipped = output.get("Skipped") or []
    if skipped:
        lines.append("Skipped")
        lines += columns(
            [
                str(s.get("Pair", "?")),
                str(s.get("VpcPeeringConnectionId") or ""),
                str(s.get("Reason", "")),
            ]
            for s in skipped
        )
    return lines


def _joins(output: dict[str, Any]) -> list[str]:
    """The VPCs tagged into a group that the group policy keeps out, and those waiting for
    approval to join: not failures (the reconcile succeeds), but not members either."""
    lines: list[str] = []
    refused = output.get("Refused") or []
    if refused:
        more = _more(len(refused), output.get("RefusedCount"))
        lines.append(f"Refused by the group policy (tagged, not members){more}")
        lines += columns(
            [
                str(r.get("Group", "?")),
                f"{r.get('VpcId', '?')} ({r.get('AccountId', '?')} {r.get('Region', '?')})",
                f"{r.get('Error', 'GroupPolicyDenied')}: {r.get('Cause', '')}",
            ]
            for r in refused
        )
    pending = output.get("PendingApproval") or []
    if pending:
        more = _more(len(pending), output.get("PendingApprovalCount"))
        lines.append(f"Waiting for approval to join (vpc-peering approve or deny){more}")
        lines += columns(
            [
                str(p.get("Group", "?")),
                f"{p.get('VpcId', '?')} ({p.get('AccountId', '?')} {p.get('Region', '?')})",
                ", ".join(p.get("Cidrs") or []) or "-",
            ]
            for p in pending
        )
    return lines


def compensation_summary(document: dict[str, Any]) -> list[str]:
    """What a failed create's compensation undid (its Fail state's input)."""
    report = document.get("Compensation")
    if not isinstance(report, dict):
        return []
    rows = [
        ["route", str(r.get("RouteTableId")), str(r.get("Side", "")), str(r.get("Destination"))]
        for r in report.get("RoutesRemoved", [])
    ]
    rows += [["route table", str(t)] for t in report.get("RouteTablesDeleted", [])]
    if report.get("PeeringDeleted"):
        rows.append(["peering", str(document.get("VpcPeeringConnectionId"))])
    if not rows:
        return ["Compensation: this execution had changed nothing"]
    return ["Compensation: this execution's changes were undone", *columns(rows)]


def _decided(document: dict[str, Any]) -> bool:
    """Whether a reconcile got as far as deciding something (a count or a list not empty)."""
    return any(
        value
        for key, value in document.items()
        if key not in ("Scope", "Error", "Cause")
        and isinstance(value, (int, list))
        and not isinstance(value, bool)
    )


def failure_summary(
    machine: str | None, document: dict[str, Any], style: Style = PLAIN
) -> list[str]:
    """A failed execution's last document, where it says more than its error: a reconcile's
    counts and failed pairs, a create's compensation."""
    if machine in ("reconcile", None) and "Desired" in document:
        # A reconcile refused before it decided anything (bad input, the boundary): its zero
        # counts say nothing; the error that follows says it all.
        return reconcile_summary(document, style) if _decided(document) else []
    if machine in ("create", None) and "Compensation" in document:
        return compensation_summary(document)
    return []


PEERING_HEADERS = [
    "ID",
    "STATE",
    "REQUESTER",
    "ACCOUNT",
    "REGION",
    "ACCEPTER",
    "ACCOUNT",
    "REGION",
    "NAME",
    "GROUP",
]


def peerings_table(peerings: list[dict[str, Any]]) -> list[str]:
    """``list``: one row per peering, under a header."""
    rows = [PEERING_HEADERS]
    for p in peerings:
        requester, accepter = p.get("Requester", {}), p.get("Accepter", {})
        rows.append(
            [
                str(p.get("VpcPeeringConnectionId")),
                str(p.get("Status")),
                *(str(requester.get(k) or "-") for k in ("VpcId", "AccountId", "Region")),
                *(str(accepter.get(k) or "-") for k in ("VpcId", "AccountId", "Region")),
                str(p.get("Name") or "-"),
                str(p.get("Group") or "-"),
            ]
        )
    return columns(rows, indent="")
