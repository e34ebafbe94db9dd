"""Small corrections to moto where it differs from AWS in a way callers cannot work around.

Each fix is listed in emulator/README.md. Keep them few and obvious: the emulator should be
moto, not a fork of it.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

_installed = False


def install() -> None:
    """Apply every fix (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        # moto 5.2.5's interpreter backend names an unnamed execution "None" (so a second
        # unnamed StartExecution fails with ExecutionAlreadyExists); AWS uses a UUID.
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]

    def send_task_failure(self: StepFunctionResponse) -> Any:
        # moto 5.2.5's SendTaskFailure handler drops ``cause``, so the waiting state's Catch
        # sees only the error name; AWS passes both.
        self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
