"""Step Functions' own service integration (``arn:aws:states:::states:startExecution[.sync[:2]]``)
in moto's interpreter, as AWS runs it.

moto 5.2.5's interpreter passes a task's ``Parameters`` to the Step Functions API as written
(``StateMachineArn``, ``Input``, ``Name``) and hands the API's answer back as boto3 returns it
(``executionArn``, ``status``, ``output``); the API itself takes and returns camelCase. So every
such task failed with ``States.Runtime`` ("'StateMachineArn'"), and a ``ResultSelector`` on
``$.Status`` or ``$.Output`` could never match. AWS service integrations take PascalCase
parameters and return PascalCase results (``$.Output``, ``$.Status``; a failed child's
``Cause`` is its DescribeExecution, PascalCase, as JSON): this maps one to the other, from
botocore's model of the API. Listed in emulator/README.md.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
    StateTaskServiceSfn,
)

_installed = False


def install() -> None:
    """Patch the interpreter's Step Functions integration (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original_parameters = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(
        self: StateTaskServiceSfn,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original_parameters(self, parameters, boto_service_name, service_action_name)
        action = service_action_name or self._get_boto_service_action()
        members = _members(action)
        for key in list(parameters):
            name = members.get(key.lower())
            if name is not None and name != key:
                parameters[name] = parameters.pop(key)

    def normalise_response(
        self: StateTaskServiceSfn,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        if isinstance(response, dict):
            pascal = _pascalised(response)
            response.clear()
            response.update(pascal)

    StateTaskServiceSfn._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = normalise_response  # type: ignore[method-assign,assignment]


@cache
def _members(action: str) -> dict[str, str]:
    """The API's request member names of a boto3 action (``start_execution``), by lower case."""
    model = botocore.session.get_session().get_service_model("stepfunctions")
    operation = next((n for n in model.operation_names if _snake(n) == action), None)
    if operation is None:
        return {}
    shape = model.operation_model(operation).input_shape
    return {name.lower(): name for name in (shape.members if shape else {})}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def _pascalised(value: Any) -> Any:
    """The API's answer with PascalCase keys; a child's input and output are its own data, not
    the API's, and are kept as they are."""
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {
            _pascal(k): v if k in ("input", "output") else _pascalised(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_pascalised(v) for v in value]
    return value
