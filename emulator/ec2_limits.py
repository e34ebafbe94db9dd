"""EC2's quotas and request throttling, as AWS documents them (moto 5.2.5 enforces neither).

Quotas (always on, at AWS's defaults, adjustable as a user raises them in Service Quotas),
"Amazon VPC quotas", https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
(and https://docs.aws.amazon.com/general/latest/gr/vpc-service.html), refused with the codes of
"Error codes for the Amazon EC2 API",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html:

* Active VPC peering connections per VPC, 50 (up to 125): ``AcceptVpcPeeringConnection`` that
  would make either VPC's active peerings exceed it fails with
  ``ActiveVpcPeeringConnectionPerVpcLimitExceeded``.
* Outstanding VPC peering connection requests, 25: ``CreateVpcPeeringConnection`` from a VPC
  that already has that many ``pending-acceptance`` requests fails with
  ``OutstandingVpcPeeringConnectionLimitExceeded`` (the error's description: "requests that you
  can create for the specified VPC"; the quota page says "from your account": counted per VPC).
* Routes per route table, 50 (up to 1,000), IPv4 and IPv6 counted apart: ``CreateRoute`` to a
  table that already holds that many routes of the destination's family fails with
  ``RouteLimitExceeded``. The table's ``local`` route counts (unconfirmed; the stricter reading).

Throttling (opt-in: ``--ec2-throttling`` or ``POST /_emulator/ec2-throttling``), "Request
throttling for the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html: a token bucket per API
action, per account and region; each request takes one token; an empty bucket answers
``RequestLimitExceeded`` (HTTP 503); buckets refill every second up to their capacity. Sizes from
the page's tables ("Request token bucket sizes and refill rates"): non-mutating (``Describe*``,
``List*``, ``Search*``, ``Get*``) 100 / 20 per second, mutating 50 / 5, resource-intensive (the
peering actions among them) 50 / 5, and the uncategorized actions this product calls
(``CreateTags``/``DeleteTags`` 100 / 10). Not modelled: the smaller bucket of unfiltered and
unpaginated ``DescribeInstances``-like calls (none of them is called here) and resource token
buckets (``RunInstances``...).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .faults import error_response
from .server import ApiCall, HookResponse

#: Service Quotas' defaults (names used by the control endpoint and ``--ec2-quota``).
DEFAULT_QUOTAS = {
    "active_peerings_per_vpc": 50,
    "outstanding_requests_per_vpc": 25,
    "routes_per_table": 50,
}

#: (capacity, refill per second) of each category ("Request token bucket sizes and refill rates").
NON_MUTATING = (100.0, 20.0)
MUTATING = (50.0, 5.0)
RESOURCE_INTENSIVE = (50.0, 5.0)
RESOURCE_INTENSIVE_ACTIONS = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)
#: Uncategorized actions with their own bucket (those an automation of VPCs may call).
UNCATEGORIZED = {
    "CreateTags": (100.0, 10.0),
    "DeleteTags": (100.0, 10.0),
    "CreateNetworkInterface": (100.0, 5.0),
    "DeleteNetworkInterface": (100.0, 5.0),
    "CreateNatGateway": (10.0, 1.0),
    "DeleteNatGateway": (10.0, 1.0),
    "CreateVpcEndpoint": (4.0, 0.3),
    "DeleteVpcEndpoints": (4.0, 0.3),
    "ModifyVpcEndpoint": (4.0, 0.3),
    "CreateDefaultVpc": (1.0, 1.0),
    "CreateDefaultSubnet": (1.0, 1.0),
    "RunInstances": (5.0, 2.0),
    "StartInstances": (5.0, 2.0),
}
NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")


def documented_bucket(operation: str) -> tuple[float, float]:
    """(capacity, refill per second) of an EC2 action's request bucket, by its category."""
    if operation in UNCATEGORIZED:
        return UNCATEGORIZED[operation]
    if operation in RESOURCE_INTENSIVE_ACTIONS:
        return RESOURCE_INTENSIVE
    if operation.startswith(NON_MUTATING_PREFIXES):
        return NON_MUTATING
    return MUTATING


