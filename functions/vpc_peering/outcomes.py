"""The reconcile's results: each round's outcome (RecordRound) and the report that sums them
(Report), both within their byte budgets. Imports neither the planner nor the readers."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from . import locks
from .actions import ACTIONS, clip
from .aws import Access
from .errors import GROUP_POLICY_INVALID, summarize_error
from .models.network import (
    PendingJoin,
    PlannedPair,
    ReconcileFailure,
    ReconcileIgnored,
    ReconcileOutcome,
    ReconcilePair,
    ReconcileRefusal,
    ReconcileScope,
    ReconcileSkip,
    RoundInput,
    RoundOutcome,
    RoundResult,
    RoundRun,
)
from .observability import logger, metrics
from .plan_store import delete_plan, read_plan, round_results
from .settings import Settings

#: Failures and skips listed in a report (all are counted); the rest are in the history.
MAX_LISTED = 100

#: Failures a round passes on in full (the rest counted): every round's outcome must fit the
#: reconcile execution's 256 KB state, however many rounds and failures there are.
ROUND_LISTED = 3

FAILED_LIST_BYTES = 32 * 1024
DONE_LIST_BYTES = 40 * 1024


def within_bytes[
    T: (
        ReconcilePair,
        PlannedPair,
        ReconcileFailure,
        ReconcileSkip,
        ReconcileIgnored,
        ReconcileRefusal,
        PendingJoin,
    )
](items: list[T], budget: int) -> list[T]:
    """The first of ``items`` whose JSON together takes at most ``budget`` bytes."""
    kept: list[T] = []
    size = 0
    for item in items:
        size += len(json.dumps(item.dump())) + 2
        if size > budget:
            break
        kept.append(item)
    return kept


def child_failure(error: str, cause: str) -> tuple[str, str]:
    """The error name and cause a failed child execution ended with. Step Functions reports a
    failed ``startExecution.sync`` as States.TaskFailed whose cause is the child's
    DescribeExecution, as JSON; anything else (the start itself refused) is its own error."""
    try:
        details = json.loads(cause)
    except ValueError:
        details = None
    if isinstance(details, dict):
        name = details.get("Error") or details.get("error")
        text = details.get("Cause") or details.get("cause") or ""
        if name:
            return str(name), str(text)
    if error == "States.Timeout":
        return "Timeout", "the child execution outlived its task's TimeoutSeconds"
    return error or "InternalError", cause


def record_round(doc: RoundResult, access: Access, settings: Settings) -> RoundOutcome:
    """How the round's child executions ended, in brief: counted, and within the round's share
    of bytes, its first failures and the pairs it did (by their place: [round, index])."""
    outcome = RoundOutcome(round=doc.round)
    done: list[tuple[int, int]] = []
    for index, pair in enumerate(doc.pairs):
        if pair.error is None:
            count = ACTIONS[pair.action].counter  # type: ignore[index]
            setattr(outcome, count, getattr(outcome, count) + 1)
            done.append((doc.round, index))
            continue
        name, cause = child_failure(pair.error.error, pair.error.cause)
        outcome.failed_count += 1
        logger.warning(
            "pair failed",
            pair=pair.label,
            error=name,
            cause=clip(cause),
            execution=pair.name,
        )
        if len(outcome.failed) < ROUND_LISTED:
            outcome.failed.append(
                ReconcileFailure(
                    pair=pair.label,
                    group=pair.group,
                    action=pair.action,
                    error=name,
                    cause=clip(f"{cause} (execution {pair.name})"),
                )
            )
    while outcome.failed and len(json.dumps(outcome.dump())) > doc.outcome_bytes:
        outcome.failed.pop()
    room = doc.outcome_bytes - len(json.dumps(outcome.dump()))
    for position in done:
        room -= len(json.dumps(position)) + 2  # and its ", "
        if room < 0:
            break
        outcome.done.append(position)
    return outcome


def report(raw: Any, execution_name: str, access: Access, settings: Settings) -> ReconcileOutcome:
    """The reconcile's result: Discover's findings and every round's outcome summed; give the
    lease back. Ends INCOMPLETE (ReconcileIncomplete, the failed pairs named) when anything
    did not converge, FAILED with the error when the reconcile itself could not run."""
    state = raw if isinstance(raw, dict) else {}
    locks.release(access, settings, *locks.reconcile_lease(execution_name))
    error = state.get("Error")
    if "Report" not in state:
        # Discover failed: nothing was decided, nothing changed.
        name, cause = _error_of(error)
        return _counted(
            ReconcileOutcome(
                scope=ReconcileScope(
                    accounts=sorted(settings.allowed_account_ids),
                    regions=sorted(settings.managed_regions),
                ),
                execution_name=execution_name,
                status="FAILED",
                error=name,
                cause=cause,
            )
        )
    outcome = ReconcileOutcome.model_validate({**state["Report"], "ExecutionName": execution_name})
    done: list[tuple[int, int]] = []
    try:
        results = round_results(state.get("Rounds"), access, settings)
    except Exception as exc:  # the rounds ran; only what they did cannot be told
        logger.warning("round results not read", error=type(exc).__name__)
        outcome.failed_count += 1
        outcome.failed.append(
            ReconcileFailure(
                error="InternalError",
                cause=clip(f"the rounds' results could not be read ({type(exc).__name__}: {exc})"),
            )
        )
        results = []
    for item in results:
        result = round_outcome(item)
        _add_round(outcome, result)
        done += result.done
    key = str(state.get("PlanKey") or "")
    if done:
        _list_done(outcome, done, read_plan(key, access, settings))
    delete_plan(key, access, settings)
    if error is not None:
        name, cause = _error_of(error)
        outcome.failed_count += 1
        outcome.failed.append(ReconcileFailure(error=name, cause=clip(cause)))
    outcome.failed = within_bytes(outcome.failed[:MAX_LISTED], FAILED_LIST_BYTES)
    if outcome.dry_run:
        pass  # a plan, not a run: its failures are what a real run would meet
    elif outcome.removals_held_count:
        outcome.status, outcome.error = "FAILED", "RemovalsHeld"
        outcome.cause = held_cause(outcome, settings)
    elif outcome.failed_count:
        outcome.status, outcome.error = "INCOMPLETE", "ReconcileIncomplete"
        outcome.cause = incomplete_cause(outcome)
        if outcome.group_policy and any(f.error == GROUP_POLICY_INVALID for f in outcome.failed):
            # The one line first: what the operator must fix before any group changes again.
            outcome.cause = f"{outcome.group_policy}. {outcome.cause}"
    logger.info(
        "reconciled",
        status=outcome.status,
        pairs_desired=outcome.desired,
        pairs_created=outcome.created,
        pairs_repaired=outcome.repaired,
        pairs_removed=outcome.removed,
        pairs_unchanged=outcome.unchanged,
        pairs_failed=outcome.failed_count,
    )
    return _counted(outcome)


#: Counts each reconcile Report ends as not SUCCEEDED (a dry run aside): the machine publishes
#: it ("VPC Peering Network Reconciled", which NotifyReconcileIncompleteRule sends to the topic)
#: and fails; the reconcile's failed-executions alarm leaves these out, so it pages for what was
#: not said (template.yaml, ReconcileStateMachineFailedAlarm).
FAILURE_REPORTED_METRIC = "ReconcileFailureReported"


def _counted(outcome: ReconcileOutcome) -> ReconcileOutcome:
    if outcome.status != "SUCCEEDED" and not outcome.dry_run:
        metrics.add_metric(name=FAILURE_REPORTED_METRIC, unit=MetricUnit.Count, value=1)
    return outcome


def _list_done(
    outcome: ReconcileOutcome, done: list[tuple[int, int]], rounds: list[RoundRun]
) -> None:
    """The pairs the rounds made, removed and repaired, named from the plan object by their
    place in it, within the report's byte budget."""
    lists = {
        "created": outcome.created_pairs,
        "removed": outcome.removed_pairs,
        "repaired": outcome.repaired_pairs,
    }
    size = 0
    for number, index in done:
        try:
            run = rounds[number].pairs[index]
        except (IndexError, TypeError):
            logger.warning("pair done not in the plan", round=number, index=index)
            continue
        counter = ACTIONS[run.action].counter  # type: ignore[index]
        if counter not in lists:
            continue
        pair = ReconcilePair(requester=run.requester, accepter=run.accepter, group=run.group)
        size += len(json.dumps(pair.dump())) + 2
        if size > DONE_LIST_BYTES:
            break
        lists[counter].append(pair)


