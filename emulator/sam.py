"""A SAM template as CloudFormation sees it: transformed by AWS's own translator, samtranslator.

Why: CloudFormation deploys the resources the ``AWS::Serverless-2016-10-31`` transform makes of
a template (roles from ``Policies`` and policy templates, rules and roles from ``Events``, merged
``Globals``), not the shorthand. The emulator deploys the same output, so every SAM feature the
translator knows is what runs locally, with no second reading of SAM to drift from AWS's.
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html

Offline, as ``sam package`` would leave it: a local ``CodeUri``, ``ContentUri`` or
``DefinitionUri`` becomes an S3 location in :data:`LOCAL_BUCKET` whose key names the local path
in :attr:`Translation.artifacts`; the deployer reads the code and definitions from there.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)
from samtranslator.translator.translator import Translator

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
#: The bucket of the S3 locations standing for local paths (no such bucket is created).
LOCAL_BUCKET = "emulator-local-artifacts"
_URIS = ("CodeUri", "ContentUri", "DefinitionUri")
#: samtranslator keeps the region in a class attribute (ArnGenerator): one translation at a time.
_TRANSLATING = threading.Lock()
# Its metrics are never published here; it warns of that once per translation.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)


class SamError(Exception):
    """samtranslator refused the template (the message is its own)."""


@dataclass(frozen=True)
class Translation:
    """The CloudFormation template, and the local path behind each ``LOCAL_BUCKET`` key."""

    body: dict[str, Any]
    artifacts: dict[str, Path]


class _NoManagedPolicies:
    """samtranslator's loader of AWS managed policy names (it asks IAM): offline, none known;
    a managed policy is then named by its ARN in the template."""

    def load(self) -> dict[str, str]:
        return {}


def is_sam(body: Mapping[str, Any]) -> bool:
    transform = body.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


def translate(
    body: dict[str, Any],
    base_dir: Path,
    *,
    region: str = "us-east-1",
    parameter_values: Mapping[str, Any] | None = None,
) -> Translation:
    """``body`` (a SAM template, not changed) as the transform leaves it for CloudFormation."""
    sam = copy.deepcopy(body)
    artifacts: dict[str, Path] = {}
    for section in (sam.get("Globals") or {}).values():
        if isinstance(section, dict):
            _to_s3(section, base_dir, artifacts)
    for resource in (sam.get("Resources") or {}).values():
        if isinstance(resource, dict) and isinstance(resource.get("Properties"), dict):
            _to_s3(resource["Properties"], base_dir, artifacts)
    values = dict(parameter_values or {})
    to_py27_compatible_template(sam, values)
    try:
        with _TRANSLATING:
            session = boto3.Session(region_name=region)
            translator = Translator(None, Parser(), boto_session=session)
            result: dict[str, Any] = translator.translate(
                sam, values, get_managed_policy_map=_NoManagedPolicies().load
            )
    except InvalidDocumentException as exc:
        causes = "; ".join(cause.message for cause in exc.causes) or str(exc)
        raise SamError(f"SAM transform failed: {causes}") from None
    return Translation(body=undo_mark_unicode_str_in_template(result), artifacts=artifacts)


def _to_s3(properties: dict[str, Any], base_dir: Path, artifacts: dict[str, Path]) -> None:
    for key in _URIS:
        value = properties.get(key)
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        token = f"local/{len(artifacts)}/{Path(value).name or 'code'}"
        artifacts[token] = (base_dir / value).resolve()
        if key == "DefinitionUri":
            properties[key] = {"Bucket": LOCAL_BUCKET, "Key": token}
        else:
            properties[key] = f"s3://{LOCAL_BUCKET}/{token}"
