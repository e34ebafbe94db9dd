"""``vpc-peering status`` as text, from a status the NetworkStatus function returned: VPCs
tagged into a group but not admitted, each failure once under a heading that fits it, and a
group policy that cannot be used said as such."""

from __future__ import annotations

from typing import Any

from vpc_peering_cli.network import NetworkView
from vpc_peering_cli.render import PLAIN
from vpc_peering_cli.views import status_lines

HUB = "123456789012"


def vpc(vpc_id: str, name: str, cidr: str, group: str) -> dict[str, Any]:
    return {"VpcId": vpc_id, "AccountId": HUB, "Region": "us-east-1", "Name": name,
            "CidrBlocks": [cidr], "Groups": [f"mesh:{group}"]}  # fmt: skip


def key(vpc_id: str) -> str:
    return f"{vpc_id} ({HUB} us-east-1)"


def text(status: dict[str, Any]) -> str:
    view = NetworkView(status={"Accounts": [HUB], "Regions": ["us-east-1"], **status})
    return "\n".join(status_lines(view, PLAIN))


def test_a_vpc_the_policy_refuses_is_shown_under_its_group_with_the_cause() -> None:
    # Given blue with two members and red with one VPC the policy refuses, one waiting in green
    status = {
        "Groups": {"blue": [key("vpc-a"), key("vpc-b")]},
        "Vpcs": [vpc("vpc-a", "app-1", "10.1.0.0/16", "blue"),
                 vpc("vpc-b", "app-2", "10.2.0.0/16", "blue")],
        "Pairs": [{"Requester": key("vpc-a"), "Accepter": key("vpc-b"), "Groups": ["blue"],
                   "State": "active"}],
        "NotAdmitted": [
            {**vpc("vpc-r", "app-1-copy", "10.1.0.0/16", "red"), "Group": "red",
             "State": "refused", "Error": "GroupPolicyDenied",
             "Cause": "group red is not in the group policy"},
            {**vpc("vpc-g", "new", "10.9.0.0/16", "green"), "Group": "green",
             "State": "pending approval", "Cause": "asks to join with 10.9.0.0/16"},
        ],
    }  # fmt: skip

    # When the status is printed
    out = text(status)

    # Then red is a group of no member, and the refused VPC is listed under it with the cause;
    # the one waiting is under green
    assert "Group red: no member VPC, 0 pair(s)" in out
    assert "  Tagged into red, not members (1)" in out
    row = next(line for line in out.splitlines() if "vpc-r" in line)
    assert "app-1-copy" in row
    assert "refused (GroupPolicyDenied: group red is not in the group policy)" in row
    waiting = next(line for line in out.splitlines() if "vpc-g" in line)
    assert "pending approval (asks to join with 10.9.0.0/16)" in waiting
    assert "No VPC is tagged" not in out


def test_each_failure_is_shown_once_under_a_heading_that_fits_it() -> None:
    # Given a failed pair of blue, an account and region not read, a VPC with invalid tags
    failed_pair = {"Requester": key("vpc-a"), "Accepter": key("vpc-b"), "Groups": ["blue"],
                   "State": "failed", "Detail": "RouteConflict: rtb-1 already routes"}  # fmt: skip
    status = {
        "Groups": {"blue": [key("vpc-a"), key("vpc-b")]},
        "Vpcs": [vpc("vpc-a", "app-1", "10.1.0.0/16", "blue"),
                 vpc("vpc-b", "app-2", "10.2.0.0/16", "blue")],
        "Pairs": [failed_pair],
        "Failed": [
            {"Pair": f"{key('vpc-b')} ~ {key('vpc-a')}", "Group": "blue",
             "Error": "RouteConflict", "Cause": "rtb-1 already routes"},
            {"Location": "111111111111 us-west-2", "Error": "AccessDenied", "Cause": "no role"},
            {"Vpc": key("vpc-x"), "Error": "InvalidInput", "Cause": "bad tag"},
        ],
    }  # fmt: skip

    # When the status is printed
    out = text(status)

    # Then the pair's failure is on its group only; the others under their own headings
    assert out.count("rtb-1 already routes") == 1
    assert "Not read or not valid" not in out
    assert "Accounts and regions not read\n  ✗ 111111111111 us-west-2: AccessDenied: no role" in out
    assert f"VPCs whose tags are not valid\n  ✗ {key('vpc-x')}: InvalidInput: bad tag" in out


def test_a_missing_group_policy_is_said_as_the_policy_closing_every_group() -> None:
    # Given two VPCs tagged into blue and no group policy
    line = (
        "group policy /vpc-peering/vpc-peering/group-policy: the parameter does not exist; "
        "every group is closed, and no group peering is created, changed or removed until it "
        "is fixed"
    )
    refused = {"Group": "blue", "State": "refused", "Error": "GroupPolicyInvalid",
               "Cause": "the group policy cannot be used (no parameter)"}  # fmt: skip
    status = {
        "GroupPolicy": line,
        "NotAdmitted": [{**vpc(v, v, c, "blue"), **refused}
                        for v, c in (("vpc-a", "10.1.0.0/16"), ("vpc-b", "10.2.0.0/16"))],
        "Failed": [{"Error": "GroupPolicyInvalid", "Cause": line}],
    }  # fmt: skip

    # When the status is printed
    out = text(status)

    # Then it does not say no VPC is tagged: it names the policy's parameter once, and the
    # two VPCs under blue as shut out by it
    assert "No VPC is tagged" not in out
    assert out.count("/vpc-peering/vpc-peering/group-policy") == 1
    assert f"\n✗ {line}\n" in out
    assert "  Tagged into blue, not members (2)" in out
    assert "network:" not in out
