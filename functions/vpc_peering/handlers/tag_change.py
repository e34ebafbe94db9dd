"""EventBridge target: a VPC's vpc-peering: tags changed; start (or join) its window's reconcile."""

from ..models.requests import TagChangeEvent
from ..runtime import event_target
from ..tag_start import on_tag_change

lambda_handler = event_target("TagChange", TagChangeEvent, on_tag_change)
