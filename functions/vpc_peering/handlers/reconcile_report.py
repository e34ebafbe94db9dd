"""Reconcile machine, last step: the report; the reconcile lease given back."""

from ..outcomes import report
from ..runtime import request_step

lambda_handler = request_step("ReconcileReport", report)
