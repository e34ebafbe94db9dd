"""`make local`: the emulator with the stack deployed, and the member forwarding template in
every other managed account and region (``tools.members``), so that tagging a VPC anywhere in
scope reaches the hub as it would on AWS; the console says one line per execution and per
failure, the rest goes to ``.local/emulator.log``. Takes the emulator's own options."""

from __future__ import annotations

import json
import os
import sys

from emulator.__main__ import DEFAULT_ACCOUNT_ID, main, parse_args, parse_overrides

from .members import forwarding_stacks

#: Where handler output, moto's logs and tracebacks go unless ``--log-file`` says otherwise: the
#: console has one line per execution and per failure (``emulator/console.py``).
LOG_FILE = ".local/emulator.log"


def local_argv(argv: list[str]) -> list[str]:
    """The emulator's arguments, with an ``--extra-stack`` per member forwarding stack and the
    log file."""
    args = parse_args(argv)
    overrides = parse_overrides(args.parameter_overrides)
    stacks = forwarding_stacks(overrides, DEFAULT_ACCOUNT_ID, args.region, args.stack_name)
    log = [] if args.log_file else ["--log-file", LOG_FILE]
    return argv + log + [arg for stack in stacks for arg in ("--extra-stack", json.dumps(stack))]


if __name__ == "__main__":
    code = main(local_argv(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as python -m emulator: waiting executions must not hold the process
