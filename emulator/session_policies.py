"""AssumeRole session policies, enforced (moto 5.2.5 stores ``Policy`` and ignores it).

AWS gives an assumed-role session the intersection of its role's policies and the session
policy passed to ``AssumeRole``: an action the session policy does not allow is denied, whatever
the role allows. moto enforces no IAM at all by default, so this checks only what the session
policy adds: each request signed with an assumed role's keys is refused (``AccessDenied``,
``UnauthorizedOperation`` for EC2, as AWS words it) when that session's policy allows no
matching action, or denies one. Actions only: ``Resource`` and ``Condition`` are not evaluated
(the product's session policies allow Describe calls on ``*``; a policy that relies on them is
not emulated, and is said here rather than softened). The IAM prefix is taken to be the
request's signing name, true of every service the product calls (ec2, sts, dynamodb, ssm,
states, events, lambda, s3).
"""

from __future__ import annotations

import fnmatch
import json
import threading
from typing import Any

from .faults import error_response
from .server import ApiCall, HookResponse

_NO_POLICY = ""


class SessionPolicies:
    """A before-request hook: refuse what the caller's session policy does not allow."""

    def __init__(self) -> None:
        self._policies: dict[str, str] = {}  # access key -> policy text ("" none)
        self._lock = threading.Lock()

    def __call__(self, call: ApiCall) -> HookResponse | None:
        policy = self.policy_of(call.access_key, call.account)
        if not policy:
            return None
        action = f"{call.service}:{call.operation}"
        if allows(policy, action):
            return None
        code = "UnauthorizedOperation" if call.service == "ec2" else "AccessDenied"
        return error_response(
            call,
            code,
            f"You are not authorized to perform: {action} "
            "because no session policy allows the action",
        )

    def policy_of(self, access_key: str, account: str) -> str:
        """The session policy of the assumed-role session these keys belong to ("" none)."""
        with self._lock:
            if access_key in self._policies:
                return self._policies[access_key]
        from moto.sts.models import sts_backends

        policy = _NO_POLICY
        try:
            role = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
        except Exception:  # not an account moto knows: nothing to enforce
            role = None
        if role is not None and role.policy:
            policy = str(role.policy)
        with self._lock:  # keys exist only once AssumeRole made them: a miss stays a miss
            self._policies[access_key] = policy
        return policy

    def sessions(self) -> list[dict[str, Any]]:
        """Each access key that has a session policy, with it (for tests)."""
        with self._lock:
            return [{"AccessKey": k, "Policy": p} for k, p in self._policies.items() if p]

    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        if method == "GET":
            return 200, self.sessions()
        return 405, {"error": "GET only"}


def allows(policy: str, action: str) -> bool:
    """Whether a policy document allows ``action`` (and denies it nowhere), by action only."""
    try:
        document = json.loads(policy)
    except ValueError:
        return False
    statements = document.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = actions if isinstance(actions, list) else [actions]
        if not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in actions):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
