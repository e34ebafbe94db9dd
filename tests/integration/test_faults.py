"""Fault injection over every AWS API call the create and cleanup flows make.

The calls are not listed here: a module fixture runs one happy create (a dedicated route table
and the main table on each side, DNS resolution), its cleanup, and a create that fails late
(ConfigureDns) so that Compensate undoes everything, and records the calls of each of these
three flows (the emulator's call log, minus this test's own polling); it does so for two hub
VPCs, and again cross-account for the calls only that makes (STS AssumeRole). Every distinct
(flow, service, operation) is then failed once, at its first call in the flow:

* with the service's throttling error: the execution still succeeds with the right end state
  (``compensate``: still fails with the original error only, and leaves nothing);
* with a non-retryable error: the execution fails with an error name README documents and a
  cause, and leaves nothing behind (a failed cleanup succeeds when run again; a
  ``CompensationFailed`` is accepted only if the cleanup machine, given the peering id found by
  the execution's tag, then removes everything).

A new call in any flow is covered without editing this file; the fixture fails if the
recording misses the peering's own EC2 calls (the enumeration would be broken).

Beside the matrix: eventual consistency (a new peering not visible yet), EC2 errors the issue
names (RouteAlreadyExists, OperationNotPermitted, quota errors), and peering states moto never
produces, forced through the emulator's ``peering-status`` control.

Every case fails its call once (the Nth call of the operation, counted by the emulator) and
checks that the fault actually fired, so an enumeration that no longer reaches a call fails.

Fault rules and call counts are emulator-wide, so this module has an emulator of its own: no
other test's calls, or late asynchronous work, can count or trip here, whichever tests ran
before on the same pytest-xdist worker. (Under ``make test`` the module's tests may be shared by
both workers; each then records on its own emulator.)
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.executions import ExecutionResult, follow_execution
from emulator.testing import REPO_ROOT, EmulatorHandle
from tools import CLEANUP_MACHINE, CREATE_MACHINE

from .conftest import (
    ACCOUNTS,
    HUB,
    MEMBER,
    Account,
    Vpc,
    peering_status,
    product_emulator,
    routes_to,
    snapshot,
)

# ---------------------------------------------------------------------------------- setup
EXECUTION_TIMEOUT = 120.0  # the slowest case takes ~30 s
DRIVER_KEY = "fault-test-driver"  # this test's own Step Functions calls: not the flows'
TRANSIENT = "transient"
TERMINAL = "terminal"
THROTTLING = {
    "ec2": "RequestLimitExceeded",
    "sts": "Throttling",
    "dynamodb": "ThrottlingException",
    "states": "ThrottlingException",
    "events": "ThrottlingException",
    "lambda": "TooManyRequestsException",
}
DENIED = {
    "ec2": "UnauthorizedOperation",
    "sts": "AccessDenied",
    "dynamodb": "AccessDeniedException",
    "states": "AccessDeniedException",
    "events": "AccessDeniedException",
    "lambda": "AccessDeniedException",
}
#: Calls the product's own code makes (its AWS errors become AccessDenied naming the call).
DIRECT_SERVICES = ("ec2", "sts", "dynamodb")
#: Without these the enumeration is broken, whatever else it found.
REQUIRED_EC2 = frozenset(
    {
        "CreateVpcPeeringConnection",
        "AcceptVpcPeeringConnection",
        "CreateRoute",
        "DeleteRoute",
        "DeleteVpcPeeringConnection",
    }
)
#: The compensate flow: a create that fails here, after everything else was made.
TRIGGER = ("ec2", "ModifyVpcPeeringConnectionOptions", "UnauthorizedOperation")

#: A non-retryable error once on these calls does not fail the execution, by design.
RECOVERS_FROM_TERMINAL = {
    ("create", "states", "SendTaskHeartbeat"): "the accept function's invocation fails and the "
    "event is delivered again (EventBridge retries its target)",
    ("create", "states", "SendTaskSuccess"): "the event is delivered again; the accept function "
    "finds the peering active and reports success",
    ("cleanup", "events", "PutEvents"): "PublishRemoved is best effort (Catch -> Removed)",
}
#: Emulator gaps: the case may either succeed (as on AWS) or fail safely (as on the emulator).
EMULATOR_GAPS: dict[tuple[str, str, str, str], str] = {}


def documented_errors() -> frozenset[str]:
    """The error names the "Errors" table documents (docs/errors.md, which the README links)."""
    text = (REPO_ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    section = text.split("# Errors", 1)[1].split("\n## ", 1)[0]
    names = frozenset(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    assert {"AccessDenied", "InternalError", "CompensationFailed"} <= names, names
    return names


ERRORS = documented_errors()


@dataclass(frozen=True)
class Op:
    """One distinct call of a flow, and which call of its operation to fail (1-based)."""

    flow: str  # create | cleanup | compensate
    service: str
    operation: str
    nth: int
    cross_account: bool = False  # only the cross-account run makes this call

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.flow, self.service, self.operation)

    def __str__(self) -> str:
        where = " (cross-account)" if self.cross_account else ""
        return f"{self.flow}/{self.service}:{self.operation}#{self.nth}{where}"


@dataclass
class Pair:
    requester: Vpc
    accepter: Vpc
    before: dict[str, Any]

    @property
    def vpcs(self) -> tuple[Vpc, Vpc]:
        return (self.requester, self.accepter)


@dataclass
class CachedAccount(Account):
    """An account whose clients are made once (a new boto3 session costs ~0.2 s per client)."""

    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        if (service, region) not in self._clients:
            self._clients[(service, region)] = super().client(service, region)
        return self._clients[(service, region)]


@dataclass(repr=False)
class Env:
    """Everything a case needs: the emulator, accounts, a driver client, case bookkeeping."""

    emu: EmulatorHandle
    accounts: dict[str, Account]
    sfn: Any
    cases: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "case -> status error", for the log

    # --------------------------------------------------------------------------- resources
    def vpc(self, cidr: str, account: str, subnet: str) -> Vpc:
        ec2 = self.accounts[account].ec2()
        vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=subnet)["Subnet"]["SubnetId"]
        main = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"][0]["RouteTableId"]
        return Vpc(vpc_id, account, "us-east-1", cidr, [subnet_id], main)

    def pair(self, cross_account: bool = False) -> Pair:
        """Two hub VPCs, or a hub VPC and a member-account one (STS); one subnet each."""
        requester = self.vpc("10.0.0.0/16", HUB, "10.0.1.0/24")
        accepter = self.vpc("172.16.0.0/16", MEMBER if cross_account else HUB, "172.16.1.0/24")
        return Pair(requester, accepter, snapshot(self.accounts, requester, accepter))

    def snapshot(self, pair: Pair) -> dict[str, Any]:
        return snapshot(self.accounts, *pair.vpcs)

    # -------------------------------------------------------------------------- executions
    def create(self, pair: Pair, **extra: Any) -> ExecutionResult:
        return self._run(self.emu.state_machine_arn(CREATE_MACHINE), create_request(pair, **extra))

    def cleanup(self, payload: Any) -> ExecutionResult:
        return self._run(self.emu.state_machine_arn(CLEANUP_MACHINE), payload)

    def _run(self, arn: str, payload: Any) -> ExecutionResult:
        """Start and wait; the history is read once at the end (polling it costs the
        emulator more than the execution itself)."""
        started = time.monotonic()
        execution_arn = self.sfn.start_execution(
            stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(payload)
        )["executionArn"]
        while self.sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
            if time.monotonic() - started > EXECUTION_TIMEOUT:
                # Stopped, so that its later calls cannot trip the next case's fault rules.
                self.sfn.stop_execution(executionArn=execution_arn, error="TestTimeout")
                raise TimeoutError(f"{execution_arn} still running after {EXECUTION_TIMEOUT:.0f} s")
            time.sleep(0.2)
        return follow_execution(self.sfn, execution_arn, started=started)

    def flow_calls(self) -> list[dict[str, str]]:
        return [c for c in self.emu.calls() if c["access_key"] != DRIVER_KEY]

    # ------------------------------------------------------------------------------ checks
    def peered_problems(self, result: ExecutionResult, pair: Pair) -> list[str]:
        """Why the create did not end as it should: active, routed both ways in both tables
        (main and dedicated), DNS allowed on both sides."""
        if not result.succeeded:
            return [f"create {result.status}: {result.error}: {result.cause}"]
        out = result.output
        peering_id = out["VpcPeeringConnectionId"]
        problems = []
        if (status := peering_status(self.accounts, pair.requester, peering_id)) != "active":
            problems.append(f"{peering_id} is {status}")
        for name, vpc, peer in (
            ("Requester", pair.requester, pair.accepter),
            ("Accepter", pair.accepter, pair.requester),
        ):
            wanted = sorted(
                (r["RouteTableId"], r["Destination"]) for r in out["Routes"] if r["Side"] == name
            )
            actual = routes_to(self.accounts, vpc, peering_id)
            if len(wanted) != 2 or actual != wanted or {d for _, d in actual} != {peer.cidr}:
                problems.append(f"{name} routes {actual}, output says {wanted}")
        pcx = (
            self.accounts[HUB]
            .ec2()
            .describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
                "VpcPeeringConnections"
            ][0]
        )
        for info in ("RequesterVpcInfo", "AccepterVpcInfo"):
            if not pcx[info]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"]:
                problems.append(f"DNS not allowed on {info}")
        return problems

    def failed_problems(self, result: ExecutionResult) -> list[str]:
        """Why a failed execution did not fail cleanly (documented name, cause)."""
        problems = []
        if result.status != "FAILED":
            problems.append(f"expected FAILED, got {result.status} ({result.error})")
        if result.error not in ERRORS:
            problems.append(f"error {result.error!r} is not documented in README Errors")
        if not result.cause:
            problems.append("empty cause")
        return problems

    def left_problems(self, pair: Pair) -> list[str]:
        after = self.snapshot(pair)
        return [] if after == pair.before else [f"left behind: {diff(pair.before, after)}"]

    # ----------------------------------------------------------- after CompensationFailed
    def recover_from_compensation_failure(self, result: ExecutionResult, pair: Pair) -> list[str]:
        """CompensationFailed is acceptable only if the documented remedy (the cleanup machine
        with the peering id, found by the execution's tag) then removes everything, at once: a
        lease the failed create could not give back must not block the pair (the cleanup takes
        over the lease of an execution that has ended)."""
        execution = result.execution_arn.rsplit(":", 1)[-1]
        problems: list[str] = []
        peering_id = self.peering_of_execution(pair, execution)
        if peering_id is None:  # nothing was created, or compensation deleted it
            return problems + self.left_problems(pair)
        cleaned = self.cleanup({"VpcPeeringConnectionId": peering_id})
        if not cleaned.succeeded:
            problems.append(f"cleanup by id: {cleaned.error}: {cleaned.cause}")
        elif "CleanupPlan" in cleaned.states_entered and cleaned.seconds > 30:
            problems.append(f"cleanup by id waited {cleaned.seconds:.0f}s for the pair's lease")
        return problems + self.left_problems(pair)

    def peering_of_execution(self, pair: Pair, execution: str) -> str | None:
        found = self.accounts[HUB].ec2().describe_vpc_peering_connections()
        for pcx in found["VpcPeeringConnections"]:
            tags = {t["Key"]: t["Value"] for t in pcx.get("Tags", [])}
            if (
                pcx["RequesterVpcInfo"]["VpcId"] == pair.requester.vpc_id
                and tags.get("vpc-peering:execution") == execution
            ):
                return str(pcx["VpcPeeringConnectionId"])
        return None

    def lease_of(self, pair: Pair) -> dict[str, Any] | None:
        """The pair's lease item in the lock table, if anyone holds it."""
        ddb = self.accounts[HUB].client("dynamodb")
        table = lock_table(ddb)
        for item in ddb.scan(TableName=table)["Items"]:
            if pair.requester.vpc_id in item["LockId"]["S"]:
                return dict(item)
        return None

    def drop_lease(self, item: dict[str, Any]) -> None:
        ddb = self.accounts[HUB].client("dynamodb")
        ddb.delete_item(TableName=lock_table(ddb), Key={"LockId": item["LockId"]})

    # -------------------------------------------------------------------------------- faults
    def fault(self, op: Op, code: str, times: int = 1) -> None:
        self.emu.add_fault(op.service, op.operation, code, nth=op.nth, times=times)

    def fired(self) -> dict[str, int]:
        return {f"{r['service']}:{r['operation']}": r["fired"] for r in self.emu.faults()}


def lock_table(ddb: Any) -> str:
    names = [n for n in ddb.list_tables()["TableNames"] if "Lock" in n]
    assert len(names) == 1, names
    return str(names[0])


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        k: after.get(k) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
    }


