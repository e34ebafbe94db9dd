"""`make demo`: the AWS CLI tutorial's scenario, done by the create and cleanup machines.

On the local emulator (started here, or one already running with ``--endpoint``): create VPC1
10.0.0.0/16 and VPC2 172.16.0.0/16 with a subnet each, peer them through the create machine
(dedicated route tables associated with the subnets, as the tutorial does), print the result,
undo it with the cleanup machine, show that nothing of the peering is left, and delete the VPCs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulator.executions import ExecutionResult, run_execution
from emulator.testing import EmulatorHandle, attach_emulator, running_emulator

from . import CLEANUP_MACHINE, CREATE_MACHINE

ROOT = Path(__file__).resolve().parent.parent
#: The tutorial's request, as README's samples show it: a dedicated route table on each side.
TUTORIAL_SAMPLE = ROOT / "events" / "create-tutorial-dedicated-route-tables.json"


def colours(stream: Any) -> tuple[str, str, str, str, str]:
    """Bold, dim, green, red and reset: ANSI codes on a terminal (unless NO_COLOR or TERM=dumb),
    nothing in a pipe or a file, so that a log or `| less` gets plain text."""
    tty = hasattr(stream, "isatty") and stream.isatty()
    if not tty or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return "", "", "", "", ""
    return "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"


BOLD, DIM, GREEN, RED, RESET = colours(sys.stdout)


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say(f"\n{BOLD}== {text}{RESET}")


def tagged(resource_type: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def tutorial_request(vpc1: str, subnet1: str, vpc2: str, subnet2: str) -> dict[str, Any]:
    """The tutorial's request (``events/create-tutorial-dedicated-route-tables.json``) for these
    VPCs: peer them, with a new route table on each side associated with its subnet."""
    request: dict[str, Any] = json.loads(TUTORIAL_SAMPLE.read_text(encoding="utf-8"))
    for side, vpc, subnet in (("Requester", vpc1, subnet1), ("Accepter", vpc2, subnet2)):
        request[side]["VpcId"] = vpc
        request[side]["DedicatedRouteTable"]["SubnetIds"] = [subnet]
    return request


def make_vpc(ec2: Any, name: str, cidr: str, subnet_cidr: str) -> tuple[str, str]:
    """The tutorial's create-vpc and create-subnet, Name tags included: (vpc id, subnet id)."""
    vpc: str = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tagged("vpc", name))["Vpc"]["VpcId"]
    subnet: str = ec2.create_subnet(
        VpcId=vpc, CidrBlock=subnet_cidr, TagSpecifications=tagged("subnet", f"{name}-Subnet")
    )["Subnet"]["SubnetId"]
    say(f"  {name} {vpc} {cidr}, subnet {subnet} {subnet_cidr}")
    return vpc, subnet


def show_state(state: str, seconds: float) -> None:
    """A state as it is entered, with when: seconds since the execution started (not how long
    the state took)."""
    say(f"  {DIM}at {seconds:6.2f}s{RESET}  {state}")


def ec2_calls(handle: EmulatorHandle) -> Counter[str]:
    return Counter(c["operation"] for c in handle.calls() if c["service"] == "ec2")


def run_machine(
    handle: EmulatorHandle, arn: str, payload: Any
) -> tuple[ExecutionResult, Counter[str]]:
    sfn = handle.client("stepfunctions")
    handle.reset_calls()
    result = run_execution(sfn, arn, payload, on_state=show_state, timeout=120)
    calls = ec2_calls(handle)
    colour = GREEN if result.succeeded else RED
    say(
        f"  {colour}{result.status}{RESET} in {result.seconds:.1f}s, "
        f"{len(result.states_entered)} states"
    )
    if not result.succeeded:
        say(f"  {RED}{result.error}: {result.cause}{RESET}")
    return result, calls


def print_calls(calls: Counter[str]) -> None:
    total = sum(calls.values())
    detail = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    say(f"  EC2 API calls: {total} ({detail})")


