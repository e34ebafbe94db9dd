"""The commands: start a machine (or take a running execution), follow it, report, and say how
it ended as an exit status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from . import render
from .aws import EXIT_FAILED, EXIT_OK, Aws, ToolError, UsageError, connect
from .executions import (
    Outcome,
    Progress,
    describe,
    failure_document,
    follow,
    start_execution,
)
from .graph import render_graph
from .inputs import FieldFlag, name_flags
from .network import read_network
from .peerings import list_managed
from .policy import as_text as policy_text
from .policy import from_tags as policy_from_tags
from .stack import Machine, find_machine, machine_of
from .views import peering_rows, status_lines

Output = Literal["text", "json"]


@dataclass
class Context:
    """The global options, and where to print."""

    stack_name: str
    output: Output
    wait: bool
    stdout: TextIO
    stderr: TextIO
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    _aws: dict[str | None, Aws] = field(default_factory=dict)

    def aws(self, region: str | None = None) -> Aws:
        """The connection, in ``region`` or the one the options and environment give."""
        region = region or self.region
        if region not in self._aws:
            self._aws[region] = connect(self.profile, region, self.endpoint_url)
        return self._aws[region]

    def say(self, line: str = "") -> None:
        self.stdout.write(line + "\n")

    def warn(self, line: str) -> None:
        self.stderr.write(line + "\n")
        self.stderr.flush()

    @property
    def style(self) -> render.Style:
        return render.Style.for_stream(self.stdout)

    def progress(self) -> Progress:
        if self.output == "json":
            return render.Silent()
        return render.StateLines(self.stdout, self.style)


def run_machine(
    ctx: Context,
    machine: Machine,
    execution_input: dict[str, Any],
    ignore_missing: bool = False,
    flags: list[FieldFlag] | None = None,
) -> int:
    """Start the stack's ``machine`` with the input; unless ``--no-wait``, follow it to its end.
    ``flags``: those the command took, named beside the input fields an error names."""
    aws = ctx.aws()
    ref = find_machine(aws, ctx.stack_name, machine)
    sfn = aws.client("stepfunctions")
    execution_arn = start_execution(sfn, ref.arn, execution_input, ref.found_by)
    if not ctx.wait:
        if ctx.output == "json":
            ctx.say(render.to_json({"ExecutionArn": execution_arn}))
        else:
            ctx.say(execution_arn)
        return EXIT_OK
    return _follow_and_report(ctx, sfn, execution_arn, machine, ignore_missing, flags)


def watch(ctx: Context, execution_arn: str, ignore_missing: bool = False) -> int:
    """Follow an execution of any of the machines, running or finished, as if it was started
    here (same lines, summary and exit status)."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[2] != "states" or parts[5] != "execution":
        raise UsageError(
            f"{execution_arn} is not an execution ARN "
            "(arn:aws:states:<region>:<account>:execution:<machine>:<name>)"
        )
    sfn = ctx.aws(region=parts[3]).client("stepfunctions")  # the execution's own region
    state_machine_arn = str(describe(sfn, execution_arn).get("stateMachineArn", ""))
    return _follow_and_report(
        ctx, sfn, execution_arn, machine_of(state_machine_arn), ignore_missing
    )


def _follow_and_report(
    ctx: Context,
    sfn: Any,
    execution_arn: str,
    machine: Machine | None,
    ignore_missing: bool,
    flags: list[FieldFlag] | None = None,
) -> int:
    if ctx.output == "text":
        ctx.say(f"Execution {execution_arn}")
        ctx.stdout.flush()
    try:
        outcome = follow(sfn, execution_arn, ctx.progress())
    except KeyboardInterrupt:
        ctx.warn(
            f"\nStopped following; the execution goes on. Follow it again with:\n"
            f"  vpc-peering watch {execution_arn}"
        )
        raise
    except ToolError as exc:  # e.g. the network went away while a create waited for acceptance
        raise ToolError(
            f"{exc}; the execution may go on: vpc-peering watch {execution_arn}", exc.exit_code
        ) from exc
    document = None
    if not outcome.succeeded and ctx.output == "text":
        document = failure_document(sfn, execution_arn)
    return report(ctx, outcome, machine, ignore_missing, document, flags)


