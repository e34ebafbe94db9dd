"""EC2 reads and writes, each in one place, with results as plain data.

Filters are sent to narrow what AWS returns, and results are filtered again here: the local
emulator (moto) ignores some filters, and the code must be right on both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from . import states
from .aws import Access, Location, aws_call
from .errors import TransientAwsError
from .observed import (
    AclEntry,
    NetworkAcl,
    Peering,
    PeeringSide,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    SideView,
    StalePermission,
    TrafficView,
    Vpc,
)

__all__ = [  # the observed types
    "NetworkAcl",
    "Peering",
    "PeeringSide",
    "Route",
    "RouteTable",
    "SecurityGroup",
    "SecurityGroupRule",
    "StalePermission",
    "Vpc",
]


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags", []) or []}


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _describe(access: Access, loc: Location, what: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of one Describe call at ``loc``: ``what`` is ``route_tables`` for
    DescribeRouteTables, whose items are under ``RouteTables``."""
    key = "".join(word.title() for word in what.split("_"))
    with aws_call(f"ec2:Describe{key}", loc):
        return _pages(access.ec2(loc), f"describe_{what}", key, **kwargs)


def _by_location(vpcs: Iterable[tuple[Location, str]]) -> dict[Location, list[str]]:
    """VPC ids grouped by where they are read, so one call serves both sides when it can."""
    at: dict[Location, list[str]] = {}
    for loc, vpc_id in vpcs:
        if vpc_id not in at.setdefault(loc, []):
            at[loc].append(vpc_id)
    return at


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _call(
    access: Access, loc: Location, operation: str, params: dict[str, Any], *codes: str
) -> dict[str, Any] | None:
    """One EC2 call (``operation`` as boto3 names it) at ``loc``; ``None`` when AWS answers one
    of ``codes``: the change is already made, or its subject already gone, which the
    idempotent steps take as success. The action in errors names the call and its ids."""
    name = "".join(word.title() for word in operation.split("_"))
    ids = " ".join(str(v) for k, v in params.items() if k.endswith(("Id", "Block")))
    with aws_call(f"ec2:{name} {ids}".strip(), loc):
        try:
            return dict(getattr(access.ec2(loc), operation)(**params))
        except ClientError as exc:
            if _code(exc) in codes:
                return None
            raise


def _done(
    access: Access, loc: Location, operation: str, params: dict[str, Any], *codes: str
) -> bool:
    """Make one change; False when AWS says it is already made or its subject already gone."""
    return _call(access, loc, operation, params, *codes) is not None


def _by_ids(
    fetch: Callable[[list[str]], list[dict[str, Any]]], ids: list[str], missing: str
) -> list[dict[str, Any]]:
    """Describe these ids; the ones that do not exist are simply absent. One missing id fails
    the whole call with ``missing``: then look the ids up one by one."""
    try:
        return fetch(ids)
    except ClientError as exc:
        if _code(exc) != missing:
            raise
    items: list[dict[str, Any]] = []
    for one in ids:
        try:
            items += fetch([one])
        except ClientError as exc:
            if _code(exc) != missing:
                raise
    return items


# ----------------------------------------------------------------------------------- reads
def _vpc(item: dict[str, Any]) -> Vpc:
    v4 = [
        a["CidrBlock"]
        for a in item.get("CidrBlockAssociationSet", [])
        if a.get("CidrBlockState", {}).get("State", "associated") in ("associated", "associating")
    ] or [item["CidrBlock"]]
    v6 = [
        a["Ipv6CidrBlock"]
        for a in item.get("Ipv6CidrBlockAssociationSet", [])
        if a.get("Ipv6CidrBlockState", {}).get("State", "associated")
        in ("associated", "associating")
        and a.get("Ipv6CidrBlock")
    ]
    # Blocks not from Amazon's pool (BYOIP, IPAM): routed only when AllowedPeerCidrs lists them.
    own = [
        a["Ipv6CidrBlock"]
        for a in item.get("Ipv6CidrBlockAssociationSet", [])
        if a.get("Ipv6CidrBlock") in v6 and a.get("Ipv6Pool", "Amazon") != "Amazon"
    ]
    return Vpc(item["VpcId"], item.get("OwnerId", ""), v4, v6, _tags(item), own)


