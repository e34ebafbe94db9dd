"""Auto-accept: decide from EC2's own record of the peering whether policy allows accepting it.

The "acceptance requested" event is not trusted: its sides only say where to look, and they
must match what EC2 reports. The decision uses EC2's data and the stack's accept policy only.

The policy's rules (trusted requester, opt-in tag, requested by this stack) are written once,
in ``policy``: Plan applies them before anything is created, so a request that would be
refused fails there and creates nothing; this module applies them again to EC2's record.
"""

from __future__ import annotations

from . import ec2, ownership, policy, states
from .aws import Access, Location
from .errors import AcceptDenied, PeeringFailed, TransientAwsError
from .locations import check_allowed, location_for
from .models.documents import AcceptOutcome
from .models.requests import AcceptanceRequest
from .observability import logger
from .observed import Peering
from .settings import Settings

#: How long the accept function waits for a peering to become acceptable, then active.
ACCEPT_WAIT_SECONDS = 60.0


def check_policy(peering: Peering, request: AcceptanceRequest, settings: Settings) -> None:
    """Refuse unless the peering is the one the event names and its requester is trusted."""
    policy.check_side("requester", request.requester, peering.requester, peering.peering_id)
    policy.check_side("accepter", request.accepter, peering.accepter, peering.peering_id)
    policy.check_trusted_requester(peering.requester.owner_id, peering.peering_id, settings)


def check_ownership(
    peering: Peering, request: AcceptanceRequest, access: Access, settings: Settings
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
    policy.check_requested_by_stack(peering.peering_id, tags, settings)


def check_incoming(
    peering: Peering, request: AcceptanceRequest, access: Access, loc: Location, settings: Settings
) -> None:
    """Accepter-only mode, from EC2's record in our account: the peering is the event's, this
    stack took it for that VPC (its tag on our view, written by CreatePeering), and the double
    opt-in still holds (the VPC's accept-from tag, ExternalRequesterAccountIds)."""
    policy.check_side("requester", request.requester, peering.requester, peering.peering_id)
    policy.check_side("accepter", request.accepter, peering.accepter, peering.peering_id)
    if not ownership.accepted_here(peering.tags, settings, peering.accepter.vpc_id):
        raise AcceptDenied(
            f"{peering.peering_id} was not taken for {peering.accepter.vpc_id} by stack "
            f"{settings.stack_name}; not accepting"
        )
    vpc = ec2.describe_vpcs(access, loc, [peering.accepter.vpc_id]).get(peering.accepter.vpc_id)
    policy.check_incoming(peering, vpc.tags if vpc else {}, settings)


def accept(request: AcceptanceRequest, access: Access, settings: Settings) -> AcceptOutcome:
    """Accept the peering as the accepter account, if policy allows, and wait until active."""
    peering_id = request.vpc_peering_connection_id
    logger.append_keys(vpc_peering_connection_id=peering_id)
    # The boundary first: an event naming a side outside it is refused before any call (an
    # external requester's account is never called at all: its request is read, and accepted,
    # in ours).
    if not request.requester.external:
        check_allowed(request.requester.account_id, settings, "detail.Requester.AccountId")
    check_allowed(request.accepter.account_id, settings, "detail.Accepter.AccountId")
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
        wanted=frozenset({states.PENDING, states.ACTIVE}),
        leave=frozenset({states.INITIATING, states.PROVISIONING}),
        timeout=ACCEPT_WAIT_SECONDS,
    )
    if peering is None:
        # Just created elsewhere: EC2 is eventually consistent; let the invocation retry.
        raise TransientAwsError(f"{peering_id} not visible yet in {loc}")
    if request.requester.external:
        check_incoming(peering, request, access, loc, settings)
    else:
        check_policy(peering, request, settings)
        check_ownership(peering, request, access, settings)
    if peering.status in states.GONE:
        raise PeeringFailed(f"{peering_id} is {peering.status}: {peering.message}")
    if peering.status == states.ACTIVE:
        logger.info("already active; nothing to accept", vpc_peering_connection_id=peering_id)
        return AcceptOutcome(
            vpc_peering_connection_id=peering_id, status=states.ACTIVE, accepted=False
        )
    if settings.accepter_opt_in_tag_key:
        vpc = ec2.describe_vpcs(access, loc, [peering.accepter.vpc_id]).get(peering.accepter.vpc_id)
        policy.check_opt_in(
            peering.accepter.vpc_id, vpc.tags if vpc else None, peering_id, settings
        )
    status = ec2.accept_peering(access, loc, peering_id)
    logger.info("peering accepted", vpc_peering_connection_id=peering_id, status=status)
    if status != states.ACTIVE:
        final = ec2.wait_for_status(
            access,
            loc,
            peering_id,
            wanted=frozenset({states.ACTIVE}),
            leave=states.ACTIVATING,
            timeout=ACCEPT_WAIT_SECONDS,
        )
        status = final.status if final else "not found"
        if status != states.ACTIVE:
            raise PeeringFailed(f"{peering_id} went {status} after acceptance")
    return AcceptOutcome(vpc_peering_connection_id=peering_id, status=status, accepted=True)
