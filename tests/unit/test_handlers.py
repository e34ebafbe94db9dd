"""Lambda entry points: events in, JSON-ready documents out, errors by their documented name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vpc_peering import callbacks, runtime
from vpc_peering.errors import InvalidInput
from vpc_peering.handlers import (
    accept,
    add_routes,
    cleanup_plan,
    compensate,
    configure_dns,
    create_peering,
    delete_peering,
    plan,
    remove_routes,
    report_failure,
    verify,
)

from .helpers import (
    FakeLambdaContext,
    FakeStepFunctions,
    TutorialVpcs,
    accept_detail,
    peering_status,
    snapshot,
    tutorial_request,
)

Handler = Callable[[Any, Any], Any]


def step(handler: Handler, document: dict[str, Any], ctx: FakeLambdaContext) -> dict[str, Any]:
    """A later step as the state machine invokes it."""
    result: dict[str, Any] = handler({"Document": document, "ExecutionName": "x"}, ctx)
    return json.loads(json.dumps(result))  # what Step Functions passes on is JSON


# ------------------------------------------------------------------------------------ plan
def test_plan_handler_returns_the_plan_as_json(
    tutorial: TutorialVpcs, lambda_context: FakeLambdaContext, aws: None
) -> None:
    # Given the Plan state's payload
    event = {"Request": tutorial_request(tutorial), "ExecutionName": "x"}
    # When the handler runs
    result = plan.lambda_handler(event, lambda_context)
    # Then it returns the document as JSON-ready data, with PascalCase fields
    assert json.loads(json.dumps(result)) == result
    assert result["ExecutionName"] == "x"
    assert result["PeeringAction"] == "create"
    assert {r["Side"] for r in result["Routes"]} == {"Requester", "Accepter"}


def test_plan_handler_without_execution_name_uses_unknown(
    tutorial: TutorialVpcs, lambda_context: FakeLambdaContext, aws: None
) -> None:
    result = plan.lambda_handler({"Request": tutorial_request(tutorial)}, lambda_context)
    assert result["ExecutionName"] == "unknown"


def test_plan_handler_bad_request_raises_invalid_input(
    lambda_context: FakeLambdaContext, aws: None
) -> None:
    # Given a request with a typo
    event = {"Request": {"Requestor": {"VpcId": "vpc-01234567"}}, "ExecutionName": "x"}
    # When the handler runs / Then InvalidInput (its name is the execution's error)
    with pytest.raises(InvalidInput, match="Requestor"):
        plan.lambda_handler(event, lambda_context)


@pytest.mark.parametrize("event", [{"ExecutionName": "x"}, [], "Request"])
def test_plan_handler_without_a_request_raises_invalid_input(
    event: Any, lambda_context: FakeLambdaContext, aws: None
) -> None:
    with pytest.raises(InvalidInput, match="missing 'Request'"):
        plan.lambda_handler(event, lambda_context)


def test_document_step_with_a_non_object_document_raises_invalid_input(
    lambda_context: FakeLambdaContext, aws: None
) -> None:
    with pytest.raises(InvalidInput, match=r"^Document: must be a JSON object"):
        create_peering.lambda_handler({"Document": [1], "ExecutionName": "x"}, lambda_context)


def test_document_step_with_an_invalid_document_names_the_field(
    lambda_context: FakeLambdaContext, aws: None
) -> None:
    with pytest.raises(InvalidInput, match=r"Document\.Requester"):
        verify.lambda_handler({"Document": {"ExecutionName": "x"}}, lambda_context)


# ------------------------------------------------------------------ the create machine
def test_create_and_cleanup_through_the_handlers(
    tutorial: TutorialVpcs,
    ec2: Any,
    fake_sfn: FakeStepFunctions,
    lambda_context: FakeLambdaContext,
) -> None:
    # Given the Plan and CreatePeering states ran
    doc = plan.lambda_handler(
        {"Request": tutorial_request(tutorial), "ExecutionName": "x"}, lambda_context
    )
    doc = step(create_peering.lambda_handler, doc, lambda_context)
    pcx = doc["VpcPeeringConnectionId"]
    assert peering_status(ec2, pcx) == "pending-acceptance"
    # When the accept function gets the acceptance event
    reported = accept.lambda_handler({"detail": accept_detail(doc, token="tok")}, lambda_context)
    # Then it accepts and reports success with the outcome to the waiting task
    assert reported == {
        "Reported": True,
        "VpcPeeringConnectionId": pcx,
        "Status": "active",
        "AcceptedNow": True,
    }
    assert [c[0] for c in fake_sfn.calls] == ["heartbeat", "success"]
    assert json.loads(fake_sfn.calls[1][1]["output"])["Status"] == "active"
    # When the remaining steps run with the acceptance in the document
    doc["Acceptance"] = json.loads(fake_sfn.calls[1][1]["output"])
    for handler in (add_routes, configure_dns, verify):
        doc = step(handler.lambda_handler, doc, lambda_context)
    # Then the peering is verified
    assert doc["Verification"]["Ok"] is True
    assert {r["State"] for r in doc["Routes"]} == {"created"}

    # When the cleanup machine runs on the create output
    cleanup = cleanup_plan.lambda_handler({"Request": doc, "ExecutionName": "c"}, lambda_context)
    cleanup = step(remove_routes.lambda_handler, cleanup, lambda_context)
    cleanup = step(delete_peering.lambda_handler, cleanup, lambda_context)
    # Then everything is removed
    assert cleanup["Removed"]["PeeringDeleted"] is True
    assert len(cleanup["Removed"]["Routes"]) == 2
    assert peering_status(ec2, pcx) == "deleted"


def test_accept_handler_reports_a_denial_as_task_failure(
    tutorial: TutorialVpcs,
    ec2: Any,
    fake_sfn: FakeStepFunctions,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a pending peering and a policy that trusts only another account
    doc = plan.lambda_handler(
        {"Request": tutorial_request(tutorial), "ExecutionName": "x"}, lambda_context
    )
    doc = step(create_peering.lambda_handler, doc, lambda_context)
    monkeypatch.setenv("TRUSTED_REQUESTER_ACCOUNT_IDS", "111111111111")
    accept.load_settings.cache_clear()
    # When the accept function runs
    reported = accept.lambda_handler({"detail": accept_detail(doc)}, lambda_context)
    # Then it reports AcceptDenied to the waiting task and leaves the peering pending
    assert reported == {"Reported": True, "Error": "AcceptDenied"}
    kind, kwargs = fake_sfn.calls[-1]
    assert (kind, kwargs["error"]) == ("failure", "AcceptDenied")
    assert "not trusted" in kwargs["cause"]
    assert peering_status(ec2, doc["VpcPeeringConnectionId"]) == "pending-acceptance"


def test_accept_handler_without_a_task_token_does_nothing(
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    ec2_calls: list[str],
) -> None:
    # Given any AWS client or accept call would fail the test
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no AWS call expected")

    monkeypatch.setattr(callbacks, "_client", forbidden)
    monkeypatch.setattr(runtime, "Access", forbidden)
    # When events without a usable token arrive / Then they are dropped unreported
    for event in (
        {"detail": {"VpcPeeringConnectionId": "pcx-0123456789abcdef0"}},
        {"detail": {"TaskToken": ""}},
        {"detail": "x"},
        {},
    ):
        assert accept.lambda_handler(event, lambda_context) == {"Reported": False}
    assert ec2_calls == []


def test_accept_handler_with_a_stale_token_makes_no_ec2_call(
    tutorial: TutorialVpcs,
    fake_sfn: FakeStepFunctions,
    lambda_context: FakeLambdaContext,
    ec2_calls: list[str],
    ec2: Any,
) -> None:
    # Given no execution waits on the token any more
    fake_sfn.heartbeat_error = "TaskTimedOut"
    detail = {
        "TaskToken": "old",
        "VpcPeeringConnectionId": "pcx-0123456789abcdef0",
        "Requester": {"VpcId": tutorial.vpc1, "AccountId": "123456789012", "Region": "us-east-1"},
        "Accepter": {"VpcId": tutorial.vpc2, "AccountId": "123456789012", "Region": "us-east-1"},
    }
    before = snapshot(ec2)
    # When the event arrives / Then it is dropped after the heartbeat, before any EC2 call
    assert accept.lambda_handler({"detail": detail}, lambda_context) == {"Reported": False}
    assert [c[0] for c in fake_sfn.calls] == ["heartbeat"]
    assert ec2_calls == []
    assert snapshot(ec2) == before


# --------------------------------------------------------------------- failure handling
def test_report_failure_handler_names_the_error(
    lambda_context: FakeLambdaContext, aws: None
) -> None:
    # Given the cleanup machine's failure payload
    cause = json.dumps({"errorType": "NotManaged", "errorMessage": "pcx-1 was not created by"})
    event = {
        "Document": {
            "VpcPeeringConnectionId": "pcx-1",
            "Error": {"Error": "NotManaged", "Cause": cause},
        }
    }
    # When the handler runs / Then it returns the short name and message, where it failed
    # and the peering it concerns
    assert report_failure.lambda_handler(event, lambda_context) == {
        "Error": "NotManaged",
        "Cause": "pcx-1 was not created by",
        "Stage": "Cleanup",
        "DryRun": False,
        "VpcPeeringConnectionId": "pcx-1",
        "RequesterVpcId": None,
        "AccepterVpcId": None,
        "Compensation": None,
    }


def test_report_failure_handler_marks_a_dry_run_refused_at_plan(
    lambda_context: FakeLambdaContext, aws: None
) -> None:
    # Given the create machine's Plan refusal of a dry run (only the request is here)
    event = {
        "Document": {
            "Request": {
                "Requester": {"VpcId": "vpc-1"},
                "Accepter": {"VpcId": "vpc-2"},
                "DryRun": True,
            },
            "Error": {"Error": "CidrOverlap", "Cause": "Requester vpc-1 overlaps"},
        }
    }
    # When the handler runs
    result = report_failure.lambda_handler(event, lambda_context)
    # Then the refusal is Stage Plan, a dry run, naming both VPCs
    assert (result["Stage"], result["DryRun"]) == ("Plan", True)
    assert (result["RequesterVpcId"], result["AccepterVpcId"]) == ("vpc-1", "vpc-2")
    assert result["Error"] == "CidrOverlap"


def _emf_metrics(out: str) -> set[str]:
    """The metric names of the CloudWatch embedded-metric-format records a handler printed."""
    names: set[str] = set()
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            for directive in record["_aws"]["CloudWatchMetrics"]:
                names |= {m["Name"] for m in directive["Metrics"]}
    return names


@pytest.mark.parametrize(
    ("machine", "document", "counted"),
    [
        # a dry run refused at Plan, and a bad request: refusals, each counted for its machine
        ("create", {"Request": {"DryRun": True}, "Error": {"Error": "CidrOverlap"}}, True),
        ("cleanup", {"Request": {"VpcPeeringConnectionId": 7}, "Error": {}}, True),
        # a cleanup that failed after its first step: a failure, not a refusal
        ("cleanup", {"VpcPeeringConnectionId": "pcx-1", "Error": {"Error": "AccessDenied"}}, False),
    ],
)
def test_a_refusal_at_plan_is_counted_for_its_machines_alarm(
    machine: str,
    document: dict[str, Any],
    counted: bool,
    lambda_context: FakeLambdaContext,
    aws: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a machine's failure summary step
    event = {"Document": document, "ExecutionName": "e-1", "Machine": machine}
    # When it summarises the failure
    report_failure.lambda_handler(event, lambda_context)
    # Then a refusal at Plan is counted by the metric its machine's alarm leaves out, and
    # any other failure is not (the alarm pages for it)
    metric = f"{machine.title()}RefusedAtPlan"
    assert (metric in _emf_metrics(capsys.readouterr().out)) is counted


@pytest.mark.parametrize("event", [{}, {"Document": "x"}, []])
def test_report_failure_handler_copes_with_any_input(
    event: Any, lambda_context: FakeLambdaContext, aws: None
) -> None:
    assert report_failure.lambda_handler(event, lambda_context)["Error"] == "InternalError"


def test_compensate_handler_on_a_plan_failure(
    lambda_context: FakeLambdaContext, ec2_calls: list[str], aws: None
) -> None:
    # Given the Plan state's Catch output: the request, and the error beside it
    event = {
        "Document": {
            "Request": {"Requester": {"VpcId": "vpc-1"}},
            "Error": {"Error": "CidrOverlap", "Cause": "Requester vpc-1 overlaps"},
        },
        "ExecutionName": "x",
    }
    # When the Compensate function runs
    result = compensate.lambda_handler(event, lambda_context)
    # Then it names the error and compensates nothing
    assert result == {
        "Error": "CidrOverlap",
        "Cause": "Requester vpc-1 overlaps",
        "Stage": "Plan",
        "DryRun": False,
        "VpcPeeringConnectionId": None,
        "RequesterVpcId": "vpc-1",
        "AccepterVpcId": None,
        "Compensation": None,
    }
    assert ec2_calls == []


def test_compensate_handler_undoes_a_created_peering(
    tutorial: TutorialVpcs, ec2: Any, lambda_context: FakeLambdaContext
) -> None:
    # Given a peering created by this execution, and the acceptance wait timed out
    doc = plan.lambda_handler(
        {"Request": tutorial_request(tutorial), "ExecutionName": "x"}, lambda_context
    )
    doc = step(create_peering.lambda_handler, doc, lambda_context)
    event = {
        "Document": {**doc, "Error": {"Error": "States.Timeout", "Cause": ""}},
        "ExecutionName": "x",
    }
    # When the Compensate function runs
    result = compensate.lambda_handler(event, lambda_context)
    # Then it reports AcceptTimeout and deletes the peering
    assert result["Error"] == "AcceptTimeout"
    assert result["Compensation"]["PeeringDeleted"] is True
    assert peering_status(ec2, doc["VpcPeeringConnectionId"]) == "deleted"
