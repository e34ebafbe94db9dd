"""Hostile input: the entry points take anything, change nothing, and say what is wrong.

Plan and CleanupPlan are called through their real Lambda handlers with any JSON value and
with near-valid requests (wrong types, malformed ids, huge lists, unicode and control
characters, nested junk). Each either plans (only valid input), or refuses with
``InvalidInput`` (``VpcNotFound`` for well-formed ids that do not exist) whose bounded message
starts with the field path at fault; none makes a mutating EC2 call. The accept function gets
arbitrary event details: it never accepts a peering the policy does not allow, reports a
malformed detail that carries a token as ``InvalidInput`` and ignores one without a token.

The tests at the end of each section pin defects they found (messages growing with the input,
Unicode digits in account ids and regions, made-up regions, unvalidated cleanup and event
sides), now fixed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from vpc_peering import acceptance, peering
from vpc_peering.aws import Access
from vpc_peering.errors import InvalidInput, NotManaged, TransientAwsError, VpcNotFound
from vpc_peering.handlers import accept, cleanup_plan, plan
from vpc_peering.models.requests import CreateRequest
from vpc_peering.models.vocabulary import TAG_EXECUTION, TAG_MANAGED_BY
from vpc_peering.settings import Settings

from .helpers import (
    HUB_ACCOUNT,
    MEMBER_ACCOUNT,
    MEMBER_ROLE_NAME,
    REGION,
    STACK_NAME,
    FakeLambdaContext,
    FakeStepFunctions,
    TutorialVpcs,
    mutating,
    run_step,
)

FAST = hypothesis_settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
#: An error message goes into the execution's Cause and logs: it must stay short.
MAX_MESSAGE = 4096
UNTRUSTED_ACCOUNT = "222222222222"
CONTEXT = FakeLambdaContext()

PLAN_FIELDS = ("input", "Requester", "Accepter", "DnsResolution", "Tags", "DryRun")
SIDE_FIELDS = (
    "VpcId",
    "Region",
    "AccountId",
    "RoleArn",
    "RouteTables",
    "RouteTableIds",
    "SubnetIds",
    "DedicatedRouteTable",
    "DestinationCidrs",
    "Ipv6",
)
CLEANUP_FIELDS = (
    "input",
    "VpcPeeringConnectionId",
    "Region",
    "AccountId",
    "RoleArn",
    "Requester",
    "Accepter",
)
#: Every name a request field answers to (PascalCase alias or snake_case name), lowercased.
FIELD_NAMES = {
    name.lower()
    for pascal in (*PLAN_FIELDS, *SIDE_FIELDS)
    for name in (pascal, re.sub(r"(?<!^)([A-Z])", r"_\1", pascal))
}


@dataclass
class Outcome:
    result: Any = None
    error: Exception | None = None


def invoke(handler: Any, event: Any) -> Outcome:
    try:
        return Outcome(result=handler.lambda_handler(event, CONTEXT))
    except Exception as exc:  # the test decides which exceptions are acceptable
        return Outcome(error=exc)


def names_a_field(message: str, roots: Iterable[str]) -> bool:
    """The message starts with a field path: ``Root:``, ``Root.sub...`` or ``Root[i]...``."""
    return any(
        message.startswith(root) and message[len(root) : len(root) + 1] in (":", ".", "[")
        for root in roots
    )


def keys_of(value: Any) -> tuple[str, ...]:
    return tuple(str(k) for k in value) if isinstance(value, dict) else ()


# ---------------------------------------------------------------------------- strategies
#: Strings with unicode, control characters and look-alikes of real values.
texts = st.text(max_size=40) | st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\n",
        "vpc-0123abcd",
        "subnet-0123abcd",
        "rtb-0123abcd",
        "pcx-0123abcd",
        "10.0.0.0/16",
        "all",
        "main",
        "us-east-1",
        "123456789012",
        "null",
        "true",
        "\u202evpc-0123abcd",
        "vpc-0123abcd\u200b",
    ]
)
keys = st.sampled_from(
    [*PLAN_FIELDS[1:], *SIDE_FIELDS, "VpcPeeringConnectionId", "TaskToken", "ExecutionName"]
) | st.text(max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)
#: Any JSON value, but objects shaped like a request more often than chance.
request_like = json_values | st.fixed_dictionaries(
    {}, optional={"Requester": json_values, "Accepter": json_values, "Tags": json_values}
)
non_strings = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), scalars, max_size=3)
)
non_bools = (
    st.sampled_from(["true", "false", "True", "1", "0", "yes", ""])
    | st.integers()
    | st.floats(allow_nan=False)
    | st.none()
    | st.lists(st.booleans(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.booleans(), max_size=2)
)
hex_chars = "0123456789abcdef"
ROLE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-"


def malformed_ids(prefix: str) -> st.SearchStrategy[Any]:
    """Ids that must not pass as ``<prefix>-`` ids: wrong length, case, chars, prefix, type."""
    pattern = re.compile(rf"{prefix}-[0-9a-f]{{8}}([0-9a-f]{{9}})?")
    wrong_length = st.integers(0, 30).filter(lambda n: n not in (8, 17))
    candidates = st.one_of(
        wrong_length.flatmap(
            lambda n: st.text(alphabet=hex_chars, min_size=n, max_size=n).map(
                lambda h: f"{prefix}-{h}"
            )
        ),
        st.text(alphabet="0123456789ABCDEF", min_size=8, max_size=8).map(lambda h: f"{prefix}-{h}"),
        st.text(min_size=8, max_size=8).map(lambda h: f"{prefix}-{h}"),
        st.text(alphabet=hex_chars, min_size=8, max_size=8).map(lambda h: f"{prefix.upper()}-{h}"),
        st.text(alphabet=hex_chars, min_size=8, max_size=8).map(lambda h: f"{prefix}_{h}"),
        st.text(alphabet=hex_chars, min_size=8, max_size=8).map(lambda h: f" {prefix}-{h}"),
        st.tuples(
            st.text(alphabet=hex_chars, min_size=8, max_size=8),
            st.sampled_from(["\n", "\r\n", "\x00", "\t", " ", "\u200b", "\u00a0"]),
        ).map(lambda p: f"{prefix}-{p[0]}{p[1]}"),
        st.sampled_from(["vpc", "subnet", "rtb", "pcx", "igw", "eni"])
        .filter(lambda other: other != prefix)
        .map(lambda other: f"{other}-0123abcd"),
        texts,
    ).filter(lambda v: not pattern.fullmatch(v))
    return candidates | non_strings


def well_formed_ids(prefix: str) -> st.SearchStrategy[str]:
    return st.sampled_from([8, 17]).flatmap(
        lambda n: st.text(alphabet=hex_chars, min_size=n, max_size=n).map(lambda h: f"{prefix}-{h}")
    )


#: Shapes that are not region names; Unicode digits and made-up regions have their own tests.
bad_regions = (
    st.text(max_size=20).filter(lambda s: not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", s))
    | st.sampled_from(["US-EAST-1", "us-east-1 ", "useast1", "us-east-123", "us_east_1", "-1"])
    | non_strings
)
bad_accounts = (
    st.text(max_size=20).filter(lambda s: not re.fullmatch(r"\d{12}", s))
    | st.integers(0, 10**13).map(str).filter(lambda s: len(s) != 12)
    | st.integers(10**11, 10**12 - 1)  # twelve digits, but a number
    | st.sampled_from(["12345678901 ", "1234567890123", "12345678901a", "-12345678901"])
    | non_strings
)
bad_role_arns = (
    st.sampled_from(
        [
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::12345678901:role/VpcPeeringMemberRole",
            "arn:aws:sts::123456789012:role/VpcPeeringMemberRole",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/has space",
            "VpcPeeringMemberRole",
        ]
    )
    | texts
    | non_strings
)
bad_cidrs = (
    st.sampled_from(
        [
            "10.0.0.1/16",
            "300.0.0.0/8",
            "172.16.0.0/33",
            "172.16.0.0/-1",
            "172.16.0.0 /16",
            "172.16.0.0/16\n",
            "::g/64",
            "",
            "0x0a000000/8",
        ]
    )
    | st.text(max_size=30).filter(lambda s: not _is_network(s))
    | non_strings
)


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class World:
    """The tutorial's VPCs (10.0.0.0/16 and 172.16.0.0/16) and their main route tables."""

    t: TutorialVpcs
    main1: str
    main2: str