# -------------------------------------------------------------------------------- quotas
@dataclass
class Ec2Quotas:
    """The quota values in force: defaults, then per account and region where raised."""

    defaults: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    #: (account, region) -> {quota: value}: a raise in one account and region only.
    raised: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def value(self, name: str, account: str, region: str) -> int:
        with self._lock:
            return self.raised.get((account, region), {}).get(name, self.defaults[name])

    def set(self, values: dict[str, Any], account: str | None, region: str | None) -> None:
        """Set quotas everywhere, or in one account and region (both or neither)."""
        checked = {}
        for name, value in values.items():
            if name not in DEFAULT_QUOTAS:
                raise ValueError(f"unknown quota {name!r} (known: {', '.join(DEFAULT_QUOTAS)})")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
            checked[name] = value
        if (account is None) != (region is None):
            raise ValueError("give both account and region, or neither")
        with self._lock:
            if account is None or region is None:
                self.defaults.update(checked)
            else:
                self.raised.setdefault((account, region), {}).update(checked)

    def reset(self) -> None:
        with self._lock:
            self.defaults = dict(DEFAULT_QUOTAS)
            self.raised.clear()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "defaults": dict(self.defaults),
                "raised": [
                    {"account": a, "region": r, **values}
                    for (a, r), values in sorted(self.raised.items())
                ],
            }

    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        """``GET`` the values; ``POST {"routes_per_table": 100, "account"?, "region"?}`` sets;
        ``DELETE`` goes back to AWS's defaults."""
        if method == "GET":
            return 200, self.report()
        if method == "DELETE":
            self.reset()
            return 200, self.report()
        if method != "POST":
            return 405, {"error": f"{method} not allowed on ec2-quotas"}
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("a JSON object is required")
            account, region = data.pop("account", None), data.pop("region", None)
            self.set(data, account, region)
        except (ValueError, TypeError) as exc:
            return 400, {"error": f"bad ec2-quotas request: {exc}"}
        return 200, self.report()


_quotas = Ec2Quotas()
_installed = False


def quotas() -> Ec2Quotas:
    return _quotas


def install() -> Ec2Quotas:
    """Enforce the quotas in moto's EC2 backends (idempotent); returns the quota values."""
    global _installed
    if _installed:
        return _quotas
    _installed = True
    from moto.ec2.models.route_tables import RouteBackend
    from moto.ec2.models.vpc_peering_connections import VPCPeeringConnectionBackend as Backend

    Backend.create_vpc_peering_connection = _checked_create(  # type: ignore[method-assign]
        Backend.create_vpc_peering_connection
    )
    Backend.accept_vpc_peering_connection = _checked_accept(  # type: ignore[method-assign]
        Backend.accept_vpc_peering_connection
    )
    RouteBackend.create_route = _checked_route(RouteBackend.create_route)  # type: ignore[method-assign]
    return _quotas


def _limit_error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _all_peerings(backend: Any) -> list[Any]:
    """Every peering moto knows, once (a cross-account or cross-region one is in two backends)."""
    seen: dict[str, Any] = {}
    for other in backend.get_vpc_pcx_refs():
        seen.update(other.vpc_pcxs)
    return list(seen.values())


