"""Load a CloudFormation template and resolve its intrinsic functions.

Why: the emulator deploys *from template.yaml*, so the environment variables, rule patterns and
state machine substitutions exercised locally are the ones that ship. A SAM template is first
transformed by AWS's own translator (:mod:`emulator.sam`), so what is resolved and deployed is
CloudFormation's resources, as on AWS. Intrinsics the emulator cannot resolve fail loudly
(:class:`TemplateError`) instead of being silently ignored, so a template change the emulator
cannot honour is noticed at start-up.

Physical names are decided here, in one place: a resource's name property when it has one,
else ``{stack}-{LogicalId}`` (rules and roles cut to 64 characters; log groups and buckets
below).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from emulator import sam


class TemplateError(Exception):
    """The template uses something the emulator does not support, or is invalid."""


# ------------------------------------------------------------------------------- YAML loading

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Split": "Fn::Split",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    # Parsed so that resolving them fails with a clear message rather than a YAML error.
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Transform": "Fn::Transform",
}


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that maps CloudFormation short tags to their long (JSON) form."""


def _short_tag_constructor(long_name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:  # pragma: no cover - yaml has no other node kinds
            raise TemplateError(f"unsupported YAML node for !{long_name}: {node!r}")
        if long_name == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    CfnLoader.add_constructor(f"!{_short}", _short_tag_constructor(_long))
# CloudFormation reads `Version: 2012-10-17` as a string, not a date.
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load_yaml(text: str) -> Any:
    """Parse template text (YAML or JSON) with CloudFormation short tags."""
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader


# ----------------------------------------------------------------------------------- template

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::Region",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::NoValue",
        "AWS::NotificationARNs",
    }
)


@dataclass(frozen=True)
class Template:
    """A parsed template file, as CloudFormation deploys it: a SAM template transformed by
    samtranslator (``source`` keeps it as written). Local code and definition paths are
    ``artifacts`` (:mod:`emulator.sam`)."""

    path: Path
    body: dict[str, Any]
    source: dict[str, Any]
    artifacts: dict[str, Path]

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        region: str = "us-east-1",
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> Template:
        """Load ``path``; a SAM template is transformed as in ``region`` with the overrides
        (CloudFormation gives the transform the stack's parameter values)."""
        path = Path(path).resolve()
        source = load_yaml(path.read_text(encoding="utf-8"))
        if not isinstance(source, dict) or not isinstance(source.get("Resources"), dict):
            raise TemplateError(f"{path}: not a CloudFormation template (no Resources map)")
        transform = source.get("Transform")
        transforms = transform if isinstance(transform, list) else [transform] if transform else []
        unsupported = [t for t in transforms if t != sam.SAM_TRANSFORM]
        if unsupported:
            raise TemplateError(f"{path.name}: unsupported Transform {unsupported}")
        if not transforms:
            return cls(path=path, body=source, source=source, artifacts={})
        try:
            translation = sam.translate(
                source, path.parent, region=region, parameter_values=parameter_overrides
            )
        except sam.SamError as exc:
            raise TemplateError(f"{path.name}: {exc}") from None
        return cls(path=path, body=translation.body, source=source, artifacts=translation.artifacts)

    @property
    def dir(self) -> Path:
        return self.path.parent

    def section(self, name: str) -> dict[str, Any]:
        value = self.body.get(name) or {}
        if not isinstance(value, dict):
            raise TemplateError(f"{self.path}: {name} must be a map")
        return value

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.section("Resources")

    def resource_type(self, logical_id: str) -> str:
        try:
            return str(self.resources[logical_id]["Type"])
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} in {self.path.name}") from None

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's Properties, unresolved."""
        return dict(self.resources[logical_id].get("Properties") or {})

    def artifact(self, bucket: Any, key: Any, where: str) -> Path:
        """The local path an S3 location of :data:`emulator.sam.LOCAL_BUCKET` stands for."""
        if bucket != sam.LOCAL_BUCKET or key not in self.artifacts:
            raise TemplateError(f"{where}: s3://{bucket}/{key} is not a local path of the template")
        return self.artifacts[key]


