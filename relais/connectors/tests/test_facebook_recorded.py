"""The Facebook Page and Instagram connectors against REAL Graph answers and Messenger webhook
bodies captured by other projects (fixtures/facebook/recorded; SOURCES.md says where from, and
why they are taken as real though none is a VCR recording).

Graph answers are served by the contract server on the paths the connectors call, every request
still checked against Meta's published object specs (facebook-business); every recorded object is
checked against the spec of its node where the SDK has one (``spec_shape``), and the difference
found is listed in ``DRIFT``. Webhook bodies have no spec: they go through the real webhook view,
signed as Meta signs them. Where an envelope had to be made around recorded objects (a
conversation with its messages, an empty conversation list), the test says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from facebook_business.adobjects.comment import Comment
from facebook_business.adobjects.contentpublishinglimitresponse import (
    ContentPublishingLimitResponse,
)
from facebook_business.adobjects.igcomment import IGComment
from facebook_business.adobjects.igmedia import IGMedia
from facebook_business.adobjects.iguser import IGUser
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.pagepost import PagePost
from facebook_business.adobjects.shadowigmediabuilder import ShadowIGMediaBuilder
from facebook_business.adobjects.unifiedthread import UnifiedThread

from relais.accounts.models import Workspace
from relais.connectors.base import AccountContext, ConnectorError, PostKind, UnsupportedError
from relais.connectors.credentials import encrypt_credentials
from relais.connectors.models import ConnectedAccount, WebhookEvent
from relais.connectors.networks.facebook import (
    FacebookPageConnector,
    GraphHttpClient,
    InstagramConnector,
    PendingLogin,
    finish_login,
    graph_address,
)
from relais.connectors.payloads import MalformedPayloadError
from relais.connectors.registry import connector_for
from relais.connectors.tests.contract_server import Answer, ContractServer, Endpoint, Request
from relais.connectors.tests.graph_published_spec import (
    Shape,
    field_problems,
    form_problems,
    object_problems,
)
from relais.pipeline.models import Post

RECORDED = Path(__file__).parent / "fixtures" / "facebook" / "recorded"
VERSION = "v26.0"
TOKEN = "recorded-answers-page-token"
APP_SECRET = "recorded-answers-app-secret"
MY_LIFE = "2121008874780932"  # the Page whose inbox python-facebook's author captured
IG_USER = "17841406338772941"  # the Instagram account of the recorded media
BOTMAN_PAGE = "111899832631525"  # the Page of BotMan's captured webhooks

SHAPES: dict[str, Shape] = {
    "PagePost": PagePost,
    "Comment": Comment,
    "UnifiedThread": UnifiedThread,
    "message": "message",
    "Page": Page,
    "IGMedia": IGMedia,
    "IGComment": IGComment,
    "ContentPublishingLimitResponse": ContentPublishingLimitResponse,
    "ShadowIGMediaBuilder": ShadowIGMediaBuilder,
}

# Where the real answers differ from Meta's published specs (facebook-business 26.0.3): the
# Pages of /me/accounts carry the admin's ``tasks`` on each, a field of the user-Page relation
# that the Page node does not declare.
DRIFT = {"me_accounts": {"Page has no field 'tasks'"}}


def recording(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDED / f"{name}.json").read_text()))


def recordings() -> dict[str, dict[str, Any]]:
    return {path.stem: recording(path.stem) for path in sorted(RECORDED.glob("*.json"))}


def objects_of(name: str, body: Any) -> list[Any]:
    """The Graph objects of an answer: an edge's ``data``, an ``?ids=`` map's values, or one."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return list(body["data"])
    if name in {"fb_messages", "ig_comments_by_id"}:
        return list(body.values())
    return [body]


# -- the recordings themselves ------------------------------------------------------------------


