"""`make demo-mesh`: tag four VPCs into a mesh and watch the network follow the tags.

The hub's group policy is written first (the group, open to both accounts, CIDRs inside
10.0.0.0/8), a sandbox VPC outside those CIDRs that tags itself in is refused, and in a second
group whose joins need approval two VPCs wait until `vpc-peering approve` lets them in.
On the local emulator (started here with two accounts and two regions in scope and the member
forwarding stacks deployed, or one already running with ``--endpoint``, e.g. ``make local``
with the parameters this demo names): four VPCs, one per account x region, are tagged
``vpc-peering:mesh``; nothing else is done. The tag change events start the reconcile machine,
and the peerings appear as a matrix that fills in (``-`` none, ``…`` pending, ``✓`` active
and routed both ways), printed each time it changes, with each reconcile's report as it ends.
Then one VPC is untagged and its row and column empty again; then every VPC is untagged, the
VPCs are deleted, and nothing is left. Plain ASCII and no colours when stdout is not a
terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emulator.testing import EmulatorHandle, attach_emulator, running_emulator
from vpc_peering_cli.__main__ import main as cli_main

from . import RECONCILE_MACHINE
from .members import forwarding_stacks
from .policy import parameter_name, set_group, write_policy

HUB, MEMBER = "123456789012", "111111111111"
REGIONS = ("us-east-1", "us-west-2")
WINDOW_SECONDS = 2
#: The reconcile's wait after its window (functions/vpc_peering/tag_start.py SETTLE_SECONDS).
SETTLE_SECONDS = 5
PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ManagedRegions": ",".join(REGIONS),
    "TagEventWindowSeconds": str(WINDOW_SECONDS),
    "ReconcileSchedule": "",
}
#: (label, account, region, CIDR) of the four VPCs: one per account x region.
LAYOUT = (
    ("A", HUB, "us-east-1", "10.101.0.0/16"),
    ("B", HUB, "us-west-2", "10.102.0.0/16"),
    ("C", MEMBER, "us-east-1", "10.103.0.0/16"),
    ("D", MEMBER, "us-west-2", "10.104.0.0/16"),
)
LIVE = ("pending-acceptance", "provisioning", "active")
#: The reconcile report's counts, as the demo prints them.
REPORT_FIELDS = (
    ("Desired", "desired"),
    ("Created", "created"),
    ("Removed", "removed"),
    ("Repaired", "repaired"),
    ("Unchanged", "unchanged"),
    ("FailedCount", "failed"),
)
POLL_SECONDS = 0.5
PHASE_TIMEOUT = 180.0


@dataclass(frozen=True)
class Style:
    """How to draw: Unicode and ANSI colours on a terminal, plain ASCII in a pipe or a file."""

    none: str
    pending: str
    done: str
    self_cell: str
    bold: str = ""
    dim: str = ""
    green: str = ""
    yellow: str = ""
    red: str = ""
    reset: str = ""

    @staticmethod
    def for_stream(stream: Any) -> Style:
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "✓…·".encode(encoding)
            unicode = True
        except (UnicodeEncodeError, LookupError):
            unicode = False
        if stream.isatty() and unicode:
            return Style(
                "-",
                "…",
                "✓",
                "·",
                "\033[1m",
                "\033[2m",
                "\033[32m",
                "\033[33m",
                "\033[31m",
                "\033[0m",
            )
        return Style("-", "~", "+", ".")


STYLE = Style.for_stream(sys.stdout)


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say(f"\n{STYLE.bold}== {text}{STYLE.reset}")


@dataclass(frozen=True)
class DemoVpc:
    label: str
    vpc_id: str
    account: str
    region: str
    cidr: str


class Mesh:
    """The demo's VPCs, the clients that reach them, and the matrix of their peerings."""

    def __init__(self, handle: EmulatorHandle, group: str) -> None:
        self.handle = handle
        self.group = group
        self.sfn = handle.client("stepfunctions")
        self.reconcile_arn = handle.state_machine_arn(RECONCILE_MACHINE)
        self._clients: dict[tuple[str, str], Any] = {}
        self.vpcs: list[DemoVpc] = []
        self.started = time.monotonic()

    def ec2(self, account: str, region: str) -> Any:
        """One client per account and region (a member account through STS AssumeRole)."""
        if (account, region) not in self._clients:
            self._clients[(account, region)] = self.handle.account_client("ec2", account, region)
        return self._clients[(account, region)]

    def make_vpcs(self) -> None:
        for label, account, region, cidr in LAYOUT:
            vpc_id = self.ec2(account, region).create_vpc(
                CidrBlock=cidr,
                TagSpecifications=[
                    {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": f"mesh-{label}"}]}
                ],
            )["Vpc"]["VpcId"]
            self.vpcs.append(DemoVpc(label, vpc_id, account, region, cidr))
            say(f"  {label}  {vpc_id}  account {account}  {region:9}  {cidr}")

    def tag(self, vpc: DemoVpc) -> None:
        self.ec2(vpc.account, vpc.region).create_tags(
            Resources=[vpc.vpc_id], Tags=[{"Key": "vpc-peering:mesh", "Value": self.group}]
        )
        say(f"  tagged   {vpc.label} {vpc.vpc_id}  vpc-peering:mesh={self.group}")

    def untag(self, vpc: DemoVpc) -> None:
        self.ec2(vpc.account, vpc.region).delete_tags(
            Resources=[vpc.vpc_id], Tags=[{"Key": "vpc-peering:mesh"}]
        )
        say(f"  untagged {vpc.label} {vpc.vpc_id}  (vpc-peering:mesh removed)")

    # -------------------------------------------------------------------------- what EC2 shows
    def peerings(self) -> dict[frozenset[str], dict[str, Any]]:
        """Live peerings between two of the demo's VPCs, by pair of VPC ids (read in each
        account and region: a peering shows on both sides)."""
        ours = {v.vpc_id for v in self.vpcs}
        found: dict[frozenset[str], dict[str, Any]] = {}
        for account, region in {(v.account, v.region) for v in self.vpcs}:
            listed = self.ec2(account, region).describe_vpc_peering_connections(
                Filters=[{"Name": "status-code", "Values": list(LIVE)}]
            )["VpcPeeringConnections"]
            for p in listed:
                pair = frozenset({p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]})
                if pair <= ours and len(pair) == 2:
                    found[pair] = p
        return found

    def routes(self) -> dict[str, list[dict[str, str]]]:
        """VPC id -> the routes of each of its route tables (destination -> target)."""
        tables: dict[str, list[dict[str, str]]] = {}
        for vpc in self.vpcs:
            listed = self.ec2(vpc.account, vpc.region).describe_route_tables(
                Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}]
            )["RouteTables"]
            tables[vpc.vpc_id] = [
                {
                    r.get("DestinationCidrBlock", ""): r.get("VpcPeeringConnectionId", "")
                    for r in t["Routes"]
                    if r.get("State") == "active"
                }
                for t in listed
            ]
        return tables

    def cells(self) -> dict[frozenset[str], str]:
        """Each pair's cell: none, pending (a live peering, not yet active and routed both
        ways), or done."""
        peerings, routes = self.peerings(), self.routes()
        cells = {}
        for i, a in enumerate(self.vpcs):
            for b in self.vpcs[i + 1 :]:
                pair = frozenset({a.vpc_id, b.vpc_id})
                peering = peerings.get(pair)
                if peering is None:
                    cells[pair] = STYLE.none
                    continue
                pcx = peering["VpcPeeringConnectionId"]
                routed = all(
                    table.get(peer.cidr) == pcx
                    for vpc, peer in ((a, b), (b, a))
                    for table in routes[vpc.vpc_id]
                )
                active = peering["Status"]["Code"] == "active"
                cells[pair] = STYLE.done if active and routed else STYLE.pending
        return cells

    def matrix(self, cells: dict[frozenset[str], str]) -> list[str]:
        """The matrix as lines: rows and columns the VPCs, one cell per pair."""
        colour = {STYLE.done: STYLE.green, STYLE.pending: STYLE.yellow}
        lines = ["      " + "  ".join(v.label for v in self.vpcs)]
        for a in self.vpcs:
            row = []
            for b in self.vpcs:
                cell = STYLE.self_cell if a is b else cells[frozenset({a.vpc_id, b.vpc_id})]
                row.append(f"{colour.get(cell, '')}{cell}{STYLE.reset if cell in colour else ''}")
            lines.append(f"    {a.label} " + "  ".join(row))
        return lines

    # -------------------------------------------------------------------------- reconciles
    def write_policy(self) -> None:
        """The hub's group policy: the demo's group, open to both accounts, CIDRs in 10/8."""
        rule = {"Accounts": [HUB, MEMBER], "Cidrs": ["10.0.0.0/8"]}
        write_policy(self.handle, {"Groups": {self.group: rule}})
        say(f"  {parameter_name(self.handle)} = {json.dumps({'Groups': {self.group: rule}})}")

    def join_refused(self, timeout: float = 90.0) -> bool:
        """A sandbox VPC outside the group's Cidrs tags itself in: the reconcile its tag starts
        refuses it (Refused, GroupPolicyDenied) and makes nothing for it."""
        ec2 = self.ec2(HUB, "us-east-1")
        vpc_id = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
        before = {e["executionArn"] for e in self.reconciles()}
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "vpc-peering:mesh", "Value": self.group}])
        say(f"  tagged   sandbox {vpc_id} (192.168.0.0/16)  vpc-peering:mesh={self.group}")
        deadline = time.monotonic() + timeout
        refused: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not refused:
            time.sleep(POLL_SECONDS)
            for execution in self.reconciles():
                if execution["executionArn"] in before or execution["status"] == "RUNNING":
                    continue
                described = self.sfn.describe_execution(executionArn=execution["executionArn"])
                out = json.loads(described.get("output") or "null") or {}
                refused += [r for r in out.get("Refused", []) if r["VpcId"] == vpc_id]
        for entry in refused[:1]:
            cause = f"{entry['Error']}: {entry['Cause']}"
            say(f"  {STYLE.red}refused{STYLE.reset}  {entry['VpcId']}: {cause}")
        ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "vpc-peering:mesh"}])
        ec2.delete_vpc(VpcId=vpc_id)
        return bool(refused) and not any(vpc_id in str(k) for k in self.peerings())

    def settle(self, before: set[str], timeout: float = 90.0) -> list[dict[str, Any]]:
        """The outputs of the reconciles started since ``before``, once they have all ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            started = [e for e in self.reconciles() if e["executionArn"] not in before]
            if started and all(e["status"] != "RUNNING" for e in started):
                outputs = []
                for e in started:
                    described = self.sfn.describe_execution(executionArn=e["executionArn"])
                    outputs.append(json.loads(described.get("output") or "null") or {})
                return outputs
        return []

    def join_approved(self) -> bool:
        """A group whose joins need approval: two VPCs tag themselves in and wait (nothing is
        made); `vpc-peering approve` records each approval in the hub and the pair is made."""
        group = f"{self.group}-vetted"
        set_group(self.handle, group, {"Accounts": [HUB, MEMBER], "Join": "approval"})
        say(f"  policy   Groups.{group} = {{Accounts: both, Join: approval}}")
        joiners = [
            (
                HUB,
                str(
                    self.ec2(HUB, "us-east-1").create_vpc(CidrBlock="10.105.0.0/16")["Vpc"]["VpcId"]
                ),
            ),
            (
                MEMBER,
                str(
                    self.ec2(MEMBER, "us-east-1").create_vpc(CidrBlock="10.106.0.0/16")["Vpc"][
                        "VpcId"
                    ]
                ),
            ),
        ]
        before = {e["executionArn"] for e in self.reconciles()}
        for account, vpc_id in joiners:
            self.ec2(account, "us-east-1").create_tags(
                Resources=[vpc_id], Tags=[{"Key": "vpc-peering:mesh", "Value": group}]
            )
            say(f"  tagged   {vpc_id} (account {account})  vpc-peering:mesh={group}")
        self.settle(before)
        wanted = {v for _, v in joiners}
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            cli_main(["--endpoint-url", self.handle.endpoint, "--region", self.handle.region,
                      "pending"])  # fmt: skip
        for line in said.getvalue().splitlines():
            say(f"  vpc-peering pending: {line}")
        waiting = {v for v in wanted if v in said.getvalue()}
        say(f"  pending  {', '.join(sorted(waiting)) or 'none'} (nothing made yet)")
        for _, vpc_id in joiners:
            said = io.StringIO()
            with contextlib.redirect_stdout(said):
                code = cli_main(
                    ["--endpoint-url", self.handle.endpoint, "--region", self.handle.region,
                     "approve", group, vpc_id]
                )  # fmt: skip
            line = next((x for x in said.getvalue().splitlines() if x.startswith("approved")), "")
            say(f"  {STYLE.green}{line or f'approve {vpc_id}: exit {code}'}{STYLE.reset}")
        peered = [
            p
            for p in self.ec2(HUB, "us-east-1").describe_vpc_peering_connections()[
                "VpcPeeringConnections"
            ]
            if p["Status"]["Code"] == "active"
            and {p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]}
            == {v for _, v in joiners}
        ]
        say(f"  peered   {peered[0]['VpcPeeringConnectionId'] if peered else 'no'}")
        before = {e["executionArn"] for e in self.reconciles()}
        for account, vpc_id in joiners:
            self.ec2(account, "us-east-1").delete_tags(
                Resources=[vpc_id], Tags=[{"Key": "vpc-peering:mesh"}]
            )
        self.settle(before)
        for account, vpc_id in joiners:
            self.ec2(account, "us-east-1").delete_vpc(VpcId=vpc_id)
        return wanted <= waiting and bool(peered)

    def reconciles(self) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.reconcile_arn
        )
        return [e for page in pages for e in page["executions"]]

    def report_line(self, execution: dict[str, Any]) -> str:
        """A reconcile's report, in brief."""
        described = self.sfn.describe_execution(executionArn=execution["executionArn"])
        out = json.loads(described.get("output") or "null") or {}
        seconds = (described["stopDate"] - described["startDate"]).total_seconds()
        ok = described["status"] == "SUCCEEDED"
        colour = STYLE.green if ok else STYLE.red
        counts = ", ".join(f"{label} {out[key]}" for key, label in REPORT_FIELDS if key in out)
        line = f"  {colour}reconcile {execution['name']} {described['status']}{STYLE.reset}"
        line += f" in {seconds:.1f}s: {counts or 'no report'}"
        if not ok:
            line += f"\n    {described.get('error')}: {described.get('cause')}"
        return line

    def watch(self, done: Callable[[dict[frozenset[str], str]], bool], last_tag: float) -> bool:
        """Print the matrix each time it changes and each reconcile's report as it ends,
        until the reconciles the tag changes started have all ended and ``done`` holds."""
        before = {e["executionArn"] for e in self.reconciles() if e["status"] != "RUNNING"}
        reported: set[str] = set()
        shown: dict[frozenset[str], str] | None = None
        deadline = time.monotonic() + PHASE_TIMEOUT
        while time.monotonic() < deadline:
            cells = self.cells()
            if cells != shown:
                self.show(cells)
                shown = cells
            started = [e for e in self.reconciles() if e["executionArn"] not in before]
            for e in started:
                if e["status"] != "RUNNING" and e["executionArn"] not in reported:
                    reported.add(e["executionArn"])
                    say(self.report_line(e))
            quiet = time.time() > last_tag + WINDOW_SECONDS + SETTLE_SECONDS
            ended = reported == {e["executionArn"] for e in started}
            if started and quiet and ended and done(cells):
                return True
            time.sleep(POLL_SECONDS)
        say(f"  {STYLE.red}not settled within {PHASE_TIMEOUT:.0f}s{STYLE.reset}")
        return False

    def show(self, cells: dict[frozenset[str], str]) -> None:
        made = sum(c == STYLE.done for c in cells.values())
        elapsed = time.monotonic() - self.started
        say(f"  {STYLE.dim}{elapsed:6.1f}s{STYLE.reset}  {made} of {len(cells)} pairs peered")
        for line in self.matrix(cells):
            say(line)

    # -------------------------------------------------------------------------- phases
    def all_done(self, cells: dict[frozenset[str], str]) -> bool:
        return all(c == STYLE.done for c in cells.values())

    def all_none(self, cells: dict[frozenset[str], str]) -> bool:
        return all(c == STYLE.none for c in cells.values())

    def without(self, gone: DemoVpc) -> Callable[[dict[frozenset[str], str]], bool]:
        """Done when ``gone``'s pairs are empty and every other pair is peered."""

        def done(cells: dict[frozenset[str], str]) -> bool:
            return all(
                (c == STYLE.none) if gone.vpc_id in pair else (c == STYLE.done)
                for pair, c in cells.items()
            )

        return done

    def leftovers(self) -> list[str]:
        """What the demo's group left in EC2: live peerings, routes to any peering."""
        found = [
            f"peering {p['VpcPeeringConnectionId']} {p['Status']['Code']}"
            for p in self.peerings().values()
        ]
        for vpc_id, tables in self.routes().items():
            for table in tables:
                found += [
                    f"route {dest} -> {target} in {vpc_id}"
                    for dest, target in table.items()
                    if target.startswith("pcx-")
                ]
        return found

    def delete_vpcs(self) -> list[str]:
        """Delete the VPCs; the ones EC2 still shows afterwards."""
        for vpc in self.vpcs:
            self.ec2(vpc.account, vpc.region).delete_vpc(VpcId=vpc.vpc_id)
        left = []
        for vpc in self.vpcs:
            shown = self.ec2(vpc.account, vpc.region).describe_vpcs(
                Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]}]
            )["Vpcs"]
            left += [v["VpcId"] for v in shown]
        return left