# ----------------------------------------------------------------------------------- resolver


class _NoValue:
    """``Ref: AWS::NoValue``: the enclosing key or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_LAMBDA, _STATES = "AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"
_LAYER, _BUS, _QUEUE = "AWS::Lambda::LayerVersion", "AWS::Events::EventBus", "AWS::SQS::Queue"
#: The property that names a resource, by the resource types the emulator resolves.
_NAME_PROPERTIES = {
    _LAMBDA: "FunctionName",
    _STATES: "StateMachineName",
    _BUS: "Name",
    "AWS::Events::Rule": "Name",
    _LAYER: "LayerName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::DynamoDB::Table": "TableName",
    _QUEUE: "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
}
_LAMBDA_ARN = "arn:aws:lambda:{region}:{account}:function:{name}"
_STATES_ARN = "arn:aws:states:{region}:{account}:stateMachine:{name}"
_LAYER_ARN = "arn:aws:lambda:{region}:{account}:layer:{name}:1"
#: Fn::GetAtt values, and Refs that are not the name, by (resource type, attribute or "Ref").
_ATTRIBUTES: dict[tuple[str, str], str] = {
    (_LAMBDA, "Arn"): _LAMBDA_ARN,
    (_STATES, "Ref"): _STATES_ARN,
    (_STATES, "Arn"): _STATES_ARN,
    (_STATES, "Name"): "{name}",
    (_BUS, "Arn"): "arn:aws:events:{region}:{account}:event-bus/{name}",
    (_BUS, "Name"): "{name}",
    ("AWS::Events::Rule", "Arn"): "arn:aws:events:{region}:{account}:rule/{name}",
    (_LAYER, "Ref"): _LAYER_ARN,
    ("AWS::IAM::ManagedPolicy", "Ref"): "arn:aws:iam::{account}:policy/{name}",
    ("AWS::IAM::ManagedPolicy", "PolicyArn"): "arn:aws:iam::{account}:policy/{name}",
    ("AWS::IAM::Role", "Arn"): "arn:aws:iam::{account}:role{path}{name}",
    ("AWS::Logs::LogGroup", "Arn"): "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    ("AWS::DynamoDB::Table", "Arn"): "arn:aws:dynamodb:{region}:{account}:table/{name}",
    (_QUEUE, "Ref"): "http://sqs.{region}.localhost/{account}/{name}",
    (_QUEUE, "Arn"): "arn:aws:sqs:{region}:{account}:{name}",
    (_QUEUE, "QueueName"): "{name}",
    ("AWS::SNS::Topic", "Ref"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SNS::Topic", "TopicArn"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SNS::Topic", "TopicName"): "{name}",
    ("AWS::CloudWatch::Alarm", "Arn"): "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    ("AWS::S3::Bucket", "Arn"): "arn:aws:s3:::{name}",
    ("AWS::Scheduler::Schedule", "Arn"): (
        "arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}"
    ),
    ("AWS::Scheduler::ScheduleGroup", "Arn"): (
        "arn:aws:scheduler:{region}:{account}:schedule-group/{name}"
    ),
}
#: ARN parts read from a resource's own properties: {placeholder: (property, default)}.
_ARN_PROPERTIES = {"path": ("Path", "/"), "group": ("GroupName", "default")}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def scalar_to_str(value: Any, where: str) -> str:
    """CloudFormation's view of a scalar as a string (``true``, ``50``), or a TemplateError."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")


