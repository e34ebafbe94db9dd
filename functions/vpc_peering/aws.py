"""Reaching a side: the hub's own credentials, or a role assumed in the side's account.

Every call for a side is made in that side's region with that side's credentials; the
same-account, same-region case is just the location whose role is ``None``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from .errors import (
    AccessDenied,
    AwsCallFailed,
    QuotaExceeded,
    TransientAwsError,
)
from .models.vocabulary import Location
from .settings import Settings

__all__ = ["READ_ONLY_STEPS", "Access", "Location", "aws_call", "session_policy"]

#: ``max_attempts`` in a Config's retries counts retries (botocore's legacy meaning, args.py:
#: total attempts = max_attempts + 1): 6 attempts per call, with up to 1+2+4+8+16 s of backoff
#: under throttling (31 s for one call; the function's Timeout bounds the whole invocation).
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
)

THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)
DENIED_CODES = frozenset(
    {
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "OperationNotPermitted",
        "InvalidClientTokenId",
        "ExpiredToken",
    }
)


#: EC2's quota codes ("Error codes for the Amazon EC2 API": ActiveVpcPeeringConnectionPerVpc...
#: at accept, OutstandingVpcPeeringConnection... at create, RouteLimitExceeded), and the names
#: other tools have used for the same quotas.
QUOTA_CODES = frozenset(
    {
        "ActiveVpcPeeringConnectionPerVpcLimitExceeded",
        "OutstandingVpcPeeringConnectionLimitExceeded",
        "PendingVpcPeeringConnectionLimitExceeded",
        "VpcPeeringConnectionsPerVpcLimitExceeded",
        "VpcPeeringConnectionLimitExceeded",
        "RouteLimitExceeded",
        "RouteTableLimitExceeded",
        "ResourceLimitExceeded",
    }
)


#: The steps that only read in member accounts, and the calls each makes there: the one list.
#: Their AssumeRole sessions carry a session policy allowing these actions and nothing else, so
#: whatever such a step's code does, IAM lets it change nothing in a member account (the member
#: role's own rights are the other bound: a session gets the intersection). Their writes in the
#: hub (leases) use the function's own role, which no session policy touches.
_NETWORK_READS = (
    "ec2:DescribeVpcs",
    "ec2:DescribeRouteTables",
    "ec2:GetManagedPrefixListEntries",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
)
READ_ONLY_STEPS: dict[str, tuple[str, ...]] = {
    "Plan": (
        "ec2:DescribeVpcs",
        "ec2:DescribeRouteTables",
        "ec2:GetManagedPrefixListEntries",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeSecurityGroups",
    ),
    "Verify": (
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeRouteTables",
        "ec2:GetManagedPrefixListEntries",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeFlowLogs",
    ),
    "CleanupPlan": (
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeVpcs",
        "ec2:DescribeRouteTables",
        "ec2:GetManagedPrefixListEntries",
        "ec2:DescribeSecurityGroupRules",
    ),
    "Discover": _NETWORK_READS,
    # The operator's view reads the network as Discover does, with the same readers.
    "NetworkStatus": _NETWORK_READS,
}


#: The resources of the read actions that have resource types in the Service Authorization
#: Reference (Describe* have none: "*"); AWS-managed prefix lists belong to AWS, hence any owner.
_READ_RESOURCES = {"ec2:GetManagedPrefixListEntries": "arn:*:ec2:*:*:prefix-list/*"}


def session_policy(step: str | None) -> str | None:
    """The session policy (AssumeRole ``Policy``) of a read-only step; None for any other:
    one statement per resource, named after the step."""
    actions = READ_ONLY_STEPS.get(step or "")
    if actions is None:
        return None
    by_resource: dict[str, list[str]] = {}
    for action in sorted(actions):
        by_resource.setdefault(_READ_RESOURCES.get(action, "*"), []).append(action)
    statements = [
        {"Sid": f"{step}Reads{index}", "Effect": "Allow", "Action": named, "Resource": resource}
        for index, (resource, named) in enumerate(sorted(by_resource.items()))
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_name(text: str) -> str:
    """``text`` in the characters an execution name and an S3 key of ours share."""
    return _NAME_UNSAFE.sub("-", text)


def session_name(stack_name: str, execution: str) -> str:
    """An AssumeRole session name that shows, in the member account's CloudTrail, which
    execution acted: ``<stack>@<execution>`` in IAM's character set, at most 64 characters
    (a long one keeps its start and a hash of the whole, so two executions never share one)."""
    name = _SESSION_NAME_UNSAFE.sub("-", f"{stack_name}@{execution}")
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:53]}-{digest}"


@contextlib.contextmanager
def aws_call(action: str, where: Location | str) -> Iterator[None]:
    """Translate AWS errors into domain errors that name the call and where it was made."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in THROTTLING_CODES:
            raise TransientAwsError(f"{action} in {where}: {code} persisted ({message})") from exc
        if code in DENIED_CODES:
            raise AccessDenied(f"{action} in {where} was denied: {code} ({message})") from exc
        if code in QUOTA_CODES:
            raise QuotaExceeded(f"{action} in {where}: {code} ({message})") from exc
        raise AwsCallFailed(f"{action} in {where} failed: {code} ({message})") from exc
    except BotoCoreError as exc:
        raise TransientAwsError(f"{action} in {where}: {exc}") from exc
    except ResponseParserError as exc:
        # Not a passing fault: the same response would fail to parse again (a NUL in a tag,
        # written by someone else, poisons every describe that returns it).
        detail = str(exc).split("\n", 1)[0][:200]
        raise AwsCallFailed(
            f"{action} in {where}: AWS's response could not be read ({detail})"
        ) from exc


