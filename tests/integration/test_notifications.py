"""Notifications end to end on the emulator: the machine publishes its event on the stack's bus,
the stack's rule sends a text a person reads to the topic (NotificationTopicArn), and a queue
subscribed to the topic receives it, the event's detail as JSON at its end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.executions import ExecutionResult
from emulator.testing import EmulatorHandle
from vpc_peering.outcomes import FAILURE_REPORTED_METRIC
from vpc_peering.runtime import REFUSAL_METRICS

from .conftest import Vpc, side

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., ExecutionResult]
MakeVpc = Callable[..., Vpc]


@pytest.fixture
def subscribed_queue(emu: EmulatorHandle) -> Iterator[Callable[[], list[str]]]:
    """A new queue subscribed to the notification topic; calling it drains the messages."""
    sqs, sns = emu.client("sqs"), emu.client("sns")
    url = sqs.create_queue(QueueName=f"notified-{time.monotonic_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    subscription = sns.subscribe(
        TopicArn=emu.outputs["NotificationTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )["SubscriptionArn"]

    def drain() -> list[str]:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [m["Body"] for m in received.get("Messages", [])]

    yield drain
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


def detail_of(message: str) -> dict[str, Any]:
    """The JSON detail a notification ends with (after its text and a blank line)."""
    return dict(json.loads(message.rsplit("\n\n", 1)[1]))


def test_a_failed_cleanup_reaches_a_queue_subscribed_to_the_topic(
    make_vpc: MakeVpc,
    create: Run,
    cleanup: Run,
    faults: EmulatorHandle,
    subscribed_queue: Callable[[], list[str]],
) -> None:
    # Given a peering, EC2 refusing its delete, and a queue subscribed to the topic
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")
    made = create({"Requester": side(vpc1), "Accepter": side(vpc2)})
    assert made.succeeded, (made.error, made.cause)
    peering_id = made.output["VpcPeeringConnectionId"]
    faults.add_fault("ec2", "DeleteVpcPeeringConnection", "UnauthorizedOperation")

    # When the cleanup fails
    result = cleanup({"VpcPeeringConnectionId": peering_id})
    assert result.error == "AccessDenied"

    # Then the queue receives one notification: what failed, the peering and VPCs, the cause,
    # the execution's console link, then the event's fields as JSON
    [message] = subscribed_queue()
    assert message.splitlines()[0] == "VPC peering cleanup failed (stage Cleanup): AccessDenied"
    assert f"Peering {peering_id} between VPC {vpc1.vpc_id}" in message
    assert f"execution:vpc-peering-cleanup:{result.execution_arn.rsplit(':', 1)[1]}" in message
    detail = detail_of(message)
    assert detail["VpcPeeringConnectionId"] == peering_id
    assert (detail["Error"], detail["Stage"]) == ("AccessDenied", "Cleanup")


def test_a_refusal_at_plan_and_a_success_notify_nobody(
    make_vpc: MakeVpc, create: Run, subscribed_queue: Callable[[], list[str]]
) -> None:
    # Given a queue subscribed to the topic
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("10.0.0.0/24")
    vpc3 = make_vpc("172.16.0.0/16")

    # When a dry run is refused, an input is wrong, and a create succeeds
    assert create({"Requester": side(vpc1), "Accepter": side(vpc2), "DryRun": True}).error
    assert create({"Requester": {"VpcId": "nope"}}).error
    assert create({"Requester": side(vpc1), "Accepter": side(vpc3)}).succeeded

    # Then nobody is paged
    assert subscribed_queue() == []


def test_alarms_on_failed_executions_and_failure_queues_notify_the_topic(
    emu: EmulatorHandle,
) -> None:
    # Given the deployed stack
    cloudwatch = emu.client("cloudwatch")
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    topic = emu.outputs["NotificationTopicArn"]

    # Then each machine's failed executions and each failure queue have an alarm into the topic
    def metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
        if "MetricName" in alarm:
            return [alarm]
        return [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]

    watched = {
        (m["Namespace"], m["MetricName"], m["Dimensions"][0]["Value"])
        for a in alarms
        if a["AlarmActions"] == [topic]
        for m in metrics(a)
    }
    for machine in ("CreateStateMachine", "CleanupStateMachine", "ReconcileStateMachine"):
        assert ("AWS/States", "ExecutionsFailed", emu.state_machine_arn(machine)) in watched
    # and the create and cleanup alarms leave out the refusals at Plan their summary step
    # counts (a typo or a dry run pages nobody), by the name and dimension it counts them with
    for machine, metric in REFUSAL_METRICS.items():
        alarm = next(
            a
            for a in alarms
            if a["AlarmName"].endswith(f"{machine.title()}StateMachineFailedAlarm")
        )
        (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
        assert expression == "FILL(failed, 0) - FILL(refused, 0)"
        assert ("VpcPeeringAutomation", metric, "vpc-peering") in watched
    # and the reconcile's leaves out the reconciles Report said did not succeed (published,
    # and sent by NotifyReconcileIncompleteRule already)
    alarm = next(a for a in alarms if a["AlarmName"].endswith("ReconcileStateMachineFailedAlarm"))
    (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
    assert expression == "FILL(failed, 0) - FILL(reported, 0)"
    assert ("VpcPeeringAutomation", FAILURE_REPORTED_METRIC, "vpc-peering") in watched
    queues = {name for namespace, _, name in watched if namespace == "AWS/SQS"}
    assert {q.rsplit("-", 1)[-1] for q in queues} == {
        "AcceptFunctionFailureQueue",
        "TagChangeFunctionFailureQueue",
    }
    # and a dashboard shows executions, failures and reconciles
    [dashboard] = cloudwatch.list_dashboards()["DashboardEntries"]
    body = json.loads(
        cloudwatch.get_dashboard(DashboardName=dashboard["DashboardName"])["DashboardBody"]
    )
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert "Executions failed" in titles
    assert "Reconciles (status and pair counts)" in titles


@pytest.mark.parametrize(
    ("sample", "first_line", "also"),
    [
        (
            "join-refused.json",
            "VPC peering join refused: VPC vpc-0a1b2c3d4e5f60718 (account 210987654321, "
            "eu-west-1) is not a member of group blue (GroupPolicyDenied)",
            "Cause: account 210987654321 is not in Groups.blue.Accounts",
        ),
        (
            "join-requested.json",
            "VPC peering join requested: VPC vpc-0a1b2c3d4e5f60718 (account 210987654321, "
            "eu-west-1) asks to join group blue",
            "10.20.0.0/16",
        ),
    ],
)
def test_a_join_refused_or_requested_names_the_group_the_vpc_and_why(
    emu: EmulatorHandle,
    subscribed_queue: Callable[[], list[str]],
    sample: str,
    first_line: str,
    also: str,
) -> None:
    # Given a queue subscribed to the topic, and the join event as Discover publishes it
    event = json.loads((ROOT / "events" / "eventbridge" / sample).read_text())

    # When it is put on the stack's bus
    emu.client("events").put_events(
        Entries=[{
            "Source": event["source"], "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]), "EventBusName": emu.outputs["EventBusName"],
        }]
    )  # fmt: skip

    # Then the text a person reads names the VPC, its account and region, the group, and the
    # cause (refused) or the CIDRs it asks with (requested); then the detail as JSON
    [message] = subscribed_queue()
    assert message.splitlines()[0] == first_line
    assert also in message
    assert detail_of(message) == event["detail"]
