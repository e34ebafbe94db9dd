"""Reconcile machine, a round's last step: how its child executions ended, in brief."""

from ..models.network import RoundResult
from ..outcomes import record_round
from ..runtime import document_step

lambda_handler = document_step("RecordRound", RoundResult, record_round)
