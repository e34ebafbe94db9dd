"""Join requests of groups whose policy says ``"Join": "approval"``: list them, approve or deny.

Decisions are recorded in the hub, in the stack's lock table (item ``group-approvals``, which
no member account can reach): ``Approvals`` holds the current decision per group and VPC (with
the CIDRs an approval pins, who decided and when), ``History`` every decision ever made, in
order (the audit trail). The reconcile's Discover reads them with the group policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from . import render
from .aws import EXIT_OK, ToolError, UsageError, aws_errors
from .commands import Context, run_machine
from .executions import follow, start_execution
from .stack import find_machine, stack_outputs

APPROVALS_KEY = "group-approvals"


def _dry_run(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A reconcile dry run's output (what the reconcile sees now, nothing changed)."""
    aws = ctx.aws()
    ref = find_machine(aws, ctx.stack_name, "reconcile")
    sfn = aws.client("stepfunctions")
    arn = start_execution(sfn, ref.arn, {**request, "DryRun": True}, ref.found_by)
    outcome = follow(sfn, arn, render.Silent())
    if not outcome.succeeded or not isinstance(outcome.output, dict):
        failure = outcome.failure()
        raise ToolError(
            f"the reconcile dry run {arn} failed: {failure['Error']}: {failure['Cause']}"
        )
    return outcome.output


def pending(ctx: Context) -> int:
    """Every join request waiting for approval, across accounts and regions."""
    waiting = _dry_run(ctx, {}).get("PendingApproval", [])
    if ctx.output == "json":
        ctx.say(render.to_json({"PendingApproval": waiting}))
        return EXIT_OK
    if not waiting:
        ctx.say("No join request waits for approval.")
    for entry in waiting:
        ctx.say(
            f"{entry['Group']}  {entry['VpcId']}  {entry['AccountId']} {entry['Region']}  "
            f"{' '.join(entry.get('Cidrs', []))}"
        )
    return EXIT_OK


def decide(
    ctx: Context,
    decision: str,
    group: str,
    vpc_id: str,
    account: str | None,
    region: str | None,
) -> int:
    """Record ``approved`` (pinning the VPC's CIDRs as its request shows them) or ``denied``
    for the VPC's request to join ``group``, then reconcile the group."""
    waiting = [
        p
        for p in _dry_run(ctx, {"Group": group}).get("PendingApproval", [])
        if p["Group"] == group
        and p["VpcId"] == vpc_id
        and account in (None, p["AccountId"])
        and region in (None, p["Region"])
    ]
    if len(waiting) > 1:
        where = ", ".join(f"{p['AccountId']} {p['Region']}" for p in waiting)
        raise UsageError(f"{vpc_id} asks to join {group} from {where}: give --account and --region")
    if waiting:
        request = waiting[0]
        account, region, cidrs = request["AccountId"], request["Region"], request["Cidrs"]
    elif decision == "approved":
        raise ToolError(f"{vpc_id} has no join request waiting for approval in group {group}")
    elif account is None or region is None:
        raise UsageError(f"{vpc_id} has no request waiting in {group}: give --account and --region")
    else:
        cidrs = []
    aws = ctx.aws()
    outputs = stack_outputs(aws, ctx.stack_name) or {}
    table = outputs.get("LockTableName")
    if not table:
        raise ToolError(f"stack {ctx.stack_name} has no LockTableName output (update the stack)")
    with aws_errors("sts GetCallerIdentity"):
        who = str(aws.client("sts").get_caller_identity()["Arn"])
    record = {
        "Decision": {"S": decision},
        "Cidrs": {"L": [{"S": c} for c in cidrs]},
        "By": {"S": who},
        "At": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    key = f"{group}|{account}|{region}|{vpc_id}"
    dynamodb = aws.client("dynamodb")
    item_key = {"LockId": {"S": APPROVALS_KEY}}
    with aws_errors(f"dynamodb UpdateItem {table}"):
        dynamodb.update_item(
            TableName=table,
            Key=item_key,
            UpdateExpression="SET Approvals = if_not_exists(Approvals, :empty)",
            ExpressionAttributeValues={":empty": {"M": {}}},
        )
        history = {"M": {**record, "Key": {"S": key}}}
        dynamodb.update_item(
            TableName=table,
            Key=item_key,
            UpdateExpression="SET Approvals.#k = :v, "
            "History = list_append(if_not_exists(History, :none), :h)",
            ExpressionAttributeNames={"#k": key},
            ExpressionAttributeValues={
                ":v": {"M": record},
                ":none": {"L": []},
                ":h": {"L": [history]},
            },
        )
    shown = f"{decision} {vpc_id} ({account} {region}) in group {group}"
    if ctx.output == "text":
        ctx.say(f"{shown}" + (f", pinning {' '.join(cidrs)}" if cidrs else "") + f"; by {who}")
    else:
        ctx.stderr.write(json.dumps({"Recorded": shown}) + "\n")
    return run_machine(ctx, "reconcile", {"Group": group})
