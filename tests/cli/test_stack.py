"""Finding the stack's machines: CloudFormation outputs where the stack can be read, the machine's
name otherwise (botocore's Stubber: no network)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from vpc_peering_cli.aws import Aws, ToolError
from vpc_peering_cli.stack import find_machine, machine_of

CREATE_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:prod-peering-create-AbC"


class StubbedAws(Aws):
    """An Aws whose clients are made once, so a test can stub their answers."""

    def __init__(self, region: str) -> None:
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        super().__init__(session, region)
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service, region_name=self.region)  # type: ignore[call-overload]
            self.stubbers[service] = Stubber(self.clients[service])
            self.stubbers[service].activate()
        return self.clients[service]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.stubbers[service]


def test_the_machine_comes_from_the_stacks_outputs() -> None:
    # Given a stack whose output names the create machine (SAM gives it any name)
    aws = StubbedAws("eu-west-1")
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "prod-peering",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": "CreateStateMachineArn", "OutputValue": CREATE_ARN}],
                }
            ]
        },
        {"StackName": "prod-peering"},
    )

    # When the create machine is looked for
    ref = find_machine(aws, "prod-peering", "create")

    # Then it is the output's ARN
    assert ref.arn == CREATE_ARN
    assert "output CreateStateMachineArn" in ref.found_by


def test_without_a_stack_the_machine_is_found_by_its_name_in_the_callers_account() -> None:
    # Given no such stack (CloudFormation's ValidationError), in a China region
    aws = StubbedAws("cn-north-1")
    aws.stub("cloudformation").add_client_error(
        "describe_stacks", "ValidationError", "Stack with id vpc-peering does not exist"
    )
    aws.stub("sts").add_response(
        "get_caller_identity",
        {"Account": "210987654321", "Arn": "arn:aws-cn:iam::210987654321:user/x", "UserId": "x"},
    )

    # When the cleanup machine is looked for
    ref = find_machine(aws, "vpc-peering", "cleanup")

    # Then it is <stack>-cleanup in the caller's account, region and partition
    assert ref.arn == "arn:aws-cn:states:cn-north-1:210987654321:stateMachine:vpc-peering-cleanup"
    assert "no stack vpc-peering" in ref.found_by


def test_a_stack_without_the_output_is_not_this_applications() -> None:
    # Given a stack of that name with other outputs
    aws = StubbedAws("us-east-1")
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "vpc-peering",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": "Other", "OutputValue": "x"}],
                }
            ]
        },
    )

    # When the reconcile machine is looked for / Then the error names the missing output
    with pytest.raises(ToolError, match="no output ReconcileStateMachineArn"):
        find_machine(aws, "vpc-peering", "reconcile")


def test_other_cloudformation_errors_are_one_line_naming_the_call() -> None:
    aws = StubbedAws("us-east-1")
    aws.stub("cloudformation").add_client_error("describe_stacks", "Throttling", "Rate exceeded")
    with pytest.raises(ToolError, match="DescribeStacks vpc-peering: Throttling: Rate exceeded"):
        find_machine(aws, "vpc-peering", "create")


@pytest.mark.parametrize(
    ("arn", "machine"),
    [
        ("arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-create", "create"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:my-stack-cleanup", "cleanup"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-reconcile", "reconcile"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:something-else", None),
    ],
)
def test_which_machine_an_arn_names(arn: str, machine: str | None) -> None:
    assert machine_of(arn) == machine
