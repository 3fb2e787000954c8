"""A real local HTTP server playing a CRM that receives Relais' webhooks (tests only).

It checks each body's signature with the secret it is given, records the events it accepted, and
can be told to fail (answer with a status) or to hold a request without answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any

from relais.connectors.webhooks_out import SIGNATURE_HEADER
from relais.tests.http_server import LocalHttpServer, read_body, respond


class CrmReceiver(LocalHttpServer):
    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.accepted: list[dict[str, Any]] = []  # events answered 200, in arrival order
        self.attempts: list[str] = []  # every event id that arrived, whatever the answer
        self.bad_signatures = 0
        self.failures: deque[int] = deque()  # statuses to answer next, before 200 again
        self.hold_on: str | None = None  # an event type whose request is held unanswered
        self.holding = threading.Event()
        self.release = threading.Event()
        super().__init__()

    @property
    def url(self) -> str:
        return f"{self.base_url}/relais"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = read_body(handler)
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(handler.headers.get(SIGNATURE_HEADER, ""), expected):
            self.bad_signatures += 1
            respond(handler, 401)
            return
        event = json.loads(body)
        self.attempts.append(event["id"])
        if self.hold_on == event["type"]:
            self.hold_on = None
            self.holding.set()
            self.release.wait(120)  # the sender is killed meanwhile: nobody reads the answer
            return
        status = self.failures.popleft() if self.failures else 200
        if status == 200:
            self.accepted.append(event)
        respond(handler, status)

    def types(self) -> list[str]:
        return [event["type"] for event in self.accepted]

    def close(self) -> None:
        self.release.set()
        super().close()
