"""Deploy a CloudFormation template into the running moto server, through its AWS APIs.

A SAM template is deployed as CloudFormation would deploy it: transformed by samtranslator
first (:mod:`emulator.sam`, through :meth:`Template.load`), so this module knows CloudFormation
resource types only. Why through the APIs (boto3 against the local endpoint) rather than moto's
backends: the resources are then created exactly as a client would see them, with moto's own
validation (e.g. of the state machine definitions).

Deployed (:data:`DEPLOYED_TYPES`): ``AWS::Lambda::Function`` (code from a local path of the
template, run in-process), ``AWS::IAM::Role`` (with its trust policy and path, where functions
are deployed: Lambda's CreateFunction wants its role to exist),
``AWS::StepFunctions::StateMachine`` (``DefinitionS3Location`` of a local file, ``Definition``
or ``DefinitionString``, with ``DefinitionSubstitutions``), ``AWS::Events::EventBus`` (with its
``Policy``), ``AWS::Events::EventBusPolicy`` (``Statement``, or the legacy
``Action``/``Principal``/``Condition``), ``AWS::Events::Rule`` (``EventPattern`` or
``ScheduleExpression``; schedules fire through ``schedules.py``), ``AWS::DynamoDB::Table``
(keys, billing mode, TTL), ``AWS::SQS::Queue`` (by name), ``AWS::SNS::Topic`` and
``AWS::SNS::Subscription`` (moto delivers a topic's messages to its SQS subscribers),
``AWS::CloudWatch::Alarm`` and ``AWS::CloudWatch::Dashboard`` (kept as configured; no metric is
evaluated locally), ``AWS::S3::Bucket`` (encryption, public access block, lifecycle rules; named
``<stack>-<logical id>-<account>-<region>``, lowercase) and ``AWS::S3::BucketPolicy`` (only its
statements without a ``Condition`` reach moto: see :meth:`_Deployer._bucket_policy`).

Ignored, each for the reason in :data:`IGNORED_TYPES` (Refs to them still resolve). Any other
type is a :class:`~emulator.template.TemplateError` naming the logical id and the type, before
any call: deployed without it, the stack would silently lack what the type does.

Any account and region: resources are created with credentials moto maps to ``account_id``
(its default account's, else those STS ``AssumeRole`` returns for a role in that account).
Functions only where ``functions_allowed`` (the in-process runtime runs every handler with the
emulator's one environment, so the caller allows them in the hub account and region only).
Deployment calls carry :data:`DEPLOY_USER_AGENT`, which the server keeps out of the call log
and away from fault injection.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from emulator import lambda_runtime
from emulator.server import UNLOGGED_USER_AGENT
from emulator.template import Resolver, Template, TemplateError, scalar_to_str

#: In this order: what a resource names exists before it (roles before functions, functions
#: and state machines before the rules that target them).
DEPLOYED_TYPES = (
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::Events::EventBus",
    "AWS::Events::EventBusPolicy",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::StepFunctions::StateMachine",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
)
_IAM_NOT_ENFORCED = "IAM is not enforced: moto checks no permission (emulator/README.md)"
#: Accepted and not deployed: none of them starts code or holds data the stack uses locally.
IGNORED_TYPES: dict[str, str] = {
    "AWS::IAM::ManagedPolicy": _IAM_NOT_ENFORCED,
    "AWS::IAM::Policy": _IAM_NOT_ENFORCED,
    "AWS::Lambda::Permission": _IAM_NOT_ENFORCED + " (resource policies included)",
    "AWS::SQS::QueuePolicy": _IAM_NOT_ENFORCED + " (resource policies included)",
    "AWS::SNS::TopicPolicy": _IAM_NOT_ENFORCED + " (resource policies included)",
    "AWS::Logs::LogGroup": "handlers log to the emulator's log; state machine logging is not "
    "deployed",
    "AWS::Lambda::LayerVersion": "the in-process runtime imports from the emulator's own "
    "environment, where the layer's packages are installed",
    "AWS::Lambda::EventInvokeConfig": "asynchronous retries and destinations are not emulated "
    "(a failing rule target gets the emulator's own retries)",
}
#: The user agent suffix of every deployment call (``server.py`` keeps them out of the call log).
DEPLOY_USER_AGENT = UNLOGGED_USER_AGENT
_DEPLOY_ACCESS_KEY = "emulator-deploy"  # moto maps an unknown key to its default account
_LEFTOVER_SUBSTITUTION = re.compile(r"\$\{[A-Za-z0-9_]+\}")


@dataclass
class DeployedStack:
    """What was deployed, by logical id."""

    stack_name: str
    region: str
    account_id: str
    functions: dict[str, str] = field(default_factory=dict)  # logical id -> function name
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    event_buses: dict[str, str] = field(default_factory=dict)  # logical id -> bus name
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> bucket name
    #: Bucket name -> its declared policy (statements with a Condition are not given to moto).
    bucket_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # logical id -> rule name
    #: logical id -> EventBridge Scheduler schedule name
    schedules: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # output name -> resolved Value
    function_environments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: What CloudFormation's DescribeStacks would show (``stacks.py``).
    stack_id: str = ""
    description: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # NoEcho ones as "****"
    output_descriptions: dict[str, str] = field(default_factory=dict)
    output_exports: dict[str, str] = field(default_factory=dict)  # output name -> export name
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def deploy(
    template_path: str | Path,
    *,
    endpoint: str,
    stack_name: str,
    region: str,
    account_id: str,
    parameter_overrides: Mapping[str, str] | None = None,
    functions_allowed: bool = True,
) -> DeployedStack:
    """Create the template's resources (a SAM template's as samtranslator makes them) in the
    emulator at ``endpoint``, in ``account_id`` and ``region``; register the functions' code."""
    template = Template.load(template_path, region=region, parameter_overrides=parameter_overrides)
    resolver = Resolver(
        template,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        parameter_overrides=parameter_overrides,
    )
    _check_supported(template, resolver, functions_allowed=functions_allowed)
    deployer = _Deployer(template, resolver, endpoint)
    stack = deployer.stack
    for kind in DEPLOYED_TYPES:
        for logical_id in template.resources:
            if template.resource_type(logical_id) == kind and resolver.resource_enabled(logical_id):
                deployer.deploy(kind, logical_id, functions_allowed=functions_allowed)
    _describe(stack, template, resolver)
    return stack