def held_cause(outcome: ReconcileOutcome, settings: Settings) -> str:
    """Why a reconcile with held removals ends as it does, and what to do."""
    count = outcome.removals_held_count
    cause = (
        f"{count} group peering removals held: more than MaxRemovalsPerReconcile "
        f"({settings.max_removals_per_reconcile}) in one reconcile, so none was removed (the "
        "creates and repairs went on). If the tag changes are meant, run the reconcile again "
        'with {"ConfirmRemovals": true} (vpc-peering reconcile --confirm-removals); '
        "otherwise put the tags back. The pairs are listed under RemovalsHeld"
    )
    if outcome.failed_count:
        cause += f"; and {incomplete_cause(outcome, limit=20_000)}"
    return cause


def round_outcome(item: dict[str, Any]) -> RoundOutcome:
    """A round's entry in RunRounds' results: the outcome RecordRound made, or, when the round's
    child execution failed, that execution's result (Status FAILED, Error, Cause, Input: Step
    Functions returns a failed child's result unchanged, "ResultWriter (Map)"). Every pair of a
    failed round counts as not converged: which of them did is not known here."""
    if item.get("Status") != "FAILED":
        return RoundOutcome.model_validate(item)
    number, pairs = -1, 1
    try:
        planned = RoundInput.model_validate(json.loads(str(item.get("Input"))))
        number, pairs = planned.round, max(len(planned.pairs), 1)
    except ValueError:  # pydantic's ValidationError is a ValueError, as JSON's is
        pass
    error = str(item.get("Error") or "InternalError")
    cause = f"round {number} ({pairs} pairs) failed: {item.get('Cause') or 'no cause'}"
    execution = item.get("ExecutionArn")
    failure = ReconcileFailure(
        error=error, cause=clip(f"{cause} (execution {execution})" if execution else cause)
    )
    return RoundOutcome(round=number, failed_count=pairs, failed=[failure])


