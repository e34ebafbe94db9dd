"""The console of ``make local`` (``--log-file``): one line per execution and per failure an
operator caused, everything else in the log file.

Why: without it the terminal is moto's and the handlers'. moto's interpreter logs every failed
state as an ERROR (the state's whole definition included), each handler prints its Powertools
JSON logs and EMF metrics, and a handler error that is not one of the function's own classes (a
ClientError from EC2, say) logs its traceback: a create refused for overlapping CIDRs, which the
operator asked for, reads like a crash.

What the console keeps: the announcement; one line per execution that ends (name, machine,
status, duration, error and cause clipped); one line per handler error that is not the
function's own (naming the log file, where its traceback is); what the emulator's own modules
say (a schedule fired, an event refused); and, in full, any other warning or error (werkzeug's
"Error on request", a delivery that failed: the emulator's own faults). The log file gets all of
it too, tracebacks and handler output included.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)

logger = logging.getLogger("emulator.executions")

#: Loggers whose records only the log file gets: per-state failures the execution line sums up.
FILE_ONLY = ("moto.stepfunctions",)
CAUSE_CHARS = 160
LINE_CHARS = 300

_local = threading.local()
_installed = False


@contextmanager
def handler_output() -> Iterator[None]:
    """While a handler runs on this thread: its prints and log lines go to the log file."""
    previous = getattr(_local, "in_handler", False)
    _local.in_handler = True
    try:
        yield
    finally:
        _local.in_handler = previous


class _Routed:
    """``sys.stdout``/``sys.stderr``: what a handler writes goes to the log file, the rest to
    the terminal (invocations run on the server's threads, so the choice is per thread)."""

    def __init__(self, console: TextIO, log: TextIO, lock: threading.Lock) -> None:
        self._console = console
        self._log = log
        self._lock = lock

    def write(self, text: str) -> int:
        if getattr(_local, "in_handler", False):
            with self._lock:
                return self._log.write(text)
        return self._console.write(text)

    def flush(self) -> None:
        self._console.flush()
        with self._lock:
            self._log.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console, name)


def one_line(text: str, limit: int = CAUSE_CHARS) -> str:
    """``text`` on one line, control and format characters (bidi, separators) escaped, clipped
    to ``limit`` characters: a cause can carry anything a tag or an AWS message carried."""
    flat = " ".join(text.split())
    escaped = "".join(
        c if unicodedata.category(c)[0] != "C" else c.encode("unicode_escape").decode("ascii")
        for c in flat
    )
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is its JSON error payload: its message is what a person reads."""
    if not cause:
        return ""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return payload["errorMessage"]
    return cause


def execution_line(
    execution_arn: str,
    status: str,
    started: datetime | None,
    stopped: datetime | None,
    error: str | None = None,
    cause: str | None = None,
) -> str:
    """``execution <name> (<machine>) <STATUS> in <s>[: <error>: <cause, clipped>]``."""
    parts = execution_arn.split(":")
    machine, name = (parts[-2], parts[-1]) if len(parts) >= 8 else ("?", execution_arn)
    line = f"execution {one_line(name, 80)} ({one_line(machine, 80)}) {status}"
    if started is not None and stopped is not None:
        line += f" in {(stopped - started).total_seconds():.1f}s"
    if error or cause:
        line += f": {one_line(error or '', 60)}"
        if cause:
            line += f": {one_line(readable_cause(cause))}"
    return line


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS message`` on one line, clipped; WARNING and above say their level and logger.
    A handler's traceback stays in the log file, named; any other traceback is the emulator's own
    fault and is shown in full."""

    def __init__(self, log_path: Path) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")
        self.log_path = log_path

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, self.datefmt)
        level = f"{record.levelname} {record.name}: " if record.levelno >= logging.WARNING else ""
        if record.name == "emulator.lambda" and record.exc_info:
            message = one_line(record.getMessage(), LINE_CHARS)
            return f"{when} {level}{message} (traceback: {self.log_path})"
        if not record.exc_info:
            return f"{when} {level}{one_line(record.getMessage(), LINE_CHARS)}"
        # The emulator's own fault: in full.
        return f"{when} {level}{record.getMessage()}\n{self.formatException(record.exc_info)}"


class ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(FILE_ONLY):
            return False
        if record.name == "emulator.lambda":
            # The function's own error classes (a refusal by name): the execution line says it.
            return bool(record.exc_info) or record.levelno >= logging.WARNING
        if record.name.startswith("emulator."):
            return True
        return record.levelno >= logging.WARNING


def install(log_path: Path) -> None:
    """Route logging, ``sys.stdout``/``sys.stderr`` and execution ends as the module says
    (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w", encoding="utf-8", buffering=1)
    console_out, console_err = sys.stdout, sys.stderr
    lock = threading.Lock()
    sys.stdout = _Routed(console_out, log, lock)
    sys.stderr = _Routed(console_err, log, lock)

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    to_file = logging.StreamHandler(log)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    to_console = logging.StreamHandler(console_err)
    to_console.setFormatter(ConsoleFormatter(log_path))
    to_console.addFilter(ConsoleFilter())
    root.handlers[:] = [to_file, to_console]

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        try:
            logger.info(_line_of(self.execution))
        except Exception:  # a summary must never break an execution
            logger.exception("could not summarise an execution")

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]


def _line_of(execution: Execution) -> str:
    status = execution.exec_status
    return execution_line(
        str(execution.exec_arn),
        str(getattr(status, "value", status)),
        execution.start_date,
        execution.stop_date,
        str(execution.error) if execution.error else None,
        str(execution.cause) if execution.cause else None,
    )
