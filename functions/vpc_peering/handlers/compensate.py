"""Create machine, on failure: undo what this execution made; name the error."""

from ..runtime import raw_step
from ..teardown import compensate

lambda_handler = raw_step("Compensate", compensate)
