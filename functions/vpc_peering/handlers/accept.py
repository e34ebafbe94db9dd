"""EventBridge target: auto-accept a requested peering and report back to the create machine.

Only the peering id and the task token are taken from the event; the decision is made on
EC2's own record of the peering (see ``acceptance``). The token is checked first, with a
heartbeat: an event whose token no execution waits on is dropped before any EC2 call.
"""

from ..acceptance import accept
from ..models.requests import AcceptanceRequest
from ..runtime import event_step, load_settings

__all__ = ["accept", "lambda_handler", "load_settings"]

lambda_handler = event_step("Accept", AcceptanceRequest, accept)
