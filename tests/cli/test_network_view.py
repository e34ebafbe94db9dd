"""``vpc-peering status``, ``list`` and ``graph`` against the emulator: a mesh over two accounts
and two regions and a peering made by an explicit create, read by the hub with the stack's
roles (the caller's credentials are the hub's, in one region only). The HTML graph is opened
in a real headless browser (Debian's chromium; `make test` installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.executions import run_execution
from emulator.testing import EmulatorHandle, running_emulator
from tools.policy import write_policy

COMMAND = Path(sys.executable).with_name("vpc-peering")
ROOT = Path(__file__).resolve().parents[2]
HUB, MEMBER = "123456789012", "111111111111"
REGIONS = ("us-east-1", "us-west-2")
#: What EC2 can carry in a tag (its XML answers cannot carry C0 controls such as ESC): a C1
#: control (CSI), a bidi override and a line separator.
HOSTILE_NAME = "evil\u009b31m\u202eredaeh\u2028x"
PARAMETERS = {
    "AllowedAccountIds": f"{HUB},{MEMBER}",
    "TrustedRequesterAccountIds": f"{HUB},{MEMBER}",
    "ManagedRegions": ",".join(REGIONS),
    "TagEventWindowSeconds": "1",
    "ReconcileSchedule": "rate(1 hour)",
}


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Mesh:
    emu: EmulatorHandle
    members: list[tuple[str, str, str]]  # (account, region, vpc id)
    names: dict[str, str]
    explicit: str  # the explicit peering's id
    explicit_vpcs: tuple[str, str]

    def cli(self, *args: str) -> Ran:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # This checkout's code, whichever checkout the command was installed from.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        argv = [str(COMMAND), "--endpoint-url", self.emu.endpoint, *args]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Four VPCs in mesh "blue" (two accounts x two regions), reconciled; two more in the hub
    peered by an explicit create."""
    with running_emulator(parameter_overrides=PARAMETERS) as emu:
        # The hub's group policy admits "blue" from both accounts.
        write_policy(emu, {"Groups": {g: {"Accounts": [HUB, MEMBER]} for g in ("blue", "green")}})
        members, names = [], {}
        for index, (account, region) in enumerate(
            [(a, r) for a in (HUB, MEMBER) for r in REGIONS], start=1
        ):
            ec2 = emu.account_client("ec2", account, region)
            vpc_id = ec2.create_vpc(CidrBlock=f"10.{40 + index}.0.0/16")["Vpc"]["VpcId"]
            name = HOSTILE_NAME if index == 4 else f"app-{index}"
            ec2.create_tags(
                Resources=[vpc_id],
                Tags=[{"Key": "Name", "Value": name}, {"Key": "vpc-peering:mesh", "Value": "blue"}],
            )
            members.append((account, region, vpc_id))
            names[vpc_id] = name
        sfn = emu.client("stepfunctions")
        reconciled = run_execution(
            sfn, emu.state_machine_arn("ReconcileStateMachine"), {}, timeout=240
        )
        assert reconciled.status == "SUCCEEDED", (reconciled.error, reconciled.cause)
        ec2 = emu.client("ec2")
        a = ec2.create_vpc(CidrBlock="172.30.0.0/16")["Vpc"]["VpcId"]
        b = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
        made = run_execution(
            sfn,
            emu.state_machine_arn("CreateStateMachine"),
            {"Requester": {"VpcId": a}, "Accepter": {"VpcId": b}},
            timeout=120,
        )
        assert made.status == "SUCCEEDED", (made.error, made.cause)
        yield Mesh(emu, members, names, made.output["VpcPeeringConnectionId"], (a, b))


def test_status_shows_every_member_the_matrix_the_explicit_peering_and_the_last_reconcile(
    mesh: Mesh,
) -> None:
    # When the status is asked for, in a pipe
    ran = mesh.cli("status")

    # Then each member of every account and region is listed with its Name, account, region
    # and CIDR, the matrix says every pair is active, and nothing is raw terminal control
    assert ran.code == 0, ran.err
    assert "Group blue: 4 VPC(s), 6 pair(s) (6 active, routed both ways)" in ran.out
    for account, region, vpc_id in mesh.members:
        row = next(line for line in ran.out.splitlines() if vpc_id in line)
        assert account in row
        assert region in row
    assert "app-1" in ran.out
    matrix = [line.split() for line in ran.out.splitlines() if re.match(r"^    [1-4] ", line)]
    assert [cells[1:] for cells in matrix] == [
        ["·", "A", "A", "A"], ["A", "·", "A", "A"], ["A", "A", "·", "A"], ["A", "A", "A", "·"]
    ]  # fmt: skip
    for raw in ("\x1b", "\u009b", "\u202e", "\u2028"):
        assert raw not in ran.out
    assert "evil\\x9b31m\\u202eredaeh\\u2028x" in ran.out
    assert "Peerings made by explicit creates" in ran.out
    assert mesh.explicit in ran.out
    assert re.search(r"Last reconcile: \S+ SUCCEEDED, started .* \(Desired 6, ", ran.out)
    assert "Sweep: rate(1 hour)" in ran.out


