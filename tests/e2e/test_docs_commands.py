"""The newcomer's path: the documents' shell commands, as written, against `make local`.

Every ```bash block of README.md, docs/local-emulator.md and docs/events.md runs, in that order,
in one bash session, against `make local` started with the parameters docs/local-emulator.md
gives for two accounts and two regions, except the blocks the README says are not for the
emulator: a first line `# on AWS` or `# your ids`, or a `make` command (the set-up itself). The
only change made to them is the port: the documents say 4566, the test takes a free one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .local_process import ROOT, free_port, running_local

DOCUMENTS = ("README.md", "docs/local-emulator.md", "docs/events.md")
# As docs/local-emulator.md starts it for two accounts and two regions.
PARAMETERS = (
    "AllowedAccountIds=123456789012,111111111111",
    "TrustedRequesterAccountIds=123456789012,111111111111",
    "ManagedRegions=us-east-1,us-west-2",
    "TagEventWindowSeconds=5",
)
DOCUMENTED_ENDPOINT = "http://127.0.0.1:4566"
pytestmark = pytest.mark.e2e


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def for_the_emulator(block: str) -> bool:
    """A block the README says runs as written against `make local` with its exports."""
    first = block.lstrip().splitlines()[0] if block.strip() else ""
    if first.startswith(("# on AWS", "# your ids")):
        return False
    return not any(re.match(r"\s*make\b", line) for line in block.splitlines())


def newcomer_script(root: Path = ROOT) -> str:
    blocks = [
        block
        for document in DOCUMENTS
        for block in bash_blocks((root / document).read_text())
        if for_the_emulator(block)
    ]
    return "\n".join(blocks)


def test_the_documents_mark_what_is_not_for_the_emulator() -> None:
    # Given the documents' bash blocks
    script = newcomer_script()

    # Then the blocks that run include the exports, the member account and the mesh, and no
    # command that deploys to AWS or names a placeholder id
    assert "export AWS_ENDPOINT_URL=" + DOCUMENTED_ENDPOINT in script
    assert "member aws ec2 create-tags" in script
    assert "aws sns subscribe" in script
    assert "cloudformation deploy" not in script
    assert "vpc-0abc..." not in script
    assert not re.search(r"^\s*make\b", script, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make local PARAMETERS=...` (what it runs: `python -m tools.local`) on a free port, in its
    own process group; its endpoint once deployed."""
    port = free_port()
    log = tmp_path_factory.mktemp("local") / "local.log"
    command = [
        sys.executable, "-m", "tools.local", "--port", str(port),
        "--log-file", str(log.with_name("emulator.log")),
        "--parameter-overrides", *PARAMETERS,
    ]  # fmt: skip
    with running_local(command, port, log):
        yield f"http://127.0.0.1:{port}"


def test_the_documents_commands_run_as_written_on_make_local(local: str, tmp_path: Path) -> None:
    # Given the documents' commands, in a shell with the tools of .venv/bin on PATH and no AWS
    # settings of the machine's own
    script = newcomer_script().replace(DOCUMENTED_ENDPOINT, local)
    tools = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key == "AWS_CONFIG_FILE"
    }
    env.update({"PATH": f"{tools}:{env.get('PATH', '')}", "AWS_PAGER": "", "NO_COLOR": "1"})
    assert shutil.which("aws", path=env["PATH"]), "the AWS CLI is not installed"

    # When they run one after the other, stopping at the first failure
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # Then every one succeeded, and they did what the documents say
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    out = done.stdout
    assert "arn:aws:sts::111111111111:assumed-role/VpcPeeringMemberRole/newcomer" in out
    assert "Group blue: 4 VPC(s), 6 pair(s) (6 active" in out
    assert "VPC peering join refused: VPC vpc-" in out
    assert "group red is not in the group policy" in out
