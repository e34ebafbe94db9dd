"""Sample inputs and events in events/ against what the stack really accepts and matches.

Rule patterns are read from template.yaml (never re-declared here), resolved as the emulator
deploys them (the source is a Mappings lookup), and matched with moto's own EventBridge pattern
matcher, the one the local emulator delivers with; every sample event must have a stated
expectation, so a new rule or event cannot go untested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from emulator.template import Resolver, Template
from vpc_peering.errors import InvalidInput
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import (
    AcceptanceRequest,
    CleanupRequest,
    CreateRequest,
    ReconcileRequest,
    TagChangeEvent,
)
from vpc_peering.tag_start import vpc_of_event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TEMPLATE = Template.load(ROOT / "template.yaml")
RESOLVER = Resolver(
    TEMPLATE, stack_name="vpc-peering", region="us-east-1", account_id="123456789012"
)

TAG_RULES = {"TagChangeFunctionTagChangedHere", "TagChangeFunctionTagChangedElsewhere"}
#: sample event file -> the rules (logical ids as deployed: SAM names a function event's rule
#: function logical id + event name) it must trigger
EXPECTED_MATCHES: dict[str, set[str]] = {
    "acceptance-requested.json": {"AcceptFunctionAcceptanceRequested"},
    "acceptance-requested-foreign-source.json": set(),
    "peering-established.json": set(),
    # A refusal at Plan (bad input, a dry run, Plan's checks) pages nobody; a later failure does.
    "peering-failed.json": set(),
    "peering-failed-after-create.json": {"NotifyCreateFailedRule"},
    "peering-removed.json": set(),
    "cleanup-failed.json": {"NotifyCleanupFailedRule"},
    "network-reconciled.json": set(),
    "network-reconciled-incomplete.json": {"NotifyReconcileIncompleteRule"},
    "removals-held.json": {"NotifyRemovalsHeldRule"},
    "join-requested.json": {"NotifyJoinRequestedRule"},
    "join-refused.json": {"NotifyJoinRefusedRule"},
    # Tag changes: the hub's own on its default bus, a member's forwarded to the stack's bus.
    "ec2-vpc-tagged-into-group.json": TAG_RULES,
    "ec2-vpc-untagged-from-group.json": TAG_RULES,
    "ec2-vpc-other-tag-change.json": set(),
    "ec2-subnet-tag-change.json": set(),
}


def _rules() -> dict[str, dict[str, Any]]:
    """Every EventBridge rule with a pattern the stack deploys (SAM's events as it makes them)."""
    return {
        logical_id: RESOLVER.resolve(resource["Properties"]["EventPattern"])
        for logical_id, resource in TEMPLATE.resources.items()
        if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource["Properties"]
    }


RULES = _rules()
EVENT_FILES = sorted((EVENTS / "eventbridge").glob("*.json"))


def test_every_sample_event_has_an_expectation_and_every_rule_a_matching_sample() -> None:
    # Given the sample events and the template's rules
    names = {p.name for p in EVENT_FILES}
    # Then each event says which rules it triggers, and each rule is triggered by one
    assert names == set(EXPECTED_MATCHES)
    assert set(RULES) == set().union(*EXPECTED_MATCHES.values())


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_rule_patterns_against_sample_events(path: Path) -> None:
    # Given a sample event
    event = json.loads(path.read_text())
    # When matched against every rule's pattern
    matched = {
        name
        for name, pattern in RULES.items()
        if EventPattern.load(json.dumps(pattern)).matches_event(event)
    }
    # Then exactly the expected rules fire
    assert matched == EXPECTED_MATCHES[path.name]


def test_acceptance_event_detail_is_what_the_accept_function_parses() -> None:
    # Given the sample acceptance event
    detail = json.loads((EVENTS / "eventbridge" / "acceptance-requested.json").read_text())[
        "detail"
    ]
    # When parsed as the accept function does
    request = parse(AcceptanceRequest, detail, root="detail")
    # Then it carries the id, the token and both sides
    assert request.vpc_peering_connection_id.startswith("pcx-")
    assert request.requester.vpc_id != request.accepter.vpc_id


@pytest.mark.parametrize("path", sorted(EVENTS.glob("create-*.json")), ids=lambda p: p.name)
def test_sample_create_inputs_are_valid(path: Path) -> None:
    # Given / When a sample create input is parsed as the Plan step does
    request = parse(CreateRequest, json.loads(path.read_text()))
    # Then it is valid
    assert request.requester.vpc_id.startswith("vpc-")


@pytest.mark.parametrize("path", sorted(EVENTS.glob("reconcile-*.json")), ids=lambda p: p.name)
def test_sample_reconcile_inputs_are_valid(path: Path) -> None:
    parse(ReconcileRequest, json.loads(path.read_text()))


@pytest.mark.parametrize(
    "name", ["ec2-vpc-tagged-into-group.json", "ec2-vpc-untagged-from-group.json"]
)
def test_tag_change_samples_name_the_vpc_the_starter_reconciles(name: str) -> None:
    # Given a tag change event the rules deliver to the starter
    event = json.loads((EVENTS / "eventbridge" / name).read_text())
    # When parsed as the starter does
    vpc = vpc_of_event(parse(TagChangeEvent, event, root="event"))
    # Then it names the VPC in the event's own account and region
    assert (vpc.account_id, vpc.region) == (event["account"], event["region"])
    assert event["resources"][0].endswith(vpc.vpc_id)


@pytest.mark.parametrize("path", sorted(EVENTS.glob("cleanup-*.json")), ids=lambda p: p.name)
def test_sample_cleanup_inputs_are_valid(path: Path) -> None:
    request = parse(CleanupRequest, json.loads(path.read_text()))
    assert request.vpc_peering_connection_id.startswith("pcx-")


def test_published_schemas_match_the_models() -> None:
    # Given the schemas the README links
    import scripts.write_schemas as schemas

    # Then they are what the models generate now (run `make schemas` after a model change)
    for name, model in schemas.SCHEMAS.items():
        committed = (EVENTS / "schema" / name).read_text()
        assert committed == schemas.render(model), f"events/schema/{name} is stale: make schemas"


def test_schema_rejects_what_the_model_rejects() -> None:
    # Given a request with an unknown field
    bad = {
        "Requester": {"VpcId": "vpc-0a1b2c3d4e5f60718"},
        "Accepter": {"VpcId": "vpc-0f1e2d3c4b5a69788"},
        "Peer": 1,
    }
    # Then the model refuses it, naming the field, as the schema's additionalProperties does
    with pytest.raises(InvalidInput, match="Peer"):
        parse(CreateRequest, bad)
    schema = json.loads((EVENTS / "schema" / "create-input.schema.json").read_text())
    assert schema["additionalProperties"] is False