def test_status_json_and_one_group_and_unknown_names(mesh: Mesh) -> None:
    # When asked in JSON, for one group, for a group nobody is in, and of a stack not there
    data = mesh.cli("--output", "json", "status", "--group", "blue").json()
    nosuch = mesh.cli("status", "--group", "nosuch")
    no_stack = mesh.cli("--stack-name", "nosuch", "status")

    # Then the JSON has the members, pairs and last reconcile; the unknown ones are said so
    assert {v["VpcId"] for v in data["Vpcs"]} == {m[2] for m in mesh.members}
    assert {p["State"] for p in data["Pairs"]} == {"active"}
    assert data["LastReconcile"]["Status"] == "SUCCEEDED"
    assert nosuch.code == 1
    assert "no VPC is tagged into group 'nosuch'" in nosuch.err
    assert no_stack.code == 1
    assert "no stack nosuch in us-east-1" in no_stack.err


def test_list_shows_every_managed_peering_wherever_it_is(mesh: Mesh) -> None:
    # When the peerings are listed by a caller in us-east-1 of the hub
    listed = mesh.cli("--output", "json", "list")
    table = mesh.cli("list")

    # Then all six of the mesh (three locations other than the caller's) and the explicit one
    peerings = listed.json()
    assert len([p for p in peerings if p["Group"] == "blue"]) == 6
    assert mesh.explicit in {p["VpcPeeringConnectionId"] for p in peerings}
    regions = {p["Requester"]["Region"] for p in peerings} | {
        p["Accepter"]["Region"] for p in peerings
    }
    assert regions == set(REGIONS)
    assert table.code == 0
    assert len([line for line in table.out.splitlines() if line.startswith("pcx-")]) == 7
    assert "\x1b" not in table.out


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_graph_text_formats_name_every_vpc(mesh: Mesh, fmt: str) -> None:
    ran = mesh.cli("graph", "--format", fmt)
    assert ran.code == 0, ran.err
    for _, _, vpc_id in mesh.members:
        assert vpc_id in ran.out
    assert all(vpc in ran.out for vpc in mesh.explicit_vpcs)
    assert "\x1b" not in ran.out
    assert ("flowchart LR" if fmt == "mermaid" else "graph network {") in ran.out


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_graph_is_self_contained_and_renders_every_vpc_in_a_browser(
    mesh: Mesh, tmp_path: Path
) -> None:
    # Given the HTML graph written to a file
    out = tmp_path / "network.html"
    ran = mesh.cli("graph", "--format", "html", "--out", str(out))
    assert ran.code == 0, ran.err
    page = out.read_text()
    # Then it needs nothing from the network: no script, no external reference
    assert "<script" not in page
    assert not re.search(r"(src|href)=", page)
    assert "\u009b" not in page
    assert "\u202e" not in page

    # When a real browser opens it from disk
    browser = _chromium()
    if browser is None:
        if os.environ.get("VPC_PEERING_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed, and VPC_PEERING_REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (make test installs it where it can)")
    dom = _headless(browser, "--dump-dom", out.as_uri())
    shot = tmp_path / "network.png"
    taken = _headless(browser, f"--screenshot={shot}", "--window-size=1100,900", out.as_uri())

    # Then the rendered page shows every VPC, and a screenshot is taken
    assert dom.returncode == 0, dom.stderr[-2000:]
    for _, _, vpc_id in mesh.members:
        assert f'data-vpc="{vpc_id}"' in dom.stdout
    assert all(vpc in dom.stdout for vpc in mesh.explicit_vpcs)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    if os.environ.get("GRAPH_SCREENSHOT"):
        shutil.copy(shot, os.environ["GRAPH_SCREENSHOT"])


