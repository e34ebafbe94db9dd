"""The installed ``vpc-peering`` command, run as a subprocess against the emulator, with the
real create, cleanup and reconcile machines. One emulator for the module; every test makes its
own VPCs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator
from tools.policy import admit

COMMAND = Path(sys.executable).with_name("vpc-peering")
ROOT = Path(__file__).resolve().parents[2]
EXECUTION_ARN = re.compile(r"^arn:aws:states:us-east-1:\d{12}:execution:vpc-peering-\w+:[\w-]+$")


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    if not COMMAND.exists():
        pytest.fail(f"{COMMAND} is missing: `make install` installs the project's command")
    with running_emulator() as handle:
        yield handle


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Ran]


@pytest.fixture
def cli(emu: EmulatorHandle) -> Cli:
    """``vpc-peering --endpoint-url <emulator> ARGS...``, with the emulator's credentials only
    (no profile or config file of the machine running the tests), its output in a pipe."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("NO_COLOR", "TERM")
    }
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # This checkout's code, whichever checkout the command was installed from.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    def run(*args: str, endpoint: bool = True) -> Ran:
        argv = [str(COMMAND), *(["--endpoint-url", emu.endpoint] if endpoint else []), *args]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def make_vpc(emu: EmulatorHandle) -> Callable[[str], str]:
    def make(cidr: str) -> str:
        return str(emu.client("ec2").create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"])

    return make


def test_create_then_cleanup_round_trip_in_json(
    cli: Cli, make_vpc: Callable[[str], str], tmp_path: Path
) -> None:
    # Given two VPCs
    vpc1, vpc2 = make_vpc("10.0.0.0/16"), make_vpc("172.16.0.0/16")

    # When peered with the command, JSON out
    created = cli(
        "--output", "json", "create", "--requester-vpc", vpc1, "--accepter-vpc", vpc2, "--dns"
    )

    # Then it exits 0 and prints the create output: active, routed, DNS on, verified
    assert created.code == 0, created.err
    output = created.json()
    assert output["Status"] == "active"
    assert output["Verification"]["Ok"] is True
    assert output["Dns"]["Requester"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert {(r["Side"], r["Destination"]) for r in output["Routes"]} == {
        ("Requester", "172.16.0.0/16"),
        ("Accepter", "10.0.0.0/16"),
    }

    # When the create output is given to cleanup as it is
    peering = tmp_path / "peering.json"
    peering.write_text(created.out)
    cleaned = cli("--output", "json", "cleanup", "--input", str(peering))

    # Then it exits 0 and the peering and its two routes were removed
    assert cleaned.code == 0, cleaned.err
    removed = cleaned.json()
    assert removed["VpcPeeringConnectionId"] == output["VpcPeeringConnectionId"]
    assert removed["StatusBefore"] == "active"
    assert removed["Status"] == "deleted"
    assert removed["Removed"]["PeeringDeleted"] is True
    assert len(removed["Removed"]["Routes"]) == 2


def test_text_in_a_pipe_is_plain_lines_per_state_then_the_summary_and_list_shows_it(
    cli: Cli, make_vpc: Callable[[str], str], emu: EmulatorHandle
) -> None:
    # Given two VPCs
    vpc1, vpc2 = make_vpc("10.1.0.0/16"), make_vpc("172.17.0.0/16")

    # When peered with text output into a pipe
    created = cli("create", "--requester-vpc", vpc1, "--accepter-vpc", vpc2)

    # Then no escape sequence, a line for each state the execution entered, then the summary
    assert created.code == 0, created.err
    assert "\x1b" not in created.out
    assert "\r" not in created.out
    execution_arn = created.out.splitlines()[0].removeprefix("Execution ")
    assert EXECUTION_ARN.match(execution_arn)
    history = emu.client("stepfunctions").get_execution_history(executionArn=execution_arn)
    states = [
        e["stateEnteredEventDetails"]["name"]
        for e in history["events"]
        if e["type"].endswith("StateEntered")
    ]
    assert {"Plan", "CreatePeering", "RequestAcceptance", "AddRoutes", "Verify"} <= set(states)
    state_section = created.out.split("\n\n")[0].splitlines()[1:]  # then a blank line
    assert [line.split()[:2] for line in state_section] == [["✓", state] for state in states]
    pcx = re.search(r"^Peering (pcx-\w+)", created.out, re.MULTILINE)
    assert pcx is not None
    assert "Verification: ok" in created.out

    # When the stack's peerings are listed, as a table and as JSON
    table = cli("list")
    listed = cli("--output", "json", "list")

    # Then the new peering is there, with both VPCs, accounts and regions
    assert table.code == 0, table.err
    row = next(line for line in table.out.splitlines() if line.startswith(pcx.group(1)))
    assert row.split()[:10] == [
        pcx.group(1), "active", vpc1, "-", emu.account_id, "us-east-1", vpc2, "-",
        emu.account_id, "us-east-1",
    ]  # fmt: skip
    found = [p for p in listed.json() if p["VpcPeeringConnectionId"] == pcx.group(1)]
    assert found[0]["Requester"]["VpcId"] == vpc1
    assert found[0]["Accepter"]["VpcId"] == vpc2

    # When cleaned up by id, in text
    cleaned = cli("cleanup", pcx.group(1))

    # Then the summary lists what was removed, and list no longer shows it
    assert cleaned.code == 0, cleaned.err
    assert "Removed" in cleaned.out
    assert f"peering  {pcx.group(1)}" in cleaned.out
    assert pcx.group(1) not in cli("list").out
    assert pcx.group(1) in cli("list", "--all").out


def test_a_failed_create_exits_1_with_its_error_and_cause(
    cli: Cli, make_vpc: Callable[[str], str]
) -> None:
    # Given two VPCs with overlapping CIDRs
    vpc1, vpc2 = make_vpc("10.2.0.0/16"), make_vpc("10.2.0.0/16")

    # When peered, in text and in JSON
    text = cli("create", "--requester-vpc", vpc1, "--accepter-vpc", vpc2)
    as_json = cli("--output", "json", "create", "--requester-vpc", vpc1, "--accepter-vpc", vpc2)

    # Then both exit 1: text says Error: Cause and which state failed; JSON is {Error, Cause}
    assert text.code == 1
    assert "CidrOverlap: " in text.err
    assert re.search(r"^  ✗ Plan .* CidrOverlap$", text.out, re.MULTILINE)
    assert as_json.code == 1
    failure = as_json.json()
    assert failure["Error"] == "CidrOverlap"
    assert vpc1 in failure["Cause"]
    assert set(failure) == {"Error", "Cause"}


def test_cleanup_of_an_unknown_peering_warns_and_exits_1_unless_told_to_ignore_it(
    cli: Cli,
) -> None:
    # Given a peering id EC2 has never shown
    unknown = "pcx-0123456789abcdef0"

    # When cleaned up, then again with --ignore-missing
    strict = cli("cleanup", unknown)
    lenient = cli("--output", "json", "cleanup", unknown, "--ignore-missing")

    # Then a warning both times; exit 1, then 0
    assert strict.code == 1
    assert f"warning: peering {unknown} was not found" in strict.err
    assert "Nothing was removed." in strict.out
    assert lenient.code == 0, lenient.err
    assert "warning" in lenient.err
    assert lenient.json()["VpcPeeringConnectionId"] == unknown


def test_no_wait_prints_the_arn_and_watch_follows_it_to_the_end(
    cli: Cli, make_vpc: Callable[[str], str]
) -> None:
    # Given two VPCs
    vpc1, vpc2 = make_vpc("10.3.0.0/16"), make_vpc("172.18.0.0/16")

    # When a dry run is started without waiting
    started = cli(
        "--no-wait", "create", "--requester-vpc", vpc1, "--accepter-vpc", vpc2, "--dry-run"
    )

    # Then it prints only the execution ARN and exits 0
    assert started.code == 0, started.err
    execution_arn = started.out.strip()
    assert EXECUTION_ARN.match(execution_arn), started.out

    # When watched
    watched = cli("--output", "json", "watch", execution_arn)

    # Then it is followed to its end: the plan, nothing created
    assert watched.code == 0, watched.err
    plan = watched.json()
    assert plan["DryRun"] is True
    assert plan["VpcPeeringConnectionId"] is None


def test_create_flags_and_input_file_become_the_execution_input(
    cli: Cli, emu: EmulatorHandle, tmp_path: Path
) -> None:
    # Given an input file with tags, and flags for every field, --adopt included
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"Requester": {"VpcId": "vpc-0aaaaaaaa"}, "Tags": {"Name": "A-B"}})
    )

    # When started without waiting
    started = cli(
        "--no-wait", "create", "--input", str(request),
        "--requester-vpc", "vpc-0bbbbbbbb", "--requester-account", "123456789012",
        "--requester-region", "us-east-1", "--accepter-vpc", "vpc-0cccccccc",
        "--accepter-region", "eu-west-1", "--dns", "--dry-run", "--adopt",
    )  # fmt: skip

    # Then the execution's input is the file with the flags over it
    assert started.code == 0, started.err
    described = emu.client("stepfunctions").describe_execution(executionArn=started.out.strip())
    assert json.loads(described["input"]) == {
        "Requester": {"VpcId": "vpc-0bbbbbbbb", "AccountId": "123456789012", "Region": "us-east-1"},
        "Accepter": {"VpcId": "vpc-0cccccccc", "Region": "eu-west-1"},
        "Tags": {"Name": "A-B"},
        "DnsResolution": True,
        "DryRun": True,
        "Adopt": True,
    }


