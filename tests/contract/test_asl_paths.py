"""Every ``.$`` path that reads a Lambda step's output reads a field its model always has.

A JSONPath that finds nothing (``$.Missing``, or ``$.A.B`` where ``A`` is null) fails the
execution with ``States.Runtime``, which no Catch may catch ("Error handling in Step
Functions"): it must never come from our own documents. So for every Lambda step of the three
machines (its state output is the handler's return value, ``OutputPath`` ``$.Result``), the
output model is found from template.yaml (the step's function, its handler module, the domain
step's return annotation), and every state that reads that output is checked: its
``Parameters``/``ItemSelector``/``ItemReader`` paths, ``ItemsPath``, ``MaxConcurrencyPath``,
``InputPath``, Choice ``Variable``s (other than under ``IsPresent``/``IsNull``),
``ErrorPath``/``CausePath``, ``TimestampPath``. A read state is one the output reaches
unchanged: the step's ``Next``, and on through Choice states, ``Wait`` states and Tasks or
Maps whose ``ResultPath`` is null or one new field (that field is then known too).

Each path's fields must be required fields of the model (no default), or fields whose value
is never None; a nested path descends into nested models the same way. A path into a field
typed ``dict``/``Any`` stops being checked there.

Not covered: the paths of a machine's first state (the execution input, checked by the
request models' own validation), the states a Catch leads to (their input is the failed
state's input with the error), Lambda steps whose handler returns plain data (``raw_step``,
e.g. Compensate), and a Map's own output.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from emulator.template import load_yaml
from vpc_peering.models.network import ReconcileOutcome, ReconcileScope

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "statemachine").glob("*.asl.json"))
STEP_FACTORIES = {"request_step", "document_step", "event_step", "event_target", "raw_step"}
PATH_FIELDS = ("ItemsPath", "MaxConcurrencyPath", "InputPath", "ErrorPath", "CausePath")
PATH_FIELDS += ("TimestampPath", "SecondsPath", "ToleratedFailureCountPath")
PRESENCE_TESTS = {"IsPresent", "IsNull"}

State = dict[str, Any]


# ------------------------------------------------------------------ step -> output model
def _template() -> dict[str, Any]:
    return dict(load_yaml((ROOT / "template.yaml").read_text()))


def _function_models() -> dict[str, type[BaseModel] | None]:
    """``${XFunctionArn}`` -> the model its handler returns (None: plain data)."""
    resources = _template()["Resources"]
    models: dict[str, type[BaseModel] | None] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        for name, value in (props.get("DefinitionSubstitutions") or {}).items():
            target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
            if target is None:
                continue
            logical = target[0] if isinstance(target, list) else str(target).split(".")[0]
            handler = resources[logical]["Properties"].get("Handler")
            if handler:
                models[f"${{{name}}}"] = _handler_model(handler)
    return models


def _handler_model(handler: str) -> type[BaseModel] | None:
    module = importlib.import_module(handler.rsplit(".", 1)[0])
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in STEP_FACTORIES
        ):
            last = node.args[-1]
            assert isinstance(last, ast.Name), f"{handler}: the step is not a plain name"
            step = getattr(module, last.id)
            returned = typing.get_type_hints(step).get("return")
            return returned if _is_model(returned) else None
    raise AssertionError(f"{handler}: no step factory call found")


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


# --------------------------------------------------------------------------------- walking
def _machines() -> list[tuple[str, dict[str, State]]]:
    """Every state list: each machine's, and each Map's item processor's."""
    found: list[tuple[str, dict[str, State]]] = []

    def add(where: str, states: dict[str, State]) -> None:
        found.append((where, states))
        for name, state in states.items():
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                add(f"{where}/{name}", processor["States"])

    for path in ASL_FILES:
        add(path.name, json.loads(path.read_text())["States"])
    return found