def create_request(pair: Pair, **extra: Any) -> dict[str, Any]:
    """Both sides: the main table and a dedicated table for the subnet; DNS resolution."""

    def side(vpc: Vpc) -> dict[str, Any]:
        return {
            "VpcId": vpc.vpc_id,
            "AccountId": vpc.account,
            "Region": vpc.region,
            "RouteTables": "main",
            "DedicatedRouteTable": {"SubnetIds": vpc.subnets},
        }

    return {
        "Requester": side(pair.requester),
        "Accepter": side(pair.accepter),
        "DnsResolution": True,
        "Tags": {"Name": "fault-test"},
        **extra,
    }


def distinct_ops(
    flow: str, calls: list[dict[str, str]], start: int = 0, cross_account: bool = False
) -> list[Op]:
    """Distinct (service, operation) of ``calls[start:]``, each with the number its first call
    there has among all of ``calls`` (so that a fault rule counting from 0 hits that call)."""
    ops: dict[tuple[str, str], Op] = {}
    seen: dict[tuple[str, str], int] = {}
    for index, call in enumerate(calls):
        key = (call["service"], call["operation"])
        seen[key] = seen.get(key, 0) + 1
        if index >= start and key not in ops:
            ops[key] = Op(flow, key[0], key[1], seen[key], cross_account)
    return list(ops.values())


