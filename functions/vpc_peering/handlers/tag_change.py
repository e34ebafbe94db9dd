"""EventBridge target: a VPC's vpc-peering: tags changed; start (or join) its window's reconcile."""

from ..models.requests import TagChangeEvent
from ..reconcile import on_tag_change
from ..runtime import event_target

lambda_handler = event_target("TagChange", TagChangeEvent, on_tag_change)
