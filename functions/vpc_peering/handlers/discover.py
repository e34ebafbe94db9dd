"""Reconcile machine, step 1: read every managed account and region once; decide every pair."""

from ..reconcile import discover
from ..runtime import request_step

lambda_handler = request_step("Discover", discover)