@pytest.fixture
def world(tutorial: TutorialVpcs, main_table: Callable[..., str]) -> World:
    return World(tutorial, main_table(tutorial.vpc1), main_table(tutorial.vpc2))


@st.composite
def valid_side(draw: st.DrawFn, vpc_id: str, subnet: str, main: str, peer: str) -> dict[str, Any]:
    """A valid side object for an existing VPC; ``peer`` is the other VPC's CIDR prefix."""
    side: dict[str, Any] = {"VpcId": vpc_id}
    if draw(st.booleans()):
        side["Region"] = REGION
    if draw(st.booleans()):
        side["AccountId"] = HUB_ACCOUNT
    if draw(st.integers(0, 4)) == 0:
        side["RoleArn"] = f"arn:aws:iam::{HUB_ACCOUNT}:role/{MEMBER_ROLE_NAME}"
    selector = draw(st.sampled_from(["none", "all", "main", "ids", "subnets", "tables"]))
    if selector == "tables":
        side["RouteTables"] = draw(st.sampled_from(["all", "main", "none"]))
    elif selector == "ids":
        side["RouteTableIds"] = [main]
    elif selector == "subnets":
        side["SubnetIds"] = [subnet]
    elif selector in ("all", "main"):
        side["RouteTables"] = selector
    if draw(st.booleans()):
        side["DedicatedRouteTable"] = {"SubnetIds": [subnet]}
    if draw(st.booleans()):
        thirds = draw(st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True))
        side["DestinationCidrs"] = [f"{peer}.{n}.0/24" for n in thirds]
    if draw(st.booleans()):
        side["Ipv6"] = False  # true needs IPv6 CIDRs these VPCs lack (refused, as it should be)
    return side


TAG_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.:/=+-@éß"
safe_tag_keys = st.text(alphabet=TAG_ALPHABET, min_size=1, max_size=128).filter(
    lambda k: not k.lower().startswith(("aws:", "vpc-peering:"))
)
#: Characters EC2 refuses in tags (NUL poisoned every later describe on the emulator).
bad_tag_chars = st.sampled_from(["\x00", "\x1f", "\n", ";", "<", "*", "\u200b", "\U0001f600"])


@st.composite
def valid_requests(draw: st.DrawFn, w: World) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Requester": draw(valid_side(w.t.vpc1, w.t.subnet1, w.main1, "172.16")),
        "Accepter": draw(valid_side(w.t.vpc2, w.t.subnet2, w.main2, "10.0")),
    }
    for name in ("DnsResolution", "DryRun"):
        if draw(st.booleans()):
            request[name] = draw(st.booleans())
    if draw(st.booleans()):
        request["Tags"] = draw(
            st.dictionaries(safe_tag_keys, st.text(alphabet=TAG_ALPHABET, max_size=256), max_size=5)
        )
    return request


@dataclass
class Case:
    """A request, the errors it may end with, and the field path the message must start with."""

    request: Any
    path: str
    errors: tuple[type[Exception], ...] = (InvalidInput,)


