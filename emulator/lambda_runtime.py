"""In-process Lambda runtime: moto's Lambda invocations run the real handler in this process.

Why: there is no Docker here, and moto's Docker-less Lambda backend only echoes canned
responses. Patching ``LambdaFunction._invoke_lambda`` keeps moto's Lambda API (``Invoke``, the
Step Functions ``lambda:invoke`` integration) and swaps the container for an import and a call.

Behaviour, and how it differs from AWS Lambda:

* Modules are imported once and cached (``sys.modules``): a "warm container" shared by every
  invocation and every function of the stack. Module-level state survives between invocations,
  as in a warm Lambda, but is also shared by functions whose code shares modules.
* Invocations run concurrently, on the server's request threads; nothing serializes them.
* The function environment is process-wide: :func:`install_environment` puts the union of all
  functions' variables into ``os.environ`` and refuses two functions that disagree on one.
* The function ``Timeout`` is enforced as Lambda reports it: an invocation still running when
  it passes ends in a ``Sandbox.Timedout`` error ("Task timed out after N.00 seconds"), which is
  what the Step Functions task sees (Lambda's "Troubleshoot invocation issues": Sandbox.Timedout;
  "Configure Lambda function timeout"). A Python thread cannot be killed, so the handler's
  thread runs on to its end, unseen: on AWS the sandbox stops there. The context's
  ``get_remaining_time_in_millis()`` counts down from the same deadline.
* Handler logs go to the emulator's stdout/stderr (under ``--log-file``, to that file only:
  ``console.py``); ``LogResult`` is empty. A handler's own error
  classes (defined under its CodeUri: the refusals it raises by name) are logged in one line;
  any other exception with its traceback.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction

from emulator import console


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to run one deployed function."""

    name: str
    code_dir: Path
    handler: str
    arn: str
    timeout_seconds: int = 3
    memory_mb: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LambdaContext:
    """The subset of the Lambda context object that handlers (and Powertools) read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    function_version: str = "$LATEST"
    client_context: Any = None
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


logger = logging.getLogger("emulator.lambda")

_registry: dict[str, FunctionSpec] = {}
_registry_lock = threading.Lock()
_path_lock = threading.Lock()


def register(spec: FunctionSpec) -> None:
    with _registry_lock:
        _registry[spec.name] = spec


def registered(name: str) -> FunctionSpec | None:
    with _registry_lock:
        return _registry.get(name)


def install() -> None:
    """Patch moto's LambdaFunction so that invocations run in-process (idempotent; moto's own
    ``_invoke_lambda``, which needs Docker, is never called)."""
    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def install_environment(
    function_environments: Mapping[str, Mapping[str, str]], *, endpoint: str, region: str
) -> dict[str, str]:
    """Put every function's environment, and the local AWS endpoint, into ``os.environ``.

    Raises ValueError when two functions set one variable to different values: one process
    cannot give them different values, and silently picking one would hide a real difference.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function, variables in function_environments.items():
        for key, value in variables.items():
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"environment variable {key} differs between functions {owner[key]} "
                    f"({merged[key]!r}) and {function} ({value!r}); the in-process runtime "
                    "shares one environment"
                )
            merged[key] = value
            owner.setdefault(key, function)
    merged.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("POWERTOOLS_DEV", None)
    os.environ.update(merged)
    return merged


