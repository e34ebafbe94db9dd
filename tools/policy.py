"""The hub's group policy on the emulator: what an admin writes in SSM Parameter Store before
tagging VPCs into groups (the stack output ``GroupPolicyParameterName`` names the parameter)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from emulator.testing import EmulatorHandle


def parameter_name(emu: EmulatorHandle) -> str:
    return str(emu.outputs["GroupPolicyParameterName"])


def _ssm(emu: EmulatorHandle) -> Any:
    return emu.account_client("ssm", emu.account_id, emu.region)


def read_policy(emu: EmulatorHandle) -> dict[str, Any]:
    """The policy document as written (``{"Groups": {}}`` when there is none)."""
    try:
        text = _ssm(emu).get_parameter(Name=parameter_name(emu))["Parameter"]["Value"]
    except _ssm(emu).exceptions.ParameterNotFound:
        return {"Groups": {}}
    document: dict[str, Any] = json.loads(text)
    return document


def write_policy(emu: EmulatorHandle, document: Any) -> None:
    """Write the document (a dict as JSON, a string as it is)."""
    text = document if isinstance(document, str) else json.dumps(document, indent=1)
    _ssm(emu).put_parameter(Name=parameter_name(emu), Value=text, Type="String", Overwrite=True)


def set_group(emu: EmulatorHandle, group: str, rule: dict[str, Any]) -> None:
    """Write one group's rule, the others kept."""
    document = read_policy(emu)
    document.setdefault("Groups", {})[group] = rule
    write_policy(emu, document)


def admit(emu: EmulatorHandle, groups: Iterable[str], accounts: Iterable[str]) -> None:
    """Open these groups to every VPC of these accounts (Join auto), unless already named."""
    document = read_policy(emu)
    named = document.setdefault("Groups", {})
    # A name the policy cannot hold (a test's hostile tag) stays out: it would void the policy.
    missing = [g for g in groups if g not in named and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", g)]
    if not missing:
        return
    for group in missing:
        named[group] = {"Accounts": sorted(set(accounts))}
    write_policy(emu, document)
