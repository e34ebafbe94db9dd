"""What the emulator cannot deploy, it refuses at start-up, naming the resource and property.

Each case is the tiny stack (see conftest) with one property added that would start its code in
a way the emulator does not create; deployed without it, the stack would never be triggered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from emulator.deploy import deploy
from emulator.template import TemplateError, load_yaml
from emulator.testing import running_emulator

#: Nothing listens here: a refused template must fail before any call reaches an endpoint.
NO_ENDPOINT = "http://127.0.0.1:9"
NIGHTLY = {"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"}}
REFUSED = {
    "state machine Events": ("Flow", "Events", {"Nightly": NIGHTLY}),
    "function URL": ("EchoFunction", "FunctionUrlConfig", {"AuthType": "NONE"}),
}


def tiny_variant(tiny_dir: Path, name: str, logical_id: str, prop: str, value: Any) -> Path:
    """The tiny stack's template with ``prop: value`` set on ``logical_id``, beside it (its
    CodeUri and DefinitionUri are relative)."""
    body = load_yaml((tiny_dir / "template.yaml").read_text())
    body["Resources"][logical_id]["Properties"][prop] = value
    path = tiny_dir / f"refused-{name}.yaml"
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


def test_a_state_machine_with_events_stops_the_emulator_at_start_up(tiny_dir: Path) -> None:
    # Given the tiny stack whose state machine Flow has an event source (a schedule)
    template = tiny_variant(tiny_dir, "start-up", "Flow", "Events", {"Nightly": NIGHTLY})
    # When the emulator is started with it
    with (
        pytest.raises(RuntimeError, match="before it was ready") as caught,
        running_emulator(template=template, parameter_overrides={"OutDir": str(tiny_dir / "out")}),
    ):
        pass
    # Then it exits at once, saying which resource and which property it cannot deploy
    assert "cannot deploy" in str(caught.value)
    assert "Flow (AWS::Serverless::StateMachine): property Events is not supported" in str(
        caught.value
    )


@pytest.mark.parametrize(("logical_id", "prop", "value"), REFUSED.values(), ids=REFUSED.keys())
def test_a_property_that_would_start_the_code_is_refused(
    tiny_dir: Path, logical_id: str, prop: str, value: Any
) -> None:
    # Given the tiny stack with the property set
    template = tiny_variant(tiny_dir, f"{logical_id}-{prop}", logical_id, prop, value)
    # When it is deployed / Then TemplateError names the resource and the property, before
    # any call (nothing listens at the endpoint)
    with pytest.raises(TemplateError, match=rf"^{logical_id} \(AWS::Serverless::\w+\): "):
        deploy_tiny(template, tiny_dir)
    with pytest.raises(TemplateError, match=rf": property {prop} is not supported"):
        deploy_tiny(template, tiny_dir)


def test_a_refused_property_that_resolves_to_no_value_is_not_there(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Events that !Ref AWS::NoValue removes (as an !If does for one stage)
    template = tiny_variant(tiny_dir, "no-value", "Flow", "Events", {"Ref": "AWS::NoValue"})
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # When it is deployed / Then the check passes, and deploying goes on to its first call
    # (which finds nothing listening)
    with pytest.raises(Exception, match="Could not connect") as caught:
        deploy_tiny(template, tiny_dir)
    assert not isinstance(caught.value, TemplateError)