def invoke(spec: FunctionSpec, event: Any) -> tuple[str, bool]:
    """Run the handler once: (JSON payload, errored). Errors are Lambda-shaped payloads."""
    try:
        with console.handler_output():  # a module's import can print too
            handler = _load_handler(spec)
    except _InitError as exc:
        logger.error("%s: %s: %s", spec.name, exc.error_type, exc.message)
        return _error_payload(exc.error_type, exc.message, exc.__cause__), True
    context = _context(spec)
    outcome: list[tuple[str, bool]] = []
    runner = threading.Thread(
        target=lambda: outcome.append(_run(spec, handler, event, context)),
        name=f"lambda-{spec.name}-{context.aws_request_id[:8]}",
        daemon=True,
    )
    runner.start()
    runner.join(timeout=max(0.0, context.deadline_monotonic - time.monotonic()))
    if outcome:
        return outcome[0]
    # Lambda's own wording of a timeout; the Step Functions task fails with Sandbox.Timedout.
    message = (
        f"RequestId: {context.aws_request_id} Error: Task timed out after "
        f"{spec.timeout_seconds:.2f} seconds"
    )
    logger.warning("%s: %s (its thread runs on, unseen, to its end)", spec.name, message)
    return _error_payload("Sandbox.Timedout", message, None), True


def _run(
    spec: FunctionSpec, handler: Callable[[Any, Any], Any], event: Any, context: LambdaContext
) -> tuple[str, bool]:
    """One call of the handler, on its own thread: (JSON payload, errored)."""
    try:
        with console.handler_output():  # to the log file under make local, as to CloudWatch
            result = handler(_event_object(event), context)
    except Exception as exc:  # every handler error becomes a Lambda error
        # An error class of the function's own code is one it raises on purpose (a refusal it
        # reports by name): one line. Anything else may be a bug: the traceback too.
        expected = _defined_in(type(exc), spec.code_dir)
        logger.info("%s raised %s: %s", spec.name, type(exc).__name__, exc, exc_info=not expected)
        # The first frame is this function: Lambda's stackTrace starts in the handler.
        return _error_payload(type(exc).__name__, str(exc), exc, skip_frames=1), True
    try:
        return json.dumps(result), False
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        return _error_payload("Runtime.MarshalError", message, None), True


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for ``LambdaFunction._invoke_lambda``: (payload, errored, logs)."""
    spec = registered(self.function_name)
    if spec is None:
        message = (
            f"function {self.function_name} is not deployed from the template, so the "
            "emulator has no code to run for it"
        )
        return _error_payload("Emulator.FunctionNotRegistered", message, None), True, ""
    payload, errored = invoke(spec, event)
    return payload, errored, ""


def _defined_in(cls: type, code_dir: Path) -> bool:
    """Whether the class comes from a module under the function's CodeUri."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return bool(path) and Path(str(path)).resolve().is_relative_to(code_dir)


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = spec.handler.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec.handler}'")
    code_dir = str(spec.code_dir)
    with _path_lock:
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        message = f"Unable to import module '{module_name}': {exc}"
        raise _InitError("Runtime.ImportModuleError", message) from exc
    module_file = getattr(module, "__file__", None)
    if module_file and not Path(module_file).resolve().is_relative_to(spec.code_dir):
        message = (
            f"module {module_name} was imported from {module_file}, not from {code_dir}: "
            "two CodeUri directories define the same module"
        )
        raise _InitError("Runtime.ImportModuleError", message)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        message = f"Handler '{attribute}' missing on module '{module_name}'"
        raise _InitError("Runtime.HandlerNotFound", message)
    return handler


def _event_object(event: Any) -> Any:
    if isinstance(event, bytes):
        event = event.decode("utf-8")
    if isinstance(event, str):
        try:
            return json.loads(event)
        except ValueError:
            return event
    return {} if event is None else event


def _context(spec: FunctionSpec) -> LambdaContext:
    request_id = str(uuid.uuid4())
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    return LambdaContext(
        function_name=spec.name,
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{spec.name}",
        log_stream_name=f"{today}/[$LATEST]{request_id.replace('-', '')}",
        deadline_monotonic=time.monotonic() + spec.timeout_seconds,
    )


def _error_payload(
    error_type: str, message: str, exc: BaseException | None, skip_frames: int = 0
) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[skip_frames:] if exc is not None else []
    stack = traceback.format_list(frames)
    return json.dumps(
        {
            "errorType": error_type,
            "errorMessage": message,
            "stackTrace": [line.rstrip("\n") for line in stack],
        }
    )
