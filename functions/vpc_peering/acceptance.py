"""Auto-accept: decide from EC2's own record of the peering whether policy allows accepting it.

The "acceptance requested" event is not trusted: its sides only say where to look, and they
must match what EC2 reports. The decision uses EC2's data and the stack's accept policy only.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ec2
from .aws import Access, location_for
from .errors import AcceptDenied, PeeringFailed, TransientAwsError
from .models import GONE_STATES, TAG_MANAGED_BY, AcceptanceRequest, SideRefInput
from .observability import logger
from .settings import Settings

#: How long the accept function waits for a peering to become acceptable, then active.
ACCEPT_WAIT_SECONDS = 60.0


@dataclass
class AcceptOutcome:
    vpc_peering_connection_id: str
    status: str
    accepted: bool

    def dump(self) -> dict[str, object]:
        return {
            "VpcPeeringConnectionId": self.vpc_peering_connection_id,
            "Status": self.status,
            "AcceptedNow": self.accepted,
        }


def _check_side(name: str, claimed: SideRefInput, actual: ec2.PeeringSide, peering_id: str) -> None:
    if (claimed.vpc_id, claimed.account_id, claimed.region) != (
        actual.vpc_id,
        actual.owner_id,
        actual.region,
    ):
        raise AcceptDenied(
            f"{peering_id}: the event's {name} ({claimed.vpc_id}, {claimed.account_id}, "
            f"{claimed.region}) does not match EC2's ({actual.vpc_id}, {actual.owner_id}, "
            f"{actual.region}); not accepting"
        )


def check_policy(peering: ec2.Peering, request: AcceptanceRequest, settings: Settings) -> None:
    """Refuse unless the peering is the one the event names and its requester is trusted."""
    _check_side("requester", request.requester, peering.requester, peering.peering_id)
    _check_side("accepter", request.accepter, peering.accepter, peering.peering_id)
    if peering.requester.owner_id not in settings.trusted_requester_account_ids:
        trusted = ", ".join(sorted(settings.trusted_requester_account_ids))
        raise AcceptDenied(
            f"{peering.peering_id}: requester account {peering.requester.owner_id} is not trusted "
            f"(TrustedRequesterAccountIds: {trusted})"
        )


def check_ownership(
    peering: ec2.Peering, request: AcceptanceRequest, access: Access, settings: Settings
) -> None:
    """Refuse unless this stack requested the peering (its ownership tag is on it).

    Tags are visible in the requester's account: read them there when the accepter is
    elsewhere. A forged event naming a peering made by hand or by another tool is refused here
    even when its requester is trusted. A pending peering this stack requested in an earlier
    execution is accepted: reusing it is what Plan decided.
    """
    tags = peering.tags
    req = request.requester
    if (req.account_id, req.region) != (request.accepter.account_id, request.accepter.region):
        loc = location_for(req.account_id, req.region, req.role_arn, settings, "Requester.")
        seen = ec2.describe_peering(access, loc, peering.peering_id)
        tags = seen.tags if seen else {}
    if tags.get(TAG_MANAGED_BY) != settings.stack_name:
        raise AcceptDenied(
            f"{peering.peering_id} was not requested by stack {settings.stack_name} (no "
            f"{TAG_MANAGED_BY}={settings.stack_name} tag); this stack only accepts its own requests"
        )


def accept(request: AcceptanceRequest, access: Access, settings: Settings) -> AcceptOutcome:
    """Accept the peering as the accepter account, if policy allows, and wait until active."""
    peering_id = request.vpc_peering_connection_id
    loc = location_for(
        request.accepter.account_id,
        request.accepter.region,
        request.accepter.role_arn,
        settings,
        "Accepter.",
    )
    peering = ec2.wait_for_status(
        access,
        loc,
        peering_id,
        wanted=frozenset({"pending-acceptance", "active"}),
        leave=frozenset({"initiating-request", "provisioning"}),
        timeout=ACCEPT_WAIT_SECONDS,
    )
    if peering is None:
        # Just created elsewhere: EC2 is eventually consistent; let the invocation retry.
        raise TransientAwsError(f"{peering_id} not visible yet in {loc}")
    check_policy(peering, request, settings)
    check_ownership(peering, request, access, settings)
    if peering.status in GONE_STATES:
        raise PeeringFailed(f"{peering_id} is {peering.status}: {peering.message}")
    if peering.status == "active":
        logger.info("already active; nothing to accept", vpc_peering_connection_id=peering_id)
        return AcceptOutcome(peering_id, "active", accepted=False)
    if settings.accepter_opt_in_tag_key:
        key = settings.accepter_opt_in_tag_key
        vpc = ec2.describe_vpcs(access, loc, [peering.accepter.vpc_id]).get(peering.accepter.vpc_id)
        value = vpc.tags.get(key) if vpc else None
        if value != "true":
            raise AcceptDenied(
                f"{peering_id}: accepter VPC {peering.accepter.vpc_id} lacks the opt-in tag "
                f"{key}=true (AccepterOptInTagKey)"
            )
    status = ec2.accept_peering(access, loc, peering_id)
    logger.info("peering accepted", vpc_peering_connection_id=peering_id, status=status)
    if status != "active":
        final = ec2.wait_for_status(
            access,
            loc,
            peering_id,
            wanted=frozenset({"active"}),
            leave=frozenset({"pending-acceptance", "provisioning"}),
            timeout=ACCEPT_WAIT_SECONDS,
        )
        status = final.status if final else "not found"
        if status != "active":
            raise PeeringFailed(f"{peering_id} went {status} after acceptance")
    return AcceptOutcome(peering_id, status, accepted=True)
