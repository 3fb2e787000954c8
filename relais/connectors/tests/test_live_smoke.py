"""Opt-in smoke tests against the REAL networks, read-only, through the connectors' public
interface (who the credentials act for, then one fetch of what is new).

Each test is skipped, with the variables it needs, unless its credentials are in the environment;
all are skipped when ``CI`` is set, so they never run in CI even where secrets exist. Nothing is
ever written to a network: every connector is given an HTTP client that refuses any method but
GET (the one exception: Bluesky's ``createSession``, the login an app password needs), and X's
cost meter refuses any paid write. How to run them: docs/connectors.md ("Live smoke tests").

    RELAIS_LIVE_X_BEARER_TOKEN=… RELAIS_LIVE_X_USER_ID=… \\
        .venv/bin/pytest -q relais/connectors/tests/test_live_smoke.py -rs
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from relais.connectors.base import AccountContext, FetchPage, InboundItem, PostKind
from relais.connectors.client import HttpClient
from relais.connectors.networks.bluesky import DEFAULT_SERVICE, BlueskyConnector
from relais.connectors.networks.facebook import (
    FacebookPageConnector,
    GraphHttpClient,
    InstagramConnector,
    graph_address,
)
from relais.connectors.networks.mastodon import MastodonConnector, MastodonHttpClient
from relais.connectors.networks.x import XConnector, XHttpClient, api_base

LOGINS = ("/xrpc/com.atproto.server.createSession",)


def credentials(*names: str) -> dict[str, str]:
    """The named variables, or a skip saying which are missing (and always in CI)."""
    if os.environ.get("CI"):
        pytest.skip("live smoke tests never run in CI")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.skip(f"live smoke test: set {', '.join(missing)} to run it")
    return {name: os.environ[name] for name in names}


def read_only(client: type[HttpClient]) -> type[HttpClient]:
    """The network's client, refusing anything but reads (and the logins listed)."""

    class ReadOnly(client):  # type: ignore[valid-type,misc]
        def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
            if method.upper() != "GET" and not str(url).endswith(LOGINS):
                raise AssertionError(f"a live smoke test never writes: {method} {url}")
            return super().request(method, url, **kwargs)

    return ReadOnly


class ReadsOnlyMeter:
    """X's cost meter for the smoke test: reads are counted, a paid write is refused."""

    def __init__(self) -> None:
        self.charged: dict[str, int] = {}

    def ensure_open(self) -> None:
        return None

    def reserve(self, operation: str, micros: int) -> None:
        raise AssertionError(f"a live smoke test never writes ({operation})")

    def record(self, charges: Mapping[str, int]) -> None:
        for operation, micros in charges.items():
            self.charged[operation] = self.charged.get(operation, 0) + micros

    def refund(self, operation: str, micros: int) -> None:
        raise AssertionError(f"nothing was reserved ({operation})")


def assert_items_have_the_shape_of_the_inbox(page: FetchPage) -> None:
    """What every connector promises the pipeline, whatever the network sent."""
    now = datetime.now(UTC) + timedelta(minutes=5)
    for item in page.items:
        assert isinstance(item, InboundItem)
        assert item.remote_id
        assert isinstance(item.kind, PostKind)
        assert item.author.remote_id
        assert item.author.handle
        assert isinstance(item.text, str)
        assert item.created_at.tzinfo is not None
        assert item.created_at <= now
        assert all(isinstance(v, int) for v in item.metrics.values())
    assert isinstance(page.cursor, dict)


def test_live_x_reads_the_mentions_timeline() -> None:
    """App-only bearer token (or a user token) and the user id whose mentions to read; costs a
    few reads of the X app's own pay-per-use balance (at most 5 posts and their authors)."""
    env = credentials("RELAIS_LIVE_X_BEARER_TOKEN", "RELAIS_LIVE_X_USER_ID")
    context = AccountContext(
        workspace_id=0,
        handle="live",
        settings={"direct_messages": False},
        credentials={
            "access_token": env["RELAIS_LIVE_X_BEARER_TOKEN"],
            "expires_at": int(time.time()) + 3600,  # an app token does not expire: no refresh
            "user_id": env["RELAIS_LIVE_X_USER_ID"],
        },
    )
    meter = ReadsOnlyMeter()
    connector = XConnector(context, http=read_only(XHttpClient)(base_url=api_base({})), meter=meter)

    # A default-shaped answer (X ignoring the requested fields) raises FieldsIgnoredError here.
    page = connector.fetch(None, limit=5)

    assert_items_have_the_shape_of_the_inbox(page)
    assert set(page.cursor) == {"mentions"}
    assert page.skipped == 0
    if page.items:
        assert page.cursor["mentions"]["since_id"].isdigit()
        assert meter.charged["posts_read"] > 0


