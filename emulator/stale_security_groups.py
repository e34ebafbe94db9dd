"""EC2's ``DescribeStaleSecurityGroups``, which moto 5.2.5 does not implement ("The
describe_stale_security_groups action has not been implemented").

As AWS documents it (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeStaleSecurityGroups.html,
and "Identify your referenced security groups" in the VPC Peering Guide,
https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-security-groups.html): for the
security groups of ``VpcId``, the rules that reference a security group that is deleted, or in
a peer VPC whose peering connection is deleted (no ``active`` peering between the two VPCs any
more). Each stale group is ``{GroupId, GroupName, Description, VpcId, StaleIpPermissions,
StaleIpPermissionsEgress}``; each stale permission names the referenced group in
``UserIdGroupPairs`` (``GroupId``, ``UserId``, ``VpcId``, ``VpcPeeringConnectionId``,
``PeeringStatus``). An unknown VPC is ``InvalidVpcID.NotFound``. Not emulated: transit gateway
and security group VPC associations; ``MaxResults``/``NextToken`` (one page).

Checked by tests/emulator/test_emulator_stale_security_groups.py.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidVPCIdError
from moto.ec2.models import EC2Backend
from moto.ec2.responses import EC2Response

_installed = False


def install() -> None:
    """Teach moto's EC2 the call (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    response: Any = EC2Response
    response.describe_stale_security_groups = _describe_stale_security_groups


def _describe_stale_security_groups(self: Any) -> ActionResult:
    backend = self.ec2_backend
    vpc_id = self._get_param("VpcId")
    if vpc_id not in backend.vpcs:
        raise InvalidVPCIdError(vpc_id)
    stale = []
    for group in list(backend.groups.get(vpc_id, {}).values()):
        ingress = _stale_permissions(backend, vpc_id, group.ingress_rules)
        egress = _stale_permissions(backend, vpc_id, group.egress_rules)
        if ingress or egress:
            stale.append(
                {
                    "GroupId": group.id,
                    "GroupName": group.name,
                    "Description": group.description,
                    "VpcId": vpc_id,
                    "StaleIpPermissions": ingress,
                    "StaleIpPermissionsEgress": egress,
                }
            )
    return ActionResult({"StaleSecurityGroupSet": stale})


def _stale_permissions(backend: Any, vpc_id: str, rules: list[Any]) -> list[dict[str, Any]]:
    found = []
    for rule in rules:
        reference = rule.source_group or {}
        group_id = reference.get("GroupId")
        if not group_id:
            continue
        pair = _stale_pair(backend, vpc_id, group_id, reference.get("UserId"))
        if pair is None:
            continue
        permission: dict[str, Any] = {"IpProtocol": rule.ip_protocol, "UserIdGroupPairs": [pair]}
        if rule.ip_protocol != "-1":
            permission |= {"FromPort": rule.from_port, "ToPort": rule.to_port}
        found.append(permission)
    return found


def _stale_pair(
    backend: Any, vpc_id: str, group_id: str, user_id: str | None
) -> dict[str, Any] | None:
    """The reference as a stale pair, or None when it still resolves: a group of the same VPC,
    or of a VPC with an active peering to this one."""
    account = user_id or backend.account_id
    owner = _backend(account, backend.region_name)
    group = owner.get_security_group_from_id(group_id) if owner is not None else None
    if group is not None and group.vpc_id == vpc_id:
        return None
    pair: dict[str, Any] = {"GroupId": group_id, "UserId": account}
    if group is None:
        return pair  # deleted
    peering = _last_peering(vpc_id, group.vpc_id)
    if peering is not None and peering._status.code == "active":
        return None
    pair["VpcId"] = group.vpc_id
    if peering is not None:
        pair |= {"VpcPeeringConnectionId": peering.id, "PeeringStatus": peering._status.code}
    return pair


def _backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    try:
        return ec2_backends[account][region]
    except KeyError:
        return None


def _last_peering(vpc_a: str, vpc_b: str) -> Any:
    """The pair's peering: an active one if there is one, else the last one seen."""
    found = None
    for backend in EC2Backend.get_vpc_pcx_refs():
        for pcx in list(getattr(backend, "vpc_pcxs", {}).values()):
            if {pcx.vpc.id, pcx.peer_vpc.id} == {vpc_a, vpc_b}:
                if pcx._status.code == "active":
                    return pcx
                found = pcx
    return found
