"""Step Functions task callbacks: how an event target answers the execution waiting on a task
token (heartbeat, success, failure), through the same access and error translation as every
other AWS call.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from .aws import Access, Location, aws_call
from .settings import Settings

#: Answers that mean no execution waits on this token any more: nothing to report to.
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
#: Step Functions' limit on a task failure's cause.
MAX_CAUSE = 32768


def _client(access: Access, hub: Location) -> Any:
    return access.client("stepfunctions", hub)


class TaskCallbacks:
    """The waiting execution's task, answered in the hub's account and region."""

    def __init__(self, access: Access, settings: Settings) -> None:
        self._hub = Location(settings.hub_account_id, settings.hub_region)
        self._sfn = _client(access, self._hub)

    def _send(self, action: str, **params: str) -> bool:
        """One callback; False when no execution waits on the token (a stale or forged one)."""
        with aws_call(f"states:{action}", self._hub):
            try:
                getattr(self._sfn, action)(**params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in STALE_TOKEN_CODES:
                    return False
                raise
        return True

    def waiting(self, token: str) -> bool:
        """Whether an execution waits on this token (a heartbeat, which changes nothing)."""
        return self._send("send_task_heartbeat", taskToken=token)

    def succeed(self, token: str, output: BaseModel) -> bool:
        result = output.model_dump(mode="json", by_alias=True)
        return self._send("send_task_success", taskToken=token, output=json.dumps(result))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(
            "send_task_failure", taskToken=token, error=error, cause=cause[:MAX_CAUSE]
        )
