"""What a reconcile can do to a pair, once: each action's machine, the report count it adds
to, what a dry run calls it, whether it frees routes and quota; and how long a cause may be.
Pure data, imported by the planner and by the steps that count its results (so those need
not import the planner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal[
    "create", "repair", "remove", "accept", "repair-incoming", "remove-incoming", "reject"
]


@dataclass(frozen=True)
class ActionSpec:
    """What an action is: the machine it starts, the report count and list it adds to when
    it ends well, what a dry run calls it, and whether it frees routes and quota (those run
    in the first rounds)."""

    machine: Literal["create", "cleanup"]
    counter: Literal["created", "repaired", "removed", "accepted", "rejected"]
    shown: str
    frees: bool = False


#: Every action, once.
ACTIONS: dict[Action, ActionSpec] = {
    "create": ActionSpec("create", "created", "create"),
    "repair": ActionSpec("create", "repaired", "repair"),
    "remove": ActionSpec("cleanup", "removed", "remove", frees=True),
    "accept": ActionSpec("create", "accepted", "accept"),
    "repair-incoming": ActionSpec("create", "repaired", "repair"),
    "remove-incoming": ActionSpec("cleanup", "removed", "remove", frees=True),
    "reject": ActionSpec("cleanup", "rejected", "reject"),
}
#: A failure's cause at most (an unexpected exception's text can be anything, of any length).
MAX_CAUSE = 400


def clip(text: str, limit: int = MAX_CAUSE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
