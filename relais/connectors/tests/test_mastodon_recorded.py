"""The Mastodon connector against responses recorded from a real Mastodon server.

The bodies (fixtures/mastodon/recorded, see its SOURCES.md) were recorded by Mastodon.py's own
test suite from a Mastodon development server; the local contract server sends them byte for
byte (the recorded server's address replaced by its own), with the recorded status codes and
``Link`` headers, and checks every request the connector makes against the documented methods
(the checks of test_mastodon.py). What the connector makes of a real server's answers is
asserted here: ids, texts, authors, quotes, pagination cursors, errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relais.connectors.base import AccountContext, ConnectorError, OutboundPost, PostKind
from relais.connectors.networks.mastodon import (
    MastodonConnector,
    MastodonHttpClient,
    authorize_url,
    exchange_code,
    register_app,
)
from relais.connectors.tests.contract_server import ContractServer, Request
from relais.connectors.tests.test_mastodon import endpoints, fields

RECORDED = Path(__file__).parent / "fixtures" / "mastodon" / "recorded"
INDEX = json.loads((RECORDED / "index.json").read_text())["responses"]
RECORDED_SERVER = "http://localhost:3000"
DOMAIN = "localhost"  # the recorded server's accounts are local: admin, mastodonpy_test
TOKEN = json.loads((RECORDED / "oauth_token.json").read_text())["access_token"]
STATUS = "117020583223442465"  # status.json, status_deleted.json
QUOTING = "117020582925004921"  # status_quoting.json
BOOSTED = "117020585505579935"  # reblogged_by.json
MEDIA = "117020619601888181"  # media_processing.json


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


class RecordedServer(ContractServer):
    """Answers the connector's requests with the recorded responses."""

    def __init__(self) -> None:
        self.refuse_next_status = False
        super().__init__(endpoints(lambda: TOKEN), self._route)

    def answer(self, name: str) -> tuple[int, dict[str, str], bytes]:
        """A recorded response: its status, its ``Link``, its body as recorded."""
        meta = INDEX[name]
        here = self.url.encode()
        body = (RECORDED / name).read_bytes().replace(RECORDED_SERVER.encode(), here)
        headers = {}
        if "link" in meta:
            headers["Link"] = meta["link"].replace(RECORDED_SERVER, self.url)
        return meta["status"], headers, body

    def _route(self, request: Request) -> tuple[int, dict[str, str], Any]:
        path = request.path
        fixed = {
            "/api/v1/apps": "apps.json",
            "/.well-known/oauth-authorization-server": "oauth_authorization_server.json",
            "/oauth/token": "oauth_token.json",
            "/api/v1/accounts/verify_credentials": "verify_credentials.json",
            "/api/v2/media": "media_processing.json",
            f"/api/v1/statuses/{BOOSTED}/reblogged_by": "reblogged_by.json",
        }
        if path in fixed:
            return self.answer(fixed[path])
        if path in {"/api/v1/notifications", "/api/v1/timelines/tag/hoot"}:
            # One recorded page; past its newest entry Mastodon answers an empty page, no Link.
            if request.param("min_id"):
                return 200, {}, b"[]"
            return self.answer("notifications.json" if "notif" in path else "tag_timeline.json")
        if path == "/api/v1/statuses":
            return self._create(request)
        known = {
            ("DELETE", STATUS): "status_deleted.json",
            ("GET", STATUS): "status.json",
            ("GET", QUOTING): "status_quoting.json",
        }
        return self.answer(known.get((request.method, path.rsplit("/", 1)[1]), "error_404.json"))

    def _create(self, request: Request) -> tuple[int, dict[str, str], Any]:
        if self.refuse_next_status:
            self.refuse_next_status = False
            return self.answer("error_422.json")
        body = fields(request)
        if body.get("media_ids"):
            return self.answer("status_with_media.json")
        direct = body.get("visibility") == "direct"
        return self.answer("status_post_direct.json" if direct else "status_post_public.json")


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    contract = RecordedServer()
    yield contract
    contract.close()
    assert contract.violations == []


def connector(server: RecordedServer, **settings: Any) -> MastodonConnector:
    account = AccountContext(
        workspace_id=1,
        handle=f"mastodonpy_test@{DOMAIN}",
        settings={"instance": server.url, "domain": DOMAIN, **settings},
        credentials={"instance": server.url, "access_token": TOKEN},
    )
    return MastodonConnector(account, http=MastodonHttpClient(base_url=server.url))


def test_the_recorded_bodies_are_the_recorded_ones() -> None:
    """The fixtures are what the cassettes hold: JSON, with the recorded request named."""
    assert {p.name for p in RECORDED.glob("*.json")} - {"index.json"} == set(INDEX)
    for name, meta in INDEX.items():
        assert json.loads((RECORDED / name).read_text()) is not None
        assert meta["cassette"].startswith("tests/cassettes/test_")
        assert meta["uri"].startswith(RECORDED_SERVER)


