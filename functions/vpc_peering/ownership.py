"""What proves that this stack, or one execution of it, made a resource: EC2's own tags.

Ownership is read from EC2's record of a peering or route table (tags written when this stack
created it), never taken from a request, an event or a document. Every "is it ours" question
is answered here; callers never read the tag keys themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import PeeringFailed
from .models.vocabulary import (
    TAG_ACCEPTED_CIDRS,
    TAG_ACCEPTED_FOR,
    TAG_ADOPTED_BY,
    TAG_EXECUTION,
    TAG_EXECUTION_ID,
    TAG_GROUP,
    TAG_MANAGED_BY,
    TAG_PEERING_ID,
    TAG_SIDE,
)
from .settings import Settings


def owned_by_stack(tags: Mapping[str, str], settings: Settings) -> bool:
    """This stack made it (the peering or route table carries its managed-by tag)."""
    return tags.get(TAG_MANAGED_BY) == settings.stack_name


def made_by_execution(
    tags: Mapping[str, str], settings: Settings, execution_id: str, side: str | None = None
) -> bool:
    """This very execution made it (for this side, when one is named): the id minted in its
    Plan, not its (reusable) name."""
    return (
        bool(execution_id)
        and owned_by_stack(tags, settings)
        and tags.get(TAG_EXECUTION_ID) == execution_id
        and (side is None or tags.get(TAG_SIDE) == side)
    )


def own_table_of_peering(
    tags: Mapping[str, str], settings: Settings, peering_id: str, side: str | None = None
) -> bool:
    """A route table this stack made for this peering (on this side, when one is named)."""
    return made_for_peering(tags, settings, peering_id, side)


def made_for_peering(
    tags: Mapping[str, str], settings: Settings, peering_id: str, side: str | None = None
) -> bool:
    """A route table or security-group rule this stack made for this peering (on this side,
    when one is named)."""
    return (
        owned_by_stack(tags, settings)
        and tags.get(TAG_PEERING_ID) == peering_id
        and (side is None or tags.get(TAG_SIDE) == side)
    )


def group_of(tags: Mapping[str, str], settings: Settings) -> str | None:
    """The group a peering was made for, if this stack made it for one (read in the requester's
    account, where its tags were written); None for any other peering."""
    group = tags.get(TAG_GROUP)
    return group if group and owned_by_stack(tags, settings) else None


def adoption_tags(
    settings: Settings, execution_id: str, accepted_for: str | None = None
) -> dict[str, str]:
    """What makes a peering made elsewhere this stack's: its managed-by tag, and which execution
    adopted it (never the execution-id tag: compensation would take it for one it created);
    for a request accepted in accepter-only mode, the accepter VPC it was accepted for."""
    tags = {TAG_MANAGED_BY: settings.stack_name, TAG_ADOPTED_BY: execution_id}
    return tags | ({TAG_ACCEPTED_FOR: accepted_for} if accepted_for else {})


#: Every ownership key an adoption (or an acceptance) may write; undone, all of them go.
ADOPTION_KEYS = (TAG_MANAGED_BY, TAG_ADOPTED_BY, TAG_ACCEPTED_FOR, TAG_ACCEPTED_CIDRS)


#: EC2's longest tag value.
MAX_TAG_VALUE = 256


def pinned_cidrs(tags: Mapping[str, str]) -> frozenset[str] | None:
    """The requester CIDRs pinned on a request accepted in accepter-only mode (our view's
    tags); None when none were pinned (not accepted yet, or accepted before pins existed)."""
    value = tags.get(TAG_ACCEPTED_CIDRS)
    return None if value is None else frozenset(value.split())


def pin_tags(settings: Settings, accepter_vpc_id: str, cidrs: list[str]) -> dict[str, str]:
    """The tags that pin ``cidrs`` on a request accepted for ``accepter_vpc_id``, with the
    ownership tags IAM requires beside them (only these keys may be written there)."""
    value = " ".join(sorted(set(cidrs)))
    if len(value) > MAX_TAG_VALUE:
        raise PeeringFailed(
            f"the requester's CIDRs ({len(set(cidrs))}) do not fit in one tag value "
            f"({len(value)} characters over EC2's {MAX_TAG_VALUE}): they cannot be pinned, so the "
            "request is not accepted"
        )
    return {
        TAG_MANAGED_BY: settings.stack_name,
        TAG_ACCEPTED_FOR: accepter_vpc_id,
        TAG_ACCEPTED_CIDRS: value,
    }


def accepted_here(tags: Mapping[str, str], settings: Settings, accepter_vpc_id: str) -> bool:
    """A request made elsewhere that this stack accepted for this VPC: its tags as our (the
    accepter's) account sees them; the requester's account is never read."""
    return owned_by_stack(tags, settings) and tags.get(TAG_ACCEPTED_FOR) == accepter_vpc_id


def adopted_by_execution(tags: Mapping[str, str], settings: Settings, execution_id: str) -> bool:
    return (
        bool(execution_id)
        and owned_by_stack(tags, settings)
        and tags.get(TAG_ADOPTED_BY) == execution_id
    )


def managed_by_another(tags: Mapping[str, str], settings: Settings) -> str | None:
    """The other stack (or tool using the same tag) that manages this, if any."""
    other = tags.get(TAG_MANAGED_BY)
    return other if other and other != settings.stack_name else None


def creation_tags(
    settings: Settings, execution_name: str, execution_id: str, group: str | None = None
) -> dict[str, str]:
    """The tags that make a resource provably this stack's, and this execution's (and, for a
    group peering, its group's)."""
    return {
        TAG_MANAGED_BY: settings.stack_name,
        TAG_EXECUTION: execution_name,
        TAG_EXECUTION_ID: execution_id,
        **({TAG_GROUP: group} if group else {}),
    }


def peering_resource_tags(
    settings: Settings, execution_name: str, execution_id: str, peering_id: str, side: str
) -> dict[str, str]:
    """The tags of what this stack makes for one side of a peering (a security-group rule)."""
    return {
        **creation_tags(settings, execution_name, execution_id),
        TAG_PEERING_ID: peering_id,
        TAG_SIDE: side,
    }
