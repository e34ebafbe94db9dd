"""``python -m emulator``: serve moto on 127.0.0.1 with the stack deployed from template.yaml.

Order matters: bind the port first (``--port 0`` picks a free one), export ``MOTO_PORT`` (moto's
Step Functions interpreter calls ``http://localhost:$MOTO_PORT``), serve, deploy through the
API, then announce (stdout and ``--ready-file``) and serve until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from emulator import event_delivery, lambda_runtime, moto_fixes
from emulator.deploy import DeployedStack, deploy
from emulator.faults import FaultInjector, FaultRule, PeeringStatusForcer
from emulator.server import HOST, configure_moto, create_server
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
    return parser.parse_args(argv)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--parameter-overrides: expected KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


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
        "outputs": stack.outputs,
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("werkzeug", "botocore"):  # no line per request or per client
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides = parse_overrides(args.parameter_overrides)

    configure_moto()
    moto_fixes.install()
    lambda_runtime.install()
    event_delivery.install()
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

    try:
        stack = deploy(
            args.template,
            endpoint=endpoint,
            stack_name=args.stack_name,
            region=args.region,
            account_id=DEFAULT_ACCOUNT_ID,
            parameter_overrides=overrides,
        )
        lambda_runtime.install_environment(
            stack.function_environments, endpoint=endpoint, region=args.region
        )
    except (TemplateError, ValueError, OSError) as exc:
        print(f"emulator: cannot deploy {args.template}: {exc}", file=sys.stderr, flush=True)
        server.shutdown()
        return 1
    app.reset_calls()  # the deployment's own calls are not the application's
    app.before_request_hooks.append(injector)  # faults count the application's calls only
    app.control_handlers["faults"] = injector.control
    forcer = PeeringStatusForcer()
    forcer.install()  # peering statuses moto never produces, on request only
    app.control_handlers["peering-status"] = forcer.control

    info = ready_info(stack, endpoint)
    app.info = info
    _announce(info)
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


def _announce(info: dict[str, Any]) -> None:
    endpoint = info["endpoint"]
    lines = [
        f"emulator: serving on {endpoint}",
        f"  stack:          {info['stack_name']} ({info['region']}, account {info['account_id']})",
        *(f"  state machine:  {arn} ({name})" for name, arn in info["state_machines"].items()),
        f"  event bus:      {info['event_bus_name']}",
        f"  functions:      {', '.join(info['functions'].values()) or '-'}",
    ]
    machine = next(iter(info["state_machines"].values()), "")
    if machine:
        lines += [
            "  try:",
            f"    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url "
            f"{endpoint} --region {info['region']} stepfunctions start-execution "
            f"--state-machine-arn {machine} --input file://input.json",
        ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    # os._exit: executions still waiting for a task token are non-daemon moto threads; a dev
    # server must not hang on them at Ctrl-C.
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
