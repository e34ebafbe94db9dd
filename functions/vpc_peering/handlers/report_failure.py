"""Cleanup machine, on failure: a short error name and cause for the Fail state."""

from typing import Any

from ..aws import Access
from ..runtime import raw_step
from ..settings import Settings
from ..teardown import report_failure


def _report(document: dict[str, Any], access: Access, settings: Settings) -> dict[str, str]:
    return report_failure(document)


lambda_handler = raw_step("ReportFailure", _report)
