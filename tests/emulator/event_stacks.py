"""Stacks of the emulator's event tests: a hub, a relay region and member accounts.

The hub (the emulator's own account and region) has a custom bus that admits MEMBER by its
``Policy`` property and CONDITIONAL (``events:source`` member.allowed only) by an
``AWS::Events::EventBusPolicy``; every event on it goes to HubQueue and on to the relay bus in
another region; tag events with an ``emu:`` key on the default bus go to TagQueue. Members
forward their ``emu:`` tag events and everything on their "sender" bus to the hub bus.
SQS queues are where tests observe deliveries (readable from any account and region).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.testing import EmulatorHandle

MEMBER, CONDITIONAL, STRANGER = "111111111111", "222222222222", "333333333333"
HUB_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: hub of the emulator's event tests
Parameters:
  MemberAccount:
    Type: String
  ConditionalAccount:
    Type: String
  RelayBusArn:
    Type: String
  Secret:
    Type: String
    NoEcho: true
    Default: hidden
Resources:
  HubBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-hub
      Policy:
        Version: "2012-10-17"
        Statement:
          - Sid: MemberPuts
            Effect: Allow
            Principal: {AWS: !Sub "arn:aws:iam::${MemberAccount}:root"}
            Action: events:PutEvents
            Resource: !Sub arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/*
  ConditionalPolicy:
    Type: AWS::Events::EventBusPolicy
    Properties:
      EventBusName: !Ref HubBus
      StatementId: OnlyAllowedSource
      Statement:
        Effect: Allow
        Principal: {AWS: !Ref ConditionalAccount}
        Action: events:PutEvents
        Resource: !GetAtt HubBus.Arn
        Condition:
          StringEquals: {"events:source": "member.allowed"}
  HubQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${AWS::StackName}-hub-events
  HubRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref HubBus
      EventPattern: {"version": ["0"]}
      Targets:
        - {Id: queue, Arn: !GetAtt HubQueue.Arn}
        - Id: relay
          Arn: !Ref RelayBusArn
          RoleArn: !Sub arn:aws:iam::${AWS::AccountId}:role/relay
  TagQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${AWS::StackName}-tag-events
  TagRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.tag]
        detail:
          changed-tag-keys: [{prefix: "emu:"}]
      Targets:
        - {Id: queue, Arn: !GetAtt TagQueue.Arn}
Outputs:
  HubBusArn:
    Description: the bus members forward to
    Value: !GetAtt HubBus.Arn
    Export:
      Name: !Sub ${AWS::StackName}-HubBusArn
  AllowedAccounts:
    Value: !Join [",", [!Ref MemberAccount, !Ref ConditionalAccount]]
"""
#: Another region of the hub's account: whatever reaches the relay bus goes to RelayQueue.
RELAY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  RelayBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: relay
  RelayQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: relay-events
  RelayRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref RelayBus
      EventPattern: {"version": ["0"]}
      Targets:
        - {Id: queue, Arn: !GetAtt RelayQueue.Arn}
"""
#: A member account: its emu: tag events, and everything on its "sender" bus, go to the hub.
MEMBER_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  HubBusArn:
    Type: String
Resources:
  SenderBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: sender
  ForwardTags:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.tag]
        detail:
          service: [ec2]
          changed-tag-keys: [{prefix: "emu:"}]
      Targets:
        - Id: hub
          Arn: !Ref HubBusArn
          RoleArn: !Sub arn:aws:iam::${AWS::AccountId}:role/forward-to-hub
  ForwardSent:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref SenderBus
      EventPattern: {"version": ["0"]}
      Targets:
        - {Id: hub, Arn: !Ref HubBusArn}
"""


@dataclass(frozen=True)
class EventsSetUp:
    """The hub emulator and where its stacks are: hub bus, queues, member regions."""

    hub: EmulatorHandle
    hub_bus_arn: str
    member_region: str
    templates: Path

    def queue_url(self, name: str, account: str | None = None, region: str | None = None) -> str:
        sqs = self.hub.account_client("sqs", account or self.hub.account_id, region)
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def receive(
    sqs: Any, queue_url: str, until: Callable[[list[Any]], bool], timeout: float = 8.0
) -> list[Any]:
    """Every message body (JSON) read from the queue until ``until(bodies)`` holds (or the
    timeout: the caller asserts on what came)."""
    bodies: list[Any] = []
    deadline = time.monotonic() + timeout
    while not until(bodies) and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            time.sleep(0.05)
    return bodies
