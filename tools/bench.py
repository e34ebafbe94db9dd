"""`make bench`: what one peering costs, measured on the local emulator, against budgets.

Prints one table: EC2/STS/DynamoDB calls (total, mutating, by operation), states entered and wall
time per scenario; cold-init time of each handler module as a ratio to the floor
``import boto3; boto3.client("ec2")`` measured in the same run; and the built, zipped package
of each function; and what a tag-declared mesh of ``--network-vpcs`` VPCs (50) costs over two
accounts and two regions, swept again unchanged, and how a burst of tag changes coalesces
(``tools.bench_network``; ``--network-only`` runs only that, ``--no-network`` all but that).
``--write-docs`` writes the table, dated, into docs/performance.md (``tools.bench_docs``).
Exits non-zero when a figure misses its budget. A benchmark, not a test: wall times are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.executions import ExecutionResult, run_execution
from emulator.template import Template
from emulator.testing import EmulatorHandle, is_mutating, running_emulator

from . import CLEANUP_MACHINE, CREATE_MACHINE
from .bench_docs import BEGIN, END, write_docs
from .bench_network import network_scenarios

ROOT = Path(__file__).resolve().parent.parent
HUB, MEMBER = "123456789012", "111111111111"
#: Same-account budgets, per flow: EC2 calls beyond one per route, and states entered. Create's
#: 11: Plan reads the pair's peerings with two filtered calls (requester VPC, accepter VPC: EC2
#: cannot OR two filters), not one read of every peering in the account (10 before), so its cost
#: no longer grows with the account's peerings (a 125-VPC mesh has 7,750). Since security-group
#: rules (issue 19), create's 14: Verify reads the VPCs' security groups, network ACLs and flow
#: logs (3 per account and region) for its Warnings; cleanup's 8: CleanupPlan reads the rules
#: tagged for the peering (1 per account and region), DeletePeering the stale references to the
#: peer in both VPCs (DescribeStaleSecurityGroups, 1 per VPC).
FLOW_BUDGETS = {"create": (14, 15), "cleanup": (8, 10)}
#: What two SecurityGroupRules (one on each side's group) add to a same-account pair: Plan reads
#: the named groups (1), ConfigureSecurityGroups the asked groups' rules (1) and adds each (2);
#: cleanup revokes them, one call per group (2).
RULES_ADD = {"create": 4, "cleanup": 2}
INIT_RATIO_BUDGET = 1.3
PACKAGE_BUDGET_BYTES = 5 * 1024 * 1024


@dataclass
class Row:
    scenario: str
    figure: str
    value: float | str
    budget: str = ""
    ok: bool | None = None
    detail: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.rows.append(Row(*args, **kwargs))

    def check(
        self, scenario: str, figure: str, value: float, limit: float, detail: str = ""
    ) -> None:
        self.add(scenario, figure, value, f"<= {limit:g}", value <= limit, detail)

    def exact(
        self, scenario: str, figure: str, value: float, expected: float, detail: str = ""
    ) -> None:
        """A figure whose budget is one value (a physical floor: fewer would be wrong too)."""
        self.add(scenario, figure, value, f"= {expected:g}", value == expected, detail)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.ok is False]

    def print(self) -> None:
        widths = [34, 30, 10, 10, 6]
        header = ("scenario", "figure", "value", "budget", "ok")
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  detail")
        print("-" * 120)
        for r in self.rows:
            value = (
                f"{r.value:.2f}".rstrip("0").rstrip(".")
                if isinstance(r.value, float)
                else str(r.value)
            )
            ok = "" if r.ok is None else ("yes" if r.ok else "NO")
            cells = (r.scenario, r.figure, value, r.budget, ok)
            print(
                "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
                + "  "
                + r.detail
            )


# ------------------------------------------------------------------------------ scenarios
class Bench:
    def __init__(self, emu: EmulatorHandle, report: Report) -> None:
        self.emu = emu
        self.report = report
        self.sfn = emu.client("stepfunctions")
        self._member_creds: dict[str, str] = {}
        #: EC2 calls of each scenario recorded so far.
        self.ec2_calls: dict[str, int] = {}

    def ec2(self, account: str = HUB, region: str = "us-east-1") -> Any:
        if account == HUB:
            return self.emu.client("ec2", region)
        if not self._member_creds:
            creds = self.emu.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/VpcPeeringMemberRole", RoleSessionName="bench"
            )["Credentials"]
            self._member_creds = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
        return self.emu.client("ec2", region, **self._member_creds)

    def vpc(self, cidr: str, account: str = HUB, region: str = "us-east-1", tables: int = 1) -> str:
        ec2 = self.ec2(account, region)
        vpc_id: str = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        for _ in range(tables - 1):
            ec2.create_route_table(VpcId=vpc_id)
        return vpc_id

    def run(self, arn: str, payload: Any) -> tuple[ExecutionResult, list[dict[str, str]]]:
        self.emu.reset_calls()
        result = run_execution(self.sfn, arn, payload, timeout=120)
        calls = [c for c in self.emu.calls() if c["service"] in ("ec2", "sts", "dynamodb")]
        if not result.succeeded:
            raise RuntimeError(f"{arn}: {result.error}: {result.cause}")
        return result, calls

    def record(
        self,
        scenario: str,
        result: ExecutionResult,
        calls: list[dict[str, str]],
        call_budget: float | None,
        state_budget: float | None,
        mutating_budget: float | None = None,
    ) -> None:
        ec2 = [c for c in calls if c["service"] == "ec2"]
        self.ec2_calls[scenario] = len(ec2)
        ops = Counter(c["operation"] for c in ec2)
        mutating = sum(n for op, n in ops.items() if is_mutating(op))
        detail = ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
        if call_budget is None:
            self.report.add(scenario, "EC2 calls", len(ec2), detail=detail)
        else:
            self.report.check(scenario, "EC2 calls", len(ec2), call_budget, detail)
        lease = Counter(c["operation"] for c in calls if c["service"] == "dynamodb")
        self.report.add(
            scenario,
            "DynamoDB calls (pair lease)",
            sum(lease.values()),
            detail=", ".join(f"{k} {v}" for k, v in sorted(lease.items())),
        )
        sts = Counter(c["operation"] for c in calls if c["service"] == "sts")
        self.report.add(
            scenario,
            "STS calls",
            sum(sts.values()),
            detail=", ".join(f"{k} {v}" for k, v in sts.items()),
        )
        if mutating_budget is None:
            self.report.add(scenario, "EC2 mutating calls", mutating)
        else:
            self.report.check(scenario, "EC2 mutating calls", mutating, mutating_budget)
        states = len(result.states_entered)
        if state_budget is None:
            self.report.add(scenario, "states entered", states)
        else:
            self.report.check(scenario, "states entered", states, state_budget)
        self.report.add(scenario, "wall time (s)", round(result.seconds, 2))

    def flow(
        self, label: str, flow: str, payload: Any, budgets: bool
    ) -> tuple[ExecutionResult, int]:
        """Run the create or cleanup machine once and record it (against its budgets when
        ``budgets``); return it, and how many routes it created or removed."""
        machine = CREATE_MACHINE if flow == "create" else CLEANUP_MACHINE
        result, calls = self.run(self.emu.state_machine_arn(machine), payload)
        if flow == "create":
            routes = sum(1 for x in result.output["Routes"] if x["State"] == "created")
        else:
            routes = len(result.output["Removed"]["Routes"])
        calls_over_routes, states = FLOW_BUDGETS[flow]
        self.record(
            f"{label} {flow} (R={routes})",
            result,
            calls,
            calls_over_routes + routes if budgets else None,
            states if budgets else None,
        )
        return result, routes

    def pair(
        self,
        label: str,
        requester: dict[str, Any],
        accepter: dict[str, Any],
        routes: int,
        budgets: bool,
        repeat: bool = False,
    ) -> None:
        request = {"Requester": requester, "Accepter": accepter}
        created, made = self.flow(label, "create", request, budgets)
        assert made == routes, (label, made, routes)
        if repeat:
            again, calls = self.run(self.emu.state_machine_arn(CREATE_MACHINE), request)
            self.record(f"{label} create again", again, calls, None, None, mutating_budget=0)
        self.flow(label, "cleanup", created.output, budgets)

    def group(self, vpc_id: str, name: str) -> str:
        created = self.ec2().create_security_group(GroupName=name, Description=name, VpcId=vpc_id)
        return str(created["GroupId"])

    def pair_with_rules(self) -> None:
        """A same-account pair with two SecurityGroupRules (the database's group admits the
        peer VPC on 5432, the app's group admits the database's group on 443): the calls they
        add to the same pair without rules, measured in this run."""
        a, b = self.vpc("10.0.0.0/16"), self.vpc("172.16.0.0/16")
        app, db = self.group(a, "app"), self.group(b, "db")
        rules = [
            {"Side": "Accepter", "GroupId": db, "Protocol": "tcp", "FromPort": 5432,
             "ToPort": 5432, "Source": "PeerVpc"},
            {"Side": "Requester", "GroupId": app, "Protocol": "tcp", "FromPort": 443,
             "ToPort": 443, "Source": db},
        ]  # fmt: skip
        request = {"Requester": {"VpcId": a}, "Accepter": {"VpcId": b}, "SecurityGroupRules": rules}
        label = "same-account 2 rules"
        created, _ = self.flow(label, "create", request, budgets=False)
        again, calls = self.run(self.emu.state_machine_arn(CREATE_MACHINE), request)
        self.record(f"{label} create again", again, calls, None, None, mutating_budget=0)
        self.flow(label, "cleanup", created.output, budgets=False)
        for flow, added in RULES_ADD.items():
            plain = self.ec2_calls[f"same-account {flow} (R=2)"]
            measured = self.ec2_calls[f"{label} {flow} (R=2)"] - plain
            self.report.exact(label, f"EC2 calls 2 rules add to a {flow}", measured, added)

    def scenarios(self) -> None:
        a, b = self.vpc("10.0.0.0/16"), self.vpc("172.16.0.0/16")
        self.pair("same-account", {"VpcId": a}, {"VpcId": b}, routes=2, budgets=True, repeat=True)
        self.pair_with_rules()
        a, b = self.vpc("10.0.0.0/16", tables=3), self.vpc("172.16.0.0/16", tables=2)
        self.pair("same-account 5 tables", {"VpcId": a}, {"VpcId": b}, routes=5, budgets=True)
        a, b = self.vpc("10.0.0.0/16"), self.vpc("172.16.0.0/16", region="eu-west-1")
        self.pair(
            "cross-region",
            {"VpcId": a},
            {"VpcId": b, "Region": "eu-west-1"},
            routes=2,
            budgets=False,
        )
        a, b = (
            self.vpc("10.0.0.0/16"),
            self.vpc("172.16.0.0/16", account=MEMBER, region="us-west-2"),
        )
        self.pair(
            "cross-account",
            {"VpcId": a},
            {"VpcId": b, "AccountId": MEMBER, "Region": "us-west-2"},
            routes=2,
            budgets=False,
        )


# ------------------------------------------------------------------------------ cold init
def _handlers() -> dict[str, str]:
    template = Template.load(ROOT / "template.yaml")
    return {
        logical_id: str(resource["Properties"]["Handler"]).rsplit(".", 1)[0]
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def _time_import(code: str, env: dict[str, str], runs: int) -> float:
    """Median seconds of ``code`` in fresh interpreters (a cold start each time)."""
    samples = []
    program = f"import time; _t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def cold_init(report: Report, runs: int) -> None:
    build = ROOT / ".aws-sam" / "build"
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_ENDPOINT"))
        },
        # The built function code; dependencies from this venv (the layer's are arm64 wheels).
        "PYTHONPATH": str(build / "PlanFunction"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Lambda's own variables: the X-Ray SDK, for one, starts differently inside Lambda.
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LAMBDA_TASK_ROOT": str(build / "PlanFunction"),
        "POWERTOOLS_SERVICE_NAME": "vpc-peering",
        "POWERTOOLS_METRICS_NAMESPACE": "VpcPeeringAutomation",
        "STACK_NAME": "vpc-peering",
        "HUB_ACCOUNT_ID": HUB,
        "EVENT_BUS_NAME": "vpc-peering",
        "MEMBER_ROLE_NAME": "VpcPeeringMemberRole",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # Interleaved: each handler sample is paired with a floor sample taken just before it, so
    # load from anything else on the machine affects both sides of a ratio alike.
    handlers = sorted(_handlers().items())
    floors: list[float] = []
    ratios: dict[str, list[float]] = {logical_id: [] for logical_id, _ in handlers}
    times: dict[str, list[float]] = {logical_id: [] for logical_id, _ in handlers}
    for _ in range(runs):
        for logical_id, module in handlers:
            floor = _time_import('import boto3; boto3.client("ec2")', env, 1)
            seconds = _time_import(f"import {module}", env, 1)
            floors.append(floor)
            ratios[logical_id].append(seconds / floor)
            times[logical_id].append(seconds)
    report.add(
        "cold init", "floor: boto3 + ec2 client (ms)", round(statistics.median(floors) * 1000, 1)
    )
    for logical_id, _ in handlers:
        report.check(
            "cold init",
            f"{logical_id} / floor",
            round(statistics.median(ratios[logical_id]), 2),
            INIT_RATIO_BUDGET,
            f"{statistics.median(times[logical_id]) * 1000:.0f} ms (median of {runs} paired runs)",
        )


# ------------------------------------------------------------------------------ packages
def _zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def packages(report: Report) -> None:
    build = ROOT / ".aws-sam" / "build"
    for logical_id in sorted(_handlers()):
        size = _zipped_size(build / logical_id)
        report.check(
            "package (zipped)",
            f"{logical_id} (KB)",
            round(size / 1024, 1),
            PACKAGE_BUDGET_BYTES / 1024,
        )
    layer = _zipped_size(build / "DependenciesLayer")
    report.add(
        "package (zipped)",
        "DependenciesLayer (KB)",
        round(layer / 1024, 1),
        detail="shared by every function",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="cold starts per module (median)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--network-only", action="store_true", help="only the tag-triggered network scenarios"
    )
    parser.add_argument(
        "--no-network", action="store_true", help="skip the tag-triggered network scenarios"
    )
    parser.add_argument(
        "--network-vpcs", type=int, default=50, help="VPCs of the network mesh (2..250)"
    )
    parser.add_argument(
        "--network-timeout",
        type=float,
        default=4 * 3600,
        help="seconds to wait for each network scenario's reconciles",
    )
    parser.add_argument(
        "--ec2-throttling",
        action="store_true",
        help="EC2 answers RequestLimitExceeded as its documented token buckets would "
        "(the emulator's --ec2-throttling): the figures under AWS's request limits",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="also write the figures, dated, into docs/performance.md (between its "
        f"{BEGIN} and {END} markers)",
    )
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "tools.bench", *(sys.argv[1:] if argv is None else argv)])
    if args.network_only and args.no_network:
        parser.error("--network-only and --no-network exclude each other")
    if not 2 <= args.network_vpcs <= 250:
        parser.error("--network-vpcs: from 2 to 250 (a /16 each, 10.1.0.0 to 10.250.0.0)")
    report = Report()
    started = time.monotonic()
    if not args.network_only:
        subprocess.run(["sam", "build"], cwd=ROOT, check=True, capture_output=True)
        with running_emulator(
            parameter_overrides={
                "AllowedAccountIds": f"{HUB},{MEMBER}",
                "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
            },
            ec2_throttling=args.ec2_throttling,
        ) as emu:
            Bench(emu, report).scenarios()
    if not args.no_network:
        network_scenarios(report, args.network_vpcs, args.network_timeout, args.ec2_throttling)
    if not args.network_only:
        cold_init(report, args.runs)
        packages(report)
    report.print()
    elapsed = time.monotonic() - started
    print(f"\nbench wall time {elapsed:.1f}s; {len(report.failed)} budget(s) missed")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in report.rows], indent=2))
    if args.write_docs:
        print(f"wrote {write_docs(report.rows, command, elapsed).relative_to(ROOT)}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
