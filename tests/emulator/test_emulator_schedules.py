"""Schedule rules fire on a timer and on request (schedules.py).

An emulator of its own, with ``schedule_time_scale=3600``: rate(1 hour) fires every second,
rate(1 day) every 24 s (so, within a test, only on request). The recording function writes
each event it gets to OUT_DIR as ``<kind>-<uuid>.json``.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest

from emulator.testing import EmulatorHandle, running_emulator

SCHEDULE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  OutDir:
    Type: String
Resources:
  RecordFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: src/
      Handler: schedule_handlers.record
      Environment:
        Variables:
          SCHEDULE_OUT_DIR: !Ref OutDir
      Events:
        # SAM's own schedule events, as samtranslator turns them into rules and schedules.
        Fortnightly:
          Type: Schedule
          Properties:
            Schedule: rate(14 days)
            Input: '{"kind": "sam-function-schedule"}'
  SweptFlow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-swept
      Definition:
        StartAt: Done
        States:
          Done: {Type: Pass, End: true}
      Policies: []
      Events:
        Sweep:
          Type: Schedule
          Properties:
            Schedule: rate(30 days)
            Input: '{"kind": "sam-rule"}'
        SweepV2:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(30 days)
            Input: '{"kind": "sam-scheduler"}'
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-flow
      Definition:
        StartAt: Done
        States:
          Done: {Type: Pass, End: true}
  Hourly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 hour)
      Targets:
        - {Id: record, Arn: !GetAtt RecordFunction.Arn, Input: '{"kind": "hourly"}'}
  Daily:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 day)
      Targets:
        - Id: flow
          Arn: !Ref Flow
          RoleArn: !Sub arn:aws:iam::${AWS::AccountId}:role/scheduler
          InputTransformer:
            InputPathsMap: {at: $.time, rule: "$.resources[0]", source: $.source}
            InputTemplate: '{"at": "<at>", "rule": "<rule>", "source": "<source>"}'
  Raw:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(7 days)
      Targets:
        - {Id: record, Arn: !GetAtt RecordFunction.Arn}
  Pathed:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(2 days)
      Targets:
        - {Id: record, Arn: !GetAtt RecordFunction.Arn, InputPath: $.resources}
  Disabled:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 hour)
      State: DISABLED
      Targets:
        - {Id: record, Arn: !GetAtt RecordFunction.Arn, Input: '{"kind": "disabled"}'}
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: cron(0 3 * * ? *)
      Targets:
        - {Id: record, Arn: !GetAtt RecordFunction.Arn, Input: '{"kind": "cron"}'}
"""

SCHEDULE_HANDLERS = '''\
"""Record every event: OUT_DIR/<kind>-<uuid>.json (kind: the Input's, else the detail-type)."""

import json
import os
import uuid
from pathlib import Path


def record(event, context):
    if isinstance(event, dict):
        kind = event.get("kind") or event.get("detail-type", "event").replace(" ", "-")
    else:
        kind = type(event).__name__
    out = Path(os.environ["SCHEDULE_OUT_DIR"]) / f"{kind}-{uuid.uuid4().hex}.json"
    out.write_text(json.dumps(event))
'''


@pytest.fixture(scope="module")
def schedule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schedule-stack")
    (root / "src").mkdir()
    (root / "out").mkdir()
    (root / "template.yaml").write_text(SCHEDULE_TEMPLATE)
    (root / "src" / "schedule_handlers.py").write_text(textwrap.dedent(SCHEDULE_HANDLERS))
    return root


@pytest.fixture(scope="module")
def scheduled(schedule_dir: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(
        template=schedule_dir / "template.yaml",
        stack_name="sched",
        parameter_overrides={"OutDir": str(schedule_dir / "out")},
        schedule_time_scale=3600,
    ) as handle:
        yield handle


def recorded(out: Path, kind: str, count: int = 1, timeout: float = 8.0) -> list[Any]:
    """The events of that kind the function recorded, once there are ``count`` (or timeout)."""
    deadline = time.monotonic() + timeout
    while len(files := sorted(out.glob(f"{kind}-*.json"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.05)  # each file is written in one call; let the last one finish
    return [json.loads(f.read_text()) for f in files]


def by_rule(handle: EmulatorHandle) -> dict[str, dict[str, Any]]:
    return {row["rule"]: row for row in handle.schedules()}


def test_a_rate_rule_fires_on_the_timer_and_a_disabled_one_never(
    scheduled: EmulatorHandle, schedule_dir: Path
) -> None:
    # Given rate(1 hour) at a time scale of 3600 (a period of 1 s)
    # When two periods have passed
    events = recorded(schedule_dir / "out", "hourly", count=2)
    # Then the function got the target's Input at least twice
    assert len(events) >= 2
    assert events[0] == {"kind": "hourly"}
    # And the schedule list says so; the disabled rule with the same rate never fired
    rules = by_rule(scheduled)
    assert rules["sched-Hourly"]["fire_count"] >= 2
    assert rules["sched-Hourly"]["period_seconds"] == 1.0
    assert (rules["sched-Disabled"]["state"], rules["sched-Disabled"]["fire_count"]) == (
        "DISABLED",
        0,
    )
    assert not list((schedule_dir / "out").glob("disabled-*.json"))


def test_firing_on_request_delivers_a_scheduled_event(
    scheduled: EmulatorHandle, schedule_dir: Path
) -> None:
    # Given a rule on rate(7 days) without Input
    # When it is fired by its logical id
    result = scheduled.fire_schedules("Raw")
    # Then it fired once, and the function got EventBridge's Scheduled Event
    (fired,) = result["fired"]
    arn = "arn:aws:events:us-east-1:123456789012:rule/sched-Raw"
    assert (fired["rule"], fired["arn"]) == ("sched-Raw", arn)
    (event,) = recorded(schedule_dir / "out", "Scheduled-Event")
    assert event["id"] == fired["event_id"]
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "aws.events",
        "Scheduled Event",
        {},
    )
    assert (event["account"], event["region"], event["resources"]) == (
        "123456789012",
        "us-east-1",
        [arn],
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])


def test_input_path_and_input_transformer_apply(
    scheduled: EmulatorHandle, schedule_dir: Path
) -> None:
    sfn = scheduled.client("stepfunctions")
    flow = scheduled.state_machines["Flow"]
    # Given a rule with InputPath $.resources and one whose state machine target has an
    # InputTransformer
    # When both are fired
    scheduled.fire_schedules("Pathed")
    scheduled.fire_schedules("sched-Daily")
    # Then the function got the list of resources
    (resources,) = recorded(schedule_dir / "out", "list")
    assert resources == ["arn:aws:events:us-east-1:123456789012:rule/sched-Pathed"]
    # And the state machine an execution whose input is the transformed event
    deadline = time.monotonic() + 5
    while not (runs := sfn.list_executions(stateMachineArn=flow)["executions"]):
        assert time.monotonic() < deadline, "no execution started"
        time.sleep(0.05)
    execution = sfn.describe_execution(executionArn=runs[0]["executionArn"])
    document = json.loads(execution["input"])
    assert document["rule"] == "arn:aws:events:us-east-1:123456789012:rule/sched-Daily"
    assert document["source"] == "aws.events"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["at"])


