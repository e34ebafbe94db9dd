"""`make smoke-aws`: the product on a real AWS account, measured; the same script on the emulator.

For a user with an AWS account and a named profile. It refuses to start without ``--profile``,
``--region`` and ``--yes-create-resources``, prints what it will create and what that may cost,
then: deploys the stack with ``sam`` (its own stack name, tagged), runs the tutorial's scenario
(two VPCs with a subnet each, the create machine with dedicated route tables, verification
from EC2's own answers, the cleanup machine), a cross-region pair, and a three-VPC tag mesh
(tag, wait for the event path to route every pair, untag, wait until the peerings are gone),
then tears everything down, also after a failure. It measures what the emulator cannot: the
time from tag to routed pair, each state's duration, Lambda cold starts (the ``REPORT`` lines'
``Init Duration`` in CloudWatch Logs), whether tags given at ``CreateVpc`` emit a tag-change
event; and writes them as JSON (``--report FILE``).

Everything it creates carries the tag ``vpc-peering-smoke:run`` (the run's id); teardown finds
what to delete by that tag only (``--cleanup-only`` deletes every run's leftovers and is
idempotent), and touches a peering only when both of its VPCs carry it.

``--endpoint-url URL`` runs the same against the local emulator (``make local``), whose stack
is already deployed (no ``sam``): CI does that, so this script never rots.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file (tools/smoke_aws.py) as well as a module
    sys.path.insert(0, str(ROOT))

from emulator.executions import history, run_execution  # noqa: E402
from tools.demo import tutorial_request  # noqa: E402

RUN_TAG = "vpc-peering-smoke:run"
PROBE_TAG = "vpc-peering-smoke:probe"
MESH_TAG = "vpc-peering:mesh"
MANAGED_BY = "vpc-peering:managed-by"
DEFAULT_STACK = "vpc-peering-smoke"
EMULATOR_STACK = "vpc-peering"
LIVE = ("initiating-request", "pending-acceptance", "provisioning", "active")
#: The VPCs of a run: (role, which region: 0 the main one, 1 the second, CIDR, subnet CIDR).
VPCS = (
    ("seed-1", 0, "10.200.0.0/16", "10.200.1.0/24"),
    ("seed-2", 0, "10.201.0.0/16", "10.201.1.0/24"),
    ("cross-1", 0, "10.202.0.0/16", None),
    ("cross-2", 1, "10.203.0.0/16", None),
    ("mesh-1", 0, "10.204.0.0/16", None),
    ("mesh-2", 0, "10.205.0.0/16", None),
    ("mesh-3", 0, "10.206.0.0/16", None),
    ("probe", 0, "10.207.0.0/16", None),
)
COST = """\
Estimated cost: under USD 0.10 for one run (on-demand prices of us-east-1, late 2025; your
region's may differ; not a quote). VPCs, subnets, route tables, VPC peering connections,
EventBridge rules and the CloudFormation stack cost nothing by themselves; no instance is
launched, so no traffic crosses a peering. What is billed: Step Functions Standard transitions
(about 300, USD 0.025 per 1,000), Lambda (a few hundred invocations, within any free tier),
EventBridge custom events (USD 1 per million), SQS (a few requests), DynamoDB on-demand (a few
hundred requests), CloudWatch Logs ingestion (a few MB, USD 0.50 per GB; the stack's log
groups are deleted with it), and the S3 bucket `sam deploy --resolve-s3` keeps the package in
(a few MB, kept after the run: delete it yourself if you want it gone)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def now() -> float:
    return time.monotonic()


# ------------------------------------------------------------------------------ options
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/smoke_aws.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", help="the AWS CLI named profile to use (required)")
    parser.add_argument("--region", help="the stack's region, where most VPCs go (required)")
    parser.add_argument(
        "--yes-create-resources",
        action="store_true",
        help="required: you agree that VPCs, a stack and peerings are created in your account",
    )
    parser.add_argument("--second-region", help="the cross-region pair's other region")
    parser.add_argument("--stack-name", help=f"default {DEFAULT_STACK} ({EMULATOR_STACK} there)")
    parser.add_argument("--endpoint-url", help="run against the local emulator (no sam deploy)")
    parser.add_argument("--cleanup-only", action="store_true", help="delete every run's leftovers")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument(
        "--group-policy",
        type=Path,
        help="a group policy written to the stack's GroupPolicyParameterName before the mesh "
        "({group}, {account}, {region} are replaced); only if the stack has that output",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per wait (600)")
    args = parser.parse_args(argv)
    missing = [
        flag
        for flag, value in (
            ("--profile", args.profile),
            ("--region", args.region),
            ("--yes-create-resources", args.yes_create_resources),
        )
        if not value
    ]
    if missing:
        parser.error(
            f"refusing to start without {', '.join(missing)}: this creates VPCs, peerings and "
            "a CloudFormation stack in the account of --profile"
        )
    if args.second_region is None:
        args.second_region = "us-west-2" if args.region != "us-west-2" else "us-east-1"
    if args.second_region == args.region:
        parser.error("--second-region must differ from --region")
    if args.stack_name is None:
        args.stack_name = EMULATOR_STACK if args.endpoint_url else DEFAULT_STACK
    return args


# ------------------------------------------------------------------------------- report
@dataclass
class Report:
    run_id: str
    region: str
    second_region: str
    stack_name: str
    endpoint_url: str | None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    steps: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """A step of the run: timed, its error recorded (and raised again)."""
        entry: dict[str, Any] = {"name": name, "ok": False}
        self.steps.append(entry)
        started = now()
        say(f"== {name}")
        try:
            yield entry
            entry["ok"] = True
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            say(f"   FAILED: {entry['error']}")
            raise
        finally:
            entry["seconds"] = round(now() - started, 2)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s["ok"] for s in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": datetime.now(UTC).isoformat(),
            "target": self.endpoint_url or "aws",
            "region": self.region,
            "second_region": self.second_region,
            "stack_name": self.stack_name,
            "ok": self.ok,
            "steps": self.steps,
            **self.results,
        }


# -------------------------------------------------------------------------------- AWS
class Aws:
    """Clients for the profile (or the emulator), per service and region."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.endpoint = args.endpoint_url
        if self.endpoint:  # the emulator takes any credentials; the profile need not exist
            self.session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake keys
                region_name=args.region,
            )
        else:
            self.session = boto3.Session(profile_name=args.profile, region_name=args.region)
        self.region = args.region
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._clients:
            self._clients[key] = self.session.client(  # type: ignore[call-overload]
                service, region_name=key[1], endpoint_url=self.endpoint
            )
        return self._clients[key]

    def account(self) -> str:
        return str(self.client("sts").get_caller_identity()["Account"])


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


def run_tags(run_id: str, name: str) -> list[dict[str, str]]:
    return [{"Key": RUN_TAG, "Value": run_id}, {"Key": "Name", "Value": f"smoke-{name}"}]


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float) -> Any:
    deadline = now() + timeout
    while True:
        value = check()
        if value:
            return value
        if now() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)


# ------------------------------------------------------------------------------ the run
class Smoke:
    def __init__(self, args: argparse.Namespace, aws: Aws, report: Report) -> None:
        self.args, self.aws, self.report = args, aws, report
        self.regions = (args.region, args.second_region)
        self.poll = 0.5 if args.endpoint_url else 3.0
        self.vpcs: dict[str, tuple[str, str, str | None]] = {}  # role -> (region, vpc, subnet)
        self.outputs: dict[str, str] = {}

    def ec2(self, region: str | None = None) -> Any:
        return self.aws.client("ec2", region)

    # ------------------------------------------------------------------------- plan
    def plan(self) -> str:
        lines = [
            f"Target: {self.args.endpoint_url or 'AWS'} (profile {self.args.profile}), "
            f"regions {self.regions[0]} and {self.regions[1]}, run {self.report.run_id}",
            "It will create, each tagged vpc-peering-smoke:run=" + self.report.run_id + ":",
        ]
        if not self.args.endpoint_url:
            lines.append(
                f"  - the stack {self.args.stack_name} (sam build + sam deploy --resolve-s3): "
                "Lambda functions, 3 Step Functions machines, an EventBridge bus and rules, a "
                "DynamoDB table, SQS queues, IAM roles, log groups"
            )
        for role, where, cidr, subnet in VPCS:
            extra = f" with subnet {subnet}" if subnet else ""
            lines.append(f"  - VPC {role} {cidr} in {self.regions[where]}{extra}")
        lines += [
            "  - through the stack: 2 dedicated route tables, 5 VPC peering connections, routes",
            "  - an EventBridge rule on the default bus and an SQS queue (the tag event probe)",
            "Everything is deleted at the end, also after a failure (run again with "
            "--cleanup-only if it was interrupted).",
            COST,
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------------ stack
    def deploy(self) -> None:
        if self.args.endpoint_url:
            say("   the emulator's stack is already deployed: no sam deploy")
            return
        sam = shutil.which("sam")
        if sam is None:
            raise RuntimeError(
                "sam (the AWS SAM CLI) is not on PATH: make install puts it in .venv"
            )
        common = ["--profile", self.args.profile, "--region", self.args.region]
        subprocess.run([sam, "build"], cwd=ROOT, check=True)
        subprocess.run(
            [
                sam,
                "deploy",
                "--stack-name",
                self.args.stack_name,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "CAPABILITY_NAMED_IAM",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--tags",
                f"{RUN_TAG}={self.report.run_id}",
                "--parameter-overrides",
                f"ManagedRegions={self.regions[0]},{self.regions[1]}",
                "TagEventWindowSeconds=20",
                *common,
            ],
            cwd=ROOT,
            check=True,
        )

    def read_outputs(self) -> None:
        cfn = self.aws.client("cloudformation")
        stack = cfn.describe_stacks(StackName=self.args.stack_name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        for needed in ("CreateStateMachineArn", "CleanupStateMachineArn"):
            if needed not in self.outputs:
                raise RuntimeError(f"stack {self.args.stack_name} has no output {needed}")

    # ------------------------------------------------------------------------- VPCs
    def make_vpcs(self, roles: tuple[str, ...]) -> None:
        for role, where, cidr, subnet_cidr in VPCS:
            if role not in roles:
                continue
            region = self.regions[where]
            ec2 = self.ec2(region)
            vpc = ec2.create_vpc(
                CidrBlock=cidr,
                TagSpecifications=[
                    {"ResourceType": "vpc", "Tags": run_tags(self.report.run_id, role)}
                ],
            )["Vpc"]["VpcId"]
            subnet = None
            if subnet_cidr:
                subnet = ec2.create_subnet(
                    VpcId=vpc,
                    CidrBlock=subnet_cidr,
                    TagSpecifications=[
                        {"ResourceType": "subnet", "Tags": run_tags(self.report.run_id, role)}
                    ],
                )["Subnet"]["SubnetId"]
            self.vpcs[role] = (region, vpc, subnet)
            say(f"   {role}: {vpc} {cidr} in {region}" + (f", subnet {subnet}" if subnet else ""))

    def run_machine(self, output_key: str, payload: Any) -> dict[str, Any]:
        sfn = self.aws.client("stepfunctions")
        result = run_execution(
            sfn, self.outputs[output_key], payload, timeout=self.args.timeout, poll=self.poll
        )
        summary = {
            "status": result.status,
            "seconds": round(result.seconds, 2),
            "states": state_durations(sfn, result.execution_arn),
            "execution_arn": result.execution_arn,
        }
        if not result.succeeded:
            summary |= {"error": result.error, "cause": result.cause}
            raise RuntimeError(
                f"{output_key} execution {result.status}: {result.error}: {result.cause}"
            )
        summary["output"] = result.output
        return summary

    # ------------------------------------------------------------------ scenarios
    def seed(self) -> dict[str, Any]:
        """The tutorial's scenario: two VPCs, subnets, the create machine, checks, cleanup."""
        self.make_vpcs(("seed-1", "seed-2"))
        (_, vpc1, subnet1), (_, vpc2, subnet2) = self.vpcs["seed-1"], self.vpcs["seed-2"]
        if not (subnet1 and subnet2):
            raise RuntimeError("the seed VPCs have no subnet")
        created = self.run_machine(
            "CreateStateMachineArn", tutorial_request(vpc1, subnet1, vpc2, subnet2)
        )
        out = created.pop("output")
        peering = out["VpcPeeringConnectionId"]
        checks = self.verify_pair(peering, [(self.regions[0], vpc1), (self.regions[0], vpc2)])
        cleaned = self.run_machine("CleanupStateMachineArn", out)
        cleaned.pop("output")
        gone = self.verify_gone(peering, [(self.regions[0], vpc1), (self.regions[0], vpc2)])
        return {
            "peering": peering,
            "create": created,
            "verified": checks,
            "cleanup": cleaned,
            "gone": gone,
        }

    def cross_region(self) -> dict[str, Any]:
        self.make_vpcs(("cross-1", "cross-2"))
        (r1, vpc1, _), (r2, vpc2, _) = self.vpcs["cross-1"], self.vpcs["cross-2"]
        request = {
            "Requester": {"VpcId": vpc1, "Region": r1},
            "Accepter": {"VpcId": vpc2, "Region": r2},
        }
        created = self.run_machine("CreateStateMachineArn", request)
        out = created.pop("output")
        peering = out["VpcPeeringConnectionId"]
        checks = self.verify_pair(peering, [(r1, vpc1), (r2, vpc2)])
        cleaned = self.run_machine("CleanupStateMachineArn", out)
        cleaned.pop("output")
        gone = self.verify_gone(peering, [(r1, vpc1), (r2, vpc2)])
        return {
            "peering": peering,
            "create": created,
            "verified": checks,
            "cleanup": cleaned,
            "gone": gone,
        }

    def verify_pair(self, peering: str, sides: list[tuple[str, str]]) -> dict[str, Any]:
        """From EC2's own answers: the peering active on both sides, a route to it on each."""
        found: dict[str, Any] = {}
        for region, vpc in sides:
            ec2 = self.ec2(region)
            pcx = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering])[
                "VpcPeeringConnections"
            ][0]
            routes = self.routes_to(region, vpc, peering)
            found[vpc] = {"status": pcx["Status"]["Code"], "routes": routes}
            if pcx["Status"]["Code"] != "active" or not routes:
                raise RuntimeError(f"{peering} as {vpc}'s side sees it: {found[vpc]}")
        return found

    def verify_gone(self, peering: str, sides: list[tuple[str, str]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for region, vpc in sides:
            listed = self.ec2(region).describe_vpc_peering_connections(
                Filters=[{"Name": "vpc-peering-connection-id", "Values": [peering]}]
            )["VpcPeeringConnections"]
            status = listed[0]["Status"]["Code"] if listed else "gone"
            routes = self.routes_to(region, vpc, peering)
            found[vpc] = {"status": status, "routes": routes}
            if status in LIVE or routes:
                raise RuntimeError(
                    f"{peering} left after cleanup, as {vpc}'s side sees it: {found[vpc]}"
                )
        return found

    def routes_to(self, region: str, vpc: str, peering: str) -> list[str]:
        tables = self.ec2(region).describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}]
        )
        return sorted(
            f"{t['RouteTableId']} "
            f"{r.get('DestinationCidrBlock') or r.get('DestinationIpv6CidrBlock')}"
            for t in tables["RouteTables"]
            for r in t["Routes"]
            if r.get("VpcPeeringConnectionId") == peering
        )

    # ------------------------------------------------------------------------ mesh
    def mesh(self) -> dict[str, Any]:
        """Tag three VPCs into a group; the event path alone must peer and route every pair."""
        roles = ("mesh-1", "mesh-2", "mesh-3")
        self.make_vpcs(roles)
        group = f"smoke-{self.report.run_id}"
        result: dict[str, Any] = {"group": group, "group_policy": self.write_group_policy(group)}
        region = self.regions[0]
        ids = [self.vpcs[r][1] for r in roles]
        pairs = [frozenset(p) for p in ((ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2]))]
        tagged_at = now()
        self.ec2(region).create_tags(Resources=ids, Tags=[{"Key": MESH_TAG, "Value": group}])
        routed: dict[frozenset[str], float] = {}

        def all_routed() -> bool:
            for pair, peering in self.live_peerings(region, ids).items():
                if pair in routed or peering["Status"]["Code"] != "active":
                    continue
                pcx = peering["VpcPeeringConnectionId"]
                if all(self.routes_to(region, vpc, pcx) for vpc in pair):
                    routed[pair] = round(now() - tagged_at, 2)
            return len(routed) == len(pairs)

        wait_for("every pair of the mesh routed", all_routed, self.args.timeout, self.poll)
        result["tag_to_routed_seconds"] = {" ~ ".join(sorted(p)): s for p, s in routed.items()}
        result["all_routed_seconds"] = max(routed.values())
        untagged_at = now()
        self.ec2(region).delete_tags(Resources=ids, Tags=[{"Key": MESH_TAG}])
        wait_for(
            "the mesh's peerings removed",
            lambda: not self.live_peerings(region, ids),
            self.args.timeout,
            self.poll,
        )
        result["untag_to_removed_seconds"] = round(now() - untagged_at, 2)
        # The reconciles the untag started may still be reporting: let them end (bounded).
        with contextlib.suppress(TimeoutError):
            wait_for(
                "the reconciles ended",
                lambda: all(r["status"] != "RUNNING" for r in self.reconciles(tagged_at, False)),
                self.args.timeout,
                self.poll,
            )
        result["reconciles"] = self.reconciles(since=tagged_at)
        return result

    def live_peerings(self, region: str, vpcs: list[str]) -> dict[frozenset[str], dict[str, Any]]:
        found = self.ec2(region).describe_vpc_peering_connections(
            Filters=[
                {"Name": "requester-vpc-info.vpc-id", "Values": vpcs},
                {"Name": "status-code", "Values": list(LIVE)},
            ]
        )["VpcPeeringConnections"]
        return {
            frozenset((p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"])): p
            for p in found
            if p["AccepterVpcInfo"]["VpcId"] in vpcs
        }

    def reconciles(self, since: float, durations: bool = True) -> list[dict[str, Any]]:
        """The reconcile executions the tag events started, with each state's duration."""
        arn = self.outputs.get("ReconcileStateMachineArn")
        if not arn:
            return []
        sfn = self.aws.client("stepfunctions")
        started_after = datetime.now(UTC).timestamp() - (now() - since) - 5
        found = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                if execution["startDate"].timestamp() < started_after:
                    continue
                found.append(
                    {
                        "name": execution["name"],
                        "status": execution["status"],
                        "states": (
                            state_durations(sfn, execution["executionArn"]) if durations else {}
                        ),
                    }
                )
        return found

    def write_group_policy(self, group: str) -> str:
        name = self.outputs.get("GroupPolicyParameterName")
        if not name:
            return "the stack has no GroupPolicyParameterName output: no group policy written"
        if self.args.group_policy is None:
            # The run's own group is added to the policy (the stack's own parameter: the smoke
            # stack is the run's own on AWS), admitting the run's account in its region; every
            # other group is kept as it is.
            ssm = self.aws.client("ssm")
            try:
                document = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
            except ssm.exceptions.ParameterNotFound:
                document = {}
            if not isinstance(document, dict) or not isinstance(document.get("Groups"), dict):
                document = {"Groups": {}}
            document["Groups"][group] = {
                "Accounts": [self.aws.account()],
                "Regions": [self.regions[0]],
            }
            ssm.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
            return f"group {group} added to {name} (the other groups kept)"
        text = self.args.group_policy.read_text(encoding="utf-8")
        value = text.format(group=group, account=self.aws.account(), region=self.regions[0])
        self.aws.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
        return f"written to {name} from {self.args.group_policy}"

    # ------------------------------------------------------------------ tag events
    def tag_events(self) -> dict[str, Any]:
        """Do tags given at CreateVpc emit a tag-change event? (CreateTags' as the control.)"""
        region, run_id = self.regions[0], self.report.run_id
        sqs, events = self.aws.client("sqs", region), self.aws.client("events", region)
        name = f"vpc-peering-smoke-{run_id}"
        queue_url = sqs.create_queue(QueueName=name, tags={RUN_TAG: run_id})["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = events.put_rule(
            Name=name,
            EventPattern=json.dumps(
                {
                    "source": ["aws.tag"],
                    "detail-type": ["Tag Change on Resource"],
                    "detail": {"changed-tag-keys": [PROBE_TAG]},
                }
            ),
            Tags=[{"Key": RUN_TAG, "Value": run_id}],
        )["RuleArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        events.put_targets(Rule=name, Targets=[{"Id": "probe", "Arn": queue_arn}])
        time.sleep(2 if self.args.endpoint_url else 30)  # a new rule takes a moment on AWS
        wait = 15 if self.args.endpoint_url else 120
        ec2 = self.ec2(region)
        created_at = now()
        vpc = ec2.create_vpc(
            CidrBlock="10.207.0.0/16",
            TagSpecifications=[
                {
                    "ResourceType": "vpc",
                    "Tags": [*run_tags(run_id, "probe"), {"Key": PROBE_TAG, "Value": "at-create"}],
                }
            ],
        )["Vpc"]["VpcId"]
        self.vpcs["probe"] = (region, vpc, None)
        at_create = self.receive(sqs, queue_url, vpc, "at-create", wait)
        tagged_at = now()
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": PROBE_TAG, "Value": "create-tags"}])
        by_create_tags = self.receive(sqs, queue_url, vpc, "create-tags", wait)
        return {
            "create_vpc_tags_emit_event": at_create is not None,
            "create_vpc_event_seconds": None
            if at_create is None
            else round(at_create - created_at, 2),
            "create_tags_emit_event": by_create_tags is not None,
            "create_tags_event_seconds": (
                None if by_create_tags is None else round(by_create_tags - tagged_at, 2)
            ),
            "waited_seconds": wait,
        }

    def receive(self, sqs: Any, queue_url: str, vpc: str, value: str, wait: float) -> float | None:
        """When the probe's event for ``vpc`` with tag value ``value`` arrived; None if not."""
        deadline = now() + wait
        while now() < deadline:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                if any(vpc in r for r in event.get("resources", [])) and (
                    event.get("detail", {}).get("tags", {}).get(PROBE_TAG) == value
                ):
                    return now()
        return None

    # --------------------------------------------------------------- cold starts
    def cold_starts(self) -> dict[str, Any]:
        """Lambda's REPORT lines: invocations and Init Duration (a cold start) per function.
        Every function of the stack logs into one group (template.yaml's FunctionLogGroup),
        in streams Lambda names ``YYYY/MM/DD/<function>[$LATEST]<id>``."""
        logs = self.aws.client("logs")
        group = f"/vpc-peering/{self.args.stack_name}/functions"
        try:
            events = [
                event
                for page in logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, filterPattern='"REPORT RequestId"'
                )
                for event in page["events"]
            ]
        except (ClientError, BotoCoreError) as exc:
            return {"available": False, "reason": f"CloudWatch Logs {group}: {exc}"[:500]}
        functions: dict[str, Any] = {}
        for event in events:
            stream = event.get("logStreamName", "")
            name = stream.split("/")[3].split("[")[0] if stream.count("/") >= 3 else stream
            entry = functions.setdefault(name, {"invocations": 0, "cold_starts": 0, "init_ms": []})
            entry["invocations"] += 1
            if "Init Duration: " in event["message"]:
                init = event["message"].split("Init Duration: ")[1].split(" ms")[0]
                entry["cold_starts"] += 1
                entry["init_ms"].append(float(init))
        if not functions:
            return {"available": False, "reason": f"no REPORT line in {group}"}
        return {"available": True, "log_group": group, "functions": functions}


def state_durations(sfn: Any, execution_arn: str) -> dict[str, float]:
    """Seconds each state took (entered to exited; summed when a state runs more than once)."""
    entered: dict[str, Any] = {}
    durations: dict[str, float] = {}
    for event in history(sfn, execution_arn):
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                seconds = (event["timestamp"] - entered.pop(name)).total_seconds()
                durations[name] = round(durations.get(name, 0.0) + seconds, 3)
    return durations


# ------------------------------------------------------------------------------ teardown
def teardown(
    aws: Aws, regions: tuple[str, str], run_id: str | None, stack: str | None
) -> dict[str, Any]:
    """Delete what carries the run tag (one run's, or every run's when ``run_id`` is None), in
    the order EC2 needs; a peering only when both its VPCs carry the tag. Idempotent."""
    deleted: dict[str, list[str]] = {
        "routes": [],
        "peerings": [],
        "route_tables": [],
        "subnets": [],
        "vpcs": [],
        "rules": [],
        "queues": [],
        "stacks": [],
    }
    errors: list[str] = []
    tag_filter = (
        {"Name": f"tag:{RUN_TAG}", "Values": [run_id]}
        if run_id
        else {
            "Name": "tag-key",
            "Values": [RUN_TAG],
        }
    )

    def attempt(what: str, call: Callable[..., Any], **params: Any) -> bool:
        try:
            call(**params)
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code.endswith(".NotFound") or code in (
                "ResourceNotFoundException",
                "AWS.SimpleQueueService.NonExistentQueue",
            ):
                return True
            errors.append(f"{what}: {code} {exc}"[:300])
            return False

    ours: dict[str, str] = {}  # vpc -> region
    for region in regions:
        for vpc in aws.client("ec2", region).describe_vpcs(Filters=[tag_filter])["Vpcs"]:
            ours[vpc["VpcId"]] = region
    for region in regions:
        ec2 = aws.client("ec2", region)
        peerings = ec2.describe_vpc_peering_connections(
            Filters=[{"Name": "status-code", "Values": list(LIVE)}]
        )["VpcPeeringConnections"]
        for pcx in peerings:
            sides = (pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"])
            if not all(s in ours for s in sides) or ours[sides[0]] != region:
                continue  # not between two of our VPCs, or not the requester's region
            pcx_id = pcx["VpcPeeringConnectionId"]
            for vpc in sides:
                side = aws.client("ec2", ours[vpc])
                tables = side.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
                for table in tables["RouteTables"]:
                    for route in table["Routes"]:
                        if route.get("VpcPeeringConnectionId") == pcx_id and route.get(
                            "DestinationCidrBlock"
                        ):
                            ok = attempt(
                                "delete route",
                                side.delete_route,
                                RouteTableId=table["RouteTableId"],
                                DestinationCidrBlock=route["DestinationCidrBlock"],
                            )
                            if ok:
                                deleted["routes"].append(
                                    f"{table['RouteTableId']} {route['DestinationCidrBlock']}"
                                )
            if attempt(
                "delete peering", ec2.delete_vpc_peering_connection, VpcPeeringConnectionId=pcx_id
            ):
                deleted["peerings"].append(pcx_id)
    for vpc, region in ours.items():
        ec2 = aws.client("ec2", region)
        for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "RouteTables"
        ]:
            if any(a.get("Main") for a in table.get("Associations", [])):
                continue
            for association in table.get("Associations", []):
                attempt(
                    "disassociate",
                    ec2.disassociate_route_table,
                    AssociationId=association["RouteTableAssociationId"],
                )
            if attempt(
                "delete route table", ec2.delete_route_table, RouteTableId=table["RouteTableId"]
            ):
                deleted["route_tables"].append(table["RouteTableId"])
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "Subnets"
        ]:
            if RUN_TAG not in tags_of(subnet):
                continue
            if attempt("delete subnet", ec2.delete_subnet, SubnetId=subnet["SubnetId"]):
                deleted["subnets"].append(subnet["SubnetId"])
        if attempt("delete vpc", ec2.delete_vpc, VpcId=vpc):
            deleted["vpcs"].append(vpc)
    events, sqs = aws.client("events"), aws.client("sqs")
    for rule in events.list_rules(NamePrefix="vpc-peering-smoke-")["Rules"]:
        rule_tags = tags_of(events.list_tags_for_resource(ResourceARN=rule["Arn"]))
        if RUN_TAG not in rule_tags or (run_id and rule_tags[RUN_TAG] != run_id):
            continue
        targets = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
        if targets:
            attempt("remove targets", events.remove_targets, Rule=rule["Name"], Ids=targets)
        if attempt("delete rule", events.delete_rule, Name=rule["Name"]):
            deleted["rules"].append(rule["Name"])
    for url in sqs.list_queues(QueueNamePrefix="vpc-peering-smoke-").get("QueueUrls", []):
        queue_tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if RUN_TAG not in queue_tags or (run_id and queue_tags[RUN_TAG] != run_id):
            continue
        if attempt("delete queue", sqs.delete_queue, QueueUrl=url):
            deleted["queues"].append(url)
    if stack:
        deleted["stacks"] += delete_stack(aws, stack, run_id, errors)
    return {"deleted": deleted, "errors": errors}


def delete_stack(aws: Aws, stack: str, run_id: str | None, errors: list[str]) -> list[str]:
    """The stack, if it carries the run tag (a stack someone else deployed is never touched)."""
    cfn = aws.client("cloudformation")
    try:
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        return []  # no such stack: nothing to do
    stack_tags = tags_of(found)
    if RUN_TAG not in stack_tags or (run_id and stack_tags[RUN_TAG] != run_id):
        errors.append(f"stack {stack} is not tagged {RUN_TAG}: left alone")
        return []
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack)
    return [stack]