def describe_vpcs(access: Access, loc: Location, vpc_ids: list[str]) -> dict[str, Vpc]:
    """The VPCs that exist among ``vpc_ids`` (missing ones are simply absent)."""
    ec2 = access.ec2(loc)
    with aws_call("ec2:DescribeVpcs", loc):
        items = _by_ids(
            lambda ids: _pages(ec2, "describe_vpcs", "Vpcs", VpcIds=ids),
            vpc_ids,
            "InvalidVpcID.NotFound",
        )
    return {item["VpcId"]: _vpc(item) for item in items if item["VpcId"] in vpc_ids}


def describe_tagged_vpcs(access: Access, loc: Location, tag_keys: Iterable[str]) -> list[Vpc]:
    """Every VPC at ``loc`` carrying any of these tag keys (one call, and its pages)."""
    keys = sorted(tag_keys)
    items = _describe(access, loc, "vpcs", Filters=[{"Name": "tag-key", "Values": keys}])
    return [vpc for vpc in map(_vpc, items) if any(k in vpc.tags for k in keys)]


def _route(item: dict[str, Any]) -> Route:
    destination = (
        item.get("DestinationCidrBlock")
        or item.get("DestinationIpv6CidrBlock")
        or item.get("DestinationPrefixListId", "")
    )
    target = next(
        (
            item[k]
            for k in (
                "GatewayId",
                "VpcPeeringConnectionId",
                "TransitGatewayId",
                "NatGatewayId",
                "NetworkInterfaceId",
                "InstanceId",
                "EgressOnlyInternetGatewayId",
                "LocalGatewayId",
                "CarrierGatewayId",
                "CoreNetworkArn",
            )
            if item.get(k)
        ),
        "unknown",
    )
    return Route(
        destination=destination,
        target=target,
        state=item.get("State", "active"),
        origin=item.get("Origin", "CreateRoute"),
        peering_id=item.get("VpcPeeringConnectionId"),
    )


def _route_table(item: dict[str, Any]) -> RouteTable:
    associations = {
        a["SubnetId"]: a["RouteTableAssociationId"]
        for a in item.get("Associations", [])
        if a.get("SubnetId")
        and a.get("AssociationState", {}).get("State", "associated")
        in ("associated", "associating")
    }
    return RouteTable(
        route_table_id=item["RouteTableId"],
        vpc_id=item["VpcId"],
        main=any(a.get("Main") for a in item.get("Associations", [])),
        subnet_ids=sorted(associations),
        associations=associations,
        routes=[_route(r) for r in item.get("Routes", [])],
        tags=_tags(item),
    )


#: EC2 takes at most 200 values in one filter: more VPCs are read 200 at a time.
MAX_FILTER_VALUES = 200


def describe_route_tables(access: Access, loc: Location, vpc_ids: list[str]) -> list[RouteTable]:
    """Every route table of these VPCs."""
    items = []
    for start in range(0, len(vpc_ids), MAX_FILTER_VALUES):
        chunk = vpc_ids[start : start + MAX_FILTER_VALUES]
        items += _describe(
            access, loc, "route_tables", Filters=[{"Name": "vpc-id", "Values": chunk}]
        )
    wanted = set(vpc_ids)
    return with_prefix_lists(access, loc, [_route_table(i) for i in items if i["VpcId"] in wanted])