@dataclass(repr=False)
class Recording:
    ops: list[Op]
    first_describe_after_create: int  # nth DescribeVpcPeeringConnections (same account)


def record_flows(env: Env, cross_account: bool) -> tuple[list[Op], int]:
    """The calls of a happy create, of its cleanup, and of a compensated create."""
    pair = env.pair(cross_account)
    env.emu.reset_calls()
    created = env.create(pair)
    create_calls = env.flow_calls()
    assert created.succeeded, ("happy create", created.error, created.cause)
    assert not env.peered_problems(created, pair), env.peered_problems(created, pair)

    env.emu.reset_calls()
    cleaned = env.cleanup(created.output)
    cleanup_calls = env.flow_calls()
    assert cleaned.succeeded, ("happy cleanup", cleaned.error, cleaned.cause)
    assert not env.left_problems(pair), env.left_problems(pair)

    pair = env.pair(cross_account)
    env.emu.reset_calls()
    env.emu.add_fault(*TRIGGER)
    compensated = env.create(pair)
    env.emu.clear_faults()
    compensate_calls = env.flow_calls()
    assert compensated.error == "AccessDenied", ("compensated create", compensated.cause)
    assert "Compensate" in compensated.states_entered, compensated.states_entered
    assert not env.left_problems(pair), env.left_problems(pair)
    trigger = next(
        i for i, c in enumerate(compensate_calls) if (c["service"], c["operation"]) == TRIGGER[:2]
    )
    ops = (
        distinct_ops("create", create_calls, cross_account=cross_account)
        + distinct_ops("cleanup", cleanup_calls, cross_account=cross_account)
        + distinct_ops("compensate", compensate_calls, trigger + 1, cross_account)
    )
    describes = [
        i for i, c in enumerate(create_calls) if c["operation"] == "DescribeVpcPeeringConnections"
    ]
    created_at = next(
        i for i, c in enumerate(create_calls) if c["operation"] == "CreateVpcPeeringConnection"
    )
    return ops, next(n for n, i in enumerate(describes, 1) if i > created_at)


