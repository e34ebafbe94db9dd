"""The execution inputs the command line asks for (pure: no AWS call).

The machines validate their input and name every bad field and value; here only what the
command line itself must settle is checked (a side without a VPC, options that exclude each
other), so the rules stay in one place.
"""

from __future__ import annotations

import json
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
