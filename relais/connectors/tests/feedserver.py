"""A real local HTTP server answering with feed fixtures, as a feed host would (tests only)."""

from __future__ import annotations

import hashlib
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from relais.tests.http_server import LocalHttpServer, respond

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
LAST_MODIFIED = "Tue, 20 Aug 2024 10:15:00 GMT"
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
}


class FeedServer(LocalHttpServer):
    """Serves ``path -> fixture file``; failures queued per path are answered first."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.failures: dict[str, deque[tuple[int, dict[str, str]]]] = {}
        self.requests: list[tuple[str, int, dict[str, str]]] = []  # path, status, headers
        super().__init__()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def fail(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        self.failures.setdefault(path, deque()).append((status, headers or {}))

    def statuses(self, path: str) -> list[int]:
        return [status for p, status, _headers in self.requests if p == path]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {key.lower(): value for key, value in handler.headers.items()}
        status, extra, body = self._answer(handler.path, headers)
        self.requests.append((handler.path, status, headers))
        respond(handler, status, body, extra)

    def _answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.failures.get(path):
            status, extra = self.failures[path].popleft()
            return status, extra, b"<html><body>try later</body></html>"
        if path not in self.files:
            return 404, {}, b"not found"
        name = self.files[path]
        body = (FIXTURES / name).read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if headers.get("if-none-match") == etag:
            return 304, validators, b""
        content_type = CONTENT_TYPES[Path(name).suffix]
        return 200, {**validators, "Content-Type": content_type}, body