# -------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fault_emu() -> Iterator[EmulatorHandle]:
    """This module's own emulator (not conftest's ``emu``): see the module docstring."""
    with product_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def env(fault_emu: EmulatorHandle, request: pytest.FixtureRequest) -> Iterator[Env]:
    emu = fault_emu
    sfn = emu.client("stepfunctions", aws_access_key_id=DRIVER_KEY, aws_secret_access_key="x")
    cached: dict[str, Account] = {a: CachedAccount(emu, a) for a in ACCOUNTS}
    environment = Env(emu, cached, sfn)
    yield environment
    emu.clear_faults()
    emu.clear_peering_status()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    summary = f"test_faults: {len(environment.cases)} fault-injection executions"
    if reporter is not None:
        reporter.write_line(summary)
    else:
        print(summary)


@pytest.fixture(scope="module")
def recording(env: Env) -> Recording:
    """Every distinct call of the three flows: as recorded on two hub VPCs, plus the calls only
    a cross-account peering makes (STS), which run on a cross-account pair."""
    same, first_describe_after_create = record_flows(env, cross_account=False)
    cross, _ = record_flows(env, cross_account=True)
    known = {op.key for op in same}
    ops = same + [op for op in cross if op.key not in known]
    names = {op.key for op in ops}
    ec2_ops = {o for f, s, o in names if s == "ec2" and f in ("create", "cleanup")}
    if not ops or not ec2_ops >= REQUIRED_EC2:
        pytest.fail(
            f"the recorded flows miss {sorted(REQUIRED_EC2 - ec2_ops)}: the enumeration is "
            f"broken (recorded {sorted(names)})"
        )
    return Recording(ops, first_describe_after_create)


