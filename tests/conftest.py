"""Loaded before any test module: Powertools reads its settings when ``vpc_peering.observability``
is first imported (by whichever test module imports a step first), so they are set here, to the
values template.yaml gives the functions (``tests/unit/environment.py``)."""

from __future__ import annotations

import os

from tests.unit.environment import ENV

for _key, _value in ENV.items():
    if _key.startswith("POWERTOOLS_"):
        os.environ.setdefault(_key, _value)
