"""Where each side lives, and as whom it is reached: pure (no call). The account boundary is
enforced here, where every side's location is made."""

from __future__ import annotations

from .errors import AccountNotAllowed, InvalidInput
from .models.vocabulary import Location
from .settings import Settings


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def member_role_arn(account_id: str, region: str, settings: Settings) -> str:
    return f"arn:{partition_for(region)}:iam::{account_id}:role/{settings.member_role_name}"


def check_allowed(account_id: str, settings: Settings, field: str) -> None:
    """The trust boundary: no call is ever made for an account outside AllowedAccountIds."""
    if not settings.account_allowed(account_id):
        raise AccountNotAllowed(
            f"{field}: account {account_id} is not in AllowedAccountIds "
            f"({', '.join(sorted(settings.allowed_account_ids))}); this stack acts only in "
            "those accounts"
        )


def location_for(
    account_id: str,
    region: str,
    role_arn: str | None,
    settings: Settings,
    field: str = "",
    account_field: str = "AccountId",
) -> Location:
    """Where and as whom to call for a side; an explicit role must be the member role.

    Every side's location is made here, so this is where the account boundary is enforced
    (``account_field`` names where the account came from: ``AccountId``, or ``RoleArn``).
    """
    check_allowed(account_id, settings, f"{field}{account_field}")
    if role_arn:
        name = role_arn.rsplit("/", 1)[-1]
        if name != settings.member_role_name:
            raise InvalidInput(
                f"{field}RoleArn: role name {name!r} is not the member role "
                f"{settings.member_role_name!r} this stack may assume"
            )
        if role_arn.split(":")[4] != account_id:
            raise InvalidInput(f"{field}RoleArn: must be a role in account {account_id}")
        return Location(account_id, region, role_arn)
    if account_id == settings.hub_account_id:
        return Location(account_id, region, None)
    return Location(account_id, region, member_role_arn(account_id, region, settings))
