"""Small corrections to moto where it differs from AWS in a way callers cannot work around.

Each fix is listed in emulator/README.md. Keep them few and obvious: the emulator should be
moto, not a fork of it. EC2's are in ``ec2_fixes.py``.

Not needed: ``StartExecution`` idempotency (same name and input while the execution runs: that
execution is returned; else ``ExecutionAlreadyExists``) is already moto 5.2.5's behaviour
(``StateMachine._handle_name_input_idempotency``), checked by test_emulator_tiny_stack.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackEndpoint,
    CallbackPoolManager,
)
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

    original_heartbeat = CallbackPoolManager.heartbeat

    def heartbeat(self: CallbackPoolManager, callback_id: Any) -> bool:
        # moto 5.2.5 registers a waitForTaskToken token before the task's call (PutEvents),
        # but sets up its heartbeat endpoint only after that call returns, and till then calls
        # the token unknown (InvalidToken). A rule target can heartbeat sooner than that; in
        # AWS the token is valid from the start, so a heartbeat then is accepted as a no-op.
        endpoint: CallbackEndpoint | None = self._pool.get(callback_id)
        if endpoint is not None and endpoint.consumer_error is None:
            endpoint.notify_heartbeat()
            return True
        return bool(original_heartbeat(self, callback_id))

    CallbackPoolManager.heartbeat = heartbeat  # type: ignore[method-assign]
