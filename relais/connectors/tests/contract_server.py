"""A local HTTP server that plays a network's documented API and checks every request against it.

For networks no server of which can run here (Mastodon, X, Facebook): each test module lists the
documented endpoints (method, path pattern, who may call it, a checker of parameters and body)
and routes what passes to answers built from its fixtures. A request outside the contract is
answered 404 (unknown method) or 400 (checker problems) and recorded in ``violations``; the
tests' fixtures assert that list is empty, so a connector that drifts from the documentation
fails its tests. These are contract tests: they prove the requests and the parsing, not a live
server's behaviour.
"""

from __future__ import annotations

import email.parser
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relais.tests.http_server import LocalHttpServer, read_body, respond

Answer = tuple[int, dict[str, str], Any]
JSON = "application/json; charset=utf-8"


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.query = parse_qsl(parts.query, keep_blank_values=True)
        self.headers = {key.lower(): value for key, value in handler.headers.items()}
        self.body = read_body(handler)

    def params(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for key, value in self.query:
            grouped.setdefault(key, []).append(value)
        return grouped

    def param(self, key: str, default: str = "") -> str:
        return self.params().get(key, [default])[0]

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def multipart(self) -> dict[str, bytes]:
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {self.headers.get('content-type', '')}\r\n\r\n".encode() + self.body
        )
        parts = {}
        for part in message.walk():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
        return parts


Checker = Callable[[Request], list[str]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    pattern: str  # a regular expression matching the whole path
    check: Checker
    authorized: Callable[[Request], bool] | None = None  # None: callable without a token


def no_body(request: Request) -> list[str]:
    return ["unexpected body"] if request.body else []


def only_params(request: Request, allowed: set[str]) -> list[str]:
    problems = [f"unknown parameter {key}" for key in request.params() if key not in allowed]
    return problems + [
        f"{key} given twice" for key, values in request.params().items() if len(values) > 1
    ]


def listed_values(request: Request, key: str, allowed: set[str]) -> list[str]:
    """A comma-separated parameter (``tweet.fields=id,text``) may only name documented values."""
    value = request.param(key)
    if not value:
        return []
    return [
        f"{key}: {item!r} is not documented" for item in value.split(",") if item not in allowed
    ]


def in_range(request: Request, key: str, low: int, high: int) -> list[str]:
    value = request.param(key)
    if value and not (value.isdigit() and low <= int(value) <= high):
        return [f"{key} {value} outside {low}..{high}"]
    return []


class ContractServer(LocalHttpServer):
    """Documented answers and request validation over real HTTP on 127.0.0.1."""

    def __init__(
        self,
        endpoints: list[Endpoint],
        route: Callable[[Request], Answer],
        *,
        unauthorized: Answer = (401, {}, {"error": "unauthorized"}),
    ) -> None:
        self.endpoints = endpoints
        self.route = route
        self.unauthorized = unauthorized
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.scripted: deque[tuple[str, int, dict[str, str], Any]] = deque()
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        return self.base_url

    def script(
        self, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next valid request to ``path`` with this, before any normal handling."""
        self.scripted.append((path, status, headers or {}, body))

    def delay_next(self, path: str, seconds: float) -> None:
        """Handle the next request to ``path`` normally, but answer it only after ``seconds``."""
        self.delays[path] = seconds

    def served(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        request = Request(handler)
        with self._lock:
            self.requests.append(request)
            status, headers, body = self._answer(request)
            delay = self.delays.pop(request.path, 0.0)
        if delay:
            time.sleep(delay)
        # Bytes are sent as they are (recorded bodies); anything else is encoded as JSON.
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        respond(handler, status, payload, {"Content-Type": JSON, **headers})

    def _answer(self, request: Request) -> Answer:
        endpoint = next(
            (
                e
                for e in self.endpoints
                if e.method == request.method and re.fullmatch(e.pattern, request.path)
            ),
            None,
        )
        if endpoint is None:
            self.violations.append(f"{request.method} {request.path} is not a documented method")
            return 404, {}, {"error": "not found"}
        problems = endpoint.check(request)
        if problems:
            self.violations += [f"{request.method} {request.path}: {p}" for p in problems]
            return 400, {}, {"error": "; ".join(problems)}
        if self.scripted and self.scripted[0][0] == request.path:
            _path, status, headers, body = self.scripted.popleft()
            return status, headers, body
        if endpoint.authorized is not None and not endpoint.authorized(request):
            return self.unauthorized
        return self.route(request)
