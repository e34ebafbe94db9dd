"""`make smoke-aws` (tools/smoke_aws.py) against the local emulator, so that the real-account
check never rots: the same script, with ``--endpoint-url`` instead of a deployed stack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "smoke_aws.py"
RUN_TAG = "vpc-peering-smoke:run"
REGIONS = ("us-east-1", "us-west-2")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    # A short tag window: the mesh forms in seconds rather than the default 20 s + settle
    with running_emulator(parameter_overrides={"TagEventWindowSeconds": "2"}) as handle:
        yield handle


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def tagged_vpcs(emu: EmulatorHandle) -> list[str]:
    return [
        v["VpcId"]
        for region in REGIONS
        for v in emu.client("ec2", region).describe_vpcs(
            Filters=[{"Name": "tag-key", "Values": [RUN_TAG]}]
        )["Vpcs"]
    ]


def test_the_smoke_run_on_the_emulator_reports_every_measure_and_leaves_nothing(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    # Given the emulator with the stack deployed, and a VPC the script did not make
    theirs = emu.client("ec2").create_vpc(CidrBlock="10.200.0.0/16")["Vpc"]["VpcId"]
    report_file = tmp_path / "smoke.json"

    # When the smoke run is pointed at it
    done = smoke(
        "--endpoint-url",
        emu.endpoint,
        "--profile",
        "x",
        "--region",
        "us-east-1",
        "--yes-create-resources",
        "--report",
        str(report_file),
        "--timeout",
        "180",
    )

    # Then it succeeded, printed its plan and cost estimate first, and its report has every
    # measure the issue asks for
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.index("It will create") < done.stdout.index("Estimated cost")
    assert done.stdout.index("Estimated cost") < done.stdout.index("== deploy")
    report: dict[str, Any] = json.loads(report_file.read_text())
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == [
        "deploy",
        "tag events",
        "seed scenario",
        "cross-region pair",
        "tag mesh",
        "cold starts",
        "teardown",
    ]
    for scenario in ("seed", "cross_region"):
        part = report[scenario]
        assert part["create"]["status"] == "SUCCEEDED"
        assert {"Plan", "CreatePeering", "AddRoutes", "Verify"} <= set(part["create"]["states"])
        assert part["cleanup"]["status"] == "SUCCEEDED"
        assert all(side["status"] == "active" for side in part["verified"].values())
        assert all(not side["routes"] for side in part["gone"].values())
    mesh = report["mesh"]
    assert len(mesh["tag_to_routed_seconds"]) == 3
    assert mesh["all_routed_seconds"] > 0
    assert mesh["untag_to_removed_seconds"] >= 0
    assert mesh["reconciles"]
    assert all(r["status"] != "RUNNING" for r in mesh["reconciles"])
    assert "GroupPolicyParameterName" in mesh["group_policy"] or "policy" in mesh["group_policy"]
    assert report["tag_events"]["create_tags_emit_event"] is True
    assert report["tag_events"]["create_vpc_tags_emit_event"] is True  # the emulator's answer
    assert report["cold_starts"]["available"] is False  # no CloudWatch Logs here
    # And it deleted what it made, and only that
    assert report["teardown"]["errors"] == []
    assert len(report["teardown"]["deleted"]["vpcs"]) == 8
    assert report["teardown"]["deleted"]["stacks"] == []  # the emulator's stack is not its own
    assert tagged_vpcs(emu) == []
    assert emu.client("ec2").describe_vpcs(VpcIds=[theirs])["Vpcs"]


def test_it_refuses_to_start_without_profile_region_and_consent(emu: EmulatorHandle) -> None:
    emu.reset_calls()
    for missing in ("--profile", "--region", "--yes-create-resources"):
        args = {
            "--profile": ["--profile", "x"],
            "--region": ["--region", "us-east-1"],
            "--yes-create-resources": ["--yes-create-resources"],
        }
        del args[missing]
        done = smoke("--endpoint-url", emu.endpoint, *(a for flag in args.values() for a in flag))
        assert done.returncode == 2
        assert missing in done.stderr
    assert emu.calls() == []  # nothing was called, let alone created


def test_cleanup_only_deletes_every_tagged_leftover_and_is_idempotent(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    # Given leftovers of an interrupted run (tagged VPCs with a subnet, in both regions) and
    # an untagged VPC
    leftovers = []
    for region in REGIONS:
        ec2 = emu.client("ec2", region)
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": RUN_TAG, "Value": "interrupted"}]}]
        vpc = ec2.create_vpc(CidrBlock="10.210.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
        subnet_tags = [{"ResourceType": "subnet", "Tags": tags[0]["Tags"]}]
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.210.1.0/24", TagSpecifications=subnet_tags)
        leftovers.append(vpc)
    theirs = emu.client("ec2").create_vpc(CidrBlock="10.211.0.0/16")["Vpc"]["VpcId"]
    common = ["--endpoint-url", emu.endpoint, "--profile", "x", "--region", "us-east-1"]

    # When --cleanup-only runs twice
    first = smoke(
        *common, "--yes-create-resources", "--cleanup-only", "--report", str(tmp_path / "1")
    )
    second = smoke(
        *common, "--yes-create-resources", "--cleanup-only", "--report", str(tmp_path / "2")
    )

    # Then the first deleted the tagged VPCs, the second found nothing, and neither failed
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert sorted(json.loads((tmp_path / "1").read_text())["deleted"]["vpcs"]) == sorted(leftovers)
    assert json.loads((tmp_path / "2").read_text())["deleted"]["vpcs"] == []
    assert tagged_vpcs(emu) == []
    assert emu.client("ec2").describe_vpcs(VpcIds=[theirs])["Vpcs"]


def test_a_failed_run_still_deletes_what_it_made_by_its_tags(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    # Given EC2 refusing the script's untag of the mesh (the mesh is formed, then stuck)
    emu.add_fault("ec2", "DeleteTags", "UnauthorizedOperation", times=0)
    report_file = tmp_path / "failed.json"

    # When the smoke run goes
    try:
        done = smoke(
            "--endpoint-url",
            emu.endpoint,
            "--profile",
            "x",
            "--region",
            "us-east-1",
            "--yes-create-resources",
            "--report",
            str(report_file),
            "--timeout",
            "180",
        )
    finally:
        emu.clear_faults()

    # Then it failed at the mesh, and its teardown removed the mesh's routes and peerings and
    # every VPC it made, by their tags
    assert done.returncode == 1, done.stdout[-3000:]
    report: dict[str, Any] = json.loads(report_file.read_text())
    failed = [s["name"] for s in report["steps"] if not s["ok"]]
    assert failed == ["tag mesh"], report["steps"]
    deleted = report["teardown"]["deleted"]
    assert len(deleted["peerings"]) == 3
    assert len(deleted["routes"]) == 6
    assert len(deleted["vpcs"]) == 8
    assert tagged_vpcs(emu) == []