def _sweeps(emu: EmulatorHandle) -> list[dict[str, Any]]:
    sfn = emu.client("stepfunctions")
    machine = emu.state_machine_arn("ReconcileStateMachine")
    found = []
    for listed in sfn.list_executions(stateMachineArn=machine)["executions"]:
        described = sfn.describe_execution(executionArn=listed["executionArn"])
        if json.loads(described["input"]).get("Sweep") is True:
            found.append(described)
    return found


def test_status_says_when_the_next_sweep_runs_and_what_the_last_one_said(mesh: Mesh) -> None:
    # Given no sweep yet: the status says so, and when the schedule will run one
    before = mesh.cli("status")
    assert before.code == 0, before.err
    assert "Last sweep: none yet" in before.out
    assert re.search(r"Sweep: rate\(1 hour\), next about \S+ \(in (\d+ min|1 h)\)", before.out)

    # When the stack's schedule fires (as deployed, wherever the template declares it: its
    # input marks the sweep)
    assert mesh.emu.fire_schedules()["fired"]
    deadline = time.monotonic() + 180
    while not (sweeps := _sweeps(mesh.emu)) or sweeps[0]["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the sweep did not end"
        time.sleep(1)
    [sweep] = sweeps

    # Then text and JSON name the last sweep, its result and counts, and the next one after it
    text = mesh.cli("status")
    data = mesh.cli("--output", "json", "status").json()
    assert sweep["status"] == "SUCCEEDED"
    assert re.search(
        rf"Last sweep: {sweep['name']} SUCCEEDED, started \S+, ended \S+ \(Desired \d+", text.out
    ), text.out
    assert data["Sweep"]["Schedule"] == "rate(1 hour)"
    assert data["Sweep"]["Last"]["Name"] == sweep["name"]
    assert data["Sweep"]["Last"]["Status"] == "SUCCEEDED"
    assert data["Sweep"]["NextExact"] is False
    started = datetime.fromisoformat(data["Sweep"]["Last"]["StartDate"])
    assert datetime.fromisoformat(data["Sweep"]["Next"]) == started + timedelta(hours=1)


def test_explicit_commands_on_a_groups_peering_are_refused_unless_forced(mesh: Mesh) -> None:
    # Given two hub VPCs tagged into group "green" and reconciled (runs last: it changes the
    # network the tests above read)
    ec2 = mesh.emu.client("ec2")
    a = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    b = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[a, b], Tags=[{"Key": "vpc-peering:mesh", "Value": "green"}])
    assert mesh.cli("reconcile", "--group", "green").code == 0
    data = mesh.cli("--output", "json", "status", "--group", "green").json()
    [pair] = data["Pairs"]
    peering_id = pair["VpcPeeringConnectionId"]

    # When an explicit create turns its DNS on, and an explicit cleanup removes it
    create = mesh.cli("create", "--requester-vpc", a, "--accepter-vpc", b, "--dns")
    cleanup = mesh.cli("cleanup", peering_id)

    # Then both are refused with ManagedByGroup naming the group and saying to change the tags
    for refused in (create, cleanup):
        assert refused.code == 1
        assert "ManagedByGroup" in refused.err
        assert "group 'green'" in refused.err
        assert "Change the tags instead" in refused.err
        assert "\x1b" not in refused.out + refused.err

    # When forced
    forced = mesh.cli("cleanup", peering_id, "--force")

    # Then it is removed, and the summary says the next reconcile puts it back
    assert forced.code == 0, forced.err
    assert "Forced over group green: the next reconcile of the group puts this peering" in (
        forced.out
    )


def test_unknown_group_and_errors_naming_flags(mesh: Mesh) -> None:
    # When a reconcile names a group nobody is in, and a create gives a bad CIDR by flag
    nosuch = mesh.cli("reconcile", "--group", "nosuch")
    a, b = mesh.explicit_vpcs
    bad = mesh.cli(
        "create", "--requester-vpc", a, "--accepter-vpc", b,
        "--requester-destination-cidrs", "10.0.0.1/8",
    )  # fmt: skip
    # Then the group is said unknown (exit 1), and the error names the flag the user typed
    assert nosuch.code == 1
    assert "group 'nosuch' has no pair to reconcile" in nosuch.err
    assert bad.code == 1
    assert "--requester-destination-cidrs (Requester.DestinationCidrs" in bad.err