def test_every_recording_says_where_it_comes_from() -> None:
    found = recordings()

    assert len(found) == 17
    for name, recorded in found.items():
        source = recorded["source"]
        assert source["repository"] in {"sns-sdks/python-facebook", "botman/driver-facebook"}
        assert source["licence"] == (
            "Apache-2.0" if source["repository"] == "sns-sdks/python-facebook" else "MIT"
        )
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), name
        assert recorded["request"]["known_from"], name
        assert recorded["spec_shape"] in {None, *SHAPES}, name
    sources = (RECORDED / "SOURCES.md").read_text()
    assert all(f"`{name}.json`" in sources for name in found)


def test_the_real_answers_against_the_published_specs() -> None:
    """Every recorded object checked against its node's spec: the drift is exactly DRIFT."""
    drift: dict[str, set[str]] = {}
    checked = 0
    for name, recorded in recordings().items():
        if recorded["spec_shape"] is None:
            continue
        shape = SHAPES[recorded["spec_shape"]]
        problems = {
            problem
            for row in objects_of(name, recorded["body"])
            for problem in object_problems(row, shape)
        }
        checked += 1
        if problems:
            drift[name] = problems
    assert checked == 11
    assert drift == DRIFT


def test_what_the_real_answers_show_that_the_specs_leave_loose() -> None:
    # Graph times carry "+0000"; a container's status is Meta's own sentence.
    posts = recording("fb_page_posts")["body"]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", p["created_time"])
        for p in posts["data"]
    )
    assert set(posts["paging"]) == {"previous", "next"}  # a feed pages by time, not by cursors
    media = recording("ig_media")["body"]
    assert set(media["paging"]) == {"cursors", "next"}  # Instagram edges page by cursors
    status = recording("ig_container_status")["body"]
    assert status["status_code"] == "FINISHED"
    assert status["status"].startswith("Finished:")
    # Only the fields asked for come back: no caption unless asked, no comment author unless
    # asked (Instagram's /comments default is id, text, timestamp).
    assert all("caption" not in m for m in media["data"])
    assert all(
        set(c) == {"id", "text", "timestamp"}
        for c in recording("ig_media_comments")["body"]["data"]
    )
    # A Messenger message's sender carries a Facebook proxy address, not only id and name.
    messages = recording("fb_messages")["body"].values()
    assert all(set(m["from"]) == {"id", "name", "email"} for m in messages)
    error = recording("error_permission")["body"]["error"]
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["fbtrace_id"]


# -- a Graph server answering with the recordings ------------------------------------------------


def fields_of(shape: Shape) -> Callable[[Request], list[str]]:
    def check(request: Request) -> list[str]:
        return field_problems(request.param("fields", "id"), shape)

    return check


