"""The reconcile machine's steps against moto: Discover, RecordRound, Report, and
the tag-event starter (Step Functions itself runs them in tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from vpc_peering import locks, outcomes, reconcile, tag_start, teardown
from vpc_peering.aws import Access
from vpc_peering.errors import (
    AccountNotAllowed,
    AwsCallFailed,
    InvalidInput,
    PeeringError,
    TransientAwsError,
)
from vpc_peering.groups import VpcKey
from vpc_peering.models.messages import parse
from vpc_peering.models.network import (
    NetworkPlanDocument,
    ReconcileFailure,
    ReconcileOutcome,
    ReconcileScope,
    RoundInput,
    RoundResult,
)
from vpc_peering.models.requests import CleanupRequest, CreateRequest, TagChangeEvent
from vpc_peering.network import NetworkPlan, WorkItem
from vpc_peering.observability import metrics
from vpc_peering.settings import Settings

from .environment import ENV
from .helpers import HUB_ACCOUNT, MEMBER_ACCOUNT, REGION, STACK_NAME, create_chain, mutating
from .test_locks import lease

MakeVpc = Callable[..., str]
VENDOR = "444444444444"


@pytest.fixture(autouse=True)
def open_groups(request: pytest.FixtureRequest) -> None:
    """The hub's group policy admits the groups these tests use, from both accounts (they test
    other rules; tests/unit/test_group_policy.py tests the policy)."""
    if "aws" not in request.fixturenames:
        return
    request.getfixturevalue("aws")
    settings: Settings = request.getfixturevalue("settings")
    rule = {"Accounts": [HUB_ACCOUNT, MEMBER_ACCOUNT]}
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=settings.policy_parameter(),
        Value=json.dumps({"Groups": {"blue": rule, "g": rule}}),
        Type="String",
    )


def mesh(make_vpc: MakeVpc, group: str, *cidrs: str) -> list[str]:
    return [make_vpc(c, tags={"vpc-peering:mesh": group}) for c in cidrs]


def plan_object(doc: NetworkPlanDocument) -> list[dict[str, Any]]:
    """The rounds Discover wrote to the plan bucket (what RunRounds' ItemReader reads)."""
    body = boto3.client("s3", region_name=REGION).get_object(
        Bucket=ENV["PLAN_BUCKET_NAME"], Key=doc.plan_key
    )["Body"]
    rounds: list[dict[str, Any]] = json.loads(body.read())
    return rounds


def round_input(doc: NetworkPlanDocument, number: int) -> RoundInput:
    """What the distributed Map's ItemSelector hands a round's child: the plan object's item."""
    item = plan_object(doc)[number]
    return RoundInput(
        round=item["Round"],
        pairs=item["Pairs"],
        reconcile=doc.execution_name,
        max_parallel_pairs=doc.max_parallel_pairs,
    )


# -------------------------------------------------------------------------------- discover
def test_discover_plans_a_tagged_mesh_in_rounds_and_holds_the_network(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given three VPCs tagged into a mesh, and one untagged
    vpcs = mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    make_vpc("10.3.0.0/16")
    # When discovered
    doc = reconcile.discover({}, "exec-1", access, settings)
    # Then the three pairs are planned, one per round (three VPCs: no two pairs can share one)
    assert (doc.report.desired, doc.has_work, doc.round_count) == (3, True, 3)
    # And the rounds are in the plan object, each pair fully formed; the state has none
    rounds = plan_object(doc)
    assert [len(r["Pairs"]) for r in rounds] == [1, 1, 1]
    named = {
        s["VpcId"] for r in rounds for p in r["Pairs"] for s in (p["Requester"], p["Accepter"])
    }
    assert named == set(vpcs)
    assert {p["Group"] for r in rounds for p in r["Pairs"]} == {"blue"}
    assert doc.plan_key == "plans/exec-1.json"
    assert "Rounds" not in doc.dump()
    # And this execution holds the reconcile lease until its report
    assert lease("reconcile")["Owner"] == "reconcile:exec-1"


def bucket_keys() -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=ENV["PLAN_BUCKET_NAME"])
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_dry_run_has_no_rounds_and_writes_no_plan(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a tagged mesh of three
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    # When a dry run discovers it
    doc = reconcile.discover({"DryRun": True}, "exec-1", access, settings)
    # Then it plans the three pairs, has no work for RunRounds and writes nothing
    assert len(doc.report.plan) == 3
    assert (doc.has_work, doc.round_count, doc.plan_key) == (False, 0, "")
    assert bucket_keys() == []


def test_a_plan_that_cannot_be_written_fails_discover_and_frees_the_network(
    make_vpc: MakeVpc, access: Access, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tagged pair, and a plan bucket that is not there
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16")
    monkeypatch.setattr(settings, "plan_bucket_name", "no-such-bucket-anywhere")
    # When discovered
    with pytest.raises(PeeringError):
        reconcile.discover({}, "exec-1", access, settings)
    # Then the reconcile lease is given back at once
    assert lease("reconcile") == {}


def test_discover_reads_each_account_and_region_five_times_at_most(
    make_vpc: MakeVpc, access: Access, settings: Settings, ec2_calls: list[str]
) -> None:
    # Given a tagged mesh in the hub (and the member accounts empty)
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16")
    # When discovered
    reconcile.discover({}, "exec-1", access, settings)
    # Then each managed account and region is read with five calls at most, however many
    # pairs there are: VPCs, their route tables, peerings; and, where there are tagged VPCs,
    # the security groups tagged vpc-peering:allow and this stack's security-group rules
    # (issue 19 item 2: a rule asked by a tag, or one revoked by hand, is judged like a route)
    locations = len(settings.allowed_account_ids) * len(settings.managed_regions)
    assert len(ec2_calls) <= 5 * locations
    assert set(ec2_calls) <= {
        "DescribeVpcs",
        "DescribeRouteTables",
        "DescribeVpcPeeringConnections",
        "DescribeSecurityGroups",
        "DescribeSecurityGroupRules",
    }
    # And a location without tagged VPCs is read with two calls (VPCs, peerings)
    assert len(ec2_calls) == 5 + 2 * (locations - 1)


def failing_reads(
    monkeypatch: pytest.MonkeyPatch, account: str, error: Exception, times: int = 99
) -> list[str]:
    """DescribeVpcs in ``account`` raises ``error`` its first ``times`` calls; the calls made
    there are listed."""
    real = reconcile.ec2.describe_tagged_vpcs
    calls: list[str] = []

    def describe(access: Access, loc: Any, keys: Any) -> Any:
        if loc.account_id == account:
            calls.append(loc.region)
            if len(calls) <= times:
                raise error
        return real(access, loc, keys)

    monkeypatch.setattr(reconcile.ec2, "describe_tagged_vpcs", describe)
    monkeypatch.setattr(reconcile, "READ_RETRY_SECONDS", 0.0)
    return calls


@pytest.mark.parametrize(
    ("error", "name", "cause"),
    [
        (TransientAwsError("ec2:DescribeVpcs: RequestLimitExceeded"), "TransientAwsError",
         "RequestLimitExceeded"),
        (AwsCallFailed("ec2:DescribeVpcs: the answer could not be parsed"), "AwsCallFailed",
         "could not be parsed"),
        (ValueError("unexpected answer"), "InternalError", "ValueError: unexpected answer"),
    ],
)  # fmt: skip
def test_a_location_that_cannot_be_read_fails_alone_and_the_rest_is_planned(
    make_vpc: MakeVpc,
    access: Access,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    name: str,
    cause: str,
) -> None:
    # Given a tagged pair in the hub, and a member account whose reads keep failing
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16")
    calls = failing_reads(monkeypatch, MEMBER_ACCOUNT, error)
    # When discovered
    doc = reconcile.discover({}, "exec-1", access, settings)
    # Then the member's location is a failure naming it and the error (a throttled one tried
    # again first), and the hub's pair is planned
    [failure] = doc.report.failed
    assert (failure.location, failure.error) == (f"account {MEMBER_ACCOUNT} in {REGION}", name)
    assert cause in failure.cause
    attempts = reconcile.READ_ATTEMPTS if name == "TransientAwsError" else 1
    assert len(calls) == attempts
    assert (doc.report.desired, len(doc.rounds)) == (1, 1)


def test_a_location_throttled_once_is_read_again(
    make_vpc: MakeVpc, access: Access, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a member VPC tagged with a hub VPC, and one throttled read in the member account
    make_vpc("10.0.0.0/16", tags={"vpc-peering:mesh": "blue"})
    make_vpc("10.1.0.0/16", account=MEMBER_ACCOUNT, tags={"vpc-peering:mesh": "blue"})
    failing_reads(monkeypatch, MEMBER_ACCOUNT, TransientAwsError("throttled"), times=1)
    # When discovered / Then it is read again, and the pair is planned
    doc = reconcile.discover({}, "exec-1", access, settings)
    assert (doc.report.failed, doc.report.desired) == ([], 1)


def test_a_vpc_outside_the_boundary_is_refused_before_anything_is_read(
    access: Access, settings: Settings, ec2_calls: list[str]
) -> None:
    with pytest.raises(AccountNotAllowed, match=r"Vpc\.AccountId: account 333333333333"):
        reconcile.discover(
            {"Vpc": {"VpcId": "vpc-0a1b2c3d4e5f60718", "AccountId": "333333333333"}},
            "exec-1",
            access,
            settings,
        )
    with pytest.raises(InvalidInput, match=r"Vpc\.Region: eu-west-1 is not in ManagedRegions"):
        reconcile.discover(
            {"Vpc": {"VpcId": "vpc-0a1b2c3d4e5f60718", "Region": "eu-west-1"}},
            "exec-1",
            access,
            settings,
        )
    assert ec2_calls == []
    assert lease("reconcile") == {}


def test_a_bad_reconcile_input_names_the_field(access: Access, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="Group"):
        reconcile.discover({"Group": "not a group!"}, "exec-1", access, settings)
    with pytest.raises(InvalidInput, match="give Group or Vpc, not both"):
        reconcile.discover(
            {"Group": "blue", "Vpc": {"VpcId": "vpc-0a1b2c3d4e5f60718"}}, "e", access, settings
        )


# ---------------------------------------------------------------------------------- rounds
def test_a_round_starts_the_create_machine_with_the_group_pair_request(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a discovered mesh of two, one with DNS and main-table routing asked by its tags
    a = make_vpc(
        "10.0.0.0/16",
        tags={
            "vpc-peering:mesh": "blue",
            "vpc-peering:dns": "true",
            "vpc-peering:route-tables": "main",
        },
    )
    b = make_vpc("10.1.0.0/16", tags={"vpc-peering:mesh": "blue"})
    doc = reconcile.discover({}, "exec-1", access, settings)
    # When its round is read from the plan object
    run = round_input(doc, 0)
    # Then the child is a create of the pair, for the group, with each side's own options
    [pair] = run.pairs
    assert (pair.action, pair.name, pair.state_machine_arn) == (
        "create",
        "exec-1-000-00",
        settings.create_state_machine_arn,
    )
    child = pair.dump()["Input"]
    request = parse(CreateRequest, child)  # what the create machine's Plan accepts
    assert request.group == "blue"
    sides = {s.vpc_id: s for s in (request.requester, request.accepter)}
    assert (sides[a].dns_resolution, sides[a].route_tables) == (True, "main")
    assert (sides[b].dns_resolution, sides[b].route_tables) == (False, "all")
    assert "RouteTableIds" not in child["Requester"]  # no nulls in a child's input


def test_a_removal_starts_the_cleanup_machine_with_both_sides(settings: Settings) -> None:
    # Given a removal of a group peering between the hub and a member
    hub = VpcKey(HUB_ACCOUNT, REGION, "vpc-0a1b2c3d4e5f60718")
    member = VpcKey(MEMBER_ACCOUNT, REGION, "vpc-0f1e2d3c4b5a69788")
    item = WorkItem("remove", hub, member, "blue", "pcx-0123456789abcdef0")
    # When its work is built
    pair = reconcile.pair_run(item, NetworkPlan(), "tags-20s-1-004-00", settings)
    # Then it is the cleanup machine's, with both sides
    assert (pair.action, pair.name, pair.state_machine_arn) == (
        "remove",
        "tags-20s-1-004-00",
        settings.cleanup_state_machine_arn,
    )
    request = parse(CleanupRequest, pair.dump()["Input"])
    assert request.vpc_peering_connection_id == "pcx-0123456789abcdef0"
    assert request.accepter is not None
    assert request.accepter.account_id == MEMBER_ACCOUNT
    assert (pair.requester.vpc_id, pair.accepter.vpc_id) == (hub.vpc_id, member.vpc_id)


def test_child_names_fit_step_functions_whatever_the_reconcile_is_called() -> None:
    name = reconcile.child_name("x" * 80 + " with spaces/and:colons", 123, 45)
    assert len(name) <= 80
    assert name.endswith("-123-45")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def child_error(error: str, cause: str) -> dict[str, Any]:
    """A failed child as startExecution.sync:2 reports it: States.TaskFailed, the child's
    DescribeExecution as the cause."""
    return {
        "Error": "States.TaskFailed",
        "Cause": json.dumps({"Error": error, "Cause": cause, "Status": "FAILED"}),
    }


def test_record_round_counts_outcomes_and_names_each_failure(
    access: Access, settings: Settings
) -> None:
    # Given a round whose children ended: two created, a removal, two failed
    def pair(action: str, label: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "Action": action,
            "Label": label,
            "Group": "blue",
            "Name": f"n-{label}",
            "Error": error,
        }

    result = RoundResult.model_validate(
        {
            "Round": 2,
            "Reconcile": "r",
            "Pairs": [
                pair("create", "a~b"),
                pair("create", "a~c"),
                pair("remove", "a~d"),
                pair("create", "b~c", child_error("CidrOverlap", "10.0.0.0/16 overlaps")),
                pair(
                    "repair",
                    "c~d",
                    {"Error": "StepFunctions.ExecutionLimitExceededException", "Cause": "busy"},
                ),
            ],
        }
    )
    # When recorded
    outcome = outcomes.record_round(result, access, settings)
    # Then the counts and each failure's own error name
    assert (outcome.created, outcome.removed, outcome.repaired, outcome.failed_count) == (
        2,
        1,
        0,
        2,
    )
    assert [(f.pair, f.error) for f in outcome.failed] == [
        ("b~c", "CidrOverlap"),
        ("c~d", "StepFunctions.ExecutionLimitExceededException"),
    ]
    assert "10.0.0.0/16 overlaps" in outcome.failed[0].cause
    assert "(execution n-b~c)" in outcome.failed[0].cause


# ---------------------------------------------------------------------------------- report
def discovered_state(
    doc: NetworkPlanDocument, round_outcomes: list[dict[str, Any]]
) -> dict[str, Any]:
    """The reconcile machine's state after its rounds: the plan, and where RunRounds'
    ResultWriter put its rounds' results (a succeeded round's outcome as its output, a failed
    round's execution result as it is), as Step Functions exports them."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket = ENV["PLAN_BUCKET_NAME"]
    run = f"plans/results/{doc.execution_name}"
    by_status: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
    for entry in round_outcomes:
        if entry.get("Status") == "FAILED":
            by_status["FAILED"].append(entry)
        else:
            by_status["SUCCEEDED"].append({"Status": "SUCCEEDED", "Output": json.dumps(entry)})
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, entries in by_status.items():
        if entries:
            key = f"{run}/{status}_0.json"
            body = json.dumps(entries).encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": f"arn:x:{run}", "ResultFiles": files}
    key = f"{run}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    details = {"Bucket": bucket, "Key": key}
    return {
        **doc.dump(),
        "Rounds": {"MapRunArn": manifest["MapRunArn"], "ResultWriterDetails": details},
    }


def test_report_sums_the_rounds_and_gives_the_lease_back(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a discovered mesh of three whose rounds all succeeded
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    doc = reconcile.discover({}, "exec-1", access, settings)
    round_outcomes = [{"Round": r.round, "Created": 1, "Done": [[r.round, 0]]} for r in doc.rounds]
    # When reported
    result = outcomes.report(discovered_state(doc, round_outcomes), "exec-1", access, settings)
    # Then it succeeded with three created, named from the plan object, and the network is
    # free for the next reconcile
    output = result.dump()
    assert (output["Status"], output["Desired"], output["Created"]) == ("SUCCEEDED", 3, 3)
    assert [p.model_dump(by_alias=True) for p in result.created_pairs] == [
        {**p.model_dump(by_alias=True, include={"requester", "accepter", "group"})}
        for r in doc.rounds
        for p in r.pairs
    ]
    assert "Error" not in output
    assert lease("reconcile") == {}
    # And the plan object is deleted (the bucket's lifecycle rule expires any left behind)
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=ENV["PLAN_BUCKET_NAME"])
    assert listed.get("KeyCount", 0) == 0


def test_report_of_failed_pairs_is_incomplete_naming_each_pair_and_error(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a pair of overlapping members (found by Discover) and a round with a failure
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.0.128.0/17")
    doc = reconcile.discover({}, "exec-1", access, settings)
    failed = {"Pair": "x ~ y", "Group": "blue", "Error": "AcceptDenied", "Cause": "untrusted"}
    round_outcomes = [{"Round": 0, "Created": 1, "FailedCount": 1, "Failed": [failed]}]
    # When reported
    result = outcomes.report(discovered_state(doc, round_outcomes), "exec-1", access, settings)
    # Then ReconcileIncomplete, whose cause lists each failed pair with its error name
    assert (result.status, result.error, result.failed_count) == (
        "INCOMPLETE",
        "ReconcileIncomplete",
        2,
    )
    assert result.cause is not None
    assert "CidrOverlap" in result.cause
    assert "x ~ y [blue]: AcceptDenied" in result.cause


def test_report_counts_every_pair_of_a_failed_round_and_names_its_error(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a discovered mesh whose first round's child execution failed: Step Functions puts
    # that execution's result in RunRounds' results (ToleratedFailurePercentage 100)
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    doc = reconcile.discover({}, "exec-1", access, settings)
    first, *others = doc.rounds
    child_input = {
        **plan_object(doc)[0],
        "Reconcile": "exec-1",
        "MaxParallelPairs": 10,
    }
    failed_round = {
        "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:r/RunRounds:c1",
        "Input": json.dumps(child_input),
        "Status": "FAILED",
        "Error": "InternalError",
        "Cause": "A round's own steps failed",
    }
    round_outcomes = [failed_round, *({"Round": r.round, "Created": len(r.pairs)} for r in others)]
    # When reported
    result = outcomes.report(discovered_state(doc, round_outcomes), "exec-1", access, settings)
    # Then the other rounds count, the failed round's pairs are failed, its error is named
    assert result.created == sum(len(r.pairs) for r in others)
    assert result.failed_count == len(first.pairs)
    assert (result.status, result.error) == ("INCOMPLETE", "ReconcileIncomplete")
    (failure,) = result.failed
    assert failure.error == "InternalError"
    assert f"round {first.round} ({len(first.pairs)} pairs) failed" in failure.cause
    assert "execution:r/RunRounds:c1" in failure.cause


def test_report_reads_the_rounds_results_where_the_result_writer_put_them_however_large(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a discovered mesh, and RunRounds' results exported by its ResultWriter: a manifest
    # and a file per status, in which twelve failed rounds each carry a 40 KB input (together
    # past Step Functions' 256 KB, were they in the state) and the real rounds succeeded
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    doc = reconcile.discover({}, "exec-1", access, settings)
    failed = [
        {
            "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:execution:r/RunRounds:c{n}",
            "Input": json.dumps({"Round": 90 + n, "Pairs": [], "Padding": "x" * 40_000}),
            "Status": "FAILED",
            "Error": "Lambda.ServiceException",
            "Cause": "RecordRound could not run",
        }
        for n in range(12)
    ]
    succeeded = [{"Round": r.round, "Created": len(r.pairs)} for r in doc.rounds]
    state = discovered_state(doc, [*failed, *succeeded])
    # When reported
    result = outcomes.report(state, "exec-1", access, settings)
    # Then every round counts: the real ones' pairs created, each failed round's error named
    assert result.created == sum(len(r.pairs) for r in doc.rounds)
    assert result.failed_count == 12
    assert {f.error for f in result.failed} == {"Lambda.ServiceException"}
    assert (result.status, result.error) == ("INCOMPLETE", "ReconcileIncomplete")
    # And the report stays small, and the results are deleted with the plan
    assert len(json.dumps(result.dump())) < 64 * 1024
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=ENV["PLAN_BUCKET_NAME"], Prefix="plans/")
    assert listed.get("KeyCount", 0) == 0, listed.get("Contents")


def test_report_says_when_the_rounds_results_cannot_be_read(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given RunRounds' results said to be at a manifest that is not there
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16")
    doc = reconcile.discover({}, "exec-1", access, settings)
    details = {"Bucket": ENV["PLAN_BUCKET_NAME"], "Key": "plans/results/gone/manifest.json"}
    state = {**doc.dump(), "Rounds": {"MapRunArn": "arn:x", "ResultWriterDetails": details}}
    # When reported
    result = outcomes.report(state, "exec-1", access, settings)
    # Then the reconcile is incomplete, saying why
    assert (result.status, result.error) == ("INCOMPLETE", "ReconcileIncomplete")
    assert any("results could not be read" in f.cause for f in result.failed)


def test_report_of_a_reconcile_that_could_not_start_names_its_error(
    access: Access, settings: Settings
) -> None:
    state = {"Request": {}, "Error": {"Error": "InvalidInput", "Cause": "Group: bad"}}
    result = outcomes.report(state, "exec-1", access, settings)
    assert (result.status, result.error, result.cause) == ("FAILED", "InvalidInput", "Group: bad")


# ------------------------------------------------------------------------------ tag events
def tag_event(account: str = HUB_ACCOUNT, region: str = REGION) -> TagChangeEvent:
    return parse(
        TagChangeEvent,
        {
            "version": "0",
            "id": "5d4e6f7a-8b9c-4d0e-9f1a-3b4c5d6e7f80",
            "detail-type": "Tag Change on Resource",
            "source": "aws.tag",
            "account": account,
            "time": "2026-12-02T12:00:00Z",
            "region": region,
            "resources": [f"arn:aws:ec2:{region}:{account}:vpc/vpc-0a1b2c3d4e5f60718"],
            "detail": {
                "changed-tag-keys": ["vpc-peering:mesh"],
                "service": "ec2",
                "resource-type": "vpc",
                "version": 1,
                "tags": {},
            },
        },
    )


@pytest.fixture
def reconcile_machine(aws: None, settings: Settings) -> str:
    arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"{STACK_NAME}-reconcile",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/r",
    )["stateMachineArn"]
    assert arn == settings.reconcile_state_machine_arn
    return str(arn)


def test_a_tag_change_starts_a_reconcile_after_its_window_and_queues_the_vpc(
    access: Access, settings: Settings, reconcile_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the clock 3 s into a 20 s window
    monkeypatch.setattr(tag_start.time, "time", lambda: 20 * 1000 + 3.0)
    # When a VPC's group tag changes
    outcome = tag_start.on_tag_change(tag_event(), access, settings)
    # Then a reconcile starts, named for the window and the event, beginning 5 s after the
    # window ends, for the tag changes queued by then
    assert outcome.started
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [execution] = sfn.list_executions(stateMachineArn=reconcile_machine)["executions"]
    assert execution["name"] == "tags-20s-1000-5d4e6f7a-8b9c-4d0e-9f1a-3b4c5d6e7f80"
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "NotBefore": "1970-01-01T05:33:45Z",  # 20025 s
        "TagChanges": True,
    }
    assert locks.take_tag_changes(access, settings) == [
        (HUB_ACCOUNT, REGION, "vpc-0a1b2c3d4e5f60718")
    ]


def test_tag_changes_while_a_reconcile_is_queued_join_it_however_many(
    access: Access, settings: Settings, reconcile_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queued reconcile (started, not yet begun)
    first = tag_start.on_tag_change(tag_event(), access, settings)
    # When fifty more tag changes arrive, in later windows too, for other VPCs
    for number in range(50):
        monkeypatch.setattr(tag_start.time, "time", lambda n=number: 20.0 * (1000 + n))
        event = tag_event().model_copy(
            update={
                "id": f"event-{number}",
                "resources": [f"arn:aws:ec2:{REGION}:{HUB_ACCOUNT}:vpc/vpc-{number:017x}"],
            }
        )
        outcome = tag_start.on_tag_change(event, access, settings)
        assert not outcome.started
        assert "queued" in outcome.reason
    # Then no other execution waits: the queued one will take every VPC
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert [
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=reconcile_machine)["executions"]
    ] == [first.execution_arn]
    assert len(locks.take_tag_changes(access, settings)) == 51


def test_a_change_after_the_queue_was_taken_starts_the_next_reconcile(
    access: Access, settings: Settings, reconcile_machine: str
) -> None:
    # Given a reconcile that took the queue (it runs, past Discover)
    tag_start.on_tag_change(tag_event(), access, settings)
    locks.take_tag_changes(access, settings)
    # When another change arrives
    event = tag_event().model_copy(update={"id": "another-event"})
    outcome = tag_start.on_tag_change(event, access, settings)
    # Then it starts a reconcile of its own, which will take it
    assert outcome.started
    assert outcome.execution_arn is not None
    assert outcome.execution_arn.endswith("-another-event")


def test_a_queued_reconcile_that_ended_before_taking_the_queue_is_replaced(
    access: Access, settings: Settings, reconcile_machine: str
) -> None:
    # Given the queued reconcile stopped before it began
    first = tag_start.on_tag_change(tag_event(), access, settings).execution_arn
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sfn.stop_execution(executionArn=first)
    # When another change arrives
    event = tag_event().model_copy(update={"id": "later-event"})
    outcome = tag_start.on_tag_change(event, access, settings)
    # Then a new reconcile takes its place, and both changes are queued for it
    assert outcome.started
    assert (outcome.execution_arn or "").endswith("-later-event")
    assert len(locks.take_tag_changes(access, settings)) == 1  # the same VPC, once


def test_an_operators_reconcile_goes_before_a_queued_tag_reconcile(
    access: Access, settings: Settings, reconcile_machine: str
) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    names = {}
    for who in ("holder", "operator", "tags"):
        names[who] = sfn.start_execution(stateMachineArn=reconcile_machine, name=who)[
            "executionArn"
        ].rsplit(":", 1)[1]
    # Given one reconcile holding the lease, and an operator's reconcile that had to wait
    reconcile.take_turn(parse(reconcile.ReconcileRequest, {}), "holder", access, settings)
    with pytest.raises(reconcile.ReconcileInProgress):
        reconcile.take_turn(
            parse(reconcile.ReconcileRequest, {"Group": "g"}), "operator", access, settings
        )
    # When the holder gives the lease back, and a tag-started reconcile tries first
    locks.release(access, settings, *locks.reconcile_lease("holder"))
    tags = parse(reconcile.ReconcileRequest, {"TagChanges": True})
    # Then it waits: the operator's goes first
    with pytest.raises(reconcile.ReconcileInProgress, match="goes first"):
        reconcile.take_turn(tags, "tags", access, settings)
    reconcile.take_turn(
        parse(reconcile.ReconcileRequest, {"Group": "g"}), "operator", access, settings
    )
    locks.release(access, settings, *locks.reconcile_lease("operator"))
    # And once the operator's has had its turn, the tag-started one takes the lease
    assert reconcile.take_turn(tags, "tags", access, settings)[1] == "reconcile:tags"


@pytest.mark.parametrize(
    ("account", "region", "reason"),
    [("333333333333", REGION, "AllowedAccountIds"), (HUB_ACCOUNT, "eu-west-1", "ManagedRegions")],
)
def test_a_tag_change_outside_the_managed_scope_starts_nothing(
    access: Access,
    settings: Settings,
    reconcile_machine: str,
    account: str,
    region: str,
    reason: str,
) -> None:
    outcome = tag_start.on_tag_change(tag_event(account, region), access, settings)
    assert (outcome.started, reason in outcome.reason) == (False, True)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert sfn.list_executions(stateMachineArn=reconcile_machine)["executions"] == []


def test_a_forged_event_for_a_vpc_of_another_account_is_refused(
    access: Access, settings: Settings
) -> None:
    event = tag_event().model_copy(update={"account": MEMBER_ACCOUNT})
    with pytest.raises(InvalidInput, match="not in the event's account and region"):
        tag_start.on_tag_change(event, access, settings)


def test_a_vpc_arn_is_matched_whole_a_final_newline_included() -> None:
    # Given a tag event whose VPC ARN ends with a newline
    event = tag_event()
    event = event.model_copy(update={"resources": [event.resources[0] + "\n"]})
    # When its VPC is read / Then it is refused, the value shown as repr
    with pytest.raises(InvalidInput, match=r"vpc-0a1b2c3d4e5f60718\\n' is not a VPC ARN"):
        tag_start.vpc_of_event(event)


def test_the_lease_key_is_one_for_every_reconcile() -> None:
    assert locks.reconcile_lease("a")[0] == locks.reconcile_lease("b")[0]


# --------------------------------------------------------------- the whole reconcile, in moto
def run_child(pair: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any] | None:
    """One child execution's happy path, step by step as its machine would run it; its error
    shaped as startExecution.sync reports a failed child."""
    try:
        if pair["Action"] == "remove":
            doc = teardown.cleanup_plan(pair["Input"], pair["Name"], access, settings)
            doc = teardown.remove_routes(doc, access, settings)
            teardown.delete_peering(doc, access, settings)
        else:
            create_chain(pair["Input"], pair["Name"], access, settings)
    except PeeringError as exc:
        return child_error(exc.name, str(exc))
    return None


def run_reconcile(raw: Any, name: str, access: Access, settings: Settings) -> ReconcileOutcome:
    """The reconcile machine, its rounds one after the other, each child run to its end."""
    doc = reconcile.discover(raw, name, access, settings)
    round_outcomes = []
    for plan in doc.rounds:
        run = round_input(doc, plan.round).dump()
        pairs = [{**p, "Error": run_child(p, access, settings)} for p in run["Pairs"]]
        result = RoundResult.model_validate(
            {"Round": plan.round, "Reconcile": name, "Pairs": pairs}
        )
        round_outcomes.append(outcomes.record_round(result, access, settings).dump())
    return outcomes.report(discovered_state(doc, round_outcomes), name, access, settings)


def peerings_of(ec2: Any, group: str) -> dict[frozenset[str], str]:
    """Live peerings tagged for this group: VPC pair -> peering id."""
    found = {}
    for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]:
        tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
        if p["Status"]["Code"] == "active" and tags.get("vpc-peering:group") == group:
            vpcs = frozenset({p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]})
            found[vpcs] = p["VpcPeeringConnectionId"]
    return found


def test_a_tagged_mesh_converges_then_a_second_reconcile_changes_nothing(
    make_vpc: MakeVpc,
    make_route_table: Callable[..., str],
    ec2: Any,
    access: Access,
    settings: Settings,
    ec2_calls: list[str],
) -> None:
    # Given three VPCs tagged into a mesh, each with a second route table
    vpcs = mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    for vpc in vpcs:
        make_route_table(vpc)
    # When reconciled
    first = run_reconcile({}, "r-1", access, settings)
    # Then every pair is peered for the group, with routes in every table of both sides
    assert (first.status, first.desired, first.created) == ("SUCCEEDED", 3, 3)
    peerings = peerings_of(ec2, "blue")
    assert len(peerings) == 3
    cidr = {v["VpcId"]: v["CidrBlock"] for v in ec2.describe_vpcs(VpcIds=vpcs)["Vpcs"]}
    for vpc in vpcs:
        for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "RouteTables"
        ]:
            routed = {
                r.get("DestinationCidrBlock"): r.get("VpcPeeringConnectionId")
                for r in table["Routes"]
            }
            for peer in set(vpcs) - {vpc}:
                assert routed[cidr[peer]] == peerings[frozenset({vpc, peer})]
    # When reconciled again with nothing changed
    ec2_calls.clear()
    second = run_reconcile({}, "r-2", access, settings)
    # Then every pair is unchanged and nothing at all was changed in EC2
    assert (second.desired, second.unchanged, second.created, second.repaired) == (3, 3, 0, 0)
    assert mutating(ec2_calls) == []


def test_untagging_a_vpc_removes_its_group_peerings_and_keeps_the_others(
    make_vpc: MakeVpc, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a converged mesh of three
    a, b, c = mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16")
    run_reconcile({}, "r-1", access, settings)
    # When c leaves the group and the group is reconciled
    ec2.delete_tags(Resources=[c], Tags=[{"Key": "vpc-peering:mesh"}])
    result = run_reconcile({"Group": "blue"}, "r-2", access, settings)
    # Then c's peerings are gone and a-b stays
    assert (result.status, result.removed, result.unchanged) == ("SUCCEEDED", 2, 1)
    assert set(peerings_of(ec2, "blue")) == {frozenset({a, b})}


def test_dns_follows_each_vpcs_own_tag(
    make_vpc: MakeVpc, ec2: Any, access: Access, settings: Settings
) -> None:
    # Given a pair where only a asks for DNS resolution on its side
    a = make_vpc("10.0.0.0/16", tags={"vpc-peering:mesh": "g", "vpc-peering:dns": "true"})
    b = make_vpc("10.1.0.0/16", tags={"vpc-peering:mesh": "g"})
    run_reconcile({}, "r-1", access, settings)

    def dns() -> dict[str, bool]:
        items = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
        [p] = [p for p in items if p["Status"]["Code"] == "active"]
        return {
            info["VpcId"]: info["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"]
            for info in (p["RequesterVpcInfo"], p["AccepterVpcInfo"])
        }

    # Then a's side allows it, b's does not
    assert dns() == {a: True, b: False}
    # When a's tag is turned off and b's on, and the group reconciled
    ec2.create_tags(Resources=[a], Tags=[{"Key": "vpc-peering:dns", "Value": "false"}])
    ec2.create_tags(Resources=[b], Tags=[{"Key": "vpc-peering:dns", "Value": "true"}])
    result = run_reconcile({"Group": "g"}, "r-2", access, settings)
    # Then the pair was repaired to exactly what the tags say
    assert result.repaired == 1
    assert dns() == {a: False, b: True}


def test_a_vendor_request_is_accepted_and_routed_on_our_side_only(
    make_vpc: MakeVpc,
    ec2_in: Callable[[str], Any],
    ec2: Any,
    access: Access,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the vendor in ExternalRequesterAccountIds, and our VPC accepting its requests
    monkeypatch.setenv("EXTERNAL_REQUESTER_ACCOUNT_IDS", VENDOR)
    settings = Settings.from_env()
    ours = make_vpc("10.0.0.0/16", tags={"vpc-peering:accept-from": VENDOR})
    # And the vendor's request, made with its own credentials
    vendor_ec2 = ec2_in(VENDOR)
    theirs = vendor_ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    pcx = vendor_ec2.create_vpc_peering_connection(
        VpcId=theirs, PeerVpcId=ours, PeerOwnerId=HUB_ACCOUNT
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    # When reconciled
    result = run_reconcile({}, "r-1", Access(settings), settings)
    # Then it was accepted and our main table routes the vendor's CIDR to it
    assert (result.status, result.accepted, result.failed) == ("SUCCEEDED", 1, [])
    [table] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [ours]}])[
        "RouteTables"
    ]
    routed = {
        r.get("DestinationCidrBlock"): r.get("VpcPeeringConnectionId") for r in table["Routes"]
    }
    assert routed["192.168.0.0/16"] == pcx
    # And nothing was routed in the vendor's VPC
    [theirs_table] = vendor_ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [theirs]}]
    )["RouteTables"]
    assert [r.get("VpcPeeringConnectionId") for r in theirs_table["Routes"]] == [None]


# ------------------------------------------------------------------------- byte budgets
def _big_plan(pairs: int, group: str) -> Any:
    from vpc_peering.groups import VpcKey
    from vpc_peering.network import NetworkPlan, WorkItem

    def key(i: int) -> VpcKey:
        return VpcKey(HUB_ACCOUNT, REGION, f"vpc-{i:017x}")

    plan = NetworkPlan()
    for i in range(pairs):
        plan.work.append(WorkItem("create", key(2 * i), key(2 * i + 1), group, reason="x" * 200))
        plan.removals_held.append(WorkItem("remove", key(2 * i), key(2 * i + 1), group, "pcx-1"))
    return plan


def test_a_dry_run_of_thousands_of_pairs_lists_within_its_budget_and_counts_them_all(
    settings: Settings,
) -> None:
    # Given a plan of 3,000 creates with long reasons and group names, and 3,000 held removals
    plan = _big_plan(3000, "g" * 64)
    request = parse(reconcile.ReconcileRequest, {"DryRun": True})
    scope = reconcile.ReconcileScope(accounts=[HUB_ACCOUNT], regions=[REGION])
    # When the dry run's document is written
    doc = reconcile.dry_run_document(plan, request, scope, "exec", settings)
    # Then it stays well inside Step Functions' 256 KB, lists a first part and counts them all
    size = len(json.dumps(doc.dump()))
    assert size < reconcile.PLAN_LIST_BYTES + reconcile.REPORT_LIST_BYTES + 4096
    assert 0 < len(doc.report.plan) < 3000
    assert doc.report.plan_counts == {"create": 3000}
    assert 0 < len(doc.report.removals_held) < 3000
    assert doc.report.removals_held_count == 3000


def test_an_incomplete_cause_counts_pairs_as_pairs_and_the_policy_as_the_policy() -> None:
    # Given a reconcile whose group policy could not be used, one location not read and one
    # pair that failed
    outcome = ReconcileOutcome(
        scope=ReconcileScope(accounts=[HUB_ACCOUNT], regions=[REGION]),
        failed_count=3,
        failed=[
            ReconcileFailure(location=f"{MEMBER_ACCOUNT} {REGION}", error="AccessDenied",
                             cause="no role"),
            ReconcileFailure(error="GroupPolicyInvalid", cause="the parameter does not exist"),
            ReconcileFailure(pair="vpc-a ~ vpc-b", group="blue", error="RouteConflict",
                             cause="rtb-1"),
        ],
    )  # fmt: skip

    # When its cause is written
    cause = outcomes.incomplete_cause(outcome)

    # Then the pair is counted as a pair, the location and the policy as what they are
    assert cause.startswith(
        "1 of the reconcile's pairs did not converge; 1 account(s) and region(s) could not be "
        "read; the group policy cannot be used (desired 0,"
    )
    assert "group policy: GroupPolicyInvalid" in cause
    assert "reconcile: GroupPolicyInvalid" not in cause


def test_a_policy_alone_is_not_counted_as_a_pair() -> None:
    outcome = ReconcileOutcome(
        scope=ReconcileScope(accounts=[HUB_ACCOUNT], regions=[REGION]),
        failed_count=1,
        failed=[ReconcileFailure(error="GroupPolicyInvalid", cause="the parameter does not exist")],
    )
    cause = outcomes.incomplete_cause(outcome)
    assert "pairs" not in cause.split("(", 1)[0]
    assert cause.startswith("the group policy cannot be used (desired 0,")


def test_report_counts_each_reconcile_it_says_did_not_succeed_for_the_alarm(
    make_vpc: MakeVpc, access: Access, settings: Settings
) -> None:
    # Given a reconcile that could not start, a dry run, and one that succeeded
    metrics.clear_metrics()
    failed = {"Request": {}, "Error": {"Error": "InvalidInput", "Cause": "Group: bad"}}
    mesh(make_vpc, "blue", "10.0.0.0/16", "10.1.0.0/16")
    planned = reconcile.discover({"DryRun": True}, "plan-1", access, settings)

    def reported() -> int:
        return len(metrics.metric_set.get(outcomes.FAILURE_REPORTED_METRIC, {}).get("Value", []))

    # When each is reported
    outcomes.report(failed, "exec-1", access, settings)
    after_failed = reported()
    outcomes.report(planned.dump(), "plan-1", access, settings)
    after_plan = reported()
    done = run_reconcile({}, "exec-2", access, settings)
    # Then only the failed one is counted: it is published, so the failed-executions alarm
    # leaves it out; a dry run and a success are not failures
    assert (after_failed, after_plan, done.status) == (1, 1, "SUCCEEDED")
    assert reported() == 1
    metrics.clear_metrics()
