"""Write the JSON Schemas of the machines' inputs from the pydantic models (`make schemas`).

The README links these files; tests/contract checks they match the models, so the documented
input never drifts from what the functions accept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))

from vpc_peering.models.requests import CleanupRequest, CreateRequest, ReconcileRequest  # noqa: E402

SCHEMAS = {
    "create-input.schema.json": CreateRequest,
    "cleanup-input.schema.json": CleanupRequest,
    "reconcile-input.schema.json": ReconcileRequest,
}


def render(model: type) -> str:
    schema = model.model_json_schema(by_alias=True)  # type: ignore[attr-defined]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, model in SCHEMAS.items():
        (ROOT / "events" / "schema" / name).write_text(render(model))
        print(f"wrote events/schema/{name}")


if __name__ == "__main__":
    main()