@st.composite
def near_valid_cases(draw: st.DrawFn, w: World) -> Case:
    """One valid request with exactly one thing wrong, and where the refusal must point."""
    request = draw(valid_requests(w))
    side_name = draw(st.sampled_from(["Requester", "Accepter"]))
    side = request[side_name]
    kind = draw(
        st.sampled_from(
            [
                "vpc_id",
                "id_list",
                "huge_list",
                "extra_field",
                "bool",
                "tags",
                "route_tables",
                "two_selectors",
                "cidrs",
                "cidr_outside",
                "region",
                "account",
                "role_arn",
                "role_name",
                "role_account",
                "same_vpc",
                "side_type",
                "missing_side",
                "dedicated",
                "missing_vpc",
                "missing_subnet",
                "missing_table",
                "other_vpcs_subnet",
                "not_an_object",
                "nested_junk",
            ]
        )
    )
    at = side_name
    if kind == "vpc_id":
        side["VpcId"] = draw(malformed_ids("vpc"))
        return Case(request, f"{at}.VpcId")
    if kind == "id_list":
        name, prefix = draw(
            st.sampled_from([("SubnetIds", "subnet"), ("RouteTableIds", "rtb"), ("Dedicated", "")])
        )
        ids_prefix = prefix or "subnet"
        ids = draw(st.lists(well_formed_ids(ids_prefix), min_size=0, max_size=5, unique=True))
        problem = draw(st.sampled_from(["bad_item", "many_bad", "empty", "repeat", "not_a_list"]))
        if problem == "bad_item":
            ids.insert(draw(st.integers(0, len(ids))), draw(malformed_ids(ids_prefix)))
        elif problem == "many_bad":  # one error per item: the message must still be bounded
            ids = [f"{ids_prefix}-{n}" for n in range(draw(st.integers(50, 200)))]
        elif problem == "empty":
            ids = []
        elif problem == "repeat":
            ids = [*ids, *ids] if ids else [f"{ids_prefix}-0123abcd"] * 2
        else:
            ids = draw(st.sampled_from([f"{ids_prefix}-0123abcd", {"0": ids}, 7, True]))
        for selector in ("RouteTables", "RouteTableIds", "SubnetIds"):
            side.pop(selector, None)
        if name == "Dedicated":
            side["DedicatedRouteTable"] = {"SubnetIds": ids}
            return Case(request, f"{at}.DedicatedRouteTable")
        side[name] = ids
        return Case(request, f"{at}.{name}")
    if kind == "huge_list":
        name, prefix = draw(st.sampled_from([("SubnetIds", "subnet"), ("RouteTableIds", "rtb")]))
        count = draw(st.integers(201, 5000))
        ids = [f"{prefix}-{n:08x}" for n in range(count)]
        if draw(st.booleans()):
            ids[draw(st.integers(0, count - 1))] = draw(malformed_ids(prefix))
        for selector in ("RouteTables", "RouteTableIds", "SubnetIds"):
            side.pop(selector, None)
        side[name] = ids
        return Case(request, f"{at}.{name}")
    if kind == "extra_field":
        key = draw(st.text(min_size=0, max_size=40).filter(lambda k: k.lower() not in FIELD_NAMES))
        value = draw(json_values)
        where = draw(st.sampled_from(["top", "side", "dedicated"]))
        if where == "top":
            request[key] = value
            return Case(request, key or "input")
        if where == "dedicated":
            side["DedicatedRouteTable"] = {"SubnetIds": [w.t.subnet1], key: value}
            return Case(request, f"{at}.DedicatedRouteTable.{key}")
        side[key] = value
        return Case(request, f"{at}.{key}")
    if kind == "bool":
        name = draw(st.sampled_from(["DnsResolution", "DryRun", "Ipv6"]))
        if name == "Ipv6":
            side["Ipv6"] = draw(non_bools)
            return Case(request, f"{at}.Ipv6")
        request[name] = draw(non_bools)
        return Case(request, name)
    if kind == "tags":
        problem = draw(
            st.sampled_from(
                [
                    "not_a_dict",
                    "value_type",
                    "key_long",
                    "value_long",
                    "reserved",
                    "many",
                    "empty",
                    "key_char",
                    "value_char",
                ]
            )
        )
        tags = draw(
            st.dictionaries(safe_tag_keys, st.text(alphabet=TAG_ALPHABET, max_size=20), max_size=3)
        )
        if problem == "not_a_dict":
            request["Tags"] = draw(st.lists(st.text(max_size=5), max_size=3) | st.integers())
            return Case(request, "Tags")
        if problem == "value_type":
            tags["k"] = draw(non_strings)
        elif problem == "key_long":
            tags[draw(st.text(min_size=129, max_size=300))] = "v"
        elif problem == "value_long":
            tags["k"] = draw(st.text(min_size=257, max_size=600))
        elif problem == "reserved":
            prefix = draw(st.sampled_from(["aws:", "AWS:", "Aws:", "vpc-peering:", "VPC-Peering:"]))
            tags[prefix + draw(st.text(max_size=20))] = "v"
        elif problem == "key_char":
            tags["k" + draw(bad_tag_chars)] = "v"
        elif problem == "value_char":
            tags["k"] = "v" + draw(bad_tag_chars)
        elif problem == "many":
            tags = {f"key-{n}": "v" for n in range(draw(st.integers(41, 2000)))}
        else:
            tags[""] = "v"
        request["Tags"] = tags
        return Case(request, "Tags")
    if kind == "route_tables":
        for selector in ("RouteTableIds", "SubnetIds"):
            side.pop(selector, None)
        side["RouteTables"] = draw(
            st.sampled_from(["ALL", "Main", "main ", "", "any", "dedicated"])
            | non_strings.filter(lambda v: v is not None)
        )
        return Case(request, f"{at}.RouteTables")
    if kind == "two_selectors":
        side.update({"RouteTables": "main", "SubnetIds": [w.t.subnet1]})
        return Case(request, at)
    if kind == "cidrs":
        problem = draw(st.sampled_from(["bad_item", "empty", "repeat", "many", "not_a_list"]))
        peer = "172.16" if side_name == "Requester" else "10.0"
        cidrs = [f"{peer}.1.0/24"]
        if problem == "bad_item":
            cidrs.insert(draw(st.integers(0, 1)), draw(bad_cidrs))
        elif problem == "empty":
            cidrs = []
        elif problem == "repeat":
            cidrs = cidrs * 2
        elif problem == "many":
            cidrs = [f"{peer}.{n}.0/24" for n in range(draw(st.integers(51, 256)))]
        else:
            side["DestinationCidrs"] = draw(st.sampled_from([f"{peer}.1.0/24", 5, {"a": 1}]))
            return Case(request, f"{at}.DestinationCidrs")
        side["DestinationCidrs"] = cidrs
        return Case(request, f"{at}.DestinationCidrs")
    if kind == "cidr_outside":
        own = "10.0" if side_name == "Requester" else "172.16"
        outside = draw(
            st.sampled_from(
                [f"{own}.0.0/16", "0.0.0.0/0", "172.0.0.0/8", "10.0.0.0/8", "192.168.0.0/24"]
            )
            | st.sampled_from(["::/0", "2600:1f18::/56", "fe80::/64"])
        )
        peer = "172.16" if side_name == "Requester" else "10.0"
        if outside in (f"{peer}.0.0/16",) or outside.startswith(peer):
            outside = "192.168.0.0/24"
        cidrs = [f"{peer}.7.0/24"]
        index = draw(st.integers(0, 1))
        cidrs.insert(index, outside)
        if side_name == "Accepter":
            request["Requester"].pop("DestinationCidrs", None)
        side["DestinationCidrs"] = cidrs
        return Case(request, f"{at}.DestinationCidrs[{index}]")
    if kind == "region":
        side["Region"] = draw(bad_regions.filter(lambda v: v is not None))
        return Case(request, f"{at}.Region")
    if kind == "account":
        side["AccountId"] = draw(bad_accounts.filter(lambda v: v is not None))
        return Case(request, f"{at}.AccountId")
    if kind == "role_arn":
        side.pop("AccountId", None)
        side["RoleArn"] = draw(bad_role_arns.filter(lambda v: v is not None))
        return Case(request, f"{at}.RoleArn")
    if kind == "role_name":
        side.pop("AccountId", None)
        name = draw(
            st.text(alphabet=ROLE_NAME_CHARS, min_size=1, max_size=64).filter(
                lambda n: n != MEMBER_ROLE_NAME
            )
        )
        side["RoleArn"] = f"arn:aws:iam::{HUB_ACCOUNT}:role/{name}"
        return Case(request, f"{at}.RoleArn")
    if kind == "role_account":
        side["AccountId"] = HUB_ACCOUNT
        side["RoleArn"] = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{MEMBER_ROLE_NAME}"
        return Case(request, at)
    if kind == "same_vpc":
        request["Accepter"] = {"VpcId": request["Requester"]["VpcId"]}
        return Case(request, "Accepter.VpcId")
    if kind == "side_type":
        request[side_name] = draw(
            st.sampled_from([w.t.vpc1, [w.t.vpc1], [{"VpcId": w.t.vpc1}]]) | non_strings
        )
        return Case(request, at)
    if kind == "missing_side":
        del request[side_name]
        return Case(request, at)
    if kind == "dedicated":
        side["DedicatedRouteTable"] = draw(
            st.sampled_from([[], "subnet-0123abcd", {}, {"SubnetId": [w.t.subnet1]}, 3])
        )
        return Case(request, f"{at}.DedicatedRouteTable")
    if kind == "missing_vpc":
        side["VpcId"] = draw(well_formed_ids("vpc"))
        return Case(request, f"{at}.VpcId", (VpcNotFound,))
    if kind in ("missing_subnet", "missing_table", "other_vpcs_subnet"):
        if side_name == "Accepter":
            request["Requester"] = {"VpcId": w.t.vpc1}
        for selector in ("RouteTables", "RouteTableIds", "SubnetIds"):
            side.pop(selector, None)
        side.pop("DedicatedRouteTable", None)
        other_subnet = w.t.subnet2 if side_name == "Requester" else w.t.subnet1
        if kind == "missing_table":
            side["RouteTableIds"] = [draw(well_formed_ids("rtb"))]
            return Case(request, f"{at}.RouteTableIds[0]", (VpcNotFound,))
        subnet = draw(well_formed_ids("subnet")) if kind == "missing_subnet" else other_subnet
        if draw(st.booleans()):
            side["SubnetIds"] = [subnet]
            return Case(request, f"{at}.SubnetIds[0]", (VpcNotFound,))
        side["DedicatedRouteTable"] = {"SubnetIds": [subnet]}
        return Case(request, f"{at}.DedicatedRouteTable.SubnetIds[0]", (VpcNotFound,))
    if kind == "not_an_object":
        return Case(draw(st.lists(json_values, max_size=3) | scalars), "input")
    # nested junk in a field that wants a scalar or a flat list
    name = draw(st.sampled_from(["VpcId", "Region", "AccountId", "RouteTables"]))
    side[name] = draw(json_values.filter(lambda v: isinstance(v, (list, dict))))
    return Case(request, f"{at}.{name}")


