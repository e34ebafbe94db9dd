"""Tag change events: EC2 tag changes become ``aws.tag`` "Tag Change on Resource" events.

Why: AWS sends such an event to the default bus of the resource's account and region whenever
its tags change (``CreateTags``, ``DeleteTags``, tags given at creation through
``TagSpecifications``); moto sends nothing. Shape, as AWS documents it::

    {"version": "0", "id": ..., "detail-type": "Tag Change on Resource", "source": "aws.tag",
     "account": ..., "time": ..., "region": ...,
     "resources": ["arn:aws:ec2:<region>:<account>:vpc/vpc-..."],
     "detail": {"changed-tag-keys": [...], "service": "ec2", "resource-type": "vpc",
                "version": <per resource, +1 on each change>, "tags": {<all tags after>}}}

How: moto keeps EC2 tags in its ``TagBackend`` (``create_tags``, ``delete_tags``,
``delete_tag_keys``); wrapped here, each call compares the resource's tags before and after.
Within one EC2 API request (``EC2Response.call_action``; moto adds creation tags one key at a
time) the changes are collected and, once the request is done, one event per changed resource
is queued; a single worker thread puts them on the bus in order, so the API call never waits
for rule targets (delivery is asynchronous, as in AWS). Events go through the same rule
matching and delivery as ``PutEvents`` (``event_delivery.emit_to_default_bus``).

Choices and gaps (see emulator/README.md): a key counts as changed when it is added, removed or
gets another value; a ``CreateTags`` that rewrites a value unchanged emits nothing (unconfirmed
what AWS does). Resource types are those of :data:`ARN_RESOURCE_TYPES` (by id prefix); others
emit nothing. Delivery here is reliable; AWS's is best effort (nothing is ever dropped on
purpose to imitate that).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from moto.ec2.models.tags import TagBackend
from moto.ec2.responses import EC2Response
from moto.events.utils import EventMessageType
from moto.utilities.utils import get_partition

from emulator import event_delivery

logger = logging.getLogger("emulator.tag_events")

SOURCE = "aws.tag"
DETAIL_TYPE = "Tag Change on Resource"
#: moto's id prefix -> the resource type in the resource's ARN (the IAM Service Authorization
#: Reference names, which the event's ``resource-type`` repeats). AMIs are left out: their ARN
#: has no account.
ARN_RESOURCE_TYPES = {
    "vpc": "vpc",
    "subnet": "subnet",
    "rtb": "route-table",
    "pcx": "vpc-peering-connection",
    "sg": "security-group",
    "igw": "internet-gateway",
    "eigw": "egress-only-internet-gateway",
    "acl": "network-acl",
    "nat": "natgateway",
    "dopt": "dhcp-options",
    "eni": "network-interface",
    "eipalloc": "elastic-ip",
    "i": "instance",
    "vol": "volume",
    "snap": "snapshot",
    "cgw": "customer-gateway",
    "vgw": "vpn-gateway",
    "vpn": "vpn-connection",
    "tgw": "transit-gateway",
    "tgw-attach": "transit-gateway-attachment",
    "tgw-rtb": "transit-gateway-route-table",
    "vpce": "vpc-endpoint",
    "lt": "launch-template",
    "key": "key-pair",
    "pl": "prefix-list",
}

_Key = tuple[str, str, str]  # account, region, resource id
_local = threading.local()
_versions: dict[_Key, int] = {}
_versions_lock = threading.Lock()
_outbox: queue.Queue[tuple[str, str, EventMessageType]] = queue.Queue()
_installed = False


def install() -> None:
    """Wrap moto's tag backend and EC2 request dispatch; start the delivery worker (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in ("create_tags", "delete_tags", "delete_tag_keys"):
        setattr(TagBackend, name, _tracking(getattr(TagBackend, name)))
    response: Any = EC2Response  # moto annotates call_action with BaseResponse as self
    response.call_action = _collecting(response.call_action)
    threading.Thread(target=_deliver_forever, name="tag-events", daemon=True).start()


def arn_resource_type(resource_id: str) -> str | None:
    """The ARN resource type of an EC2 id (``vpc-0abc`` -> ``vpc``); None if not known."""
    return ARN_RESOURCE_TYPES.get(resource_id.rpartition("-")[0])


def _tracking(method: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap a TagBackend method: note which keys of which resources it changed."""

    def wrapper(self: Any, resource_ids: list[str], *args: Any, **kwargs: Any) -> bool:
        before = {rid: dict(self.tags.get(rid, {})) for rid in resource_ids}
        result = method(self, resource_ids, *args, **kwargs)
        for rid in resource_ids:
            after = self.tags.get(rid, {})
            keys = before[rid].keys() | after.keys()
            changed = {k for k in keys if before[rid].get(k) != after.get(k)}
            if changed:
                _changed(self, rid, changed)
        return result

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _collecting(call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap EC2 request dispatch: one event per resource per request, after moto is done."""

    def wrapper(self: Any) -> Any:
        if getattr(_local, "pending", None) is not None:  # not expected: EC2 does not nest
            return call_action(self)
        _local.pending = {}
        try:
            return call_action(self)
        finally:
            pending: dict[_Key, tuple[Any, set[str]]] = _local.pending
            _local.pending = None
            for (_, _, rid), (backend, keys) in pending.items():
                _queue_event(backend, rid, keys)

    wrapper.__name__ = call_action.__name__
    return wrapper


def _changed(backend: Any, resource_id: str, keys: set[str]) -> None:
    pending: dict[_Key, tuple[Any, set[str]]] | None = getattr(_local, "pending", None)
    if pending is None:  # a change outside an EC2 request (the emulator's own code)
        _queue_event(backend, resource_id, keys)
        return
    key = (backend.account_id, backend.region_name, resource_id)
    pending.setdefault(key, (backend, set()))[1].update(keys)


def _queue_event(backend: Any, resource_id: str, keys: set[str]) -> None:
    resource_type = arn_resource_type(resource_id)
    if resource_type is None:
        logger.debug("tags of %s changed; no event for this resource type", resource_id)
        return
    account, region = backend.account_id, backend.region_name
    with _versions_lock:
        version = _versions.get((account, region, resource_id), 0) + 1
        _versions[(account, region, resource_id)] = version
    partition = get_partition(region)
    event = event_delivery.service_event(
        source=SOURCE,
        detail_type=DETAIL_TYPE,
        account=account,
        region=region,
        resources=[f"arn:{partition}:ec2:{region}:{account}:{resource_type}/{resource_id}"],
        detail={
            "changed-tag-keys": sorted(keys),
            "service": "ec2",
            "resource-type": resource_type,
            "version": version,
            "tags": dict(backend.tags.get(resource_id, {})),
        },
    )
    _outbox.put((account, region, event))


def _deliver_forever() -> None:
    while True:
        account, region, event = _outbox.get()
        try:
            event_delivery.emit_to_default_bus(account, region, event)
        except Exception:  # one bad delivery must not stop the worker
            logger.exception("tag change event %s could not be delivered", event.get("id"))
