"""What proves that this stack, or one execution of it, made a resource: EC2's own tags.

Ownership is read from EC2's record of a peering or route table (tags written when this stack
created it), never taken from a request, an event or a document. Every "is it ours" question
is answered here; callers never read the tag keys themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

from .models import TAG_EXECUTION, TAG_EXECUTION_ID, TAG_MANAGED_BY, TAG_PEERING_ID, TAG_SIDE
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
    return (
        owned_by_stack(tags, settings)
        and tags.get(TAG_PEERING_ID) == peering_id
        and (side is None or tags.get(TAG_SIDE) == side)
    )


def creation_tags(settings: Settings, execution_name: str, execution_id: str) -> dict[str, str]:
    """The tags that make a resource provably this stack's, and this execution's."""
    return {
        TAG_MANAGED_BY: settings.stack_name,
        TAG_EXECUTION: execution_name,
        TAG_EXECUTION_ID: execution_id,
    }
