"""Function configuration, read from the environment the template sets."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator, model_validator


def _comma_set(value: object) -> object:
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")


def _check_regions(value: frozenset[str]) -> frozenset[str]:
    bad = sorted(r for r in value if not _REGION.fullmatch(r))
    if bad:
        raise ValueError(f"not region names: {', '.join(bad)}")
    return value


def _check_accounts(value: frozenset[str]) -> frozenset[str]:
    # [0-9], not isdigit(): Unicode digits are not account ids.
    bad = sorted(a for a in value if not (len(a) == 12 and all("0" <= c <= "9" for c in a)))
    if bad:
        raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
    return value


#: AllowedPeerCidrs' default: the private ranges (RFC 1918) and the shared space (RFC 6598).
DEFAULT_PEER_CIDRS = frozenset({"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"})


def _check_cidrs(value: frozenset[str]) -> frozenset[str]:
    bad = []
    for cidr in sorted(value):
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            bad.append(cidr)
    if bad:
        raise ValueError(f"AllowedPeerCidrs: not CIDR blocks: {', '.join(bad)}")
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
    #: Accounts outside the boundary whose peering requests a VPC may accept (its
    #: vpc-peering:accept-from tag): the stack never acts in them.
    external_requester_account_ids: frozenset[str] = frozenset()
    #: Reject the pending requests to a managed VPC that the accept policy does not allow.
    reject_unwanted: bool = False
    accepter_opt_in_tag_key: str | None = None
    max_peerings_per_vpc: int = Field(default=50, ge=1)
    max_routes_per_table: int = Field(default=50, ge=1)
    lock_table_name: str | None = None
    #: The bucket Discover writes a reconcile's plan to (its rounds, for the distributed Map).
    plan_bucket_name: str | None = None
    #: Where tag-declared groups are looked for: AllowedAccountIds x these regions.
    managed_regions: frozenset[str] = frozenset()
    #: Child executions the reconcile machine runs at once (its Map's MaxConcurrency).
    max_parallel_pairs: int = Field(default=10, ge=1, le=40)
    #: The create and cleanup machines, which the reconcile machine runs for each pair.
    create_state_machine_arn: str | None = None
    cleanup_state_machine_arn: str | None = None
    reconcile_state_machine_arn: str | None = None
    #: Tag changes within one window of this many seconds start one reconcile.
    tag_event_window_seconds: int = Field(default=20, ge=1, le=3600)
    #: A reconcile that would remove more group peerings than this removes none of them (it
    #: lists them as RemovalsHeld) unless its input says ConfirmRemovals.
    max_removals_per_reconcile: int = Field(default=10, ge=0)
    #: The SSM parameter holding the group policy (who may join which group).
    group_policy_parameter_name: str = ""
    #: Every peer CIDR a route may be made for lies inside one of these (AllowedPeerCidrs).
    allowed_peer_cidrs: frozenset[str] = DEFAULT_PEER_CIDRS

    _split = field_validator(
        "allowed_account_ids",
        "trusted_requester_account_ids",
        "external_requester_account_ids",
        "managed_regions",
        "allowed_peer_cidrs",
        mode="before",
    )(_comma_set)
    _valid = field_validator(
        "allowed_account_ids", "trusted_requester_account_ids", "external_requester_account_ids"
    )(_check_accounts)
    _valid_regions = field_validator("managed_regions")(_check_regions)
    _valid_cidrs = field_validator("allowed_peer_cidrs")(_check_cidrs)

    def policy_parameter(self) -> str:
        """The group policy's SSM parameter: GroupPolicyParameterName, by default
        ``/vpc-peering/<stack name>/group-policy``."""
        return self.group_policy_parameter_name or f"/vpc-peering/{self.stack_name}/group-policy"

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

    def region_managed(self, region: str) -> bool:
        return region in self.managed_regions

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        hub = env.get("HUB_ACCOUNT_ID", "")
        hub_region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", "")
        return cls(
            stack_name=env.get("STACK_NAME", ""),
            hub_account_id=hub,
            hub_region=hub_region,
            member_role_name=env.get("MEMBER_ROLE_NAME", ""),
            member_role_external_id=env.get("MEMBER_ROLE_EXTERNAL_ID") or None,
            allowed_account_ids=env.get("ALLOWED_ACCOUNT_IDS") or hub,
            trusted_requester_account_ids=env.get("TRUSTED_REQUESTER_ACCOUNT_IDS") or hub,
            external_requester_account_ids=env.get("EXTERNAL_REQUESTER_ACCOUNT_IDS", ""),
            reject_unwanted=env.get("REJECT_UNWANTED", "false").lower() == "true",
            accepter_opt_in_tag_key=env.get("ACCEPTER_OPT_IN_TAG_KEY") or None,
            max_peerings_per_vpc=int(env.get("MAX_PEERINGS_PER_VPC", "50")),
            max_routes_per_table=int(env.get("MAX_ROUTES_PER_TABLE", "50")),
            lock_table_name=env.get("LOCK_TABLE_NAME") or None,
            plan_bucket_name=env.get("PLAN_BUCKET_NAME") or None,
            managed_regions=env.get("MANAGED_REGIONS") or hub_region,
            max_parallel_pairs=int(env.get("MAX_PARALLEL_PAIRS", "10")),
            create_state_machine_arn=env.get("CREATE_STATE_MACHINE_ARN") or None,
            cleanup_state_machine_arn=env.get("CLEANUP_STATE_MACHINE_ARN") or None,
            reconcile_state_machine_arn=env.get("RECONCILE_STATE_MACHINE_ARN") or None,
            tag_event_window_seconds=int(env.get("TAG_EVENT_WINDOW_SECONDS", "20")),
            max_removals_per_reconcile=int(env.get("MAX_REMOVALS_PER_RECONCILE", "10")),
            group_policy_parameter_name=env.get("GROUP_POLICY_PARAMETER_NAME", ""),
            allowed_peer_cidrs=env.get("ALLOWED_PEER_CIDRS") or DEFAULT_PEER_CIDRS,
        )
