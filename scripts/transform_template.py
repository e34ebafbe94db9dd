"""Write the template as CloudFormation will see it: transformed by samtranslator, as JSON.

Usage: ``python scripts/transform_template.py [TEMPLATE] OUTPUT`` (TEMPLATE: template.yaml).

Static checks (checkov in ``make checkov``) read this to see the resources SAM generates (roles,
permissions, rules, queues) rather than only the ``AWS::Serverless::*`` shorthand. Offline: local
CodeUri/ContentUri/DefinitionUri become placeholder S3 locations (what ``sam package`` would
write), and managed policy names are not looked up (the template uses none).

SAM keeps a resource's ``Metadata`` on the resource it becomes (``AWS::Serverless::Function`` ->
``AWS::Lambda::Function``) but not on the others it generates (role, rule, queue). So that a
checkov skip written, with its reason, on a SAM resource in template.yaml also covers those, the
SAM resource's ``Metadata.checkov`` is copied onto each resource generated from it: a new logical
id that starts with the SAM resource's (the longest such), as SAM names them.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samtranslator.translator.transform import transform  # noqa: E402

from emulator.template import TemplateError, load_yaml  # noqa: E402

_S3_URI = {
    "CodeUri": "s3://placeholder-bucket/code.zip",
    "ContentUri": "s3://placeholder-bucket/layer.zip",
}
_S3_LOCATION = {"DefinitionUri": {"Bucket": "placeholder-bucket", "Key": "definition.json"}}


class _NoManagedPolicies:
    """samtranslator's managed policy loader: the template names no AWS managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def _to_s3(properties: dict[str, Any]) -> None:
    for key, uri in _S3_URI.items():
        if _is_local(properties.get(key)):
            properties[key] = uri
    for key, location in _S3_LOCATION.items():
        if _is_local(properties.get(key)):
            properties[key] = dict(location)


def transformed(path: str | Path) -> dict[str, Any]:
    """The template at ``path`` transformed by samtranslator (us-east-1, no AWS calls)."""
    # The template as written: not Template.load's body, which adds resources SAM generates (the
    # emulator's view) that samtranslator would then find twice.
    body = load_yaml(Path(path).read_text(encoding="utf-8"))
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources map)")
    for section in (body.get("Globals") or {}).values():
        if isinstance(section, dict):
            _to_s3(section)
    for resource in body["Resources"].values():
        if isinstance(resource.get("Properties"), dict):
            _to_s3(resource["Properties"])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = transform(body, {}, _NoManagedPolicies())
    _copy_checkov_metadata(body["Resources"], result["Resources"])
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