def test_cron_fires_on_request_only_and_disabled_not_at_all(
    scheduled: EmulatorHandle, schedule_dir: Path
) -> None:
    # Given a cron rule (never on the timer) and a disabled rate rule
    rules = by_rule(scheduled)
    assert rules["sched-Nightly"]["fires_on_timer"] is False
    assert rules["sched-Nightly"]["expression"] == "cron(0 3 * * ? *)"
    # When each is fired on request
    cron = scheduled.fire_schedules("Nightly")
    disabled = scheduled.fire_schedules("Disabled")
    # Then the cron rule fired and the disabled one was skipped
    assert [f["rule"] for f in cron["fired"]] == ["sched-Nightly"]
    assert recorded(schedule_dir / "out", "cron") == [{"kind": "cron"}]
    assert disabled == {
        "fired": [],
        "skipped": [
            {
                "rule": "sched-Disabled",
                "arn": "arn:aws:events:us-east-1:123456789012:rule/sched-Disabled",
                "reason": "DISABLED",
            }
        ],
    }
    # And a name that is no schedule rule is a 404
    with pytest.raises(HTTPError, match="Error 404"):
        scheduled.fire_schedules("NoSuchRule")


def test_schedule_rules_match_no_event(scheduled: EmulatorHandle, schedule_dir: Path) -> None:
    # Given schedule rules on the default bus (moto would let their empty pattern match all)
    # When an event is put on the default bus
    scheduled.client("events").put_events(
        Entries=[
            {"Source": "x.test", "DetailType": "Anything", "Detail": json.dumps({"kind": "put"})}
        ]
    )
    # Then no schedule rule's target got it
    time.sleep(0.5)
    assert not list((schedule_dir / "out").glob("Anything-*.json"))
    assert not list((schedule_dir / "out").glob("put-*.json"))


def executions(handle: EmulatorHandle, machine: str, count: int) -> list[Any]:
    """The inputs of the machine's executions, once there are ``count`` (or 5 s)."""
    sfn = handle.client("stepfunctions")
    deadline = time.monotonic() + 5
    while len(runs := sfn.list_executions(stateMachineArn=machine)["executions"]) < count:
        assert time.monotonic() < deadline, f"{len(runs)} executions, not {count}"
        time.sleep(0.05)
    return sorted(
        json.loads(sfn.describe_execution(executionArn=r["executionArn"])["input"])["kind"]
        for r in runs
    )


def test_sam_schedule_events_of_a_state_machine_deploy_and_fire(
    scheduled: EmulatorHandle,
) -> None:
    # Given a state machine with SAM Events of type Schedule (an EventBridge rule, as SAM makes
    # it) and ScheduleV2 (an EventBridge Scheduler schedule): the old reader refused both
    swept = scheduled.state_machines["SweptFlow"]
    rows = by_rule(scheduled)
    assert rows["sched-SweptFlowSweep"]["expression"] == "rate(30 days)"
    assert rows["SweptFlowSweepV2"]["arn"] == (
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/SweptFlowSweepV2"
    )
    # When each is fired by its logical id (the ids SAM gives them)
    rule = scheduled.fire_schedules("SweptFlowSweep")
    schedule = scheduled.fire_schedules("SweptFlowSweepV2")
    # Then each started the machine with its Input: the rule's target Input, and the Scheduler
    # schedule's Input as it is (no event around it)
    assert [f["rule"] for f in rule["fired"]] == ["sched-SweptFlowSweep"]
    assert schedule["fired"] == [
        {"rule": "SweptFlowSweepV2", "arn": rows["SweptFlowSweepV2"]["arn"], "event_id": None}
    ]
    assert executions(scheduled, swept, 2) == ["sam-rule", "sam-scheduler"]


def test_a_sam_schedule_event_of_a_function_fires_it(
    scheduled: EmulatorHandle, schedule_dir: Path
) -> None:
    # Given the function's SAM Schedule event (refused by the old reader: not an EventBridgeRule)
    # When it is fired by the logical id of the rule SAM made of it
    scheduled.fire_schedules("RecordFunctionFortnightly")
    # Then the function got the event's Input
    assert recorded(schedule_dir / "out", "sam-function-schedule") == [
        {"kind": "sam-function-schedule"}
    ]