@pytest.fixture
def clean_rules(env: Env) -> Iterator[None]:
    """No fault rule and no peering-status rule outlives a test."""
    env.emu.clear_faults()
    env.emu.clear_peering_status()
    yield
    env.emu.clear_faults()
    env.emu.clear_peering_status()


# -------------------------------------------------------------------------------- the matrix
def run_case(env: Env, op: Op, kind: str) -> list[str]:
    """Fail ``op`` once with ``kind``; return what went wrong (empty: the case passed)."""
    code = (THROTTLING if kind == TRANSIENT else DENIED)[op.service]
    env.cases.append(f"{op} {kind} {code}")
    pair = env.pair(op.cross_account)
    setup: ExecutionResult | None = None
    if op.flow == "cleanup":
        setup = env.create(pair)
        if not setup.succeeded:
            return [f"setup create {setup.error}: {setup.cause}"]
    env.emu.clear_faults()
    if op.flow == "compensate":
        env.emu.add_fault(*TRIGGER)
    env.fault(op, code)
    try:
        result = env.create(pair) if setup is None else env.cleanup(setup.output)
        fired = env.fired()
    finally:
        env.emu.clear_faults()
    env.outcomes.append(f"{op} {kind} {code} -> {result.status} {result.error or ''}".rstrip())
    problems = []
    if fired.get(f"{op.service}:{op.operation}") != 1:
        problems.append(f"the fault never fired ({fired}): the flow no longer makes this call")
    gap = EMULATOR_GAPS.get((*op.key, kind))
    if gap and not result.succeeded:
        # As on AWS (succeeds) or as on the emulator (fails): either way safe and named.
        return problems + env.failed_problems(result) + env.left_problems(pair)
    if op.flow == "create":
        if kind == TRANSIENT or op.key in RECOVERS_FROM_TERMINAL or gap:
            return problems + env.peered_problems(result, pair)
        problems += env.failed_problems(result)
        if result.error == "CompensationFailed":
            return problems + env.recover_from_compensation_failure(result, pair)
        if op.service in DIRECT_SERVICES and (
            result.error != "AccessDenied"
            or f"{op.service}:{op.operation}" not in (result.cause or "")
        ):
            problems.append(f"expected AccessDenied naming {op.service}:{op.operation}")
        if op.service not in DIRECT_SERVICES and code not in (result.cause or ""):
            problems.append(f"the cause does not name {code}")
        return problems + env.left_problems(pair)
    if op.flow == "cleanup":
        if kind == TRANSIENT or op.key in RECOVERS_FROM_TERMINAL:
            if not result.succeeded:
                problems.append(f"cleanup {result.status}: {result.error}: {result.cause}")
            return problems + env.left_problems(pair)
        if not (result.succeeded and (result.output or {}).get("Unreadable")):
            # (Succeeding is right only when the accepter's side could not be read: the
            # peering is then removed from the requester's side, and that side named.)
            problems += env.failed_problems(result)
        again = env.cleanup(setup.output if setup else {})
        if not again.succeeded:
            problems.append(f"cleanup run again: {again.error}: {again.cause}")
        return problems + env.left_problems(pair)
    # compensate: the create fails with the trigger's error either way
    if kind == TERMINAL and result.error == "CompensationFailed":
        return (
            problems
            + env.failed_problems(result)
            + env.recover_from_compensation_failure(result, pair)
        )
    if result.error != "AccessDenied" or TRIGGER[1] not in (result.cause or ""):
        problems.append(f"expected the trigger's AccessDenied, got {result.error}: {result.cause}")
    if "Compensate" not in result.states_entered:
        problems.append("Compensate never ran")
    return problems + env.left_problems(pair)


