"""The execution inputs the command line asks for (pure: no AWS call).

The machines validate their input and name every bad field and value; here only what the
command line itself must settle is checked (a side without a VPC, options that exclude each
other), so the rules stay in one place.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import UsageError


@dataclass(frozen=True)
class SideOptions:
    """One side as the flags give it; None: not given (the input file's value, or the stack's)."""

    vpc_id: str | None = None
    account_id: str | None = None
    region: str | None = None


def read_input_file(path: str) -> dict[str, Any]:
    """A JSON object from a file, or from standard input when ``path`` is ``-``."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--input {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input {path}: not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise UsageError(f"--input {path}: must hold a JSON object, not {type(value).__name__}")
    return value


def _side(base: dict[str, Any], name: str, options: SideOptions) -> dict[str, Any]:
    given = base.get(name, {})
    if not isinstance(given, dict):
        raise UsageError(f"--input: {name} must be an object")
    side = dict(given)
    for key, value in (
        ("VpcId", options.vpc_id),
        ("AccountId", options.account_id),
        ("Region", options.region),
    ):
        if value is not None:
            side[key] = value
    if "VpcId" not in side:
        flag = f"--{name.lower()}-vpc"
        raise UsageError(f"{flag} is required (or {name}.VpcId in --input)")
    return side


ALLOW_FORMAT = "Side:sg-...:PROTOCOL:PORT[-PORT][:PeerVpc|:sg-...]"
_SIDES = {"requester": "Requester", "accepter": "Accepter"}


def allow_rule(text: str) -> dict[str, Any]:
    """One ``--allow`` as a SecurityGroupRules item: ``Accepter:sg-0abc:tcp:5432`` (source: the
    peer VPC's routed CIDRs), ``...:tcp:8000-8080:sg-0def`` (a group of the peer VPC), ``...:-1``
    (every protocol, no port). The machine checks the values and names a bad one."""
    parts = text.split(":")
    if not 3 <= len(parts) <= 5:
        raise UsageError(f"--allow {text!r}: expected {ALLOW_FORMAT}")
    side, group, protocol, *rest = parts
    if side.lower() not in _SIDES:
        raise UsageError(f"--allow {text!r}: the side must be Requester or Accepter, not {side!r}")
    rule: dict[str, Any] = {"Side": _SIDES[side.lower()], "GroupId": group, "Protocol": protocol}
    source = "PeerVpc"
    if protocol == "icmp":
        # icmp[:TYPE[/CODE]]: -1 is any (ports are EC2's ICMP type and code)
        kind, _, code = (rest[0] if rest else "-1").partition("/")
        try:
            rule["FromPort"], rule["ToPort"] = int(kind), int(code or "-1")
        except ValueError:
            raise UsageError(
                f"--allow {text!r}: {rest[0]!r} is not an ICMP type[/code] (e.g. 8, 3/4, -1)"
            ) from None
        source = rest[1] if len(rest) > 1 else source
    elif protocol == "-1":
        if len(rest) > 1:
            raise UsageError(f"--allow {text!r}: protocol -1 takes no port ({ALLOW_FORMAT})")
        source = rest[0] if rest else source
    else:
        if not rest:
            raise UsageError(f"--allow {text!r}: give a port or range ({ALLOW_FORMAT})")
        low, _, high = rest[0].partition("-")
        try:
            rule["FromPort"], rule["ToPort"] = int(low), int(high or low)
        except ValueError:
            raise UsageError(
                f"--allow {text!r}: {rest[0]!r} is not a port or a range (e.g. 5432, 8000-8080)"
            ) from None
        source = rest[1] if len(rest) > 1 else source
    rule["Source"] = "PeerVpc" if source.lower() == "peervpc" else source
    return rule


