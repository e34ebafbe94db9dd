"""A lease per VPC pair, so concurrent executions for the same pair take turns.

Without it, two creates of the same pair could each see "no peering" and each create one,
and a cleanup could delete a peering a create is still routing. The lease is an item in a
DynamoDB table, written with a condition (free, or already ours). It is taken over only when
its holder has ended (Step Functions says so), never because time passed: an execution can
run longer than any fixed lease (acceptance wait, retries), and a lease that expired under a
running holder would let two executions change one pair. Taking it again as the same owner
succeeds, so a retried step is harmless.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from .aws import Access, Location, aws_call
from .errors import PeeringError, PeeringInProgress
from .hub_store import ANNOUNCED_KEY, APPROVALS_KEY
from .locations import partition_for
from .models.requests import SideRef
from .settings import Settings

#: DynamoDB's TTL clean-up of leases nobody gave back, and nothing else: far beyond the longest
#: execution the state machines allow (tests/contract/test_asl.py computes that bound).
LEASE_SECONDS = 24 * 3600
#: The reconcile lease's TTL: beyond the reconcile machine's own TimeoutSeconds (6 days).
RECONCILE_LEASE_SECONDS = 7 * 24 * 3600
#: The machines whose executions hold leases (``<stack>-<machine>``).
MACHINES = ("create", "cleanup", "reconcile")


def pair_key(*sides: tuple[str, str, str]) -> str:
    """The same key for A-B and B-A: (account, region, vpc) of both sides, sorted."""
    return "|".join(sorted("/".join(side) for side in sides))


def pair_lease(
    requester: SideRef, accepter: SideRef, machine: str, execution: str
) -> tuple[str, str]:
    """The lease key of a VPC pair (the same both ways round), and an execution of ``machine``
    (``create`` or ``cleanup``) as its owner."""
    key = pair_key(
        (requester.account_id, requester.region, requester.vpc_id),
        (accepter.account_id, accepter.region, accepter.vpc_id),
    )
    return key, f"{machine}:{execution}"


#: The key of the one reconcile lease.
RECONCILE_KEY = "reconcile"


def reconcile_lease(execution: str) -> tuple[str, str]:
    """The one lease every reconcile execution takes: one at a time changes the network, so
    that no two executions of two reconciles race on one VPC's route tables."""
    return RECONCILE_KEY, f"reconcile:{execution}"


def _table(access: Access, settings: Settings) -> tuple[Any, Location]:
    hub = Location(settings.hub_account_id, settings.hub_region)
    return access.client("dynamodb", hub), hub


