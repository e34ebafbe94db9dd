"""The accept policy's rules, pure: what may be auto-accepted, decided from EC2's data.

Plan applies them before anything is created (a create they would refuse creates nothing);
the accept function applies them again to EC2's record of the peering. Written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import ownership
from .errors import AcceptDenied
from .groups import TAG_ACCEPT_FROM, accept_from
from .models.requests import SideRef
from .models.vocabulary import TAG_MANAGED_BY
from .observed import Peering, PeeringSide
from .settings import Settings


def check_side(name: str, claimed: SideRef, actual: PeeringSide, peering_id: str) -> None:
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


def check_trusted_requester(requester_account: str, subject: str, settings: Settings) -> None:
    """Only requests from TrustedRequesterAccountIds are auto-accepted."""
    if requester_account not in settings.trusted_requester_account_ids:
        trusted = ", ".join(sorted(settings.trusted_requester_account_ids))
        raise AcceptDenied(
            f"{subject}: requester account {requester_account} is not trusted "
            f"(TrustedRequesterAccountIds: {trusted}); the peering would never be accepted"
        )


def check_opt_in(
    accepter_vpc_id: str, vpc_tags: dict[str, str] | None, subject: str, settings: Settings
) -> None:
    """With AccepterOptInTagKey set, the accepter VPC must carry that tag with value "true"."""
    key = settings.accepter_opt_in_tag_key
    if key and (vpc_tags or {}).get(key) != "true":
        raise AcceptDenied(
            f"{subject}: accepter VPC {accepter_vpc_id} lacks the opt-in tag {key}=true "
            "(AccepterOptInTagKey)"
        )


def check_requested_by_stack(
    peering_id: str, requester_view_tags: dict[str, str], settings: Settings
) -> None:
    """Only peerings this stack requested (its ownership tag, as the requester's account sees
    it) are auto-accepted: never one made by hand or by another tool."""
    if not ownership.owned_by_stack(requester_view_tags, settings):
        raise AcceptDenied(
            f"{peering_id} was not requested by stack {settings.stack_name} (no "
            f"{TAG_MANAGED_BY}={settings.stack_name} tag); this stack only accepts its own requests"
        )


def check_incoming(peering: Peering, accepter_tags: Mapping[str, str], settings: Settings) -> None:
    """Accepter-only mode: a request made elsewhere is accepted only when the requester's
    account is named both by the accepter VPC (its vpc-peering:accept-from tag: the VPC's owner
    opts in) and by the stack (ExternalRequesterAccountIds, or AllowedAccountIds): a double
    opt-in. Expired or answered requests are not pending, and never accepted."""
    subject = f"{peering.peering_id} from account {peering.requester.owner_id}"
    listed = accept_from(accepter_tags)
    if not listed:
        raise AcceptDenied(
            f"{subject}: accepter VPC {peering.accepter.vpc_id} has no {TAG_ACCEPT_FROM} tag"
        )
    requester = peering.requester.owner_id
    if requester not in listed:
        raise AcceptDenied(
            f"{subject}: the account is not in accepter VPC {peering.accepter.vpc_id}'s "
            f"{TAG_ACCEPT_FROM} ({' '.join(sorted(listed))})"
        )
    allowed = settings.external_requester_account_ids | settings.allowed_account_ids
    if requester not in allowed:
        external = ", ".join(sorted(settings.external_requester_account_ids)) or "none"
        raise AcceptDenied(
            f"{subject}: the account is not in ExternalRequesterAccountIds ({external}) nor in "
            "AllowedAccountIds"
        )
