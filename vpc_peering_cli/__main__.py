"""``vpc-peering``: the command line. Parses, dispatches, turns errors into exit statuses.

Exit status: 0 success, 1 a failed execution (or a cleanup of a peering not found, or an error
of the tool: no stack, no machine, an AWS error), 2 bad usage (argparse's, or missing region or
credentials, or an unreadable --input file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

from . import DEFAULT_STACK_NAME, approvals
from .aws import EXIT_FAILED, EXIT_USAGE, ToolError, UsageError
from .commands import Context, graph, list_peerings, print_policy, run_machine, status, watch
from .inputs import (
    CLEANUP_FLAGS,
    CREATE_FLAGS,
    OTHER_FLAGS,
    SideOptions,
    add_field_flags,
    apply_field_flags,
    cleanup_input,
    create_input,
    read_input_file,
    reconcile_input,
    tags_input,
)

PROG = "vpc-peering"
EXIT_INTERRUPTED = 130

_DESCRIPTION = """\
Start this application's state machines and follow them state by state: create or clean up
a VPC peering, reconcile tag-declared groups, follow an execution, see the whole network
(status, list, graph).
Global options go before the command, as with aws."""

_EPILOG = """\
exit status: 0 success, 1 the execution failed (its Error: Cause is printed), 2 bad usage.
examples:
  vpc-peering create --requester-vpc vpc-0a1b2c3d --accepter-vpc vpc-4e5f6a7b --dns
  vpc-peering --output json create --input request.json > peering.json
  vpc-peering cleanup --input peering.json
  vpc-peering --endpoint-url http://127.0.0.1:4566 status
  vpc-peering graph --format html --out network.html"""


def _version() -> str:
    try:
        return metadata.version("vpc-peering-automation")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own parser (for its usage line on a usage error)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack-name",
        default=DEFAULT_STACK_NAME,
        help=f"the application's stack (default {DEFAULT_STACK_NAME})",
    )
    parser.add_argument("--region", help="the stack's region (default: the environment's)")
    parser.add_argument("--profile", help="AWS profile to use")
    parser.add_argument("--endpoint-url", help="another endpoint (the local emulator)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="print the execution ARN and exit 0 instead of following it",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create",
        help="peer two VPCs (the create machine)",
        description="Peer two VPCs, route them to each other and verify: the create machine.",
    )
    for side in ("requester", "accepter"):
        create.add_argument(f"--{side}-vpc", metavar="ID", help=f"the {side} VPC (required)")
        create.add_argument(
            f"--{side}-account", metavar="A", help="its account (default: the stack's)"
        )
        create.add_argument(
            f"--{side}-region", metavar="R", help="its region (default: the stack's)"
        )
    create.add_argument(
        "--dns",
        action="store_const",
        const=True,
        help="allow DNS resolution from the remote VPC, both sides",
    )
    create.add_argument(
        "--no-dns",
        dest="dns",
        action="store_const",
        const=False,
        help="turn it off (a rerun without --dns keeps what the input file says, else off)",
    )
    create.add_argument(
        "--dry-run", action="store_const", const=True, help="plan only: change nothing"
    )
    create.add_argument(
        "--adopt",
        action="store_const",
        const=True,
        help="take over a live peering of the pair that this stack did not make",
    )
    add_field_flags(create, CREATE_FLAGS)
    create.add_argument(
        "--tag", action="append", metavar="KEY=VALUE", help="a tag on the peering (repeatable)"
    )
    create.add_argument(
        "--allow",
        action="append",
        metavar="RULE",
        help="ingress across the peering, Side:sg-...:tcp:5432[-5440][:PeerVpc|:sg-...] "
        "(a security group of that side's VPC; from the peer VPC's CIDRs, or from a group of "
        "the peer VPC, same region only; udp likewise, icmp:TYPE[/CODE], -1 for every "
        "protocol); repeat for more",
    )
    create.add_argument(
        "--input",
        metavar="FILE",
        help="a create input JSON file (- for stdin); the flags override its fields",
    )

    cleanup = commands.add_parser(
        "cleanup",
        help="remove a peering and its routes (the cleanup machine)",
        description="Remove a peering this stack manages, its routes and its route tables.",
    )
    cleanup.add_argument("peering_id", nargs="?", metavar="PCX_ID", help="the peering")
    cleanup.add_argument(
        "--input",
        metavar="FILE",
        help="a cleanup input or a create output, as JSON (- for stdin)",
    )
    cleanup.add_argument(
        "--ignore-missing",
        action="store_true",
        help="exit 0 when the peering is not found",
    )
    add_field_flags(cleanup, CLEANUP_FLAGS)

    watch_parser = commands.add_parser(
        "watch",
        help="follow an execution, running or finished",
        description="Follow an execution of the stack's machines, running or finished.",
    )
    watch_parser.add_argument("execution_arn", metavar="EXECUTION_ARN")
    watch_parser.add_argument(
        "--ignore-missing",
        action="store_true",
        help="a cleanup of a peering not found exits 0",
    )

    list_parser = commands.add_parser(
        "list",
        help="every peering this stack manages, in every managed account and region",
        description="The peerings this stack made, adopted or accepted, in every managed "
        "account and region, read by the hub with the stack's roles (not the caller's).",
    )
    list_parser.add_argument(
        "--all",
        action="store_true",
        help="also those that ended (deleted, rejected, failed, expired), as the caller's "
        "credentials see them in the region",
    )

    status_parser = commands.add_parser(
        "status",
        help="the network: each group's VPCs and pairs, explicit peerings, the last reconcile",
        description="The network as the hub reads it in every managed account and region, "
        "with the stack's roles: per group its VPCs (id, Name, account, region, CIDRs) and a "
        "matrix of its pairs (active and routed both ways, pending, missing, needs repair, "
        "failed, refused), the peerings made by explicit creates, what could not be read, the "
        "last reconcile, the last sweep and when the next runs. Exit 1 when a pair failed or a "
        "location was not read.",
    )
    status_parser.add_argument("--group", metavar="G", help="only this group")

    graph_parser = commands.add_parser(
        "graph",
        help="the network as a picture (mermaid, dot, or a self-contained HTML file)",
        description="Each VPC by its id and Name, grouped by account and region; each pair "
        "and peering an edge coloured by its state, failures named.",
    )
    graph_parser.add_argument("--format", choices=("mermaid", "dot", "html"), default="mermaid")
    graph_parser.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    graph_parser.add_argument("--group", metavar="G", help="only this group")

    pending = commands.add_parser(
        "pending",
        help="join requests waiting for approval (groups with Join approval)",
        description="List every VPC waiting for approval to join a group, across accounts and "
        "regions (a reconcile dry run's PendingApproval).",
    )
    policy_parser = commands.add_parser(
        "policy",
        help="print a group policy that admits the groups the VPCs' tags name today",
        description="Read every managed account and region as the hub does (as status does) "
        "and print a group policy JSON admitting each group the VPCs are tagged into: its "
        "members' accounts, regions and IPv4 CIDRs, the accounts of its hubs, Join auto. It "
        "writes nothing: review it, then write it with aws ssm put-parameter (the parameter is "
        "the stack output GroupPolicyParameterName). For the upgrade to a stack with a group "
        "policy, before upgrading.",
    )
    policy_parser.add_argument(
        "--from-tags",
        action="store_true",
        required=True,
        help="from the VPCs' vpc-peering: tags (the only source so far)",
    )
    decisions = {}
    for name, verb in (("approve", "approve"), ("deny", "deny")):
        decision = commands.add_parser(
            name,
            help=f"{verb} a VPC's request to join a group",
            description=f"Record in the hub that the VPC's request to join GROUP is {name}d "
            "(an approval pins the CIDRs its request shows), then reconcile the group.",
        )
        decision.add_argument("group", metavar="GROUP")
        decision.add_argument("vpc_id", metavar="VPC_ID")
        decision.add_argument(
            "--account", dest="vpc_account", metavar="A", help="the VPC's account"
        )
        decision.add_argument("--region", dest="vpc_region", metavar="R", help="the VPC's region")
        decisions[name] = decision
    reconcile = commands.add_parser(
        "reconcile",
        help="make the network follow the VPC tags (the reconcile machine)",
        description="Reconcile everything in scope, one group, or one VPC.",
    )
    reconcile.add_argument("--group", metavar="G", help="only this group")
    reconcile.add_argument("--vpc", metavar="ID", help="only this VPC's pairs")
    reconcile.add_argument("--account", dest="vpc_account", metavar="A", help="the --vpc's account")
    reconcile.add_argument("--region", dest="vpc_region", metavar="R", help="the --vpc's region")
    reconcile.add_argument(
        "--dry-run",
        action="store_true",
        help="decide everything, change nothing: list each pair it would create, repair or "
        "remove, and why",
    )
    reconcile.add_argument(
        "--confirm-removals",
        action="store_true",
        help="remove the group peerings even when more than MaxRemovalsPerReconcile would go",
    )
    parsers = {
        "create": create,
        "cleanup": cleanup,
        "watch": watch_parser,
        "list": list_parser,
        "status": status_parser,
        "graph": graph_parser,
        "reconcile": reconcile,
        "pending": pending,
        "policy": policy_parser,
        **decisions,
    }
    return parser, parsers


def dispatch(args: argparse.Namespace, ctx: Context) -> int:
    """Run the command the arguments name."""
    if args.command == "create":
        base = read_input_file(args.input) if args.input else None
        request = create_input(
            SideOptions(args.requester_vpc, args.requester_account, args.requester_region),
            SideOptions(args.accepter_vpc, args.accepter_account, args.accepter_region),
            dns=args.dns,
            dry_run=args.dry_run,
            adopt=args.adopt,
            allow=args.allow,
            base=base,
        )
        request = tags_input(apply_field_flags(request, args, CREATE_FLAGS), args.tag)
        return run_machine(ctx, "create", request, flags=[*CREATE_FLAGS, *OTHER_FLAGS])
    if args.command == "cleanup":
        base = read_input_file(args.input) if args.input else None
        request = apply_field_flags(cleanup_input(args.peering_id, base), args, CLEANUP_FLAGS)
        return run_machine(
            ctx, "cleanup", request, ignore_missing=args.ignore_missing, flags=CLEANUP_FLAGS
        )
    if args.command == "reconcile":
        vpc = (
            SideOptions(args.vpc, args.vpc_account, args.vpc_region)
            if args.vpc or args.vpc_account or args.vpc_region
            else None
        )
        request = reconcile_input(args.group, vpc, args.dry_run, args.confirm_removals)
        return run_machine(ctx, "reconcile", request)
    if args.command == "pending":
        return approvals.pending(ctx)
    if args.command == "policy":
        return print_policy(ctx)
    if args.command in ("approve", "deny"):
        decision = "approved" if args.command == "approve" else "denied"
        return approvals.decide(
            ctx, decision, args.group, args.vpc_id, args.vpc_account, args.vpc_region
        )
    if args.command == "watch":
        return watch(ctx, args.execution_arn, ignore_missing=args.ignore_missing)
    if args.command == "status":
        return status(ctx, args.group)
    if args.command == "graph":
        return graph(ctx, args.format, args.out, args.group)
    return list_peerings(ctx, include_ended=args.all)


def main(argv: list[str] | None = None) -> int:
    parser, parsers = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    ctx = Context(
        stack_name=args.stack_name,
        output=args.output,
        wait=not args.no_wait,
        stdout=sys.stdout,
        stderr=sys.stderr,
        profile=args.profile,
        region=args.region,
        endpoint_url=args.endpoint_url,
    )
    try:
        return dispatch(args, ctx)
    except UsageError as exc:
        parsers[args.command].print_usage(sys.stderr)
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except ToolError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