def _describe(stack: DeployedStack, template: Template, resolver: Resolver) -> None:
    """Record what DescribeStacks shows: id, description, parameters, outputs."""
    stack.stack_id = str(resolver.ref("AWS::StackId"))
    description = template.body.get("Description")
    stack.description = None if description is None else str(description)
    declared = template.section("Parameters")
    for name, value in resolver.parameters.items():
        shown = ",".join(value) if isinstance(value, list) else str(value)
        stack.parameters[name] = "****" if declared[name].get("NoEcho") else shown
    for name, output in template.section("Outputs").items():
        if "Condition" in output and not resolver.condition(str(output["Condition"])):
            continue
        stack.outputs[name] = resolver.resolve(output.get("Value"))
        if "Description" in output:
            stack.output_descriptions[name] = str(resolver.resolve(output["Description"]))
        export = (output.get("Export") or {}).get("Name")
        if export is not None:
            stack.output_exports[name] = str(resolver.resolve(export))


def _check_supported(
    template: Template, resolver: Resolver, *, functions_allowed: bool = True
) -> None:
    unknown = [
        f"{logical_id}: resource type {resource.get('Type')} is not supported by the emulator"
        for logical_id, resource in template.resources.items()
        if resource.get("Type") not in DEPLOYED_TYPES and resource.get("Type") not in IGNORED_TYPES
    ]
    if unknown:
        raise TemplateError(
            "; ".join(unknown) + " (emulator/README.md, 'What the emulator deploys', lists the "
            "types it deploys and those it ignores)"
        )
    for logical_id, resource in template.resources.items():
        kind = resource.get("Type")
        if not resolver.resource_enabled(logical_id):  # evaluates (and so checks) its Condition
            continue
        if kind == "AWS::Lambda::Function" and not functions_allowed:
            raise TemplateError(
                f"{logical_id} ({kind}): functions are deployed only in the emulator's own "
                "account and region (the in-process runtime runs every handler there)"
            )


