"""What the emulator cannot deploy, it refuses at start-up, naming the logical id and the type.

The emulator deploys what samtranslator makes of a SAM template (CloudFormation resource types).
Each case is the tiny stack (see conftest) with one thing added whose resources the emulator
does not create; deployed without them, the stack would silently lack what they do. Only the
types of ``deploy.IGNORED_TYPES`` (each with its reason) are accepted and not deployed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from emulator.deploy import IGNORED_TYPES, deploy
from emulator.template import TemplateError, load_yaml
from emulator.testing import running_emulator

#: Nothing listens here: a refused template must fail before any call reaches an endpoint.
NO_ENDPOINT = "http://127.0.0.1:9"
#: (resource to change, property, value) -> (logical id, type) of what SAM makes of it that the
#: emulator does not deploy.
REFUSED = {
    "function URL": (
        ("EchoFunction", "FunctionUrlConfig", {"AuthType": "NONE"}),
        ("EchoFunctionUrl", "AWS::Lambda::Url"),
    ),
    "function SQS event": (
        (
            "EchoFunction",
            "Events",
            {
                "Queue": {
                    "Type": "SQS",
                    "Properties": {"Queue": "arn:aws:sqs:us-east-1:123456789012:q"},
                }
            },
        ),
        ("EchoFunctionQueue", "AWS::Lambda::EventSourceMapping"),
    ),
    "state machine API event": (
        (
            "Flow",
            "Events",
            {"Api": {"Type": "Api", "Properties": {"Path": "/go", "Method": "post"}}},
        ),
        ("ServerlessRestApi", "AWS::ApiGateway::RestApi"),
    ),
}


def tiny_variant(tiny_dir: Path, name: str, change: tuple[str, str, Any]) -> Path:
    """The tiny stack's template with ``property: value`` set on a resource, beside it (its
    CodeUri and DefinitionUri are relative)."""
    logical_id, prop, value = change
    body = load_yaml((tiny_dir / "template.yaml").read_text())
    body["Resources"][logical_id]["Properties"][prop] = value
    path = tiny_dir / f"refused-{name.replace(' ', '-')}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def with_resource(tiny_dir: Path, logical_id: str, resource: dict[str, Any]) -> Path:
    body = load_yaml((tiny_dir / "template.yaml").read_text())
    body["Resources"][logical_id] = resource
    path = tiny_dir / f"with-{logical_id}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def deploy_tiny(template: Path, tiny_dir: Path) -> None:
    deploy(
        template,
        endpoint=NO_ENDPOINT,
        stack_name="tiny",
        region="us-east-1",
        account_id="123456789012",
        parameter_overrides={"OutDir": str(tiny_dir / "out")},
    )


def test_a_resource_type_the_emulator_does_not_deploy_stops_it_at_start_up(
    tiny_dir: Path,
) -> None:
    # Given the tiny stack with a resource of a type the emulator does not deploy
    template = with_resource(
        tiny_dir, "Api", {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}}
    )
    # When the emulator is started with it
    with (
        pytest.raises(RuntimeError, match="before it was ready") as caught,
        running_emulator(template=template, parameter_overrides={"OutDir": str(tiny_dir / "out")}),
    ):
        pass
    # Then it exits at once, naming the resource and its type
    assert "cannot deploy" in str(caught.value)
    assert "Api: resource type AWS::ApiGateway::RestApi is not supported" in str(caught.value)


@pytest.mark.parametrize(("change", "generated"), REFUSED.values(), ids=REFUSED.keys())
def test_a_sam_feature_whose_resources_are_not_deployed_is_refused(
    tiny_dir: Path, change: tuple[str, str, Any], generated: tuple[str, str]
) -> None:
    # Given the tiny stack with a SAM property that makes resources the emulator lacks
    template = tiny_variant(tiny_dir, "-".join(change[:2]), change)
    logical_id, kind = generated
    # When it is deployed / Then TemplateError names the generated resource and its type,
    # before any call (nothing listens at the endpoint)
    with pytest.raises(TemplateError) as caught:
        deploy_tiny(template, tiny_dir)
    assert f"{logical_id}: resource type {kind} is not supported" in str(caught.value)


def test_ignored_types_are_listed_with_their_reason(tiny_dir: Path) -> None:
    # Given the ignore list / Then every entry says why, and none is a type that runs code
    assert all(reason.strip() for reason in IGNORED_TYPES.values())
    assert not {"AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping"} & set(IGNORED_TYPES)
    # And a template using one of them deploys past the check to its first call
    template = with_resource(
        tiny_dir, "Logs", {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 1}}
    )
    with pytest.raises(Exception, match="Could not connect") as caught:
        deploy_tiny(template, tiny_dir)
    assert not isinstance(caught.value, TemplateError)


def test_an_invalid_sam_template_is_refused_with_samtranslators_reason(tiny_dir: Path) -> None:
    # Given a SAM event samtranslator itself refuses (ScheduleV2 without its expression)
    template = tiny_variant(
        tiny_dir, "bad-sam", ("Flow", "Events", {"Bad": {"Type": "ScheduleV2", "Properties": {}}})
    )
    # When it is deployed / Then the translator's own message comes back
    with pytest.raises(TemplateError, match=r"SAM transform failed: .*ScheduleExpression"):
        deploy_tiny(template, tiny_dir)
