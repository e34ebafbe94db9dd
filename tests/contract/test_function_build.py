"""The functions' build (functions/Makefile, which sam build runs for each function): the package
with its bytecode, so that a cold start on Lambda (a read-only code directory, where Python
cannot keep what it compiles) does not compile every module it imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_is_built_by_the_makefile() -> None:
    # Given the template
    template = load_yaml((ROOT / "template.yaml").read_text())
    # When its functions are listed
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # Then each is built by functions/Makefile (sam build's makefile method)
    assert functions
    unbuilt = [
        name
        for name, resource in functions.items()
        if (resource.get("Metadata") or {}).get("BuildMethod") != "makefile"
    ]
    assert unbuilt == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_built_package_carries_bytecode_checked_by_hash(tmp_path: Path) -> None:
    # Given functions/Makefile, run as sam build runs it (in a copy of the code directory)
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "functions", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # When a function is built
    subprocess.run(
        ["make", "-s", "build-PlanFunction", f"ARTIFACTS_DIR={artifacts}"],
        cwd=source,
        env=env,
        check=True,
        capture_output=True,
    )
    # Then every module has its bytecode beside it, for Python 3.13, checked by hash (a zip
    # keeps no exact file times) and never against the source (Lambda's files do not change)
    modules = sorted((artifacts / "vpc_peering").rglob("*.py"))
    assert len(modules) == len(list((ROOT / "functions" / "vpc_peering").rglob("*.py")))
    for module in modules:
        compiled = module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
        assert compiled.is_file(), compiled
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{compiled.name}: flags {flags:#b} (want hash-based, unchecked)"