def peer_cidrs(ec2: Any, vpc_id: str) -> list[Any]:
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    return [ipaddress.ip_network(a["CidrBlock"]) for a in vpc["CidrBlockAssociationSet"]]


# ------------------------------------------------------------------------------------ plan
@FAST
@given(request=request_like)
def test_plan_takes_any_json_value(request: Any, aws: None, ec2_calls: list[str]) -> None:
    # Given any JSON value as the create machine's input
    ec2_calls.clear()
    # When the Plan step's handler runs on it
    outcome = invoke(plan, {"Request": request, "ExecutionName": "e"})
    # Then nothing was changed in EC2
    assert mutating(ec2_calls) == []
    # And a plan comes back only for a valid request
    if outcome.error is None:
        CreateRequest.model_validate(request)
        return
    # Or it is refused as InvalidInput (VpcNotFound for well-formed ids), naming the field
    assert type(outcome.error) in (InvalidInput, VpcNotFound), repr(outcome.error)
    message = str(outcome.error)
    assert names_a_field(message, PLAN_FIELDS + keys_of(request)), message
    assert len(message) < MAX_MESSAGE


@FAST
@given(data=st.data())
def test_plan_refuses_near_valid_requests_naming_the_field(
    data: st.DataObject, world: World, ec2_calls: list[str]
) -> None:
    # Given a valid request with one thing wrong (type, id, list, tag, CIDR, role, ...)
    case = data.draw(near_valid_cases(world))
    ec2_calls.clear()
    # When the Plan step's handler runs on it
    outcome = invoke(plan, {"Request": case.request, "ExecutionName": "e"})
    # Then it is refused with the expected error, its message starting with the field's path
    assert outcome.error is not None, f"planned: {json.dumps(case.request)[:500]}"
    assert type(outcome.error) in case.errors, repr(outcome.error)
    message = str(outcome.error)
    assert message.startswith(case.path), (case.path, message)
    assert message[len(case.path) : len(case.path) + 1] in (":", ".", "[")
    # And the message is bounded even for thousands of ids
    assert len(message) < MAX_MESSAGE
    # And nothing was changed in EC2
    assert mutating(ec2_calls) == []


@hypothesis_settings(FAST, max_examples=40)  # each example makes ~6 EC2 reads
@given(data=st.data())
def test_plan_plans_valid_requests_routing_only_to_the_peer(
    data: st.DataObject, world: World, ec2: Any, ec2_calls: list[str]
) -> None:
    # Given a valid request (selectors, dedicated tables, narrower destinations, tags, flags)
    request = data.draw(valid_requests(world))
    ec2_calls.clear()
    # When the Plan step's handler runs on it
    outcome = invoke(plan, {"Request": request, "ExecutionName": "e"})
    # Then it returns a plan and changed nothing
    assert outcome.error is None, repr(outcome.error)
    assert mutating(ec2_calls) == []
    document = outcome.result
    assert document["PeeringAction"] == "create"
    # And every route goes to a CIDR inside the peer VPC as EC2 reports it
    peer_of = {
        "Requester": peer_cidrs(ec2, world.t.vpc2),
        "Accepter": peer_cidrs(ec2, world.t.vpc1),
    }
    for route in document["Routes"]:
        net = ipaddress.ip_network(route["Destination"])
        assert any(net.subnet_of(block) for block in peer_of[route["Side"]]), route
        assert route["State"] == "planned"
    # And exactly the asked-for destinations, or the peer's CIDRs when none were asked for
    for name in ("Requester", "Accepter"):
        wanted = request[name].get("DestinationCidrs") or [str(b) for b in peer_of[name]]
        planned = {r["Destination"] for r in document["Routes"] if r["Side"] == name}
        assert planned <= set(wanted)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"SubnetIds": [f"subnet-{n}" for n in range(200)]}, id="200-bad-ids"),
        pytest.param({"RouteTableIds": [f"rtb-{n:08x}" for n in range(5000)]}, id="5000-ids"),
        pytest.param({"DestinationCidrs": [f"10.{n}.0.1/16" for n in range(50)]}, id="50-cidrs"),
        pytest.param(
            {"DedicatedRouteTable": {"SubnetIds": [{"x": [n]} for n in range(200)]}},
            id="200-junk-items",
        ),
        pytest.param({f"Junk{n}": n for n in range(3000)}, id="3000-unknown-fields"),
    ],
)
def test_plan_message_is_bounded_for_thousands_of_errors(
    change: dict[str, Any], aws: None, ec2_calls: list[str]
) -> None:
    # Given a request whose requester has hundreds or thousands of things wrong
    request = {"Requester": {"VpcId": "vpc-0123abcd", **change}, "Accepter": {"VpcId": "x"}}
    # When planned / Then one InvalidInput names the first fields and counts the rest, briefly
    with pytest.raises(InvalidInput, match=r"^Requester\.") as caught:
        plan.lambda_handler({"Request": request, "ExecutionName": "e"}, CONTEXT)
    assert len(str(caught.value)) < MAX_MESSAGE
    assert mutating(ec2_calls) == []


