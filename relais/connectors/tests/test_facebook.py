"""Contract tests of the Facebook Page and Instagram connectors and of Meta's webhook.

No Graph API server can run here. The connectors talk over real HTTP to a local server
(``contract_server.py``) answering with payloads written from Meta's Graph API reference
(fixtures/facebook) and checking each request against rules written from the same reference:
the versioned path, the documented edges and nodes, the fields each node has (nested edges and
their modifiers included), the parameters of each edge, the body of comments, replies, posts
and Send API messages, the bearer token and the ``appsecret_proof``. Fixtures are checked
against the documented node fields too. These are contract tests written from the
documentation, not a live Graph API (the opt-in live test at the end reads the real one).
The webhook is tested through Django with real signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.urls import reverse
from facebook_business.adobjects.contentpublishinglimitresponse import (
    ContentPublishingLimitResponse,
)
from facebook_business.adobjects.igmedia import IGMedia
from facebook_business.adobjects.iguser import IGUser
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.pagepost import PagePost
from facebook_business.adobjects.shadowigmediabuilder import ShadowIGMediaBuilder
from facebook_business.adobjects.unifiedthread import UnifiedThread

from relais.accounts.models import User, Workspace
from relais.connectors.actions import do_poll_account
from relais.connectors.base import (
    AccountContext,
    ConnectorError,
    MediaFile,
    OutboundPost,
    PostKind,
    RateLimitedError,
    TransientNetworkError,
    UnsupportedError,
)
from relais.connectors.connect_actions import do_connect_facebook_page
from relais.connectors.credentials import decrypt_credentials
from relais.connectors.models import (
    AccountStatus,
    ConnectedAccount,
    WebhookEvent,
    WebhookEventStatus,
)
from relais.connectors.networks.facebook import (
    DEFAULT_GRAPH_VERSION,
    FacebookPageConnector,
    GraphHttpClient,
    InstagramConnector,
    appsecret_proof,
    graph_address,
    parse_time,
)
from relais.connectors.networks.facebook import start_login as facebook_start_login
from relais.connectors.registry import connector_for
from relais.connectors.tests.contract_server import (
    Answer,
    ContractServer,
    Endpoint,
    Request,
    in_range,
    no_body,
    only_params,
)
from relais.connectors.tests.graph_published_spec import (
    GRAPH_VERSION,
    Shape,
    edge_or_object_problems,
    field_problems,
    form_problems,
    object_problems,
)
from relais.connectors.webhooks import do_process_pending_webhook_events
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.inbox.actions import do_send_reply
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import PendingBatch, Post
from relais.publishing.actions import do_create_draft, do_submit_for_approval
from relais.publishing.media import do_attach_media
from relais.publishing.models import TargetStatus
from relais.publishing.tests.test_inbound import published

FIXTURES = Path(__file__).parent / "fixtures" / "facebook"
TOKEN = "EAAGm0PX4ZCpsBO7ZBqZC1xZAGZCZBdZAZCpZBZAwZDZD-page-token-of-boulangerie-acme"
APP_SECRET = "4f2c1a9e8b7d6c5e4f3a2b1c0d9e8f7a"
VERIFY_TOKEN = "relais-meta-subscription-7d1c"
VERSION = "v26.0"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


PAGE = fixture("page.json")["page"]
PAGE_ID = PAGE["id"]
IG_ID = PAGE["instagram_business_account"]["id"]


# -- the published contract (Meta's Graph object specs, through facebook-business) -------------

READ_PARAMS = {"fields", "limit", "after", "before", "since", "until", "appsecret_proof"}


def reader(shape: Shape, extra: frozenset[str] = frozenset()) -> Any:
    def check(request: Request) -> list[str]:
        problems = only_params(request, READ_PARAMS | extra) + no_body(request)
        problems += in_range(request, "limit", 1, 100)
        return problems + field_problems(request.param("fields", "id"), shape)

    return check


def check_container_form(request: Request) -> list[str]:
    """``POST /{ig-user}/media``: an image container (image_url and caption)."""
    form = request.form()
    problems = form_problems(form, IGUser, "create_media")
    if not form.get("image_url", "").startswith(("http://", "https://")):
        problems.append("an image container needs image_url")
    return problems


def check_token_exchange(request: Request) -> list[str]:
    """``GET /oauth/access_token``: a code (with its redirect_uri) or a token to make long-lived."""
    app = {"client_id", "client_secret"}
    grants = ({*app, "redirect_uri", "code"}, {*app, "grant_type", "fb_exchange_token"})
    if set(request.params()) not in grants:
        return [f"token parameters {sorted(request.params())}"]
    if request.param("grant_type", "fb_exchange_token") != "fb_exchange_token":
        return ["grant_type must be fb_exchange_token"]
    return no_body(request)


def check_publish_form(request: Request) -> list[str]:
    form = request.form()
    problems = form_problems(form, IGUser, "create_media_publish")
    return problems + ([] if form.get("creation_id", "").isdigit() else ["creation_id"])


def check_conversations(request: Request) -> list[str]:
    problems = reader(UnifiedThread, frozenset({"platform", "folder", "user_id"}))(request)
    if request.param("platform") not in {"messenger", "instagram"}:
        problems.append("platform must be messenger or instagram")
    return problems


def check_message_form(request: Request) -> list[str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ["comments and replies are posted as a form"]
    form = request.form()
    problems = [f"unknown field {key}" for key in form if key not in {"message", "attachment_url"}]
    return problems + ([] if form.get("message", "").strip() else ["message is required"])


def check_feed_form(request: Request) -> list[str]:
    form = request.form()
    allowed = {"message", "link", "published", "scheduled_publish_time"}
    problems = [f"unknown field {key}" for key in form if key not in allowed]
    return problems + ([] if form.get("message") or form.get("link") else ["message or link"])


def check_send_api(request: Request) -> list[str]:
    body = request.json()
    problems = [
        f"unknown field {key}"
        for key in body
        if key not in {"recipient", "messaging_type", "message", "tag"}
    ]
    if not str((body.get("recipient") or {}).get("id") or "").isdigit():
        problems.append("recipient.id is the person's page-scoped id")
    if body.get("messaging_type") not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
        problems.append("messaging_type is RESPONSE, UPDATE or MESSAGE_TAG")
    if body.get("messaging_type") == "MESSAGE_TAG" and not body.get("tag"):
        problems.append("a MESSAGE_TAG message needs its tag")
    if not (body.get("message") or {}).get("text"):
        problems.append("message.text is required")
    return problems


class GraphApi:
    """Graph as the contract server plays it."""

    def __init__(self, secret: str = "") -> None:
        page = fixture("page.json")
        instagram = fixture("instagram.json")
        self.feed = page["feed"]
        self.conversations = page["conversations"]
        self.ig_media = instagram["media"]
        self.ig_conversations = instagram["conversations"]
        self.token = TOKEN
        self.secret = secret
        self.me = fixture("responses.json")["me_page"]
        self.deleted: list[str] = []
        limit = fixture("responses.json")["ig_publishing_limit"]["data"][0]
        self.quota_usage, self.quota_total = limit["quota_usage"], limit["config"]["quota_total"]
        self.containers: dict[str, dict[str, str]] = {}
        self.container_statuses = ["FINISHED"]  # what each status read answers, the last stays
        self.published: list[dict[str, Any]] = []
        self.login_code = "AQDlogin-code-from-the-dialog"
        self.login_redirect = ""  # the redirect_uri the dialog was opened with
        v = rf"/{VERSION}"
        node = r"[0-9_]+"
        self.server = ContractServer(
            [
                Endpoint("GET", rf"{v}/me", reader(Page), self.authorized),
                Endpoint("GET", rf"{v}/oauth/access_token", check_token_exchange),
                Endpoint("GET", rf"{v}/me/accounts", reader(Page), self.user_authorized),
                Endpoint("GET", rf"{v}/{node}/feed", reader(PagePost), self.authorized),
                Endpoint("POST", rf"{v}/{node}/feed", check_feed_form, self.authorized),
                Endpoint("GET", rf"{v}/{node}/conversations", check_conversations, self.authorized),
                Endpoint("GET", rf"{v}/{node}/media", reader(IGMedia), self.authorized),
                Endpoint("POST", rf"{v}/{node}/comments", check_message_form, self.authorized),
                Endpoint("POST", rf"{v}/{node}/replies", check_message_form, self.authorized),
                Endpoint("POST", rf"{v}/{node}/messages", check_send_api, self.authorized),
                Endpoint("POST", rf"{v}/{node}/media", check_container_form, self.authorized),
                Endpoint("POST", rf"{v}/{node}/media_publish", check_publish_form, self.authorized),
                Endpoint(
                    "GET",
                    rf"{v}/{node}/content_publishing_limit",
                    reader(ContentPublishingLimitResponse),
                    self.authorized,
                ),
                Endpoint("GET", rf"{v}/{node}", self.read_node, self.authorized),
                Endpoint("DELETE", rf"{v}/{node}", no_body, self.authorized),
            ],
            self.route,
            unauthorized=(400, {}, fixture("responses.json")["errors"]["token_invalidated"]),
        )

    def authorized(self, request: Request) -> bool:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return False
        return not self.secret or request.param("appsecret_proof") == appsecret_proof(
            self.token, self.secret
        )

    def user_authorized(self, request: Request) -> bool:
        """The long-lived user token of Facebook Login (``/me/accounts``), with its proof."""
        long_lived = fixture("responses.json")["login_long_lived_token"]["access_token"]
        if request.headers.get("authorization") != f"Bearer {long_lived}":
            return False
        return not self.secret or request.param("appsecret_proof") == appsecret_proof(
            long_lived, self.secret
        )

    def _token_exchange(self, request: Request) -> Answer:
        responses = fixture("responses.json")
        invalid: Answer = (400, {}, responses["errors"]["token_invalidated"])
        if self.secret and request.param("client_secret") != self.secret:
            return invalid
        if request.param("code"):
            fits = request.param("code") == self.login_code
            if not fits or request.param("redirect_uri") != self.login_redirect:
                return invalid
            return 200, {}, responses["login_token"]
        if request.param("fb_exchange_token") != responses["login_token"]["access_token"]:
            return invalid
        return 200, {}, responses["login_long_lived_token"]

    def read_node(self, request: Request) -> list[str]:
        """``GET /{id}``: a container, a Page post (``{page}_{post}``) or an Instagram media."""
        node = request.path.rsplit("/", 1)[1]
        if node in self.containers:
            return reader(ShadowIGMediaBuilder)(request)
        return reader(PagePost if "_" in node else IGMedia)(request)

    def route(self, request: Request) -> Answer:
        special = {
            ("POST", "media"): self._create_container,
            ("POST", "media_publish"): self._publish,
            ("GET", "content_publishing_limit"): self._publishing_limit,
            ("GET", "access_token"): self._token_exchange,
            ("GET", "accounts"): lambda _r: (200, {}, fixture("responses.json")["me_accounts"]),
        }
        name = request.path.rsplit("/", 1)[-1]
        if (request.method, name) in special:
            return special[(request.method, name)](request)
        if name in self.containers:
            status = self.container_statuses.pop(0) if len(self.container_statuses) > 1 else None
            self.containers[name]["status_code"] = status or self.container_statuses[0]
            answer = fixture("responses.json")["ig_container_status"]
            return (
                200,
                {},
                {**answer, "id": name, "status_code": self.containers[name]["status_code"]},
            )
        return self._route(request)

    def _create_container(self, request: Request) -> Answer:
        container = str(17889615691921648 + len(self.containers))
        self.containers[container] = {**request.form(), "status_code": "IN_PROGRESS"}
        return 200, {}, {"id": container}

    def _publish(self, request: Request) -> Answer:
        container = self.containers[request.form()["creation_id"]]
        if self.quota_usage >= self.quota_total:
            return 400, {}, fixture("responses.json")["errors"]["ig_publishing_limit_reached"]
        media = {
            "id": str(17920238422030506 + len(self.published)),
            "caption": container["caption"],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "permalink": f"https://www.instagram.com/p/Relais{len(self.published)}/",
            "username": "boulangerie.acme",
        }
        container["status_code"] = "PUBLISHED"
        self.quota_usage += 1
        self.published.append(media)
        self.ig_media["data"].insert(0, media)
        return 200, {}, {"id": media["id"]}

    def _publishing_limit(self, request: Request) -> Answer:
        limit = fixture("responses.json")["ig_publishing_limit"]
        row = {**limit["data"][0], "quota_usage": self.quota_usage}
        row["config"] = {**row["config"], "quota_total": self.quota_total}
        return 200, {}, {"data": [row]}

    def _route(self, request: Request) -> Answer:
        responses = fixture("responses.json")
        tail = request.path.split("/", 2)[2]
        created = {
            "comments": responses["comment_created"],
            "replies": responses["ig_reply_created"],
            "feed": responses["post_created"],
            "messages": responses["message_sent"],
        }
        name = tail.rsplit("/", 1)[-1]
        if request.method == "POST":
            return 200, {}, created[name]
        reads = {
            "me": self.me,
            "feed": self.feed,
            "media": self.ig_media,
            "conversations": (
                self.conversations
                if request.param("platform") == "messenger"
                else self.ig_conversations
            ),
        }
        if name in reads:
            return 200, {}, reads[name]
        if request.method == "DELETE":
            self.deleted.append(tail)
            return 200, {}, responses["deleted"]
        return 200, {}, responses["post_metrics"]


@pytest.fixture
def graph() -> Iterator[GraphApi]:
    contract = GraphApi()
    yield contract
    contract.server.close()
    assert contract.server.violations == []


def graph_settings(graph: GraphApi, **extra: Any) -> dict[str, Any]:
    return {"graph_base": graph.server.url, "graph_version": VERSION, "page_id": PAGE_ID, **extra}


@pytest.fixture
def page_accounts(workspace: Workspace, owner: User, graph: GraphApi) -> list[ConnectedAccount]:
    return do_connect_facebook_page(
        workspace, TOKEN, actor=owner, graph_base=graph.server.url, graph_version=VERSION
    )


def page_connector(
    account: ConnectedAccount, graph: GraphApi, sleeps: list[float] | None = None
) -> Any:
    built = connector_for(account)
    built.http = GraphHttpClient(  # type: ignore[attr-defined]
        base_url=graph_address(account.settings),
        sleep=(sleeps if sleeps is not None else []).append,
    )
    return built


# -- fixtures honour the documented fields ------------------------------------------------------


def test_the_fixtures_have_the_published_fields() -> None:
    """Every key of the Graph fixtures is a field or an edge of its node in Meta's specs."""
    page = fixture("page.json")
    instagram = fixture("instagram.json")
    responses = fixture("responses.json")
    problems = object_problems(page["page"], Page) + object_problems(responses["me_page"], Page)
    problems += edge_or_object_problems(page["feed"], PagePost, "feed.")
    problems += edge_or_object_problems(page["conversations"], UnifiedThread, "conversations.")
    problems += edge_or_object_problems(instagram["media"], IGMedia, "media.")
    problems += edge_or_object_problems(instagram["conversations"], UnifiedThread, "ig.")
    problems += object_problems(responses["post_metrics"], PagePost, "metrics.")
    problems += object_problems(responses["ig_container_status"], ShadowIGMediaBuilder)
    problems += edge_or_object_problems(
        responses["ig_publishing_limit"], ContentPublishingLimitResponse, "limit."
    )
    problems += object_problems(responses["ig_media_published"], IGMedia)
    problems += edge_or_object_problems(responses["me_accounts"], Page, "accounts.")
    assert problems == []


