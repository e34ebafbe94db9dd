"""What the hub keeps for the reconcile, read and written here: the group policy (an SSM
parameter only the hub's admins write) and the news already announced (an item of the lock
table), so that each refusal is published once."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from .aws import Access, Location, aws_call
from .settings import Settings

#: The lock table item holding the announcements already made (hashes of their keys).
ANNOUNCED_KEY = "group-policy-announced"


def _hub(settings: Settings) -> Location:
    return Location(settings.hub_account_id, settings.hub_region)


def read_group_policy(access: Access, settings: Settings) -> str | None:
    """The group policy document's text; None when the parameter does not exist. Any other
    error (denied, throttled) is raised: the caller closes every group and names it."""
    name = settings.policy_parameter()
    hub = _hub(settings)
    with aws_call(f"ssm:GetParameter {name}", hub):
        try:
            answer = access.client("ssm", hub).get_parameter(Name=name, WithDecryption=False)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise
    return str(answer["Parameter"]["Value"])


def digest_of(key: str) -> str:
    """What the lock table keeps of a piece of news: a short hash of its key."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _item(access: Access, settings: Settings, key: str) -> dict[str, Any]:
    """One item of the lock table, read consistently (empty when there is none)."""
    hub = _hub(settings)
    with aws_call(f"dynamodb:GetItem {settings.lock_table_name}", hub):
        item: dict[str, Any] = (
            access.client("dynamodb", hub)
            .get_item(
                TableName=settings.lock_table_name, Key={"LockId": {"S": key}}, ConsistentRead=True
            )
            .get("Item", {})
        )
    return item


def announced(access: Access, settings: Settings) -> set[str]:
    """The digests of the news already announced."""
    if not settings.lock_table_name:
        return set()
    item = _item(access, settings, ANNOUNCED_KEY)
    return set(item.get("Keys", {}).get("SS", []))


def record_announced(access: Access, settings: Settings, digests: set[str]) -> None:
    """What is announced now: news still true stays announced; news no longer true is
    forgotten (announced again if it comes back)."""
    if not settings.lock_table_name:
        return
    hub = _hub(settings)
    table = access.client("dynamodb", hub)
    with aws_call(f"dynamodb:PutItem {settings.lock_table_name}", hub):
        if digests:
            table.put_item(
                TableName=settings.lock_table_name,
                Item={"LockId": {"S": ANNOUNCED_KEY}, "Keys": {"SS": sorted(digests)}},
            )
        else:
            table.delete_item(
                TableName=settings.lock_table_name, Key={"LockId": {"S": ANNOUNCED_KEY}}
            )


#: The lock table item holding the approvals of join requests (``vpc-peering approve``/``deny``):
#: ``Approvals`` (a map: "<group>|<account>|<region>|<vpc>" -> Decision, Cidrs, By, At) and
#: ``History`` (every decision ever recorded, in order: the audit trail).
APPROVALS_KEY = "group-approvals"


def approval_key(group: str, account: str, region: str, vpc_id: str) -> str:
    return f"{group}|{account}|{region}|{vpc_id}"


def read_approvals(access: Access, settings: Settings) -> dict[str, dict[str, object]]:
    """The recorded decisions by key (``approval_key``), as stored."""
    if not settings.lock_table_name:
        return {}
    item = _item(access, settings, APPROVALS_KEY)
    found: dict[str, dict[str, object]] = {}
    for key, value in item.get("Approvals", {}).get("M", {}).items():
        fields = value.get("M", {})
        found[key] = {
            "Decision": fields.get("Decision", {}).get("S", ""),
            "Cidrs": [c.get("S", "") for c in fields.get("Cidrs", {}).get("L", [])],
            "By": fields.get("By", {}).get("S", ""),
            "At": fields.get("At", {}).get("S", ""),
        }
    return found
