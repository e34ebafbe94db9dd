"""`make local` (or what it runs) as a user starts it: its own process, on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_local(command: list[str], port: int, log: Path) -> Iterator[dict[str, Any]]:
    """Run ``command`` (listening on ``port``) in its own process group, its output to ``log``;
    yield the emulator's info once it has deployed; then stop the whole group."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    info: dict[str, Any] | None = None
    while info is None:
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGTERM)
            pytest.fail(f"make local did not come up:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_emulator/info", timeout=2) as response:  # noqa: S310
                info = json.load(response)
        except OSError:
            time.sleep(0.2)
    try:
        yield info
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # make may outlive the emulator's own shutdown under load; never leave it running.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