def with_prefix_lists(access: Access, loc: Location, tables: list[RouteTable]) -> list[RouteTable]:
    """Fill each prefix-list route's CIDRs (one read per list, only for tables that have one):
    a peering route inside a prefix list's entry is as narrow as one inside a CIDR route."""
    lists = sorted(
        {r.destination for t in tables for r in t.routes if r.destination.startswith("pl-")}
    )
    if not lists:
        return tables
    ec2 = access.ec2(loc)
    entries: dict[str, list[str]] = {}
    for prefix_list in lists:
        with aws_call(f"ec2:GetManagedPrefixListEntries {prefix_list}", loc):
            pages = ec2.get_paginator("get_managed_prefix_list_entries").paginate(
                PrefixListId=prefix_list
            )
            entries[prefix_list] = [
                e["Cidr"] for page in pages for e in page.get("Entries", []) if e.get("Cidr")
            ]
    for table in tables:
        for route in table.routes:
            if route.destination in entries:
                route.prefix_cidrs = entries[route.destination]
    return tables


def describe_route_tables_by_id(
    access: Access, loc: Location, route_table_ids: list[str]
) -> list[RouteTable]:
    """These route tables (missing ones are simply absent)."""
    ec2 = access.ec2(loc)
    with aws_call("ec2:DescribeRouteTables", loc):
        items = _by_ids(
            lambda ids: list(ec2.describe_route_tables(RouteTableIds=ids)["RouteTables"]),
            route_table_ids,
            "InvalidRouteTableID.NotFound",
        )
    return with_prefix_lists(
        access, loc, [_route_table(i) for i in items if i["RouteTableId"] in route_table_ids]
    )


def route_tables_at(access: Access, vpcs: list[tuple[Location, str]]) -> dict[str, RouteTable]:
    """The route tables of these VPCs by id: one read per account and region."""
    at = _by_location(vpcs)
    return {
        table.route_table_id: table
        for loc, vpc_ids in at.items()
        for table in describe_route_tables(access, loc, vpc_ids)
    }


