"""Contract tests of the Mastodon connector.

No Mastodon-compatible server can run here, so the connector talks over real HTTP to a local
server that answers with the documented entity payloads (fixtures/mastodon, written from the
Mastodon API documentation's examples), paginates notifications with the documented semantics
(``min_id``/``since_id``/``max_id``/``limit``, ``types[]``, ``Link`` headers), and checks every
request against the documented methods: verb, path, authorization, parameters, body fields and
their values, and the ``Idempotency-Key`` header. Any request outside the contract fails the test.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from django.urls import reverse

from relais.accounts.models import User, Workspace
from relais.connectors.actions import do_mark_reconnect_needed
from relais.connectors.base import (
    AccountContext,
    ConnectorError,
    CredentialsExpiredError,
    OutboundPost,
    PostKind,
    RateLimitedError,
)
from relais.connectors.credentials import encrypt_credentials
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.mastodon import (
    MastodonConnector,
    MastodonHttpClient,
    authorize_url,
    configured_api_version,
    exchange_code,
    html_to_text,
    mastodon_length,
    normalize_instance,
    quoted_status_id,
    register_app,
    seconds_until_reset,
)
from relais.connectors.tests.contract_server import ContractServer, Endpoint, Request, no_body
from relais.core import clock
from relais.inbox.actions import do_send_reply
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post
from relais.publishing.actions import do_create_draft
from relais.publishing.inbound import do_check_boosts, targets_with_standing_boosts
from relais.publishing.models import Forward, Target
from relais.publishing.tests.test_inbound import published

FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"
TOKEN = "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"
DOMAIN = "mastodon.social"
BRAND = f"trwnh@{DOMAIN}"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# -- the documented contract --------------------------------------------------------------------

NOTIFICATION_TYPES = {
    "mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
    "admin.sign_up", "admin.report", "severed_relationships", "moderation_warning", "quote",
    "quoted_update",
}  # fmt: skip
STATUS_FIELDS = {
    "status", "media_ids", "poll", "in_reply_to_id", "quoted_status_id", "sensitive",
    "spoiler_text", "visibility", "language", "scheduled_at",
}  # fmt: skip
VISIBILITIES = {"public", "unlisted", "private", "direct"}
STATUS_ID = r"[0-9A-Za-z]+"


def fields(request: Request) -> dict[str, Any]:
    """A body's fields, JSON or form-encoded: Mastodon takes both, Mastodon.py sends forms.

    In a form, ``media_ids[]`` (repeated) is the list ``media_ids``, as Rails reads it.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = request.json()
        return body if isinstance(body, dict) else {}
    found: dict[str, Any] = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        for key, value in parse_qsl(request.body.decode(), keep_blank_values=True):
            if key.endswith("[]"):
                found.setdefault(key[:-2], []).append(value)
            else:
                found[key] = value
    return found


def check_notifications_query(request: Request) -> list[str]:
    allowed = {"max_id", "since_id", "min_id", "limit", "types[]", "exclude_types[]", "account_id"}
    params = request.params()
    problems = [f"unknown parameter {key}" for key in params if key not in allowed]
    for key in ("max_id", "since_id", "min_id", "limit", "account_id"):
        if len(params.get(key, [])) > 1:
            problems.append(f"{key} given twice")
    limit = params.get("limit", ["40"])[0]
    if not (limit.isdigit() and 1 <= int(limit) <= 80):
        problems.append(f"limit {limit} outside 1..80")
    for key in ("types[]", "exclude_types[]"):
        problems += [
            f"unknown type {t}" for t in params.get(key, []) if t not in NOTIFICATION_TYPES
        ]
    return problems


def check_page_query(request: Request) -> list[str]:
    params = request.params()
    allowed = {"max_id", "since_id", "min_id", "limit"}
    problems = [f"unknown parameter {key}" for key in params if key not in allowed]
    limit = params.get("limit", ["40"])[0]
    if not (limit.isdigit() and 1 <= int(limit) <= 80):
        problems.append(f"limit {limit} outside 1..80")
    return problems


def check_tag_query(request: Request) -> list[str]:
    allowed = {"any[]", "all[]", "none[]", "local", "remote", "only_media"}
    allowed |= {"max_id", "since_id", "min_id", "limit"}
    params = request.params()
    problems = [f"unknown parameter {key}" for key in params if key not in allowed]
    limit = params.get("limit", ["20"])[0]
    if not (limit.isdigit() and 1 <= int(limit) <= 40):
        problems.append(f"limit {limit} outside 1..40")
    return problems


def check_status_body(request: Request) -> list[str]:
    problems = []
    if not request.headers.get("idempotency-key"):
        problems.append("a status is created without an Idempotency-Key header")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/json", "application/x-www-form-urlencoded")):
        return [*problems, "the status body is neither JSON nor a form"]
    body = fields(request)
    problems += [f"unknown field {key}" for key in body if key not in STATUS_FIELDS]
    if not (isinstance(body.get("status"), str) and body["status"].strip()) and not body.get(
        "media_ids"
    ):
        problems.append("status text is required when no media_ids are given")
    if "visibility" in body and body["visibility"] not in VISIBILITIES:
        problems.append(f"visibility {body['visibility']!r} is not one of {sorted(VISIBILITIES)}")
    if "in_reply_to_id" in body and not isinstance(body["in_reply_to_id"], str):
        problems.append("in_reply_to_id must be a string id")
    if "media_ids" in body and not all(isinstance(i, str) for i in body["media_ids"]):
        problems.append("media_ids must be string ids")
    if body.get("visibility") == "direct" and "@" not in body.get("status", ""):
        problems.append("a direct status that mentions nobody reaches nobody")
    return problems


