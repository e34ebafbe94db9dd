"""Domain errors. The class name is the error name a failed execution ends with.

Step Functions reports a Lambda exception by its class name (``errorType``), so each class
here is one documented error name; nothing matches on message text.
"""

from __future__ import annotations

import json
from typing import Any

from . import states

#: The error a member the group policy refuses is listed with (Refused): the policy working,
#: not a failure.
GROUP_POLICY_DENIED = "GroupPolicyDenied"
#: The failure a reconcile lists when the group policy cannot be used (every group closed).
GROUP_POLICY_INVALID = "GroupPolicyInvalid"


class PeeringError(Exception):
    """Base of every error this tool reports by name; the message names the field or resource."""

    retryable = False

    @property
    def name(self) -> str:
        return type(self).__name__


class InvalidInput(PeeringError):
    """The request is malformed: the message names the field and the reason."""


class ConfigurationError(PeeringError):
    """The stack's parameters contradict each other (the message names them); nothing was done."""


class AccountNotAllowed(PeeringError):
    """A side is in an account outside the stack's boundary (AllowedAccountIds)."""


class VpcNotFound(PeeringError):
    """A VPC, subnet or route table named in the request is not where it was looked for."""


class CidrOverlap(PeeringError):
    """A CIDR of one VPC overlaps a CIDR of the other; AWS cannot peer them."""


class CidrNotAllowed(PeeringError):
    """A peer CIDR lies outside AllowedPeerCidrs (or a group's Cidrs): it is never routed."""


class RouteConflict(PeeringError):
    """A planned route collides with an existing route to another target."""


class AssociationConflict(PeeringError):
    """A subnet for a dedicated route table is already explicitly associated with another table."""


class QuotaExceeded(PeeringError):
    """Peerings per VPC or routes per route table would exceed the configured quota."""


class AcceptDenied(PeeringError):
    """The accept policy does not allow auto-accepting this peering."""


class AcceptTimeout(PeeringError):
    """The peering was not accepted within the acceptance wait."""


class PeeringFailed(PeeringError):
    """The peering connection went to failed, rejected, expired or deleted."""


class VerificationFailed(PeeringError):
    """After all steps, the peering, a route or a DNS option is not as planned."""


class PeeringExists(PeeringError):
    """A live peering of the pair exists that was not made for this purpose (by hand, or not for
    a group when a group peering is asked for); it is left alone."""


class ReconcileIncomplete(PeeringError):
    """A reconcile did all it could, but some pairs did not converge (the cause lists them)."""


class ReconcileInProgress(PeeringError):
    """Another reconcile execution is changing the network; this one waits its turn."""

    retryable = True


class NotManaged(PeeringError):
    """Cleanup was asked to remove a peering this stack did not create."""


class ManagedByGroup(PeeringError):
    """An explicit create or cleanup on a peering a group manages (the group's tags decide it;
    ``Force`` overrides, and the next reconcile of the group puts it back)."""


class AccessDenied(PeeringError):
    """AWS refused a call (assume role or an EC2 action): the message names the call and account."""


class AwsCallFailed(PeeringError):
    """An AWS call failed with an error this tool does not expect; the message has AWS's code."""


class PeeringInProgress(PeeringError):
    """Another execution is changing the same VPC pair; the machine waits and retries."""

    retryable = True


class TransientAwsError(PeeringError):
    """Throttling or eventual consistency outlasted the client retries; the machine retries."""

    retryable = True


#: Every error name an execution can end with, beside ``InternalError`` (anything unexpected)
#: and ``Timeout`` (a step outlived its TimeoutSeconds).
ERROR_NAMES: frozenset[str] = frozenset(cls.__name__ for cls in PeeringError.__subclasses__()) | {
    "InternalError",
    "Timeout",
    "CompensationFailed",
}


#: A summarised cause at most (a failure report, a published event, a Fail state's cause).
SUMMARY_CAUSE = 2000


def summarize_error(error: Any, doc: dict[str, Any] | None = None) -> tuple[str, str]:
    """A short error name from the documented set, and a cause that names field or resource."""
    if isinstance(error, dict):
        name, cause = str(error.get("Error", "")), str(error.get("Cause", ""))
    else:
        name, cause = "InternalError", str(error)
    try:
        details = json.loads(cause)
    except ValueError:
        details = None
    if isinstance(details, dict) and "errorMessage" in details:
        cause = str(details["errorMessage"])
        name = str(details.get("errorType") or name)
    if name in ("States.Timeout", "States.HeartbeatTimeout"):
        if doc and doc.get("VpcPeeringConnectionId") and doc.get("Status") != states.ACTIVE:
            name = "AcceptTimeout"
            cause = (
                f"{doc.get('VpcPeeringConnectionId')} was not accepted in time: the accept "
                "function did not report back (check the accept policy and its logs)"
            )
        else:
            name = "Timeout"
            cause = f"a step timed out: {cause}".strip()
    elif name == "Sandbox.Timedout":
        # Lambda stopped a function at its Timeout (throttling that outlasted the retries, a
        # slow dependency): not a bug of ours, and worth a rerun once the cause has passed.
        name = "Timeout"
        cause = f"a step's function timed out: {cause}".strip()
    elif name.endswith(("AccessDeniedException", ".AccessDenied")):
        # The state machine's own call was refused (its role may not invoke or put events).
        cause = f"{name}: {cause}" if cause else name
        name = "AccessDenied"
    elif name not in ERROR_NAMES:
        cause = f"{name}: {cause}" if cause else name
        name = "InternalError"
    return name, cause[:SUMMARY_CAUSE]
