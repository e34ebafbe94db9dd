"""Which state machine to start: the stack's outputs on AWS, the machine's name elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import botocore.exceptions

from .aws import Aws, ToolError, aws_errors, error_code

Machine = Literal["create", "cleanup", "reconcile"]
MACHINES: tuple[Machine, ...] = ("create", "cleanup", "reconcile")

#: The template's Outputs that name each machine.
OUTPUT_KEYS: dict[Machine, str] = {
    "create": "CreateStateMachineArn",
    "cleanup": "CleanupStateMachineArn",
    "reconcile": "ReconcileStateMachineArn",
}


@dataclass(frozen=True)
class MachineRef:
    """A state machine's ARN and how it was found (said when it turns out not to exist)."""

    arn: str
    found_by: str


def stack_outputs(aws: Aws, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs by key, or None when there is no such stack to read."""
    stack = stack_description(aws, stack_name)
    if stack is None:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_description(aws: Aws, stack_name: str) -> dict[str, Any] | None:
    """The stack as DescribeStacks shows it, or None when there is no such stack to read."""
    cloudformation = aws.client("cloudformation")
    with aws_errors(f"cloudformation DescribeStacks {stack_name}"):
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except botocore.exceptions.ClientError as exc:
            # "Stack with id X does not exist" is a ValidationError. A caller allowed to start
            # executions but not to read stacks is served by the machines' names as well.
            if error_code(exc) in ("ValidationError", "AccessDenied", "AccessDeniedException"):
                return None
            raise
    if not stacks:
        return None
    return dict(stacks[0])


def machine_name_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:states:{region}:{account_id}:stateMachine:{name}"


def find_machine(aws: Aws, stack_name: str, machine: Machine) -> MachineRef:
    """The ARN of the stack's ``machine``: from the stack's outputs where the stack can be
    read, otherwise the name the template gives it, ``<stack>-<machine>``, in the caller's
    account and the region."""
    outputs = stack_outputs(aws, stack_name)
    if outputs is not None:
        key = OUTPUT_KEYS[machine]
        if key not in outputs:
            raise ToolError(
                f"stack {stack_name} in {aws.region} has no output {key}: "
                "is it this application's stack (--stack-name), deployed from this version?"
            )
        return MachineRef(outputs[key], f"output {key} of stack {stack_name}")
    arn = machine_name_arn(aws.partition(), aws.region, aws.account_id(), f"{stack_name}-{machine}")
    return MachineRef(arn, f"no stack {stack_name} in {aws.region}, so by its name")


def machine_of(state_machine_arn: str) -> Machine | None:
    """Which of the stack's machines an ARN names (``...:stateMachine:<stack>-create``)."""
    name = state_machine_arn.rsplit(":", 1)[-1]
    for machine in MACHINES:
        if name.endswith(f"-{machine}"):
            return machine
    return None