def test_connecting_registers_discovers_the_token_endpoint_and_exchanges_the_code(
    server: RecordedServer,
) -> None:
    app = register_app(server.url, client_name="Relais", redirect_uri="https://relais.example/cb")
    approval = httpx.URL(authorize_url(app, state="s-1"))
    credentials = exchange_code(app, "recorded-code")
    me = MastodonConnector(
        AccountContext(workspace_id=1, handle="", credentials=credentials)
    ).verify_credentials()

    assert app.client_id == recorded("apps.json")["client_id"]
    assert app.client_secret == recorded("apps.json")["client_secret"]
    assert approval.params["client_id"] == app.client_id
    assert credentials["access_token"] == TOKEN
    assert credentials["scope"] == "read write follow push"  # as granted
    # The server's OAuth metadata named its token endpoint; the code went there.
    assert [r.path for r in server.requests] == [
        "/api/v1/apps",
        "/.well-known/oauth-authorization-server",
        "/oauth/token",
        "/api/v1/accounts/verify_credentials",
    ]
    form = fields(server.served("/oauth/token")[0])
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "recorded-code"
    assert form["client_secret"] == app.client_secret
    assert form["redirect_uri"] == "https://relais.example/cb"
    # Mastodon.py 2.3.3's log_in also sends the metadata's keys as "oauth_info" (its local
    # variable swept into the form); servers ignore an unknown parameter. Seen here first.
    assert set(form) - {"grant_type", "code", "client_id", "client_secret", "redirect_uri"} == {
        "scope",
        "oauth_info",
    }
    assert (me["acct"], me["id"]) == ("mastodonpy_test", "117020457910412882")


def test_a_recorded_mention_becomes_an_inbound_post_and_the_cursor_follows_the_link(
    server: RecordedServer,
) -> None:
    page = connector(server).fetch(None)

    [mention] = page.items
    assert mention.remote_id == "117020576916218297"
    assert mention.kind == PostKind.POST
    assert mention.text == "@mastodonpy_test hello!"
    assert mention.author.handle == f"admin@{DOMAIN}"
    assert mention.mentions == (f"mastodonpy_test@{DOMAIN}",)
    assert mention.created_at.isoformat() == "2026-08-01T13:51:39.138000+00:00"
    assert mention.lang == "en"
    assert mention.metrics == {"likes": 0, "reposts": 0, "replies": 0}
    assert mention.raw["notification"] == {"id": "20", "type": "mention"}
    assert mention.raw["url"] == f"{server.url}/@admin/117020576916218297"
    json.dumps(mention.raw)  # stored as JSON: no datetime or library object in it
    assert page.cursor == {"min_id": "20"}  # from the recorded Link header's rel="prev"

    later = connector(server).fetch(json.loads(json.dumps(page.cursor)))
    assert later.items == []
    assert later.cursor == {"min_id": "20"}
    assert server.served("/api/v1/notifications")[-1].params()["min_id"] == ["20"]


def test_a_recorded_hashtag_timeline_is_read_for_listening(server: RecordedServer) -> None:
    page = connector(server, hashtags=["hoot"]).fetch(None)

    [status] = [item for item in page.items if item.raw.get("notification") is None]
    assert status.remote_id == "117020593741189701"
    assert status.text == "#hoot (hashtag toot)"
    assert page.cursor["tags"] == {"hoot": "117020593741189701"}
    # Mastodon.py's instance check before a tag timeline is not made: one request per tag.
    assert [r.path for r in server.requests if "notifications" not in r.path] == [
        "/api/v1/timelines/tag/hoot"
    ]


def test_a_recorded_mastodon_quote_names_the_quoted_status(server: RecordedServer) -> None:
    brand = connector(server)
    item = brand.status_item(brand.get_status(QUOTING))

    assert item.kind == PostKind.QUOTE
    assert item.raw["quoted"] == "117020582917124092"
    assert item.text == "yoooooooo"  # the "RE: <link>" fallback for other clients left out


def test_boosters_of_a_recorded_page_without_a_next_link(server: RecordedServer) -> None:
    assert connector(server).boosters(BOOSTED) == {f"mastodonpy_test_2@{DOMAIN}"}
    assert len(server.served(f"/api/v1/statuses/{BOOSTED}/reblogged_by")) == 1


def test_publishing_with_media_replying_directly_metrics_and_delete(
    server: RecordedServer,
) -> None:
    brand = connector(server)

    media_id = brand.upload_media(b"GIF89a", filename="clip.gif", content_type="image/gif")
    with_media = brand.publish(
        OutboundPost(text="LOL check this out"), idempotency_key="m-1", media_ids=[media_id]
    )
    direct = brand.send_private_message(
        OutboundPost(text="Toot!", recipient="admin"), idempotency_key="dm-1"
    )
    metrics = brand.metrics(STATUS)
    brand.delete(STATUS)

    assert media_id == MEDIA  # still processing (202): its id is usable once it is done
    assert with_media.remote_id == "117020620300441304"
    assert with_media.created_at.year == 2026
    assert direct.remote_id == "117020585877056474"
    assert direct.url == f"{server.url}/@mastodonpy_test/117020585877056474"
    sent = [fields(r) for r in server.served("/api/v1/statuses")]
    assert sent[0]["media_ids"] == [MEDIA]
    assert sent[1] == {
        "status": f"@admin@{DOMAIN} Toot!",
        "visibility": "direct",
        "sensitive": "0",
    }
    assert [r.headers["idempotency-key"] for r in server.served("/api/v1/statuses")] == [
        "m-1",
        "dm-1",
    ]
    assert metrics == {"likes": 0, "reposts": 0, "replies": 0}
    assert server.served(f"/api/v1/statuses/{STATUS}")[-1].method == "DELETE"


def test_recorded_refusals_are_clear_connector_errors(server: RecordedServer) -> None:
    brand = connector(server)
    server.refuse_next_status = True

    with pytest.raises(ConnectorError, match="the server refused it: メディア") as refused:
        brand.publish(OutboundPost(text="again"), idempotency_key="r-1")
    with pytest.raises(ConnectorError, match="answered 404: Record not found") as missing:
        brand.metrics("1")

    assert (refused.value.status_code, missing.value.status_code) == (422, 404)
    assert len(server.served("/api/v1/statuses")) == 1  # a refusal is not retried