# --------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    aws = Aws(args)
    regions = (args.region, args.second_region)
    stack_to_delete = None if args.endpoint_url else args.stack_name
    if args.cleanup_only:
        say(f"Deleting every resource tagged {RUN_TAG} in {', '.join(regions)} ...")
        result = teardown(aws, regions, None, stack_to_delete)
        say(json.dumps(result, indent=2))
        if args.report:
            args.report.write_text(json.dumps({"cleanup_only": True, **result}, indent=2) + "\n")
        return 1 if result["errors"] else 0
    report = Report(
        uuid.uuid4().hex[:8], args.region, args.second_region, args.stack_name, args.endpoint_url
    )
    smoke = Smoke(args, aws, report)
    say(smoke.plan())
    with contextlib.suppress(Exception):  # each failure is recorded in its step
        run(smoke, report)
    with contextlib.suppress(Exception), report.step("teardown"):  # also after a failure
        result = teardown(aws, regions, report.run_id, stack_to_delete)
        report.results["teardown"] = result
        if result["errors"]:
            raise RuntimeError("; ".join(result["errors"]))
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
        say(f"report: {args.report}")
    failed = [s["name"] for s in report.steps if not s["ok"]]
    say("OK" if report.ok else "FAILED: " + ", ".join(failed))
    return 0 if report.ok else 1


def run(smoke: Smoke, report: Report) -> None:
    """The steps in order; the first that fails ends the run (teardown follows)."""
    with report.step("deploy"):
        smoke.deploy()
        smoke.read_outputs()
    with report.step("tag events"):
        report.results["tag_events"] = smoke.tag_events()
    with report.step("seed scenario"):
        report.results["seed"] = smoke.seed()
    with report.step("cross-region pair"):
        report.results["cross_region"] = smoke.cross_region()
    with report.step("tag mesh"):
        report.results["mesh"] = smoke.mesh()
    with report.step("cold starts"):
        report.results["cold_starts"] = smoke.cold_starts()


if __name__ == "__main__":
    sys.exit(main())
