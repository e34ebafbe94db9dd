"""The template loader: short tags, and the intrinsics template.yaml relies on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.deploy import substitute
from emulator.template import Resolver, Template, TemplateError, load_yaml

REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
HUB = "123456789012"


def resolver(overrides: dict[str, str] | None = None, path: Path = REPO_TEMPLATE) -> Resolver:
    return Resolver(
        Template.load(path),
        stack_name="vpc-peering",
        region="us-east-1",
        account_id=HUB,
        parameter_overrides=overrides,
    )


def accept_condition(r: Resolver) -> list[str]:
    # SAM puts the function's Policies on the role it generates for it.
    props = r.resolve(r.template.properties("AcceptFunctionRole"))
    statement = next(
        s
        for policy in props["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Sid") == "AcceptOnlyFromTrustedRequesters"
    )
    arns: list[str] = statement["Condition"]["ArnLike"]["ec2:RequesterVpc"]
    return arns


def test_short_tags_become_long_form() -> None:
    # Given YAML with every short tag form the template uses
    text = """
    a: !Ref X
    b: !GetAtt Fn.Arn
    c: !Sub "${AWS::Region}"
    d: !If [Cond, [!Split [",", !Join ["-", [x, y]]]], !Select [0, [z]]]
    e: !Not [!Equals [1, 2]]
    f: !And [!Condition C1, !Or [!Condition C2, !Condition C3]]
    g: !FindInMap [M, k1, k2]
    h: 2012-10-17
    """
    # When it is loaded
    body = load_yaml(text)
    # Then each tag is its long (JSON) form and dates stay strings
    assert body["a"] == {"Ref": "X"}
    assert body["b"] == {"Fn::GetAtt": ["Fn", "Arn"]}
    assert body["c"] == {"Fn::Sub": "${AWS::Region}"}
    assert body["d"]["Fn::If"][1] == [{"Fn::Split": [",", {"Fn::Join": ["-", ["x", "y"]]}]}]
    assert body["e"] == {"Fn::Not": [{"Fn::Equals": [1, 2]}]}
    assert body["f"]["Fn::And"][0] == {"Condition": "C1"}
    assert body["g"] == {"Fn::FindInMap": ["M", "k1", "k2"]}
    assert body["h"] == "2012-10-17"


def test_accept_policy_trusts_only_the_hub_by_default() -> None:
    # Given the template with TrustedRequesterAccountIds left empty
    r = resolver()
    # When the AcceptFunction policy's !If is resolved
    arns = accept_condition(r)
    # Then only the hub account's VPCs are trusted
    assert len(arns) == 1
    assert re.fullmatch(rf"arn:[^:]+:ec2:\*:{HUB}:vpc/\*", arns[0]), arns


def test_accept_policy_split_join_trick_yields_one_arn_per_account() -> None:
    # Given two trusted requester accounts
    r = resolver({"TrustedRequesterAccountIds": "111111111111,222222222222"})
    # When the !Split/!Sub/!Join trick is resolved
    arns = accept_condition(r)
    # Then there is one VPC ARN pattern per account, in order
    assert len(arns) == 2
    for arn, account in zip(arns, ["111111111111", "222222222222"], strict=True):
        assert re.fullmatch(rf"arn:[^:]+:ec2:\*:{account}:vpc/\*", arn), arn


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({}, HUB), ({"TrustedRequesterAccountIds": "111111111111"}, "111111111111")],
)
def test_trusted_requester_env_if(overrides: dict[str, str], expected: str) -> None:
    # Given the template, with or without trusted requesters
    r = resolver(overrides)
    # When a function's environment (SAM merged Globals into it) is resolved
    env = r.resolve(r.template.properties("PlanFunction"))["Environment"]["Variables"]
    # Then TRUSTED_REQUESTER_ACCOUNT_IDS follows the !If, and Refs became strings
    assert env["TRUSTED_REQUESTER_ACCOUNT_IDS"] == expected
    assert env["HUB_ACCOUNT_ID"] == HUB
    assert env["LOCK_TABLE_NAME"] == "vpc-peering-LockTable"
    assert env["MAX_PEERINGS_PER_VPC"] == "50"


def test_globals_merge_with_function_properties() -> None:
    # Given AcceptFunction, which overrides Timeout only
    r = resolver()
    # When its properties, as samtranslator made them, are resolved
    props = r.resolve(r.template.properties("AcceptFunction"))
    # Then local scalars win, the rest comes from Globals
    assert props["Timeout"] == 120
    assert props["MemorySize"] == 256
    assert props["Runtime"] == "python3.13"
    assert props["Layers"][0].startswith("arn:aws:lambda:us-east-1:123456789012:layer:")


def test_definition_substitutions_resolve_to_deployed_names() -> None:
    # Given the create state machine
    r = resolver()
    # When its DefinitionSubstitutions are resolved
    subs = r.resolve(r.template.properties("CreateStateMachine"))["DefinitionSubstitutions"]
    # Then function ARNs use the {stack}-{LogicalId} names, the bus its Name
    assert subs["PlanFunctionArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:vpc-peering-PlanFunction"
    )
    assert subs["EventBusName"] == "vpc-peering"
    assert subs["Partition"] == "aws"
    assert r.ref("CreateStateMachine") == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-create"
    )


def test_every_resource_of_the_template_resolves() -> None:
    # Given the real template
    r = resolver({"TrustedRequesterAccountIds": "111111111111"})
    # When every resource's properties and the outputs are resolved
    for logical_id in r.template.resources:
        r.resolve(r.template.properties(logical_id))
    outputs = r.resolve(r.template.section("Outputs"))
    # Then nothing is left unresolved
    assert "Fn::" not in str(outputs)
    assert "'Ref'" not in str(outputs)


def test_remaining_intrinsics(tmp_path: Path) -> None:
    # Given a small template using the other supported intrinsics
    path = tmp_path / "t.yaml"
    path.write_text(
        """
