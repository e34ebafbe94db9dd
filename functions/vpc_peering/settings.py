"""Function configuration, read from the environment the template sets."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    """Stack-wide settings; every function gets the same environment (template Globals)."""

    stack_name: str = Field(min_length=1)
    hub_account_id: str = Field(pattern=r"^\d{12}$")
    hub_region: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    event_source: str = Field(min_length=1)
    member_role_name: str = Field(min_length=1)
    trusted_requester_account_ids: frozenset[str]
    accepter_opt_in_tag_key: str | None = None
    max_peerings_per_vpc: int = Field(default=50, ge=1)
    max_routes_per_table: int = Field(default=50, ge=1)
    lock_table_name: str | None = None

    @field_validator("trusted_requester_account_ids", mode="before")
    @classmethod
    def _split_accounts(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_requester_account_ids")
    @classmethod
    def _valid_accounts(cls, value: frozenset[str]) -> frozenset[str]:
        bad = sorted(a for a in value if not (a.isdigit() and len(a) == 12))
        if bad:
            raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        hub = env.get("HUB_ACCOUNT_ID", "")
        return cls(
            stack_name=env.get("STACK_NAME", ""),
            hub_account_id=hub,
            hub_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
            event_bus_name=env.get("EVENT_BUS_NAME", ""),
            event_source=env.get("EVENT_SOURCE", "vpc-peering-automation"),
            member_role_name=env.get("MEMBER_ROLE_NAME", ""),
            trusted_requester_account_ids=env.get("TRUSTED_REQUESTER_ACCOUNT_IDS") or hub,
            accepter_opt_in_tag_key=env.get("ACCEPTER_OPT_IN_TAG_KEY") or None,
            max_peerings_per_vpc=int(env.get("MAX_PEERINGS_PER_VPC", "50")),
            max_routes_per_table=int(env.get("MAX_ROUTES_PER_TABLE", "50")),
            lock_table_name=env.get("LOCK_TABLE_NAME") or None,
        )