def test_live_facebook_reads_the_page_and_its_instagram_account() -> None:
    """A Page access token and the Page's id (and the app secret if the app requires
    appsecret_proof): the Page, its feed and Messenger conversations, then its Instagram
    account's media and Direct conversations when one is linked."""
    env = credentials("RELAIS_LIVE_FACEBOOK_PAGE_TOKEN", "RELAIS_LIVE_FACEBOOK_PAGE_ID")
    secret = {"app_secret": os.environ.get("RELAIS_LIVE_FACEBOOK_APP_SECRET", "")}
    settings = {"page_id": env["RELAIS_LIVE_FACEBOOK_PAGE_ID"]}
    creds = {"page_access_token": env["RELAIS_LIVE_FACEBOOK_PAGE_TOKEN"], **secret}
    address = graph_address(settings)
    page_connector = FacebookPageConnector(
        AccountContext(workspace_id=0, handle="live", settings=settings, credentials=creds),
        http=read_only(GraphHttpClient)(base_url=address),
    )

    page = page_connector.page()
    fetched = page_connector.fetch(None, limit=20)

    assert page["id"] == env["RELAIS_LIVE_FACEBOOK_PAGE_ID"]
    assert page.get("category"), "a Page token answers with the Page's category"
    assert_items_have_the_shape_of_the_inbox(fetched)
    assert fetched.skipped == 0
    instagram = page.get("instagram_business_account")
    if not instagram:
        return
    ig_settings = {**settings, "ig_user_id": instagram["id"]}
    ig_connector = InstagramConnector(
        AccountContext(
            workspace_id=0,
            handle=str(instagram.get("username") or "live"),
            settings=ig_settings,
            credentials=creds,
        ),
        http=read_only(GraphHttpClient)(base_url=address),
    )
    quota = ig_connector.publishing_quota()
    ig_page = ig_connector.fetch(None, limit=20)

    assert 0 <= quota[0] <= quota[1]
    assert_items_have_the_shape_of_the_inbox(ig_page)
    assert ig_page.skipped == 0


def test_live_mastodon_reads_the_account_and_its_notifications() -> None:
    """An instance address and an access token with ``read`` scope."""
    env = credentials("RELAIS_LIVE_MASTODON_INSTANCE", "RELAIS_LIVE_MASTODON_TOKEN")
    instance = env["RELAIS_LIVE_MASTODON_INSTANCE"]
    context = AccountContext(
        workspace_id=0,
        handle="live",
        settings={"instance": instance},
        credentials={"instance": instance, "access_token": env["RELAIS_LIVE_MASTODON_TOKEN"]},
    )
    connector = MastodonConnector(context)
    connector.http = read_only(MastodonHttpClient)(base_url=connector.instance)

    me = connector.verify_credentials()
    page = connector.fetch(None, limit=20)

    assert me["id"]
    assert me["acct"]
    assert me["username"]
    assert_items_have_the_shape_of_the_inbox(page)
    assert page.skipped == 0


def test_live_bluesky_reads_the_session_and_what_is_new() -> None:
    """A handle and an app password (``RELAIS_LIVE_BLUESKY_SERVICE``: its PDS, default
    bsky.social). Logging in creates a session on the PDS; nothing else is written."""
    env = credentials("RELAIS_LIVE_BLUESKY_HANDLE", "RELAIS_LIVE_BLUESKY_APP_PASSWORD")
    service = os.environ.get("RELAIS_LIVE_BLUESKY_SERVICE") or DEFAULT_SERVICE
    context = AccountContext(
        workspace_id=0,
        handle=env["RELAIS_LIVE_BLUESKY_HANDLE"],
        settings={"service": service},
        credentials={"app_password": env["RELAIS_LIVE_BLUESKY_APP_PASSWORD"]},
    )
    connector = BlueskyConnector(context, http=read_only(HttpClient)(base_url=service))

    session = connector.create_session()
    connector.check_session()
    page = connector.fetch(None, limit=20, idle=2.0)

    assert session["did"].startswith("did:")
    assert session["handle"].lower() == env["RELAIS_LIVE_BLUESKY_HANDLE"].lower()
    assert_items_have_the_shape_of_the_inbox(page)
    assert not page.cursor or page.cursor["source"] in {"notifications", "firehose"}