Parameters:
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
Mappings:
  Sizes: {us-east-1: {Small: 1}}
Conditions:
  IsUsEast1: !Equals [!Ref AWS::Region, us-east-1]
  Never: !Not [!Condition IsUsEast1]
  Both: !And [!Condition IsUsEast1, !Or [!Condition Never, !Equals [x, x]]]
Resources:
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: bus}}
"""
    )
    r = resolver(path=path)
    # When / Then
    assert r.resolve({"Fn::Select": [1, {"Ref": "Names"}]}) == "b"
    assert r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Small"]}) == 1
    assert r.condition("Both") is True
    assert r.condition("Never") is False
    assert r.resolve({"Fn::Sub": "${!Literal}-${AWS::StackName}"}) == "${Literal}-vpc-peering"
    assert r.resolve({"Fn::Sub": ["${X}-${Bus.Arn}", {"X": {"Ref": "Bus"}}]}) == (
        "bus-arn:aws:events:us-east-1:123456789012:event-bus/bus"
    )
    assert r.resolve({"k": {"Fn::If": ["Never", 1, {"Ref": "AWS::NoValue"}]}}) == {}


@pytest.mark.parametrize(
    "node",
    [{"Fn::Base64": "x"}, {"Ref": "Nope"}, {"Fn::GetAtt": ["EventBus", "Nope"]}],
)
def test_unsupported_intrinsics_fail_loudly(node: dict[str, object]) -> None:
    # Given the template / When an unsupported intrinsic is resolved / Then TemplateError
    with pytest.raises(TemplateError):
        resolver().resolve(node)


def test_parameter_overrides_are_validated() -> None:
    # Given / When an override breaks AllowedPattern, or names no parameter / Then TemplateError
    with pytest.raises(TemplateError, match="does not match"):
        resolver({"TrustedRequesterAccountIds": "12345"})
    with pytest.raises(TemplateError, match="undeclared"):
        resolver({"NoSuchParameter": "x"})


def test_definition_substitution_is_plain_text() -> None:
    # Given a definition with ${Key} placeholders / When substituted / Then all are replaced
    assert substitute('{"a": "${A}", "b": "x${A}${B}"}', {"A": "1", "B": 2}) == (
        '{"a": "1", "b": "x12"}'
    )
