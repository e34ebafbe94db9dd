"""The group policy (``group_policy``, pure) and how the reconcile's planner obeys it: a
VPC's group tag only asks, the hub's policy decides."""

from __future__ import annotations

import json

import pytest

from vpc_peering.errors import GROUP_POLICY_DENIED, GROUP_POLICY_INVALID
from vpc_peering.group_policy import (
    Approval,
    PolicyState,
    approvals_of,
    read,
)
from vpc_peering.network import Scope, hold_removals, plan_network
from vpc_peering.observed import Route
from vpc_peering.settings import Settings

from .network_world import HUB, MEMBER, R1, R2, World

PARAMETER = "/vpc-peering/test/group-policy"
OTHER = "333333333333"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ALLOWED_ACCOUNT_IDS", f"{HUB},{MEMBER},{OTHER}")
    monkeypatch.setenv("TRUSTED_REQUESTER_ACCOUNT_IDS", f"{HUB},{MEMBER}")
    monkeypatch.setenv("MANAGED_REGIONS", f"{R1},{R2}")
    return Settings.from_env()


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


def policy(groups: dict[str, object]) -> PolicyState:
    return read(PARAMETER, json.dumps({"Groups": groups}))


def causes(plan: object) -> list[str]:
    return sorted(r.cause for r in plan.refused)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- the document
def test_a_valid_document_is_read() -> None:
    state = policy(
        {
            "prod": {
                "Accounts": [HUB, MEMBER],
                "Regions": [R1],
                "Cidrs": ["10.0.0.0/8"],
                "Join": "approval",
                "HubAccounts": [HUB],
                "MaxMembers": 40,
                "AllowMoreSpecificRoutes": True,
            },
            "shared": {"Accounts": [HUB]},
        }
    )
    assert state.usable
    assert state.policy is not None
    assert state.policy.groups["prod"].join == "approval"
    assert state.policy.groups["shared"].join == "auto"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "the parameter does not exist"),
        ("{not json", "not JSON"),
        (json.dumps({"Groups": {"prod": {"Accounts": ["12"]}}}), "Groups.prod.Accounts[0]: '12'"),
        (json.dumps({"Groups": {"prod": {}}}), "Groups.prod.Accounts: required"),
        (json.dumps({"Groups": {"prod": {"Accounts": [HUB], "Join": "yes"}}}), "'yes'"),
        (
            json.dumps({"Groups": {"prod": {"Accounts": [HUB], "Cidrs": ["10.0.0.1/8"]}}}),
            "10.0.0.1/8",
        ),
        (json.dumps({"Groups": {"prod": {"Accounts": [HUB], "MaxMembers": 0}}}), "MaxMembers"),
        (json.dumps({"Groups": {"prod": {"Accounts": [HUB], "Acounts": [HUB]}}}), "Acounts"),
        (json.dumps({"Groups": {"bad name": {"Accounts": [HUB]}}}), "'bad name'"),
        (json.dumps([]), "must be a JSON object"),
    ],
)
def test_a_missing_or_invalid_document_closes_every_group_naming_the_problem(
    text: str | None, problem: str
) -> None:
    state = read(PARAMETER, text)
    assert not state.usable
    assert problem in (state.problem or ""), state.problem
    line = state.closed_line()
    assert line.startswith(f"group policy {PARAMETER}: ")
    assert "\n" not in line


# ------------------------------------------------------------------------------ admission
def test_a_group_not_in_the_policy_has_no_members(world: World, settings: Settings) -> None:
    a, b = world.vpc("10.1.0.0/16", mesh="prod"), world.vpc("10.2.0.0/16", mesh="prod")
    plan = plan_network(world.views(), Scope(), settings, policy({"other": {"Accounts": [HUB]}}))
    assert plan.work == []
    assert plan.members == {}
    assert [(r.group, r.key) for r in plan.refused] == [("prod", a), ("prod", b)]
    assert causes(plan) == ["group prod is not in the group policy"] * 2
    assert plan.failed == []  # a refusal is the policy working, not a failure


