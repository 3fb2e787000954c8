"""A real local HTTP server standing in for a workspace's alert receiver (tests only)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from relais.tests.http_server import LocalHttpServer, read_body, respond


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(LocalHttpServer):
    """Records every request; answers 200 unless statuses were queued with `answer`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: deque[int] = deque()
        super().__init__()

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"

    def answer(self, *statuses: int) -> None:
        self._answers.extend(statuses)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {key.lower(): value for key, value in handler.headers.items()}
        self.received.append(Received(handler.path, headers, read_body(handler)))
        respond(handler, self._answers.popleft() if self._answers else 200)
