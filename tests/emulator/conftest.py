"""Fixtures: one emulator with the product template, one with a tiny throwaway stack.

The tiny stack (template + handler module written to a temp dir) exercises the emulator's
machinery (rules, in-process Lambda, state machines) without depending on the product handlers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing import EmulatorHandle, running_emulator

from .event_stacks import (
    CONDITIONAL,
    HUB_TEMPLATE,
    MEMBER,
    MEMBER_TEMPLATE,
    RELAY_TEMPLATE,
    STRANGER,
    EventsSetUp,
)

TINY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  OutDir:
    Type: String
Globals:
  Function:
    Runtime: python3.13
    Architectures: [arm64]
    CodeUri: src/
    Timeout: 10
    Environment:
      Variables:
        OUT_DIR: !Ref OutDir
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-bus
  RecordFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tiny_handlers.record
      Events:
        Ping:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [tiny.test]
              detail-type: [Ping]
            RetryPolicy:
              MaximumRetryAttempts: 2
  AnswerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tiny_handlers.answer
      Events:
        Question:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [tiny.test]
              detail-type: [Question]
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tiny_handlers.echo
      Timeout: 3
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-flow
      Type: STANDARD
      DefinitionUri: flow.asl.json
      DefinitionSubstitutions:
        EchoFunctionArn: !GetAtt EchoFunction.Arn
        BusName: !Ref Bus
"""

TINY_ASL = """\
{
  "StartAt": "Echo",
  "States": {
    "Echo": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${EchoFunctionArn}", "Payload.$": "$"},
      "ResultSelector": {"Result.$": "$.Payload"},
      "OutputPath": "$.Result",
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Caught"}],
      "Next": "Ask"
    },
    "Ask": {
      "Type": "Task",
      "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
      "HeartbeatSeconds": 30,
      "Parameters": {
        "Entries": [{
          "EventBusName": "${BusName}",
          "Source": "tiny.test",
          "DetailType": "Question",
          "Detail": {"TaskToken.$": "$$.Task.Token", "Echo.$": "$.echo"}
        }]
      },
      "End": true
    },
    "Caught": {"Type": "Pass", "End": true}
  }
}
"""

TINY_HANDLERS = '''\
"""Handlers of the tiny test stack: record events to OUT_DIR, echo, answer a task token."""

import json
import os
import time
from pathlib import Path

import boto3


class TinyError(Exception):
    pass


def record(event, context):
    detail = event["detail"]
    out = Path(os.environ["OUT_DIR"])
    attempts = out / f"{detail['key']}.attempts"
    count = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(count))
    if count <= detail.get("fail_times", 0):
        raise TinyError(f"failing attempt {count}")
    (out / f"{detail['key']}.json").write_text(json.dumps({"event": event, "attempts": count}))
    return {"recorded": detail["key"]}


def echo(event, context):
    if isinstance(event, dict) and event.get("fail"):
        raise TinyError(event["fail"])
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    return {
        "echo": event,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def answer(event, context):
    sfn = boto3.client("stepfunctions")
    detail = event["detail"]
    sfn.send_task_success(
        taskToken=detail["TaskToken"], output=json.dumps({"answered": detail["Echo"]})
    )
'''


@pytest.fixture(scope="session")
def product_emulator() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-stack")
    (root / "src").mkdir()
    (root / "out").mkdir()
    (root / "template.yaml").write_text(TINY_TEMPLATE)
    (root / "flow.asl.json").write_text(TINY_ASL)
    (root / "src" / "tiny_handlers.py").write_text(textwrap.dedent(TINY_HANDLERS))
    return root


@pytest.fixture(scope="session")
def tiny_emulator(tiny_dir: Path) -> Iterator[EmulatorHandle]:
    overrides = {"OutDir": str(tiny_dir / "out")}
    with running_emulator(
        template=tiny_dir / "template.yaml", parameter_overrides=overrides, stack_name="tiny"
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def events_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventsSetUp]:
    root = tmp_path_factory.mktemp("events-stacks")
    templates = {"hub": HUB_TEMPLATE, "relay": RELAY_TEMPLATE, "member": MEMBER_TEMPLATE}
    for name, text in templates.items():
        (root / f"{name}.yaml").write_text(text)
    relay_arn = "arn:aws:events:us-west-2:123456789012:event-bus/relay"
    relay = {"template": root / "relay.yaml", "stack_name": "relay", "region": "us-west-2"}
    overrides = {
        "MemberAccount": MEMBER,
        "ConditionalAccount": CONDITIONAL,
        "RelayBusArn": relay_arn,
    }
    with running_emulator(
        template=root / "hub.yaml",
        stack_name="events",
        parameter_overrides=overrides,
        extra_stacks=[{**relay, "account_id": "123456789012"}],
    ) as hub:
        hub_bus_arn = hub.outputs["HubBusArn"]
        member = {"HubBusArn": hub_bus_arn}
        hub.deploy_stack(root / "member.yaml", "member", MEMBER, "eu-west-1", member)
        hub.deploy_stack(root / "member.yaml", "member", CONDITIONAL, "us-east-1", member)
        hub.deploy_stack(root / "member.yaml", "member", STRANGER, "us-east-1", member)
        yield EventsSetUp(hub, hub_bus_arn, "eu-west-1", root)