def check_app_body(request: Request) -> list[str]:
    body = fields(request)
    problems = [
        f"{key} is required" for key in ("client_name", "redirect_uris") if not body.get(key)
    ]
    allowed = {"client_name", "redirect_uris", "scopes", "website"}
    problems += [f"unknown field {key}" for key in body if key not in allowed]
    return problems


def check_token_form(request: Request) -> list[str]:
    form = request.form()
    required = ("grant_type", "code", "client_id", "client_secret", "redirect_uri")
    problems = [f"{key} is required" for key in required if not form.get(key)]
    if form.get("grant_type") != "authorization_code":
        problems.append(f"grant_type {form.get('grant_type')!r}")
    return problems


def check_media_form(request: Request) -> list[str]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return ["media is not sent as multipart/form-data"]
    parts = request.multipart()
    problems = [] if parts.get("file") else ["the file part is missing"]
    allowed = {"file", "thumbnail", "description", "focus"}
    return problems + [f"unknown part {name}" for name in parts if name not in allowed]


def endpoints(token: Callable[[], str]) -> list[Endpoint]:
    """The documented methods used; those that act for the user need its token."""

    def user(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {token()}"

    return [
        Endpoint("POST", r"/api/v1/apps", check_app_body),
        # OAuth server metadata (Mastodon 4.3+, RFC 8414), read before the code is exchanged.
        Endpoint("GET", r"/\.well-known/oauth-authorization-server", no_body),
        Endpoint("POST", r"/oauth/token", check_token_form),
        Endpoint("GET", r"/api/v1/accounts/verify_credentials", no_body, user),
        Endpoint("GET", r"/api/v1/notifications", check_notifications_query, user),
        Endpoint("GET", r"/api/v1/timelines/tag/[^/]+", check_tag_query),
        Endpoint("POST", r"/api/v1/statuses", check_status_body, user),
        Endpoint("GET", rf"/api/v1/statuses/{STATUS_ID}", no_body, user),
        Endpoint("GET", rf"/api/v1/statuses/{STATUS_ID}/reblogged_by", check_page_query, user),
        Endpoint("GET", rf"/api/v1/statuses/{STATUS_ID}/quotes", check_page_query, user),
        Endpoint("DELETE", rf"/api/v1/statuses/{STATUS_ID}", no_body, user),
        Endpoint("POST", r"/api/v2/media", check_media_form, user),
    ]


# -- the server ---------------------------------------------------------------------------------


class MastodonServer(ContractServer):
    """A Mastodon server's documented answers, with its pagination and idempotency."""

    def __init__(self, notifications: list[dict[str, Any]], statuses: dict[str, Any]) -> None:
        self.notifications = notifications  # oldest first, as they happened
        self.tags: dict[str, list[dict[str, Any]]] = fixture("tag_timelines.json")
        self.statuses = dict(statuses)
        self.token = TOKEN
        self.honours_types = True  # some compatible servers ignore types[]
        self.known_types: set[str] | None = None  # some refuse the types they do not know
        self.boosters: dict[str, list[dict[str, Any]]] = {}  # status id -> accounts, newest first
        self.quotes: dict[str, list[dict[str, Any]]] = {}  # status id -> quoting statuses
        self.lists_quotes = True  # GET /api/v1/statuses/:id/quotes: Mastodon 4.5+ only
        self.sends_link = True
        self.created: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> status
        self.served_notifications: list[str] = []
        self._ids = iter(range(103190000000000000, 103199999999999999))
        super().__init__(
            endpoints(lambda: self.token),
            self._route,
            unauthorized=(401, {}, {"error": "The access token is invalid"}),
        )

    def _route(self, request: Request) -> tuple[int, dict[str, str], Any]:
        responses = fixture("responses.json")
        fixed: dict[str, tuple[int, dict[str, str], Any]] = {
            "/api/v1/apps": (200, {}, responses["app"]),
            "/oauth/token": (200, {}, responses["token"]),
            "/api/v1/accounts/verify_credentials": (200, {}, responses["verify_credentials"]),
            "/api/v2/media": (200, {}, responses["media"]),
            # No OAuth server metadata: a server before Mastodon 4.3.
            "/.well-known/oauth-authorization-server": (404, {}, {"error": "Record not found"}),
        }
        if request.path in fixed:
            return fixed[request.path]
        timeline = not request.path.startswith("/api/v1/statuses/")
        listing = request.path.endswith(("/reblogged_by", "/quotes"))
        if request.method == "GET" and (timeline or listing):
            return self._timeline(request)
        if request.path == "/api/v1/statuses":
            return self._create(request)
        status_id = request.path.rsplit("/", 1)[1]
        if status_id not in self.statuses:
            return 404, {}, {"error": "Record not found"}
        if request.method == "DELETE":
            return 200, {}, {**self.statuses.pop(status_id), "text": "deleted"}
        return 200, {}, self.statuses[status_id]

    def _timeline(self, request: Request) -> tuple[int, dict[str, str], Any]:
        if request.path.endswith("/reblogged_by"):
            accounts = self.boosters.get(request.path.split("/")[-2], [])
            # Pages hold accounts; their ids page like the notifications' ones do.
            rows = [{**a, "id": str(1000 + i)} for i, a in enumerate(reversed(accounts))]
            return self._paginate(request.path, rows, request.params(), default_limit=40)
        if request.path.endswith("/quotes"):
            if not self.lists_quotes:
                return 404, {}, {"error": "Record not found"}
            statuses = self.quotes.get(request.path.split("/")[-2], [])
            return self._paginate(request.path, statuses, request.params(), default_limit=20)
        if request.path != "/api/v1/notifications":
            timeline = self.tags.get(request.path.rsplit("/", 1)[1], [])
            return self._paginate(request.path, timeline, request.params(), default_limit=20)
        params = request.params()
        rows = self.notifications
        unknown = set(params.get("types[]", [])) - (self.known_types or NOTIFICATION_TYPES)
        if unknown:
            return 422, {}, {"error": f"Invalid notification type: {sorted(unknown)[0]}"}
        if self.honours_types and params.get("types[]"):
            rows = [n for n in rows if n["type"] in params["types[]"]]
        answer = self._paginate("/api/v1/notifications", rows, params, default_limit=40)
        self.served_notifications += [n["id"] for n in answer[2]]
        return answer

    def _paginate(
        self,
        path: str,
        rows: list[dict[str, Any]],
        params: dict[str, list[str]],
        default_limit: int,
    ) -> tuple[int, dict[str, str], Any]:
        """Mastodon's pagination: newest first; ``min_id`` pages forward from the cursor."""
        limit = int(params.get("limit", [str(default_limit)])[0])
        newest_first = sorted(rows, key=lambda n: int(n["id"]), reverse=True)
        if "min_id" in params:
            after = [n for n in reversed(newest_first) if int(n["id"]) > int(params["min_id"][0])]
            page = list(reversed(after[:limit]))
        elif "since_id" in params:
            page = [n for n in newest_first if int(n["id"]) > int(params["since_id"][0])][:limit]
        elif "max_id" in params:
            page = [n for n in newest_first if int(n["id"]) < int(params["max_id"][0])][:limit]
        else:
            page = newest_first[:limit]
        headers = {}
        if page and self.sends_link:
            base = f"{self.url}{path}"
            headers["Link"] = (
                f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                f'<{base}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return 200, headers, page

    def _create(self, request: Request) -> tuple[int, dict[str, str], Any]:
        key = request.headers["idempotency-key"]
        if key in self.created:
            return 200, {}, self.created[key]
        body = fields(request)
        if len(body.get("status", "")) > 500:
            return 422, {}, fixture("responses.json")["errors"]["unprocessable"]
        brand = fixture("notifications.json")["brand"]
        status_id = str(next(self._ids))
        mentioned = re.findall(r"@([\w.]+(?:@[\w.-]+\w)?)", body.get("status", ""))
        status = {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "in_reply_to_id": body.get("in_reply_to_id"),
            "visibility": body.get("visibility", "public"),
            "content": f"<p>{html.escape(body.get('status', ''))}</p>",
            "url": f"https://{DOMAIN}/@trwnh/{status_id}",
            "uri": f"https://{DOMAIN}/users/trwnh/statuses/{status_id}",
            "account": brand,
            "mentions": [{"acct": acct, "username": acct.split("@")[0]} for acct in mentioned],
            "media_attachments": [{"id": i} for i in body.get("media_ids", [])],
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
        }
        self.created[key] = status
        self.statuses[status_id] = status
        return 200, {}, status


@pytest.fixture
def server() -> Iterator[MastodonServer]:
    statuses = fixture("statuses.json")
    known = {s["id"]: s for s in statuses.values()}
    contract = MastodonServer(list(fixture("notifications.json")["notifications"]), known)
    yield contract
    contract.close()
    assert contract.violations == []


def context(server: MastodonServer, **settings: Any) -> AccountContext:
    return AccountContext(
        workspace_id=1,
        handle=BRAND,
        settings={"instance": server.url, "domain": DOMAIN, **settings},
        credentials={"instance": server.url, "access_token": TOKEN},
    )


def connector(server: MastodonServer, sleeps: list[float] | None = None) -> MastodonConnector:
    sleeps = sleeps if sleeps is not None else []
    http = MastodonHttpClient(base_url=server.url, sleep=sleeps.append)
    return MastodonConnector(context(server), http=http)


@pytest.fixture
def mastodon_account(workspace: Workspace, server: MastodonServer) -> ConnectedAccount:
    # No connection action exists for Mastodon yet (its web flow is not built): the account is
    # stored as that flow would store it, credentials encrypted.
    return ConnectedAccount.objects.create(
        workspace=workspace,
        network="mastodon",
        handle=BRAND,
        display_name="infinite love ⴳ",
        settings={"instance": server.url, "domain": DOMAIN},
        credentials=encrypt_credentials({"instance": server.url, "access_token": TOKEN}),
    )


# -- connecting ---------------------------------------------------------------------------------


def test_the_app_is_registered_per_instance_and_the_code_exchanged(server: MastodonServer) -> None:
    app = register_app(
        server.url,
        client_name="Relais",
        redirect_uri="https://relais.example/connect/mastodon/done",
        website="https://relais.example",
    )
    url = httpx.URL(authorize_url(app, state="s-123"))
    credentials = exchange_code(app, " the-code ")

    assert app.client_id == fixture("responses.json")["app"]["client_id"]
    assert (url.host, url.path) == ("127.0.0.1", "/oauth/authorize")
    assert dict(url.params) == {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": "https://relais.example/connect/mastodon/done",
        "scope": "read write",
        "state": "s-123",
    }
    assert credentials["instance"] == server.url
    assert credentials["access_token"] == TOKEN
    assert server.served("/oauth/token")[0].form()["code"] == "the-code"
    assert fields(server.served("/api/v1/apps")[0])["redirect_uris"] == app.redirect_uri
    me = MastodonConnector(
        AccountContext(workspace_id=1, handle=BRAND, credentials=credentials)
    ).verify_credentials()
    assert me["acct"] == "trwnh"


def test_an_admin_connects_an_account_through_the_servers_approval(
    server: MastodonServer, client: Any, workspace: Workspace, owner: User
) -> None:
    client.force_login(owner)
    start = client.post(
        reverse("connect_mastodon", args=[workspace.slug]), {"instance": server.url}
    )

    assert start.status_code == 302
    approval = httpx.URL(start.url)
    assert approval.path == "/oauth/authorize"
    callback = approval.params["redirect_uri"]
    assert callback == f"http://testserver/w/{workspace.slug}/accounts/mastodon/done/"
    # The admin approves on the server, which sends the browser back with a code.
    done = client.get(callback, {"code": "the-code", "state": approval.params["state"]})

    assert done.status_code == 302
    account = ConnectedAccount.objects.in_workspace(workspace.pk).get(network="mastodon")
    assert account.handle == "trwnh@127.0.0.1"
    assert account.settings["instance"] == server.url
    assert TOKEN not in account.credentials  # encrypted at rest
    assert server.violations == []
    assert [r.path for r in server.requests] == [
        "/api/v1/apps",
        "/.well-known/oauth-authorization-server",  # Mastodon.py looks for the token endpoint
        "/oauth/token",
        "/api/v1/accounts/verify_credentials",
    ]


def test_the_token_answer_is_read_as_servers_send_it(server: MastodonServer) -> None:
    app = register_app(server.url, client_name="Relais", redirect_uri="https://r.example/cb")
    # "scope" is optional in an OAuth token answer: the scopes asked for are kept.
    server.script("/oauth/token", 200, {"access_token": "t-1", "token_type": "Bearer"})
    assert exchange_code(app, "c1")["scope"] == "read write"
    server.script("/oauth/token", 200, {"token_type": "Bearer", "scope": "read write"})
    with pytest.raises(CredentialsExpiredError, match="no usable access token"):
        exchange_code(app, "c2")
    server.script("/oauth/token", 200, {"access_token": "t-3", "scope": "read"})
    with pytest.raises(CredentialsExpiredError, match="do not contain all of the requested"):
        exchange_code(app, "c3")  # fewer scopes granted than Relais needs
    server.script("/oauth/token", 400, {"error": "invalid_grant"})
    with pytest.raises(ConnectorError, match="answered 400: invalid_grant") as refused:
        exchange_code(app, "c4")
    assert refused.value.status_code == 400
    assert len(server.served("/oauth/token")) == 4  # no code is sent twice


def test_a_callback_without_its_pending_connection_is_refused(
    server: MastodonServer, client: Any, workspace: Workspace, owner: User
) -> None:
    client.force_login(owner)
    client.post(reverse("connect_mastodon", args=[workspace.slug]), {"instance": server.url})

    forged = client.get(
        reverse("mastodon_callback", args=[workspace.slug]), {"code": "c", "state": "forged"}
    )

    assert forged.status_code == 302
    assert not ConnectedAccount.objects.in_workspace(workspace.pk).filter(network="mastodon")
    assert server.served("/oauth/token") == []


def test_only_account_managers_start_a_connection(
    server: MastodonServer, client: Any, workspace: Workspace, agent: User
) -> None:
    client.force_login(agent)

    response = client.post(
        reverse("connect_mastodon", args=[workspace.slug]), {"instance": server.url}
    )

    assert response.status_code == 404
    assert server.requests == []


@pytest.mark.parametrize(
    ("address", "instance"),
    [
        ("mastodon.social", "https://mastodon.social"),
        (" https://Mastodon.Social/@trwnh ", "https://mastodon.social"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ],
)
def test_the_instance_address_is_normalized(address: str, instance: str) -> None:
    assert normalize_instance(address) == instance


@pytest.mark.parametrize("address", ["", "ftp://mastodon.social", "https://"])
def test_a_wrong_instance_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="server address"):
        normalize_instance(address)


def test_the_api_version_is_configuration_never_asked_of_the_server(settings: Any) -> None:
    """Mastodon.py is told the version (a GoToSocial or Akkoma string would mislead it); any
    request to /api/v1/instance or /api/v2/instance would break the contract of every test."""
    assert configured_api_version({}) == "4.5.0"
    assert configured_api_version({"api_version": "4.2.1"}) == "4.2.1"
    settings.RELAIS = {**settings.RELAIS, "MASTODON_API_VERSION": "4.3.0"}
    assert configured_api_version({}) == "4.3.0"
    assert configured_api_version({"api_version": "0.17.0 git-abc"}) == "4.5.0"  # not x.y.z


# -- listening ----------------------------------------------------------------------------------


def test_notifications_become_inbox_conversations(
    server: MastodonServer,
    mastodon_account: ConnectedAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        page = connector(server).fetch(None)

    do_ingest_items(mastodon_account.workspace_id, "mastodon", page.items)

    assert page.skipped == 1  # the malformed mention, logged with its whole payload
    assert "103186250000000009" in caplog.text
    assert "yesterday" in caplog.text
    assert page.cursor == {"min_id": "34976410"}
    request = server.served("/api/v1/notifications")[0]
    assert request.params()["types[]"] == ["mention", "favourite", "reblog", "quote"]
    conversations = {
        c.thread_key: c
        for c in Conversation.objects.in_workspace(mastodon_account.workspace_id).select_related(
            "customer"
        )
    }
    assert set(conversations) == {
        "103186090000000001",  # zsc mentions the brand
        "103186046267791694",  # zsc replies to the brand's own status
        "dm:haskal@cybre.space",  # a direct status
        "103186290011223344",  # a mention behind a content warning
    }
    mention = Post.objects.get(remote_id="103186090000000001")
    assert mention.text == (
        "@trwnh my order #4471 never arrived & nobody answers the phone :(\n\nCan you help?"
    )
    assert mention.author.handle == f"zsc@{DOMAIN}"
    assert mention.mentions == [BRAND]
    dm = Post.objects.get(remote_id="103186180912345678")
    assert dm.kind == PostKind.PRIVATE_MESSAGE
    assert dm.text == "@trwnh hi, may I send you my order number here?\nIt is a private matter."
    assert Post.objects.get(remote_id="103186290011223344").text.startswith("order trouble\n\n")
    brand_status = Post.objects.get(remote_id="103186046267791694")
    assert brand_status.direction == "outbound"
    assert "https://shop.example/autumn-2019/catalogue" in brand_status.text
    assert brand_status.metrics == {"likes": 1, "reposts": 1, "replies": 1}
    boost = Post.objects.get(remote_id="103186046267791694/reblogged_by/297420")
    assert (boost.kind, boost.author.handle) == (PostKind.REPOST, "haskal@cybre.space")


def test_the_cursor_resumes_without_loss_or_duplicates(server: MastodonServer) -> None:
    everything = server.notifications
    server.notifications = everything[:3]
    first = connector(server).fetch(None)
    server.notifications = everything  # five more arrive while Relais is stopped
    cursor = json.loads(json.dumps(first.cursor))  # stored, as the account's JSON field is
    pages = []
    while True:
        page = connector(server).fetch(cursor, limit=2)  # a fresh connector: a restart
        pages.append(page)
        cursor = json.loads(json.dumps(page.cursor))
        if not page.has_more:
            break

    wanted = [n["id"] for n in everything if n["type"] != "follow"]
    assert sorted(server.served_notifications, key=int) == wanted  # each one read exactly once
    assert [r.params().get("min_id") for r in server.served("/api/v1/notifications")] == [
        None,
        ["34975861"],
        ["34976100"],
        ["34976410"],
    ]
    later = [item.remote_id for page in pages for item in page.items]
    assert later == [
        "103186180912345678",
        "103186046267791694",
        "103186046267791694/reblogged_by/297420",
        "103186290011223344",
    ]
    assert sum(page.skipped for page in pages) == 1
    assert cursor == {"min_id": "34976410"}
    assert connector(server).fetch(cursor).items == []  # nothing new: nothing again


def test_followed_hashtags_are_read_forward_for_listening(
    server: MastodonServer, mastodon_account: ConnectedAccount
) -> None:
    timeline = server.tags["acme"]
    server.tags["acme"] = timeline[:1]
    settings = {"instance": server.url, "domain": DOMAIN, "hashtags": ["#Acme"]}
    account = AccountContext(
        workspace_id=1, handle=BRAND, settings=settings, credentials={"access_token": TOKEN}
    )

    first = MastodonConnector(account).fetch(None)
    server.tags["acme"] = timeline
    later = MastodonConnector(account).fetch(json.loads(json.dumps(first.cursor)))
    do_ingest_items(mastodon_account.workspace_id, "mastodon", first.items + later.items)

    assert first.cursor["tags"] == {"acme": "103186300000000001"}
    assert [item.remote_id for item in later.items][-2:] == [
        "103186300000000002",
        "103186300000000003",
    ]
    assert later.cursor["tags"] == {"acme": "103186300000000003"}
    assert server.served("/api/v1/timelines/tag/acme")[-1].params()["min_id"] == [
        "103186300000000001"
    ]
    stored = Post.objects.get(remote_id="103186300000000003")
    assert stored.text == "Back online. #acme support was quick this time."
    assert stored.routing == "not_addressed"  # for listening, not the inbox


def test_a_server_that_ignores_types_and_sends_no_link_still_resumes(
    server: MastodonServer,
) -> None:
    server.honours_types = False
    server.sends_link = False

    page = connector(server).fetch({"min_id": "34976001"})

    assert [item.remote_id for item in page.items] == [
        "103186046267791694",
        "103186046267791694/reblogged_by/297420",
        "103186290011223344",
    ]  # the follow is left out, the malformed mention skipped
    assert page.skipped == 1
    assert page.cursor == {"min_id": "34976410"}


def test_a_page_that_is_not_notifications_fails_the_poll_with_its_payload_logged(
    server: MastodonServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("/api/v1/notifications", 200, {"error": "maintenance until 10:00"})

    with caplog.at_level(logging.WARNING), pytest.raises(ConnectorError, match="not a list"):
        connector(server).fetch({"min_id": "34975861"})

    assert "maintenance until 10:00" in caplog.text
    page = connector(server).fetch({"min_id": "34975861"})  # the same cursor, next poll
    assert page.items[0].remote_id == "103186180912345678"


def test_a_revoked_token_marks_the_account_reconnect_needed(
    server: MastodonServer, mastodon_account: ConnectedAccount
) -> None:
    server.token = "revoked-by-the-user"

    with pytest.raises(CredentialsExpiredError, match="The access token is invalid") as caught:
        connector(server).fetch(None)
    do_mark_reconnect_needed(mastodon_account, caught.value)

    mastodon_account.refresh_from_db()
    assert mastodon_account.status == AccountStatus.RECONNECT_NEEDED
    assert "The access token is invalid" in mastodon_account.last_error
    assert TOKEN not in mastodon_account.last_error
    assert len(server.served("/api/v1/notifications")) == 1  # not retried


def test_429_waits_until_the_rate_limit_resets(server: MastodonServer) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    server.script(
        "/api/v1/notifications",
        429,
        fixture("responses.json")["errors"]["too_many"],
        {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    sleeps: list[float] = []

    page = connector(server, sleeps).fetch(None)

    assert len(sleeps) == 1
    assert 3.0 <= sleeps[0] <= 5.0
    assert len(page.items) == 7
    assert len(server.served("/api/v1/notifications")) == 2


def test_429_that_lasts_gives_up_with_the_wait_to_honour(server: MastodonServer) -> None:
    reset = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    server.script(
        "/api/v1/notifications", 429, {"error": "Too many requests"}, {"X-RateLimit-Reset": reset}
    )

    with pytest.raises(RateLimitedError) as caught:
        connector(server).fetch(None)

    assert caught.value.retry_after is not None
    assert 230 < caught.value.retry_after <= 240


def test_rate_limit_reset_is_read_as_a_time() -> None:
    now = datetime(2019, 11, 26, 1, 49, 0, tzinfo=UTC)
    assert seconds_until_reset("2019-11-26T01:50:00.000Z", now=now) == 60.0
    assert seconds_until_reset("2019-11-26T01:40:00.000Z", now=now) == 0.0
    assert seconds_until_reset(str(now.timestamp() + 30), now=now) == 30.0
    assert seconds_until_reset("soon", now=now) is None


# -- acting -------------------------------------------------------------------------------------


def _ingested_conversation(
    server: MastodonServer, account: ConnectedAccount, thread_key: str
) -> Conversation:
    do_ingest_items(account.workspace_id, "mastodon", connector(server).fetch(None).items)
    return Conversation.objects.in_workspace(account.workspace_id).get(thread_key=thread_key)


def test_a_reply_goes_out_in_reply_to_the_customer_with_its_visibility(
    server: MastodonServer, mastodon_account: ConnectedAccount, owner: User
) -> None:
    conversation = _ingested_conversation(server, mastodon_account, "103186046267791694")

    post = do_send_reply(
        owner, conversation, "Sorry! Fixed: https://shop.example/autumn", idempotency_key="r-1"
    )

    body = fields(server.served("/api/v1/statuses")[-1])
    assert body == {
        "status": f"@zsc@{DOMAIN} Sorry! Fixed: https://shop.example/autumn",
        "in_reply_to_id": "103186126728896492",
        "visibility": "public",
        "sensitive": "0",  # Mastodon.py's form always says it
    }
    assert server.served("/api/v1/statuses")[-1].headers["idempotency-key"] == "r-1"
    assert post.remote_id in server.statuses
    assert post.in_reply_to_remote_id == "103186126728896492"


def test_a_private_reply_is_a_direct_status_mentioning_the_customer(
    server: MastodonServer, mastodon_account: ConnectedAccount, owner: User
) -> None:
    conversation = _ingested_conversation(server, mastodon_account, "dm:haskal@cybre.space")

    do_send_reply(owner, conversation, "Yes, please do.", idempotency_key="dm-1", private=True)

    body = fields(server.served("/api/v1/statuses")[-1])
    assert body == {
        "status": "@haskal@cybre.space Yes, please do.",
        "visibility": "direct",
        "sensitive": "0",
    }


def test_a_reply_to_a_direct_status_stays_direct(server: MastodonServer) -> None:
    sent = connector(server).reply(
        OutboundPost(
            text="@haskal@cybre.space thanks, we are on it",
            kind=PostKind.REPLY,
            in_reply_to="103186180912345678",
        ),
        idempotency_key="r-2",
    )

    body = fields(server.served("/api/v1/statuses")[-1])
    assert body["visibility"] == "direct"
    assert body["status"] == "@haskal@cybre.space thanks, we are on it"  # not mentioned twice
    assert server.statuses[sent.remote_id]["in_reply_to_id"] == "103186180912345678"


def test_a_reply_to_a_scope_mastodon_lacks_is_never_widened_to_public(
    server: MastodonServer,
) -> None:
    local_only = {**fixture("statuses.json")["public_reply_parent"], "visibility": "local"}
    server.statuses[local_only["id"]] = local_only  # Akkoma's local-only scope

    connector(server).reply(
        OutboundPost(text="thanks", kind=PostKind.REPLY, in_reply_to=local_only["id"]),
        idempotency_key="r-3",
    )

    assert fields(server.served("/api/v1/statuses")[-1])["visibility"] == "unlisted"


def test_a_publish_retried_after_a_timeout_posts_once(server: MastodonServer) -> None:
    server.delay_next("/api/v1/statuses", 3.0)  # the status is created, the answer comes too late
    http = MastodonHttpClient(
        base_url=server.url, timeout=httpx.Timeout(1.0), sleep=lambda seconds: None
    )
    brand = MastodonConnector(context(server), http=http)

    sent = brand.publish(OutboundPost(text="Autumn sale starts now"), idempotency_key="pub-1")
    again = brand.publish(OutboundPost(text="Autumn sale starts now"), idempotency_key="pub-1")

    assert len(server.served("/api/v1/statuses")) >= 3  # the timed-out try, its retry, again
    assert len(server.created) == 1
    assert sent.remote_id == again.remote_id
    assert sent.url.endswith(sent.remote_id)


def test_a_refused_status_is_a_clear_error_and_not_retried(server: MastodonServer) -> None:
    with pytest.raises(ConnectorError, match="Text character limit of 500 exceeded"):
        connector(server).publish(OutboundPost(text="x" * 501), idempotency_key="long-1")

    assert len(server.served("/api/v1/statuses")) == 1


def test_an_argument_mastodon_py_refuses_is_its_own_error_not_an_earlier_one(
    server: MastodonServer,
) -> None:
    http = MastodonHttpClient(base_url=server.url)
    brand = MastodonConnector(context(server, visibility="local"), http=http)
    with pytest.raises(ConnectorError, match="Record not found"):
        brand.metrics("404404")

    with pytest.raises(ConnectorError, match="Invalid visibility value") as caught:
        brand.publish(OutboundPost(text="hi"), idempotency_key="v-1")

    assert caught.value.status_code is None  # refused before anything was sent
    assert server.served("/api/v1/statuses") == []


def test_media_is_uploaded_then_published(server: MastodonServer) -> None:
    brand = connector(server)

    media_id = brand.upload_media(
        b"\xff\xd8\xff\xe0 a small jpeg",
        filename="cover.jpg",
        content_type="image/jpeg",
        description="The autumn catalogue cover",
    )
    brand.publish(OutboundPost(text="New cover"), idempotency_key="m-1", media_ids=[media_id])

    upload = server.served("/api/v2/media")[0].multipart()
    assert upload["file"] == b"\xff\xd8\xff\xe0 a small jpeg"
    assert upload["description"] == b"The autumn catalogue cover"
    assert fields(server.served("/api/v1/statuses")[0])["media_ids"] == ["22348641"]


def test_metrics_and_delete(server: MastodonServer) -> None:
    brand = connector(server)
    server.statuses["103186046267791694"] = fixture("notifications.json")["notifications"][4][
        "status"
    ]

    assert brand.metrics("103186046267791694") == {"likes": 1, "reposts": 1, "replies": 1}
    brand.delete("103186046267791694")
    with pytest.raises(ConnectorError, match="Record not found"):
        brand.metrics("103186046267791694")


# -- text ---------------------------------------------------------------------------------------


def test_length_is_counted_as_mastodon_counts_it() -> None:
    link = "https://shop.example/a/very/long/path/to/the/autumn/catalogue?utm_source=mastodon"
    assert mastodon_length(link) == 23
    assert mastodon_length(f"see {link}.") == 4 + 23 + 1
    assert mastodon_length("@haskal@cybre.space hi") == len("@haskal hi")
    assert mastodon_length("mail me: someone@example.com") == len("mail me: someone@example.com")
    assert mastodon_length("👩‍👩‍👧 é") == 3  # graphemes, like the server's validator
    brand = MastodonConnector(AccountContext(workspace_id=0, handle=""))  # as the composer does
    assert brand.limits.max_text_length == 500
    assert brand.text_length("@someone@a.very.long.server.example " + "x" * 491) == 500


def test_html_content_becomes_plain_text_safely() -> None:
    status = fixture("notifications.json")["notifications"][0]["status"]
    assert html_to_text(status["content"]) == (
        "Our autumn catalogue is out! Tell us what you think: "
        "https://shop.example/autumn-2019/catalogue"
    )
    assert html_to_text("<p>a &lt;b&gt;</p><p>c<br />d</p><script>alert(1)</script>") == (
        "a <b>\n\nc\nd"
    )
    quoting = '<p class="quote-inline">RE: <a href="https://x.example/1"><b>x</b></a></p><p>yes</p>'
    assert html_to_text(quoting, hide_quote_inline=True) == "yes"
    assert html_to_text(quoting) == "RE: x\n\nyes"


def test_the_contract_refuses_what_the_documentation_does_not_allow(
    server: MastodonServer,
) -> None:
    """The checks above mean something: requests outside the contract are caught."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=auth) as raw:
        no_key = raw.post("/api/v1/statuses", json={"status": "hi", "visibility": "public"})
        bad_visibility = raw.post(
            "/api/v1/statuses",
            json={"status": "hi", "visibility": "followers"},
            headers={"Idempotency-Key": "k"},
        )
        lonely_dm = raw.post(
            "/api/v1/statuses",
            json={"status": "hi", "visibility": "direct"},
            headers={"Idempotency-Key": "k2"},
        )
        bad_limit = raw.get("/api/v1/notifications", params={"limit": "500"})
        unknown = raw.get("/api/v1/timelines/home")

    assert [r.status_code for r in (no_key, bad_visibility, lonely_dm, bad_limit, unknown)] == [
        400,
        400,
        400,
        400,
        404,
    ]
    assert len(server.violations) == 5
    server.violations.clear()  # expected here; any other test leaving one fails


# -- quotes and boosts --------------------------------------------------------------------------


def quote_notification(shape: Any) -> dict[str, Any]:
    """Mastodon 4.5's "quote" notification: ``status`` is the quoting post."""
    notifications = fixture("notifications.json")["notifications"]
    brand_status = next(n["status"] for n in notifications if n["type"] == "reblog")
    quoter = notifications[1]["account"]  # zsc
    return {
        "id": "34976500",
        "type": "quote",
        "created_at": "2019-11-23T09:00:00.000Z",
        "account": quoter,
        "status": {
            "id": "103186400000000001",
            "created_at": "2019-11-23T09:00:00.000Z",
            "in_reply_to_id": None,
            "visibility": "public",
            "content": "<p>Worth a look, their catalogue is great</p>",
            "account": quoter,
            "mentions": [],
            "quote": shape(brand_status) if callable(shape) else shape,
        },
    }


@pytest.mark.parametrize(
    ("shape", "quoted"),
    [
        # Mastodon 4.5: a Quote holding the quoted status, or a ShallowQuote with its id.
        (lambda brand: {"state": "accepted", "quoted_status": brand}, "103186046267791694"),
        ({"state": "accepted", "quoted_status_id": "103186046267791694"}, "103186046267791694"),
        # A quote waiting for approval shows nothing: not a forward (yet).
        ({"state": "pending", "quoted_status": None}, ""),
        # Pleroma, Akkoma, Fedibird: the quoted status itself.
        (lambda brand: brand, "103186046267791694"),
    ],
)
def test_a_quote_of_the_brand_arrives_as_a_quote(
    server: MastodonServer, shape: Any, quoted: str
) -> None:
    server.notifications = [quote_notification(shape)]
    [item] = connector(server).fetch(None).items
    assert server.served("/api/v1/notifications")[0].params()["types[]"][-1] == "quote"
    assert item.raw.get("quoted", "") == quoted
    assert item.kind == (PostKind.QUOTE if quoted else PostKind.POST)


def test_a_status_naming_its_quote_by_id_is_a_quote() -> None:
    assert quoted_status_id({"id": "9", "quote_id": "7"}) == "7"  # Pleroma, Akkoma
    assert quoted_status_id({"id": "9", "quote": None}) == ""
    assert quoted_status_id({"id": "9", "quote": {"state": "revoked"}}) == ""


def test_a_server_refusing_the_quote_type_is_asked_without_it(server: MastodonServer) -> None:
    server.known_types = NOTIFICATION_TYPES - {"quote", "quoted_update"}
    page = connector(server).fetch(None)
    assert page.cursor == {"min_id": "34976410", "quotes": False}
    assert [r.params()["types[]"][-1] for r in server.served("/api/v1/notifications")] == [
        "quote",
        "reblog",
    ]
    later = connector(server).fetch(json.loads(json.dumps(page.cursor)))
    assert later.cursor["quotes"] is False
    assert server.served("/api/v1/notifications")[-1].params()["types[]"][-1] == "reblog"
    assert len(server.served("/api/v1/notifications")) == 3  # no refused request any more


def test_boosters_are_read_across_pages(server: MastodonServer) -> None:
    accounts = [{"acct": f"fan{i}@example.social", "username": f"fan{i}"} for i in range(100)]
    server.boosters["103186046267791694"] = [{"acct": "zsc", "username": "zsc"}, *accounts]
    found = connector(server).boosters("103186046267791694")
    assert found == {f"zsc@{DOMAIN}"} | {f"fan{i}@example.social" for i in range(100)}
    # Pages of the server's default size (40), followed by their Link until an empty one.
    pages = server.served("/api/v1/statuses/103186046267791694/reblogged_by")
    assert [r.params().get("max_id") for r in pages] == [None, ["1061"], ["1021"], ["1000"]]
    assert connector(server).boosters("103186046267791694", most=50) is None


def boosted_and_quoted(server: MastodonServer, account: ConnectedAccount, owner: User) -> Target:
    """The brand status published from a draft, read back with a boost (haskal, in the
    fixtures) and a quote (zsc): both are forwards of its target."""
    draft = do_create_draft(owner, account.workspace_id, "Autumn catalogue", [account.pk])
    target = published(owner, draft, "103186046267791694")
    Target.objects.filter(pk=target.pk).update(published_at=clock.now())
    server.notifications.append(
        quote_notification(lambda brand: {"state": "accepted", "quoted_status": brand})
    )
    do_ingest_items(account.workspace_id, "mastodon", connector(server).fetch(None).items)
    return target


def test_an_undone_boost_is_withdrawn_from_the_cascade(
    server: MastodonServer, mastodon_account: ConnectedAccount, owner: User
) -> None:
    target = boosted_and_quoted(server, mastodon_account, owner)
    forwards = {f.kind: f for f in Forward.objects.filter(target=target)}
    assert forwards["quote"].handle == f"zsc@{DOMAIN}"  # a quote is a forward too
    boost = forwards["boost"]
    assert boost.handle == "haskal@cybre.space"

    # Still boosted and quoted: the check changes nothing.
    server.boosters["103186046267791694"] = [{"acct": "haskal@cybre.space", "username": "haskal"}]
    quoting = quote_notification(lambda brand: {"state": "accepted", "quoted_status": brand})
    server.quotes["103186046267791694"] = [quoting["status"]]
    assert targets_with_standing_boosts(clock.now()) == [target.pk]
    assert do_check_boosts(target.pk) == 0

    # Mastodon sends no event when the boost is undone; the server's list no longer has it.
    server.boosters["103186046267791694"] = []
    assert do_check_boosts(target.pk) == 1
    boost.refresh_from_db()
    assert boost.withdrawn_at is not None

    # The quote stands until the quoting status is gone from the server's list of quotes.
    assert targets_with_standing_boosts(clock.now()) == [target.pk]
    server.quotes["103186046267791694"] = []
    assert do_check_boosts(target.pk) == 1
    assert targets_with_standing_boosts(clock.now()) == []


def test_a_server_without_the_quotes_listing_checks_boosts_only(
    server: MastodonServer, mastodon_account: ConnectedAccount, owner: User
) -> None:
    target = boosted_and_quoted(server, mastodon_account, owner)
    server.lists_quotes = False
    server.boosters["103186046267791694"] = []

    assert connector(server).quoters("103186046267791694") is None
    assert do_check_boosts(target.pk) == 1  # the boost; the quote cannot be checked: it stays
    standing = Forward.objects.filter(target=target, withdrawn_at=None)
    assert list(standing.values_list("kind", flat=True)) == ["quote"]
