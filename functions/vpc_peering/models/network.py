"""The reconcile machine's wire formats: Discover's plan document, a round's input and
outcome, the report (the execution's output)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    model_serializer,
)

from .requests import CleanupRequest, CreateRequest, ReconcileRequest
from .vocabulary import _Model


class ReconcileScope(_Model):
    accounts: list[str]
    regions: list[str]
    group: str | None = None
    vpc: str | None = None
    #: Started by tag changes: the VPCs whose tags changed (the scope is their groups).
    changed_vpcs: list[str] | None = None


class ReconcileFailure(_Model):
    """Something a reconcile could not make converge: a pair, a VPC whose tags are invalid, or
    an account and region it could not read."""

    pair: str | None = None
    vpc: str | None = None
    location: str | None = None
    group: str | None = None
    action: str | None = None
    error: str
    cause: str

    @property
    def subject(self) -> str:
        return self.pair or self.vpc or self.location or "reconcile"


class ReconcileSkip(_Model):
    """A pair or peering a reconcile leaves alone on purpose, and why."""

    pair: str
    group: str | None = None
    vpc_peering_connection_id: str | None = None
    reason: str


class ReconcileIgnored(_Model):
    """A request made elsewhere that stays pending: the accept policy does not allow it (or the
    requester's CIDRs overlap ours), and the reason."""

    vpc_peering_connection_id: str
    requester: str
    accepter: str
    status: str
    reason: str


class ReconcileRefusal(_Model):
    """A VPC the group policy keeps out of a group (GroupPolicyDenied): the policy working,
    not a failure."""

    group: str
    vpc_id: str
    account_id: str
    region: str
    error: str = "GroupPolicyDenied"
    cause: str


class PendingJoin(_Model):
    """A VPC waiting for approval to join a group (``"Join": "approval"``)."""

    group: str
    vpc_id: str
    account_id: str
    region: str
    cidrs: list[str]


class Announcement(_Model):
    """An event Discover hands to the machine to put on the stack's bus (once per news)."""

    detail_type: str
    detail: dict[str, Any]


class PairSideRef(_Model):
    vpc_id: str
    account_id: str
    region: str


class ReconcilePair(_Model):
    """A pair a reconcile acted on (or would, or held back): its two VPCs, and its group."""

    requester: PairSideRef
    accepter: PairSideRef
    group: str | None = None


class PlannedPair(ReconcilePair):
    """A dry run's line: what a real run would do for the pair, and why."""

    action: str
    reason: str


class ReconcileCounts(_Model):
    """What child executions did, counted (a round's, and the whole reconcile's)."""

    created: int = 0
    removed: int = 0
    repaired: int = 0
    #: Accepter-only mode: requests made elsewhere accepted, and rejected (RejectUnwanted).
    accepted: int = 0
    rejected: int = 0
    failed_count: int = 0

    def add(self, other: ReconcileCounts) -> None:
        for name in ReconcileCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ReconcileReport(ReconcileCounts):
    """What a reconcile found and did (the execution output; on failure, the published event)."""

    scope: ReconcileScope
    desired: int = 0
    unchanged: int = 0
    failed: list[ReconcileFailure] = Field(default_factory=list)
    skipped: list[ReconcileSkip] = Field(default_factory=list)
    skipped_count: int = 0
    ignored: list[ReconcileIgnored] = Field(default_factory=list)
    ignored_count: int = 0
    #: Kept for the output's and the event's contract: always 0 and empty now. The rounds are
    #: in the plan object (S3), so no work is ever deferred for the state's size.
    deferred: int = 0
    deferred_pairs: list[ReconcilePair] = Field(default_factory=list)
    dry_run: bool = False
    #: A dry run: what a real run would do (listed within a byte budget; every one counted).
    plan: list[PlannedPair] = Field(default_factory=list)
    plan_counts: dict[str, int] = Field(default_factory=dict)
    #: Removals the guard held back (MaxRemovalsPerReconcile), and how many.
    removals_held: list[ReconcilePair] = Field(default_factory=list)
    removals_held_count: int = 0
    #: VPCs the group policy keeps out of a group (listed within a byte budget), and how many.
    refused: list[ReconcileRefusal] = Field(default_factory=list)
    refused_count: int = 0
    #: VPCs waiting for approval to join a group, and how many.
    pending_approval: list[PendingJoin] = Field(default_factory=list)
    pending_approval_count: int = 0
    #: Set when the group policy could not be used: one line naming the parameter and the
    #: first problem (every group is then closed and nothing about groups changes).
    group_policy: str | None = None
    #: The pairs the child executions made, removed and repaired (listed within a byte budget;
    #: the counts above count them all).
    created_pairs: list[ReconcilePair] = Field(default_factory=list)
    removed_pairs: list[ReconcilePair] = Field(default_factory=list)
    repaired_pairs: list[ReconcilePair] = Field(default_factory=list)


class ReconcileOutcome(ReconcileReport):
    """The report, and how the reconcile ends: SUCCEEDED, or INCOMPLETE / FAILED with the error
    name and cause of its Fail state (absent on success)."""

    execution_name: str = ""
    status: Literal["SUCCEEDED", "INCOMPLETE", "FAILED"] = "SUCCEEDED"
    error: str | None = None
    cause: str | None = None

    @model_serializer(mode="wrap")
    def _error_unless_succeeded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.status == "SUCCEEDED":
            return {k: v for k, v in data.items() if v is not None or k not in ("Error", "Cause")}
        # The reconcile machine's PublishIncomplete and Incomplete states read $.Error and
        # $.Cause whenever Status is not SUCCEEDED: a missing one would be States.Runtime.
        data["Error"] = data.get("Error") or "InternalError"
        data["Cause"] = data.get("Cause") or f"the reconcile ended {self.status} without a cause"
        return data


class PairRun(_Model):
    """One pair's work, built once by Discover: what the report names (the pair, its action
    and group) and the child execution that does it (which machine, its name and input)."""

    action: str
    label: str
    requester: PairSideRef
    accepter: PairSideRef
    group: str | None = None
    state_machine_arn: str
    name: str
    input: CreateRequest | CleanupRequest

    @field_serializer("input")
    def _child_input(self, value: BaseModel) -> dict[str, Any]:
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)