def demo(handle: EmulatorHandle) -> int:
    ec2 = handle.client("ec2")
    say(f"Local AWS endpoint {handle.endpoint} (stack {handle.stack_name}, {handle.region})")

    heading("Create VPCs for peering (as the tutorial's create-vpc / create-subnet)")
    vpc1, subnet1 = make_vpc(ec2, "VPC1", "10.0.0.0/16", "10.0.1.0/24")
    vpc2, subnet2 = make_vpc(ec2, "VPC2", "172.16.0.0/16", "172.16.1.0/24")
    request = tutorial_request(vpc1, subnet1, vpc2, subnet2)

    heading("Create machine: plan, create, auto-accept (EventBridge), routes, DNS, verify")
    created, create_calls = run_machine(handle, handle.state_machine_arn(CREATE_MACHINE), request)
    if not created.succeeded:
        return 1
    out = created.output
    peering_id = out["VpcPeeringConnectionId"]

    heading("Result")
    say(f"  Peering   {peering_id}: {BOLD}{out['Status']}{RESET}")
    for name in ("Requester", "Accepter"):
        side = out[name]
        say(
            f"  {name:9} {side['VpcId']} account {side['AccountId']} {side['Region']} "
            f"CIDRs {', '.join(side['CidrBlocks'] + side['Ipv6CidrBlocks'])}"
        )
    for table in out["DedicatedRouteTables"]:
        subnets = ", ".join(
            f"{a['SubnetId']} ({a['AssociationId']})" for a in table["Associations"]
        )
        say(
            f"  Route table {table['RouteTableId']} ({table['Side']}, {table['State']})"
            f" <- {subnets}"
        )
    for route in out["Routes"]:
        say(
            f"  Route     {route['Side']:9} {route['RouteTableId']} {route['Destination']:16} "
            f"-> {peering_id} [{route['State']}]"
        )
    verification = out["Verification"]
    for check in verification["Checks"]:
        mark = f"{GREEN}ok{RESET}" if check["Ok"] else f"{RED}FAILED{RESET}"
        say(f"  verify    {mark}  {check['Subject']}: {check['Detail']}")
    print_calls(create_calls)

    heading("describe-vpc-peering-connections (the tutorial's check)")
    described = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])
    pcx = described["VpcPeeringConnections"][0]
    say(
        f"  {pcx['VpcPeeringConnectionId']} {pcx['Status']['Code']}: "
        f"{pcx['RequesterVpcInfo']['VpcId']} ({pcx['RequesterVpcInfo']['CidrBlock']}) <-> "
        f"{pcx['AccepterVpcInfo']['VpcId']} ({pcx['AccepterVpcInfo']['CidrBlock']})"
    )

    heading("Run the same request again (idempotent: nothing changes)")
    again, again_calls = run_machine(handle, handle.state_machine_arn(CREATE_MACHINE), request)
    states = Counter(r["State"] for r in again.output["Routes"]) if again.succeeded else {}
    same_peering = again.succeeded and again.output["VpcPeeringConnectionId"] == peering_id
    say(f"  same peering: {same_peering}; routes {dict(states)}")
    print_calls(again_calls)

    heading("Cleanup machine: routes, route tables, peering (reverse order)")
    cleaned, cleanup_calls = run_machine(handle, handle.state_machine_arn(CLEANUP_MACHINE), out)
    if not cleaned.succeeded:
        return 1
    removed = cleaned.output["Removed"]
    say(
        f"  removed {len(removed['Routes'])} routes, route tables "
        f"{', '.join(removed['RouteTables']) or '-'}, peering deleted: {removed['PeeringDeleted']}"
    )
    print_calls(cleanup_calls)

    heading("Nothing of the peering is left")
    status = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
        "VpcPeeringConnections"
    ][0]["Status"]["Code"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc1, vpc2]}])[
        "RouteTables"
    ]
    leftover_routes = [
        (t["RouteTableId"], r.get("DestinationCidrBlock"))
        for t in tables
        for r in t["Routes"]
        if r.get("VpcPeeringConnectionId") == peering_id
    ]
    leftover_tables = [
        t["RouteTableId"]
        for t in tables
        if any(tg["Key"] == "vpc-peering:managed-by" for tg in t.get("Tags", []))
    ]
    say(f"  peering {peering_id}: {status}")
    say(
        f"  routes to it: {leftover_routes or 'none'}; "
        f"tool-made route tables: {leftover_tables or 'none'}"
    )

    heading("Delete subnets and VPCs (the tutorial's last steps)")
    for subnet in (subnet2, subnet1):
        ec2.delete_subnet(SubnetId=subnet)
    for vpc in (vpc2, vpc1):
        ec2.delete_vpc(VpcId=vpc)
    say(f"  deleted {subnet2}, {subnet1}, {vpc2}, {vpc1}")
    clean = status == "deleted" and not leftover_routes and not leftover_tables
    say(
        f"\n{GREEN}Done: peered, verified and cleaned up.{RESET}"
        if clean
        else f"\n{RED}Something was left behind.{RESET}"
    )
    return 0 if clean else 1


@contextmanager
def emulator(endpoint: str | None) -> Iterator[EmulatorHandle]:
    if endpoint:
        yield attach_emulator(endpoint)
        return
    say("Starting the local AWS emulator (moto) and deploying template.yaml ...")
    with running_emulator() as handle:
        yield handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", help="use an emulator already running (make local)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with emulator(args.endpoint) as handle:
        code = demo(handle)
    say(f"{DIM}demo wall time {time.monotonic() - started:.1f}s{RESET}")
    return code


if __name__ == "__main__":
    sys.exit(main())