class _Deployer:
    def __init__(self, template: Template, resolver: Resolver, endpoint: str) -> None:
        self.template = template
        self.resolver = resolver
        session = _session(endpoint, resolver.account_id, resolver.region)
        config = Config(user_agent_extra=DEPLOY_USER_AGENT)
        # Any: the template's values are checked by moto, not by boto3-stubs' literal types.
        self.iam: Any = session.client("iam", endpoint_url=endpoint, config=config)
        self.lambda_: Any = session.client("lambda", endpoint_url=endpoint, config=config)
        self.events: Any = session.client("events", endpoint_url=endpoint, config=config)
        self.sfn: Any = session.client("stepfunctions", endpoint_url=endpoint, config=config)
        self.dynamodb: Any = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self.sqs: Any = session.client("sqs", endpoint_url=endpoint, config=config)
        self.sns: Any = session.client("sns", endpoint_url=endpoint, config=config)
        self.cloudwatch: Any = session.client("cloudwatch", endpoint_url=endpoint, config=config)
        self.s3: Any = session.client("s3", endpoint_url=endpoint, config=config)
        self.scheduler: Any = session.client("scheduler", endpoint_url=endpoint, config=config)
        self.stack = DeployedStack(
            stack_name=resolver.stack_name, region=resolver.region, account_id=resolver.account_id
        )

    def deploy(self, kind: str, logical_id: str, *, functions_allowed: bool = True) -> None:
        props = self.resolver.resolve(self.template.properties(logical_id))
        match kind:
            case "AWS::S3::Bucket":
                self._bucket(logical_id, props)
            case "AWS::S3::BucketPolicy":
                self._bucket_policy(props)
            case "AWS::DynamoDB::Table":
                self._table(logical_id, props)
            case "AWS::SQS::Queue":
                self.sqs.create_queue(QueueName=self.resolver.physical_name(logical_id))
            case "AWS::Events::EventBus":
                self._event_bus(logical_id, props)
            case "AWS::Events::EventBusPolicy":
                self._event_bus_policy(logical_id, props)
            case "AWS::IAM::Role" if functions_allowed:  # else no function needs it
                self._role(logical_id, props)
            case "AWS::Lambda::Function":
                self._function(logical_id, props)
            case "AWS::Events::Rule":
                self._rule(logical_id, props)
            case "AWS::StepFunctions::StateMachine":
                self._state_machine(logical_id, props)
            case "AWS::SNS::Topic":
                self.sns.create_topic(Name=self.resolver.physical_name(logical_id))
            case "AWS::SNS::Subscription":
                self._subscription(props)
            case "AWS::Scheduler::ScheduleGroup":
                self.scheduler.create_schedule_group(Name=self.resolver.physical_name(logical_id))
            case "AWS::Scheduler::Schedule":
                self._schedule(logical_id, props)
            case "AWS::CloudWatch::Alarm":
                self._alarm(logical_id, props)
            case "AWS::CloudWatch::Dashboard":
                self.cloudwatch.put_dashboard(
                    DashboardName=self.resolver.physical_name(logical_id),
                    DashboardBody=props["DashboardBody"],
                )

    def _subscription(self, props: dict[str, Any]) -> None:
        attributes: dict[str, str] = {
            key: scalar_to_str(props[key], f"AWS::SNS::Subscription {key}")
            for key in ("RawMessageDelivery", "FilterPolicyScope")
            if key in props
        }
        if "FilterPolicy" in props:
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        self.sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
        )

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> None:
        """The alarm as configured (moto keeps it; nothing evaluates metrics locally)."""
        keys = ("AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic",
                "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions",
                "Metrics")  # fmt: skip
        alarm = {key: props[key] for key in keys if key in props}
        for query in alarm.get("Metrics", []):  # metric math: each query's period a number
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in alarm:
                alarm[key] = int(alarm[key])
        if "Threshold" in alarm:
            alarm["Threshold"] = float(alarm["Threshold"])
        self.cloudwatch.put_metric_alarm(AlarmName=self.resolver.physical_name(logical_id), **alarm)

    def _role(self, logical_id: str, props: dict[str, Any]) -> None:
        """The role with its path and trust (Lambda's CreateFunction checks that its role exists;
        its policies are not given: IAM is not enforced)."""
        trust = props["AssumeRolePolicyDocument"]
        self.iam.create_role(
            RoleName=self.resolver.physical_name(logical_id),
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=trust if isinstance(trust, str) else json.dumps(trust),
        )

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        self.dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            self.dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.stack.tables[logical_id] = name

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        region = self.resolver.region
        where: dict[str, Any] = {}
        if region != "us-east-1":  # S3 refuses us-east-1 as a LocationConstraint
            where["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.s3.create_bucket(Bucket=name, **where)
        encryption = props.get("BucketEncryption")
        if encryption:
            self.s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        _s3_encryption(r) for r in encryption["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            self.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_s3_rule(r) for r in lifecycle["Rules"]]},
            )
        self.stack.buckets[logical_id] = name

    def _bucket_policy(self, props: dict[str, Any]) -> None:
        """The policy's statements without a Condition go to moto; the rest are recorded only.
        moto evaluates a statement's Condition without the request's context (no
        ``aws:SecureTransport``), so a deny of non-TLS requests would deny every request; and
        the emulator's endpoint is plain HTTP where AWS's is TLS."""
        bucket = str(props["Bucket"])
        document = props["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else dict(document)
        statements = document.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        self.stack.bucket_policies[bucket] = document
        enforced = [s for s in statements if "Condition" not in s]
        if enforced:
            policy = json.dumps({**document, "Statement": enforced})
            self.s3.put_bucket_policy(Bucket=bucket, Policy=policy)

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        self.events.create_event_bus(Name=name)
        self.stack.event_buses[logical_id] = name
        policy = props.get("Policy")
        if policy:
            document = json.loads(policy) if isinstance(policy, str) else dict(policy)
            statements = document.get("Statement") or []
            statements = statements if isinstance(statements, list) else [statements]
            document["Statement"] = [
                self._statement(name, statement, f"{logical_id}{index}")
                for index, statement in enumerate(statements)
            ]
            self.events.put_permission(EventBusName=name, Policy=json.dumps(document))

    def _event_bus_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        """One statement added to a bus's policy, as CloudFormation does (statement ids are
        unique per bus; another resource's statements stay)."""
        bus = str(props.get("EventBusName") or "default")
        sid = scalar_to_str(props.get("StatementId"), f"{logical_id} StatementId")
        if "Statement" not in props:  # the legacy form: PutPermission's own parameters
            legacy = {k: props[k] for k in ("Action", "Principal", "Condition") if k in props}
            self.events.put_permission(EventBusName=bus, StatementId=sid, **legacy)
            return
        described = self.events.describe_event_bus(Name=bus)
        document = json.loads(described.get("Policy") or '{"Version": "2012-10-17"}')
        kept = [s for s in document.get("Statement", []) if s.get("Sid") != sid]
        statement = self._statement(bus, props["Statement"], sid)
        document["Statement"] = [*kept, statement]
        # moto replaces the statements of the principals it is given, so the whole policy goes.
        self.events.put_permission(EventBusName=bus, Policy=json.dumps(document))

    def _statement(self, bus: str, statement: dict[str, Any], sid: str) -> dict[str, Any]:
        """A policy statement as moto stores it: Sid, Effect and Resource are required there;
        a statement without Resource is about the bus it is attached to."""
        bus_arn = (
            bus
            if bus.startswith("arn:")
            else f"arn:aws:events:{self.resolver.region}:{self.resolver.account_id}:event-bus/{bus}"
        )
        return {"Sid": sid, "Effect": "Allow", "Resource": bus_arn, **statement}

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        where = f"{logical_id} ({name})"
        code = props.get("Code") or {}
        if props.get("PackageType", "Zip") != "Zip" or "S3Bucket" not in code:
            raise TemplateError(f"{where}: only Zip functions with a local CodeUri are supported")
        code_dir = self.template.artifact(code["S3Bucket"], code.get("S3Key"), where)
        if not code_dir.is_dir():
            raise TemplateError(f"{where}: CodeUri {code_dir} is not a directory")
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python"):
            raise TemplateError(f"{where}: runtime {runtime!r} cannot run in-process")
        handler = scalar_to_str(props.get("Handler"), f"{where} Handler")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {k: scalar_to_str(v, f"{where} {k}") for k, v in variables.items()}
        timeout = int(props.get("Timeout", 3))
        memory = int(props.get("MemorySize", 128))
        self.lambda_.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=props["Role"],
            Handler=handler,
            Code={"ZipFile": _placeholder_zip()},
            Timeout=timeout,
            MemorySize=memory,
            Architectures=list(props.get("Architectures") or ["x86_64"]),
            Environment={"Variables": environment},
        )
        lambda_runtime.register(
            lambda_runtime.FunctionSpec(
                name=name,
                code_dir=code_dir,
                handler=handler,
                arn=self.resolver.arn(logical_id),
                timeout_seconds=timeout,
                memory_mb=memory,
                environment=environment,
            )
        )
        self.stack.functions[logical_id] = name
        self.stack.function_environments[name] = environment

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        bus = props.get("EventBusName", "default")
        rule: dict[str, Any] = {"Name": name, "EventBusName": bus}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("ScheduleExpression", "Description"):
            if key in props:
                rule[key] = props[key]
        rule["State"] = props.get("State", "ENABLED")
        self.events.put_rule(**rule)
        targets = [
            {k: v for k, v in target.items() if k != "RoleArn"}
            for target in props.get("Targets") or []
        ]
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.stack.rules[logical_id] = name

    def _schedule(self, logical_id: str, props: dict[str, Any]) -> None:
        """An EventBridge Scheduler schedule (``schedules.py`` fires it)."""
        name = self.resolver.physical_name(logical_id)
        keys = ("GroupName", "Description", "ScheduleExpression", "ScheduleExpressionTimezone",
                "FlexibleTimeWindow", "Target", "State", "StartDate", "EndDate",
                "KmsKeyArn")  # fmt: skip
        self.scheduler.create_schedule(Name=name, **{k: props[k] for k in keys if k in props})
        self.stack.schedules[logical_id] = name

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.resolver.physical_name(logical_id)
        if "DefinitionS3Location" in props:
            location = props["DefinitionS3Location"]
            path = self.template.artifact(location.get("Bucket"), location.get("Key"), logical_id)
            definition = path.read_text(encoding="utf-8")
        elif "Definition" in props:
            definition = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            definition = scalar_to_str(props["DefinitionString"], f"{logical_id} DefinitionString")
        else:
            raise TemplateError(f"{logical_id}: no Definition, DefinitionString or S3 location")
        definition = substitute(definition, props.get("DefinitionSubstitutions") or {})
        leftover = sorted(set(_LEFTOVER_SUBSTITUTION.findall(definition)))
        if leftover:
            raise TemplateError(f"{logical_id}: no DefinitionSubstitutions for {leftover}")
        kind = props.get("StateMachineType", "STANDARD")
        if kind != "STANDARD":
            raise TemplateError(f"{logical_id}: only STANDARD state machines are supported")
        response = self.sfn.create_state_machine(
            name=name, definition=definition, roleArn=props["RoleArn"], type=kind
        )
        self.stack.state_machines[logical_id] = str(response["stateMachineArn"])


def _s3_encryption(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ``ServerSideEncryptionByDefault`` is the API's ``Apply...``."""
    api = {k: v for k, v in rule.items() if k != "ServerSideEncryptionByDefault"}
    if "ServerSideEncryptionByDefault" in rule:
        api["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    return api


def _s3_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule as S3's API spells it (the common fields)."""
    api: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    upload = rule.get("AbortIncompleteMultipartUpload")
    if upload:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(upload["DaysAfterInitiation"])
        }
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"].get("NoncurrentDays")
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    return api


def _session(endpoint: str, account_id: str, region: str) -> boto3.Session:
    """A session acting in ``account_id``: the deployer's own key maps to moto's default
    account; any other account is reached with the keys STS AssumeRole returns for a role there
    (moto maps them to the role's account; IAM is not enforced, so the role need not exist)."""
    session = boto3.Session(
        aws_access_key_id=_DEPLOY_ACCESS_KEY,
        aws_secret_access_key="emulator-deploy",  # noqa: S106 - moto accepts any key
        region_name=region,
    )
    config = Config(user_agent_extra=DEPLOY_USER_AGENT)
    sts: Any = session.client("sts", endpoint_url=endpoint, config=config)
    if sts.get_caller_identity()["Account"] == account_id:
        return session
    role = f"arn:aws:iam::{account_id}:role/emulator-deploy"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="emulator-deploy")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def substitute(definition: str, substitutions: Mapping[str, Any]) -> str:
    """Replace each ``${Key}`` by its value, as plain text, like CloudFormation does."""
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", scalar_to_str(value, key))
    return definition


def _placeholder_zip() -> bytes:
    """moto wants a code zip; the real code runs from CodeUri (see emulator.lambda_runtime)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# code runs in-process from CodeUri\n")
    return buffer.getvalue()