def _reads(state: State) -> list[str]:
    """The input paths a state reads (``$.`` paths; context ``$$.`` paths are not input)."""
    paths: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key.endswith(".$") and isinstance(inner, str):
                    paths.append(inner)
                else:
                    collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect(state.get("Parameters"))
    collect(state.get("ItemSelector"))
    collect((state.get("ItemReader") or {}).get("Parameters"))
    paths += [state[f] for f in PATH_FIELDS if isinstance(state.get(f), str)]
    for rule in state.get("Choices", []):
        paths += _choice_reads(rule)
    return [p for p in paths if p.startswith("$.") or p == "$"]


def _choice_reads(rule: State) -> list[str]:
    nested = [*rule.get("And", []), *rule.get("Or", [])] + ([rule["Not"]] if "Not" in rule else [])
    paths = [p for inner in nested for p in _choice_reads(inner)]
    if "Variable" in rule and not PRESENCE_TESTS & set(rule):
        paths.append(rule["Variable"])
    paths += [v for k, v in rule.items() if k.endswith("Path") and isinstance(v, str)]
    return paths


def _passes_input_on(state: State) -> tuple[bool, str | None]:
    """Whether the state's output is its input (plus one field at ``ResultPath``)."""
    kind = state["Type"]
    if kind in ("Choice", "Wait") or (kind == "Pass" and not {"Parameters", "Result"} & set(state)):
        return True, None
    if kind in ("Task", "Map") and "ResultPath" in state and "OutputPath" not in state:
        result_path = state["ResultPath"]
        if result_path is None:
            return True, None
        if isinstance(result_path, str) and result_path.count(".") == 1:
            return True, result_path.removeprefix("$.")
    return False, None


def _next_states(state: State) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [rule["Next"] for rule in state.get("Choices", [])]
    return found + ([state["Default"]] if "Default" in state else [])


def cases() -> list[tuple[str, str, str, type[BaseModel], frozenset[str]]]:
    """(where, step, reading state, the step's output model, fields added on the way)."""
    models = _function_models()
    found = []
    for where, states in _machines():
        for name, state in states.items():
            function = (state.get("Parameters") or {}).get("FunctionName")
            if state["Type"] != "Task" or function not in models:
                continue
            model = models[function]
            if model is None or state.get("OutputPath") != "$.Result":
                continue
            seen: set[str] = set()
            todo = [(n, frozenset[str]()) for n in _next_states(state)]
            while todo:
                current, added = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                found.append((where, name, current, model, added))
                passes, field = _passes_input_on(states[current])
                if passes:
                    more = added | {field} if field else added
                    todo += [(n, more) for n in _next_states(states[current])]
    return found


