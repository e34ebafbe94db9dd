"""Write the template as CloudFormation will see it: transformed by samtranslator, as JSON.

Usage: ``python scripts/transform_template.py [TEMPLATE] OUTPUT`` (TEMPLATE: template.yaml).

Static checks (checkov in ``make checkov``) read this to see the resources SAM generates (roles,
permissions, rules, queues) rather than only the ``AWS::Serverless::*`` shorthand. It is the
emulator's own translation (``emulator.sam``, what the emulator deploys): offline, local
CodeUri/ContentUri/DefinitionUri become S3 locations (what ``sam package`` would write), and
managed policy names are not looked up (the template uses none).

SAM keeps a resource's ``Metadata`` on the resource it becomes (``AWS::Serverless::Function`` ->
``AWS::Lambda::Function``) but not on the others it generates (role, rule, queue). So that a
checkov skip written, with its reason, on a SAM resource in template.yaml also covers those, the
SAM resource's ``Metadata.checkov`` is copied onto each resource generated from it: a new logical
id that starts with the SAM resource's (the longest such), as SAM names them.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.template import Template  # noqa: E402


def transformed(path: str | Path) -> dict[str, Any]:
    """The template at ``path`` transformed by samtranslator (us-east-1, no AWS calls)."""
    template = Template.load(path)
    result = copy.deepcopy(template.body)
    _copy_checkov_metadata(template.source["Resources"], result["Resources"])
    return result


def _copy_checkov_metadata(sam: dict[str, Any], generated: dict[str, Any]) -> None:
    owners = sorted(
        (
            logical_id
            for logical_id, r in sam.items()
            if str(r.get("Type")).startswith("AWS::Serverless::")
        ),
        key=len,
        reverse=True,
    )
    for logical_id, resource in generated.items():
        if logical_id in sam:
            continue
        owner = next((o for o in owners if logical_id.startswith(o)), None)
        checkov = (sam[owner].get("Metadata") or {}).get("checkov") if owner else None
        if checkov is not None:
            resource.setdefault("Metadata", {}).setdefault("checkov", copy.deepcopy(checkov))


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: transform_template.py [TEMPLATE] OUTPUT", file=sys.stderr)
        return 2
    source = Path(argv[0]) if len(argv) == 2 else ROOT / "template.yaml"
    output = Path(argv[-1])
    output.write_text(json.dumps(transformed(source), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