@pytest.mark.parametrize("kind", [TRANSIENT, TERMINAL])
@pytest.mark.parametrize("flow", ["create", "cleanup", "compensate"])
def test_every_call_of_the_flow_survives_a_fault(
    env: Env,
    recording: Recording,
    clean_rules: None,
    flow: str,
    kind: str,
    record_property: Callable[[str, object], None],
) -> None:
    # Given every distinct call the flow made on its recorded run
    ops = [op for op in recording.ops if op.flow == flow]
    assert ops, f"no {flow} calls recorded"

    # When each call fails once, in a run of its own on fresh VPCs
    failures = []
    first = len(env.outcomes)
    for op in ops:
        try:
            problems = run_case(env, op, kind)
        except Exception as exc:  # one broken case must not hide the others
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            failures.append(f"{op} {kind}: " + "; ".join(problems))
    record_property("fault_cases", len(ops))
    print(f"{flow}/{kind}: {len(ops)} cases", *env.outcomes[first:], sep="\n  ")

    # Then each one ended as it should (see run_case)
    assert not failures, f"{len(failures)} of {len(ops)} cases failed:\n" + "\n".join(failures)


def test_the_recording_covers_both_flows_and_every_service(recording: Recording) -> None:
    # Given / When the recorded flows / Then every service the flows use is there
    by_flow: dict[str, set[str]] = {}
    for op in recording.ops:
        by_flow.setdefault(op.flow, set()).add(op.service)
    assert by_flow["create"] >= {"ec2", "sts", "dynamodb", "states", "lambda", "events"}
    assert by_flow["cleanup"] >= {"ec2", "dynamodb", "lambda", "events"}
    assert by_flow["compensate"] >= {"ec2", "dynamodb", "lambda"}
    assert {o.operation for o in recording.ops if o.flow == "compensate"} >= {
        "DeleteRoute",
        "DeleteRouteTable",
        "DeleteVpcPeeringConnection",
    }


# ------------------------------------------------------------------- eventual consistency
def test_a_new_peering_not_visible_yet_is_waited_for(
    env: Env, recording: Recording, clean_rules: None
) -> None:
    # Given EC2 answering NotFound to the first two reads of the peering after it was created
    pair = env.pair()
    op = Op("create", "ec2", "DescribeVpcPeeringConnections", recording.first_describe_after_create)
    env.cases.append(f"{op} eventual-consistency")
    env.fault(op, "InvalidVpcPeeringConnectionID.NotFound", times=2)

    # When the create runs
    result = env.create(pair)
    fired = env.fired()
    env.emu.clear_faults()

    # Then it waited for the peering and ended peered and routed
    assert fired == {"ec2:DescribeVpcPeeringConnections": 2}
    assert env.peered_problems(result, pair) == []


def test_an_acceptance_request_eventbridge_refused_is_put_again(
    env: Env, clean_rules: None
) -> None:
    # Given EventBridge refusing the entry of the create's first PutEvents (RequestAcceptance):
    # HTTP 200 with FailedEntryCount 1, which Step Functions reports as EventBridge.FailedEntry
    pair = env.pair()
    env.cases.append("create events:PutEvents #1 failed entry")
    env.emu.add_fault("events", "PutEvents", "InternalFailure", failed_entry=True)

    # When the create runs
    result = env.create(pair)
    fired = env.fired()
    env.emu.clear_faults()

    # Then RequestAcceptance retried the put, and the create ended peered and routed
    assert fired == {"events:PutEvents": 1}
    assert env.peered_problems(result, pair) == []