def test_an_account_not_in_accounts_is_refused_and_the_others_peer(
    world: World, settings: Settings
) -> None:
    # Given a sandbox VPC in a third account tagged into prod, whose policy names two accounts
    a, b = world.vpc("10.1.0.0/16", mesh="prod"), world.vpc("10.2.0.0/16", MEMBER, mesh="prod")
    sandbox = world.vpc("10.3.0.0/16", OTHER, mesh="prod")
    plan = plan_network(
        world.views(), Scope(), settings, policy({"prod": {"Accounts": [HUB, MEMBER]}})
    )
    # Then only the two admitted VPCs peer, and the sandbox is refused, naming the rule
    assert [(w.action, {w.requester, w.accepter}) for w in plan.work] == [("create", {a, b})]
    assert [(r.key, r.cause) for r in plan.refused] == [
        (sandbox, f"account {OTHER} is not in Groups.prod.Accounts")
    ]


def test_a_hub_outside_hub_accounts_is_refused_as_hub(world: World, settings: Settings) -> None:
    hub = world.vpc("10.1.0.0/16", hub="shared")
    spoke = world.vpc("10.2.0.0/16", MEMBER, spoke="shared")
    rogue = world.vpc("10.3.0.0/16", OTHER, hub="shared")
    rules = {"shared": {"Accounts": [HUB, MEMBER, OTHER], "HubAccounts": [HUB]}}
    plan = plan_network(world.views(), Scope(), settings, policy(rules))
    assert [{w.requester, w.accepter} for w in plan.work] == [{hub, spoke}]
    assert [(r.key, r.cause) for r in plan.refused] == [
        (rogue, f"account {OTHER} is not in Groups.shared.HubAccounts (vpc-peering:hub)")
    ]


def test_regions_limit_where_members_may_be(world: World, settings: Settings) -> None:
    world.vpc("10.1.0.0/16", mesh="prod")
    west = world.vpc("10.2.0.0/16", region=R2, mesh="prod")
    rules = {"prod": {"Accounts": [HUB], "Regions": [R1]}}
    plan = plan_network(world.views(), Scope(), settings, policy(rules))
    assert [(r.key, r.cause) for r in plan.refused] == [
        (west, f"region {R2} is not in Groups.prod.Regions")
    ]


def test_a_member_cidr_outside_the_groups_cidrs_is_refused(
    world: World, settings: Settings
) -> None:
    world.vpc("10.1.0.0/16", mesh="prod")
    outside = world.vpc("10.99.0.0/16", secondary=(), mesh="prod")
    rules = {"prod": {"Accounts": [HUB], "Cidrs": ["10.0.0.0/12"]}}
    plan = plan_network(world.views(), Scope(), settings, policy(rules))
    assert [(r.key, r.cause) for r in plan.refused] == [
        (outside, "10.99.0.0/16 is not inside Groups.prod.Cidrs")
    ]


@pytest.mark.parametrize("public", ["8.8.8.0/24", "52.216.0.0/16"])
def test_a_member_with_public_space_is_refused_by_allowed_peer_cidrs(
    world: World, settings: Settings, public: str
) -> None:
    # Given a joiner whose secondary CIDR is public space (a DNS resolver's, S3's)
    world.vpc("10.1.0.0/16", mesh="prod")
    joiner = world.vpc("10.2.0.0/16", secondary=(public,), mesh="prod")
    plan = plan_network(world.views(), Scope(), settings, policy({"prod": {"Accounts": [HUB]}}))
    # Then it is refused and nothing routes its CIDRs
    assert plan.work == []
    assert [(r.key, r.cause) for r in plan.refused] == [
        (joiner, f"{public} is not inside AllowedPeerCidrs")
    ]


def test_max_members_keeps_the_current_members_first(world: World, settings: Settings) -> None:
    # Given a two-member group already peered, and a newcomer whose id sorts first
    a, b = world.vpc("10.1.0.0/16", mesh="prod"), world.vpc("10.2.0.0/16", mesh="prod")
    world.peer(a, b, group="prod")
    newcomer = world.vpc("10.3.0.0/16", mesh="prod")
    rules = {"prod": {"Accounts": [HUB], "MaxMembers": 2}}
    plan = plan_network(world.views(), Scope(), settings, policy(rules))
    assert plan.work == []
    assert plan.unchanged == 1
    assert [(r.key, r.cause) for r in plan.refused] == [
        (newcomer, "group prod is full: Groups.prod.MaxMembers is 2")
    ]