def demo(handle: EmulatorHandle) -> int:
    mesh = Mesh(handle, f"demo-{uuid.uuid4().hex[:6]}")
    say(f"Local AWS endpoint {handle.endpoint} (stack {handle.stack_name}, hub {handle.region})")
    legend = (
        f"{STYLE.none} none, {STYLE.pending} pending (being made or taken down), "
        f"{STYLE.done} active and routed both ways"
    )
    say(f"Matrix cells: {legend}")

    heading("The hub's group policy first: a tag only asks to join; the policy decides")
    mesh.write_policy()

    heading("Four VPCs, one per account x region (not tagged yet: nothing happens)")
    mesh.make_vpcs()

    heading(f"Tag them into one mesh (vpc-peering:mesh={mesh.group}); nothing else is done")
    for vpc in mesh.vpcs:
        mesh.tag(vpc)
    formed = mesh.watch(mesh.all_done, time.time())

    heading("A sandbox VPC whose CIDR the policy does not allow tags itself in")
    refused = mesh.join_refused()

    heading("A group whose joins need approval: two VPCs ask, an admin approves")
    approved = mesh.join_approved()

    gone = mesh.vpcs[-1]
    heading(f"Untag {gone.label}: its peerings and routes go, the others stay")
    mesh.untag(gone)
    left = mesh.watch(mesh.without(gone), time.time())

    heading("Clean up: untag the others, then delete the VPCs")
    for vpc in mesh.vpcs[:-1]:
        mesh.untag(vpc)
    emptied = mesh.watch(mesh.all_none, time.time())
    leftovers = mesh.leftovers()
    say(f"  left in EC2: {', '.join(leftovers) or 'no peering between them, no route to one'}")
    vpcs_left = mesh.delete_vpcs()
    say(f"  VPCs deleted; still shown: {', '.join(vpcs_left) or 'none'}")

    clean = formed and refused and approved and left and emptied and not leftovers and not vpcs_left
    say(
        f"\n{STYLE.green}Done: the mesh formed, shrank and went away, from tags alone.{STYLE.reset}"
        if clean
        else f"\n{STYLE.red}Something did not converge or was left behind.{STYLE.reset}"
    )
    return 0 if clean else 1


