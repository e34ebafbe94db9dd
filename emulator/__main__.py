"""``python -m emulator``: serve moto on 127.0.0.1 with the stack deployed from template.yaml.

Order matters: bind the port first (``--port 0`` picks a free one), export ``MOTO_PORT`` (moto's
Step Functions interpreter calls ``http://localhost:$MOTO_PORT``), serve, deploy through the
API (the stack, then any ``--extra-stack``), start the schedule timer, then announce (stdout and
``--ready-file``) and serve until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator import (
    console,
    ec2_fixes,
    ec2_limits,
    event_delivery,
    lambda_runtime,
    moto_fixes,
    sfn_integration,
    sfn_strict,
    stacks,
    stale_security_groups,
    tag_events,
)
from emulator.deploy import DeployedStack
from emulator.faults import FaultInjector, FaultRule, PeeringStatusForcer
from emulator.schedules import Scheduler
from emulator.server import HOST, configure_moto, create_server
from emulator.session_policies import SessionPolicies
from emulator.stacks import StackControl
from emulator.template import TemplateError

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=4566, help="0: any free port")
    parser.add_argument("--stack-name", default="vpc-peering")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter values, e.g. TrustedRequesterAccountIds=111111111111",
    )
    parser.add_argument("--ready-file", type=Path, help="write the endpoint and ARNs here (JSON)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERVICE:OPERATION:ERROR_CODE[:NTH[:TIMES]]",
        help="fail the NTH call (TIMES times; 0: always) of an operation, e.g. "
        "ec2:CreateRoute:UnauthorizedOperation:2",
    )
    parser.add_argument(
        "--schedule-time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="divide every schedule period by F (3600: rate(1 hour) fires every second)",
    )
    parser.add_argument(
        "--extra-stack",
        action="append",
        default=[],
        metavar="JSON",
        help='also deploy a template into an account and region, e.g. \'{"template": '
        '"member.yaml", "stack_name": "member", "account_id": "111111111111", "region": '
        '"eu-west-1", "parameters": {"HubBusArn": "..."}}\' (as POST /_emulator/stacks)',
    )
    parser.add_argument(
        "--ec2-quota",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="raise (or lower) an EC2 quota from AWS's default: active_peerings_per_vpc (50), "
        "outstanding_requests_per_vpc (25), routes_per_table (50)",
    )
    parser.add_argument(
        "--ec2-throttling",
        action="store_true",
        help="answer RequestLimitExceeded as EC2's documented token buckets would (per action, "
        "account and region)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="handler output, moto's logs and tracebacks go here; the console has one line per "
        "execution and per failure (make local: .local/emulator.log)",
    )
    args = parser.parse_args(argv)
    if args.schedule_time_scale <= 0:
        parser.error("--schedule-time-scale must be > 0")
    return args


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--parameter-overrides: expected KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


def parse_quotas(pairs: list[str]) -> dict[str, int]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not value.isdigit():
            raise SystemExit(f"--ec2-quota: expected NAME=INTEGER, got {pair!r}")
        values[name] = int(value)
    return values


def ready_info(stack: DeployedStack, endpoint: str) -> dict[str, Any]:
    """The ready file's content: what was deployed, by logical id."""
    return {
        "endpoint": endpoint,
        "stack_name": stack.stack_name,
        "region": stack.region,
        "account_id": stack.account_id,
        "event_bus_name": next(iter(stack.event_buses.values()), None),
        "functions": stack.functions,
        "state_machines": stack.state_machines,
        "event_buses": stack.event_buses,
        "rules": stack.rules,
        "schedules": stack.schedules,
        "outputs": stack.outputs,
        "stacks": [stacks.summary(s) for s in stacks.deployed()],
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.log_file:
        console.install(args.log_file)
    else:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
    for noisy in ("werkzeug", "botocore"):  # no line per request or per client
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides = parse_overrides(args.parameter_overrides)

    configure_moto()
    moto_fixes.install()
    sfn_integration.install()
    sfn_strict.install()
    ec2_fixes.install()
    stale_security_groups.install()
    lambda_runtime.install()
    event_delivery.install()
    tag_events.install()
    stacks.install()
    quotas = ec2_limits.install()
    try:
        quotas.set(parse_quotas(args.ec2_quota), None, None)
    except ValueError as exc:
        raise SystemExit(f"--ec2-quota: {exc}") from exc
    server, app = create_server(args.port)
    injector = FaultInjector()
    try:
        for spec in args.fault:
            injector.add(FaultRule.parse(spec))
    except ValueError as exc:
        raise SystemExit(f"--fault: {exc}") from exc
    port = server.server_port
    endpoint = f"http://{HOST}:{port}"
    os.environ["MOTO_PORT"] = str(port)
    threading.Thread(target=server.serve_forever, name="server", daemon=True).start()

    control = StackControl(
        endpoint, DEFAULT_ACCOUNT_ID, args.region, _environment_installer(endpoint, args.region)
    )
    try:
        stack = control.deploy(
            template=args.template,
            stack_name=args.stack_name,
            account_id=DEFAULT_ACCOUNT_ID,
            region=args.region,
            parameters=overrides,
        )
    except (TemplateError, ValueError, OSError) as exc:
        print(f"emulator: cannot deploy {args.template}: {exc}", file=sys.stderr, flush=True)
        server.shutdown()
        return 1
    for spec in args.extra_stack:
        status, result = control.control("POST", spec.encode())
        if status != 201:
            print(f"emulator: --extra-stack {spec}: {result}", file=sys.stderr, flush=True)
            server.shutdown()
            return 1
    app.reset_calls()  # the deployment's own calls are not the application's
    sessions = SessionPolicies()
    app.before_request_hooks.append(sessions)  # IAM's answer comes before any injected fault
    app.control_handlers["session-policies"] = sessions.control
    app.before_request_hooks.append(injector)  # faults count the application's calls only
    app.control_handlers["faults"] = injector.control
    throttle = ec2_limits.Ec2Throttle(enabled=args.ec2_throttling)
    app.before_request_hooks.append(throttle)  # after faults: an injected fault takes no token
    app.control_handlers["ec2-throttling"] = throttle.control
    app.control_handlers["ec2-quotas"] = quotas.control
    forcer = PeeringStatusForcer()
    forcer.install()  # peering statuses moto never produces, on request only
    app.control_handlers["peering-status"] = forcer.control
    app.control_handlers["stacks"] = control.control
    app.control_handlers["events/refused"] = event_delivery.control_refused
    scheduler = Scheduler(args.schedule_time_scale, logical_ids=stacks.rule_locations)
    app.control_handlers["schedules"] = scheduler.control_list
    app.control_handlers["schedules/fire"] = scheduler.control_fire
    scheduler.start()

    info = ready_info(stack, endpoint)
    app.info = info
    _announce(info, args.log_file)
    if args.ready_file:
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
        tmp.replace(args.ready_file)  # atomic: readers never see half a file

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    print("emulator: stopping", flush=True)
    server.shutdown()
    return 0


def _environment_installer(endpoint: str, region: str) -> Callable[[DeployedStack], None]:
    """After each deployment: the environment of every deployed function, in ``os.environ``
    (one process: a variable two functions disagree on is a ValueError)."""

    def install(_: DeployedStack) -> None:
        environments: dict[str, dict[str, str]] = {}
        for deployed in stacks.deployed():
            environments.update(deployed.function_environments)
        lambda_runtime.install_environment(environments, endpoint=endpoint, region=region)

    return install


def _announce(info: dict[str, Any], log_file: Path | None = None) -> None:
    endpoint = info["endpoint"]
    lines = [
        f"emulator: serving on {endpoint}",
        f"  stack:          {info['stack_name']} ({info['region']}, account {info['account_id']})",
        *(f"  state machine:  {arn} ({name})" for name, arn in info["state_machines"].items()),
        f"  event bus:      {info['event_bus_name']}",
        f"  functions:      {', '.join(info['functions'].values()) or '-'}",
        *(
            f"  also deployed:  {s['stack_name']} ({s['region']}, account {s['account_id']})"
            for s in info["stacks"][1:]
        ),
    ]
    if log_file is not None:
        lines.append(
            f"  log:            {log_file} (handler output, moto's logs, tracebacks); here: "
            "one line per execution and per failure"
        )
    machine = next(iter(info["state_machines"].values()), "")
    if machine:
        lines += [
            "  try:",
            f"    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url "
            f"{endpoint} --region {info['region']} stepfunctions start-execution "
            f"--state-machine-arn {machine} --input file://input.json",
            "    (input.json: the execution input; sample inputs name placeholder ids: put your "
            "own in)",
        ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    # os._exit: executions still waiting for a task token are non-daemon moto threads; a dev
    # server must not hang on them at Ctrl-C.
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
