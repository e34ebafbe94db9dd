"""``vpc-peering policy --from-tags``: a group policy that admits the groups as the VPCs' tags
make them today, read by the hub like ``status`` (the NetworkStatus function, every managed
account and region, with the stack's roles). Printed, never written: the network team reviews it
and writes it (``aws ssm put-parameter``), which is the act that opens the groups."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .aws import Aws, ToolError
from .network import invoke_status, status_function

POLICY_OUTPUT = "GroupPolicyParameterName"


def policy_from_tagged(tagged: list[dict[str, Any]]) -> dict[str, Any]:
    """For each group the tags name: its members' accounts and regions, their IPv4 CIDRs (the
    group policy's ``Cidrs`` judge IPv4 blocks), the accounts of its hubs (none: no VPC may
    become its hub), ``Join`` auto."""
    groups: dict[str, dict[str, set[str]]] = {}
    for vpc in tagged:
        for role_and_group in vpc.get("Groups") or []:
            role, _, group = str(role_and_group).partition(":")
            entry = groups.setdefault(
                group, {"Accounts": set(), "Regions": set(), "Cidrs": set(), "HubAccounts": set()}
            )
            entry["Accounts"].add(vpc["AccountId"])
            entry["Regions"].add(vpc["Region"])
            entry["Cidrs"].update(
                c for c in vpc.get("CidrBlocks") or [] if ipaddress.ip_network(c).version == 4
            )
            if role == "hub":
                entry["HubAccounts"].add(vpc["AccountId"])
    document: dict[str, Any] = {"Groups": {}}
    for group, entry in sorted(groups.items()):
        cidrs = ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in entry["Cidrs"])
        document["Groups"][group] = {
            "Accounts": sorted(entry["Accounts"]),
            "Regions": sorted(entry["Regions"]),
            "Cidrs": [str(c) for c in cidrs],
            "Join": "auto",
            "HubAccounts": sorted(entry["HubAccounts"]),
        }
    return document


def from_tags(aws: Aws, stack_name: str) -> tuple[dict[str, Any], str | None, bool]:
    """The policy the current tags ask for, the parameter the stack reads it from, and whether
    it was read from the members (a stack older than ``Tagged``: before the group policy every
    tagged VPC was a member, so its ``Vpcs`` are the tags; the case of the upgrade)."""
    _, outputs, function = status_function(aws, stack_name)
    try:
        status = invoke_status(aws, function, {"Request": {"Tagged": True}})
        tagged, from_members = status.get("Tagged"), False
    except ToolError:  # a stack older than "Tagged" refuses the field: ask as status does
        status = invoke_status(aws, function, {"Request": {}})
        tagged = None
    if tagged is None:
        tagged, from_members = status.get("Vpcs") or [], True
    unread = [f for f in status.get("Failed") or [] if f.get("Location")]
    if unread:
        where = ", ".join(sorted({str(f["Location"]) for f in unread}))
        raise ToolError(
            f"not every managed account and region could be read ({where}): a policy written "
            "from part of the tags would close the groups of the rest"
        )
    return policy_from_tagged(tagged), outputs.get(POLICY_OUTPUT), from_members


def as_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)