def acquire(
    access: Access,
    settings: Settings,
    key: str,
    owner: str,
    busy: type[PeeringError] = PeeringInProgress,
    seconds: int = LEASE_SECONDS,
    what: str = "this VPC pair",
) -> None:
    """Take the lease ``key`` (on ``what``) for ``owner``; ``busy`` (``PeeringInProgress`` for
    a pair) if another execution holds it. ``seconds``: when DynamoDB's TTL may collect it."""
    if not settings.lock_table_name:
        return
    table, hub = _table(access, settings)
    now = int(time.time())
    with aws_call(f"dynamodb:PutItem {settings.lock_table_name}", hub):
        try:
            _put_lease(
                table,
                settings,
                key,
                owner,
                now + seconds,
                "attribute_not_exists(LockId) OR #o = :me",
                {":me": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            holder = _holder(table, settings, key)
            if holder and not _still_running(access, settings, holder):
                _take_over(table, settings, key, owner, holder, now + seconds, busy, what)
                return
            raise busy(
                f"execution {holder or '?'} is changing {what} ({key}); retry when it ends"
            ) from None


@contextlib.contextmanager
def held_on_success(
    access: Access,
    settings: Settings,
    key: str,
    owner: str,
    busy: type[PeeringError] = PeeringInProgress,
    seconds: int = LEASE_SECONDS,
    what: str = "this VPC pair",
) -> Iterator[None]:
    """Take the lease for the block; give it back if the block fails, keep it if it ends well
    (a later step gives it back): the shape of every first step that takes a lease."""
    acquire(access, settings, key, owner, busy=busy, seconds=seconds, what=what)
    with released_on_failure(access, settings, key, owner):
        yield


@contextlib.contextmanager
def released_on_failure(access: Access, settings: Settings, key: str, owner: str) -> Iterator[None]:
    """A lease already taken is given back if the block fails, kept if it ends well."""
    try:
        yield
    except BaseException:
        release(access, settings, key, owner)
        raise


def _holder(table: Any, settings: Settings, key: str) -> str:
    """Who holds the lease ``key`` ("" when nobody does)."""
    item = table.get_item(TableName=settings.lock_table_name, Key={"LockId": {"S": key}})
    return str(item.get("Item", {}).get("Owner", {}).get("S", ""))


def _put_lease(
    table: Any,
    settings: Settings,
    key: str,
    owner: str,
    expires_at: int,
    condition: str,
    values: dict[str, Any],
) -> None:
    """Write the lease for ``owner`` if ``condition`` holds (Owner is ``#o`` in it)."""
    table.put_item(
        TableName=settings.lock_table_name,
        Item={
            "LockId": {"S": key},
            "Owner": {"S": owner},
            "ExpiresAt": {"N": str(expires_at)},
        },
        ConditionExpression=condition,
        ExpressionAttributeNames={"#o": "Owner"},
        ExpressionAttributeValues=values,
    )


def _still_running(access: Access, settings: Settings, holder: str) -> bool:
    """Whether the execution holding a lease still runs: one that ended without giving it
    back (its compensation could not run) must not block the pair until the lease expires."""
    machine, _, name = holder.partition(":")
    if machine not in MACHINES or not name:
        return True
    hub = Location(settings.hub_account_id, settings.hub_region)
    arn = (
        f"arn:{partition_for(settings.hub_region)}:states:{settings.hub_region}:"
        f"{settings.hub_account_id}:execution:{settings.stack_name}-{machine}:{name}"
    )
    with aws_call(f"states:DescribeExecution {arn}", hub):
        try:
            status = access.client("stepfunctions", hub).describe_execution(executionArn=arn)[
                "status"
            ]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return False
            raise
    return bool(status == "RUNNING")


def _take_over(
    table: Any,
    settings: Settings,
    key: str,
    owner: str,
    holder: str,
    expires_at: int,
    busy: type[PeeringError],
    what: str,
) -> None:
    """Replace a finished execution's lease, unless someone else got there first."""
    try:
        _put_lease(
            table, settings, key, owner, expires_at, "#o = :holder", {":holder": {"S": holder}}
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        raise busy(f"another execution took {what} ({key}) first") from None


def release(access: Access, settings: Settings, key: str, owner: str) -> None:
    """Give the lease back if ``owner`` holds it (a no-op otherwise: safe to repeat)."""
    if not settings.lock_table_name:
        return
    table, hub = _table(access, settings)
    with aws_call(f"dynamodb:DeleteItem {settings.lock_table_name}", hub):
        try:
            table.delete_item(
                TableName=settings.lock_table_name,
                Key={"LockId": {"S": key}},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "Owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


# ------------------------------------------------------------------------ reconcile queue
#: The tag changes no reconcile has taken yet, and the one reconcile queued to take them: at
#: most one tag-started reconcile waits for the reconcile lease at a time, however many tags
#: change; later changes join it (their VPCs are added to the item).
QUEUE_KEY = "reconcile-queue"
#: An operator's reconcile (anything not started by tag changes) waiting for the lease: queued
#: tag reconciles let it go first.
NEXT_KEY = "reconcile-next"

#: Every kind of item in the lock table, as IAM's ``dynamodb:LeadingKeys`` matches its key
#: (``StringLike``): each function's role in template.yaml may touch only the kinds it uses
#: (tests/contract/test_iam.py holds the template to this table). A pair lease's key is two
#: ``account/region/vpc`` sides joined by ``|`` (``pair_key``); no other kind has ``/`` or ``|``.
#: The group-policy items are hub_store's, named here so the kinds are listed in one place.
LOCK_KEY_PATTERNS: dict[str, str] = {
    "pair": "*/*/vpc-*|*/*/vpc-*",
    "reconcile": RECONCILE_KEY,
    "reconcile-next": NEXT_KEY,
    "reconcile-queue": QUEUE_KEY,
    "group-policy-announced": ANNOUNCED_KEY,
    "group-approvals": APPROVALS_KEY,
}


def _vpc_word(account: str, region: str, vpc_id: str) -> str:
    return f"{account}/{region}/{vpc_id}"


def queue_tag_change(
    access: Access, settings: Settings, vpc: tuple[str, str, str], candidate: str
) -> bool:
    """Record that ``vpc`` (account, region, id) changed its tags. True when the reconcile
    ``candidate`` (an execution name) is now the one queued to take the changes, and must be
    started; False when a queued reconcile that has not yet begun will find them."""
    table, hub = _table(access, settings)
    me = f"reconcile:{candidate}"
    expires = int(time.time()) + RECONCILE_LEASE_SECONDS
    with aws_call(f"dynamodb:UpdateItem {settings.lock_table_name}", hub):
        item = table.update_item(
            TableName=settings.lock_table_name,
            Key={"LockId": {"S": QUEUE_KEY}},
            UpdateExpression="ADD Vpcs :v SET #o = if_not_exists(#o, :me), ExpiresAt = :e",
            ExpressionAttributeNames={"#o": "Owner"},
            ExpressionAttributeValues={
                ":v": {"SS": [_vpc_word(*vpc)]},
                ":me": {"S": me},
                ":e": {"N": str(expires)},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        owner = item.get("Owner", {}).get("S", "")
        if owner == me:
            return True
        if _still_running(access, settings, owner):
            return False
        # The queued reconcile ended before it took the changes: this one takes its place.
        try:
            table.update_item(
                TableName=settings.lock_table_name,
                Key={"LockId": {"S": QUEUE_KEY}},
                UpdateExpression="SET #o = :me",
                ConditionExpression="#o = :old",
                ExpressionAttributeNames={"#o": "Owner"},
                ExpressionAttributeValues={":me": {"S": me}, ":old": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False  # another tag change replaced it first
    return True


def take_tag_changes(access: Access, settings: Settings) -> list[tuple[str, str, str]]:
    """Every VPC whose tags changed since the last reconcile took them (and empty the queue,
    so the next change queues a new reconcile): called with the reconcile lease held."""
    table, hub = _table(access, settings)
    with aws_call(f"dynamodb:DeleteItem {settings.lock_table_name}", hub):
        old = table.delete_item(
            TableName=settings.lock_table_name,
            Key={"LockId": {"S": QUEUE_KEY}},
            ReturnValues="ALL_OLD",
        ).get("Attributes", {})
    found = []
    for word in sorted(old.get("Vpcs", {}).get("SS", [])):
        account, _, rest = word.partition("/")
        region, _, vpc_id = rest.partition("/")
        if account and region and vpc_id:
            found.append((account, region, vpc_id))
    return found


def give_back_tag_changes(
    access: Access, settings: Settings, vpcs: list[tuple[str, str, str]]
) -> None:
    """Put taken changes back (the reconcile that took them failed before planning them)."""
    if not vpcs:
        return
    table, hub = _table(access, settings)
    with aws_call(f"dynamodb:UpdateItem {settings.lock_table_name}", hub):
        table.update_item(
            TableName=settings.lock_table_name,
            Key={"LockId": {"S": QUEUE_KEY}},
            UpdateExpression="ADD Vpcs :v",
            ExpressionAttributeValues={":v": {"SS": [_vpc_word(*v) for v in vpcs]}},
        )


def operator_waiting(access: Access, settings: Settings, me: str) -> str | None:
    """The operator's reconcile waiting for the lease (and still running), if another one."""
    table, hub = _table(access, settings)
    with aws_call(f"dynamodb:GetItem {settings.lock_table_name}", hub):
        holder = _holder(table, settings, NEXT_KEY)
    if not holder or holder == me or not _still_running(access, settings, holder):
        return None
    return holder


def wait_first(access: Access, settings: Settings, me: str) -> None:
    """Mark an operator's reconcile as next for the lease, unless another operator's reconcile
    that still runs is marked already (an ended one's mark is taken over)."""
    table, hub = _table(access, settings)
    expires = int(time.time()) + RECONCILE_LEASE_SECONDS
    with aws_call(f"dynamodb:PutItem {settings.lock_table_name}", hub):
        try:
            _put_lease(
                table,
                settings,
                NEXT_KEY,
                me,
                expires,
                "attribute_not_exists(LockId) OR #o = :me",
                {":me": {"S": me}},
            )
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        holder = _holder(table, settings, NEXT_KEY)
        if holder and _still_running(access, settings, holder):
            return
        try:
            _put_lease(table, settings, NEXT_KEY, me, expires, "#o = :old", {":old": {"S": holder}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