def _checked_create(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_vpc_peering_connection(self: Any, vpc: Any, peer_vpc: Any, *a: Any, **k: Any) -> Any:
        limit = _quotas.value("outstanding_requests_per_vpc", vpc.owner_id, vpc.region)
        pending = sum(
            1
            for p in _all_peerings(self)
            if p.vpc.id == vpc.id and p._status.code == "pending-acceptance"
        )
        if pending >= limit:
            raise _limit_error(
                "OutstandingVpcPeeringConnectionLimitExceeded",
                f"The VPC {vpc.id} already has {pending} outstanding VPC peering connection "
                f"requests; the limit is {limit}.",
            )
        return original(self, vpc, peer_vpc, *a, **k)

    return create_vpc_peering_connection


def _checked_accept(original: Callable[..., Any]) -> Callable[..., Any]:
    def accept_vpc_peering_connection(self: Any, vpc_pcx_id: str) -> Any:
        pcx = self.get_vpc_peering_connection(vpc_pcx_id)
        if pcx._status.code == "pending-acceptance":
            peerings = _all_peerings(self)
            for vpc in (pcx.vpc, pcx.peer_vpc):
                limit = _quotas.value("active_peerings_per_vpc", vpc.owner_id, vpc.region)
                active = sum(
                    1
                    for p in peerings
                    if p._status.code == "active" and vpc.id in (p.vpc.id, p.peer_vpc.id)
                )
                if active >= limit:
                    raise _limit_error(
                        "ActiveVpcPeeringConnectionPerVpcLimitExceeded",
                        f"The VPC {vpc.id} already has {active} active VPC peering "
                        f"connections; the limit is {limit}.",
                    )
        return original(self, vpc_pcx_id)

    return accept_vpc_peering_connection


def _checked_route(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_route(
        self: Any,
        route_table_id: str,
        destination_cidr_block: str | None,
        destination_ipv6_cidr_block: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        by_prefix_list = (args[0] if args else None) or kwargs.get("destination_prefix_list_id")
        if not kwargs.get("local") and not by_prefix_list and route_table_id in self.route_tables:
            table = self.route_tables[route_table_id]
            ipv6 = destination_ipv6_cidr_block is not None
            same_family = sum(
                1
                for r in table.routes
                if (r.destination_ipv6_cidr_block is not None) == ipv6
                and getattr(r, "destination_prefix_list", None) is None
            )
            limit = _quotas.value("routes_per_table", self.account_id, self.region_name)
            if same_family >= limit:
                family = "IPv6" if ipv6 else "IPv4"
                raise _limit_error(
                    "RouteLimitExceeded",
                    f"The maximum number of {family} routes in route table {route_table_id} "
                    f"has been reached ({limit}).",
                )
        return original(
            self,
            route_table_id,
            destination_cidr_block,
            destination_ipv6_cidr_block,
            *args,
            **kwargs,
        )

    return create_route


# ----------------------------------------------------------------------------- throttling
@dataclass
class Bucket:
    capacity: float
    refill: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Ec2Throttle:
    """The before-request hook: one bucket per (account, region, action) while enabled."""

    enabled: bool = False
    #: action -> (capacity, refill per second), overriding the documented bucket (the fault
    #: suite shrinks one action's bucket; the bench keeps AWS's).
    overrides: dict[str, tuple[float, float]] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)  # action -> requests refused
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str, str], Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bucket_size(self, operation: str) -> tuple[float, float]:
        return self.overrides.get(operation) or documented_bucket(operation)

    def __call__(self, call: ApiCall) -> HookResponse | None:
        if not self.enabled or call.service != "ec2":
            return None
        key = (call.account, call.region, call.operation)
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                capacity, refill = self.bucket_size(call.operation)
                bucket = self._buckets[key] = Bucket(capacity, refill, capacity, now)
            if bucket.take(now):
                return None
            self.throttled[call.operation] = self.throttled.get(call.operation, 0) + 1
        return error_response(call, "RequestLimitExceeded", "Request limit exceeded.")

    def configure(self, data: dict[str, Any]) -> None:
        buckets = data.get("buckets", {})
        if not isinstance(buckets, dict):
            raise ValueError("buckets: {action: [capacity, refill per second]}")
        parsed = {}
        for action, size in buckets.items():
            capacity, refill = (float(v) for v in size)
            if capacity < 0 or refill < 0:
                raise ValueError(f"{action}: capacity and refill must be >= 0")
            parsed[str(action)] = (capacity, refill)
        with self._lock:
            self.enabled = bool(data.get("enabled", True))
            self.overrides.update(parsed)
            self._buckets.clear()  # full buckets, at the sizes now in force

    def reset(self) -> None:
        with self._lock:
            self.enabled = False
            self.overrides.clear()
            self.throttled.clear()
            self._buckets.clear()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.enabled,
                "buckets": {a: list(size) for a, size in self.overrides.items()},
                "throttled": dict(self.throttled),
                "tokens": [
                    {"account": a, "region": r, "action": op, **asdict(b)}
                    for (a, r, op), b in sorted(self._buckets.items())
                ],
            }

    def control(self, method: str, body: bytes) -> tuple[int, Any]:
        """``GET`` the state; ``POST {"enabled": true, "buckets": {"CreateRoute": [2, 0.5]}}``
        turns throttling on (every bucket full again); ``DELETE`` turns it off."""
        if method == "GET":
            return 200, self.report()
        if method == "DELETE":
            self.reset()
            return 200, self.report()
        if method != "POST":
            return 405, {"error": f"{method} not allowed on ec2-throttling"}
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("a JSON object is required")
            self.configure(data)
        except (ValueError, TypeError) as exc:
            return 400, {"error": f"bad ec2-throttling request: {exc}"}
        return 200, self.report()
