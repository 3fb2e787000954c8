"""The HTTP choke point against a real local HTTP server answering 429, 5xx, 401 and timeouts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from pytest_django.fixtures import Settings

from relais.connectors.base import (
    ConnectorError,
    CredentialsExpiredError,
    RateLimitedError,
    TransientNetworkError,
)
from relais.connectors.client import HttpClient, parse_retry_after
from relais.connectors.netguard import UnsafeDestinationError, check_destination
from relais.tests.http_server import LocalHttpServer, respond

Scripted = tuple[int, dict[str, str], bytes]


class ScriptedServer(LocalHttpServer):
    """Answers each path with the next response of its script; the last one repeats."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Scripted]] = {}
        self.hits: dict[str, int] = {}
        self.release_slow = threading.Event()
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        self.hits[handler.path] = self.hits.get(handler.path, 0) + 1
        if handler.path == "/slow":
            self.release_slow.wait(5)
        script = self.scripts.get(handler.path) or [(200, {}, b"ok")]
        status, headers, body = script.pop(0) if len(script) > 1 else script[0]
        respond(handler, status, body, headers)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.release_slow.set()
    server.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server: ScriptedServer, sleeps: list[float]) -> Iterator[HttpClient]:
    client = HttpClient(base_url=server.base_url, sleep=sleeps.append, backoff_base=0.01)
    yield client
    client.close()


def test_a_429_is_retried_after_the_delay_the_server_asked_for(
    server: ScriptedServer, client: HttpClient, sleeps: list[float]
) -> None:
    server.scripts["/mentions"] = [(429, {"Retry-After": "7"}, b""), (200, {}, b"[]")]

    response = client.request("GET", "/mentions")

    assert response.status_code == 200
    assert sleeps == [7.0]
    assert server.hits["/mentions"] == 2


def test_server_errors_are_retried_with_growing_jittered_backoff(
    server: ScriptedServer, client: HttpClient, sleeps: list[float]
) -> None:
    server.scripts["/flaky"] = [(500, {}, b""), (503, {}, b""), (502, {}, b""), (200, {}, b"ok")]

    assert client.request("GET", "/flaky").text == "ok"

    assert server.hits["/flaky"] == 4
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps, start=1):
        assert 0 <= wait <= 0.01 * 2 ** (attempt - 1)


def test_persistent_server_errors_give_up_with_a_transient_error(
    server: ScriptedServer, client: HttpClient
) -> None:
    server.scripts["/down"] = [(500, {}, b"")]

    with pytest.raises(TransientNetworkError, match="answered 500"):
        client.request("GET", "/down")

    assert server.hits["/down"] == client.max_attempts


def test_a_rate_limit_longer_than_a_task_should_wait_is_raised_at_once(
    server: ScriptedServer, client: HttpClient, sleeps: list[float]
) -> None:
    server.scripts["/limited"] = [(429, {"Retry-After": "3600"}, b"")]

    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "/limited")

    assert caught.value.retry_after == 3600.0
    assert sleeps == []
    assert server.hits["/limited"] == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retried(
    server: ScriptedServer, client: HttpClient, status: int
) -> None:
    server.scripts["/me"] = [(status, {}, b"")]

    with pytest.raises(CredentialsExpiredError):
        client.request("GET", "/me")

    assert server.hits["/me"] == 1


def test_other_client_errors_are_plain_connector_errors(
    server: ScriptedServer, client: HttpClient
) -> None:
    server.scripts["/gone"] = [(404, {}, b"")]

    with pytest.raises(ConnectorError) as caught:
        client.request("GET", "/gone")

    assert not caught.value.retryable
    assert server.hits["/gone"] == 1


def test_a_server_that_does_not_answer_in_time_is_a_transient_error(
    server: ScriptedServer, sleeps: list[float]
) -> None:
    client = HttpClient(
        base_url=server.base_url,
        sleep=sleeps.append,
        timeout=httpx.Timeout(0.2),
        max_attempts=2,
    )
    with pytest.raises(TransientNetworkError, match="timed out"):
        client.request("GET", "/slow")
    client.close()

    assert len(sleeps) == 1


def test_a_closed_port_is_a_transient_error(sleeps: list[float]) -> None:
    probe = ScriptedServer()
    closed_url = probe.base_url
    probe.close()
    client = HttpClient(base_url=closed_url, sleep=sleeps.append, max_attempts=2)

    with pytest.raises(TransientNetworkError, match="failed"):
        client.request("GET", "/")
    client.close()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 26 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 26 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# The guard against workspace-typed URLs reaching private addresses (connectors/netguard.py).


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_local_destinations_are_refused_when_saved(url: str) -> None:
    with pytest.raises(UnsafeDestinationError, match="is a private address"):
        check_destination(url)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "http:///nohost"])
def test_only_http_addresses_are_accepted(url: str) -> None:
    with pytest.raises(UnsafeDestinationError, match="http"):
        check_destination(url)


def test_a_public_address_is_accepted() -> None:
    check_destination("https://93.184.215.14/hook")  # an address literal: no DNS lookup


def test_a_public_only_client_never_connects_to_a_private_address(
    server: ScriptedServer,
) -> None:
    """The check happens at connect time, on the address resolved then (DNS rebinding)."""
    client = HttpClient(public_only=True, max_attempts=1)
    with pytest.raises(UnsafeDestinationError):
        client.request("POST", f"{server.base_url}/hook", content=b"{}")
    port = server.httpd.server_address[1]
    with pytest.raises(UnsafeDestinationError):
        client.request("POST", f"http://localhost:{port}/hook", content=b"{}")
    client.close()
    assert server.hits == {}


def test_deployments_may_allow_private_receivers(
    server: ScriptedServer, settings: Settings
) -> None:
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    check_destination(f"{server.base_url}/hook")
    client = HttpClient(public_only=True, max_attempts=1)
    assert client.request("GET", f"{server.base_url}/hook").text == "ok"
    client.close()
    assert server.hits == {"/hook": 1}