def test_cleanup_message_is_bounded_for_thousands_of_errors(
    aws: None, ec2_calls: list[str]
) -> None:
    # Given a cleanup input with thousands of malformed fields
    side = side_ref("vpc-0123abcd")
    request = {
        "VpcPeeringConnectionId": "pcx-0123abcd",
        "Requester": {**side, "VpcId": "x" * 5000, "AccountId": ["1"] * 5000},
        "Accepter": {**side, "Region": "r" * 5000},
        **{f"Region{n}": n for n in range(3000)},
    }
    # When CleanupPlan runs / Then one short InvalidInput naming the fields
    with pytest.raises(InvalidInput, match=r"^Requester\.VpcId: ") as caught:
        cleanup_plan.lambda_handler({"Request": request, "ExecutionName": "c"}, CONTEXT)
    assert len(str(caught.value)) < MAX_MESSAGE
    assert mutating(ec2_calls) == []


BIG = 10_000


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"x" * BIG: 1}, id="unknown-key"),
        pytest.param({"Tags": {"k" * BIG: "v"}}, id="tag-key"),
        pytest.param({"Tags": {f"aws:{'a' * 120}{n:03}": "v" for n in range(40)}}, id="reserved"),
        pytest.param(
            {"Requester": {"VpcId": "vpc-0123abcd", "DestinationCidrs": ["1" * BIG]}},
            id="cidr",
        ),
    ],
)
def test_plan_message_is_bounded_for_huge_strings(
    change: dict[str, Any], aws: None, ec2_calls: list[str]
) -> None:
    # Given a request with one huge string in it
    request = {"Requester": {"VpcId": "vpc-0123abcd"}, "Accepter": {"VpcId": "vpc-4567abcd"}}
    request.update(change)
    # When planned / Then InvalidInput, with a message of bounded size
    with pytest.raises(InvalidInput) as caught:
        plan.lambda_handler({"Request": request, "ExecutionName": "e"}, CONTEXT)
    assert len(str(caught.value)) < MAX_MESSAGE
    assert mutating(ec2_calls) == []


FULLWIDTH_DIGITS = "１２３４５６７８９０１２"
ARABIC_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"


@pytest.mark.parametrize(
    ("side", "path"),
    [
        pytest.param({"AccountId": ARABIC_DIGITS}, "Requester.AccountId", id="account"),
        pytest.param({"AccountId": FULLWIDTH_DIGITS}, "Requester.AccountId", id="fullwidth"),
        pytest.param({"Region": "us-east-\u0661"}, "Requester.Region", id="region"),
        pytest.param(
            {"RoleArn": f"arn:aws:iam::{ARABIC_DIGITS}:role/{MEMBER_ROLE_NAME}"},
            "Requester.RoleArn",
            id="role",
        ),
    ],
)
def test_plan_refuses_non_ascii_digits_in_ids(
    side: dict[str, str], path: str, world: World, ec2_calls: list[str]
) -> None:
    # Given an account id, region or role whose digits are not ASCII
    request = {"Requester": {"VpcId": world.t.vpc1, **side}, "Accepter": {"VpcId": world.t.vpc2}}
    # When planned / Then InvalidInput naming the field, and nothing changed
    with pytest.raises(InvalidInput, match=rf"^{re.escape(path)}: "):
        plan.lambda_handler({"Request": request, "ExecutionName": "e"}, CONTEXT)
    assert mutating(ec2_calls) == []


def test_plan_refuses_a_region_that_does_not_exist(world: World, ec2_calls: list[str]) -> None:
    # Given a side in a region of the right shape that AWS does not have
    request = {
        "Requester": {"VpcId": world.t.vpc1, "Region": "zz-nowhere-9"},
        "Accepter": {"VpcId": world.t.vpc2},
    }
    # When planned / Then InvalidInput naming the field
    with pytest.raises(InvalidInput, match=r"^Requester\.Region: "):
        plan.lambda_handler({"Request": request, "ExecutionName": "e"}, CONTEXT)
    assert mutating(ec2_calls) == []


# ---------------------------------------------------------------------------------- cleanup
@pytest.fixture
def by_hand(world: World, ec2: Any) -> str:
    """A pending peering someone made by hand between the tutorial's VPCs (not this stack's)."""
    made = ec2.create_vpc_peering_connection(VpcId=world.t.vpc1, PeerVpcId=world.t.vpc2)
    return str(made["VpcPeeringConnection"]["VpcPeeringConnectionId"])


def side_ref(vpc_id: str, **extra: Any) -> dict[str, Any]:
    return {"VpcId": vpc_id, "AccountId": HUB_ACCOUNT, "Region": REGION, **extra}