def test_reconcile_runs_the_reconcile_machine_with_its_scope(cli: Cli, emu: EmulatorHandle) -> None:
    # Given a group no VPC is in
    # When reconciled
    ran = cli("--output", "json", "reconcile", "--group", "cli-test-empty")

    # Then it had nothing to do, and the group is said unknown (exit 1), its report printed
    assert ran.code == 1, ran.err
    assert "group 'cli-test-empty' has no pair to reconcile" in ran.err
    report = ran.json()
    assert report["Scope"]["Group"] == "cli-test-empty"
    assert report["Desired"] == 0
    assert report["FailedCount"] == 0

    # When one VPC's reconcile is started without waiting
    started = cli("--no-wait", "reconcile", "--vpc", "vpc-0dddddddd", "--region", "us-east-1")

    # Then its input names the VPC and its region
    assert started.code == 0, started.err
    described = emu.client("stepfunctions").describe_execution(executionArn=started.out.strip())
    assert json.loads(described["input"]) == {
        "Vpc": {"VpcId": "vpc-0dddddddd", "Region": "us-east-1"}
    }


def test_tool_errors_are_one_line_and_usage_errors_exit_2(cli: Cli) -> None:
    # Given a stack that is not there, a create missing a VPC, and no endpoint credentials
    # When run
    no_stack = cli("--stack-name", "not-deployed", "cleanup", "pcx-0123456789abcdef0")
    no_vpc = cli("create", "--accepter-vpc", "vpc-0aaaaaaaa")
    bad_choice = cli("--output", "yaml", "list")

    # Then the missing machine is named in one line (exit 1); misuse exits 2 with the usage
    assert no_stack.code == 1
    assert no_stack.err.strip().count("\n") == 0
    assert "not-deployed-cleanup" in no_stack.err
    assert no_vpc.code == 2
    assert "--requester-vpc is required" in no_vpc.err
    assert bad_choice.code == 2
    assert "usage: vpc-peering" in bad_choice.err


