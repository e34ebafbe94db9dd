"""The HTTP server: moto's WSGI app behind a middleware that records every AWS API call.

Why a middleware: tests and benchmarks count API calls (per service, operation, account and
region), and fault injection will hook in here later. Every signed AWS request becomes an
:class:`ApiCall`, is appended to the call log, then offered to each ``before_request_hooks``
entry in order; a hook returning a :class:`HookResponse` answers the request instead of moto
(e.g. "fail the 2nd CreateRoute with RouteAlreadyExists").

Reserved paths on the same port (never forwarded to moto, never counted):

* ``GET /_emulator/calls``: the call log, a JSON list in arrival order;
* ``POST /_emulator/calls/reset``: empty it;
* ``GET /_emulator/health``: ``{"ok": true}``;
* ``GET /_emulator/info``: what the ready file holds (endpoint, ARNs, functions), 503 until the
  stack is deployed; lets a client attach to an emulator it did not start;
* ``/_emulator/faults``: fault injection rules (see ``faults.py``).

Calls made by moto's own Step Functions interpreter (Lambda Invoke, EventBridge PutEvents of a
task) are counted too; they are signed with the access key ``ak``. The emulator's own deployment
calls (user agent containing :data:`UNLOGGED_USER_AGENT`, see ``deploy.py``) are neither counted
nor offered to the hooks: a stack deployed while tests run must not shift call counts or meet
injected faults.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_emulator/"
UNLOGGED_USER_AGENT = "emulator-deploy"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class ApiCall:
    """One AWS API request, as seen before moto handles it.

    ``protocol`` is botocore's: ``query``/``ec2`` (form ``Action``), ``json`` (``X-Amz-Target``)
    or ``rest-json``/``rest-xml`` (method and path): a fault-injection hook needs it to shape an
    error response the SDK can parse.
    """

    service: str
    operation: str
    region: str
    access_key: str
    account: str
    protocol: str


@dataclass(frozen=True)
class HookResponse:
    """A response a before-request hook sends instead of moto's."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


BeforeRequestHook = Callable[[ApiCall], HookResponse | None]
ControlHandler = Callable[[str, bytes], tuple[int, Any]]


@dataclass
class EmulatorApp:
    """WSGI middleware around moto: call log, before-request hooks, ``/_emulator/`` paths."""

    app: WsgiApp
    before_request_hooks: list[BeforeRequestHook] = field(default_factory=list)
    info: dict[str, Any] | None = None  # set once the stack is deployed
    #: Extra ``/_emulator/<route>`` handlers: (method, request body) -> (status, JSON payload).
    control_handlers: dict[str, ControlHandler] = field(default_factory=dict)
    _calls: list[ApiCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def reset_calls(self) -> int:
        with self._lock:
            count = len(self._calls)
            self._calls.clear()
            return count

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        call = describe_call(environ)
        if call is not None and UNLOGGED_USER_AGENT not in environ.get("HTTP_USER_AGENT", ""):
            with self._lock:
                self._calls.append(call)
            for hook in list(self.before_request_hooks):
                response = hook(call)
                if response is not None:
                    headers = [
                        ("Content-Type", response.content_type),
                        ("Content-Length", str(len(response.body))),
                        *response.headers,
                    ]
                    start_response(f"{response.status} {_reason(response.status)}", headers)
                    return [response.body]
        return self.app(environ, start_response)

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        route = environ.get("PATH_INFO", "").removeprefix(CONTROL_PREFIX).rstrip("/")
        status: int = 200
        payload: Any
        if (method, route) == ("GET", "calls"):
            payload = [asdict(call) for call in self.calls()]
        elif (method, route) == ("POST", "calls/reset"):
            payload = {"reset": self.reset_calls()}
        elif (method, route) == ("GET", "health"):
            payload = {"ok": True}
        elif (method, route) == ("GET", "info"):
            ready = self.info is not None
            status, payload = (200, self.info) if ready else (503, {"error": "deploying"})
        elif route in self.control_handlers:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            status, payload = self.control_handlers[route](method, body)
        else:
            status, payload = 404, {"error": f"no such emulator endpoint: {method} /{route}"}
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_reason(status)}", headers)
        return [body]


def describe_call(environ: dict[str, Any]) -> ApiCall | None:
    """Service, operation, region and caller of a SigV4-signed request; None if unsigned."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if match is None and "X-Amz-Credential" in query:  # presigned URL
        match = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0] + ",")
    if match is None:
        return None
    access_key, region, service = match.groups()
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation, protocol = target.rsplit(".", 1)[-1], "json"
    else:
        action = query.get("Action", [None])[0] or _form_action(environ)
        if action:
            operation, protocol = action, "ec2" if service == "ec2" else "query"
        else:
            operation, protocol = _rest_operation(
                service, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
            )
    return ApiCall(
        service=service,
        operation=operation,
        region=region,
        access_key=access_key,
        account=_account_for(access_key),
        protocol=protocol,
    )


def _form_action(environ: dict[str, Any]) -> str | None:
    """``Action`` from a form-encoded body; the body is put back for moto to read."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    values = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return values[0] if values else None


def _rest_operation(service: str, method: str, path: str) -> tuple[str, str]:
    """Match a REST request against botocore's model of the service (longest literal wins)."""
    protocol, routes = _rest_routes(service)
    best: tuple[int, str] | None = None
    for route_method, pattern, literal_length, name in routes:
        matched = route_method == method and pattern.fullmatch(path)
        if matched and (best is None or literal_length > best[0]):
            best = (literal_length, name)
    return (best[1] if best else f"{method} {path}"), protocol


@cache
def _rest_routes(service: str) -> tuple[str, list[tuple[str, re.Pattern[str], int, str]]]:
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # unknown signing name: fall back to "METHOD /path"
        return "rest", []
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http.get("requestUri", "/")).split("?", 1)[0]
        regex, literal = "", 0
        for piece in re.split(r"(\{[^}]+\})", uri):
            if piece.startswith("{"):
                regex += ".+" if piece.endswith("+}") else "[^/]+"
            else:
                regex += re.escape(piece)
                literal += len(piece)
        routes.append((str(http.get("method", "POST")), re.compile(regex + "/?"), literal, name))
    return str(model.protocol), routes


def _account_for(access_key: str) -> str:
    from moto.iam.models import get_account_id_from

    try:
        return get_account_id_from(access_key)
    except Exception:  # accounting must never break a request
        return ""


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def configure_moto() -> None:
    """Run state machines for real (moto's ASL interpreter) instead of recording them only."""
    default_user_config["stepfunctions"]["execute_state_machine"] = True


def create_server(port: int) -> tuple[BaseWSGIServer, EmulatorApp]:
    """Bind ``127.0.0.1:port`` (0: any free port) and wrap moto's app; does not serve yet."""
    app = EmulatorApp(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    return server, app
