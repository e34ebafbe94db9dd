"""EC2's VPC peering connection states, in one home (as moto keeps a resource's states beside
it): each state's name, and what it means to this tool. Pure data."""

from __future__ import annotations

INITIATING = "initiating-request"
PENDING = "pending-acceptance"
PROVISIONING = "provisioning"
ACTIVE = "active"
DELETING = "deleting"
DELETED = "deleted"
REJECTED = "rejected"
FAILED = "failed"
EXPIRED = "expired"

#: A connection exists or is on its way.
LIVE = frozenset({INITIATING, PENDING, PROVISIONING, ACTIVE})
#: Anything else: it is gone, or going (EC2 shows a deleted one for a while, tags included).
GONE = frozenset({DELETING, DELETED, FAILED, REJECTED, EXPIRED})
#: The accepter has yet to accept it.
NEEDS_ACCEPT = frozenset({INITIATING, PENDING})
#: Passed through on the way to active (after an accept).
ACTIVATING = frozenset({PENDING, PROVISIONING})
#: Which of several live connections of one pair is preferred (the lowest).
PREFERENCE = {ACTIVE: 0, PROVISIONING: 1, PENDING: 2, INITIATING: 3}