def test_the_field_check_catches_what_the_specs_do_not_have() -> None:
    assert field_problems("id,message,comments.limit(5){id,from{id,name}}", PagePost) == []
    assert field_problems("id,bogus", PagePost) == ["PagePost has no field 'bogus'"]
    assert field_problems("comments.sort(x){id}", PagePost) == [
        "PagePost.comments: modifier 'sort' is not documented"
    ]
    assert object_problems({"id": 1, "like_count": "3"}, IGMedia) == [
        "IGMedia.id is not string",
        "IGMedia.like_count is not int",
    ]


def test_the_default_graph_version_is_the_one_the_specs_describe() -> None:
    """Upgrading facebook-business (new specs) must come with a look at the default version."""
    assert DEFAULT_GRAPH_VERSION == GRAPH_VERSION


# -- connecting ---------------------------------------------------------------------------------


def test_a_page_token_connects_the_page_and_its_instagram_account(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    facebook, instagram = page_accounts

    assert (facebook.network, facebook.handle, facebook.display_name) == (
        "facebook", PAGE_ID, "Boulangerie Acme",
    )  # fmt: skip
    assert facebook.settings["graph_version"] == VERSION
    assert (instagram.network, instagram.handle) == ("instagram", "boulangerie.acme")
    assert instagram.settings["ig_user_id"] == IG_ID
    assert TOKEN not in facebook.credentials  # encrypted at rest
    request = graph.server.served(f"/{VERSION}/me")[0]
    assert "instagram_business_account{id,username}" in request.param("fields")


# -- Facebook Login -----------------------------------------------------------------------------

APP_ID = "1234567890123456"
WORKSPACE_APP_SECRET = "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"


@pytest.fixture
def login_graph() -> Iterator[GraphApi]:
    """Graph where every call must be proved with the workspace's own app secret."""
    contract = GraphApi(secret=WORKSPACE_APP_SECRET)
    yield contract
    contract.server.close()
    assert contract.server.violations == []


def start_login(client: Any, workspace: Workspace, graph: GraphApi, **form: str) -> httpx.URL:
    response = client.post(
        reverse("connect_facebook_login", args=[workspace.slug]),
        {
            "app_id": APP_ID,
            "app_secret": WORKSPACE_APP_SECRET,
            "graph_base": graph.server.url,
            "graph_version": VERSION,
            "dialog_base": "https://meta-dialog.test",
            "with_instagram": "1",
            **form,
        },
    )
    assert response.status_code == 302
    return httpx.URL(response.url)


def test_facebook_login_connects_the_granted_page_with_its_page_token(
    login_graph: GraphApi, client: Any, workspace: Workspace, owner: User
) -> None:
    client.force_login(owner)
    dialog = start_login(client, workspace, login_graph)

    assert (dialog.host, dialog.path) == ("meta-dialog.test", f"/{VERSION}/dialog/oauth")
    params = dict(dialog.params)
    assert params["client_id"] == APP_ID
    assert {"pages_show_list", "pages_messaging", "instagram_content_publish"} <= set(
        params["scope"].split(",")
    )
    login_graph.login_redirect = params["redirect_uri"]
    done = client.get(
        params["redirect_uri"], {"code": login_graph.login_code, "state": params["state"]}
    )

    assert done.status_code == 302
    facebook = ConnectedAccount.objects.in_workspace(workspace.pk).get(network="facebook")
    instagram = ConnectedAccount.objects.in_workspace(workspace.pk).get(network="instagram")
    assert (facebook.display_name, instagram.handle) == ("Boulangerie Acme", "boulangerie.acme")
    stored = decrypt_credentials(facebook.credentials)
    assert stored == {"page_access_token": TOKEN, "app_secret": WORKSPACE_APP_SECRET}
    assert [r.path for r in login_graph.server.requests] == [
        f"/{VERSION}/oauth/access_token",  # the code
        f"/{VERSION}/oauth/access_token",  # the long-lived user token
        f"/{VERSION}/me/accounts",
        f"/{VERSION}/me",  # the Page token checked as a pasted one is
    ]
    exchange = login_graph.server.requests[1]
    assert exchange.param("grant_type") == "fb_exchange_token"
    assert "access_token" in login_graph.server.requests[2].param("fields")


def test_a_refused_or_forged_login_connects_nothing(
    login_graph: GraphApi, client: Any, workspace: Workspace, owner: User
) -> None:
    client.force_login(owner)
    params = dict(start_login(client, workspace, login_graph).params)
    refused = client.get(
        params["redirect_uri"],
        {"error": "access_denied", "error_reason": "user_denied", "state": params["state"]},
        follow=True,
    )
    params = dict(start_login(client, workspace, login_graph).params)
    forged = client.get(params["redirect_uri"], {"code": "c", "state": "forged"}, follow=True)

    assert "Access was not approved on Facebook" in refused.content.decode()
    assert "expired or was started elsewhere" in forged.content.decode()
    assert not ConnectedAccount.objects.in_workspace(workspace.pk).exists()
    assert login_graph.server.requests == []


def test_facebook_login_needs_an_app(client: Any, workspace: Workspace, owner: User) -> None:
    """No app on the form and none configured for the deployment: said so, nothing started."""
    client.force_login(owner)

    response = client.post(
        reverse("connect_facebook_login", args=[workspace.slug]), {"app_id": "", "app_secret": ""}
    )

    assert response.status_code == 400
    assert "app ID and app secret of your Meta app" in response.content.decode()


def test_the_login_dialog_address_is_configuration(settings: Any) -> None:
    settings.RELAIS = {**settings.RELAIS, "FACEBOOK_DIALOG_BASE": "http://127.0.0.1:9/"}
    address, _pending = facebook_start_login(
        APP_ID, "s", redirect_uri="http://r", graph=f"https://graph.facebook.com/{VERSION}"
    )
    assert address.startswith(f"http://127.0.0.1:9/{VERSION}/dialog/oauth?client_id={APP_ID}&")


def test_a_user_token_is_refused_clearly(
    graph: GraphApi, workspace: Workspace, owner: User, client: Any
) -> None:
    graph.server.script(f"/{VERSION}/me", 400, fixture("responses.json")["me_user"])
    client.force_login(owner)

    response = client.post(
        reverse("connect_facebook", args=[workspace.slug]),
        {"page_access_token": "EAAuser", "graph_base": graph.server.url, "graph_version": VERSION},
    )

    assert response.status_code == 400
    assert "not a Page access token" in response.content.decode()
    assert not ConnectedAccount.objects.in_workspace(workspace.pk).exists()


def test_the_graph_version_is_configuration(settings: Any) -> None:
    assert graph_address({}) == f"https://graph.facebook.com/{DEFAULT_GRAPH_VERSION}"
    settings.RELAIS = {**settings.RELAIS, "FACEBOOK_GRAPH_VERSION": "v25.0"}
    assert graph_address({}) == "https://graph.facebook.com/v25.0"
    assert graph_address({"graph_version": "v23.0", "graph_base": "http://127.0.0.1:1/"}) == (
        "http://127.0.0.1:1/v23.0"
    )


# -- reading ------------------------------------------------------------------------------------


def test_page_posts_comments_and_messenger_become_conversations(
    page_accounts: list[ConnectedAccount], graph: GraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    facebook = page_accounts[0]
    with caplog.at_level(logging.WARNING):
        page = page_connector(facebook, graph).fetch(None)
    do_ingest_items(facebook.workspace_id, "facebook", page.items)

    assert page.skipped == 1  # the comment without ``from``, logged whole
    assert "Et le mercredi" in caplog.text
    assert page.cursor == {"since": "2026-11-20T10:15:00+00:00"}
    own = Post.objects.get(remote_id=f"{PAGE_ID}_122145678901234567")
    assert own.direction == "outbound"
    question = Post.objects.get(remote_id="122145678901234567_1054321987654321")
    assert (question.kind, question.author.name) == (PostKind.COMMENT, "Camille Martin")
    answer = Post.objects.get(remote_id="122145678901234567_1054321987650002")
    assert answer.in_reply_to_remote_id == question.remote_id
    keys = set(
        Conversation.objects.in_workspace(facebook.workspace_id).values_list(
            "thread_key", flat=True
        )
    )
    assert f"{PAGE_ID}_122146000000000001" in keys  # a visitor's post on the Page
    assert "dm:7216549873210456" in keys  # Messenger
    dm = Post.objects.get(remote_id__startswith="m_Zz9")
    assert dm.kind == PostKind.PRIVATE_MESSAGE
    feed = graph.server.served(f"/{VERSION}/{PAGE_ID}/feed")[0]
    assert "comments.filter(stream).order(reverse_chronological)" in feed.param("fields")


def test_the_cursor_keeps_only_what_is_new(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    first = page_connector(page_accounts[0], graph).fetch(None)
    again = page_connector(page_accounts[0], graph).fetch(json.loads(json.dumps(first.cursor)))

    assert [i.remote_id for i in again.items] == [first.items[-1].remote_id]  # same second only
    assert again.cursor == first.cursor


def test_instagram_media_comments_and_direct_messages(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    instagram = page_accounts[1]
    page = page_connector(instagram, graph).fetch(None)
    do_ingest_items(instagram.workspace_id, "instagram", page.items)

    media = Post.objects.get(remote_id="18027939643490612")
    assert (media.direction, media.metrics) == ("outbound", {"likes": 87, "replies": 3})
    question = Post.objects.get(remote_id="17865432109876543")
    assert (question.author.handle, question.in_reply_to_remote_id) == (
        "lea.photos",
        media.remote_id,
    )
    brand_answer = Post.objects.get(remote_id="17901234567890123")
    assert brand_answer.direction == "outbound"
    keys = set(
        Conversation.objects.in_workspace(instagram.workspace_id).values_list(
            "thread_key", flat=True
        )
    )
    assert {"18027939643490612", "dm:6543219870123456"} <= keys
    assert (
        graph.server.served(f"/{VERSION}/{PAGE_ID}/conversations")[0].param("platform")
        == "instagram"
    )


def test_an_invalidated_token_makes_the_account_reconnect_needed(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.token = "a-new-one-after-a-password-change"

    do_poll_account(page_accounts[0].pk)

    page_accounts[0].refresh_from_db()
    assert page_accounts[0].status == AccountStatus.RECONNECT_NEEDED
    assert "#190" in page_accounts[0].last_error
    assert TOKEN not in page_accounts[0].last_error


def test_a_rate_limit_waits_the_announced_time(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    usage = {PAGE_ID: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 1}]}
    graph.server.script(
        f"/{VERSION}/{PAGE_ID}/feed",
        400,
        fixture("responses.json")["errors"]["rate_limited"],
        {"X-Business-Use-Case-Usage": json.dumps(usage)},
    )
    sleeps: list[float] = []

    page = page_connector(page_accounts[0], graph, sleeps).fetch(None)

    assert sleeps == [60.0]
    assert len(page.items) == 8


def test_a_long_rate_limit_gives_up_with_the_wait(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    usage = {PAGE_ID: [{"type": "pages", "estimated_time_to_regain_access": 30}]}
    graph.server.script(
        f"/{VERSION}/{PAGE_ID}/feed",
        400,
        fixture("responses.json")["errors"]["rate_limited"],
        {"X-Business-Use-Case-Usage": json.dumps(usage)},
    )

    with pytest.raises(RateLimitedError, match="#32") as caught:
        page_connector(page_accounts[0], graph).fetch(None)

    assert caught.value.retry_after == 1800.0


def test_a_temporary_graph_error_is_retried(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.server.script(
        f"/{VERSION}/{PAGE_ID}/conversations", 500, fixture("responses.json")["errors"]["temporary"]
    )
    sleeps: list[float] = []

    page = page_connector(page_accounts[0], graph, sleeps).fetch(None)

    assert len(sleeps) == 1
    assert any(i.kind == PostKind.PRIVATE_MESSAGE for i in page.items)


def test_the_app_secret_proof_is_sent_when_configured(
    settings: Any, workspace: Workspace, owner: User
) -> None:
    settings.RELAIS = {**settings.RELAIS, "FACEBOOK_APP_SECRET": APP_SECRET}
    graph = GraphApi(secret=APP_SECRET)
    try:
        accounts = do_connect_facebook_page(
            workspace, TOKEN, actor=owner, graph_base=graph.server.url, graph_version=VERSION
        )
        page_connector(accounts[0], graph).fetch(None)
        assert graph.server.violations == []
        proofs = {r.param("appsecret_proof") for r in graph.server.requests}
        assert proofs == {appsecret_proof(TOKEN, APP_SECRET)}
    finally:
        graph.server.close()


# -- acting -------------------------------------------------------------------------------------


def _conversation(graph: GraphApi, account: ConnectedAccount, key: str) -> Conversation:
    do_ingest_items(
        account.workspace_id, account.network, page_connector(account, graph).fetch(None).items
    )
    return Conversation.objects.in_workspace(account.workspace_id).get(thread_key=key)


def test_a_reply_is_a_comment_in_the_customers_thread(
    page_accounts: list[ConnectedAccount], graph: GraphApi, owner: User
) -> None:
    conversation = _conversation(graph, page_accounts[0], f"{PAGE_ID}_122146000000000001")

    post = do_send_reply(
        owner, conversation, "Bonjour Jonas, nous regardons tout de suite.", idempotency_key="fb-1"
    )

    request = graph.server.served(f"/{VERSION}/{PAGE_ID}_122146000000000001/comments")[0]
    assert request.form() == {"message": "Bonjour Jonas, nous regardons tout de suite."}
    assert post.remote_id == fixture("responses.json")["comment_created"]["id"]


def test_a_private_reply_goes_through_the_send_api(
    page_accounts: list[ConnectedAccount], graph: GraphApi, owner: User
) -> None:
    conversation = _conversation(graph, page_accounts[0], "dm:7216549873210456")

    do_send_reply(owner, conversation, "À samedi !", idempotency_key="fb-dm-1", private=True)

    body = graph.server.served(f"/{VERSION}/{PAGE_ID}/messages")[0].json()
    assert body == {
        "recipient": {"id": "7216549873210456"},
        "messaging_type": "RESPONSE",
        "message": {"text": "À samedi !"},
    }


def test_a_message_outside_the_24_hour_window_is_a_clear_error(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.server.script(
        f"/{VERSION}/{PAGE_ID}/messages", 400, fixture("responses.json")["errors"]["outside_window"]
    )
    brand = page_connector(page_accounts[0], graph)

    with pytest.raises(UnsupportedError, match="outside of allowed window"):
        brand.send_private_message(
            OutboundPost(text="Hello", kind=PostKind.PRIVATE_MESSAGE, recipient="7216549873210456"),
            idempotency_key="late",
        )

    assert len(graph.server.served(f"/{VERSION}/{PAGE_ID}/messages")) == 1


def test_publish_metrics_and_delete_on_the_page(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    brand = page_connector(page_accounts[0], graph)

    sent = brand.publish(OutboundPost(text="Fermé le 25 décembre."), idempotency_key="p-1")
    counts = brand.metrics(f"{PAGE_ID}_122145678901234567")
    brand.delete(sent.remote_id)

    assert sent.remote_id == fixture("responses.json")["post_created"]["id"]
    assert graph.server.served(f"/{VERSION}/{PAGE_ID}/feed")[-1].form() == {
        "message": "Fermé le 25 décembre."
    }
    assert counts == {"likes": 42, "replies": 4, "reposts": 3}
    assert graph.deleted == [sent.remote_id]


def test_an_instagram_reply_answers_the_comment(
    page_accounts: list[ConnectedAccount], graph: GraphApi, owner: User
) -> None:
    conversation = _conversation(graph, page_accounts[1], "18027939643490612")

    do_send_reply(owner, conversation, "Oui, avec livraison le samedi.", idempotency_key="ig-1")

    request = graph.server.served(f"/{VERSION}/17855555555555555/replies")[0]
    assert request.form() == {"message": "Oui, avec livraison le samedi."}


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.mark.parametrize(
    ("media", "refusal"),
    [
        ((), "needs an image"),
        ((MediaFile("lid.png", "image/png", b"\x89PNG", url="https://r.test/l/m"),), "JPEG"),
        ((MediaFile("lid.jpg", "image/jpeg", JPEG),), "RELAIS_PUBLIC_URL"),
    ],
)
def test_instagram_says_what_it_cannot_publish(media: Any, refusal: str) -> None:
    brand = InstagramConnector(AccountContext(workspace_id=0, handle="x"))
    with pytest.raises(ConnectorError, match=refusal):
        brand.publish(OutboundPost(text="hi", media=media), idempotency_key="k")


def test_a_composed_post_reaches_instagram_with_its_image_at_relais_address(
    page_accounts: list[ConnectedAccount], graph: GraphApi, owner: User, client: Any, settings: Any
) -> None:
    settings.RELAIS = {**settings.RELAIS, "PUBLIC_URL": "https://relais.example"}
    instagram = page_accounts[1]
    draft = do_create_draft(owner, instagram.workspace_id, CAPTION, [instagram.pk])
    with pytest.raises(ValidationFailedError, match="Instagram needs an image"):
        do_submit_for_approval(owner, draft)
    do_attach_media(owner, draft, "galette.jpg", JPEG, "A galette with its paper crown")

    target = published(owner, draft)

    assert (target.status, target.last_error) == (TargetStatus.PUBLISHED, "")
    assert target.remote_id == graph.published[0]["id"]
    [container] = graph.containers.values()
    assert container["caption"] == CAPTION
    address = urlsplit(container["image_url"])
    assert f"{address.scheme}://{address.netloc}" == "https://relais.example"
    served = client.get(address.path)  # what Meta fetches, no login
    assert (served.status_code, served["Content-Type"]) == (200, "image/jpeg")
    assert served.content == JPEG
    assert client.get(address.path[:-3] + "xyz").status_code == 404  # a forged address


# -- Instagram content publishing -------------------------------------------------------------

IMAGE_URL = "https://cdn.boulangerie-acme.fr/galette-2027.jpg"
CAPTION = "La galette 2027 est arrivée 👑 #epiphanie @lea.photos"


def instagram_publisher(
    account: ConnectedAccount, graph: GraphApi, *, timeout: float = 5.0
) -> tuple[InstagramConnector, list[float]]:
    """The Instagram connector with a client that answers late calls with a timeout."""
    sleeps: list[float] = []
    http = GraphHttpClient(
        base_url=graph_address(account.settings),
        timeout=httpx.Timeout(timeout),
        sleep=sleeps.append,
    )
    built = connector_for(account)
    assert isinstance(built, InstagramConnector)
    built.http, built.sleep = http, sleeps.append
    return built, sleeps


def test_an_image_is_published_through_a_container(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.container_statuses = ["IN_PROGRESS", "FINISHED"]
    brand, sleeps = instagram_publisher(page_accounts[1], graph)

    ref = brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-1")

    assert ref.remote_id == graph.published[0]["id"]
    container = graph.server.served(f"/{VERSION}/{IG_ID}/media_publish")[0].form()["creation_id"]
    assert graph.containers[container]["image_url"] == IMAGE_URL
    assert graph.containers[container]["caption"] == CAPTION
    assert sleeps == [5.0]  # one wait while Meta prepared the image
    order = [r.path.rsplit("/", 1)[-1] for r in graph.server.requests if r.method == "POST"]
    assert order == ["media", "media_publish"]
    reads = [r.path.rsplit("/", 1)[-1] for r in graph.server.requests if r.method == "GET"]
    assert reads[1:3] == ["media", "content_publishing_limit"]  # (after connecting) no twin


def test_a_publish_that_timed_out_but_went_through_is_not_published_twice(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.server.delay_next(f"/{VERSION}/{IG_ID}/media_publish", 1.5)  # Meta publishes, late
    brand, _sleeps = instagram_publisher(page_accounts[1], graph, timeout=0.5)

    first = brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-2")
    again = brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-2")  # a task retry

    assert len(graph.published) == 1
    assert first.remote_id == again.remote_id == graph.published[0]["id"]
    assert len(graph.server.served(f"/{VERSION}/{IG_ID}/media_publish")) == 1
    assert len(graph.containers) == 1  # the retry found the post before making a container


def test_the_publishing_limit_is_checked_before_anything_is_made(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.quota_usage = graph.quota_total
    brand, _sleeps = instagram_publisher(page_accounts[1], graph)

    with pytest.raises(RateLimitedError, match="limit \\(25\\)"):
        brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-3")

    assert graph.containers == {}


def test_metas_own_limit_error_is_a_rate_limit(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    """Another app may have published meanwhile: Meta's error 9 on publish is a rate limit."""
    limit_error = fixture("responses.json")["errors"]["ig_publishing_limit_reached"]
    graph.server.script(f"/{VERSION}/{IG_ID}/media_publish", 400, limit_error)
    brand, _sleeps = instagram_publisher(page_accounts[1], graph)

    with pytest.raises(RateLimitedError, match="maximum number of posts"):
        brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-4")

    assert graph.published == []


def test_an_image_meta_cannot_use_fails_clearly(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    graph.container_statuses = ["ERROR"]
    brand, _sleeps = instagram_publisher(page_accounts[1], graph)

    with pytest.raises(ConnectorError, match="could not use the image \\(ERROR\\)"):
        brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-5")
    graph.server.script(
        f"/{VERSION}/{IG_ID}/media",
        400,
        fixture("responses.json")["errors"]["ig_image_not_fetched"],
    )
    with pytest.raises(ConnectorError, match="could not be fetched") as refused:
        brand.publish_image(IMAGE_URL, CAPTION + " !", idempotency_key="target-6")

    assert not refused.value.retryable
    assert graph.published == []


def test_an_image_still_being_prepared_is_a_transient_error(
    page_accounts: list[ConnectedAccount], graph: GraphApi
) -> None:
    """Meta never finished the container: retried later (the caption look-up avoids twins)."""
    graph.container_statuses = ["IN_PROGRESS"]
    brand, sleeps = instagram_publisher(page_accounts[1], graph)

    with pytest.raises(TransientNetworkError, match="still preparing"):
        brand.publish_image(IMAGE_URL, CAPTION, idempotency_key="target-8")

    assert sleeps == [5.0] * 5  # six status reads, five waits between them
    assert graph.published == []


@pytest.mark.parametrize(
    ("image_url", "caption", "reason"),
    [
        (IMAGE_URL, "a" * 2201, "2200 characters"),
        (IMAGE_URL, " ".join(f"#tag{n}" for n in range(31)), "30 hashtags"),
        (IMAGE_URL, " ".join(f"@fan{n}" for n in range(21)), "20 @mentions"),
        ("", "no image", "public http"),
        ("file:///srv/galette.jpg", "not public", "public http"),
    ],
)
def test_instagrams_limits_are_checked_before_calling(
    image_url: str,
    caption: str,
    reason: str,
    page_accounts: list[ConnectedAccount],
    graph: GraphApi,
) -> None:
    brand, _sleeps = instagram_publisher(page_accounts[1], graph)
    requests_before = len(graph.server.requests)

    with pytest.raises(ConnectorError, match=reason):
        brand.publish_image(image_url, caption, idempotency_key="target-7")

    assert len(graph.server.requests) == requests_before


def test_graph_times_are_read() -> None:
    assert parse_time("2026-11-20T09:00:03+0000").isoformat() == "2026-11-20T09:00:03+00:00"
    assert parse_time(1732095598).isoformat() == "2024-11-20T09:39:58+00:00"
    assert parse_time(1732096799871).isoformat() == "2024-11-20T09:59:59.871000+00:00"


# -- the webhook --------------------------------------------------------------------------------


def signed(payload: Any) -> tuple[bytes, str]:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return body, "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def meta_app(settings: Any, db: None) -> None:
    settings.RELAIS = {
        **settings.RELAIS,
        "FACEBOOK_APP_SECRET": APP_SECRET,
        "FACEBOOK_VERIFY_TOKEN": VERIFY_TOKEN,
    }


def post_event(client: Any, payload: Any, signature: str | None = None) -> Any:
    body, good = signed(payload)
    return client.post(
        "/hooks/meta/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": good if signature is None else signature},
    )


def test_the_subscription_check_answers_the_challenge(client: Any, meta_app: None) -> None:
    ok = client.get(
        "/hooks/meta/",
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    wrong = client.get(
        "/hooks/meta/", {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    )

    assert (ok.status_code, ok.content) == (200, b"1158201444")
    assert wrong.status_code == 403


def test_signed_events_reach_the_inbox(
    client: Any,
    meta_app: None,
    page_accounts: list[ConnectedAccount],
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    events = fixture("webhooks.json")
    names = ("feed_comment", "feed_reaction", "messenger", "instagram_comment", "instagram_message")
    # The pipeline stores the accepted batches once the request's transaction commits.
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        answers = [post_event(client, events[name]) for name in names]

    assert [a.status_code for a in answers] == [200] * 5
    assert "m_BROKEN" in caplog.text  # the messaging event without a sender, logged whole
    comment = Post.objects.get(remote_id="122145678901234567_1054321987659999")
    assert (comment.kind, comment.author.name) == (PostKind.COMMENT, "Jonas Weber")
    message = Post.objects.get(remote_id="m_NEWmessage1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")
    assert message.kind == PostKind.PRIVATE_MESSAGE
    echo = Post.objects.get(remote_id="m_ECHO2AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")
    assert echo.direction == "outbound"
    ig_comment = Post.objects.get(remote_id="17877777777777777")
    assert (ig_comment.network, ig_comment.in_reply_to_remote_id) == (
        "instagram",
        "17865432109876543",
    )
    assert Post.objects.filter(network="instagram", kind=PostKind.PRIVATE_MESSAGE).count() == 1
    stored = list(WebhookEvent.objects.order_by("pk").values_list("status", "items", "error"))
    assert stored == [
        ("accepted", 1, ""),
        ("accepted", 0, ""),  # a reaction: nothing to store
        ("accepted", 2, "1 malformed part(s) skipped, logged"),
        ("accepted", 1, ""),
        ("accepted", 1, ""),
    ]


@pytest.mark.usefixtures("meta_app")
def test_events_of_a_workspaces_own_meta_app_are_signed_with_its_secret(
    client: Any,
    login_graph: GraphApi,
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Connected through Facebook Login with its own app: that app signs the Page's events."""
    do_connect_facebook_page(
        workspace,
        TOKEN,
        actor=None,
        graph_base=login_graph.server.url,
        graph_version=VERSION,
        app_secret=WORKSPACE_APP_SECRET,
    )
    body = json.dumps(fixture("webhooks.json")["feed_comment"]).encode()
    by_its_app = hmac.new(WORKSPACE_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    by_another = hmac.new(b"another-apps-secret", body, hashlib.sha256).hexdigest()

    with django_capture_on_commit_callbacks(execute=True):
        signed_by_its_app = post_event(client, body, signature=f"sha256={by_its_app}")
    signed_by_another = post_event(client, body, signature=f"sha256={by_another}")
    not_json = post_event(client, b"[1]", signature=f"sha256={by_another}")

    assert (signed_by_its_app.status_code, signed_by_another.status_code) == (200, 403)
    assert not_json.status_code == 403
    assert Post.objects.filter(remote_id="122145678901234567_1054321987659999").exists()
    assert WebhookEvent.objects.count() == 1


def test_a_bad_signature_is_refused_and_not_stored(client: Any, meta_app: None) -> None:
    events = fixture("webhooks.json")

    forged = post_event(client, events["messenger"], signature="sha256=" + "0" * 64)
    unsigned = client.post(
        "/hooks/meta/", json.dumps(events["messenger"]), content_type="application/json"
    )

    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert not WebhookEvent.objects.exists()
    assert not PendingBatch.objects.exists()


def test_a_signed_body_that_is_not_an_event_is_kept_and_answered_400(
    client: Any, meta_app: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        not_json = post_event(client, b"{'object': 'page'")
        not_meta = post_event(client, {"object": "user", "entry": []})

    assert (not_json.status_code, not_meta.status_code) == (400, 400)
    assert "not JSON" in not_json.content.decode()
    kept = list(WebhookEvent.objects.order_by("pk"))
    assert [e.status for e in kept] == [WebhookEventStatus.REJECTED] * 2
    assert kept[0].body == "{'object': 'page'"  # the raw body, to study or replay
    assert "{'object': 'page'" in caplog.text


def test_an_event_for_no_connected_page_is_kept_unmatched(client: Any, meta_app: None) -> None:
    answer = post_event(client, fixture("webhooks.json")["unknown_page"])

    assert answer.status_code == 200
    assert WebhookEvent.objects.get().status == WebhookEventStatus.UNMATCHED


def test_events_stored_but_never_read_are_read_later(
    meta_app: None, page_accounts: list[ConnectedAccount]
) -> None:
    body, signature = signed(fixture("webhooks.json")["feed_comment"])
    WebhookEvent.objects.create(
        network="meta", body=body.decode(), signature=signature
    )  # a crash after storing

    assert do_process_pending_webhook_events() == 0  # its request may still be reading it
    later = clock.now() + timedelta(minutes=2)
    assert do_process_pending_webhook_events(now=later) == 1
    assert do_process_pending_webhook_events(now=later) == 0
    assert WebhookEvent.objects.get().status == WebhookEventStatus.ACCEPTED
    batch = PendingBatch.objects.get()  # handed to the pipeline, stored by a worker after commit
    assert batch.items[0]["remote_id"] == "122145678901234567_1054321987659999"


# -- the real API, opt in -----------------------------------------------------------------------

LIVE_TOKEN = os.environ.get("RELAIS_FACEBOOK_PAGE_TOKEN", "")


@pytest.mark.skipif(not LIVE_TOKEN, reason="set RELAIS_FACEBOOK_PAGE_TOKEN (a Page access token)")
def test_live_the_real_graph_api_reads_the_page(workspace: Workspace, owner: User) -> None:
    """Reads (never writes) the Page the token speaks for, its feed and conversations."""
    accounts = do_connect_facebook_page(workspace, LIVE_TOKEN, actor=owner, with_instagram=False)
    connector = connector_for(accounts[0])
    assert isinstance(connector, FacebookPageConnector)

    page = connector.fetch(None)

    assert all(item.created_at.tzinfo for item in page.items)
    assert page.skipped == 0
