"""Tag-declared networks on the emulator, for the tests: VPCs in any account and region,
tagged and untagged, and the reconciles their tag changes start (``Network``)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from emulator.executions import ExecutionResult, run_execution
from emulator.testing import EmulatorHandle
from tools import RECONCILE_MACHINE
from tools.policy import admit

from .conftest import HUB, MEMBER, UNTRUSTED

REGIONS = ("us-east-1", "us-west-2")
_cidrs = itertools.count(1)


@dataclass
class Tagged:
    vpc_id: str
    account: str
    region: str
    cidr: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.region, self.vpc_id)


class Network:
    """VPCs in any account and region of the module's emulator, tagged and untagged, and the
    reconciles their tag changes start."""

    def __init__(self, emu: EmulatorHandle, admit_groups: bool = True) -> None:
        self.emu = emu
        #: Tagging a VPC into a group first opens the group in the hub's policy to the three
        #: accounts (the tests of other rules assume open groups); off for the policy's tests.
        self.admit_groups = admit_groups
        self.sfn = emu.client("stepfunctions")
        self.reconcile_arn = emu.state_machine_arn(RECONCILE_MACHINE)

    def ec2(self, account: str = HUB, region: str = "us-east-1") -> Any:
        return self.emu.account_client("ec2", account, region)

    def vpc(
        self, account: str = HUB, region: str = "us-east-1", tables: int = 1, **tags: str
    ) -> Tagged:
        """A fresh VPC (a /16 no other test uses) with ``tables`` route tables, tagged last."""
        cidr = f"10.{next(_cidrs)}.0.0/16"
        ec2 = self.ec2(account, region)
        vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        for _ in range(tables - 1):
            ec2.create_route_table(VpcId=vpc_id)
        vpc = Tagged(vpc_id, account, region, cidr)
        if tags:
            self.tag(vpc, **tags)
        return vpc

    def tag(self, vpc: Tagged, **tags: str) -> None:
        """``mesh="g"`` sets ``vpc-peering:mesh=g`` (underscores as dashes)."""
        groups = [v for k, v in tags.items() if k in ("mesh", "hub", "spoke")]
        if self.admit_groups and groups:
            admit(self.emu, groups, (HUB, MEMBER, UNTRUSTED))
        self.ec2(vpc.account, vpc.region).create_tags(
            Resources=[vpc.vpc_id],
            Tags=[
                {"Key": f"vpc-peering:{k.replace('_', '-')}", "Value": v} for k, v in tags.items()
            ],
        )

    def untag(self, vpc: Tagged, *keys: str) -> None:
        self.ec2(vpc.account, vpc.region).delete_tags(
            Resources=[vpc.vpc_id], Tags=[{"Key": f"vpc-peering:{k}"} for k in keys]
        )

    def leave(self, *vpcs: Tagged) -> None:
        """Take these VPCs out of every group (a test whose group cannot converge leaves it, so
        that the sweeps of later tests, which cover every group, do not fail on it)."""
        before = self.arns()
        for vpc in vpcs:
            self.untag(vpc, "mesh", "hub", "spoke", "route-tables")
        self.settled(before)

    def security_group(self, vpc: Tagged, allow: str | None = None) -> str:
        """A new security group of the VPC, tagged ``vpc-peering:allow`` = ``allow`` if given."""
        ec2 = self.ec2(vpc.account, vpc.region)
        name = f"sg-{next(_cidrs)}"
        group_id = str(
            ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc.vpc_id)["GroupId"]
        )
        if allow is not None:
            self.allow(vpc, group_id, allow)
        return group_id

    def allow(self, vpc: Tagged, group_id: str, value: str | None) -> None:
        """Set the group's ``vpc-peering:allow`` tag (None: remove it)."""
        ec2 = self.ec2(vpc.account, vpc.region)
        if value is None:
            ec2.delete_tags(Resources=[group_id], Tags=[{"Key": "vpc-peering:allow"}])
        else:
            ec2.create_tags(
                Resources=[group_id], Tags=[{"Key": "vpc-peering:allow", "Value": value}]
            )

    def ingress(
        self, vpc: Tagged, group_id: str
    ) -> dict[tuple[str, int, int, str], dict[str, str]]:
        """The group's ingress rules, (protocol, from, to, CIDR) -> the rule's tags."""
        rules = self.ec2(vpc.account, vpc.region).describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )["SecurityGroupRules"]
        return {
            (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4", "")): {
                t["Key"]: t["Value"] for t in r.get("Tags", [])
            }
            for r in rules
            if not r["IsEgress"]
        }

    def reconciles(self) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.reconcile_arn
        )
        return [e for page in pages for e in page["executions"]]

    def settled(self, before: set[str], timeout: float = 120.0) -> list[ExecutionResult]:
        """Wait for the reconciles started since ``before`` (at least one) to end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = [e for e in self.reconciles() if e["executionArn"] not in before]
            if started and all(e["status"] != "RUNNING" for e in started):
                return [self.result(e["executionArn"]) for e in started]
            time.sleep(0.5)
        raise TimeoutError(f"no reconcile started since the tag change ended in {timeout:.0f} s")

    def result(self, arn: str) -> ExecutionResult:
        described = self.sfn.describe_execution(executionArn=arn)
        output = described.get("output")
        return ExecutionResult(
            arn,
            described["status"],
            json.loads(output) if output else None,
            described.get("error"),
            described.get("cause"),
        )

    def arns(self) -> set[str]:
        return {e["executionArn"] for e in self.reconciles()}

    def reconcile(self, payload: Any) -> ExecutionResult:
        """A reconcile started by hand, once every reconcile the tests' tags started has ended
        (they hold the reconcile lease in turn)."""
        return run_execution(self.sfn, self.reconcile_arn, payload, timeout=240)

    def peerings(self, group: str) -> dict[frozenset[tuple[str, str, str]], dict[str, Any]]:
        """Live peerings tagged for the group, seen from each requester's account and region:
        pair of (account, region, vpc) -> the peering."""
        found = {}
        for account in (HUB, MEMBER, UNTRUSTED):
            for region in REGIONS:
                for p in self.ec2(account, region).describe_vpc_peering_connections()[
                    "VpcPeeringConnections"
                ]:
                    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
                    req, acc = p["RequesterVpcInfo"], p["AccepterVpcInfo"]
                    if (
                        p["Status"]["Code"] in ("active", "pending-acceptance")
                        and tags.get("vpc-peering:group") == group
                        and (req["OwnerId"], req["Region"]) == (account, region)
                    ):
                        pair = frozenset(
                            {
                                (req["OwnerId"], req["Region"], req["VpcId"]),
                                (acc["OwnerId"], acc["Region"], acc["VpcId"]),
                            }
                        )
                        found[pair] = p
        return found

    def routes(self, vpc: Tagged) -> dict[str, dict[str, str]]:
        """Route table id -> {destination: target} of every table of the VPC."""
        tables = self.ec2(vpc.account, vpc.region).describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}]
        )["RouteTables"]
        return {
            t["RouteTableId"]: {
                r.get("DestinationCidrBlock", ""): r.get("VpcPeeringConnectionId")
                or r.get("GatewayId", "")
                for r in t["Routes"]
            }
            for t in tables
        }