# ----------------------------------------------------------------------------- the check
def _optional(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return annotation is None or (union and type(None) in args)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    models = [a for a in typing.get_args(annotation) if _is_model(a)]
    return models[0] if len(models) == 1 and typing.get_origin(annotation) is not list else None


def path_problem(
    model: type[BaseModel], path: str, added: frozenset[str], *, typed: bool = False
) -> str | None:
    """Why ``path`` may find nothing in a dump of ``model``, or None. A dump has every field,
    None ones as null, unless the model writes its own (a ``model_serializer``, which may drop
    some): reading a nullable field is then a problem, and so is going through one, or one read
    where a value of a type is needed (``typed``: ItemsPath, ErrorPath, ...)."""
    segments = [s for s in path.removeprefix("$").split(".") if s]
    if not segments or segments[0] in added:
        return None
    current: type[BaseModel] | None = model
    for depth, segment in enumerate(segments):
        if current is None:
            return None  # a dict or Any field: beyond what the models say
        by_alias: dict[str, FieldInfo] = {
            (info.alias or name): info for name, info in current.model_fields.items()
        }
        info = by_alias.get(segment.split("[")[0])
        if info is None:
            return f"{current.__name__} has no field {segment!r}"
        own_dump = bool(current.__pydantic_decorators__.model_serializers)
        last = depth == len(segments) - 1
        if _optional(info.annotation) and (own_dump or typed or not last):
            return f"{current.__name__}.{segment} may be null or absent"
        current = _inner_model(info.annotation)
    return None


def _problems(
    where: str, reader: str, model: type[BaseModel], added: frozenset[str]
) -> dict[str, str]:
    state = dict(_machines())[where][reader]
    typed = {state[f] for f in PATH_FIELDS if isinstance(state.get(f), str)}
    return {
        path: problem
        for path in _reads(state)
        if (problem := path_problem(model, path, added, typed=path in typed)) is not None
        and (where, reader, path) not in GUARDED
    }


#: Reads the model alone cannot vouch for, each made safe by the product and tested below.
GUARDED = {
    (machine, reader, path): "reached only when Status is not SUCCEEDED (Converged's rules are "
    "taken in order), and then ReconcileOutcome always writes Error and Cause"
    for machine in ("reconcile.asl.json",)
    for reader, paths in (
        ("PublishIncomplete", ("$.Error", "$.Cause")),
        ("Incomplete", ("$.Error", "$.Cause")),
        ("Converged", ("$.Error",)),
        ("PublishHeld", ("$.Cause",)),
    )
    for path in paths
}


CASES = cases()


def test_the_check_covers_every_machine() -> None:
    # Given / When the Lambda steps whose output a later state reads
    machines = {where.split("/")[0] for where, *_ in CASES}
    # Then every machine has some (so the enumeration did not silently break)
    assert machines == {"create.asl.json", "cleanup.asl.json", "reconcile.asl.json"}


@pytest.mark.parametrize(
    ("where", "step", "reader", "model", "added"),
    CASES,
    ids=[f"{w}:{s}->{r}" for w, s, r, _, _ in CASES],
)
def test_every_path_reads_a_field_the_step_always_outputs(
    where: str, step: str, reader: str, model: type[BaseModel], added: frozenset[str]
) -> None:
    # Given a state that reads a Lambda step's output
    # When each of its input paths is looked up in the step's output model
    problems = _problems(where, reader, model, added)
    # Then each finds a field that is always there (never States.Runtime from our documents)
    assert problems == {}, f"{where}: {step} -> {reader}"


def test_the_guarded_reads_hold() -> None:
    # Given the reconcile machine: Incomplete and PublishIncomplete only after Converged's
    # Default, which every Status but SUCCEEDED takes
    states = dict(_machines())["reconcile.asl.json"]
    assert states["Converged"]["Choices"] == [
        {"Variable": "$.DryRun", "BooleanEquals": True, "Next": "Planned"},
        {"Variable": "$.Status", "StringEquals": "SUCCEEDED", "Next": "PublishReconciled"},
        {"Variable": "$.Error", "StringEquals": "RemovalsHeld", "Next": "PublishHeld"},
    ]
    assert states["Converged"]["Default"] == "PublishIncomplete"
    assert states["PublishHeld"]["Next"] == "PublishIncomplete"
    assert states["PublishIncomplete"]["Next"] == "Incomplete"
    # When an outcome other than SUCCEEDED is written, even one nobody gave an error
    scope = ReconcileScope(accounts=[], regions=[])
    for status in ("INCOMPLETE", "FAILED"):
        dumped = ReconcileOutcome(scope=scope, status=status).dump()  # type: ignore[arg-type]
        # Then it has Error and Cause, strings
        assert isinstance(dumped["Error"], str), dumped
        assert isinstance(dumped["Cause"], str), dumped
    # And a SUCCEEDED one has neither
    assert not {"Error", "Cause"} & set(ReconcileOutcome(scope=scope).dump())


def test_the_check_catches_a_missing_and_a_nullable_field() -> None:
    # Given a model with a required field and an optional one
    class Inner(BaseModel):
        x: int

    class Doc(BaseModel):
        a: Inner
        b: Inner | None = None

    # When paths are checked / Then a missing field and a read through a null one are found
    assert path_problem(Doc, "$.a.x", frozenset()) is None
    assert path_problem(Doc, "$.c", frozenset()) == "Doc has no field 'c'"
    assert path_problem(Doc, "$.b.x", frozenset()) == "Doc.b may be null or absent"
    assert path_problem(Doc, "$.b", frozenset(), typed=True) == "Doc.b may be null or absent"
    assert path_problem(Doc, "$.b", frozenset()) is None  # null, present: a value
    assert path_problem(Doc, "$.c", frozenset({"c"})) is None
