"""The network part of `make bench`: what a tag-declared mesh costs, on the local emulator.

Issue 8's "Scale and cost" scenarios, figures against budgets (rows of ``tools.bench.Report``):

- **mesh**: N VPCs (one route table each, distinct /16s) spread over 2 accounts x 2 regions are
  tagged into one ``vpc-peering:mesh`` group, and nothing else is done: the tag change events
  (forwarded from the member accounts and regions by ``member-forwarding.yaml``, as on AWS)
  start the reconcile. Budgets: EC2 mutating calls exactly the physical floor (N(N-1)/2 creates
  and accepts, N(N-1) CreateRoute, nothing else), states entered per pair <= 15;
- **sweep**: the same unchanged mesh reconciled again by hand: no mutating call, no child
  execution, at most 5 EC2 reads per account and region (pages included);
- **burst**: N tag changes in a loop start at most 2 + elapsed/W reconciles (W the window).

Only the calls the stack made are counted: this bench acts with credentials of its own (an
access key of its own in the hub, its own assumed-role session in the member account), whose
calls are left out of the emulator's call log. Wall times are measured, never asserted.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emulator.executions import entered_states, history
from emulator.testing import EmulatorHandle, is_mutating, running_emulator

from . import CLEANUP_MACHINE, CREATE_MACHINE, RECONCILE_MACHINE
from .members import forwarding_stacks
from .policy import write_policy

if TYPE_CHECKING:  # tools.bench imports this module: the types only, not at run time
    from .bench import Report, Row

HUB, MEMBER = "123456789012", "111111111111"
REGIONS = ("us-east-1", "us-west-2")
LOCATIONS = tuple((account, region) for account in (HUB, MEMBER) for region in REGIONS)
WINDOW_SECONDS = 5
#: The reconcile's wait after its window (functions/vpc_peering/tag_start.py SETTLE_SECONDS).
SETTLE_SECONDS = 5
GROUP = "bench"
PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ManagedRegions": ",".join(REGIONS),
    "MaxParallelPairs": "10",
    "TagEventWindowSeconds": str(WINDOW_SECONDS),
    "ReconcileSchedule": "",
}
STATES_PER_PAIR_BUDGET = 15
#: The sweep's reads per account and region: VPCs, route tables, peerings, and (issue 19 item 2)
#: the security groups tagged vpc-peering:allow and this stack's rules: 5, pages included.
READS_PER_LOCATION_BUDGET = 5
#: Step Functions' hard limit on one execution's history.
HISTORY_LIMIT = 25_000
#: The bench's own access key in the hub account (any key is the default account in moto).
OWN_HUB_KEY = "BENCHNETWORKDRIVER"
PROGRESS_SECONDS = 30.0


def note(text: str) -> None:
    """Progress on stderr, so that the report on stdout stays a table."""
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchVpc:
    vpc_id: str
    account: str
    region: str
    cidr: str


def pairs_of(n: int) -> int:
    return n * (n - 1) // 2


def burst_budget(elapsed: float, window: float = WINDOW_SECONDS) -> float:
    """Reconciles a burst may start: one per window it touched, and one more for a change
    that arrives after its window's execution already ended."""
    return 2 + elapsed / window


@contextmanager
def network_emulator(ec2_throttling: bool = False) -> Iterator[EmulatorHandle]:
    """The emulator as the network scenarios need it: the hub's boundary at two accounts and
    two regions, and the member forwarding stack in every other account and region (and EC2's
    request throttling when asked)."""
    with running_emulator(
        parameter_overrides=PARAMETERS,
        extra_stacks=forwarding_stacks(PARAMETERS),
        ec2_throttling=ec2_throttling,
    ) as emu:
        yield emu


