"""Deployed stacks: DescribeStacks answers for them, and more are deployed into any account.

Uses the event stacks (event_stacks.py): "events" (the hub, with parameters and outputs),
"relay" in us-west-2 and "member" in three member accounts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.error import HTTPError

import pytest
from botocore.exceptions import ClientError

from .event_stacks import MEMBER, EventsSetUp

HUB_STACK_ID = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/events/"
    "00000000-0000-0000-0000-000000000000"
)
BUS_ONLY = """\
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: elsewhere
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {"source": ["x"]}
  LegacyPolicy:
    Type: AWS::Events::EventBusPolicy
    Properties:
      EventBusName: !Ref Bus
      StatementId: LegacyForm
      Action: events:PutEvents
      Principal: "111111111111"
Outputs:
  BusArn:
    Value: !GetAtt Bus.Arn
"""


def test_describe_stacks_shows_parameters_and_outputs_as_deployed(
    events_setup: EventsSetUp,
) -> None:
    cloudformation = events_setup.hub.client("cloudformation")
    # Given the hub stack / When it is described by name
    (stack,) = cloudformation.describe_stacks(StackName="events")["Stacks"]
    # Then CloudFormation's view of it comes back
    assert (stack["StackName"], stack["StackId"]) == ("events", HUB_STACK_ID)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Description"] == "hub of the emulator's event tests"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["MemberAccount"] == MEMBER
    assert parameters["Secret"] == "****"  # NoEcho
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    assert outputs["HubBusArn"] == {
        "OutputKey": "HubBusArn",
        "OutputValue": events_setup.hub_bus_arn,
        "Description": "the bus members forward to",
        "ExportName": "events-HubBusArn",
    }
    assert outputs["AllowedAccounts"]["OutputValue"] == "111111111111,222222222222"
    # And by its StackId too
    assert (
        cloudformation.describe_stacks(StackName=HUB_STACK_ID)["Stacks"][0]["StackName"] == "events"
    )


def test_the_aws_cli_reads_the_outputs(events_setup: EventsSetUp) -> None:
    # Given the real AWS CLI of the venv
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.skip("no AWS CLI in the venv")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": ""}
    # When it describes the hub stack
    completed = subprocess.run(
        [str(aws), "--endpoint-url", events_setup.hub.endpoint, "--region", "us-east-1",
         "cloudformation", "describe-stacks", "--stack-name", "events", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    # Then it parses AWS's XML answer into the outputs
    (stack,) = json.loads(completed.stdout)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["HubBusArn"] == events_setup.hub_bus_arn


def test_each_stack_is_described_in_its_own_account_and_region(events_setup: EventsSetUp) -> None:
    member_eu = events_setup.hub.account_client("cloudformation", MEMBER, "eu-west-1")
    member_us = events_setup.hub.account_client("cloudformation", MEMBER, "us-east-1")
    # Given the member stack deployed in MEMBER's eu-west-1
    # When it is described there / Then it is found, with that account and region in its id
    (stack,) = member_eu.describe_stacks(StackName="member")["Stacks"]
    assert stack["StackId"].startswith(f"arn:aws:cloudformation:eu-west-1:{MEMBER}:stack/member/")
    # When it is described in another region of that account / Then, as AWS: does not exist
    with pytest.raises(ClientError, match="Stack with id member does not exist") as caught:
        member_us.describe_stacks(StackName="member")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    # And without a name, each account and region lists its own stacks
    assert [s["StackName"] for s in member_eu.describe_stacks()["Stacks"]] == ["member"]
    relay = events_setup.hub.client("cloudformation", region="us-west-2")
    assert [s["StackName"] for s in relay.describe_stacks()["Stacks"]] == ["relay"]


def test_deploy_stack_into_another_account_and_region(
    events_setup: EventsSetUp, tmp_path: Path
) -> None:
    template = tmp_path / "bus-only.yaml"
    template.write_text(BUS_ONLY)
    account, region = "444444444444", "ap-southeast-2"
    # Given / When a template with a bus, a rule and a legacy bus policy is deployed there
    deployed = events_setup.hub.deploy_stack(template, "elsewhere", account, region)
    # Then the handle says what was deployed, by logical id
    assert deployed["event_buses"] == {"Bus": "elsewhere"}
    assert deployed["rules"] == {"Rule": "elsewhere-Rule"}
    assert deployed["outputs"] == {
        "BusArn": f"arn:aws:events:{region}:{account}:event-bus/elsewhere"
    }
    # And the resources exist in that account and region, the policy in its legacy form
    events = events_setup.hub.account_client("events", account, region)
    rules = events.list_rules(EventBusName="elsewhere")["Rules"]
    assert [r["Name"] for r in rules] == ["elsewhere-Rule"]
    (statement,) = json.loads(events.describe_event_bus(Name="elsewhere")["Policy"])["Statement"]
    assert statement["Sid"] == "LegacyForm"
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    # And the emulator lists it; the same name there again is refused
    assert "elsewhere" in [s["stack_name"] for s in events_setup.hub.stacks()]
    with pytest.raises(HTTPError, match="Error 409"):
        events_setup.hub.deploy_stack(template, "elsewhere", account, region)


def test_functions_are_deployed_in_the_hub_only(events_setup: EventsSetUp, tiny_dir: Path) -> None:
    # Given the tiny stack (functions) / When it is deployed into a member account
    # Then the emulator refuses, naming the function and why
    with pytest.raises(HTTPError, match="functions are deployed only in the emulator's own"):
        events_setup.hub.deploy_stack(
            tiny_dir / "template.yaml",
            "tiny-elsewhere",
            MEMBER,
            "us-east-1",
            {"OutDir": str(tiny_dir / "out")},
        )
    # And nothing of it was created there
    events = events_setup.hub.account_client("events", MEMBER, "us-east-1")
    assert "tiny-elsewhere-bus" not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]