def test_cleanup_of_a_peering_not_visible_yet_still_deletes_it(env: Env, clean_rules: None) -> None:
    # Given a peering just created, and EC2 answering NotFound to the first two reads of it
    pair = env.pair()
    created = env.create(pair)
    assert created.succeeded, (created.error, created.cause)
    op = Op("cleanup", "ec2", "DescribeVpcPeeringConnections", 1)
    env.cases.append(f"{op} eventual-consistency")
    env.fault(op, "InvalidVpcPeeringConnectionID.NotFound", times=2)

    # When the cleanup runs with the create output
    result = env.cleanup(created.output)
    fired = env.fired()
    env.emu.clear_faults()

    # Then it looked again, succeeded and left nothing (not: called it gone and left it active)
    assert fired == {"ec2:DescribeVpcPeeringConnections": 2}
    assert result.succeeded, (result.error, result.cause)
    assert env.left_problems(pair) == []


# ---------------------------------------------------- a failed compensation frees the pair
@pytest.mark.parametrize(
    ("service", "operation", "code"),
    [
        ("ec2", "DeleteVpcPeeringConnection", "UnauthorizedOperation"),
        ("ec2", "DescribeRouteTables", "UnauthorizedOperation"),
        ("lambda", "Invoke", "AccessDeniedException"),
        ("dynamodb", "DeleteItem", "AccessDeniedException"),
    ],
)
def test_compensation_failure_gives_the_pair_back(
    env: Env, recording: Recording, clean_rules: None, service: str, operation: str, code: str
) -> None:
    # Given a create that fails at ConfigureDns, and this call of its compensation refused
    op = next(o for o in recording.ops if o.key == ("compensate", service, operation))
    pair = env.pair()
    env.cases.append(f"{op} {code} (lease)")
    env.emu.add_fault(*TRIGGER)
    env.fault(op, code)

    # When the create runs
    result = env.create(pair)
    fired = env.fired()
    env.emu.clear_faults()

    # Then it fails with CompensationFailed, and the cleanup it asks for (by the peering id,
    # found by the execution's tag) removes everything at once: the pair is not left blocked
    assert fired[f"{service}:{operation}"] == 1
    assert result.error == "CompensationFailed", (result.error, result.cause)
    assert env.recover_from_compensation_failure(result, pair) == []


# ------------------------------------------------------------------- errors the issue names
def test_route_already_exists_with_no_route_there_is_not_taken_for_success(
    env: Env, clean_rules: None
) -> None:
    # Given EC2 answering RouteAlreadyExists to the first CreateRoute while no route is there
    pair = env.pair()
    env.cases.append("create/ec2:CreateRoute#1 RouteAlreadyExists")
    env.emu.add_fault("ec2", "CreateRoute", "RouteAlreadyExists")

    # When the create runs
    result = env.create(pair)
    fired = env.fired()
    env.emu.clear_faults()

    # Then it does not end claiming a route it has not got: either it made the route after all
    # (peered and routed both ways), or it failed naming the route that is not there (the
    # requester's main table gets the first route) and compensation left nothing behind
    assert fired == {"ec2:CreateRoute": 1}
    if result.succeeded:
        assert env.peered_problems(result, pair) == []
    else:
        assert env.failed_problems(result) == []
        assert result.error in ("VerificationFailed", "RouteConflict", "TransientAwsError")
        assert pair.requester.main_route_table in (result.cause or "")
        assert pair.accepter.cidr in (result.cause or "")
        assert env.left_problems(pair) == []


