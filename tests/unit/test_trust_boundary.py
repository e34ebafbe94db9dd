"""The trust boundary's rules, unit by unit: allowed accounts, who the member role sees acting,
the accept policy applied at Plan time and the document cap (the pair lease: test_locks.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from vpc_peering import acceptance, peering
from vpc_peering import ec2 as ec2_reads
from vpc_peering.aws import READ_ONLY_STEPS, Access, Location, session_name, session_policy
from vpc_peering.errors import (
    AcceptDenied,
    AccountNotAllowed,
    AwsCallFailed,
    InvalidInput,
)
from vpc_peering.locations import location_for
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import AcceptanceRequest
from vpc_peering.settings import Settings

from .helpers import ENV, HUB_ACCOUNT, MEMBER_ACCOUNT, MEMBER_ROLE_NAME, REGION, TutorialVpcs

OUTSIDE = "333333333333"


# ------------------------------------------------------------------------------ settings
def test_allowed_accounts_default_to_the_hub_only() -> None:
    # Given the stack environment without AllowedAccountIds
    env = {k: v for k, v in ENV.items() if k != "ALLOWED_ACCOUNT_IDS"}
    # When read / Then only the hub account is inside the boundary
    assert Settings.from_env(env).allowed_account_ids == frozenset({HUB_ACCOUNT})


def test_trusted_requesters_must_be_allowed_accounts() -> None:
    # Given a trusted requester outside AllowedAccountIds
    env = {**ENV, "TRUSTED_REQUESTER_ACCOUNT_IDS": f"{HUB_ACCOUNT},{OUTSIDE}"}
    # When read / Then the stack is refused, naming the account and both parameters
    with pytest.raises(ValueError, match=f"TrustedRequesterAccountIds: {OUTSIDE} not in "):
        Settings.from_env(env)


@pytest.mark.parametrize("bad", ["12345", "1234567890123", "١٢٣٤٥٦٧٨٩٠١٢", "abcdefghijkl"])
def test_allowed_accounts_must_be_account_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not 12-digit account ids"):
        Settings.from_env({**ENV, "ALLOWED_ACCOUNT_IDS": f"{HUB_ACCOUNT},{bad}"})


# ------------------------------------------------------------------- the boundary itself
def test_no_location_is_made_outside_the_boundary(settings: Settings) -> None:
    # Given an account outside AllowedAccountIds / When a location is asked for there
    with pytest.raises(AccountNotAllowed) as caught:
        location_for(OUTSIDE, REGION, None, settings, "Accepter.")
    # Then it is refused, naming the field and the account
    assert str(caught.value).startswith(f"Accepter.AccountId: account {OUTSIDE} is not in")


def test_plan_refuses_a_side_outside_the_boundary_before_any_call(
    tutorial: TutorialVpcs, access: Access, settings: Settings, ec2_calls: list[str]
) -> None:
    request = {
        "Requester": {"VpcId": tutorial.vpc1},
        "Accepter": {"VpcId": tutorial.vpc2, "AccountId": OUTSIDE},
    }
    ec2_calls.clear()
    with pytest.raises(AccountNotAllowed, match=f"Accepter.AccountId: account {OUTSIDE}"):
        peering.plan(request, "exec-1", access, settings)
    assert ec2_calls == []


def test_accept_refuses_an_event_naming_an_account_outside_the_boundary(
    access: Access, settings: Settings
) -> None:
    detail = {
        "TaskToken": "t",
        "VpcPeeringConnectionId": "pcx-0123456789abcdef0",
        "Requester": {"VpcId": "vpc-0123456789abcdef0", "AccountId": OUTSIDE, "Region": REGION},
        "Accepter": {"VpcId": "vpc-0123456789abcdef1", "AccountId": HUB_ACCOUNT, "Region": REGION},
    }
    request = parse(AcceptanceRequest, detail, root="detail")
    with pytest.raises(AccountNotAllowed, match=f"detail.Requester.AccountId: account {OUTSIDE}"):
        acceptance.accept(request, access, settings)


# --------------------------------------------------------------- who the member role sees
@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        ("run-1", "vpc-peering@run-1"),
        ("a b(c)!", "vpc-peering@a-b-c--"),
        ("x" * 80, None),
    ],
)
def test_session_names_show_the_execution(execution: str, expected: str | None) -> None:
    name = session_name("vpc-peering", execution)
    assert len(name) <= 64
    assert all(c.isalnum() or c in "_+=,.@-" for c in name)
    if expected:
        assert name == expected
    else:
        # a long one keeps its start, and differs from another long one with the same start
        assert name.startswith("vpc-peering@xxx")
        assert name != session_name("vpc-peering", "x" * 79 + "y")


def test_member_role_is_assumed_with_the_external_id_and_the_execution_session(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack whose member role requires an ExternalId
    monkeypatch.setenv("MEMBER_ROLE_EXTERNAL_ID", "stack-uuid")
    settings = Settings.from_env()
    calls: list[dict[str, Any]] = []
    real = boto3.Session.client

    def spy(self: boto3.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        client = real(self, service, *args, **kwargs)
        if service == "sts":
            original = client.assume_role

            def assume_role(**params: Any) -> Any:
                calls.append(params)
                return original(**params)

            client.assume_role = assume_role
        return client

    monkeypatch.setattr(boto3.Session, "client", spy)
    # When an execution's Access reaches a member account
    access = Access(settings, "exec-42")
    role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{MEMBER_ROLE_NAME}"
    identity = access.client("sts", Location(MEMBER_ACCOUNT, REGION, role)).get_caller_identity()
    # Then the role is assumed with the ExternalId, in a session named after the execution
    assert calls[0]["ExternalId"] == "stack-uuid"
    assert calls[0]["RoleSessionName"] == "vpc-peering@exec-42"
    assert identity["Arn"].endswith("/vpc-peering@exec-42")


# -------------------------------------------------------------- accept policy in Plan
def test_plan_applies_the_opt_in_tag_before_anything_is_made(
    tutorial: TutorialVpcs,
    access: Access,
    ec2_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the policy requires the accepter VPC to opt in, and VPC2 has no such tag
    monkeypatch.setenv("ACCEPTER_OPT_IN_TAG_KEY", "peering-opt-in")
    settings = Settings.from_env()
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    # When planned (a dry run too) / Then Plan refuses, naming the VPC and the tag
    for dry_run in (True, False):
        with pytest.raises(AcceptDenied, match=f"{tutorial.vpc2} lacks the opt-in tag"):
            peering.plan({**request, "DryRun": dry_run}, "exec-1", access, settings)
    assert [c for c in ec2_calls if not c.startswith("Describe")] == []


def test_plan_applies_the_trusted_requester_rule(
    tutorial: TutorialVpcs, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only the member account is a trusted requester, and a hub VPC requests
    monkeypatch.setenv("TRUSTED_REQUESTER_ACCOUNT_IDS", MEMBER_ACCOUNT)
    settings = Settings.from_env()
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    # When planned / Then refused, naming the requester account
    with pytest.raises(AcceptDenied, match=f"requester account {HUB_ACCOUNT} is not trusted"):
        peering.plan(request, "exec-1", access, settings)


# ----------------------------------------------------------------------- document size
def test_plan_refuses_a_document_step_functions_could_not_carry(
    tutorial: TutorialVpcs, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap smaller than the tutorial's plan
    monkeypatch.setattr(peering, "MAX_PLAN_BYTES", 500)
    settings = Settings.from_env()
    request = {"Requester": {"VpcId": tutorial.vpc1}, "Accepter": {"VpcId": tutorial.vpc2}}
    # When planned / Then InvalidInput says how large it is and what to narrow, and the lease
    # it took is given back (a new plan of the pair is not told it is in progress)
    with pytest.raises(InvalidInput, match=r"the plan has \d+ routes and is \d+ KB"):
        peering.plan(request, "exec-1", access, settings)
    monkeypatch.setattr(peering, "MAX_PLAN_BYTES", 96 * 1024)
    assert peering.plan(request, "exec-2", access, settings).execution_id


# ------------------------------------------------------------- responses EC2 cannot parse
def test_an_unparseable_response_is_a_named_error_not_a_crash(
    aws: None, ec2: Any, access: Access
) -> None:
    # Given a VPC someone tagged with a NUL (EC2 itself refuses it; the emulator stores it)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "a\x00b"}])
    # When the tool reads it / Then AwsCallFailed names the call, with a short cause
    with pytest.raises(AwsCallFailed, match="ec2:DescribeVpcs in account") as caught:
        ec2_reads.describe_vpcs(access, Location(HUB_ACCOUNT, REGION), [vpc])
    assert "could not be read" in str(caught.value)
    assert len(str(caught.value)) < 400


# ------------------------------------------------------------------ read-only sessions
def _assume_role_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = boto3.Session.client

    def spy(self: boto3.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        client = real(self, service, *args, **kwargs)
        if service == "sts":
            original = client.assume_role

            def assume_role(**params: Any) -> Any:
                calls.append(params)
                return original(**params)

            client.assume_role = assume_role
        return client

    monkeypatch.setattr(boto3.Session, "client", spy)
    return calls


@pytest.mark.parametrize("step", [*sorted(READ_ONLY_STEPS), "AddRoutes", "Accept", ""])
def test_read_only_steps_assume_the_member_role_with_their_session_policy(
    aws: None, settings: Settings, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    # Given a step's Access reaching a member account
    calls = _assume_role_calls(monkeypatch)
    access = Access(settings, "exec-1", step)
    role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{MEMBER_ROLE_NAME}"
    loc = Location(MEMBER_ACCOUNT, REGION, role)
    # When it reads twice (EC2 and STS)
    access.ec2(loc)
    access.client("sts", loc)
    # Then the role is assumed once, with exactly the step's session policy, or none
    [params] = calls
    if step in READ_ONLY_STEPS:
        policy = json.loads(params["Policy"])
        assert params["Policy"] == session_policy(step)
        statements = policy["Statement"]
        assert {s["Effect"] for s in statements} == {"Allow"}
        actions = [a for s in statements for a in s["Action"]]
        assert sorted(actions) == sorted(READ_ONLY_STEPS[step])
        assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in actions)
        assert not any("Condition" in s or "NotAction" in s for s in statements)
    else:
        assert "Policy" not in params
    # And the hub's own credentials are used as they are (no session policy there)
    access.ec2(Location(HUB_ACCOUNT, REGION, None))
    assert len(calls) == 1


def test_the_read_only_handlers_name_their_step_as_listed() -> None:
    # Given the handlers of the steps that only read in member accounts
    handlers = Path(__file__).parents[2] / "functions" / "vpc_peering" / "handlers"
    named = {
        re.search(r'_step\(\s*"(\w+)"', (handlers / f"{module}.py").read_text()).group(1)  # type: ignore[union-attr]
        for module in ("plan", "verify", "cleanup_plan", "discover", "network_status")
    }
    # Then each passes the step name READ_ONLY_STEPS lists (so its sessions get the policy)
    assert named == set(READ_ONLY_STEPS)
    # And a session policy stays within AWS's packed size limit (2,048 characters)
    assert all(len(session_policy(step) or "") < 2048 for step in READ_ONLY_STEPS)