class RecordedGraph:
    """Answers each (method, path pattern) with a body; requests checked against the specs."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        v = rf"/{VERSION}"
        node = r"[0-9_]+"
        self.server = ContractServer(
            [
                Endpoint("GET", rf"{v}/oauth/access_token", lambda _r: []),
                Endpoint("GET", rf"{v}/me/accounts", fields_of(Page)),
                Endpoint("GET", rf"{v}/me", fields_of(Page), self.authorized),
                Endpoint("GET", rf"{v}/{node}/feed", fields_of(PagePost), self.authorized),
                Endpoint(
                    "GET", rf"{v}/{node}/conversations", fields_of(UnifiedThread), self.authorized
                ),
                Endpoint("GET", rf"{v}/{node}/media", fields_of(IGMedia), self.authorized),
                Endpoint(
                    "GET",
                    rf"{v}/{node}/content_publishing_limit",
                    fields_of(ContentPublishingLimitResponse),
                    self.authorized,
                ),
                Endpoint(
                    "POST",
                    rf"{v}/{node}/media",
                    lambda r: form_problems(r.form(), IGUser, "create_media"),
                    self.authorized,
                ),
                Endpoint(
                    "POST",
                    rf"{v}/{node}/media_publish",
                    lambda r: form_problems(r.form(), IGUser, "create_media_publish"),
                    self.authorized,
                ),
                Endpoint("GET", rf"{v}/{node}", fields_of(ShadowIGMediaBuilder), self.authorized),
            ],
            self.route,
        )

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def route(self, request: Request) -> Answer:
        for (method, pattern), answer in self.answers.items():
            if method == request.method and re.fullmatch(rf"/{VERSION}{pattern}", request.path):
                if isinstance(answer, tuple):
                    return answer
                return 200, {}, answer
        self.server.violations.append(f"no recording for {request.method} {request.path}")
        return 404, {}, {"error": {"message": "unknown path", "code": 803}}


@pytest.fixture
def served() -> Iterator[dict[str, RecordedGraph]]:
    holder: dict[str, RecordedGraph] = {}
    yield holder
    for api in holder.values():
        api.server.close()
        assert api.server.violations == []


def graph_account(
    workspace: Workspace, api: RecordedGraph, network: str, handle: str, **settings: Any
) -> ConnectedAccount:
    return ConnectedAccount.objects.create(
        workspace=workspace,
        network=network,
        handle=handle,
        settings={"graph_base": api.server.url, "graph_version": VERSION, **settings},
        credentials=encrypt_credentials({"page_access_token": TOKEN}),
    )


def built(account: ConnectedAccount) -> Any:
    connector = connector_for(account)
    connector.http = GraphHttpClient(  # type: ignore[attr-defined]
        base_url=graph_address(account.settings), sleep=lambda _seconds: None
    )
    return connector


# -- the connectors on the recorded answers -----------------------------------------------------


def test_messenger_messages_and_feed_posts_as_graph_sent_them(
    served: dict[str, RecordedGraph], workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    """The Page's inbox: two real messages (a photo and a video, no text) of a recorded
    conversation; the envelope around them (a conversations edge holding that conversation with
    those messages) is ours. The recorded feed was read without ``from``: each post is logged
    whole and skipped, the messages still arrive."""
    conversation = {
        **recording("fb_conversation")["body"],
        "messages": {"data": list(recording("fb_messages")["body"].values())},
    }
    api = served["graph"] = RecordedGraph(
        {
            ("GET", rf"/{MY_LIFE}/feed"): recording("fb_page_posts")["body"],
            ("GET", rf"/{MY_LIFE}/conversations"): {"data": [conversation]},
        }
    )
    account = graph_account(workspace, api, "facebook", "mylife", page_id=MY_LIFE, name="MyLife")

    with caplog.at_level(logging.WARNING):
        page = built(account).fetch(None)

    assert page.skipped == 5  # the feed's five posts, without the author asked for
    assert "4_10113477241177441" in caplog.text
    assert [(i.kind, i.text) for i in page.items] == [
        (PostKind.PRIVATE_MESSAGE, "[image]"),
        (PostKind.PRIVATE_MESSAGE, "[video]"),
    ]
    first = page.items[0]
    assert first.remote_id.startswith("m_ToF35NI1OImBjyUIgplSaBMylUFmkYY4bHogy9C1otLISU6SGhccB5NK")
    assert (first.author.remote_id, first.author.name) == ("2711636948859886", "Kun Liu")
    assert first.created_at == datetime(2021, 7, 23, 9, 50, 48, tzinfo=UTC)
    assert first.raw == {"recipient": "mylife"}
    assert page.cursor == {"since": "2021-07-23T10:24:23+00:00"}
    asked = api.server.served(f"/{VERSION}/{MY_LIFE}/conversations")[0]
    assert "attachments" in asked.param("fields")  # what says what a text-less message was


def test_instagram_media_as_graph_sent_them(
    served: dict[str, RecordedGraph], workspace: Workspace
) -> None:
    """The account's real media page (no caption or comments were asked for when it was
    recorded); the empty Direct conversation list answered with it is ours."""
    api = served["graph"] = RecordedGraph(
        {
            ("GET", rf"/{IG_USER}/media"): recording("ig_media")["body"],
            ("GET", rf"/{MY_LIFE}/conversations"): {"data": []},
        }
    )
    account = graph_account(
        workspace, api, "instagram", "mylife.ig", page_id=MY_LIFE, ig_user_id=IG_USER
    )

    page = built(account).fetch(None)

    assert [(i.remote_id, i.kind, i.text, i.metrics) for i in page.items] == [
        ("17896622936197745", PostKind.POST, "", {"likes": 2, "replies": 6}),
        ("17895731045244887", PostKind.POST, "", {"likes": 0, "replies": 0}),
    ]
    assert page.items[1].raw == {"url": "https://www.instagram.com/p/CSgf9BChwVq/"}
    assert page.cursor == {"since": "2021-08-13T08:25:28+00:00"}
    assert len(api.server.served(f"/{VERSION}/{IG_USER}/media")) == 1  # one page, as designed


def test_instagram_comments_as_graph_sent_them(workspace: Workspace) -> None:
    """Real comments read with ``username`` become items by that person; the default shape
    (id, text, timestamp: no author) cannot, and is refused as malformed."""
    connector = InstagramConnector(
        AccountContext(workspace_id=workspace.pk, handle="ikroskun", settings={"ig_user_id": "1"})
    )
    by_id = recording("ig_comments_by_id")["body"]

    items = [connector.comment_item(c, "17846368219941692") for c in by_id.values()]

    assert [(i.remote_id, i.author.handle, i.text) for i in items] == [
        ("17892250648466172", "ikroskun", "@ikroskun  Hey, guys"),
        ("17858154961981086", "lixiangguodu123", "Beautiful!"),
    ]
    assert items[0].author == connector.own_author()  # the account's own comment
    assert items[1].in_reply_to == "17846368219941692"
    assert items[1].created_at == datetime(2020, 6, 1, 10, 56, 52, tzinfo=UTC)
    for comment in recording("ig_media_comments")["body"]["data"]:
        with pytest.raises(MalformedPayloadError, match="id is missing"):
            connector.comment_item(comment, "17846368219941692")


def test_an_image_is_published_through_the_recorded_container_answers(
    served: dict[str, RecordedGraph], workspace: Workspace
) -> None:
    """Publishing limit, container, its status and the publish, each answered as Meta did."""
    api = served["graph"] = RecordedGraph(
        {
            ("GET", rf"/{IG_USER}/media"): recording("ig_media")["body"],
            ("GET", rf"/{IG_USER}/content_publishing_limit"): recording("ig_publishing_limit")[
                "body"
            ],
            ("POST", rf"/{IG_USER}/media"): recording("ig_container_created")["body"],
            ("POST", rf"/{IG_USER}/media_publish"): recording("ig_media_published")["body"],
            ("GET", r"/17889455560051444"): recording("ig_container_status")["body"],
        }
    )
    account = graph_account(
        workspace, api, "instagram", "mylife.ig", page_id=MY_LIFE, ig_user_id=IG_USER
    )

    ref = built(account).publish_image(
        "https://relais.example/l/media/abc.jpg", "Nouvelle fournée", idempotency_key="k"
    )

    assert ref.remote_id == "17920238422030506"
    paths = [(r.method, r.path.rsplit("/", 1)[1]) for r in api.server.requests]
    assert paths == [
        ("GET", "media"),  # the look-up for an earlier attempt (no recorded caption matches)
        ("GET", "content_publishing_limit"),
        ("POST", "media"),
        ("GET", "17889455560051444"),
        ("POST", "media_publish"),
    ]
    assert api.server.requests[4].form() == {"creation_id": "17889455560051444"}


def test_facebook_login_reads_the_recorded_token_and_pages(
    served: dict[str, RecordedGraph],
) -> None:
    """The recorded long-lived token answer (used for both token calls: the code's answer has
    the same keys) and the recorded /me/accounts with its scrubbed Page token."""
    api = served["graph"] = RecordedGraph(
        {
            ("GET", r"/oauth/access_token"): recording("oauth_long_lived_token")["body"],
            ("GET", r"/me/accounts"): recording("me_accounts")["body"],
        }
    )
    pending = PendingLogin(
        app_id="1234",
        app_secret=APP_SECRET,
        redirect_uri="https://relais.example/done/",
        state="s",
        graph=f"{api.server.url}/{VERSION}",
    )

    pages = finish_login(pending, "AQcode")

    assert [(p["id"], p["name"], p["access_token"]) for p in pages] == [
        (MY_LIFE, "MyLife", "access_token")
    ]
    accounts = api.server.served(f"/{VERSION}/me/accounts")[0]
    assert accounts.headers["authorization"] == "Bearer token"  # the recorded long-lived token
    assert accounts.param("appsecret_proof")
    exchange = api.server.served(f"/{VERSION}/oauth/access_token")[1]
    assert exchange.param("fb_exchange_token") == "token"


def test_a_recorded_graph_error_is_a_clear_refusal(
    served: dict[str, RecordedGraph], workspace: Workspace
) -> None:
    """Graph's real error 100 (a read without the permission): Meta's sentence, not a retry and
    not "reconnect needed" (the token is fine). Served with 400, Graph's status for it."""
    api = served["graph"] = RecordedGraph(
        {("GET", r"/me"): (400, {}, recording("error_permission")["body"])}
    )
    account = graph_account(workspace, api, "facebook", "mylife", page_id=MY_LIFE)
    connector = built(account)
    assert isinstance(connector, FacebookPageConnector)

    with pytest.raises(ConnectorError) as refused:
        connector.page()

    assert not isinstance(refused.value, UnsupportedError)
    assert "(#100) Object does not exist" in str(refused.value)
    assert len(api.server.requests) == 1  # not retried