class RoundRun(_Model):
    """One round of the plan (pairs that share no VPC, so they run at the same time), as the
    plan object in S3 holds it: one item of the reconcile's distributed Map."""

    round: int
    pairs: list[PairRun]


class NetworkPlanDocument(_Model):
    """What Discover decided: the reconcile machine's state until the report. The rounds are
    in the plan object (``PlanKey`` in the stack's plan bucket), not in the state: a plan of
    any size runs, and nothing is deferred for size."""

    execution_name: str
    request: ReconcileRequest
    #: The plan object's key in the plan bucket ("" when there is no work: nothing written).
    plan_key: str = ""
    round_count: int = 0
    has_work: bool = False
    max_parallel_pairs: int = 10
    #: Bytes each round's outcome may take (all of them must fit the reconcile's state).
    outcome_bytes: int = 2048
    #: Events to put on the stack's bus before the rounds (new refusals, new join requests).
    announcements: list[Announcement] = Field(default_factory=list)
    report: ReconcileReport
    #: The rounds Discover wrote to the plan object (not in the state).
    rounds: list[RoundRun] = Field(default_factory=list, exclude=True)


class RoundInput(_Model):
    """One round, as the reconcile machine's distributed Map hands it to its child: the plan
    object's item and the reconcile's settings."""

    round: int
    pairs: list[PairRun]
    reconcile: str
    max_parallel_pairs: int
    outcome_bytes: int = 2048


class ChildError(_Model):
    error: str = ""
    cause: str = ""


class PairResult(_Model):
    """A child execution as the round's Map ends it: its run, and the error if it failed."""

    action: str
    label: str
    group: str | None = None
    name: str = ""
    error: ChildError | None = None


class RoundResult(_Model):
    round: int
    reconcile: str
    outcome_bytes: int = 2048
    pairs: list[PairResult]


class RoundOutcome(ReconcileCounts):
    """A round's counts, and its first few failures (the rest counted): small, so that every
    round's outcome fits the reconcile execution's state."""

    round: int
    failed: list[ReconcileFailure] = Field(default_factory=list)
    #: The pairs whose child execution ended well, by position in the plan: [round, index]
    #: (Report names them from the plan object).
    done: list[tuple[int, int]] = Field(default_factory=list)


class StatusVpc(_Model):
    """A VPC as the status shows it: where it is, its Name tag and CIDRs, its groups."""

    vpc_id: str
    account_id: str
    region: str
    name: str | None = None
    cidr_blocks: list[str] = Field(default_factory=list)
    #: "mesh:blue", "hub:core", "spoke:core".
    groups: list[str] = Field(default_factory=list)


#: A pair's state in the matrix: active and routed both ways; a peering on its way; none; one
#: that needs routes or DNS; the reconcile could not make it (failed) or will not (refused).
type PairState = Literal["active", "pending", "missing", "repair", "failed", "refused"]


class StatusPair(_Model):
    """A pair a group wants, and how it is."""

    requester: str
    accepter: str
    groups: list[str]
    state: PairState
    vpc_peering_connection_id: str | None = None
    peering_status: str | None = None
    detail: str = ""


#: Why a VPC tagged into a group is not its member.
type CandidateState = Literal["refused", "pending approval"]


class StatusCandidate(StatusVpc):
    """A VPC whose tags ask to join a group that does not admit it: refused (the group policy
    names why, or cannot be used at all) or waiting for approval (``"Join": "approval"``)."""

    group: str
    state: CandidateState
    error: str | None = None
    cause: str = ""


class StatusPeering(_Model):
    """A peering this stack manages (made, adopted or accepted), wherever it is."""

    vpc_peering_connection_id: str
    status: str
    requester: StatusVpc
    accepter: StatusVpc
    name: str | None = None
    group: str | None = None


class NetworkStatus(_Model):
    """The network as the hub reads it with the stack's roles: every group's members and
    pairs, every managed peering (those no group wants are explicit creates), what could not
    be read, and VPCs whose tags are wrong."""

    accounts: list[str]
    regions: list[str]
    groups: dict[str, list[str]] = Field(default_factory=dict)
    vpcs: list[StatusVpc] = Field(default_factory=list)
    pairs: list[StatusPair] = Field(default_factory=list)
    peerings: list[StatusPeering] = Field(default_factory=list)
    #: Requests made elsewhere to a managed VPC, left pending (they wait for approval: the
    #: accept policy does not allow them yet), and why.
    pending_approval: list[ReconcileIgnored] = Field(default_factory=list)
    failed: list[ReconcileFailure] = Field(default_factory=list)
    #: VPCs tagged into a group that are not its members: refused by the group policy (with
    #: the cause), or waiting for approval; one entry per group asked.
    not_admitted: list[StatusCandidate] = Field(default_factory=list)
    #: Set when the group policy cannot be used: the line naming the parameter and the problem
    #: (every group is then closed: no tagged VPC is a member).
    group_policy: str | None = None
    #: Asked with ``Tagged``: every VPC whose tags name a group, with its roles, whatever the
    #: group policy admits (a VPC whose tags are invalid is in ``Failed`` instead).
    tagged: list[StatusVpc] | None = None