def create_input(
    requester: SideOptions,
    accepter: SideOptions,
    *,
    dns: bool | None = None,
    dry_run: bool | None = None,
    adopt: bool | None = None,
    allow: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The create machine's input: the input file's fields (if any), the flags over them
    (``--allow`` rules replace the file's SecurityGroupRules)."""
    request = dict(base or {})
    request["Requester"] = _side(request, "Requester", requester)
    request["Accepter"] = _side(request, "Accepter", accepter)
    for key, value in (("DnsResolution", dns), ("DryRun", dry_run), ("Adopt", adopt)):
        if value is not None:
            request[key] = value
    if allow:
        request["SecurityGroupRules"] = [allow_rule(text) for text in allow]
    return request


def cleanup_input(peering_id: str | None, base: dict[str, Any] | None) -> dict[str, Any]:
    """The cleanup machine's input: ``{"VpcPeeringConnectionId": ...}``, or the input file as
    it is (a create output, or an id with Region/AccountId/RoleArn), its id replaced by
    ``peering_id`` when both are given."""
    if peering_id is None and base is None:
        raise UsageError("give the peering id (pcx-...) or --input FILE")
    request = dict(base or {})
    if peering_id is not None:
        request["VpcPeeringConnectionId"] = peering_id
    return request


def reconcile_input(
    group: str | None,
    vpc: SideOptions | None,
    dry_run: bool = False,
    confirm_removals: bool = False,
) -> dict[str, Any]:
    """The reconcile machine's input: ``{}`` (everything), one group, or one VPC; with
    ``DryRun`` and ``ConfirmRemovals`` when asked."""
    flags: dict[str, Any] = {}
    if dry_run:
        flags["DryRun"] = True
    if confirm_removals:
        flags["ConfirmRemovals"] = True
    if group is not None and vpc is not None:
        raise UsageError("give --group or --vpc, not both")
    if group is not None:
        return {"Group": group, **flags}
    if vpc is None:
        return flags
    if vpc.vpc_id is None:
        raise UsageError("--account and --region name where the --vpc is: give --vpc too")
    side: dict[str, Any] = {"VpcId": vpc.vpc_id}
    if vpc.account_id is not None:
        side["AccountId"] = vpc.account_id
    if vpc.region is not None:
        side["Region"] = vpc.region
    return {"Vpc": side, **flags}


# ------------------------------------------------------------------ flags of the input fields
@dataclass(frozen=True)
class FieldFlag:
    """One input field and the flag that sets it: ``kind`` bool (``--x``; ``negate``, the flag
    that sets it false), list (comma-separated), or text; ``field`` a dotted path in the
    input."""

    flag: str
    field: str
    kind: str = "text"
    help: str = ""
    choices: tuple[str, ...] | None = None
    negate: str | None = None

    @property
    def dest(self) -> str:
        return "field_" + self.flag.removeprefix("--").replace("-", "_")


def _side_flags(side: str) -> list[FieldFlag]:
    name = side.capitalize()
    return [
        FieldFlag(f"--{side}-role-arn", f"{name}.RoleArn", help="the role to assume there"),
        FieldFlag(
            f"--{side}-route-tables",
            f"{name}.RouteTables",
            choices=("all", "main", "none"),
            help="which of its route tables get the routes (default all)",
        ),
        FieldFlag(f"--{side}-route-table-ids", f"{name}.RouteTableIds", "list", "these tables"),
        FieldFlag(
            f"--{side}-subnet-ids", f"{name}.SubnetIds", "list", "the tables of these subnets"
        ),
        FieldFlag(
            f"--{side}-dedicated-route-table",
            f"{name}.DedicatedRouteTable.SubnetIds",
            "list",
            "a new route table of this stack's, associated with these subnets",
        ),
        FieldFlag(
            f"--{side}-destination-cidrs",
            f"{name}.DestinationCidrs",
            "list",
            "route only these of the peer's CIDRs",
        ),
        FieldFlag(f"--{side}-ipv6", f"{name}.Ipv6", "bool", "route the peer's IPv6 CIDRs too"),
        FieldFlag(
            f"--{side}-dns",
            f"{name}.DnsResolution",
            "bool",
            "DNS resolution from the remote VPC on this side only",
            negate=f"--{side}-no-dns",
        ),
        FieldFlag(
            f"--{side}-allow-more-specific-routes",
            f"{name}.AllowMoreSpecificRoutes",
            "bool",
            "allow routes narrower than an existing route to another target",
        ),
    ]


#: The create input's fields beyond the VPCs, accounts and regions (SideOptions) and the
#: flags --dns/--no-dns, --dry-run, --adopt, each once.
CREATE_FLAGS: list[FieldFlag] = [
    *_side_flags("requester"),
    *_side_flags("accepter"),
    FieldFlag("--name", "Tags.Name", help="the peering's Name tag (default: from the VPCs')"),
    FieldFlag("--force", "Force", "bool", "act on a peering a group manages (ManagedByGroup)"),
]
#: The cleanup input's fields beyond the peering id.
CLEANUP_FLAGS: list[FieldFlag] = [
    FieldFlag("--account", "AccountId", help="where the peering is: its requester's account"),
    FieldFlag("--peering-region", "Region", help="where the peering is: its requester's region"),
    FieldFlag("--role-arn", "RoleArn", help="the role to assume there"),
    FieldFlag("--force", "Force", "bool", "remove a peering a group manages (ManagedByGroup)"),
]
#: Flags named by hand in __main__, for error messages.
OTHER_FLAGS: list[FieldFlag] = [
    *(
        FieldFlag(f"--{side}-{part}", f"{side.capitalize()}.{field}")
        for side in ("requester", "accepter")
        for part, field in (("vpc", "VpcId"), ("account", "AccountId"), ("region", "Region"))
    ),
    FieldFlag("--dns", "DnsResolution"),
    FieldFlag("--dry-run", "DryRun"),
    FieldFlag("--adopt", "Adopt"),
    FieldFlag("--tag", "Tags"),
]


def add_field_flags(parser: Any, flags: list[FieldFlag]) -> None:
    for f in flags:
        if f.kind == "bool":
            parser.add_argument(f.flag, dest=f.dest, action="store_const", const=True, help=f.help)
            if f.negate:
                parser.add_argument(
                    f.negate, dest=f.dest, action="store_const", const=False, help="the opposite"
                )
        else:
            metavar = "A,B" if f.kind == "list" else "VALUE"
            parser.add_argument(
                f.flag, dest=f.dest, metavar=metavar, choices=f.choices, help=f.help
            )


def apply_field_flags(request: dict[str, Any], args: Any, flags: list[FieldFlag]) -> dict[str, Any]:
    """The flags given, written into the input at their fields (over the input file's)."""
    for f in flags:
        value = getattr(args, f.dest, None)
        if value is None:
            continue
        if f.kind == "list":
            value = [v.strip() for v in str(value).split(",") if v.strip()]
            if not value:
                raise UsageError(f"{f.flag}: give at least one value (A,B,...)")
        *path, last = f.field.split(".")
        node = request
        for part in path:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise UsageError(f"{f.flag}: --input's {part} must be an object")
            node = child
        node[last] = value
    return request


def tags_input(request: dict[str, Any], tags: list[str] | None) -> dict[str, Any]:
    """``--tag KEY=VALUE`` (repeatable) into the input's Tags."""
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag {item!r}: give KEY=VALUE")
        request.setdefault("Tags", {})[key] = value
    return request


def name_flags(text: str, flags: list[FieldFlag]) -> str:
    """An error that names input fields, with the flag a command-line user typed beside each
    field (longest field first, so Requester.DedicatedRouteTable.SubnetIds is not taken for
    Requester.SubnetIds)."""
    for f in sorted(flags, key=lambda f: -len(f.field)):
        pattern = re.compile(rf"(?<![\w.]){re.escape(f.field)}(?![\w])")
        if pattern.search(text) and f.flag not in text:
            text = pattern.sub(f"{f.flag} (\\g<0>)", text, count=1)
    return text