# -- the webhook, with captured Messenger deliveries --------------------------------------------


@pytest.fixture
def meta_app(settings: Any, db: None) -> None:
    settings.RELAIS = {**settings.RELAIS, "FACEBOOK_APP_SECRET": APP_SECRET}


@pytest.mark.usefixtures("meta_app")
def test_captured_messenger_deliveries_reach_the_inbox(
    client: Any, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    ConnectedAccount.objects.create(
        workspace=workspace,
        network="facebook",
        handle="botmanpage",
        settings={"page_id": BOTMAN_PAGE},
        credentials=encrypt_credentials({"page_access_token": TOKEN}),
    )
    answers = []
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("webhook_messenger_text", "webhook_messenger_nlp"):
            body = json.dumps(recording(name)["body"]).encode()
            signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            answers.append(
                client.post(
                    "/hooks/meta/",
                    body,
                    content_type="application/json",
                    headers={"X-Hub-Signature-256": signature},
                )
            )

    assert [a.status_code for a in answers] == [200, 200]
    assert list(WebhookEvent.objects.order_by("pk").values_list("status", "items")) == [
        ("accepted", 1),
        ("accepted", 1),
    ]
    hello = Post.objects.get(remote_id="mid.1480279487147:4388d3b344")
    assert (hello.kind, hello.text, hello.author.remote_id) == (
        PostKind.PRIVATE_MESSAGE,
        "Hi",
        "1433960459967306",
    )
    assert hello.created_at == datetime(2016, 11, 27, 20, 44, 47, 147000, tzinfo=UTC)
    nlp = Post.objects.get(remote_id="mid.$cAABlxfDuVgpkzP8I5Fem7nAgTm_7")
    assert nlp.text == "bye, see you tomorrow at 4pm"  # Meta's NLP entities ignored, not fatal
    assert nlp.author_id == hello.author_id  # one person