def test_a_vpc_the_policy_no_longer_admits_leaves_under_the_removal_guard(
    world: World, settings: Settings
) -> None:
    # Given a peered pair, then a policy that no longer names the second VPC's account
    a, b = world.vpc("10.1.0.0/16", mesh="prod"), world.vpc("10.2.0.0/16", MEMBER, mesh="prod")
    world.peer(a, b, group="prod")
    plan = plan_network(world.views(), Scope(), settings, policy({"prod": {"Accounts": [HUB]}}))
    # Then its group peering is removed, and the reason names the rule
    [item] = plan.work
    assert item.action == "remove"
    assert item.reason == (
        f"the group policy no longer admits it: account {MEMBER} is not in Groups.prod.Accounts"
    )
    # And the removal guard holds it like any other removal
    hold_removals(plan, 0, confirmed=False)
    assert plan.work == []
    assert len(plan.removals_held) == 1


@pytest.mark.parametrize("text", [None, "{", json.dumps({"Groups": {"prod": {}}})])
def test_without_a_usable_policy_nothing_about_groups_changes(
    world: World, settings: Settings, text: str | None
) -> None:
    # Given a peered pair (which a tag change no longer wants) and two new members
    a, b = world.vpc("10.1.0.0/16", mesh="prod"), world.vpc("10.2.0.0/16", mesh="prod")
    world.peer(a, b, group="prod")
    world.tag(b)
    world.vpc("10.3.0.0/16", mesh="prod"), world.vpc("10.4.0.0/16", mesh="prod")
    # When the policy is missing or invalid
    plan = plan_network(world.views(), Scope(), settings, read(PARAMETER, text))
    # Then nothing is created or removed, nobody is refused one by one, and one line says why
    assert plan.work == []
    assert plan.refused == []
    [failure] = plan.failed
    assert failure.error == GROUP_POLICY_INVALID
    assert failure.cause.startswith(f"group policy {PARAMETER}: ")
    assert plan.policy_closed is not None


def test_without_groups_a_missing_policy_is_not_a_failure(world: World, settings: Settings) -> None:
    world.vpc("10.1.0.0/16")
    plan = plan_network(world.views(), Scope(), settings, read(PARAMETER, None))
    assert plan.failed == []
    assert plan.policy_closed is not None


def test_refusals_are_listed_for_the_scope_only(world: World, settings: Settings) -> None:
    world.vpc("10.1.0.0/16", OTHER, mesh="prod")
    world.vpc("10.2.0.0/16", OTHER, mesh="dev")
    rules = {"prod": {"Accounts": [HUB]}, "dev": {"Accounts": [HUB]}}
    plan = plan_network(world.views(), Scope(group="dev"), settings, policy(rules))
    assert [r.group for r in plan.refused] == ["dev"]
    assert sorted(r.group for r in plan.all_refused) == ["dev", "prod"]
    assert GROUP_POLICY_DENIED == "GroupPolicyDenied"


def test_a_join_that_needs_approval_waits_and_nothing_is_made(
    world: World, settings: Settings
) -> None:
    a = world.vpc("10.1.0.0/16", mesh="prod")
    b = world.vpc("10.2.0.0/16", secondary=("10.3.0.0/16",), mesh="prod")
    plan = plan_network(
        world.views(), Scope(), settings, policy({"prod": {"Accounts": [HUB], "Join": "approval"}})
    )
    assert plan.work == []
    assert plan.refused == []
    assert [(p.group, p.key, p.cidrs) for p in plan.pending] == [
        ("prod", a, ("10.1.0.0/16",)),
        ("prod", b, ("10.2.0.0/16", "10.3.0.0/16")),
    ]


