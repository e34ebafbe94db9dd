"""What the command prints: state lines (live on a terminal, plain elsewhere), summaries, the
list table, and how a history becomes state runs. No AWS call."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vpc_peering_cli import render
from vpc_peering_cli.executions import Outcome, Polling, StateRun, follow, state_runs
from vpc_peering_cli.peerings import managed

T0 = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def entered(kind: str, name: str, seconds: float) -> dict[str, Any]:
    return {
        "type": f"{kind}StateEntered",
        "timestamp": at(seconds),
        "stateEnteredEventDetails": {"name": name},
    }


def exited(kind: str, name: str, seconds: float) -> dict[str, Any]:
    return {
        "type": f"{kind}StateExited",
        "timestamp": at(seconds),
        "stateExitedEventDetails": {"name": name},
    }


def task_failed(error: str, seconds: float) -> dict[str, Any]:
    return {
        "type": "TaskFailed",
        "timestamp": at(seconds),
        "taskFailedEventDetails": {"error": error},
    }


def task_succeeded(seconds: float) -> dict[str, Any]:
    return {"type": "TaskSucceeded", "timestamp": at(seconds)}


#: A create that failed in Plan, was compensated, and ended in its Fail state.
FAILED_CREATE = [
    {"type": "ExecutionStarted", "timestamp": at(0)},
    entered("Pass", "Received", 0.0),
    exited("Pass", "Received", 0.01),
    entered("Task", "Plan", 0.01),
    task_failed("CidrOverlap", 0.5),
    exited("Task", "Plan", 0.51),
    entered("Task", "Compensate", 0.51),
    task_succeeded(0.6),
    exited("Task", "Compensate", 0.61),
    entered("Fail", "Failed", 0.61),
    {"type": "ExecutionFailed", "timestamp": at(0.62)},
]


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_state_runs_pair_entries_and_exits_and_keep_the_errors_caught_there() -> None:
    # Given the history of a create that failed in Plan
    # When read as state runs
    runs = state_runs(FAILED_CREATE)

    # Then each state has its time, Plan its error, the Fail state no exit
    assert [(r.name, r.kind) for r in runs] == [
        ("Received", "Pass"),
        ("Plan", "Task"),
        ("Compensate", "Task"),
        ("Failed", "Fail"),
    ]
    assert runs[1].seconds(at(9)) == pytest.approx(0.5)
    assert runs[1].errors == ["CidrOverlap"]
    assert runs[1].failed
    assert not runs[2].failed
    assert runs[3].exited is None
    assert runs[3].failed


def test_a_task_that_succeeds_after_a_retry_is_not_failed() -> None:
    # Given a task that failed once, was retried and succeeded
    events = [
        entered("Task", "AddRoutes", 0),
        task_failed("TransientAwsError", 1),
        task_succeeded(3),
        exited("Task", "AddRoutes", 3),
    ]

    # When read / Then it succeeded, and the retried error is kept
    (run,) = state_runs(events)
    assert not run.failed
    assert run.recovered
    assert "retried after TransientAwsError" in render.state_line(run, at(3))


def test_plain_lines_print_each_state_once_with_its_time_and_no_ansi() -> None:
    # Given a stream that is not a terminal, and the history read in two polls
    stream = io.StringIO()
    lines = render.StateLines(stream, render.Style.for_stream(stream))

    # When the runs are reported as they come, then the execution ends
    lines.update(state_runs(FAILED_CREATE[:5]), at(0.4))
    lines.tick(at(0.45))
    lines.update(state_runs(FAILED_CREATE), at(0.7))
    lines.finish(state_runs(FAILED_CREATE), at(0.7))

    # Then one line per state, in order, with its time; no escape, no carriage return
    text = stream.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert text.splitlines() == [
        "  ✓ Received                 0.01s",
        "  ✗ Plan                     0.50s  CidrOverlap",
        "  ✓ Compensate               0.10s",
        "  ✗ Failed",
    ]


def test_a_terminal_gets_a_live_line_redrawn_in_place_for_the_running_state() -> None:
    # Given a terminal
    stream = FakeTty()
    style = render.Style.for_stream(stream)
    lines = render.StateLines(stream, style)

    # When Plan is running, time passes, then it ends
    lines.update(state_runs(FAILED_CREATE[:4]), at(0.2))
    lines.tick(at(0.3))
    lines.update(state_runs(FAILED_CREATE), at(0.7))
    lines.finish(state_runs(FAILED_CREATE), at(0.7))

    # Then the running state was drawn with its time so far, erased, and printed once done
    text = stream.getvalue()
    assert style.live
    assert style.color
    assert "\r\x1b[K" in text
    assert "Plan" in text
    assert "0.29s" in text
    finished = [line for line in text.split("\n") if "Plan" in line][-1]
    assert finished.endswith("CidrOverlap\x1b[0m")


def test_no_color_keeps_the_live_line_without_colors(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given NO_COLOR on a terminal
    monkeypatch.setenv("NO_COLOR", "1")

    # When the style is chosen / Then live, but no colors
    style = render.Style.for_stream(FakeTty())
    assert style.live
    assert not style.color


def test_an_ascii_stream_gets_words_instead_of_marks() -> None:
    # Given a stream that cannot encode ✓
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")

    # When a state is drawn / Then in plain ASCII
    style = render.Style.for_stream(stream)
    run = StateRun("Plan", "Task", at(0), at(1))
    assert render.state_line(run, at(1), style) == "  ok Plan                     1.00s"


#: The "Create output" example of docs/inputs-and-outputs.md, as the create machine returns it.
CREATE_OUTPUT: dict[str, Any] = {
    "VpcPeeringConnectionId": "pcx-0d4a0c7d2b1e3f456",
    "Status": "active",
    "PeeringAction": "create",
    "CreatedByExecution": True,
    "DryRun": False,
    "Tags": {"Name": "VPC1-VPC2-Peering"},
    "Requester": {
        "VpcId": "vpc-1",
        "AccountId": "123456789012",
        "Region": "us-east-1",
        "CidrBlocks": ["10.0.0.0/16"],
        "Ipv6CidrBlocks": [],
    },
    "Accepter": {
        "VpcId": "vpc-2",
        "AccountId": "123456789012",
        "Region": "us-east-1",
        "CidrBlocks": ["172.16.0.0/16", "172.17.0.0/16"],
        "Ipv6CidrBlocks": [],
    },
    "Routes": [
        {"Side": "Requester", "RouteTableId": "rtb-r", "Destination": "172.16.0.0/16",
         "Dedicated": True, "State": "created"},
        {"Side": "Requester", "RouteTableId": "rtb-r", "Destination": "172.17.0.0/16",
         "Dedicated": True, "State": "present"},
        {"Side": "Accepter", "RouteTableId": "rtb-a", "Destination": "10.0.0.0/16",
         "Dedicated": False, "State": "created"},
    ],
    "DedicatedRouteTables": [
        {"Side": "Requester", "VpcId": "vpc-1", "RouteTableId": "rtb-r",
         "SubnetIds": ["subnet-1"], "State": "created"},
    ],
    "Dns": {
        "Requested": True,
        "Requester": {"AllowDnsResolutionFromRemoteVpc": True},
        "Accepter": {"AllowDnsResolutionFromRemoteVpc": True},
        "Changed": True,
    },
    "Verification": {
        "Ok": True,
        "Checks": [
            {"Subject": "peering pcx-0d4a0c7d2b1e3f456", "Ok": True, "Detail": "active"},
            {"Subject": "Requester route rtb-r 172.16.0.0/16", "Ok": True, "Detail": "active"},
        ],
    },
}  # fmt: skip


def test_create_summary_shows_the_peering_routes_per_table_dns_and_verification() -> None:
    # Given a create output
    # When summarized
    text = "\n".join(render.create_summary(CREATE_OUTPUT))

    # Then the peering, both sides, one line per route table, DNS and each check
    assert (
        "Peering pcx-0d4a0c7d2b1e3f456 (VPC1-VPC2-Peering): active, created by this execution"
        in text
    )
    assert "Accepter   vpc-2  account 123456789012  us-east-1  172.16.0.0/16, 172.17.0.0/16" in text
    assert "rtb-r (dedicated)  Requester  172.16.0.0/16 created, 172.17.0.0/16 present" in text
    assert "rtb-a              Accepter   10.0.0.0/16 created" in text
    assert "rtb-r  Requester  subnets subnet-1  created" in text
    assert "DNS resolution from the remote VPC: on for both sides (changed now)" in text
    assert "Verification: ok (2 checks)" in text
    assert "✓ peering pcx-0d4a0c7d2b1e3f456: active" in text


def test_dry_run_summary_says_nothing_changed_and_what_would_be_done() -> None:
    # Given a dry run's output (the plan)
    plan = {**CREATE_OUTPUT, "DryRun": True, "VpcPeeringConnectionId": None, "Status": None}
    plan["Routes"] = [{**r, "State": "planned"} for r in CREATE_OUTPUT["Routes"]]
    del plan["Verification"]

    # When summarized
    lines = render.create_summary(plan)

    # Then it says so first
    assert lines[:2] == [
        "Dry run: nothing was changed.",
        "Would create a peering (VPC1-VPC2-Peering)",
    ]
    assert any("172.16.0.0/16 planned" in line for line in lines)


CLEANUP_OUTPUT = {
    "VpcPeeringConnectionId": "pcx-1",
    "StatusBefore": "active",
    "Status": "deleted",
    "Managed": True,
    "Removed": {
        "Routes": [
            {"Side": "Requester", "RouteTableId": "rtb-r", "Destination": "172.16.0.0/16"},
            {"Side": "Accepter", "RouteTableId": "rtb-a", "Destination": "10.0.0.0/16"},
        ],
        "RouteTables": ["rtb-d"],
        "PeeringDeleted": True,
    },
}


def test_cleanup_summary_lists_what_was_removed() -> None:
    # Given a cleanup output
    # When summarized
    lines = render.cleanup_summary(CLEANUP_OUTPUT)

    # Then the peering before and after, then each removed route, table and the peering
    assert lines == [
        "Peering pcx-1: active before, deleted now, managed by this stack",
        "Removed",
        "  route        rtb-r  Requester  172.16.0.0/16",
        "  route        rtb-a  Accepter   10.0.0.0/16",
        "  route table  rtb-d",
        "  peering      pcx-1",
    ]


def test_cleanup_summary_names_a_side_it_could_not_read() -> None:
    # Given a cleanup that could not read the accepter's account and region
    unread = "Accepter: account 1 in us-west-2 could not be read (AccessDenied: refused)"
    output = {**CLEANUP_OUTPUT, "Unreadable": [unread]}
    # When summarized / Then that side is named after what was removed
    lines = render.cleanup_summary(output)
    assert lines[-2:] == [
        "Not read (routes to the peering there are left; a reconcile removes them)",
        f"  {unread}",
    ]


@pytest.mark.parametrize(
    ("output", "not_found"),
    [
        ({"Status": "not found", "StatusBefore": "not found"}, True),
        ({"Status": "NotFound"}, True),
        ({"StatusBefore": "not-found", "Status": None}, True),
        (CLEANUP_OUTPUT, False),
        (None, False),
    ],
)
def test_not_found_is_recognized_in_either_spelling(output: Any, not_found: bool) -> None:
    assert render.is_not_found(output) is not_found


def test_cleanup_of_a_peering_not_found_says_nothing_was_removed() -> None:
    output = {"VpcPeeringConnectionId": "pcx-1", "StatusBefore": "not found", "Status": "not found"}
    assert render.cleanup_summary(output) == ["Peering pcx-1: not found", "Nothing was removed."]


RECONCILE_OUTPUT = {
    "Scope": {"Accounts": ["123456789012"], "Regions": ["us-east-1"], "Group": "red"},
    "Desired": 3,
    "Created": 1,
    "Removed": 0,
    "Repaired": 0,
    "Unchanged": 1,
    "Failed": [{"Pair": "vpc-a ~ vpc-b", "Error": "CidrOverlap", "Cause": "10.0.0.0/16 overlaps"}],
    "FailedCount": 1,
    "Skipped": [{"Pair": "vpc-a ~ vpc-c", "VpcPeeringConnectionId": "pcx-9", "Reason": "not ours"}],
}


def test_reconcile_summary_gives_the_counts_then_failed_and_skipped_pairs() -> None:
    # Given a reconcile output (or an incomplete reconcile's last document)
    # When summarized
    lines = render.reconcile_summary(RECONCILE_OUTPUT)

    # Then the scope, the counts, each failed pair with its error, each skipped pair
    assert lines == [
        "Reconciled accounts 123456789012 in us-east-1, group red",
        "  desired 3, created 1, removed 0, repaired 0, unchanged 1, accepted 0, rejected 0, "
        "ignored 0, failed 1",
        "Failed",
        "  ✗ vpc-a ~ vpc-b",
        "      CidrOverlap: 10.0.0.0/16 overlaps",
        "Skipped",
        "  vpc-a ~ vpc-c  pcx-9  not ours",
    ]
    assert render.failure_summary("reconcile", RECONCILE_OUTPUT) == lines


def _pair(a: str, b: str, group: str = "red") -> dict[str, object]:
    return {
        "Requester": {"VpcId": a, "AccountId": "123456789012", "Region": "us-east-1"},
        "Accepter": {"VpcId": b, "AccountId": "123456789012", "Region": "us-east-1"},
        "Group": group,
    }


def test_a_dry_run_summary_lists_each_planned_pair_with_its_reason() -> None:
    # Given a dry run's output
    output = {
        **RECONCILE_OUTPUT,
        "DryRun": True,
        "Plan": [{**_pair("vpc-a", "vpc-b"), "Action": "create", "Reason": "no peering yet"}],
        "PlanCounts": {"create": 1, "remove": 2},
    }
    # When summarized
    lines = render.reconcile_summary(output)
    # Then it says it is a plan, and lists the pair, its action and reason, and how many more
    assert (
        lines[0]
        == "Plan (dry run, nothing changed) for accounts 123456789012 in us-east-1, group red"
    )
    assert "Would do (create 1, remove 2) (first 1 of 3)" in lines
    assert (
        "  create  vpc-a (123456789012 us-east-1) ~ vpc-b (123456789012 us-east-1)  [red]" in lines
    )
    assert "          no peering yet" in lines


def test_a_summary_lists_the_pairs_done_and_the_removals_held() -> None:
    output = {
        **RECONCILE_OUTPUT,
        "CreatedPairs": [_pair("vpc-a", "vpc-b")],
        "RemovalsHeld": [_pair("vpc-c", "vpc-d"), _pair("vpc-c", "vpc-e")],
        "RemovalsHeldCount": 12,
    }
    lines = render.reconcile_summary(output)
    assert "Created" in lines
    assert "  ✓ vpc-a (123456789012 us-east-1) ~ vpc-b (123456789012 us-east-1)  [red]" in lines
    held = next(line for line in lines if line.startswith("Removals held"))
    assert "(first 2 of 12)" in held
    assert "--confirm-removals" in held


def test_a_failed_create_summary_is_what_compensation_undid() -> None:
    # Given a failed create's last document, after compensation removed a route and the peering
    document = {
        "Error": "RouteConflict",
        "Cause": "...",
        "VpcPeeringConnectionId": "pcx-1",
        "Compensation": {
            "RoutesRemoved": [
                {"Side": "Requester", "RouteTableId": "rtb-r", "Destination": "172.16.0.0/16"}
            ],
            "RouteTablesDeleted": [],
            "PeeringDeleted": True,
        },
    }

    # When summarized / Then each thing undone
    assert render.failure_summary("create", document) == [
        "Compensation: this execution's changes were undone",
        "  route    rtb-r  Requester  172.16.0.0/16",
        "  peering  pcx-1",
    ]
    assert render.failure_summary("create", {"Compensation": None}) == []


def test_a_lambda_cause_is_shown_as_its_message() -> None:
    cause = (
        '{"errorType": "InvalidInput", "errorMessage": "Adopt: unknown field", "stackTrace": []}'
    )
    assert render.failure_line("InvalidInput", cause) == "InvalidInput: Adopt: unknown field"
    assert render.failure_line("CidrOverlap", "a overlaps b") == "CidrOverlap: a overlaps b"


def peering(pcx: str, status: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "VpcPeeringConnectionId": pcx,
        "Status": {"Code": status},
        "RequesterVpcInfo": {"VpcId": "vpc-1", "OwnerId": "123456789012", "Region": "us-east-1",
                             "CidrBlockSet": [{"CidrBlock": "10.0.0.0/16"}]},
        "AccepterVpcInfo": {"VpcId": "vpc-2", "OwnerId": "111111111111", "Region": "eu-west-1",
                            "CidrBlock": "172.16.0.0/16"},
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }  # fmt: skip


def test_list_keeps_only_the_stacks_live_peerings_whatever_the_endpoint_filtered() -> None:
    # Given peerings of this stack (live, deleted, in a group), another stack's and an untagged one
    ours = {"vpc-peering:managed-by": "vpc-peering"}
    described = [
        peering("pcx-3", "active", {**ours, "Name": "A-B", "vpc-peering:group": "blue"}),
        peering("pcx-1", "pending-acceptance", ours),
        peering("pcx-2", "deleted", ours),
        peering("pcx-4", "active", {"vpc-peering:managed-by": "other-stack"}),
        peering("pcx-5", "active", {}),
    ]

    # When listed, without and with the ended ones
    rows = managed(described, "vpc-peering")
    every = managed(described, "vpc-peering", include_ended=True)

    # Then only this stack's, sorted, with both sides, Name and group
    assert [r["VpcPeeringConnectionId"] for r in rows] == ["pcx-1", "pcx-3"]
    assert [r["VpcPeeringConnectionId"] for r in every] == ["pcx-1", "pcx-2", "pcx-3"]
    assert rows[1] == {
        "VpcPeeringConnectionId": "pcx-3",
        "Status": "active",
        "Requester": {"VpcId": "vpc-1", "AccountId": "123456789012", "Region": "us-east-1",
                      "CidrBlocks": ["10.0.0.0/16"]},
        "Accepter": {"VpcId": "vpc-2", "AccountId": "111111111111", "Region": "eu-west-1",
                     "CidrBlocks": ["172.16.0.0/16"]},
        "Name": "A-B",
        "Group": "blue",
    }  # fmt: skip
    table = render.peerings_table(rows)
    assert table[0].split() == [
        "ID", "STATE", "REQUESTER", "ACCOUNT", "REGION", "ACCEPTER", "ACCOUNT", "REGION", "NAME",
        "GROUP",
    ]  # fmt: skip
    assert table[2].split() == [
        "pcx-3", "active", "vpc-1", "123456789012", "us-east-1", "vpc-2", "111111111111",
        "eu-west-1", "A-B", "blue",
    ]  # fmt: skip


class ScriptedSfn:
    """Step Functions answering from a script: one (status, events) per DescribeExecution."""

    def __init__(self, script: list[tuple[str, list[dict[str, Any]]]]) -> None:
        self.script = script
        self.polls = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3 name
        status, _ = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        described = {"executionArn": executionArn, "status": status, "stateMachineArn": "sm"}
        if status == "FAILED":
            described |= {"error": "CidrOverlap", "cause": "a overlaps b"}
        return described

    def get_paginator(self, name: str) -> Any:
        events = self.script[min(self.polls, len(self.script)) - 1][1]

        class Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                return [{"events": events}]

        return Pages()


def test_follow_polls_until_the_end_and_reports_every_state() -> None:
    # Given an execution seen running twice, then failed
    sfn = ScriptedSfn(
        [("RUNNING", FAILED_CREATE[:2]), ("RUNNING", FAILED_CREATE[:6]), ("FAILED", FAILED_CREATE)]
    )
    stream = io.StringIO()
    slept: list[float] = []

    # When followed (without really sleeping)
    outcome: Outcome = follow(
        sfn,
        "arn:exec",
        render.StateLines(stream, render.PLAIN),
        Polling(sleep=slept.append, now=lambda: at(1)),
    )

    # Then it polled three times, reported each state once, and ended with the error
    assert sfn.polls == 3
    assert slept
    assert max(slept) <= Polling().tick
    assert [line.split()[1] for line in stream.getvalue().splitlines()] == [
        "Received",
        "Plan",
        "Compensate",
        "Failed",
    ]
    assert outcome.status == "FAILED"
    assert outcome.failure() == {"Error": "CidrOverlap", "Cause": "a overlaps b"}


def test_an_aborted_execution_has_an_error_name_too() -> None:
    outcome = Outcome("arn:exec", "sm", "TIMED_OUT")
    assert outcome.failure() == {
        "Error": "ExecutionTimedOut",
        "Cause": "the execution ended TIMED_OUT",
    }


def test_create_summary_lists_rules_then_the_checks_then_the_warnings() -> None:
    # Given a create output with a rule and two warnings
    output = {
        "VpcPeeringConnectionId": "pcx-1",
        "Status": "active",
        "SecurityGroupRules": [
            {
                "Side": "Accepter",
                "GroupId": "sg-1",
                "Protocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "Source": "PeerVpc",
                "Cidr": "10.0.0.0/16",
                "State": "created",
            }
        ],
        "Verification": {"Ok": True, "Checks": [{"Subject": "peering pcx-1", "Ok": True}]},
        "Warnings": [
            {
                "Kind": "NetworkAcl",
                "Side": "Accepter",
                "Subject": "acl-1",
                "Detail": "network ACL acl-1: inbound from the peer's 10.0.0.0/16, rule 90 denies",
                "Advice": "allow 10.0.0.0/16 in a rule numbered before it",
            },
            {
                "Kind": "NoFlowLogs",
                "Side": "Requester",
                "Subject": "vpc-1",
                "Detail": "vpc-1 has no flow log",
                "Advice": "aws ec2 create-flow-logs ...",
            },
        ],
    }
    # When summarised
    text = "\n".join(render.create_summary(output))
    # Then the rule, the checks, then each warning with what to do, in that order
    assert "sg-1  Accepter  tcp 5432  from 10.0.0.0/16  created" in text
    assert text.index("Verification: ok") < text.index("Warnings (2)")
    assert "rule 90 denies" in text
    assert "aws ec2 create-flow-logs" in text


def test_cleanup_summary_lists_stale_references_left() -> None:
    output = {
        "VpcPeeringConnectionId": "pcx-1",
        "StatusBefore": "active",
        "Status": "deleted",
        "Removed": {"PeeringDeleted": True},
        "StaleReferences": [
            {
                "Side": "Accepter",
                "GroupId": "sg-1",
                "Protocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "ReferencedGroupId": "sg-2",
            }
        ],
    }
    text = "\n".join(render.cleanup_summary(output))
    assert "Stale references left (1" in text
    assert "sg-1  Accepter  tcp 6379  from sg-2" in text


def test_a_dry_run_says_what_dns_would_become_and_an_adoption() -> None:
    from vpc_peering_cli.render import create_summary

    output = {
        "DryRun": True,
        "PeeringAction": "reuse",
        "Adopt": True,
        "VpcPeeringConnectionId": "pcx-1",
        "Status": "active",
        "Dns": {
            "Requested": False,
            "Changed": True,
            "Requester": {"AllowDnsResolutionFromRemoteVpc": False},
            "Accepter": {"AllowDnsResolutionFromRemoteVpc": False},
        },
    }
    lines = create_summary(output)
    assert "Would adopt (tag as this stack's) peering pcx-1 (active)" in lines
    assert (
        "DNS resolution from the remote VPC: would be off for both sides (a change: the "
        "peering's is not that now)"
    ) in lines


def test_a_reconcile_refused_before_deciding_prints_no_zero_counts() -> None:
    from vpc_peering_cli.render import failure_summary

    refused = {
        "Scope": {"Accounts": ["123456789012"], "Regions": ["us-east-1"]},
        "Desired": 0,
        "Created": 0,
        "Failed": [],
        "DryRun": False,
        "Status": "FAILED",
        "Error": "InvalidInput",
        "Cause": "Vpc.VpcId: ...",
    }
    assert failure_summary("reconcile", refused) == []
    assert failure_summary("reconcile", {**refused, "Desired": 2, "FailedCount": 1}) != []


def test_strings_from_aws_are_escaped_in_summaries_and_errors() -> None:
    from vpc_peering_cli.render import create_summary, failure_line

    hostile = "web\u009b2J\u202eevil\u2028x\x1b[31m"
    lines = create_summary(
        {"VpcPeeringConnectionId": "pcx-1", "Status": "active", "Tags": {"Name": hostile}}
    )
    said = "\n".join(lines) + failure_line("PeeringFailed", f"peering {hostile} failed")
    for raw in ("\u009b", "\u202e", "\u2028", "\x1b"):
        assert raw not in said
    assert "web\\x9b2J\\u202eevil\\u2028x\\x1b[31m" in said


def test_a_dry_run_names_the_vpcs_refused_and_those_waiting_for_approval() -> None:
    # Given a dry run's output whose scope has a VPC the policy refuses and one that waits
    output = {
        **RECONCILE_OUTPUT,
        "DryRun": True,
        "Failed": [],
        "FailedCount": 0,
        "Refused": [{"Group": "red", "VpcId": "vpc-r", "AccountId": "123456789012",
                     "Region": "us-east-1", "Error": "GroupPolicyDenied",
                     "Cause": "group red is not in the group policy"}],
        "RefusedCount": 3,
        "PendingApproval": [{"Group": "green", "VpcId": "vpc-g", "AccountId": "123456789012",
                             "Region": "us-east-1", "Cidrs": ["10.9.0.0/16"]}],
        "PendingApprovalCount": 1,
    }  # fmt: skip

    # When summarized
    lines = render.reconcile_summary(output)

    # Then each is named, with its group, where it is, and why (or the CIDRs it asks with)
    assert "Refused by the group policy (tagged, not members) (first 1 of 3)" in lines
    assert (
        "  red  vpc-r (123456789012 us-east-1)  "
        "GroupPolicyDenied: group red is not in the group policy" in lines
    )
    assert "Waiting for approval to join (vpc-peering approve or deny)" in lines
    assert "  green  vpc-g (123456789012 us-east-1)  10.9.0.0/16" in lines


def test_an_unusable_group_policy_is_said_as_the_policy_not_a_pair() -> None:
    output = {
        **RECONCILE_OUTPUT,
        "Failed": [{"Error": "GroupPolicyInvalid", "Cause": "group policy /p: no such parameter"}],
    }
    lines = render.reconcile_summary(output)
    assert "  ✗ group policy" in lines
    assert "  ✗ reconcile" not in lines
