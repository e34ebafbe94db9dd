"""Settings: the stack configuration read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vpc_peering import runtime
from vpc_peering.settings import Settings

from .helpers import ENV, HUB_ACCOUNT


def test_from_env_reads_the_stack_environment() -> None:
    # Given the stack's environment (set by the autouse fixture)
    # When settings are read
    settings = Settings.from_env()
    # Then each value comes from its variable, with documented defaults
    assert settings.stack_name == "vpc-peering"
    assert settings.hub_account_id == HUB_ACCOUNT
    assert settings.hub_region == "us-east-1"
    assert settings.member_role_name == "VpcPeeringMemberRole"
    assert settings.accepter_opt_in_tag_key is None
    assert settings.max_peerings_per_vpc == 50
    assert settings.max_routes_per_table == 50


def test_trusted_accounts_default_to_the_hub_account(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no TRUSTED_REQUESTER_ACCOUNT_IDS (the template's environment sets it)
    monkeypatch.delenv("TRUSTED_REQUESTER_ACCOUNT_IDS")
    # When settings are read
    settings = Settings.from_env()
    # Then only the hub account is trusted
    assert settings.trusted_requester_account_ids == frozenset({HUB_ACCOUNT})


def test_empty_trusted_accounts_also_default_to_the_hub_account() -> None:
    settings = Settings.from_env({**ENV, "TRUSTED_REQUESTER_ACCOUNT_IDS": ""})
    assert settings.trusted_requester_account_ids == frozenset({HUB_ACCOUNT})


def test_trusted_accounts_parse_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a comma list with spaces and an empty item
    monkeypatch.setenv("TRUSTED_REQUESTER_ACCOUNT_IDS", " 111111111111, 222222222222,,")
    # When settings are read
    settings = Settings.from_env()
    # Then every account is trusted, trimmed, and the hub is not added implicitly
    assert settings.trusted_requester_account_ids == frozenset({"111111111111", "222222222222"})


@pytest.mark.parametrize("bad", ["12345", "1111111111111", "11111111111a", "arn:aws:iam::1"])
def test_trusted_accounts_reject_a_non_12_digit_id(bad: str) -> None:
    # Given a list with one malformed account id
    env = {**ENV, "TRUSTED_REQUESTER_ACCOUNT_IDS": f"111111111111,{bad}"}
    # When settings are read
    with pytest.raises(ValidationError) as caught:
        Settings.from_env(env)
    # Then the bad id is named
    assert "not 12-digit account ids" in str(caught.value)
    assert bad in str(caught.value)


def test_optional_policy_and_quota_settings() -> None:
    env = {
        **ENV,
        "ACCEPTER_OPT_IN_TAG_KEY": "peering-opt-in",
        "MAX_PEERINGS_PER_VPC": "3",
        "MAX_ROUTES_PER_TABLE": "7",
    }
    settings = Settings.from_env(env)
    assert settings.accepter_opt_in_tag_key == "peering-opt-in"
    assert (settings.max_peerings_per_vpc, settings.max_routes_per_table) == (3, 7)


@pytest.mark.parametrize(
    ("key", "value"),
    [("HUB_ACCOUNT_ID", "hub"), ("STACK_NAME", ""), ("MAX_ROUTES_PER_TABLE", "0")],
)
def test_misconfigured_stack_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.from_env({**ENV, key: value})


def test_region_falls_back_to_aws_default_region() -> None:
    env = {k: v for k, v in ENV.items() if k != "AWS_REGION"}
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    assert Settings.from_env(env).hub_region == "eu-west-1"


def test_load_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given settings loaded once
    first = runtime.load_settings()
    # When the environment changes
    monkeypatch.setenv("STACK_NAME", "other")
    # Then the cached settings stay until the cache is cleared (one read per cold start)
    assert runtime.load_settings() is first
    runtime.load_settings.cache_clear()
    assert runtime.load_settings().stack_name == "other"