def _tagged_mesh(emu: EmulatorHandle, group: str, count: int, first: int) -> list[str]:
    admit(emu, [group], [emu.account_id])
    ec2 = emu.client("ec2")
    vpcs = [
        str(ec2.create_vpc(CidrBlock=f"10.{first + i}.0.0/16")["Vpc"]["VpcId"])
        for i in range(count)
    ]
    ec2.create_tags(Resources=vpcs, Tags=[{"Key": "vpc-peering:mesh", "Value": group}])
    return vpcs


def test_reconcile_dry_run_prints_the_plan_and_changes_nothing(
    cli: Cli, emu: EmulatorHandle
) -> None:
    # Given three VPCs tagged into a mesh
    vpcs = _tagged_mesh(emu, "cli-plan", 3, 201)
    # When a dry run is asked for
    ran = cli("reconcile", "--group", "cli-plan", "--dry-run")
    # Then it prints the plan: each pair with its action and reason
    assert ran.code == 0, ran.err
    assert "Plan (dry run, nothing changed) for" in ran.out
    assert "Would do (create 3)" in ran.out
    assert ran.out.count("vpc-peering:mesh=cli-plan on both VPCs") == 3
    assert all(vpc in ran.out for vpc in vpcs)
    # And nothing was made
    peerings = emu.client("ec2").describe_vpc_peering_connections(
        Filters=[{"Name": "requester-vpc-info.vpc-id", "Values": vpcs}]
    )["VpcPeeringConnections"]
    assert peerings == []


def test_reconcile_shows_rounds_and_pairs_while_it_runs(cli: Cli, emu: EmulatorHandle) -> None:
    # Given four VPCs tagged into a mesh (three rounds of two pairs)
    vpcs = _tagged_mesh(emu, "cli-rounds", 4, 211)
    # When reconciled, its output in a pipe
    ran = cli("reconcile", "--group", "cli-rounds")
    # Then the rounds and the pairs done are shown as they go, then the pairs created
    assert ran.code == 0, ran.err
    assert "round 1 of 3" in ran.out, ran.out
    assert "pairs done" in ran.out
    assert "Created" in ran.out
    assert all(vpc in ran.out for vpc in vpcs)


def test_create_with_allow_adds_the_rule_and_prints_the_warnings_after_the_checks(
    cli: Cli, emu: EmulatorHandle, make_vpc: Callable[[str], str]
) -> None:
    # Given two VPCs and a database group in the accepter
    ec2 = emu.client("ec2")
    app, db = make_vpc("10.88.0.0/16"), make_vpc("172.29.0.0/16")
    db_sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=db)["GroupId"]

    # When created with --allow, in text
    made = cli(
        "create", "--requester-vpc", app, "--accepter-vpc", db,
        "--allow", f"Accepter:{db_sg}:tcp:5432",
    )  # fmt: skip

    # Then the rule is there, listed, and the warnings follow the checks, each with what to do
    assert made.code == 0, made.err
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [db_sg]}])
    assert [r.get("CidrIpv4") for r in rules["SecurityGroupRules"] if not r["IsEgress"]] == [
        "10.88.0.0/16"
    ]
    assert f"{db_sg}  Accepter  tcp 5432  from 10.88.0.0/16  created" in made.out
    assert made.out.index("Verification: ok") < made.out.index("Warnings (")
    assert f"{app} has no flow logs" in made.out
    assert "aws ec2 create-flow-logs" in made.out