@st.composite
def cleanup_cases(draw: st.DrawFn, w: World, by_hand: str) -> Case:
    """A cleanup input with at most one thing wrong, and what must come of it."""
    request: dict[str, Any] = {"VpcPeeringConnectionId": draw(well_formed_ids("pcx"))}
    if draw(st.booleans()):
        request["Requester"] = side_ref(w.t.vpc1)
        if draw(st.booleans()):
            request["Accepter"] = side_ref(w.t.vpc2)
    kind = draw(
        st.sampled_from(
            [
                "ok",
                "id",
                "id_missing",
                "region",
                "account",
                "role_arn",
                "role_name",
                "side_type",
                "side_field",
                "side_lists",
                "side_role",
                "not_ours",
                "not_an_object",
            ]
        )
    )
    if kind == "ok":
        return Case(request, "", ())
    if kind == "id":
        request["VpcPeeringConnectionId"] = draw(malformed_ids("pcx"))
        return Case(request, "VpcPeeringConnectionId")
    if kind == "id_missing":
        del request["VpcPeeringConnectionId"]
        return Case(request, "VpcPeeringConnectionId")
    if kind == "region":
        request.pop("Requester", None)
        request["Region"] = draw(bad_regions.filter(lambda v: v is not None))
        return Case(request, "Region")
    if kind == "account":
        request.pop("Requester", None)
        request["AccountId"] = draw(bad_accounts.filter(lambda v: v is not None))
        return Case(request, "AccountId")
    if kind == "role_arn":
        request.pop("Requester", None)
        request["RoleArn"] = draw(bad_role_arns.filter(lambda v: v is not None))
        return Case(request, "RoleArn")
    if kind == "role_name":
        request.pop("Requester", None)
        request["RoleArn"] = f"arn:aws:iam::{HUB_ACCOUNT}:role/Admin"
        return Case(request, "RoleArn")
    side_name = draw(st.sampled_from(["Requester", "Accepter"]))
    vpc = w.t.vpc1 if side_name == "Requester" else w.t.vpc2
    if kind == "side_type":
        request[side_name] = draw(
            st.sampled_from([vpc, [vpc]]) | non_strings.filter(lambda v: v is not None)
        )
        return Case(request, side_name)
    if kind == "side_field":
        name = draw(st.sampled_from(["VpcId", "AccountId", "Region"]))
        side = side_ref(vpc)
        if draw(st.booleans()):
            del side[name]
        else:
            side[name] = draw(non_strings.filter(lambda v: v is not None))
        request[side_name] = side
        return Case(request, f"{side_name}.{name}")
    if kind == "side_lists":
        name = draw(st.sampled_from(["CidbBlocks", "CidrBlocks", "RouteTableIds", "SubnetIds"]))
        request[side_name] = side_ref(vpc, **{name: [7] * draw(st.integers(1, 5000))})
        # Cleanup reads only where a side is (VpcId, AccountId, Region, RoleArn): the rest of
        # a create output's side, junk included, is ignored rather than refused.
        return Case(request, "", ())
    if kind == "side_role":
        request["Requester"] = side_ref(w.t.vpc1, RoleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/Admin")
        request["Accepter"] = side_ref(w.t.vpc2)
        return Case(request, "Requester.RoleArn")
    if kind == "not_ours":
        request["VpcPeeringConnectionId"] = by_hand
        return Case(request, by_hand, (NotManaged,))
    return Case(draw(st.lists(json_values, max_size=3) | scalars), "input")


def nothing_to_do(document: dict[str, Any]) -> bool:
    return (
        document["Status"] == "not found"
        and document["Routes"] == []
        and document["DedicatedRouteTables"] == []
        and document["Removed"] == {"Routes": [], "RouteTables": [], "PeeringDeleted": False}
    )


def unchecked_side(request: Any) -> bool:
    """A side object whose AccountId/Region are strings but not the hub's: the loose ``Side``
    model lets those through unchecked (see ``test_cleanup_refuses_malformed_sides``)."""
    return isinstance(request, dict) and any(
        isinstance(side := request.get(name), dict)
        and all(isinstance(side.get(k), str) for k in ("VpcId", "AccountId", "Region"))
        and (side["AccountId"], side["Region"]) != (HUB_ACCOUNT, REGION)
        for name in ("Requester", "Accepter")
    )


@FAST
@given(request=json_values)
def test_cleanup_takes_any_json_value(request: Any, aws: None, ec2_calls: list[str]) -> None:
    # Given any JSON value as the cleanup machine's input (but a known-unchecked side)
    assume(not unchecked_side(request))
    ec2_calls.clear()
    # When the CleanupPlan step's handler runs on it
    outcome = invoke(cleanup_plan, {"Request": request, "ExecutionName": "c"})
    # Then nothing was changed in EC2
    assert mutating(ec2_calls) == []
    # And it is refused as InvalidInput naming the field, or there is nothing to do
    if outcome.error is None:
        assert nothing_to_do(outcome.result), outcome.result
        return
    assert type(outcome.error) is InvalidInput, repr(outcome.error)
    message = str(outcome.error)
    # (an unknown key of the input is named as such: "VpcId: unknown field")
    assert names_a_field(message, CLEANUP_FIELDS + keys_of(request)), message
    assert len(message) < MAX_MESSAGE


@FAST
@given(data=st.data())
def test_cleanup_refuses_near_valid_input_naming_the_field(
    data: st.DataObject, world: World, by_hand: str, ec2: Any, ec2_calls: list[str]
) -> None:
    # Given a cleanup input with at most one thing wrong
    case = data.draw(cleanup_cases(world, by_hand))
    ec2_calls.clear()
    # When the CleanupPlan step's handler runs on it
    outcome = invoke(cleanup_plan, {"Request": case.request, "ExecutionName": "c"})
    # Then nothing was changed in EC2
    assert mutating(ec2_calls) == []
    if not case.errors:
        # And a well-formed input naming no existing peering finds nothing to do
        assert outcome.error is None, repr(outcome.error)
        assert nothing_to_do(outcome.result), outcome.result
        return
    # Or it is refused with the expected error, naming the field (or the peering)
    assert type(outcome.error) in case.errors, repr(outcome.error)
    message = str(outcome.error)
    assert message.startswith(case.path), (case.path, message)
    assert len(message) < MAX_MESSAGE
    # And the peering made by hand is still pending
    found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[by_hand])
    assert found["VpcPeeringConnections"][0]["Status"]["Code"] == "pending-acceptance"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param(
            {"Requester": side_ref("vpc-0123abcd", Region="日本")},
            "Requester.Region",
            id="side-region",
        ),
        pytest.param(
            {"Requester": side_ref("vpc-0123abcd", AccountId="abc")},
            "Requester.AccountId",
            id="side-account",
        ),
        pytest.param({"Region": "us-east-\u0661"}, "Region", id="region-digits"),
        pytest.param({"AccountId": ARABIC_DIGITS}, "AccountId", id="account-digits"),
    ],
)
def test_cleanup_refuses_malformed_sides(
    change: dict[str, Any], path: str, aws: None, ec2_calls: list[str]
) -> None:
    # Given a cleanup input whose side or location is malformed
    request = {"VpcPeeringConnectionId": "pcx-0123456789abcdef0", **change}
    if "Requester" in request:
        request["Accepter"] = side_ref("vpc-4567abcd")
    # When planned / Then InvalidInput naming the field
    with pytest.raises(InvalidInput, match=rf"^{re.escape(path)}: "):
        cleanup_plan.lambda_handler({"Request": request, "ExecutionName": "c"}, CONTEXT)
    assert mutating(ec2_calls) == []