#: One loader for the container's lifetime: a new botocore session would otherwise parse the
#: EC2 service model again (about 0.15 s) on every warm invocation. Loaders only read the
#: models shipped with botocore, so sharing one across sessions and threads is safe.
_LOADER = botocore.loaders.create_loader()


def _new_session(**credentials: str) -> boto3.Session:
    """A boto3 session (the default credential chain, or the credentials given) whose service
    models come from the shared loader."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, **credentials)


class Access:
    """Clients per location, with assumed-role sessions cached for the invocation's lifetime.

    ``step`` names the step acting: a read-only one (``READ_ONLY_STEPS``) assumes member roles
    with its session policy."""

    def __init__(self, settings: Settings, execution: str = "unknown", step: str = "") -> None:
        self.settings = settings
        self.session_name = session_name(settings.stack_name, execution)
        self.policy = session_policy(step)
        self._sessions: dict[tuple[str | None, bool], boto3.Session] = {}
        self._clients: dict[tuple[str | None, bool, str, str], Any] = {}
        self._lock = threading.Lock()

    def _session(self, loc: Location) -> boto3.Session:
        key = (loc.role_arn, self.policy is not None)
        if key in self._sessions:
            return self._sessions[key]
        if loc.role_arn is None:
            session = _new_session()
        else:
            sts = _new_session().client("sts", region_name=loc.region, config=_CLIENT_CONFIG)
            with aws_call(f"sts:AssumeRole {loc.role_arn}", loc):
                kwargs: dict[str, Any] = {
                    "RoleArn": loc.role_arn,
                    "RoleSessionName": self.session_name,
                    "DurationSeconds": 900,
                }
                if self.settings.member_role_external_id:
                    kwargs["ExternalId"] = self.settings.member_role_external_id
                if self.policy is not None:
                    kwargs["Policy"] = self.policy
                creds = sts.assume_role(**kwargs)["Credentials"]
            session = _new_session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        self._sessions[key] = session
        return session

    def client(self, service: str, loc: Location) -> Any:
        key = (loc.role_arn, self.policy is not None, loc.region, service)
        with self._lock:
            if key not in self._clients:
                session = self._session(loc)
                self._clients[key] = session.client(  # type: ignore[call-overload]
                    service, region_name=loc.region, config=_CLIENT_CONFIG
                )
            return self._clients[key]

    def ec2(self, loc: Location) -> Any:
        return self.client("ec2", loc)
