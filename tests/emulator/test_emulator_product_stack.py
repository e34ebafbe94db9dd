"""The product template deployed into the emulator (no product handler is invoked here)."""

from __future__ import annotations

import json

from emulator.template import Template
from emulator.testing import REPO_ROOT, EmulatorHandle
from tools import CLEANUP_MACHINE, CREATE_MACHINE


def test_every_function_of_the_template_is_deployed(product_emulator: EmulatorHandle) -> None:
    # Given the template's functions
    template = Template.load(REPO_ROOT / "template.yaml")
    expected = {
        logical_id: f"vpc-peering-{logical_id}"
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    # When / Then each is a Lambda function named {stack}-{LogicalId}
    assert product_emulator.functions == expected
    names = {
        f["FunctionName"]
        for f in product_emulator.client("lambda").list_functions(MaxItems=50)["Functions"]
    }
    assert set(expected.values()) <= names


def test_state_machines_have_every_substitution_applied(
    product_emulator: EmulatorHandle,
) -> None:
    # Given the deployed create and cleanup machines
    sfn = product_emulator.client("stepfunctions")
    for logical_id in (CREATE_MACHINE, CLEANUP_MACHINE):
        arn = product_emulator.state_machine_arn(logical_id)
        # When their definitions are read back
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        # Then no ${...} is left and every Lambda task names a deployed function
        assert "${" not in definition
        function_arns = [
            state["Parameters"]["FunctionName"]
            for state in json.loads(definition)["States"].values()
            if state.get("Resource") == "arn:aws:states:::lambda:invoke"
        ]
        assert function_arns
        for function_arn in function_arns:
            assert function_arn.rsplit(":", 1)[1] in product_emulator.functions.values()


def test_accept_rule_is_on_the_stack_bus(product_emulator: EmulatorHandle) -> None:
    # Given the stack's event bus
    events = product_emulator.client("events")
    bus = product_emulator.event_bus_name
    assert bus == "vpc-peering"
    # When its rules are listed, with their targets
    by_target = {
        target["Arn"].rsplit(":", 1)[1]: (rule, target)
        for rule in events.list_rules(EventBusName=bus)["Rules"]
        for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    }
    # Then the AcceptFunction rule has the template's pattern, target and retry policy
    rule, target = by_target["vpc-peering-AcceptFunction"]
    assert json.loads(rule["EventPattern"]) == {
        "source": ["vpc-peering-automation"],
        "detail-type": ["VPC Peering Acceptance Requested"],
    }
    assert target["Arn"].endswith(":function:vpc-peering-AcceptFunction")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4
