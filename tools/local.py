"""`make local`: the emulator with the stack deployed, and the member forwarding template in
every other managed account and region (``tools.members``), so that tagging a VPC anywhere in
scope reaches the hub as it would on AWS. Takes the emulator's own options."""

from __future__ import annotations

import json
import os
import sys

from emulator.__main__ import DEFAULT_ACCOUNT_ID, main, parse_args, parse_overrides

from .members import forwarding_stacks


def local_argv(argv: list[str]) -> list[str]:
    """The emulator's arguments, with an ``--extra-stack`` per member forwarding stack."""
    args = parse_args(argv)
    overrides = parse_overrides(args.parameter_overrides)
    stacks = forwarding_stacks(overrides, DEFAULT_ACCOUNT_ID, args.region, args.stack_name)
    return argv + [arg for stack in stacks for arg in ("--extra-stack", json.dumps(stack))]


if __name__ == "__main__":
    code = main(local_argv(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as python -m emulator: waiting executions must not hold the process
