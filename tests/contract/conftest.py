"""Fixtures the contract tests share: template.yaml as CloudFormation will see it."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from emulator.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def transformed_template() -> dict[str, Any]:
    """template.yaml transformed by samtranslator (offline), once per session.

    A plain function as well as the ``transformed`` fixture: test_iam_reference.py parametrizes
    over its statements, and parameters are computed at collection, before any fixture runs.
    Do not change what it returns: read it, or take the fixture (a copy).
    """
    # The raw file: Template.load adds SAM's implicit resources, which samtranslator makes itself.
    body = load_yaml((ROOT / "template.yaml").read_text())
    # samtranslator wants S3 locations; `sam package` would put them there.
    body["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    for resource in body["Resources"].values():
        props = resource.get("Properties", {})
        if "ContentUri" in props:
            props["ContentUri"] = "s3://bucket/layer.zip"
        if "DefinitionUri" in props:
            props["DefinitionUri"] = {"Bucket": "bucket", "Key": "definition.json"}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = transform(body, {}, _NoManagedPolicies())
    return result


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    # A copy: a test that changes it cannot change what another one reads.
    return copy.deepcopy(transformed_template())