class Resolver:
    """Resolves intrinsic functions of one template as one stack (name, region, account)."""

    def __init__(
        self,
        template: Template,
        *,
        stack_name: str,
        region: str,
        account_id: str,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.parameters = self._parameter_values(dict(parameter_overrides or {}))
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------------- parameters

    def _parameter_values(self, overrides: dict[str, str]) -> dict[str, Any]:
        declared = self.template.section("Parameters")
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameter overrides for undeclared parameters: {unknown}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = scalar_to_str(overrides[name], f"parameter {name}")
            elif "Default" in spec:
                value = scalar_to_str(spec["Default"], f"parameter {name} Default")
            else:
                raise TemplateError(f"parameter {name} has no Default and no override")
            _validate_parameter(name, spec, value)
            kind = str(spec.get("Type", "String"))
            is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
            values[name] = (value.split(",") if value else []) if is_list else value
        return values

    # ------------------------------------------------------------------------ conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.section("Conditions")
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = self._evaluate_condition(conditions[name], name)
        return self._conditions[name]

    def _evaluate_condition(self, expr: Any, where: str) -> bool:
        if isinstance(expr, dict) and len(expr) == 1 and isinstance(expr.get("Condition"), str):
            return self.condition(expr["Condition"])
        value = self.resolve(expr)
        if not isinstance(value, bool):
            raise TemplateError(f"condition {where}: expected a boolean, got {value!r}")
        return value

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.template.resources[logical_id].get("Condition")
        return True if condition is None else self.condition(str(condition))

    # --------------------------------------------------------------------- physical names

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: its name property if set, else the emulator's default."""
        kind = self.template.resource_type(logical_id)
        if kind not in _NAME_PROPERTIES:
            raise TemplateError(f"{logical_id}: the emulator cannot name a {kind}")
        prop = _NAME_PROPERTIES[kind]
        props = self.template.resources[logical_id].get("Properties") or {}
        if prop in props:
            return scalar_to_str(self.resolve(props[prop]), f"{logical_id}.{prop}")
        if kind == "AWS::Logs::LogGroup":
            return f"/aws/{self.stack_name}/{logical_id}"
        if kind == "AWS::S3::Bucket":
            # Bucket names are global and lowercase: CloudFormation adds a random suffix, the
            # emulator the account and region (the same template deploys in several).
            name = f"{self.stack_name}-{logical_id}-{self.account_id}-{self.region}".lower()
            return name[:63].rstrip("-")
        cut = 64 if kind in ("AWS::Events::Rule", "AWS::IAM::Role") else None
        return f"{self.stack_name}-{logical_id}"[:cut]

    def arn(self, logical_id: str) -> str:
        """``Fn::GetAtt <logical_id>.Arn``."""
        return str(self.get_att(logical_id, "Arn"))

    # ------------------------------------------------------------------------ Ref, GetAtt

    def ref(self, name: str) -> Any:
        if name in PSEUDO_PARAMETERS:
            return self._pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        kind = self.template.resource_type(name)
        if kind not in _NAME_PROPERTIES:
            raise TemplateError(f"Ref to {name} ({kind}) is not supported by the emulator")
        return self._attribute(name, kind, "Ref")

    def _pseudo(self, name: str) -> Any:
        match name:
            case "AWS::AccountId":
                return self.account_id
            case "AWS::Region":
                return self.region
            case "AWS::StackName":
                return self.stack_name
            case "AWS::StackId":
                return (
                    f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/"
                    f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
                )
            case "AWS::Partition":
                return "aws"
            case "AWS::URLSuffix":
                return "amazonaws.com"
            case "AWS::NoValue":
                return NO_VALUE
            case "AWS::NotificationARNs":
                return []
        raise TemplateError(f"unknown pseudo parameter {name}")  # pragma: no cover

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.template.resource_type(logical_id)
        if (kind, attribute) not in _ATTRIBUTES:
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not supported by the emulator"
            )
        return self._attribute(logical_id, kind, attribute)

    def _attribute(self, logical_id: str, kind: str, attribute: str) -> str:
        pattern = _ATTRIBUTES.get((kind, attribute), "{name}")  # a Ref is the name by default
        props = self.template.resources[logical_id].get("Properties") or {}
        parts = {
            placeholder: scalar_to_str(self.resolve(props.get(prop, default)), prop)
            for placeholder, (prop, default) in _ARN_PROPERTIES.items()
            if "{" + placeholder + "}" in pattern  # an IAM role's Path, a schedule's group
        }
        return pattern.format(
            name=self.physical_name(logical_id),
            region=self.region,
            account=self.account_id,
            **parts,
        )

    # --------------------------------------------------------------------------- resolve

    def resolve(self, node: Any) -> Any:
        """Return ``node`` with every intrinsic function replaced by its value."""
        if isinstance(node, dict):
            if len(node) == 1:
                (key,) = node
                if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                    return self._intrinsic(key, node[key])
            resolved = {k: self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        return node

    def _intrinsic(self, name: str, arg: Any) -> Any:
        match name:
            case "Ref":
                return self.ref(self._str(arg, name))
            case "Fn::Sub":
                return self._sub(arg)
            case "Fn::GetAtt":
                if isinstance(arg, str):
                    arg = arg.split(".", 1)
                logical_id, attribute = self._args(arg, name, 2)
                return self.get_att(
                    self._str(logical_id, name), self._str(self.resolve(attribute), name)
                )
            case "Fn::If":
                condition, when_true, when_false = self._args(arg, name, 3)
                chosen = when_true if self.condition(self._str(condition, name)) else when_false
                return self.resolve(chosen)
            case "Fn::Equals":
                left, right = (self.resolve(a) for a in self._args(arg, name, 2))
                return _comparable(left) == _comparable(right)
            case "Fn::Not":
                (expr,) = self._args(arg, name, 1)
                return not self._evaluate_condition(expr, name)
            case "Fn::And":
                return all(self._evaluate_condition(e, name) for e in self._list(arg, name))
            case "Fn::Or":
                return any(self._evaluate_condition(e, name) for e in self._list(arg, name))
            case "Fn::Split":
                delimiter, source = self._args(arg, name, 2)
                return self._str(self.resolve(source), name).split(self._str(delimiter, name))
            case "Fn::Join":
                delimiter, values = self._args(arg, name, 2)
                parts = [
                    scalar_to_str(item, name) for item in self._list(self.resolve(values), name)
                ]
                return self._str(self.resolve(delimiter), name).join(parts)
            case "Fn::Select":
                index, values = self._args(arg, name, 2)
                items = self._list(self.resolve(values), name)
                position = int(scalar_to_str(self.resolve(index), name))
                if not 0 <= position < len(items):
                    raise TemplateError(f"Fn::Select: index {position} out of {items!r}")
                return items[position]
            case "Fn::FindInMap":
                map_name, top, second = (self.resolve(a) for a in self._args(arg, name, 3))
                try:
                    return self.template.section("Mappings")[map_name][top][second]
                except (KeyError, TypeError):
                    raise TemplateError(f"Fn::FindInMap: no {map_name}/{top}/{second}") from None
        raise TemplateError(f"intrinsic function {name} is not supported by the emulator")

    def _sub(self, arg: Any) -> str:
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            text, raw_variables = self._args(arg, "Fn::Sub", 2)
            if not isinstance(raw_variables, dict):
                raise TemplateError(f"Fn::Sub: variables must be a map, got {raw_variables!r}")
            variables = {k: self.resolve(v) for k, v in raw_variables.items()}
        else:
            text = arg
        text = self._str(text, "Fn::Sub")

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                value = variables[expr]
            elif "." in expr and expr.split(".", 1)[0] in self.template.resources:
                value = self.get_att(*expr.split(".", 1))
            else:
                value = self.ref(expr)
            return scalar_to_str(value, f"Fn::Sub ${{{expr}}}")

        return _SUB_VARIABLE.sub(replace, text)

    @staticmethod
    def _args(arg: Any, name: str, count: int) -> list[Any]:
        if not isinstance(arg, list) or len(arg) != count:
            raise TemplateError(f"{name}: expected a list of {count} arguments, got {arg!r}")
        return arg

    @staticmethod
    def _list(arg: Any, name: str) -> list[Any]:
        if not isinstance(arg, list):
            raise TemplateError(f"{name}: expected a list, got {arg!r}")
        return arg

    @staticmethod
    def _str(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise TemplateError(f"{name}: expected a string, got {value!r}")
        return value


def _comparable(value: Any) -> Any:
    return value if isinstance(value, (list, dict)) else scalar_to_str(value, "Fn::Equals")


def _validate_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [scalar_to_str(v, name) for v in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern!r}")
    if str(spec.get("Type", "String")) == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name} is shorter than {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name} is longer than {spec['MaxLength']}")
