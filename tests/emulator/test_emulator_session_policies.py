"""AssumeRole session policies are enforced, as AWS does (moto 5.2.5 ignored them)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.session_policies import allows
from emulator.testing import EmulatorHandle

ACCOUNT = "444455556666"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Reader"
DESCRIBE_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ec2:DescribeVpcs"], "Resource": "*"}],
    }
)


def session(emu: EmulatorHandle, service: str, policy: str | None) -> Any:
    params: dict[str, Any] = {"RoleArn": ROLE, "RoleSessionName": "test"}
    if policy is not None:
        params["Policy"] = policy
    creds = emu.client("sts").assume_role(**params)["Credentials"]
    return emu.client(
        service,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_a_session_policy_allows_only_its_actions(tiny_emulator: EmulatorHandle) -> None:
    # Given a session of a role, limited to DescribeVpcs by its session policy
    ec2 = session(tiny_emulator, "ec2", DESCRIBE_ONLY)
    # When it describes, and then tries to create
    ec2.describe_vpcs()
    with pytest.raises(ClientError) as caught:
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    # Then the describe is answered and the create refused as EC2 words it, naming the action
    assert caught.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert "ec2:CreateVpc" in caught.value.response["Error"]["Message"]
    # And nothing was made
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if v.get("CidrBlock") == "10.9.0.0/16"]
    # And the emulator lists the session with its policy
    assert DESCRIBE_ONLY in [s["Policy"] for s in tiny_emulator.session_policies()]


def test_a_session_without_a_policy_keeps_its_roles_rights(tiny_emulator: EmulatorHandle) -> None:
    # Given a session of the same role without a session policy
    ec2 = session(tiny_emulator, "ec2", None)
    # When it creates a VPC / Then it may (IAM is otherwise not enforced)
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    ec2.delete_vpc(VpcId=vpc)


def test_other_services_are_refused_as_access_denied(tiny_emulator: EmulatorHandle) -> None:
    # Given a session limited to an EC2 action
    sqs = session(tiny_emulator, "sqs", DESCRIBE_ONLY)
    # When it calls another service / Then AccessDenied
    with pytest.raises(ClientError) as caught:
        sqs.list_queues()
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")


@pytest.mark.parametrize(
    ("statements", "action", "expected"),
    [
        ([{"Effect": "Allow", "Action": "ec2:Describe*"}], "ec2:DescribeVpcs", True),
        ([{"Effect": "Allow", "Action": "ec2:Describe*"}], "ec2:CreateRoute", False),
        (
            [
                {"Effect": "Allow", "Action": "ec2:*"},
                {"Effect": "Deny", "Action": "ec2:CreateRoute"},
            ],
            "ec2:CreateRoute",
            False,
        ),
        ([{"Effect": "Allow", "Action": ["EC2:describevpcs"]}], "ec2:DescribeVpcs", True),
    ],
)
def test_actions_match_as_iam_matches_them(
    statements: list[dict[str, Any]], action: str, expected: bool
) -> None:
    # Given a policy; When asking about an action; Then IAM's wildcard, case and Deny rules hold
    assert allows(json.dumps({"Statement": statements}), action) is expected
