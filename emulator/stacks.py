"""The stacks the emulator deployed: CloudFormation's view of them, and more of them on request.

Why: the emulator deploys templates through the service APIs, not through CloudFormation, so
moto's CloudFormation knows none of them; but clients read a stack's outputs with
``DescribeStacks`` (``aws cloudformation describe-stacks --stack-name X``), and a multi-account
set-up needs stacks in other accounts and regions (a member account's forwarding rule and bus
policy) deployed next to the hub's.

* :func:`register` records a deployed stack; ``DescribeStacks`` (moto's handler, patched by
  :func:`install`) then answers for it in its account and region: ``StackName``, ``StackId``,
  ``StackStatus`` ``CREATE_COMPLETE``, ``Description``, ``Parameters`` and ``Outputs``
  (``OutputKey``, ``OutputValue``, ``Description``, ``ExportName``) as resolved at deploy.
  Without a name it lists them with moto's own stacks; any other name gets moto's own answer
  (its stacks, or the ``ValidationError`` "Stack with id X does not exist", as AWS).
* :class:`StackControl` serves ``/_emulator/stacks``: ``GET`` lists the deployed stacks,
  ``POST {"template", "stack_name", "account_id", "region", "parameters"}`` deploys one more.

Gaps: other CloudFormation calls (``ListStacks``, ``DescribeStackResources``,
``GetTemplate``, ``DeleteStack``...) do not know these stacks; a stack cannot be updated or
deleted; its ``CreationTime`` is when the emulator deployed it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from emulator.deploy import DeployedStack, deploy

MAX_STACKS_PER_PAGE = 50  # moto's page size for DescribeStacks

_stacks: list[DeployedStack] = []
_lock = threading.Lock()
_original_describe_stacks: Callable[[CloudFormationResponse], Any] | None = None


def register(stack: DeployedStack) -> None:
    with _lock:
        _stacks.append(stack)


def deployed() -> list[DeployedStack]:
    with _lock:
        return list(_stacks)


def find(account_id: str, region: str, name_or_id: str) -> DeployedStack | None:
    """The stack of that name (or StackId) in that account and region."""
    for stack in deployed():
        if (stack.account_id, stack.region) == (account_id, region) and name_or_id in (
            stack.stack_name,
            stack.stack_id,
        ):
            return stack
    return None


def rule_locations(logical_id: str) -> list[tuple[str, str, str]]:
    """(account, region, name) of each deployed rule or Scheduler schedule with that logical
    id (for the scheduler: a schedule is named in tests by its template's logical id)."""
    return [
        (stack.account_id, stack.region, name)
        for stack in deployed()
        for rule_id, name in {**stack.rules, **stack.schedules}.items()
        if rule_id == logical_id
    ]


def summary(stack: DeployedStack) -> dict[str, Any]:
    """What was deployed, by logical id (the ready file's shape, for one stack)."""
    return {
        "stack_name": stack.stack_name,
        "stack_id": stack.stack_id,
        "account_id": stack.account_id,
        "region": stack.region,
        "functions": stack.functions,
        "state_machines": stack.state_machines,
        "event_buses": stack.event_buses,
        "rules": stack.rules,
        "schedules": stack.schedules,
        "outputs": stack.outputs,
    }


def describe(stack: DeployedStack) -> dict[str, Any]:
    """The stack as DescribeStacks shows it (moto's serializer reads these keys)."""
    outputs = []
    for key, value in stack.outputs.items():
        output = {"OutputKey": key, "OutputValue": _output_text(value)}
        if key in stack.output_descriptions:
            output["Description"] = stack.output_descriptions[key]
        if key in stack.output_exports:
            output["ExportName"] = stack.output_exports[key]
        outputs.append(output)
    described: dict[str, Any] = {
        "StackId": stack.stack_id,
        "StackName": stack.stack_name,
        "Parameters": [
            {"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()
        ],
        "CreationTime": stack.created_at,
        "StackStatus": "CREATE_COMPLETE",
        "DisableRollback": False,
        "NotificationARNs": [],
        "Outputs": outputs,
        "Tags": {},  # moto's response transformer turns a dict of tags into the list
        "EnableTerminationProtection": False,
        "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
    }
    if stack.description is not None:
        described["Description"] = stack.description
    return described


def _output_text(value: Any) -> str:
    if isinstance(value, list):  # CloudFormation joins a list output (e.g. Fn::Split) by commas
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


# ---------------------------------------------------------------------------- DescribeStacks


def install() -> None:
    """Patch moto's DescribeStacks handler to answer for the registered stacks (idempotent)."""
    global _original_describe_stacks
    if _original_describe_stacks is None:
        _original_describe_stacks = CloudFormationResponse.describe_stacks
        CloudFormationResponse.describe_stacks = _describe_stacks  # type: ignore[method-assign]


def _describe_stacks(self: CloudFormationResponse) -> Any:
    assert _original_describe_stacks is not None
    account, region = self.current_account, self.region
    name = self._get_param("StackName")
    if name:
        stack = find(account, region, name)
        if stack is None:
            return _original_describe_stacks(self)
        return ActionResult({"Stacks": [describe(stack)]})
    ours: list[Any] = [
        describe(s) for s in deployed() if (s.account_id, s.region) == (account, region)
    ]
    stacks = ours + list(self.cloudformation_backend.describe_stacks(""))
    ids = [_stack_id(s) for s in stacks]
    token = self._get_param("NextToken")
    start = ids.index(token) + 1 if token in ids else 0
    page = stacks[start : start + MAX_STACKS_PER_PAGE]
    more = len(stacks) > start + MAX_STACKS_PER_PAGE
    return ActionResult({"Stacks": page, "NextToken": _stack_id(page[-1]) if more else None})


def _stack_id(stack: Any) -> str:
    return str(stack["StackId"] if isinstance(stack, dict) else stack.stack_id)


# ------------------------------------------------------------------------------ /stacks


class StackControl:
    """``/_emulator/stacks``: list the deployed stacks, or deploy one more into any account.

    ``on_deployed`` runs after each deployment (``__main__`` puts the functions' environment in
    place there); functions are allowed only in the hub's account and region.
    """

    def __init__(
        self,
        endpoint: str,
        hub_account: str,
        hub_region: str,
        on_deployed: Callable[[DeployedStack], None] = lambda _: None,
    ) -> None:
        self.endpoint = endpoint
        self.hub = (hub_account, hub_region)
        self.on_deployed = on_deployed
        self._deploy_lock = threading.Lock()

    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        if method == "GET":
            return 200, [summary(s) for s in deployed()]
        if method != "POST":
            return 405, {"error": f"{method} not allowed on stacks"}
        try:
            request = json.loads(body or b"{}")
            stack = self.deploy(
                template=Path(request["template"]),
                stack_name=str(request["stack_name"]),
                account_id=str(request.get("account_id") or self.hub[0]),
                region=str(request.get("region") or self.hub[1]),
                parameters={str(k): str(v) for k, v in (request.get("parameters") or {}).items()},
            )
        except FileExistsError as exc:
            return 409, {"error": str(exc)}
        except Exception as exc:  # a bad request, a TemplateError, an AWS error of a create call
            return 400, {"error": f"cannot deploy: {type(exc).__name__}: {exc}"}
        return 201, summary(stack)

    def deploy(
        self,
        *,
        template: Path,
        stack_name: str,
        account_id: str,
        region: str,
        parameters: dict[str, str],
    ) -> DeployedStack:
        """Deploy and register one stack; FileExistsError if that name is taken there."""
        with self._deploy_lock:  # one at a time: the name check and the registration agree
            if find(account_id, region, stack_name) is not None:
                raise FileExistsError(
                    f"Stack [{stack_name}] already exists in {account_id} {region}"
                )
            stack = deploy(
                template,
                endpoint=self.endpoint,
                stack_name=stack_name,
                region=region,
                account_id=account_id,
                parameter_overrides=parameters,
                functions_allowed=(account_id, region) == self.hub,
            )
            register(stack)
        self.on_deployed(stack)
        return stack
