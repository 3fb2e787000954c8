"""The Mastodon streaming reader against the contract server, extended with the streaming API.

The server streams server-sent events over real HTTP the way Mastodon documents them
(`/api/v1/streaming/health`, `/api/v1/streaming/user/notification`: `event:` and `data:` lines,
heartbeat comments); the reader runs in its own thread against the test database.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from relais.accounts.models import Workspace
from relais.connectors.credentials import encrypt_credentials
from relais.connectors.mastodon_stream import consume_mastodon_account
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.mastodon import server_sent_events
from relais.connectors.tests.test_mastodon import BRAND, DOMAIN, TOKEN, MastodonServer, fixture
from relais.pipeline.models import Post
from relais.tests.http_server import respond

pytestmark = pytest.mark.django_db(transaction=True)

END_OF_STREAM = ("", "")


class StreamingServer(MastodonServer):
    """The contract server, also serving the streaming API's health check and notifications."""

    def __init__(self, notifications: list[dict[str, Any]], statuses: dict[str, Any]) -> None:
        self.offers_streaming = True
        self.stream_token = TOKEN
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.streams_opened = 0
        self.closing = threading.Event()
        super().__init__(notifications, statuses)

    def close(self) -> None:
        self.closing.set()
        super().close()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path == "/api/v1/streaming/health":
            status = 200 if self.offers_streaming else 404
            respond(handler, status, b"OK", {"Content-Type": "text/plain"})
        elif path == "/api/v1/streaming/user/notification":
            self._stream(handler)
        else:
            super().handle(handler)

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.stream_token}":
            body = json.dumps({"error": "Error: Invalid access token"}).encode()
            respond(handler, 401, body, {"Content-Type": "application/json"})
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        handler.wfile.write(b":)\n")
        handler.wfile.flush()
        self.streams_opened += 1
        while not self.closing.is_set():
            try:
                event, data = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if (event, data) == END_OF_STREAM:
                return
            handler.wfile.write(f"event: {event}\ndata: {data}\n\n".encode())
            handler.wfile.flush()


@pytest.fixture
def server() -> Iterator[StreamingServer]:
    known = {s["id"]: s for s in fixture("statuses.json").values()}
    contract = StreamingServer(list(fixture("notifications.json")["notifications"]), known)
    yield contract
    contract.close()
    assert contract.violations == []


@pytest.fixture
def account(workspace: Workspace, server: StreamingServer) -> ConnectedAccount:
    return ConnectedAccount.objects.create(
        workspace=workspace,
        network="mastodon",
        handle=BRAND,
        settings={"instance": server.url, "domain": DOMAIN},
        credentials=encrypt_credentials({"instance": server.url, "access_token": TOKEN}),
    )


class Reader:
    """The reader in its own thread. The in-memory test database cannot be read by the test
    while another thread writes, so tests watch the server, stop the reader, then look."""

    def __init__(self, account: ConnectedAccount) -> None:
        self.account = account
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=consume_mastodon_account,
            args=(account.pk, self.stop),
            kwargs={"ready": self.ready},
            daemon=True,
        )

    def start(self) -> Reader:
        self.thread.start()
        self.ready.wait(10)
        return self

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


@pytest.fixture
def reader(account: ConnectedAccount) -> Iterator[Reader]:
    reader = Reader(account)
    yield reader
    reader.stop.set()
    reader.thread.join(15)


def new_mention(notification_id: str, status_id: str, text: str) -> dict[str, Any]:
    mention = copy.deepcopy(
        next(n for n in fixture("notifications.json")["notifications"] if n["type"] == "mention")
    )
    mention["id"] = notification_id
    mention["status"].update(id=status_id, in_reply_to_id=None, content=f"<p>{text}</p>")
    return mention


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for another thread's work; a generous bound, not a measure of speed."""
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def served(server: StreamingServer, notification_id: str) -> Callable[[], bool]:
    return lambda: notification_id in server.served_notifications


def test_server_sent_events_are_read_with_heartbeats_and_multiline_data() -> None:
    lines = [":thump", "event: update", 'data: {"id":', 'data: "1"}', "", "", ":)", "data: x", ""]
    assert list(server_sent_events(lines)) == [("update", '{"id":\n"1"}'), ("message", "x")]


def test_a_streamed_notification_is_read_at_once_and_only_once(
    server: StreamingServer, reader: Reader
) -> None:
    reader.start()
    eventually(served(server, "34976410"), "the first read fills the gap since the cursor")
    eventually(lambda: server.streams_opened == 1, "the notification stream is open")
    reads_before = len(server.served("/api/v1/notifications"))

    mention = new_mention("34977000", "103187000000000001", "@trwnh where is my parcel?")
    server.notifications.append(mention)
    server.events.put(("notification", json.dumps(mention)))
    server.events.put(("notification", json.dumps(mention)))  # servers may repeat themselves
    eventually(served(server, "34977000"), "the streamed mention is read")
    reader.finish()

    assert Post.objects.get(remote_id="103186090000000001")  # from the first read
    post = Post.objects.get(remote_id="103187000000000001")
    assert post.text == "@trwnh where is my parcel?"
    assert server.served_notifications.count("34977000") == 1
    assert reads_before < len(server.served("/api/v1/notifications")) <= reads_before + 2


def test_what_arrives_while_the_stream_is_down_is_read_when_it_ends(
    server: StreamingServer, reader: Reader
) -> None:
    reader.start()
    eventually(lambda: server.streams_opened == 1, "the notification stream is open")
    mention = new_mention("34977100", "103187000000000002", "@trwnh still no refund")
    server.notifications.append(mention)  # announced by no event at all
    server.events.put(END_OF_STREAM)

    eventually(served(server, "34977100"), "the unannounced mention is read")
    eventually(lambda: server.streams_opened == 2, "the reader reconnects")
    reader.finish()
    assert Post.objects.filter(remote_id="103187000000000002").count() == 1


def test_a_stream_that_refuses_the_token_marks_the_account(
    server: StreamingServer, account: ConnectedAccount, reader: Reader
) -> None:
    server.stream_token = "revoked"
    reader.start()
    reader.thread.join(15)

    assert not reader.thread.is_alive()  # it stopped by itself
    account.refresh_from_db()
    assert account.status == AccountStatus.RECONNECT_NEEDED


def test_a_server_without_streaming_is_left_to_the_poll(
    server: StreamingServer, reader: Reader
) -> None:
    server.offers_streaming = False
    reader.start()
    reader.thread.join(15)

    assert not reader.thread.is_alive()
    assert server.served("/api/v1/notifications") == []