def describe_subnets(access: Access, loc: Location, vpc_ids: list[str]) -> dict[str, str]:
    """Subnet id -> VPC id, for the subnets of these VPCs."""
    items = _describe(access, loc, "subnets", Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
    return {i["SubnetId"]: i["VpcId"] for i in items if i["VpcId"] in vpc_ids}


def _peering(item: dict[str, Any]) -> Peering:
    def side(info: dict[str, Any]) -> PeeringSide:
        options = info.get("PeeringOptions", {}) or {}
        v4 = [c["CidrBlock"] for c in info.get("CidrBlockSet", []) or [] if c.get("CidrBlock")]
        v6 = [
            c["Ipv6CidrBlock"]
            for c in info.get("Ipv6CidrBlockSet", []) or []
            if c.get("Ipv6CidrBlock")
        ]
        return PeeringSide(
            vpc_id=info.get("VpcId", ""),
            owner_id=info.get("OwnerId", ""),
            region=info.get("Region", ""),
            allow_dns=bool(options.get("AllowDnsResolutionFromRemoteVpc", False)),
            cidr_blocks=v4 or ([info["CidrBlock"]] if info.get("CidrBlock") else []),
            ipv6_cidr_blocks=v6,
        )

    status = item.get("Status", {})
    return Peering(
        peering_id=item["VpcPeeringConnectionId"],
        status=status.get("Code", "unknown"),
        message=status.get("Message", ""),
        requester=side(item.get("RequesterVpcInfo", {})),
        accepter=side(item.get("AccepterVpcInfo", {})),
        tags=_tags(item),
    )


def describe_peering(access: Access, loc: Location, peering_id: str) -> Peering | None:
    """The peering with this id as seen from ``loc``, or None if EC2 does not know it."""
    params = {"VpcPeeringConnectionIds": [peering_id]}
    response = _call(
        access, loc, "describe_vpc_peering_connections", params,
        "InvalidVpcPeeringConnectionID.NotFound",
    )  # fmt: skip
    items: list[dict[str, Any]] = response["VpcPeeringConnections"] if response else []
    matches = [_peering(i) for i in items if i["VpcPeeringConnectionId"] == peering_id]
    return matches[0] if matches else None


def describe_peerings(
    access: Access,
    loc: Location,
    *,
    requester_vpcs: list[str] | None = None,
    accepter_vpcs: list[str] | None = None,
    states: frozenset[str] | None = None,
) -> list[Peering]:
    """Peerings EC2 shows at ``loc``, narrowed by requester VPC, accepter VPC and state (EC2
    ANDs the filters; each one's values are ORed). Nothing given: every peering there."""
    filters = [
        {"Name": name, "Values": sorted(values)}
        for name, values in (
            ("status-code", states),
            ("requester-vpc-info.vpc-id", requester_vpcs),
            ("accepter-vpc-info.vpc-id", accepter_vpcs),
        )
        if values
    ]
    items = _describe(
        access, loc, "vpc_peering_connections", **({"Filters": filters} if filters else {})
    )
    return [
        p
        for p in map(_peering, items)
        if (not states or p.status in states)
        and (not requester_vpcs or p.requester.vpc_id in requester_vpcs)
        and (not accepter_vpcs or p.accepter.vpc_id in accepter_vpcs)
    ]


def describe_live_peerings(access: Access, loc: Location, vpc_ids: list[str]) -> list[Peering]:
    """Peerings that exist or are on their way and involve any of these VPCs: those they
    requested and those they accept (two calls, as EC2 cannot OR two filters)."""
    requested = describe_peerings(access, loc, requester_vpcs=vpc_ids, states=states.LIVE)
    accepted = describe_peerings(access, loc, accepter_vpcs=vpc_ids, states=states.LIVE)
    seen = {p.peering_id for p in requested}
    return requested + [p for p in accepted if p.peering_id not in seen]


def describe_pair_peerings(access: Access, loc: Location, vpc_a: str, vpc_b: str) -> list[Peering]:
    """The live peerings between these two VPCs, either way round (one call)."""
    pair = sorted({vpc_a, vpc_b})
    found = describe_peerings(
        access, loc, requester_vpcs=pair, accepter_vpcs=pair, states=states.LIVE
    )
    return [p for p in found if {p.requester.vpc_id, p.accepter.vpc_id} == set(pair)]


def wait_for_status(
    access: Access,
    loc: Location,
    peering_id: str,
    wanted: frozenset[str],
    leave: frozenset[str],
    timeout: float,
    interval: float = 2.0,
) -> Peering | None:
    """Poll until the peering's status is in ``wanted`` or leaves ``leave`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        peering = describe_peering(access, loc, peering_id)
        if peering is None or peering.status in wanted or peering.status not in leave:
            return peering
        if time.monotonic() >= deadline:
            raise TransientAwsError(
                f"{peering_id} still {peering.status} after {timeout:.0f}s in {loc}"
            )
        time.sleep(interval)


def observe_sides[Name: str](
    access: Access, where: dict[Name, tuple[Location, str]], subnets_for: set[Name]
) -> dict[Name, SideView]:
    """What EC2 shows around each named VPC (``name -> (location, vpc id)``): one read of each
    kind per account and region, both VPCs in one call when they share one. Subnets are read
    only where a side named in ``subnets_for`` lives."""
    at = _by_location(where.values())
    read: dict[Location, tuple[dict[str, Vpc], list[RouteTable], dict[str, str], list[Peering]]]
    read = {}
    for loc, vpc_ids in at.items():
        needs_subnets = any(where[n][0] == loc for n in subnets_for if n in where)
        read[loc] = (
            describe_vpcs(access, loc, vpc_ids),
            describe_route_tables(access, loc, vpc_ids),
            describe_subnets(access, loc, vpc_ids) if needs_subnets else {},
            describe_live_peerings(access, loc, vpc_ids),
        )
    views: dict[Name, SideView] = {}
    for name, (loc, vpc_id) in where.items():
        vpcs, tables, subnets, peerings = read[loc]
        mine = [t for t in tables if t.vpc_id == vpc_id]
        views[name] = SideView(vpcs.get(vpc_id), mine, subnets, peerings)
    return views


# ---------------------------------------------------------------------------------- writes
def create_peering(
    access: Access,
    loc: Location,
    vpc_id: str,
    peer_vpc_id: str,
    peer_owner_id: str | None,
    peer_region: str | None,
    tags: dict[str, str],
) -> Peering:
    kwargs: dict[str, Any] = {
        "VpcId": vpc_id,
        "PeerVpcId": peer_vpc_id,
        "TagSpecifications": [
            {
                "ResourceType": "vpc-peering-connection",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    }
    if peer_owner_id:
        kwargs["PeerOwnerId"] = peer_owner_id
    if peer_region:
        kwargs["PeerRegion"] = peer_region
    with aws_call(f"ec2:CreateVpcPeeringConnection {vpc_id} -> {peer_vpc_id}", loc):
        item = access.ec2(loc).create_vpc_peering_connection(**kwargs)["VpcPeeringConnection"]
    return _peering(item)


def accept_peering(access: Access, loc: Location, peering_id: str) -> str:
    with aws_call(f"ec2:AcceptVpcPeeringConnection {peering_id}", loc):
        item = access.ec2(loc).accept_vpc_peering_connection(VpcPeeringConnectionId=peering_id)
    return str(item["VpcPeeringConnection"]["Status"]["Code"])


def reject_peering(access: Access, loc: Location, peering_id: str) -> bool:
    """Reject a pending request (as its accepter); False if it is no longer pending or known."""
    params = {"VpcPeeringConnectionId": peering_id}
    gone = ("InvalidVpcPeeringConnectionID.NotFound", "InvalidStateTransition")
    return _done(access, loc, "reject_vpc_peering_connection", params, *gone)


def delete_peering(access: Access, loc: Location, peering_id: str) -> bool:
    """Delete the peering; False if EC2 no longer knows it."""
    params = {"VpcPeeringConnectionId": peering_id}
    gone = ("InvalidVpcPeeringConnectionID.NotFound", "InvalidStateTransition")
    return _done(access, loc, "delete_vpc_peering_connection", params, *gone)


def create_route(
    access: Access, loc: Location, route_table_id: str, destination: str, peering_id: str
) -> bool:
    """Add a route to the peering; False if a route to that destination already exists."""
    params = {"RouteTableId": route_table_id, **_destination(destination)}
    params["VpcPeeringConnectionId"] = peering_id
    return _done(access, loc, "create_route", params, "RouteAlreadyExists")


def delete_route(access: Access, loc: Location, route_table_id: str, destination: str) -> bool:
    """Remove a route; False if it is already gone."""
    params = {"RouteTableId": route_table_id, **_destination(destination)}
    gone = ("InvalidRoute.NotFound", "InvalidRouteTableID.NotFound")
    return _done(access, loc, "delete_route", params, *gone)


def _destination(cidr: str) -> dict[str, str]:
    key = "DestinationIpv6CidrBlock" if ":" in cidr else "DestinationCidrBlock"
    return {key: cidr}


def create_route_table(
    access: Access, loc: Location, vpc_id: str, tags: dict[str, str], client_token: str
) -> str:
    with aws_call(f"ec2:CreateRouteTable in {vpc_id}", loc):
        item = access.ec2(loc).create_route_table(
            VpcId=vpc_id,
            ClientToken=client_token,
            TagSpecifications=[
                {
                    "ResourceType": "route-table",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )["RouteTable"]
    return str(item["RouteTableId"])


def associate_route_table(
    access: Access, loc: Location, route_table_id: str, subnet_id: str
) -> str | None:
    """Associate a subnet; None if it already is associated with this table."""
    params = {"RouteTableId": route_table_id, "SubnetId": subnet_id}
    item = _call(access, loc, "associate_route_table", params, "Resource.AlreadyAssociated")
    return str(item["AssociationId"]) if item else None


def disassociate_route_table(access: Access, loc: Location, association_id: str) -> bool:
    """Disassociate; False if the association is already gone."""
    params = {"AssociationId": association_id}
    return _done(access, loc, "disassociate_route_table", params, "InvalidAssociationID.NotFound")


def delete_route_table(access: Access, loc: Location, route_table_id: str) -> bool:
    """Delete the route table; False if it is already gone."""
    params = {"RouteTableId": route_table_id}
    return _done(access, loc, "delete_route_table", params, "InvalidRouteTableID.NotFound")


def create_tags(access: Access, loc: Location, resource_id: str, tags: dict[str, str]) -> None:
    """Set these tags on an existing resource (each key's value replaced)."""
    params = {"Resources": [resource_id], "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    _call(access, loc, "create_tags", params)


def delete_tags(access: Access, loc: Location, resource_id: str, keys: list[str]) -> None:
    params = {"Resources": [resource_id], "Tags": [{"Key": k} for k in keys]}
    _call(access, loc, "delete_tags", params)


def set_dns_options(
    access: Access, loc: Location, peering_id: str, requester: bool | None, accepter: bool | None
) -> None:
    """Set DNS resolution from the remote VPC on the requester and/or accepter side (None:
    leave that side's option as it is)."""
    kwargs: dict[str, Any] = {"VpcPeeringConnectionId": peering_id}
    if requester is not None:
        kwargs["RequesterPeeringConnectionOptions"] = {"AllowDnsResolutionFromRemoteVpc": requester}
    if accepter is not None:
        kwargs["AccepterPeeringConnectionOptions"] = {"AllowDnsResolutionFromRemoteVpc": accepter}
    with aws_call(f"ec2:ModifyVpcPeeringConnectionOptions {peering_id}", loc):
        access.ec2(loc).modify_vpc_peering_connection_options(**kwargs)


# -------------------------------------------------------------------------- security groups
#: EC2 answers a protocol by name when it has one; a number otherwise.
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1"}


def _protocol(value: Any) -> str:
    text = str(value).lower()
    return _PROTOCOLS.get(text, text)


def _port(value: Any) -> int:
    return -1 if value is None else int(value)


def _permission_rules(group_id: str, item: dict[str, Any]) -> list[SecurityGroupRule]:
    """One IpPermission of DescribeSecurityGroups as one rule per CIDR or referenced group."""
    protocol = _protocol(item.get("IpProtocol", "-1"))
    ports = (_port(item.get("FromPort")), _port(item.get("ToPort")))
    if protocol == "-1":
        ports = (-1, -1)
    sources: list[tuple[str | None, str | None]] = [
        (r["CidrIp"], None) for r in item.get("IpRanges", []) or [] if r.get("CidrIp")
    ]
    sources += [
        (r["CidrIpv6"], None) for r in item.get("Ipv6Ranges", []) or [] if r.get("CidrIpv6")
    ]
    sources += [
        (None, p["GroupId"]) for p in item.get("UserIdGroupPairs", []) or [] if p.get("GroupId")
    ]
    return [SecurityGroupRule(group_id, protocol, *ports, cidr, ref) for cidr, ref in sources]


def _security_group(item: dict[str, Any]) -> SecurityGroup:
    ingress = [
        rule
        for permission in item.get("IpPermissions", []) or []
        for rule in _permission_rules(item["GroupId"], permission)
    ]
    return SecurityGroup(
        item["GroupId"], item.get("VpcId", ""), item.get("OwnerId", ""), ingress, _tags(item)
    )


def describe_tagged_security_groups(
    access: Access, loc: Location, tag_key: str
) -> list[SecurityGroup]:
    """Every security group at ``loc`` carrying this tag key (one call, and its pages)."""
    items = _describe(
        access, loc, "security_groups", Filters=[{"Name": "tag-key", "Values": [tag_key]}]
    )
    return [g for g in map(_security_group, items) if tag_key in g.tags]


def describe_security_groups(
    access: Access, loc: Location, group_ids: list[str]
) -> dict[str, SecurityGroup]:
    """These security groups by id (missing ones are simply absent)."""
    ec2 = access.ec2(loc)
    with aws_call("ec2:DescribeSecurityGroups", loc):
        items = _by_ids(
            lambda ids: _pages(ec2, "describe_security_groups", "SecurityGroups", GroupIds=ids),
            group_ids,
            "InvalidGroup.NotFound",
        )
    return {i["GroupId"]: _security_group(i) for i in items if i["GroupId"] in group_ids}


def describe_vpc_security_groups(
    access: Access, loc: Location, vpc_ids: list[str]
) -> list[SecurityGroup]:
    """Every security group of these VPCs, with its ingress rules."""
    items = _describe(
        access, loc, "security_groups", Filters=[{"Name": "vpc-id", "Values": vpc_ids}]
    )
    return [g for g in map(_security_group, items) if g.vpc_id in vpc_ids]


def _rule(item: dict[str, Any]) -> SecurityGroupRule:
    referenced = (item.get("ReferencedGroupInfo") or {}).get("GroupId")
    protocol = _protocol(item.get("IpProtocol", "-1"))
    ports = (_port(item.get("FromPort")), _port(item.get("ToPort")))
    if protocol == "-1":
        ports = (-1, -1)
    return SecurityGroupRule(
        group_id=item["GroupId"],
        protocol=protocol,
        from_port=ports[0],
        to_port=ports[1],
        cidr=item.get("CidrIpv4") or item.get("CidrIpv6"),
        referenced_group=referenced,
        rule_id=item["SecurityGroupRuleId"],
        tags=_tags(item),
    )


def describe_tagged_rules(
    access: Access, loc: Location, key: str, value: str
) -> list[SecurityGroupRule]:
    """The ingress rules at ``loc`` tagged ``key`` = ``value`` (one call, and its pages)."""
    items = _describe(
        access, loc, "security_group_rules", Filters=[{"Name": f"tag:{key}", "Values": [value]}]
    )
    return [_rule(i) for i in items if not i.get("IsEgress") and _tags(i).get(key) == value]


def describe_group_rules(
    access: Access, loc: Location, group_ids: list[str]
) -> list[SecurityGroupRule]:
    """The ingress rules of these groups, with their ids and tags."""
    items = _describe(
        access, loc, "security_group_rules", Filters=[{"Name": "group-id", "Values": group_ids}]
    )
    return [_rule(i) for i in items if not i.get("IsEgress") and i["GroupId"] in group_ids]


def authorize_ingress(
    access: Access,
    loc: Location,
    rule: SecurityGroupRule,
    peer_account: str,
    description: str,
    tags: dict[str, str],
) -> str | None:
    """Add one ingress rule, tagged at creation; its id, or None if the same rule exists."""
    permission: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        permission |= {"FromPort": rule.from_port, "ToPort": rule.to_port}
    if rule.referenced_group:
        permission["UserIdGroupPairs"] = [
            {"GroupId": rule.referenced_group, "UserId": peer_account, "Description": description}
        ]
    elif rule.cidr and ":" in rule.cidr:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr, "Description": description}]
    else:
        permission["IpRanges"] = [{"CidrIp": rule.cidr, "Description": description}]
    params = {
        "GroupId": rule.group_id,
        "IpPermissions": [permission],
        "TagSpecifications": [
            {
                "ResourceType": "security-group-rule",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    }
    item = _call(
        access, loc, "authorize_security_group_ingress", params, "InvalidPermission.Duplicate"
    )
    if item is None:
        return None
    made = item.get("SecurityGroupRules") or [{}]
    return str(made[0].get("SecurityGroupRuleId", "")) or None


def revoke_ingress(access: Access, loc: Location, group_id: str, rule_ids: list[str]) -> bool:
    """Revoke these ingress rules of a group by id; False if they (or the group) are gone."""
    params = {"GroupId": group_id, "SecurityGroupRuleIds": rule_ids}
    gone = (
        "InvalidPermission.NotFound",
        "InvalidSecurityGroupRuleId.NotFound",
        "InvalidGroup.NotFound",
    )
    return _done(access, loc, "revoke_security_group_ingress", params, *gone)


def describe_stale_references(access: Access, loc: Location, vpc_id: str) -> list[StalePermission]:
    """Ingress rules of this VPC's groups that reference a group EC2 no longer reaches (deleted,
    or in a peer VPC whose peering is gone): DescribeStaleSecurityGroups."""
    params = {"VpcId": vpc_id}
    response = _call(access, loc, "describe_stale_security_groups", params, "InvalidVpcID.NotFound")
    found: list[StalePermission] = []
    for group in (response or {}).get("StaleSecurityGroupSet", []) or []:
        for permission in group.get("StaleIpPermissions", []) or []:
            for pair in permission.get("UserIdGroupPairs", []) or []:
                protocol = _protocol(permission.get("IpProtocol", "-1"))
                found.append(
                    StalePermission(
                        group_id=group["GroupId"],
                        vpc_id=group.get("VpcId", vpc_id),
                        protocol=protocol,
                        from_port=permission.get("FromPort"),
                        to_port=permission.get("ToPort"),
                        referenced_group=pair.get("GroupId", ""),
                        referenced_vpc=pair.get("VpcId"),
                        peering_id=pair.get("VpcPeeringConnectionId"),
                    )
                )
    return found


# ------------------------------------------------------------------- network ACLs, flow logs
def describe_network_acls(access: Access, loc: Location, vpc_ids: list[str]) -> list[NetworkAcl]:
    items = _describe(access, loc, "network_acls", Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
    return [
        NetworkAcl(
            acl_id=i["NetworkAclId"],
            vpc_id=i["VpcId"],
            subnet_ids=[
                a["SubnetId"] for a in i.get("Associations", []) or [] if a.get("SubnetId")
            ],
            entries=[
                AclEntry(
                    number=int(e["RuleNumber"]),
                    egress=bool(e.get("Egress")),
                    protocol=_protocol(e.get("Protocol", "-1")),
                    allow=e.get("RuleAction") == "allow",
                    cidr=e.get("CidrBlock") or e.get("Ipv6CidrBlock", ""),
                )
                for e in i.get("Entries", []) or []
            ],
        )
        for i in items
        if i["VpcId"] in vpc_ids
    ]


def vpcs_with_flow_logs(access: Access, loc: Location, vpc_ids: list[str]) -> set[str]:
    """Those of these VPCs that have a flow log (of the VPC itself)."""
    items = _describe(
        access, loc, "flow_logs", Filters=[{"Name": "resource-id", "Values": vpc_ids}]
    )
    return {i["ResourceId"] for i in items if i.get("ResourceId") in vpc_ids}


def observe_traffic[Name: str](
    access: Access,
    where: dict[Name, tuple[Location, str]],
    groups_too: bool = True,
    warnings_too: bool = True,
) -> dict[Name, TrafficView]:
    """Security groups, network ACLs and flow logs around each named VPC: one read of each kind
    per account and region; the groups only ``groups_too``, the ACLs and flow logs only
    ``warnings_too`` (what is not read is shown empty)."""
    views: dict[Name, TrafficView] = {}
    for loc, vpc_ids in _by_location(where.values()).items():
        groups = describe_vpc_security_groups(access, loc, vpc_ids) if groups_too else []
        acls = describe_network_acls(access, loc, vpc_ids) if warnings_too else []
        logged = vpcs_with_flow_logs(access, loc, vpc_ids) if warnings_too else set()
        for name, (at, vpc_id) in where.items():
            if at == loc:
                views[name] = TrafficView(
                    groups=[g for g in groups if g.vpc_id == vpc_id],
                    acls=[a for a in acls if a.vpc_id == vpc_id],
                    flow_logs=vpc_id in logged,
                )
    return views