# ---------------------------------------------------------------------------------- accept
@pytest.fixture
def fake_sfn(fake_sfn: FakeStepFunctions, monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    """conftest's, with every token live; and a peering that is still on its way is not waited
    for here: the event is retried instead."""
    monkeypatch.setattr(acceptance, "ACCEPT_WAIT_SECONDS", 0.0)
    return fake_sfn


@dataclass(frozen=True)
class Truth:
    """A peering as EC2 has it: sides (vpc, account, region), execution tag, trusted or not."""

    name: str
    requester: tuple[str, str, str]
    accepter: tuple[str, str, str]
    execution: str | None
    trusted: bool


def stack_tags(execution: str) -> list[dict[str, Any]]:
    tags = [
        {"Key": TAG_MANAGED_BY, "Value": STACK_NAME},
        {"Key": TAG_EXECUTION, "Value": execution},
    ]
    return [{"ResourceType": "vpc-peering-connection", "Tags": tags}]


@pytest.fixture
def peerings(
    world: World,
    make_vpc: Callable[..., str],
    ec2: Any,
    ec2_in: Callable[[str], Any],
    access: Access,
    settings: Settings,
) -> dict[str, Truth]:
    """Pending peerings an event could name: this stack's for exec-1, one made by hand, one
    tagged like the stack's for another execution, one deleted, and an untrusted account's
    tagged like the stack's for exec-1."""
    t = world.t
    doc = peering.plan(
        {"Requester": {"VpcId": t.vpc1}, "Accepter": {"VpcId": t.vpc2}}, "exec-1", access, settings
    ).dump()
    ours = run_step(peering.create_peering, doc, access, settings)["VpcPeeringConnectionId"]

    def made(client: Any, a: str, b: str, **kwargs: Any) -> str:
        found = client.create_vpc_peering_connection(VpcId=a, PeerVpcId=b, **kwargs)
        return str(found["VpcPeeringConnection"]["VpcPeeringConnectionId"])

    hub = (HUB_ACCOUNT, REGION)
    a, b, c, d, e, f = (make_vpc(f"10.{n}.0.0/16") for n in range(1, 7))
    by_hand = made(ec2, a, b)
    other = made(ec2, c, d, TagSpecifications=stack_tags("exec-other"))
    deleted = made(ec2, e, f, TagSpecifications=stack_tags("exec-1"))
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=deleted)
    g = make_vpc("10.7.0.0/16", account=UNTRUSTED_ACCOUNT)
    h = make_vpc("10.8.0.0/16", account=UNTRUSTED_ACCOUNT)
    untrusted = made(ec2_in(UNTRUSTED_ACCOUNT), g, h, TagSpecifications=stack_tags("exec-1"))
    far = (UNTRUSTED_ACCOUNT, REGION)
    return {
        ours: Truth("ours", (t.vpc1, *hub), (t.vpc2, *hub), "exec-1", True),
        by_hand: Truth("by-hand", (a, *hub), (b, *hub), None, True),
        other: Truth("tagged-for-other", (c, *hub), (d, *hub), "exec-other", True),
        deleted: Truth("deleted", (e, *hub), (f, *hub), "exec-1", True),
        untrusted: Truth("untrusted", (g, *far), (h, *far), "exec-1", False),
    }


def claim(side: tuple[str, str, str]) -> dict[str, Any]:
    return {"VpcId": side[0], "AccountId": side[1], "Region": side[2]}


@st.composite
def details(draw: st.DrawFn, truths: dict[str, Truth]) -> tuple[Any, bool]:
    """An event detail, and whether its schema is broken (by construction)."""
    ids = sorted(truths)
    all_sides = [s for truth in truths.values() for s in (truth.requester, truth.accepter)]
    detail: dict[str, Any] = {}
    broken = False
    token = draw(
        st.sampled_from(["token", "tok\x00\n", "ünïcode-токен"])
        | st.text(min_size=1, max_size=30)
        | st.sampled_from(["", None, 0, 1, [], {}, ["token"]])
        | st.just("t" * 5000)
    )
    if draw(st.integers(0, 9)):
        detail["TaskToken"] = token
        broken |= isinstance(token, str) and len(token) > 4096
    pcx = draw(st.sampled_from(ids) | well_formed_ids("pcx") | malformed_ids("pcx"))
    if draw(st.integers(0, 9)):
        detail["VpcPeeringConnectionId"] = pcx
        broken |= not (isinstance(pcx, str) and re.fullmatch(r"pcx-[0-9a-f]{8}([0-9a-f]{9})?", pcx))
    else:
        broken = True
    truth = truths.get(pcx) if isinstance(pcx, str) else None
    for name in ("Requester", "Accepter"):
        real = getattr(truth, name.lower()) if truth else draw(st.sampled_from(all_sides))
        how = draw(
            st.sampled_from(["true", "true", "other", "swap_vpc", "account", "region", "junk", ""])
        )
        if how == "":
            broken = True
            continue
        side = claim(real)
        if how == "other":
            side = claim(draw(st.sampled_from(all_sides)))
        elif how == "swap_vpc":
            side["VpcId"] = draw(st.sampled_from([s[0] for s in all_sides]))
        elif how == "account":
            side["AccountId"] = draw(
                st.sampled_from([HUB_ACCOUNT, MEMBER_ACCOUNT, UNTRUSTED_ACCOUNT])
            )
        elif how == "region":
            side["Region"] = draw(st.sampled_from([REGION, "us-west-2", "eu-west-1"]))
        elif how == "junk":
            part = draw(st.sampled_from(["VpcId", "AccountId", "Region", "*"]))
            if part == "*":
                side = draw(non_strings.filter(lambda v: not isinstance(v, dict)))
            elif draw(st.booleans()):
                del side[part]
            else:
                side[part] = draw(non_strings.filter(lambda v: v is not None))
            broken = True
        if isinstance(side, dict) and draw(st.integers(0, 5)) == 0:
            role = draw(
                st.sampled_from(
                    [
                        None,
                        f"arn:aws:iam::{side.get('AccountId')}:role/{MEMBER_ROLE_NAME}",
                        f"arn:aws:iam::{HUB_ACCOUNT}:role/Admin",
                    ]
                )
            )
            side["RoleArn"] = role
        detail[name] = side
    execution = draw(
        st.sampled_from(["exec-1", "exec-other", None, "", "EXEC-1"])
        | st.text(max_size=10)
        | st.integers()
        | st.lists(st.just("exec-1"), max_size=1)
    )
    if draw(st.integers(0, 5)):
        detail["ExecutionName"] = execution
        broken |= execution is not None and not isinstance(execution, str)
    for key in draw(st.lists(st.text(max_size=10), max_size=2)):
        if key.lower().replace("_", "") not in DETAIL_FIELDS:
            detail[key] = draw(json_values)  # unknown keys are ignored
    return detail, broken


DETAIL_FIELDS = {"tasktoken", "vpcpeeringconnectionid", "requester", "accepter", "executionname"}