def missing_parameters(handle: EmulatorHandle) -> list[str]:
    """What an attached emulator's stack lacks for this demo (its boundary must cover both
    accounts and both regions, and trust both accounts' requests)."""
    stacks = handle.client("cloudformation").describe_stacks(StackName=handle.stack_name)
    listed = stacks["Stacks"][0].get("Parameters", [])
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in listed}
    missing = []
    for key in ("AllowedAccountIds", "TrustedRequesterAccountIds", "ManagedRegions"):
        have = {v.strip() for v in params.get(key, "").split(",") if v.strip()}
        if not set(PARAMETERS[key].split(",")) <= have:
            missing.append(f"{key}={PARAMETERS[key]}")
    return missing


@contextmanager
def emulator(endpoint: str | None) -> Iterator[EmulatorHandle]:
    if endpoint:
        yield attach_emulator(endpoint)
        return
    say("Starting the local AWS emulator (moto): template.yaml in the hub, the member forwarding")
    say("stack in every other account x region of the boundary ...")
    with running_emulator(
        parameter_overrides=PARAMETERS, extra_stacks=forwarding_stacks(PARAMETERS)
    ) as handle:
        yield handle


def _cli_credentials() -> None:
    """The emulator takes any credentials: give the in-process `vpc-peering` some."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", help="use an emulator already running (make local)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    _cli_credentials()
    with emulator(args.endpoint) as handle:
        missing = missing_parameters(handle) if args.endpoint else []
        if missing:
            say(
                f"{STYLE.red}The stack at {args.endpoint} lacks {', '.join(missing)}.{STYLE.reset}"
                f'\nStart it with: make local PARAMETERS="'
                + " ".join(f"{k}={v}" for k, v in PARAMETERS.items() if v)
                + '"'
            )
            return 2
        code = demo(handle)
    say(f"{STYLE.dim}demo wall time {time.monotonic() - started:.1f}s{STYLE.reset}")
    return code


if __name__ == "__main__":
    sys.exit(main())