def _add_round(outcome: ReconcileOutcome, result: RoundOutcome) -> None:
    outcome.add(result)
    outcome.failed += result.failed


def _error_of(error: Any) -> tuple[str, str]:
    if not isinstance(error, dict):
        return "InternalError", "the reconcile failed without an error"
    return summarize_error(error)


def _kind(failure: ReconcileFailure) -> str:
    if failure.location:
        return "location"
    if failure.vpc:
        return "vpc"
    if failure.pair is None and failure.error == GROUP_POLICY_INVALID:
        return "policy"
    return "pair"


def incomplete_cause(outcome: ReconcileOutcome, limit: int = 30_000) -> str:
    """Every failure listed (as many as the Fail state's cause holds), each with its error;
    counted by what failed: pairs, accounts and regions not read, VPCs whose tags are invalid,
    the group policy (a policy that cannot be used is not a pair)."""
    kinds = Counter(_kind(f) for f in outcome.failed)
    # Discover's failures (locations, VPCs, the policy) come first, so all of them are listed;
    # the rest of the count is pairs (a failed round counts each of its pairs).
    pairs = outcome.failed_count - sum(n for kind, n in kinds.items() if kind != "pair")
    said = [f"{pairs} of the reconcile's pairs did not converge"] if pairs > 0 else []
    if kinds["location"]:
        said.append(f"{kinds['location']} account(s) and region(s) could not be read")
    if kinds["vpc"]:
        said.append(f"{kinds['vpc']} VPC(s) have invalid tags")
    if kinds["policy"]:
        said.append("the group policy cannot be used")
    head = (
        f"{'; '.join(said) or 'the reconcile did not converge'} (desired "
        f"{outcome.desired}, created {outcome.created}, repaired {outcome.repaired}, removed "
        f"{outcome.removed}, unchanged {outcome.unchanged}): "
    )
    parts: list[str] = []
    size = len(head)
    for failure in outcome.failed:
        group = f" [{failure.group}]" if failure.group else ""
        subject = "group policy" if _kind(failure) == "policy" else failure.subject
        part = f"{subject}{group}: {failure.error}"
        if size + len(part) + 2 > limit:
            break
        parts.append(part)
        size += len(part) + 2
    rest = outcome.failed_count - len(parts)
    tail = f"; and {rest} more (see the execution output and its child executions)" if rest else ""
    return head + "; ".join(parts) + tail