def policy_allows(detail: dict[str, Any], truths: dict[str, Truth], pending: set[str]) -> bool:
    """The documented accept policy, applied to the event and EC2's truth."""
    token = detail.get("TaskToken")
    pcx = detail.get("VpcPeeringConnectionId")
    truth = truths.get(pcx) if isinstance(pcx, str) else None
    if not (isinstance(token, str) and 0 < len(token) <= 4096) or truth is None:
        return False

    def matches(name: str, real: tuple[str, str, str]) -> bool:
        side = detail.get(name)
        return (
            isinstance(side, dict)
            and (
                side.get("VpcId"),
                side.get("AccountId"),
                side.get("Region"),
            )
            == real
        )

    accepter_role = detail["Accepter"].get("RoleArn") if matches("Accepter", truth.accepter) else 0
    member_role = f"arn:aws:iam::{truth.accepter[1]}:role/{MEMBER_ROLE_NAME}"
    return (
        matches("Requester", truth.requester)
        and matches("Accepter", truth.accepter)
        and accepter_role in (None, member_role)
        and truth.trusted
        # Requested by this stack (its tag, for any execution: a pending request of an earlier
        # execution is what Plan reuses); the event's ExecutionName is not trusted.
        and truth.execution is not None
        and pcx in pending
    )


def pending_peerings(ec2_in: Callable[[str], Any], truths: dict[str, Truth]) -> set[str]:
    """The peerings still pending acceptance, each read in its requester's account."""
    pending = set()
    for pcx, truth in truths.items():
        found = ec2_in(truth.requester[1]).describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[pcx]
        )["VpcPeeringConnections"]
        if found and found[0]["Status"]["Code"] == "pending-acceptance":
            pending.add(pcx)
    return pending


@FAST
@given(data=st.data())
def test_accept_never_accepts_what_policy_does_not_allow(
    data: st.DataObject,
    peerings: dict[str, Truth],
    fake_sfn: FakeStepFunctions,
    ec2_in: Callable[[str], Any],
    ec2_calls: list[str],
) -> None:
    # Given an arbitrary "acceptance requested" detail naming (or not) the peerings EC2 has
    detail, broken = data.draw(details(peerings))
    pending = pending_peerings(ec2_in, peerings)
    allowed = not broken and policy_allows(detail, peerings, pending)
    ec2_calls.clear()
    fake_sfn.calls.clear()
    # When the accept function gets it
    outcome = invoke(accept, {"detail": detail})
    # Then it makes no mutating EC2 call but AcceptVpcPeeringConnection, and that only when
    # the policy allows it (and then it does accept)
    accepted = [c for c in ec2_calls if c == "AcceptVpcPeeringConnection"]
    assert [c for c in mutating(ec2_calls) if c != "AcceptVpcPeeringConnection"] == []
    assert accepted == (["AcceptVpcPeeringConnection"] if allowed else []), detail
    token = detail.get("TaskToken")
    if not isinstance(token, str) or not token:
        # And without a usable token the event is ignored: no report, no AWS call at all
        assert outcome.result == {"Reported": False}
        assert fake_sfn.calls == []
        assert ec2_calls == []
        return
    if broken:
        # And a malformed detail with a token is reported as InvalidInput naming the field
        assert outcome.error is None, repr(outcome.error)
        assert [kind for kind, _ in fake_sfn.calls] == ["heartbeat", "failure"]
        report = fake_sfn.calls[1][1]
        assert report["error"] == "InvalidInput"
        assert report["cause"].startswith("detail."), report["cause"]
        assert len(report["cause"]) < MAX_MESSAGE
        assert ec2_calls == []
        return
    # And a well-formed one is reported (or retried if the peering is not where it points)
    if outcome.error is not None:
        assert type(outcome.error) is TransientAwsError, repr(outcome.error)
        assert [kind for kind, _ in fake_sfn.calls] == ["heartbeat"]
        return
    kinds = [kind for kind, _ in fake_sfn.calls]
    assert kinds == ["heartbeat", "success" if allowed else kinds[-1]]
    if kinds[-1] == "success":
        output = json.loads(fake_sfn.calls[-1][1]["output"])
        assert output["VpcPeeringConnectionId"] == detail["VpcPeeringConnectionId"]
        assert output["AcceptedNow"] is allowed
    else:
        assert fake_sfn.calls[-1][1]["error"] in (
            "AcceptDenied",
            "InvalidInput",
            "PeeringFailed",
        ), fake_sfn.calls[-1]


def test_accept_accepts_exactly_the_peerings_policy_allows(
    peerings: dict[str, Truth],
    fake_sfn: FakeStepFunctions,
    ec2_in: Callable[[str], Any],
    ec2_calls: list[str],
) -> None:
    # Given a truthful detail (EC2's sides, the execution the tags name) for every peering
    outcomes: dict[str, str] = {}
    for pcx, truth in peerings.items():
        detail = {
            "TaskToken": "token",
            "VpcPeeringConnectionId": pcx,
            "Requester": claim(truth.requester),
            "Accepter": claim(truth.accepter),
            "ExecutionName": truth.execution or "exec-1",
        }
        # When the accept function gets it
        fake_sfn.calls.clear()
        accept.lambda_handler({"detail": detail}, CONTEXT)
        kind, report = fake_sfn.calls[-1]
        outcomes[truth.name] = "accepted" if kind == "success" else report["error"]
    # Then only pending, trusted peerings tagged as this stack's for that execution are accepted
    # (the tags are the ownership proof: one tagged like the stack's is accepted too)
    assert outcomes == {
        "ours": "accepted",
        "by-hand": "AcceptDenied",
        "tagged-for-other": "accepted",
        "deleted": "PeeringFailed",
        "untrusted": "AcceptDenied",
    }
    assert ec2_calls.count("AcceptVpcPeeringConnection") == 2
    assert pending_peerings(ec2_in, peerings) == {
        pcx for pcx, truth in peerings.items() if truth.name in ("by-hand", "untrusted")
    }


def test_accept_reports_a_malformed_region_as_invalid_input(
    peerings: dict[str, Truth], fake_sfn: FakeStepFunctions, ec2_calls: list[str]
) -> None:
    # Given a detail with a live token whose accepter region is not a region name
    pcx, truth = next(iter(peerings.items()))
    detail = {
        "TaskToken": "token",
        "VpcPeeringConnectionId": pcx,
        "Requester": claim(truth.requester),
        "Accepter": {**claim(truth.accepter), "Region": "日本"},
        "ExecutionName": "exec-1",
    }
    # When the accept function gets it
    reported = accept.lambda_handler({"detail": detail}, CONTEXT)
    # Then InvalidInput naming the field is reported to the waiting task, and nothing accepted
    assert reported == {"Reported": True, "Error": "InvalidInput"}
    assert fake_sfn.calls[-1][1]["cause"].startswith("detail.Accepter.Region")
    assert "AcceptVpcPeeringConnection" not in ec2_calls
