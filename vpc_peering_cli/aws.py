"""The AWS connection the command works through, and the tool's own errors.

Every AWS call goes through :func:`aws_errors`, so a missing credential, an unreachable
endpoint or an API error becomes one line naming what is wrong, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

#: Exit statuses: the execution (or the command) succeeded, it failed, the command was misused.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: Standard retries, 3 attempts with backoff: throttling while polling an execution is retried,
#: and an endpoint that cannot be reached fails within seconds.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10)


class ToolError(Exception):
    """Something the tool itself cannot do: the message names what is missing or wrong."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(ToolError):
    """The command line (or an input file it names) asks for something impossible: printed
    under the command's usage line. Missing credentials or region are a ToolError with
    EXIT_USAGE: one line, no usage."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


@dataclass
class Aws:
    """A boto3 session in one region, every client pointed at the same endpoint (if any)."""

    session: boto3.Session
    region: str
    endpoint_url: str | None = None

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(  # type: ignore[call-overload]
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            config=_CLIENT_CONFIG,
        )

    def account_id(self) -> str:
        """The caller's account, as STS reports it."""
        with aws_errors("sts GetCallerIdentity"):
            return str(self.client("sts").get_caller_identity()["Account"])

    def partition(self) -> str:
        """The partition of the region (aws, aws-cn, aws-us-gov, ...)."""
        return str(self.session.get_partition_for_region(self.region))


def connect(profile: str | None, region: str | None, endpoint_url: str | None) -> Aws:
    """A session from the usual places (environment, ``--profile``, config files); refuses
    early when it has no region or no credentials, naming how to give them."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ToolError(f"{exc} (--profile or AWS_PROFILE)", EXIT_USAGE) from exc
    if not session.region_name:
        raise ToolError(
            "no AWS region: give --region, or set AWS_DEFAULT_REGION or a profile's", EXIT_USAGE
        )
    if session.get_credentials() is None:
        raise ToolError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or give --profile (or set AWS_PROFILE)",
            EXIT_USAGE,
        )
    return Aws(session, session.region_name, endpoint_url)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn botocore's exceptions into a :class:`ToolError` naming the call (``what``).

    A ClientError a caller wants to handle itself must be caught inside this block."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise ToolError(f"{what}: no AWS credentials ({exc})", EXIT_USAGE) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise ToolError(
            f"{what}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}"
        ) from exc
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise ToolError(
            f"{what}: {error.get('Code', 'Error')}: {error.get('Message', exc)}"
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ToolError(f"{what}: {exc}") from exc