@pytest.mark.parametrize(
    ("operation", "code", "errors"),
    [
        ("CreateVpcPeeringConnection", "OperationNotPermitted", {"AccessDenied"}),
        # EC2's own quota codes ("Error codes for the Amazon EC2 API"), each a QuotaExceeded
        (
            "CreateVpcPeeringConnection",
            "OutstandingVpcPeeringConnectionLimitExceeded",
            {"QuotaExceeded"},
        ),
        ("AcceptVpcPeeringConnection", "OperationNotPermitted", {"AccessDenied"}),
        (
            "AcceptVpcPeeringConnection",
            "ActiveVpcPeeringConnectionPerVpcLimitExceeded",
            {"QuotaExceeded"},
        ),
        ("CreateRoute", "RouteLimitExceeded", {"QuotaExceeded"}),
    ],
)
def test_ec2_refusals_fail_cleanly_naming_the_code(
    env: Env, clean_rules: None, operation: str, code: str, errors: set[str]
) -> None:
    # Given EC2 refusing the operation once with this error
    pair = env.pair()
    env.cases.append(f"create/ec2:{operation}#1 {code}")
    env.emu.add_fault("ec2", operation, code)

    # When the create runs
    result = env.create(pair)
    fired = env.fired()
    env.emu.clear_faults()

    # Then it failed with a documented error whose cause names the call and AWS's code, and
    # compensation left nothing behind
    assert fired == {f"ec2:{operation}": 1}
    assert env.failed_problems(result) == []
    assert result.error in errors, (result.error, result.cause)
    assert operation in (result.cause or "")
    assert code in (result.cause or "")
    assert env.left_problems(pair) == []


# ------------------------------------------------------- peering states moto never produces
@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("failed", "create"),
        ("rejected", "create"),
        ("expired", "create"),
        ("deleting", "create"),
        ("failed", "accept"),
    ],
)
def test_a_peering_that_goes_to_a_dead_state_fails_the_create(
    env: Env, clean_rules: None, status: str, event: str
) -> None:
    # Given EC2 putting the next peering into this state right after it is created / accepted
    pair = env.pair()
    env.cases.append(f"peering status {status} on {event}")
    env.emu.force_peering_status(
        status, on_create=event == "create", on_accept=event == "accept", message=f"forced {status}"
    )

    # When the create runs
    result = env.create(pair)

    # Then it fails with PeeringFailed naming the peering and its state, and nothing is left
    # (a "deleting" peering is EC2's to finish: it is deleted once EC2 is done)
    forced = env.emu.peering_status_rules()["history"]
    assert [h["status"] for h in forced] == [status]
    peering_id = forced[0]["id"]
    assert result.error == "PeeringFailed", (result.error, result.cause)
    assert peering_id in (result.cause or "")
    assert status in (result.cause or "")
    assert "AddRoutes" not in result.states_entered
    if status == "deleting":
        assert peering_status(env.accounts, pair.requester, peering_id) == "deleting"
        env.emu.force_peering_status("deleted", peering_id=peering_id)
    assert env.left_problems(pair) == []


@pytest.mark.parametrize(
    ("event", "then"),
    [("create", "pending-acceptance"), ("accept", "active")],
    ids=["provisioning-before-acceptance", "provisioning-after-acceptance"],
)
def test_a_provisioning_peering_is_waited_for(
    env: Env, clean_rules: None, event: str, then: str
) -> None:
    # Given EC2 keeping the next peering "provisioning" for 2 s after it is created / accepted
    pair = env.pair()
    env.cases.append(f"peering status provisioning on {event}")
    env.emu.force_peering_status(
        "provisioning",
        on_create=event == "create",
        on_accept=event == "accept",
        then=then,
        after_seconds=2.0,
    )

    # When the create runs
    started = time.monotonic()
    result = env.create(pair)

    # Then it waited through provisioning and ended peered and routed
    history = env.emu.peering_status_rules()["history"]
    assert [h["status"] for h in history] == ["provisioning", then]
    assert env.peered_problems(result, pair) == []
    assert time.monotonic() - started >= 2.0


def test_forcing_an_unknown_peering_or_status_is_refused(env: Env, clean_rules: None) -> None:
    # Given / When the control is asked for nonsense / Then it says so and changes nothing
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as unknown_id:
        env.emu.force_peering_status("failed", peering_id="pcx-00000000000000000")
    assert unknown_id.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as bad_status:
        env.emu.force_peering_status("exploded", on_create=True)
    assert bad_status.value.code == 400
    assert env.emu.peering_status_rules() == {"rules": [], "history": []}
