"""The member side of the tag trigger on the emulator: ``member-forwarding.yaml`` in every
managed account and region but the hub's own, as a StackSet would deploy it on AWS.

Used by ``make local`` (``tools.local``), the network tests, ``make demo-mesh`` and ``make
bench``: where the hub's parameters put the boundary, a tag change in a member account or
another region reaches the hub's bus exactly as it would on AWS (through the member's default
bus, a rule, and the hub bus's policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORWARDING_TEMPLATE = ROOT / "member-forwarding.yaml"
FORWARDING_STACK = "vpc-peering-forwarding"


def _listed(value: str | None, default: str) -> list[str]:
    return sorted({v.strip() for v in (value or default).split(",") if v.strip()})


def member_locations(
    parameters: Mapping[str, str], hub_account: str, hub_region: str
) -> list[tuple[str, str]]:
    """Every (account, region) of AllowedAccountIds x ManagedRegions but the hub's own (their
    defaults: the hub account, the hub region), from the stack's parameter overrides."""
    accounts = _listed(parameters.get("AllowedAccountIds"), hub_account)
    regions = _listed(parameters.get("ManagedRegions"), hub_region)
    return [(a, r) for a in accounts for r in regions if (a, r) != (hub_account, hub_region)]


def forwarding_stack(
    account: str, region: str, hub_account: str, hub_region: str, stack_name: str
) -> dict[str, Any]:
    """One member forwarding stack, as ``EmulatorHandle.deploy_stack`` (or the emulator's
    ``--extra-stack``) takes it."""
    return {
        "template": str(FORWARDING_TEMPLATE),
        "stack_name": FORWARDING_STACK,
        "account_id": account,
        "region": region,
        "parameters": {
            "HubAccountId": hub_account,
            "HubRegion": hub_region,
            "HubEventBusName": stack_name,
        },
    }


def forwarding_stacks(
    parameters: Mapping[str, str],
    hub_account: str = "123456789012",
    hub_region: str = "us-east-1",
    stack_name: str = "vpc-peering",
) -> list[dict[str, Any]]:
    """The member forwarding stack of every managed account and region but the hub's."""
    return [
        forwarding_stack(account, region, hub_account, hub_region, stack_name)
        for account, region in member_locations(parameters, hub_account, hub_region)
    ]