def report(
    ctx: Context,
    outcome: Outcome,
    machine: Machine | None,
    ignore_missing: bool,
    failure_document: dict[str, Any] | None = None,
    flags: list[FieldFlag] | None = None,
) -> int:
    """Print the outcome (summary or JSON); the exit status it means. ``failure_document``:
    what a failed execution ended with (its Fail state's input), summarized before the error."""
    if not outcome.succeeded:
        failure = outcome.failure()
        if ctx.output == "json":
            ctx.say(render.to_json(failure))
            return EXIT_FAILED
        lines = render.failure_summary(machine, failure_document or {}, ctx.style)
        if lines:
            ctx.say()
            for line in lines:
                ctx.say(line)
        ctx.stdout.flush()
        ctx.warn(name_flags(render.failure_line(failure["Error"], failure["Cause"]), flags or []))
        return EXIT_FAILED
    output = outcome.output if isinstance(outcome.output, dict) else {}
    if ctx.output == "json":
        ctx.say(render.to_json(outcome.output))
    else:
        ctx.say()
        for line in _summary(machine, output, ctx.style):
            ctx.say(line)
    ctx.stdout.flush()
    given = output.get("Scope")
    scope: dict[str, Any] = given if isinstance(given, dict) else {}
    if (
        machine == "reconcile"
        and scope.get("Group")
        and not any(
            output.get(k)
            for k in (
                "Desired",
                "Removed",
                "FailedCount",
                "RemovalsHeldCount",
                "PendingApproval",
                "Refused",
            )
        )
    ):
        ctx.warn(
            f"error: group {render.safe(scope['Group'])!r} has no pair to reconcile: no VPC "
            "(or only one) is tagged into it, and no peering of it is left to remove"
        )
        return EXIT_FAILED
    if machine == "cleanup" and render.is_not_found(output):
        peering_id = output.get("VpcPeeringConnectionId")
        if ignore_missing:
            ctx.warn(f"warning: peering {peering_id} was not found; nothing to remove")
            return EXIT_OK
        ctx.warn(
            f"warning: peering {peering_id} was not found (in the stack's account and region, "
            "or where the input says); nothing was removed (--ignore-missing: exit 0)"
        )
        return EXIT_FAILED
    return EXIT_OK


def _summary(machine: Machine | None, output: dict[str, Any], style: render.Style) -> list[str]:
    if machine == "create" or (machine is None and "Verification" in output):
        return render.create_summary(output, style) + render.forced_line(output)
    if machine == "cleanup" or (machine is None and "Removed" in output):
        return render.cleanup_summary(output, style) + render.forced_line(output)
    if machine == "reconcile" or (machine is None and "Desired" in output):
        return render.reconcile_summary(output, style)
    return render.to_json(output).splitlines()


def list_peerings(ctx: Context, include_ended: bool) -> int:
    """Every peering the stack manages, wherever it is (read by the hub with the stack's roles),
    as a table or JSON. ``include_ended``: also those that ended, as the caller's credentials
    see them in the region (EC2 shows ended peerings for a while only)."""
    aws = ctx.aws()
    view = read_network(aws, ctx.stack_name)
    peerings: list[dict[str, Any]] = list(view.status.get("Peerings", []))
    if include_ended:
        known = {p["VpcPeeringConnectionId"] for p in peerings}
        peerings += [
            p
            for p in list_managed(aws, ctx.stack_name, include_ended=True)
            if p["VpcPeeringConnectionId"] not in known
        ]
    if ctx.output == "json":
        ctx.say(render.to_json(peerings))
    elif peerings:
        for line in peering_rows(peerings, indent=""):
            ctx.say(line)
    else:
        accounts = ", ".join(view.status.get("Accounts", []))
        regions = ", ".join(view.status.get("Regions", []))
        ctx.say(
            f"No peering managed by stack {render.safe(ctx.stack_name)} in accounts {accounts}"
            f" and regions {regions}."
        )
    return EXIT_OK


def status(ctx: Context, group: str | None) -> int:
    """The network as the hub reads it: each group's members and pair matrix, the explicit
    peerings, what could not be read, the last reconcile, the last sweep and the next."""
    view = read_network(ctx.aws(), ctx.stack_name, group)
    if ctx.output == "json":
        ctx.say(render.to_json(view.as_json()))
    else:
        for line in status_lines(view, ctx.style):
            ctx.say(line)
    failing = [p for p in view.status.get("Pairs", []) if p.get("State") in ("failed", "refused")]
    return EXIT_FAILED if failing or view.status.get("Failed") else EXIT_OK


def print_policy(ctx: Context) -> int:
    """``policy --from-tags``: the group policy the VPCs' tags ask for today, on stdout (JSON,
    whatever ``--output``), ready for ``aws ssm put-parameter``; how to write it, on stderr."""
    document, parameter, from_members = policy_from_tags(ctx.aws(), ctx.stack_name)
    ctx.say(policy_text(document))
    if from_members:
        ctx.warn(
            "this stack's NetworkStatus lists members, not tags: before the group policy they "
            "are the same; with a policy, VPCs it refuses are missing here"
        )
    if not document["Groups"]:
        ctx.warn("no VPC is tagged into a group in the managed accounts and regions")
    ctx.warn(
        "review it, then write it (in the hub account and the stack's region):\n"
        f"  aws ssm put-parameter --name {parameter or '<GroupPolicyParameterName>'} "
        "--type String --overwrite --value file://policy.json"
    )
    return EXIT_OK


def graph(ctx: Context, fmt: str, out: str | None, group: str | None) -> int:
    """The network as a picture (mermaid, dot or a self-contained HTML file)."""
    text = render_graph(read_network(ctx.aws(), ctx.stack_name, group), fmt)
    if out is None:
        ctx.stdout.write(text)
        return EXIT_OK
    try:
        with open(out, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror or exc}") from exc
    if ctx.output == "json":
        ctx.say(render.to_json({"Out": out, "Format": fmt}))
    else:
        ctx.say(f"wrote {out} ({fmt})")
    return EXIT_OK
