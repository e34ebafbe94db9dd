"""Fixtures the contract tests share: template.yaml as CloudFormation will see it."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from emulator.template import Template

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def transformed_template() -> dict[str, Any]:
    """template.yaml transformed by samtranslator (offline), once per session: what
    CloudFormation deploys, and what the emulator deploys (``Template.load``).

    A plain function as well as the ``transformed`` fixture: test_iam_reference.py parametrizes
    over its statements, and parameters are computed at collection, before any fixture runs.
    Do not change what it returns: read it, or take the fixture (a copy).
    """
    return Template.load(ROOT / "template.yaml").body


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    # A copy: a test that changes it cannot change what another one reads.
    return copy.deepcopy(transformed_template())
