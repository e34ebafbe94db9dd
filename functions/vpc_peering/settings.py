"""Function configuration, read from the environment the template sets."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator, model_validator


def _account_set(value: object) -> object:
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


def _check_accounts(value: frozenset[str]) -> frozenset[str]:
    # [0-9], not isdigit(): Unicode digits are not account ids.
    bad = sorted(a for a in value if not (len(a) == 12 and all("0" <= c <= "9" for c in a)))
    if bad:
        raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
    return value


class Settings(BaseModel):
    """Stack-wide settings; every function gets the same environment (template Globals)."""

    stack_name: str = Field(min_length=1)
    hub_account_id: str = Field(pattern=r"^[0-9]{12}$")
    hub_region: str = Field(min_length=1)
    member_role_name: str = Field(min_length=1)
    #: Sent with every AssumeRole of the member role, whose trust policy requires it.
    member_role_external_id: str | None = None
    #: The trust boundary: every side of every request must be in one of these accounts.
    allowed_account_ids: frozenset[str]
    trusted_requester_account_ids: frozenset[str]
    accepter_opt_in_tag_key: str | None = None
    max_peerings_per_vpc: int = Field(default=50, ge=1)
    max_routes_per_table: int = Field(default=50, ge=1)
    lock_table_name: str | None = None

    _split = field_validator("allowed_account_ids", "trusted_requester_account_ids", mode="before")(
        _account_set
    )
    _valid = field_validator("allowed_account_ids", "trusted_requester_account_ids")(
        _check_accounts
    )

    @model_validator(mode="after")
    def _trusted_inside_allowed(self) -> Settings:
        outside = sorted(self.trusted_requester_account_ids - self.allowed_account_ids)
        if outside:
            raise ValueError(
                f"TrustedRequesterAccountIds: {', '.join(outside)} not in AllowedAccountIds "
                f"({', '.join(sorted(self.allowed_account_ids))}); a trusted requester must be "
                "an allowed account"
            )
        return self

    def account_allowed(self, account_id: str) -> bool:
        return account_id in self.allowed_account_ids

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        hub = env.get("HUB_ACCOUNT_ID", "")
        return cls(
            stack_name=env.get("STACK_NAME", ""),
            hub_account_id=hub,
            hub_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
            member_role_name=env.get("MEMBER_ROLE_NAME", ""),
            member_role_external_id=env.get("MEMBER_ROLE_EXTERNAL_ID") or None,
            allowed_account_ids=env.get("ALLOWED_ACCOUNT_IDS") or hub,
            trusted_requester_account_ids=env.get("TRUSTED_REQUESTER_ACCOUNT_IDS") or hub,
            accepter_opt_in_tag_key=env.get("ACCEPTER_OPT_IN_TAG_KEY") or None,
            max_peerings_per_vpc=int(env.get("MAX_PEERINGS_PER_VPC", "50")),
            max_routes_per_table=int(env.get("MAX_ROUTES_PER_TABLE", "50")),
            lock_table_name=env.get("LOCK_TABLE_NAME") or None,
        )
