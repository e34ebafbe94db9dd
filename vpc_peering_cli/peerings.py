"""``list``: the peerings this stack manages, as the caller's credentials see them in a region."""

from __future__ import annotations

from typing import Any

from .aws import Aws, aws_errors

#: The tags the stack writes on its peerings (README "Security model").
TAG_MANAGED_BY = "vpc-peering:managed-by"
TAG_GROUP = "vpc-peering:group"
#: States of a peering that is gone; EC2 keeps showing such peerings for a while.
ENDED_STATES = frozenset({"deleted", "deleting", "failed", "rejected", "expired"})


def _tags(peering: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in peering.get("Tags", [])}


def _side(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "VpcId": info.get("VpcId"),
        "AccountId": info.get("OwnerId"),
        "Region": info.get("Region"),
        "CidrBlocks": [c["CidrBlock"] for c in info.get("CidrBlockSet", []) if "CidrBlock" in c]
        or ([info["CidrBlock"]] if info.get("CidrBlock") else []),
    }


def managed(
    described: list[dict[str, Any]], stack_name: str, include_ended: bool = False
) -> list[dict[str, Any]]:
    """The peerings (as DescribeVpcPeeringConnections returns them) that carry this stack's
    ownership tag, as rows: id, state, both sides, Name and group tags. Ended ones only with
    ``include_ended``. Filtered here too: not every endpoint applies the request's filters."""
    rows = []
    for peering in described:
        tags = _tags(peering)
        status = str(peering.get("Status", {}).get("Code", ""))
        if tags.get(TAG_MANAGED_BY) != stack_name:
            continue
        if status in ENDED_STATES and not include_ended:
            continue
        rows.append(
            {
                "VpcPeeringConnectionId": peering["VpcPeeringConnectionId"],
                "Status": status,
                "Requester": _side(peering.get("RequesterVpcInfo", {})),
                "Accepter": _side(peering.get("AccepterVpcInfo", {})),
                "Name": tags.get("Name"),
                "Group": tags.get(TAG_GROUP),
            }
        )
    return sorted(rows, key=lambda r: str(r["VpcPeeringConnectionId"]))


def list_managed(aws: Aws, stack_name: str, include_ended: bool = False) -> list[dict[str, Any]]:
    """The stack's peerings visible in the region."""
    ec2 = aws.client("ec2")
    described: list[dict[str, Any]] = []
    with aws_errors("ec2 DescribeVpcPeeringConnections"):
        pages = ec2.get_paginator("describe_vpc_peering_connections").paginate(
            Filters=[{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [stack_name]}]
        )
        for page in pages:
            described.extend(page["VpcPeeringConnections"])
    return managed(described, stack_name, include_ended)
