"""``vpc-peering policy --from-tags``: the policy written from the tagged VPCs (pure part)."""

from __future__ import annotations

from vpc_peering import group_policy
from vpc_peering_cli.policy import as_text, policy_from_tagged


def vpc(account: str, region: str, cidrs: list[str], *groups: str) -> dict[str, object]:
    return {"VpcId": "vpc-1", "AccountId": account, "Region": region, "CidrBlocks": cidrs,
            "Groups": list(groups)}  # fmt: skip


def test_each_group_admits_its_tagged_members_and_only_its_hubs_accounts() -> None:
    # Given a mesh over two accounts and regions (adjacent CIDRs, an IPv6 block), and a star
    tagged = [
        vpc("111111111111", "us-east-1", ["10.0.0.0/17", "2600:1f18::/56"], "mesh:prod"),
        vpc("222222222222", "eu-west-1", ["10.0.128.0/17"], "mesh:prod", "spoke:shared"),
        vpc("333333333333", "eu-west-1", ["172.16.0.0/16"], "hub:shared"),
    ]
    # When a policy is written from them
    document = policy_from_tagged(tagged)
    # Then each group names its members' accounts, regions, IPv4 CIDRs (collapsed), hubs
    assert document == {
        "Groups": {
            "prod": {
                "Accounts": ["111111111111", "222222222222"],
                "Regions": ["eu-west-1", "us-east-1"],
                "Cidrs": ["10.0.0.0/16"],
                "Join": "auto",
                "HubAccounts": [],
            },
            "shared": {
                "Accounts": ["222222222222", "333333333333"],
                "Regions": ["eu-west-1"],
                "Cidrs": ["10.0.128.0/17", "172.16.0.0/16"],
                "Join": "auto",
                "HubAccounts": ["333333333333"],
            },
        }
    }
    # And the stack reads it as a valid policy
    state = group_policy.read("/vpc-peering/x/group-policy", as_text(document))
    assert state.usable, state.problem


def test_no_tagged_vpc_is_an_empty_policy_that_closes_every_group() -> None:
    assert policy_from_tagged([]) == {"Groups": {}}
