"""EC2 where moto 5.2.5 differs from AWS in what a VPC peering automation reads.

Each fix is listed in emulator/README.md, checked by tests/emulator/test_emulator_ec2_fixes.py:

* Filters with several values match when ANY value matches, for attributes that hold several
  values too (``tag-key``, ``route.destination-cidr-block``...), as EC2 documents ("multiple
  values: OR"); moto required the attribute's values to be a subset or superset of the filter's,
  so ``tag-key`` = [k1, k2] found nothing when a VPC had k1 and not k2.
* ``DescribeVpcPeeringConnections`` honours ``Filters`` (moto ignored them): the names EC2
  documents (``status-code``, ``status-message``, ``vpc-peering-connection-id``,
  ``requester-vpc-info.*``/``accepter-vpc-info.*`` ``vpc-id``, ``owner-id``, ``cidr-block``,
  ``tag:<key>``, ``tag-key``, ``tag-value``; ``expiration-time`` matches nothing, moto has no
  expiry); another name is ``InvalidParameterValue``, as EC2 answers. Values OR, filters AND;
  ``*`` and ``?`` wildcards. A ``cidr-block`` filter matches any IPv4 CIDR of the VPC.
* A peering's ``RequesterVpcInfo``/``AccepterVpcInfo`` carry ``CidrBlockSet`` (every associated
  IPv4 CIDR of the VPC) and ``Ipv6CidrBlockSet``, besides ``CidrBlock``.
* A route whose target is a VPC peering connection that ended (``deleted``, ``rejected``,
  ``failed``, ``expired``) or no longer exists is ``blackhole``, as AWS shows it (moto said
  ``active``); moto already refuses a ``CreateRoute`` to the same destination with
  ``RouteAlreadyExists`` until that route is deleted, as AWS does. ``route.state`` is a
  ``DescribeRouteTables`` filter (moto had none).
* A peering connection's tags are per account and region, as AWS keeps them: each account
  sees, in each region, the tags written there (the requester's at creation, or later
  ``CreateTags`` by either side), never the other side's, nor those of the other region of a
  same-account cross-region peering. moto stored them in the requester's account and region
  only and showed those to both sides and both regions.
* ``MaxResults``/``NextToken`` paging for ``DescribeVpcs``, ``DescribeRouteTables`` and
  ``DescribeVpcPeeringConnections`` (moto returned everything at once), with EC2's ranges
  (5-1000, 5-100, 5-1000).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2 import utils as ec2_utils
from moto.ec2.exceptions import EC2ClientError, InvalidFilter, InvalidNextToken
from moto.ec2.models import EC2Backend
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.vpc_peering_connections import VPCPeeringConnection
from moto.ec2.models.vpcs import VPC
from moto.ec2.responses import EC2Response

#: Peering states in which a route to the peering goes nowhere.
ENDED_PEERING_STATES = frozenset({"deleted", "rejected", "failed", "expired"})
PAGE_LIMITS = {
    "DescribeVpcs": 1000,
    "DescribeRouteTables": 100,
    "DescribeVpcPeeringConnections": 1000,
}

_installed = False
#: The EC2 backend (account and region) of the request being answered: whose tags it sees.
_viewer: ContextVar[Any] = ContextVar("ec2_viewer", default=None)


def install() -> None:
    """Apply every EC2 fix (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original_matching = ec2_utils.is_filter_matching
    ec2_utils.is_filter_matching = _any_value_matching(original_matching)
    VPCPeeringConnection.requester_vpc_info = property(  # type: ignore[method-assign,assignment]
        lambda self: _vpc_info(self.vpc, self.requester_options)
    )
    VPCPeeringConnection.accepter_vpc_info = property(  # type: ignore[method-assign,assignment]
        lambda self: _vpc_info(self.peer_vpc, self.accepter_options)
    )
    VPCPeeringConnection.get_tags = _tags_as_seen  # type: ignore[method-assign,assignment]
    Route.state = property(_route_state)  # type: ignore[method-assign,assignment]
    RouteTable.get_filter_value = _with_route_state(  # type: ignore[method-assign]
        RouteTable.get_filter_value
    )
    # Any: moto annotates each handler with its own mixin class as self.
    response: Any = EC2Response
    response.describe_vpc_peering_connections = _paged(
        _describe_vpc_peering_connections, "VpcPeeringConnections", "DescribeVpcPeeringConnections"
    )
    response.call_action = _as_viewer(response.call_action)
    response.describe_vpcs = _paged(response.describe_vpcs, "Vpcs", "DescribeVpcs")
    response.describe_route_tables = _paged(
        response.describe_route_tables, "RouteTables", "DescribeRouteTables"
    )


# ------------------------------------------------------- tags per account and region


def _as_viewer(call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Answer each EC2 request as its caller's account and region sees things."""

    def wrapper(self: Any) -> Any:
        token = _viewer.set(self.ec2_backend)
        try:
            return call_action(self)
        finally:
            _viewer.reset(token)

    return wrapper


def _tags_as_seen(self: VPCPeeringConnection) -> list[dict[str, str]]:
    """The peering's tags in the calling account and region: what was written there (creation
    tags in the requester's account and region; ``CreateTags`` where it was called), not what
    the other side, or the same account in the other region, wrote. "Tag your Amazon EC2
    resources" (tag restrictions): tags on a shared resource "are available only to your AWS
    account", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html; that they
    are kept per region too (a same-account cross-region peering) is issue 17's finding, not
    quoted from a page."""
    viewer = _viewer.get() or self.ec2_backend
    tags: list[dict[str, str]] = viewer.describe_tags(filters={"resource-id": [self.id]})
    return tags


# ------------------------------------------------------------------------ several values: OR


def _any_value_matching(original: Callable[[Any, str, Any], bool]) -> Callable[..., bool]:
    def is_filter_matching(obj: Any, name: str, values: Any) -> bool:
        actual = obj.get_filter_value(name)
        if isinstance(values, list) and len(values) > 1 and _is_collection(actual):
            return any(fnmatchcase(str(a), str(v)) for a in actual for v in values)
        return original(obj, name, values)

    return is_filter_matching


def _is_collection(value: Any) -> bool:
    plain = (str, bytes, bool, int, float, datetime, dict)
    return isinstance(value, Iterable) and not isinstance(value, plain)


# ------------------------------------------------------------------------- peering filters


def _describe_vpc_peering_connections(self: Any) -> ActionResult:
    ids = self._get_param("VpcPeeringConnectionIds", [])
    filters: dict[str, list[str]] = self._filters_from_querystring()
    for name in filters:
        _peering_values(None, name)  # an unknown filter fails even when nothing is listed
    peerings = self.ec2_backend.describe_vpc_peering_connections(vpc_peering_ids=ids)
    return ActionResult(
        {"VpcPeeringConnections": [p for p in peerings if _peering_matches(p, filters)]}
    )


def _peering_matches(pcx: VPCPeeringConnection, filters: dict[str, list[str]]) -> bool:
    """EC2's rule: every filter holds; a filter holds when any value matches."""
    return all(
        any(fnmatchcase(actual, str(v)) for actual in _peering_values(pcx, name) for v in values)
        for name, values in filters.items()
    )


def _peering_values(pcx: VPCPeeringConnection | None, name: str) -> list[str]:
    """The peering's values for filter ``name`` (with ``pcx`` None: only check the name)."""
    sides = {"requester-vpc-info.": "vpc", "accepter-vpc-info.": "peer_vpc"}
    for prefix, attribute in sides.items():
        if name.startswith(prefix) and name[len(prefix) :] in ("vpc-id", "owner-id", "cidr-block"):
            return [] if pcx is None else _side_values(getattr(pcx, attribute), name[len(prefix) :])
    if name in ("vpc-peering-connection-id", "status-code", "status-message", "expiration-time"):
        return [] if pcx is None else _own_values(pcx, name)
    if name in ("tag-key", "tag-value") or name.startswith("tag:"):
        return [] if pcx is None else _tag_values(pcx, name)
    raise InvalidFilter(name, error_type="InvalidParameterValue")


def _side_values(vpc: VPC, field: str) -> list[str]:
    if field == "vpc-id":
        return [vpc.id]
    if field == "owner-id":
        return [vpc.owner_id]
    return _cidrs(vpc, ipv6=False)


def _own_values(pcx: VPCPeeringConnection, name: str) -> list[str]:
    values = {
        "vpc-peering-connection-id": [pcx.id],
        "status-code": [pcx._status.code],
        "status-message": [pcx._status.message],
        "expiration-time": [],  # moto's peerings never expire
    }
    return values[name]


def _tag_values(pcx: VPCPeeringConnection, name: str) -> list[str]:
    tags = {t["key"]: t["value"] for t in pcx.get_tags()}
    if name == "tag-key":
        return list(tags)
    if name == "tag-value":
        return list(tags.values())
    key = name.removeprefix("tag:")
    return [tags[key]] if key in tags else []


# --------------------------------------------------------------------- peering CIDR sets


def _vpc_info(vpc: VPC, options: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "OwnerId": vpc.owner_id,
        "Region": vpc.region,
        "VpcId": vpc.id,
        "CidrBlock": vpc.cidr_block,
        "CidrBlockSet": [{"CidrBlock": c} for c in _cidrs(vpc, ipv6=False)],
        "PeeringOptions": options,
    }
    ipv6 = _cidrs(vpc, ipv6=True)
    if ipv6:
        info["Ipv6CidrBlockSet"] = [{"Ipv6CidrBlock": c} for c in ipv6]
    return info


def _cidrs(vpc: VPC, *, ipv6: bool) -> list[str]:
    """The VPC's associated CIDRs (not those being or already disassociated)."""
    return [
        str(a["cidr_block"])
        for a in vpc.get_cidr_block_association_set(ipv6=ipv6)
        if (a.get("cidr_block_state") or {}).get("state") in (None, "associated")
    ]


# ---------------------------------------------------------------------- blackhole routes


def _route_state(self: Route) -> str:
    """``blackhole`` when the route's peering ended or is gone, as AWS shows it."""
    pcx = self.vpc_pcx
    if pcx is not None and (pcx._status.code in ENDED_PEERING_STATES or not _exists(pcx.id)):
        return "blackhole"
    return "active"


def _exists(peering_id: str) -> bool:
    backends: Any = EC2Backend.get_vpc_pcx_refs()  # moto annotates these as peerings
    return any(peering_id in backend.vpc_pcxs for backend in backends)


def _with_route_state(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_filter_value(self: RouteTable, name: str, method_name: str | None = None) -> Any:
        if name == "route.state":
            return [route.state for route in self._routes.values()]
        return original(self, name, method_name)

    return get_filter_value


# -------------------------------------------------------------------------------- paging


def _paged(
    describe: Callable[[Any], ActionResult], key: str, operation: str
) -> Callable[[Any], ActionResult]:
    """Wrap a Describe handler: MaxResults/NextToken as EC2 pages (the token is an offset)."""

    def handler(self: Any) -> ActionResult:
        max_results = self._get_param("MaxResults")
        token = self._get_param("NextToken")
        result = describe(self)
        if max_results is None and not token:
            return result
        items = list(result.result[key])  # type: ignore[index]
        start = _offset(token, len(items))
        size = _page_size(max_results, operation, len(items))
        page = items[start : start + size]
        following = str(start + size) if start + size < len(items) else None
        return ActionResult({key: page, "NextToken": following})

    return handler


def _offset(token: str | None, count: int) -> int:
    if not token:
        return 0
    if not token.isdigit() or int(token) > count:
        raise InvalidNextToken(token)
    return int(token)


def _page_size(max_results: Any, operation: str, count: int) -> int:
    if max_results is None:
        return max(count, 1)
    size = int(max_results)
    limit = PAGE_LIMITS[operation]
    if not 5 <= size <= limit:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {size} ) for parameter maxResults is invalid. Expecting a value between "
            f"5 and {limit}.",
        )
    return size
