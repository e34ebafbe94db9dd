"""A VPC's tag change: queued for the next tag-started reconcile, which it starts unless one is
waiting to begin already."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from . import locks
from .aws import Access, Location, aws_call, safe_name
from .errors import ConfigurationError, InvalidInput
from .groups import VpcKey
from .models.documents import TagChangeOutcome
from .models.requests import TagChangeEvent
from .observability import logger
from .settings import Settings

#: A reconcile started by tag events begins this long after its window ends: time for EC2 to
#: show the last tag change of the window (eventual consistency), and for clocks to differ.
SETTLE_SECONDS = 5
_VPC_ARN = re.compile(r"^arn:aws[a-z-]*:ec2:([a-z0-9-]+):([0-9]{12}):vpc/(vpc-[0-9a-f]+)$")


def vpc_of_event(event: TagChangeEvent) -> VpcKey:
    """The VPC whose tags changed; the event's account must be the VPC's (a forwarded event
    keeps the account it happened in)."""
    match = _VPC_ARN.fullmatch(event.resources[0])
    if match is None:
        raise InvalidInput(f"resources[0]: {event.resources[0]!r} is not a VPC ARN")
    region, account, vpc_id = match.groups()
    if (account, region) != (event.account, event.region):
        raise InvalidInput(
            f"resources[0]: {event.resources[0]} is not in the event's account and region "
            f"({event.account} {event.region})"
        )
    return VpcKey(account, region, vpc_id)


def on_tag_change(event: TagChangeEvent, access: Access, settings: Settings) -> TagChangeOutcome:
    """Queue this VPC's tag change for the next tag-started reconcile, and start that reconcile
    unless one is queued already (it begins after its time window ends, then takes every change
    queued by then): at most one tag-started reconcile waits at a time, however many tags
    change. A change to a VPC outside the managed accounts and regions starts nothing."""
    vpc = vpc_of_event(event)
    if not settings.account_allowed(vpc.account_id):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in AllowedAccountIds")
    if not settings.region_managed(vpc.region):
        return TagChangeOutcome(started=False, reason=f"{vpc}: not in ManagedRegions")
    window = settings.tag_event_window_seconds
    number = int(time.time() // window)
    # Named for the event (a redelivered event starts nothing new: StartExecution is
    # idempotent by name and input), begun after the window ends.
    name = f"tags-{window}s-{number}-{safe_name(event.id)[:36]}"
    not_before = (number + 1) * window + SETTLE_SECONDS
    where = (vpc.account_id, vpc.region, vpc.vpc_id)
    if settings.lock_table_name and not locks.queue_tag_change(access, settings, where, name):
        logger.info("tag change queued", vpc=str(vpc))
        return TagChangeOutcome(
            started=False, reason=f"{vpc}: queued for the reconcile waiting to begin"
        )
    arn = _start_reconcile(access, settings, name, not_before)
    logger.info("reconcile started", vpc=str(vpc), execution_arn=arn)
    return TagChangeOutcome(started=arn is not None, execution_arn=arn, reason=str(vpc))


def _start_reconcile(
    access: Access, settings: Settings, name: str, not_before: float
) -> str | None:
    """StartExecution, idempotent by name: the same name and input while the execution runs
    returns it. None when that name's execution has already ended."""
    if not settings.reconcile_state_machine_arn:
        raise ConfigurationError("RECONCILE_STATE_MACHINE_ARN is not configured")
    moment = datetime.fromtimestamp(not_before, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hub = Location(settings.hub_account_id, settings.hub_region)
    with aws_call(f"states:StartExecution {name}", hub):
        try:
            started = access.client("stepfunctions", hub).start_execution(
                stateMachineArn=settings.reconcile_state_machine_arn,
                name=name,
                input=json.dumps({"NotBefore": moment, "TagChanges": True}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return None
            raise
    return str(started["executionArn"])
