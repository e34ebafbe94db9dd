"""Cleanup machine, step 1: find the routes to the peering and this stack's route tables."""

from ..runtime import request_step
from ..teardown import cleanup_plan

lambda_handler = request_step("CleanupPlan", cleanup_plan)
