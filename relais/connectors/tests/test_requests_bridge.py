"""The requests adapter that sends a library's requests through HttpClient, over real HTTP."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from relais.connectors.base import (
    ConnectorError,
    CredentialsExpiredError,
    RateLimitedError,
    TransientNetworkError,
)
from relais.connectors.client import HttpClient
from relais.connectors.netguard import UnsafeDestinationError
from relais.connectors.requests_bridge import bridged_session
from relais.tests.http_server import LocalHttpServer, read_body, respond


class Recorder(LocalHttpServer):
    """Answers with what it is told, in order (else 200 {"ok": true}); keeps what it received."""

    def __init__(self) -> None:
        self.answers: deque[tuple[int, dict[str, str], bytes]] = deque()
        self.received: list[dict[str, Any]] = []
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        self.received.append(
            {
                "method": handler.command,
                "path": handler.path,
                "headers": {k.lower(): v for k, v in handler.headers.items()},
                "body": read_body(handler),
            }
        )
        status, headers, body = (
            self.answers.popleft() if self.answers else (200, {}, b'{"ok": true}')
        )
        respond(handler, status, body, {"Content-Type": "application/json", **headers})


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def session_for(server: Recorder, sleeps: list[float]) -> Any:
    http = HttpClient(headers={"X-Client": "relais"}, sleep=sleeps.append, backoff_base=0.01)
    return bridged_session(http)


def test_a_request_goes_through_the_client_and_comes_back_as_a_requests_response(
    server: Recorder,
) -> None:
    link = f'<{server.base_url}/items?max_id=7>; rel="next"'
    server.answers.append((200, {"Link": link}, b'[{"id": "7", "text": "caf\xc3\xa9"}]'))
    session, adapter = session_for(server, [])

    response = session.post(
        f"{server.base_url}/items?limit=2",
        data={"status": "hé", "media_ids[]": ["1", "2"]},
        headers={"Idempotency-Key": "k-1"},
    )

    assert response.status_code == 200
    assert response.json() == [{"id": "7", "text": "café"}]
    assert response.links["next"]["url"].endswith("max_id=7")
    assert response.headers["content-type"] == "application/json"
    [sent] = server.received
    assert (sent["method"], sent["path"]) == ("POST", "/items?limit=2")
    assert sent["body"] == b"status=h%C3%A9&media_ids%5B%5D=1&media_ids%5B%5D=2"
    assert sent["headers"]["idempotency-key"] == "k-1"
    assert sent["headers"]["x-client"] == "relais"  # the client's own headers apply
    assert sent["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert adapter.last_answer().content == response.content
    assert adapter.failure() is None


def test_a_multipart_upload_arrives_byte_for_byte(server: Recorder) -> None:
    session, _adapter = session_for(server, [])
    image = bytes(range(256))

    session.post(
        f"{server.base_url}/media",
        files={"file": ("a.png", image, "image/png")},
        data={"description": "all bytes"},
    )

    [sent] = server.received
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert image in sent["body"]
    assert b'name="description"\r\n\r\nall bytes' in sent["body"]


def test_5xx_and_429_are_retried_by_the_client_not_the_library(server: Recorder) -> None:
    server.answers.extend([(503, {}, b"{}"), (429, {"Retry-After": "2"}, b"{}")])
    sleeps: list[float] = []
    session, _adapter = session_for(server, sleeps)

    response = session.get(f"{server.base_url}/notifications")

    assert response.status_code == 200
    assert len(server.received) == 3
    assert sleeps[1] == 2.0  # Retry-After honoured


def test_an_error_answer_reaches_the_library_and_its_connector_error_is_kept(
    server: Recorder,
) -> None:
    server.answers.append((401, {}, json.dumps({"error": "The access token is invalid"}).encode()))
    session, adapter = session_for(server, [])

    response = session.get(f"{server.base_url}/api/v1/accounts/verify_credentials")

    assert response.status_code == 401
    assert response.json() == {"error": "The access token is invalid"}
    assert isinstance(adapter.failure(), CredentialsExpiredError)
    assert adapter.connector_error(RuntimeError("the library's own")) is adapter.failure()
    assert len(server.received) == 1  # a refusal is not retried
    session.get(f"{server.base_url}/again")
    assert adapter.failure() is None  # each request starts clean


def test_a_429_that_lasts_is_kept_with_its_wait(server: Recorder) -> None:
    server.answers.append((429, {"Retry-After": "600"}, b'{"error": "Too many requests"}'))
    session, adapter = session_for(server, [])

    assert session.get(f"{server.base_url}/x").status_code == 429
    failure = adapter.failure()
    assert isinstance(failure, RateLimitedError)
    assert failure.retry_after == 600.0


def test_no_answer_raises_the_connector_error_through_the_library(server: Recorder) -> None:
    address = server.base_url
    server.close()  # nothing listens there any more
    sleeps: list[float] = []
    session, adapter = session_for(server, sleeps)

    with pytest.raises(TransientNetworkError) as caught:
        session.get(f"{address}/x")

    # A library wraps whatever the session raised; the connector error is found behind it.
    wrapped = ValueError("could not complete request")
    wrapped.__context__ = caught.value
    assert adapter.connector_error(wrapped) is caught.value
    assert len(sleeps) == 3  # the client's retries
    assert isinstance(adapter.connector_error(ValueError("x")), ConnectorError)


def test_the_network_guard_still_applies(server: Recorder, settings: Any) -> None:
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": False}
    session, _adapter = bridged_session(HttpClient(public_only=True))

    with pytest.raises(UnsafeDestinationError):
        session.get(f"{server.base_url}/x")
    assert server.received == []


def test_only_http_and_https_are_mounted(server: Recorder) -> None:
    session, _adapter = session_for(server, [])
    with pytest.raises(requests.exceptions.InvalidSchema):
        session.get("file:///etc/passwd")
