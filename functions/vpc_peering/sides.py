"""A request's sides resolved: where each lives (its account checked against the boundary),
its options, and what is known of an external requester. Pure: used by the create machine's
Plan and by the reconcile's planning alike."""

from __future__ import annotations

from collections.abc import Collection

from . import ownership, policy
from .errors import InvalidInput, PeeringFailed
from .locations import location_for
from .models.documents import Side
from .models.requests import CreateRequest, SideRequest
from .models.vocabulary import SideName
from .observed import SideView, Vpc
from .settings import Settings


def resolve_side(
    request: SideRequest, name: SideName, settings: Settings, dns_default: bool = False
) -> Side:
    """Where a side lives, resolved once for the whole execution: account (checked against the
    boundary), region, and the role to assume there (the member role for another account); and
    its DNS option (its own, else the request's ``DnsResolution``)."""
    account = request.account_id or (
        request.role_arn.split(":")[4] if request.role_arn else settings.hub_account_id
    )
    field = "RoleArn" if request.role_arn and not request.account_id else "AccountId"
    region = request.region or settings.hub_region
    loc = location_for(account, region, request.role_arn, settings, f"{name}.", field)
    options = request.model_dump(exclude={"vpc_id", "account_id", "region", "role_arn"})
    dns = request.dns_resolution
    return Side.model_validate(
        {
            **options,
            "vpc_id": request.vpc_id,
            "account_id": account,
            "region": region,
            "role_arn": loc.role_arn,
            "dns_resolution": dns_default if dns is None else dns,
        }
    )


def external_side(request: SideRequest, settings: Settings) -> Side:
    """The requester of a request made elsewhere (accepter-only mode): named as EC2 reports it,
    never reached (no location, no route, no option set there)."""
    if request.account_id is None:
        raise InvalidInput(
            "Requester.AccountId: required with AcceptIncoming (the requester's account, as "
            "the request names it)"
        )
    return Side(
        vpc_id=request.vpc_id,
        account_id=request.account_id,
        region=request.region or settings.hub_region,
        external=True,
        route_tables="none",
    )


def resolve_sides(request: CreateRequest, settings: Settings) -> dict[SideName, Side]:
    """Both sides of a request, resolved (the boundary checked before anything else)."""
    requester = (
        external_side(request.requester, settings)
        if request.accept_incoming
        else resolve_side(request.requester, "Requester", settings, request.dns_resolution)
    )
    return {
        "Requester": requester,
        "Accepter": resolve_side(request.accepter, "Accepter", settings, request.dns_resolution),
    }


def incoming_view(
    peering_id: str,
    sides: dict[SideName, Side],
    ours: SideView,
    pinned: Collection[str] | None = None,
) -> SideView:
    """What is known of an external requester's side: only what EC2 shows of the request in our
    (the accepter's) account and region: its VPC and CIDRs, and the request itself. Its CIDRs
    are only those accepted: ``pinned`` (else the pin on the peering, else all it reports)."""
    found = [p for p in ours.peerings if p.peering_id == peering_id]
    acc = sides["Accepter"]
    if not found:
        raise PeeringFailed(
            f"AcceptIncoming: {peering_id} is not a live request involving {acc.vpc_id} in "
            f"{acc.location}"
        )
    peering = found[0]
    policy.check_side("requester", sides["Requester"], peering.requester, peering_id)
    policy.check_side("accepter", acc, peering.accepter, peering_id)
    info = peering.requester
    accepted = ownership.pinned_cidrs(peering.tags) if pinned is None else frozenset(pinned)
    if accepted is None:
        cidrs, ipv6 = info.cidr_blocks, info.ipv6_cidr_blocks
    else:
        cidrs = [c for c in info.cidr_blocks if c in accepted]
        ipv6 = [c for c in info.ipv6_cidr_blocks if c in accepted]
    vpc = Vpc(info.vpc_id, info.owner_id, cidrs, ipv6, {})
    return SideView(vpc, [], {}, [peering])
