"""Create machine, step 1: validate the request and plan it (no change to anything)."""

from ..peering import plan
from ..runtime import request_step

lambda_handler = request_step("Plan", plan)
