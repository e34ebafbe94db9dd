"""The functions' environment for the unit tests, read from template.yaml.

The stack's variables come from ``Globals.Function.Environment.Variables``, resolved by
:mod:`emulator.template` as the emulator resolves them when it deploys the stack (stack
``vpc-peering``, the hub account, ``us-east-1``), so a variable the template adds or changes
reaches the unit tests too; ``LOCK_TABLE_NAME`` included, so pair leases are on. Lambda's own
variables (region, credentials) are faked beside them. Imports nothing of ``vpc_peering``:
``conftest.py`` reads it before Powertools is first imported.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from emulator.template import Resolver, Template, scalar_to_str

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
HUB_ACCOUNT = "123456789012"  # moto's default account
STACK_NAME = "vpc-peering"
#: The hub, a trusted member, and 222222222222: allowed, but not a trusted requester.
PARAMETER_OVERRIDES = {"AllowedAccountIds": "123456789012,111111111111,222222222222"}

#: What Lambda sets itself (credentials faked), and no X-Ray daemon to send traces to.
LAMBDA_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@functools.cache
def _stack() -> tuple[Template, Resolver]:
    template = Template.load(ROOT / "template.yaml")
    resolver = Resolver(
        template,
        stack_name=STACK_NAME,
        region=REGION,
        account_id=HUB_ACCOUNT,
        parameter_overrides=PARAMETER_OVERRIDES,
    )
    return template, resolver


def template_environment() -> dict[str, str]:
    """``Globals.Function.Environment.Variables`` of template.yaml, resolved."""
    template, resolver = _stack()
    variables = resolver.resolve(template.source["Globals"]["Function"]["Environment"])
    return {key: scalar_to_str(value, key) for key, value in variables["Variables"].items()}


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the template's DynamoDB table of that name."""
    template, resolver = _stack()
    for logical_id in template.resources:
        if (
            template.resource_type(logical_id) == "AWS::DynamoDB::Table"
            and resolver.physical_name(logical_id) == table_name
        ):
            props = resolver.resolve(template.properties(logical_id))
            return {
                "TableName": table_name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
    raise LookupError(f"template.yaml declares no DynamoDB table named {table_name}")


ENV = {**LAMBDA_ENV, **template_environment()}
#: The pair-lease table, as the template declares it (the ``aws`` fixture creates it in moto).
LOCK_TABLE = table_definition(ENV["LOCK_TABLE_NAME"])
