"""DescribeStaleSecurityGroups, which moto lacks (stale_security_groups.py): rules that
reference a group of a peer VPC whose peering is gone, or a deleted group, as AWS lists them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorHandle

from .test_emulator_ec2_fixes import new_vpc, peer


def group(ec2: Any, vpc_id: str, name: str) -> str:
    return str(ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"])


def allow_from(ec2: Any, group_id: str, source: str, port: int) -> None:
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "UserIdGroupPairs": [{"GroupId": source}],
            }
        ],
    )


def stale(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    return list(ec2.describe_stale_security_groups(VpcId=vpc_id)["StaleSecurityGroupSet"])


def test_a_reference_to_a_peer_group_is_stale_once_the_peering_is_deleted(
    tiny_emulator: EmulatorHandle,
) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given two peered VPCs, a group of one admitting a group of the other, and a same-VPC rule
    app, db = new_vpc(ec2, "10.90.0.0/16"), new_vpc(ec2, "10.91.0.0/16")
    pcx = peer(ec2, app, db, accept=True)
    app_sg, db_sg, other = group(ec2, app, "app"), group(ec2, db, "db"), group(ec2, db, "other")
    allow_from(ec2, db_sg, app_sg, 5432)
    allow_from(ec2, db_sg, other, 22)
    # When the peering is active / Then nothing is stale
    assert stale(ec2, db) == []
    # When the peering is deleted
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    # Then the peer reference is listed, naming the peer's group, VPC and peering; the
    # reference inside the VPC is not
    found = stale(ec2, db)
    assert [g["GroupId"] for g in found] == [db_sg]
    (permission,) = found[0]["StaleIpPermissions"]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"]) == (
        "tcp",
        5432,
        5432,
    )
    (pair,) = permission["UserIdGroupPairs"]
    assert pair["GroupId"] == app_sg
    assert pair["VpcId"] == app
    assert pair["VpcPeeringConnectionId"] == pcx
    assert pair["PeeringStatus"] == "deleted"


def test_a_reference_to_a_deleted_group_is_stale(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    # Given a group admitting another group of its VPC
    vpc = new_vpc(ec2, "10.92.0.0/16")
    web, lb = group(ec2, vpc, "web"), group(ec2, vpc, "lb")
    allow_from(ec2, web, lb, 443)
    # When the referenced group is deleted
    ec2.delete_security_group(GroupId=lb)
    # Then the reference is stale
    found = stale(ec2, vpc)
    assert found[0]["StaleIpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == lb


def test_an_unknown_vpc_is_not_found(tiny_emulator: EmulatorHandle) -> None:
    ec2 = tiny_emulator.client("ec2")
    with pytest.raises(ClientError) as raised:
        ec2.describe_stale_security_groups(VpcId="vpc-0123456789abcdef0")
    assert raised.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
