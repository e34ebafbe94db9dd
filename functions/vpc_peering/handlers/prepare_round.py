"""Reconcile machine, a round's first step: each pair's child execution (machine, name, input)."""

from ..models import RoundInput
from ..reconcile import prepare_round
from ..runtime import document_step

lambda_handler = document_step("PrepareRound", RoundInput, prepare_round)