class NetworkBench:
    """The scenarios, on one emulator: VPCs made once, then tagged, swept and re-tagged."""

    def __init__(self, emu: EmulatorHandle, report: Report, vpcs: int) -> None:
        self.emu = emu
        self.report = report
        self.n = vpcs
        self.pairs = pairs_of(vpcs)
        self.sfn = emu.client("stepfunctions")
        self.arns = {
            machine: emu.state_machine_arn(machine)
            for machine in (RECONCILE_MACHINE, CREATE_MACHINE, CLEANUP_MACHINE)
        }
        self.own_keys = {OWN_HUB_KEY}
        self.clients: dict[tuple[str, str], Any] = {}
        self.vpcs: list[BenchVpc] = []

    # ------------------------------------------------------------------------ our own calls
    def ec2(self, account: str, region: str) -> Any:
        """A client with the bench's own credentials, so its calls are told from the stack's."""
        if (account, region) not in self.clients:
            if account == HUB:
                creds = {"aws_access_key_id": OWN_HUB_KEY, "aws_secret_access_key": "bench"}
            else:
                assumed = self.emu.client("sts").assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/BenchNetworkDriver",
                    RoleSessionName="bench-network",
                )["Credentials"]
                self.own_keys.add(assumed["AccessKeyId"])
                creds = {
                    "aws_access_key_id": assumed["AccessKeyId"],
                    "aws_secret_access_key": assumed["SecretAccessKey"],
                    "aws_session_token": assumed["SessionToken"],
                }
            self.clients[(account, region)] = self.emu.client("ec2", region, **creds)
        return self.clients[(account, region)]

    def stack_calls(self, service: str | None = None) -> list[dict[str, str]]:
        """The call log since the last reset, without the bench's own calls."""
        return [
            c
            for c in self.emu.calls()
            if c["access_key"] not in self.own_keys and service in (None, c["service"])
        ]

    # ------------------------------------------------------------------------------ VPCs
    def make_vpcs(self) -> None:
        """N VPCs, untagged (no tag event yet), spread round-robin over the 4 locations."""
        started = time.monotonic()
        for i in range(1, self.n + 1):
            account, region = LOCATIONS[(i - 1) % len(LOCATIONS)]
            cidr = f"10.{i}.0.0/16"
            vpc_id = self.ec2(account, region).create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
            self.vpcs.append(BenchVpc(vpc_id, account, region, cidr))
        note(f"  {self.n} VPCs made in {time.monotonic() - started:.1f}s")

    def tag_all(self, key: str, value: str, align: bool) -> tuple[float, float]:
        """Tag every VPC in a loop, as fast as the API answers; with ``align``, start right
        after a window boundary so the whole burst falls in one window. Returns (epoch when
        the first tag was set, seconds the loop took)."""
        if align:
            time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.05)
        epoch, started = time.time(), time.monotonic()
        for vpc in self.vpcs:
            self.ec2(vpc.account, vpc.region).create_tags(
                Resources=[vpc.vpc_id], Tags=[{"Key": key, "Value": value}]
            )
        return epoch, time.monotonic() - started

    # ------------------------------------------------------------------------ executions
    def executions(self, machine: str) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.arns[machine]
        )
        return [e for page in pages for e in page["executions"]]

    def snapshot(self) -> dict[str, set[str]]:
        """Every execution so far, by machine: what "started since" is measured against."""
        return {m: {e["executionArn"] for e in self.executions(m)} for m in self.arns}

    def started_since(self, before: dict[str, set[str]], machine: str) -> list[dict[str, Any]]:
        return [e for e in self.executions(machine) if e["executionArn"] not in before[machine]]

    def settle(
        self, before: dict[str, set[str]], last_tag: float, timeout: float
    ) -> list[dict[str, Any]]:
        """Wait for every reconcile the tag changes started to end. Done when at least one
        started, none runs, and the last change's window (and the reconcile's settle time)
        is over, so no event of the burst can still start one."""
        deadline = time.monotonic() + timeout
        quiet_after = last_tag + WINDOW_SECONDS + SETTLE_SECONDS
        next_note = time.monotonic() + PROGRESS_SECONDS
        while time.monotonic() < deadline:
            started = self.started_since(before, RECONCILE_MACHINE)
            running = [e for e in started if e["status"] == "RUNNING"]
            if started and not running and time.time() > quiet_after:
                return started
            if time.monotonic() >= next_note:
                creates = len(self.started_since(before, CREATE_MACHINE))
                note(
                    f"  ... {len(started)} reconcile(s) started, {len(running)} running; "
                    f"{creates} create executions started ({time.time() - last_tag:.0f}s)"
                )
                next_note += PROGRESS_SECONDS
            time.sleep(2.0)
        raise TimeoutError(f"the reconciles did not end within {timeout:.0f}s")

    def states_entered(self, arns: list[str]) -> int:
        return sum(len(entered_states(history(self.sfn, arn))) for arn in arns)

    def outputs(self, reconciles: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each reconcile's report (its output, or its error and cause when it failed)."""
        found = []
        for e in sorted(reconciles, key=lambda e: e["startDate"]):
            described = self.sfn.describe_execution(executionArn=e["executionArn"])
            output = json.loads(described.get("output") or "null") or {}
            found.append(
                {
                    "Name": e["name"],
                    "Status": described["status"],
                    "Error": described.get("error"),
                    **output,
                }
            )
        return found

    # ------------------------------------------------------------------------ the mesh
    def verify(self) -> tuple[int, int]:
        """(pairs with one active group peering, of those: routed both ways in every table),
        read from EC2 in each location with the bench's own credentials."""
        peering_of: dict[frozenset[str], list[str]] = {}
        tables: dict[str, list[dict[str, Any]]] = {}
        for account, region in LOCATIONS:
            ec2 = self.ec2(account, region)
            for page in ec2.get_paginator("describe_vpc_peering_connections").paginate(
                Filters=[
                    {"Name": "status-code", "Values": ["active"]},
                    {"Name": "tag:vpc-peering:group", "Values": [GROUP]},
                ]
            ):
                for p in page["VpcPeeringConnections"]:
                    req, acc = p["RequesterVpcInfo"], p["AccepterVpcInfo"]
                    if (req["OwnerId"], req["Region"]) == (account, region):
                        pair = frozenset({req["VpcId"], acc["VpcId"]})
                        peering_of.setdefault(pair, []).append(p["VpcPeeringConnectionId"])
            here = [v.vpc_id for v in self.vpcs if (v.account, v.region) == (account, region)]
            for page in ec2.get_paginator("describe_route_tables").paginate(
                Filters=[{"Name": "vpc-id", "Values": here}]
            ):
                for table in page["RouteTables"]:
                    tables.setdefault(table["VpcId"], []).append(table)
        peered = routed = 0
        for a, b in itertools.combinations(self.vpcs, 2):
            ids = peering_of.get(frozenset({a.vpc_id, b.vpc_id}), [])
            if len(ids) != 1:
                continue
            peered += 1
            routed += self._routes(tables, a, b, ids[0]) and self._routes(tables, b, a, ids[0])
        return peered, routed

    @staticmethod
    def _routes(
        tables: dict[str, list[dict[str, Any]]], vpc: BenchVpc, peer: BenchVpc, pcx: str
    ) -> bool:
        """Every route table of ``vpc`` sends ``peer``'s CIDR to ``pcx``."""
        found = tables.get(vpc.vpc_id, [])
        wanted = (peer.cidr, pcx)
        return bool(found) and all(
            any(
                (r.get("DestinationCidrBlock"), r.get("VpcPeeringConnectionId")) == wanted
                for r in t["Routes"]
            )
            for t in found
        )

    def record_calls(self, scenario: str, mutating_floor: dict[str, int]) -> None:
        """EC2 calls (per pair, by operation), mutating calls against ``mutating_floor``
        exactly (any other mutating operation must be 0), STS calls."""
        ec2 = Counter(c["operation"] for c in self.stack_calls("ec2"))
        total = sum(ec2.values())
        reads = {op: n for op, n in ec2.items() if not is_mutating(op)}
        self.report.add(
            scenario,
            "EC2 calls per pair",
            round(total / self.pairs, 2),
            detail=f"{total} calls; reads: " + _listed(reads),
        )
        mutating = {op: n for op, n in ec2.items() if is_mutating(op)}
        for op, floor in mutating_floor.items():
            self.report.exact(scenario, f"EC2 {op}", mutating.get(op, 0), floor)
        others = {op: n for op, n in mutating.items() if op not in mutating_floor}
        self.report.exact(
            scenario,
            "EC2 other mutating calls",
            sum(others.values()),
            0,
            ", ".join(f"{k} {v}" for k, v in sorted(others.items())),
        )
        sts = Counter(c["operation"] for c in self.stack_calls("sts"))
        self.report.add(
            scenario,
            "STS calls",
            sum(sts.values()),
            detail=", ".join(f"{k} {v}" for k, v in sorted(sts.items())),
        )

    def rounds(self, reconciles: list[dict[str, Any]]) -> int | None:
        """Round executions the reconciles' distributed Maps ran (their map runs' item
        counts); None when the endpoint does not tell."""
        try:
            total = 0
            for e in reconciles:
                runs = self.sfn.list_map_runs(executionArn=e["executionArn"])["mapRuns"]
                for run in runs:
                    described = self.sfn.describe_map_run(mapRunArn=run["mapRunArn"])
                    total += int(described["itemCounts"]["total"])
            return total
        except Exception as exc:  # a figure we may not get, not a failure
            note(f"  map runs not readable: {exc}")
            return None

    def record_reconciles(
        self, scenario: str, reconciles: list[dict[str, Any]], children: list[str]
    ) -> None:
        """What the reconciles reported, how many states they and their create children
        entered per pair, and the biggest reconcile history against Step Functions' limit."""
        reports = self.outputs(reconciles)
        summary = "; ".join(_summary(r) for r in reports)
        self.report.add(scenario, "reconcile executions", len(reconciles), detail=summary)
        own = self.states_entered([e["executionArn"] for e in reconciles])
        entered = self.states_entered(children)
        self.report.check(
            scenario,
            "states entered per pair",
            round((own + entered) / self.pairs, 2),
            STATES_PER_PAIR_BUDGET,
            f"{entered} in the {len(children)} child executions + {own} in the reconciles' "
            "own histories",
        )
        rounds = self.rounds(reconciles)
        if rounds is not None:
            # A round's execution enters RunPairs, RecordRound, and RunPair per
            # pair (the emulator keeps no history of a distributed Map's child executions).
            in_rounds = 2 * rounds + len(children)
            self.report.add(
                scenario,
                "  incl. round executions",
                round((own + entered + in_rounds) / self.pairs, 2),
                detail=f"+ {in_rounds} states in {rounds} round executions (2 per round + 1 "
                "per pair, from the map runs' item counts and the ASL)",
            )
        events = {e["name"]: len(history(self.sfn, e["executionArn"])) for e in reconciles}
        self.report.check(
            scenario,
            "reconcile history events",
            max(events.values()),
            HISTORY_LIMIT,
            "the biggest (Step Functions' limit per execution); "
            + ", ".join(f"{name} {n}" for name, n in events.items()),
        )

    def mesh(self, timeout: float) -> None:
        """(a) N VPCs tagged into one mesh converge from their tags alone."""
        scenario = f"network mesh N={self.n} ({self.pairs} pairs)"
        before = self.snapshot()
        self.emu.reset_calls()
        epoch, loop = self.tag_all("vpc-peering:mesh", GROUP, align=True)
        note(f"  {self.n} VPCs tagged in {loop:.1f}s; waiting for the reconcile(s)")
        reconciles = self.settle(before, epoch + loop, timeout)
        ended = max(_epoch(e["stopDate"]) for e in reconciles)
        self.report.check(
            scenario,
            "reconciles the tags started",
            len(reconciles),
            round(burst_budget(loop), 2),
            f"{self.n} tag changes in {loop:.1f}s, window {WINDOW_SECONDS}s",
        )
        creates = self.started_since(before, CREATE_MACHINE)
        cleanups = self.started_since(before, CLEANUP_MACHINE)
        self.report.add(
            scenario,
            "child executions",
            len(creates) + len(cleanups),
            detail=f"create {len(creates)} "
            f"({Counter(e['status'] for e in creates)}), cleanup {len(cleanups)}",
        )
        children = [e["executionArn"] for e in creates + cleanups]
        self.record_reconciles(scenario, reconciles, children)
        self.record_calls(
            scenario,
            {
                "CreateVpcPeeringConnection": self.pairs,
                "AcceptVpcPeeringConnection": self.pairs,
                "CreateRoute": 2 * self.pairs,
            },
        )
        self.report.add(
            scenario,
            "wall time (s)",
            round(ended - epoch, 1),
            detail=f"first tag to last reconcile's end (incl. the {WINDOW_SECONDS}s window "
            f"and {SETTLE_SECONDS}s settle)",
        )
        peered, routed = self.verify()
        self.report.exact(scenario, "pairs peered (active)", peered, self.pairs)
        self.report.exact(scenario, "pairs routed both ways", routed, self.pairs)

    def sweep(self, timeout: float) -> None:
        """(b) The same mesh swept again by hand: nothing to do, and little to read."""
        scenario = f"network sweep N={self.n} (unchanged)"
        before = self.snapshot()
        self.emu.reset_calls()
        started = time.monotonic()
        arn = self.sfn.start_execution(stateMachineArn=self.arns[RECONCILE_MACHINE], input="{}")[
            "executionArn"
        ]
        while self.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the sweep did not end within {timeout:.0f}s")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        [reconcile] = self.started_since(before, RECONCILE_MACHINE)
        children = self.started_since(before, CREATE_MACHINE) + self.started_since(
            before, CLEANUP_MACHINE
        )
        self.report.check(scenario, "child executions", len(children), 0)
        calls = self.stack_calls("ec2")
        self.report.check(
            scenario, "EC2 mutating calls", sum(is_mutating(c["operation"]) for c in calls), 0
        )
        for account, region in LOCATIONS:
            here = Counter(
                c["operation"] for c in calls if (c["account"], c["region"]) == (account, region)
            )
            self.report.check(
                scenario,
                f"reads {account} {region}",
                sum(here.values()),
                READS_PER_LOCATION_BUDGET,
                "EC2 calls, pages included: " + _listed(here),
            )
        self.record_reconciles(scenario, [reconcile], [])
        sts = Counter(c["operation"] for c in self.stack_calls("sts"))
        self.report.add(scenario, "STS calls", sum(sts.values()))
        self.report.add(scenario, "wall time (s)", round(seconds, 2))

    def burst(self, timeout: float) -> None:
        """(c) N tag changes in a loop, at any moment of the window, coalesce. The change
        (``vpc-peering:route-tables`` = ``all``, the default) leaves the mesh as it is, so the
        reconciles measure the trigger, not a rebuild."""
        scenario = f"network burst of {self.n} tag changes"
        before = self.snapshot()
        self.emu.reset_calls()
        epoch, loop = self.tag_all("vpc-peering:route-tables", "all", align=False)
        reconciles = self.settle(before, epoch + loop, timeout)
        self.report.check(
            scenario,
            "reconciles started",
            len(reconciles),
            round(burst_budget(loop), 2),
            f"{self.n} tag changes in {loop:.1f}s, window {WINDOW_SECONDS}s: budget 2 + elapsed/W",
        )
        children = self.started_since(before, CREATE_MACHINE) + self.started_since(
            before, CLEANUP_MACHINE
        )
        mutating = sum(is_mutating(c["operation"]) for c in self.stack_calls("ec2"))
        self.report.add(
            scenario,
            "child executions, mutating",
            f"{len(children)}, {mutating}",
            detail="; ".join(
                f"{r['Name']} {r['Status']} unchanged {r.get('Unchanged')}"
                for r in self.outputs(reconciles)
            ),
        )


def _summary(report: dict[str, Any]) -> str:
    """One reconcile's report in brief; a reconcile that ended before Discover (e.g. it gave
    up waiting for the lease) has only its error."""
    head = f"{report['Name']} {report['Status']}"
    if "Desired" not in report:
        return f"{head}: {report.get('Error')}"
    counts = ("Desired", "Created", "Removed", "Repaired", "Unchanged", "FailedCount")
    return f"{head}: " + " ".join(
        f"{k.removesuffix('Count').lower()} {report.get(k)}" for k in counts
    )


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def network_scenarios(
    report: Report, vpcs: int, timeout: float, ec2_throttling: bool = False
) -> None:
    """Every network scenario on a fresh emulator of their own."""
    note(f"network scenarios: {vpcs} VPCs, {pairs_of(vpcs)} pairs (progress every 30s)")
    started = time.monotonic()
    with network_emulator(ec2_throttling) as emu:
        # The hub's group policy admits the bench's group from both accounts.
        write_policy(emu, {"Groups": {GROUP: {"Accounts": [HUB, MEMBER]}}})
        bench = NetworkBench(emu, report, vpcs)
        bench.make_vpcs()
        for scenario in (bench.mesh, bench.sweep, bench.burst):
            shown = len(report.rows)
            try:
                scenario(timeout)
            except Exception as exc:  # the figures so far are still the point
                report.add(f"network {scenario.__name__}", "did not finish", repr(exc), ok=False)
            note_rows(report.rows[shown:])
    report.add("network (all scenarios)", "wall time (s)", round(time.monotonic() - started, 1))


def note_rows(rows: list[Row]) -> None:
    """A scenario's rows on stderr as soon as it ends: a long run's figures survive a later
    scenario's failure."""
    for r in rows:
        note(f"  | {r.scenario} | {r.figure} | {r.value} | {r.budget} | {r.ok} | {r.detail}")