def test_the_accepter_opt_in_is_required_of_both_vpcs_of_a_group_pair(
    world: World, settings: Settings
) -> None:
    # Given AccepterOptInTagKey, a victim without the tag and an opted-in joiner in one mesh
    opted = settings.model_copy(update={"accepter_opt_in_tag_key": "vpc-peering:opt-in"})
    # (the victim sorts first, so it is the requester: the old check asked only the accepter)
    victim = world.vpc("10.1.0.0/16", MEMBER, mesh="prod")
    world.vpc("10.2.0.0/16", mesh="prod", opt_in="true")
    # When planned / Then the pair is refused naming the VPC without the opt-in, and not made
    plan = plan_network(world.views(), Scope(), opted, world.policy())
    assert plan.work == []
    [failure] = plan.failed
    assert failure.error == "AcceptDenied"
    assert f"accepter VPC {victim.vpc_id} lacks the opt-in tag vpc-peering:opt-in=true" in (
        failure.cause
    )


@pytest.mark.parametrize("allowed", [False, True])
def test_allow_more_specific_routes_is_the_groups_policy_never_a_tag(
    world: World, settings: Settings, allowed: bool
) -> None:
    # Given a member whose table sends 10.0.0.0/8 to a transit gateway (a summary route), and
    # a member tagging itself with an AllowMoreSpecificRoutes-looking tag (which means nothing)
    a = world.vpc("10.1.0.0/16", mesh="prod", allow_more_specific_routes="true")
    world.tables[a][0].routes.append(Route("10.0.0.0/8", "tgw-1", "active", "CreateRoute", None))
    world.vpc("10.2.0.0/16", mesh="prod")
    rules = {"prod": {"Accounts": [HUB], "AllowMoreSpecificRoutes": allowed}}
    # When planned
    plan = plan_network(world.views(), Scope(), settings, policy(rules))
    # Then the narrower peering route is made only when the group's policy allows it
    if allowed:
        assert [w.action for w in plan.work] == ["create"]
        assert plan.narrowing == ["prod"]
    else:
        assert plan.work == []
        assert [f.error for f in plan.failed] == ["RouteConflict"]


def test_approvals_admit_deny_and_pin_the_cidrs(world: World, settings: Settings) -> None:
    # Given an approval group: a approved with its CIDR, b approved before it added a CIDR
    # (its pair with a already made), c denied, d not decided
    rules = {"prod": {"Accounts": [HUB], "Join": "approval"}}
    a = world.vpc("10.1.0.0/16", mesh="prod")
    b = world.vpc("10.2.0.0/16", secondary=("10.22.0.0/16",), mesh="prod")
    c = world.vpc("10.3.0.0/16", mesh="prod")
    d = world.vpc("10.4.0.0/16", mesh="prod")
    world.peer(a, b, group="prod")
    approvals = {
        ("prod", a): Approval("approved", ("10.1.0.0/16",), "arn:aws:iam::1:user/ann", "t1"),
        ("prod", b): Approval("approved", ("10.2.0.0/16",)),
        ("prod", c): Approval("denied", (), "arn:aws:iam::1:user/ann", "t2"),
    }
    plan = plan_network(world.views(), Scope(), settings, policy(rules), approvals)
    # Then a is the only member; b waits with its new CIDR, its approved pair kept as it is
    assert list(plan.members) == [a]
    assert plan.work == []
    assert sorted((p.key, p.cidrs) for p in plan.pending) == sorted(
        [(b, ("10.2.0.0/16", "10.22.0.0/16")), (d, ("10.4.0.0/16",))]
    )
    # And c is refused, saying who denied it and when
    assert [(r.key, r.cause) for r in plan.refused] == [
        (c, "its request to join group prod was denied by arn:aws:iam::1:user/ann at t2 "
         "(vpc-peering deny)")
    ]  # fmt: skip


def test_stored_approvals_are_read_and_bad_entries_left_out() -> None:
    stored = {
        f"prod|{HUB}|{R1}|vpc-1": {"Decision": "approved", "Cidrs": ["10.1.0.0/16"]},
        "broken": {"Decision": "approved"},
        f"prod|{HUB}|{R1}|vpc-2": {"Decision": "maybe"},
    }
    from vpc_peering.groups import VpcKey

    assert approvals_of(stored) == {
        ("prod", VpcKey(HUB, R1, "vpc-1")): Approval("approved", ("10.1.0.0/16",))
    }
