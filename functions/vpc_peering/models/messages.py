"""How a bad input is told: pydantic's errors as one line per field, naming the field and the
offending value (never a regular expression), with a did-you-mean for an unknown field."""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ValidationError,
)

from ..errors import InvalidInput
from .vocabulary import PATTERN_NAMES

#: Bounds on an InvalidInput message, whatever the input's size.
MAX_PATH = 120

MAX_PROBLEM = 300

MAX_PROBLEMS = 10


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse[ModelT: BaseModel](model: type[ModelT], data: Any, root: str = "") -> ModelT:
    """Validate ``data`` into ``model``; bad input becomes ``InvalidInput`` naming each field
    and the value it had, in words (never a pattern, never pydantic's wording).

    The message is bounded: long paths and values are clipped, and at most ten problems are
    listed, so a hostile input cannot make a huge error (or log line, or event).
    """
    if not isinstance(data, dict):
        where = root or "input"
        raise InvalidInput(f"{where}: must be a JSON object, got {_shown(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
            loc = _location(((root,) if root else ()) + tuple(err["loc"]))
            text = f"{_clip(loc or 'input', MAX_PATH)}: {_problem(model, err)}"
            problems.append(_clip(text, MAX_PROBLEM))
        more = exc.error_count() - len(problems)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise InvalidInput("; ".join(problems) + suffix) from None


def _location(parts: tuple[Any, ...]) -> str:
    """``Requester.SubnetIds[0]``: fields joined by dots, list positions in brackets."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _shown(value: Any) -> str:
    """A value as the user wrote it, clipped: ``'VPC-0ABC '``, ``12``, ``a list``."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return _clip(repr(value), 60)


_BOOLEAN = ("bool_type", "bool_parsing")

_CONTAINERS = {
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
}


def _problem(model: type[BaseModel], err: Any) -> str:
    """One validation error in words, with the offending value."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    shown = _shown(value)
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field" + _did_you_mean(model, err["loc"])
    if kind == "string_pattern_mismatch":
        return f"{shown} is not {PATTERN_NAMES.get(ctx.get('pattern', ''), 'valid here')}"
    if kind == "literal_error":
        return f"{shown} is not one of {ctx.get('expected', '')}".rstrip()
    if kind in _BOOLEAN:
        return f"must be true or false, got {shown}"
    if kind in _CONTAINERS:
        return f"must be {_CONTAINERS[kind]}, got {shown}"
    if kind.startswith(("datetime", "date_", "timezone")):
        return f"{shown} is not a date and time with a time zone (e.g. 2026-01-01T00:00:00Z)"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short"):
        return f"{message[0].lower()}{message[1:]}, got {shown}"
    return message


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``; did you mean VpcPeeringConnectionId?`` when a field of that object is close."""
    names = _field_names(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == str(loc[-1]).lower()]
    return f"; did you mean {close[0]}?" if close else ""


def _field_names(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names (as written on the wire) of the object at ``path`` in ``model``."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        field = fields.get(str(part))
        current = _model_in(field.annotation) if field else None
    return [f.alias or n for n, f in current.model_fields.items()] if current else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
