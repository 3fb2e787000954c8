"""The X connector against RECORDED real answers of X API v2 (fixtures/x/recorded, from tweepy's
cassettes; SOURCES.md says where each comes from).

The contract server answers the connector's requests with the bodies X really sent, while every
request is still checked against X's published OpenAPI document (xdk). Each recorded body is also
validated against that document: where the real answers differ from it, the difference is listed
here (``DRIFT``) and in docs/connectors.md, so a new recording or a new xdk that changes it fails.

The recordings were made without ``tweet.fields``/``expansions``: they hold X's default shapes
(no authors, times, references or metrics). What they prove: the envelopes, pagination metadata,
the write answers, the vocabulary X really uses, and what the connector does with a default-shaped
answer (refuses it loudly instead of dropping every post as malformed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relais.accounts.models import Workspace
from relais.connectors.actions import do_poll_account
from relais.connectors.base import AccountContext, OutboundPost
from relais.connectors.credentials import encrypt_credentials
from relais.connectors.models import ApiUsage, ConnectedAccount
from relais.connectors.networks.x import (
    DEFAULT_PRICES,
    Expansions,
    FieldsIgnoredError,
    XConnector,
    XHttpClient,
    _edit_history,
)
from relais.connectors.registry import connector_for
from relais.connectors.tests.contract_server import Answer, ContractServer, Endpoint, Request
from relais.connectors.tests.x_published_spec import (
    OPERATIONS,
    model_problems,
    operation_for,
    query_problems,
)

RECORDED = Path(__file__).parent / "fixtures" / "x" / "recorded"
TOKEN = "recorded-answers-bearer-token"
TWEEPY_DEV = "1072250532645998596"  # the account tweepy recorded with
TWITTER = "783214"  # @Twitter, whose mentions and posts tweepy read


def recording(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDED / f"{name}.json").read_text()))


def recordings() -> dict[str, dict[str, Any]]:
    return {path.stem: recording(path.stem) for path in sorted(RECORDED.glob("*.json"))}


# Where the real answers differ from X's published document (xdk 0.10.6, "X API v2" 2.167).
# Every recorded post says ``edit_history_tweet_ids``; the document names it
# ``edit_history_post_ids`` and does not declare the older name.
DRIFT = {
    "tweet_lookup": {"data.edit_history_tweet_ids is not declared by Post"},
    "users_mentions": {"data.edit_history_tweet_ids is not declared by Post"},
    "users_tweets": {"data.edit_history_tweet_ids is not declared by Post"},
}


def published_request(request: Request) -> list[str]:
    """The connector's request as X's published document defines it (path, query, body)."""
    operation = operation_for(request.method, request.path)
    if operation is None:
        return [f"{request.method} {request.path} is not in X's published document"]
    problems = query_problems(operation, request.params())
    if operation.request is not None:
        problems += model_problems(operation.request, request.json(), "body.")
    elif request.body:
        problems.append("unexpected body")
    return problems


class RecordedX:
    """Answers each (method, path) with its recording; requests are checked all the same."""

    def __init__(self, answers: dict[tuple[str, str], str]) -> None:
        self.answers = answers
        self.drift: dict[str, set[str]] = {}
        endpoints = [
            Endpoint(o.method, o.pattern, published_request, self.authorized) for o in OPERATIONS
        ]
        self.server = ContractServer(endpoints, self.route)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def route(self, request: Request) -> Answer:
        name = self.answers.get((request.method, request.path))
        if name is None:
            self.server.violations.append(f"no recording for {request.method} {request.path}")
            return 404, {}, {"title": "Not Found Error"}
        recorded = recording(name)
        operation = operation_for(request.method, request.path)
        assert operation is not None
        found = {
            re.sub(r"\.\d+\.", ".", p) for p in model_problems(operation.response, recorded["body"])
        }
        if found:
            self.drift[name] = found
        return recorded["status"], {}, recorded["body"]


@pytest.fixture
def served() -> Iterator[dict[str, RecordedX]]:
    """Start a server with ``served["x"] = RecordedX(...)``; it is closed and checked after."""
    holder: dict[str, RecordedX] = {}
    yield holder
    for api in holder.values():
        api.server.close()
        assert api.server.violations == []
        assert all(found <= DRIFT[name] for name, found in api.drift.items())


def account_for(
    workspace: Workspace, api: RecordedX, *, user_id: str, handle: str, **settings: Any
) -> ConnectedAccount:
    credentials = {"access_token": TOKEN, "expires_at": int(time.time()) + 7200}
    if user_id:
        credentials["user_id"] = user_id
    return ConnectedAccount.objects.create(
        workspace=workspace,
        network="x",
        handle=handle,
        settings={"api_base": api.server.url, "direct_messages": False, **settings},
        credentials=encrypt_credentials(credentials),
    )


def connector(account: ConnectedAccount, api: RecordedX) -> XConnector:
    built = connector_for(account)
    assert isinstance(built, XConnector)
    built.http = XHttpClient(base_url=api.server.url, sleep=lambda _seconds: None)
    return built


def spent(workspace: Workspace) -> dict[str, int]:
    usage = ApiUsage.objects.in_workspace(workspace.pk).filter(network="x").first()
    return dict(usage.by_operation) if usage else {}


# -- the recordings themselves ------------------------------------------------------------------


def test_every_recording_says_where_it_was_recorded() -> None:
    found = recordings()

    assert len(found) == 9
    for name, recorded in found.items():
        source = recorded["source"]
        assert source["repository"] == "tweepy/tweepy", name
        assert source["licence"] == "MIT", name
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), name
        assert source["path"].startswith("cassettes/")
        assert source["path"].endswith(".yaml")
        assert recorded["request"]["host"] == "api.twitter.com"
        assert recorded["recorded"]["date"]
        assert recorded["recorded"]["api_version"]
        assert 200 <= recorded["status"] < 300
        assert operation_for(recorded["request"]["method"], recorded["request"]["path"]), name
    assert "manage_and_lookup" in found["dm_events"]["source"]["path"]
    assert (RECORDED / "SOURCES.md").read_text().count("cassettes/") >= 1


def test_the_real_answers_against_the_published_document() -> None:
    """Every recorded body validated against xdk's response model: the drift is exactly DRIFT."""
    drift = {}
    for name, recorded in recordings().items():
        request = recorded["request"]
        operation = operation_for(request["method"], request["path"])
        assert operation is not None
        problems = {
            re.sub(r"\.\d+\.", ".", p) for p in model_problems(operation.response, recorded["body"])
        }
        if problems:
            drift[name] = problems
        if operation.request is not None:  # what tweepy sent is a valid request too
            assert model_problems(operation.request, request["body"]) == [], name
    assert drift == DRIFT
    posts: list[dict[str, Any]] = []
    for name in ("users_mentions", "users_tweets", "tweet_lookup"):
        data = recording(name)["body"]["data"]
        posts += data if isinstance(data, list) else [data]
    assert len(posts) == 13
    # No real answer uses the document's name; the connector reads both (an edit's first id).
    assert all("edit_history_post_ids" not in post for post in posts)
    assert all(_edit_history(post) == [post["id"]] for post in posts)
    # An answer written before edits existed (2021) has no edit history at all.
    assert set(recording("tweet_create")["body"]["data"]) == {"id", "text"}


def test_the_real_envelopes() -> None:
    """What the document leaves loose, as X really sent it."""
    mentions = recording("users_mentions")["body"]
    assert set(mentions["meta"]) == {"newest_id", "oldest_id", "result_count", "next_token"}
    assert mentions["meta"]["result_count"] == len(mentions["data"]) == 10
    assert mentions["meta"]["newest_id"] == mentions["data"][0]["id"]  # newest first
    assert recording("dm_events")["body"] == {"meta": {"result_count": 0}}  # no "data" when empty
    conversation = recording("dm_events_with_participant")["body"]
    assert set(conversation["meta"]) == {"result_count", "next_token", "previous_token"}
    assert all(set(event) == {"id", "text", "event_type"} for event in conversation["data"])
    assert recording("tweet_delete")["body"] == {"data": {"deleted": True}}


# -- the connector on the recorded answers ------------------------------------------------------


def test_the_connector_learns_who_it_acts_for(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    api = served["x"] = RecordedX({("GET", "/2/users/me"): "users_me"})
    account = account_for(workspace, api, user_id="", handle="tweepydev")

    assert connector(account, api).user_id() == TWEEPY_DEV
    assert spent(workspace) == {"users_read": DEFAULT_PRICES["users_read"]}
    me = api.server.served("/2/users/me")[0]
    assert me.param("user.fields")  # asked; the recording answered the default fields


def test_a_mentions_page_without_the_requested_fields_is_refused_loudly(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    """X's real default shape (id, text, edit_history_tweet_ids) is what an answer looks like
    when X did not apply the request's fields: the poll fails with that reason, the account
    shows it, and the cursor stays instead of ten mentions being dropped as malformed."""
    path = f"/2/users/{TWITTER}/mentions"
    api = served["x"] = RecordedX({("GET", path): "users_mentions"})
    account = account_for(workspace, api, user_id=TWITTER, handle="twitter")

    with pytest.raises(FieldsIgnoredError, match="no author_id on any of 10"):
        connector(account, api).fetch(None)
    report = do_poll_account(account.pk)

    account.refresh_from_db()
    assert report.accepted == 0
    assert "without the fields Relais asked for" in account.last_error
    assert "edit_history_tweet_ids" in account.last_error
    assert not account.cursor  # nothing moved
    request = api.server.served(path)[0]
    assert set(request.param("expansions").split(",")) == {"author_id", "referenced_posts"}
    # X bills the read all the same: two polls, ten posts each.
    assert spent(workspace) == {"posts_read": 2 * 10 * DEFAULT_PRICES["posts_read"]}


def test_an_empty_timeline_and_an_empty_dm_inbox_as_x_sends_them(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    """``{"meta": {"result_count": 0}}`` without ``data`` (recorded on /2/dm_events, and the
    envelope of every empty v2 list): nothing read, nothing charged, the cursors stay empty."""
    api = served["x"] = RecordedX(
        {
            ("GET", f"/2/users/{TWEEPY_DEV}/mentions"): "dm_events",
            ("GET", "/2/dm_events"): "dm_events",
        }
    )
    account = account_for(
        workspace, api, user_id=TWEEPY_DEV, handle="tweepydev", direct_messages=True
    )

    page = connector(account, api).fetch(None)

    assert (page.items, page.skipped, page.has_more) == ([], 0, False)
    assert page.cursor == {"mentions": {}, "dms": {}}
    assert spent(workspace) == {}
    assert api.server.served("/2/dm_events")[0].param("event_types") == "MessageCreate"


def test_dm_events_without_the_requested_sender_are_set_aside_loudly(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    """Real message events in X's default shape (recorded on the one-to-one conversation
    endpoint, the same DmEvent schema) carry no sender: DMs are set aside with the reason in
    the cursor (as for an access level without DMs), mentions keep flowing."""
    api = served["x"] = RecordedX(
        {
            ("GET", f"/2/users/{TWEEPY_DEV}/mentions"): "dm_events",
            ("GET", "/2/dm_events"): "dm_events_with_participant",
        }
    )
    operation = operation_for("GET", "/2/dm_events")
    assert operation is not None
    assert model_problems(operation.response, recording("dm_events_with_participant")["body"]) == []
    account = account_for(
        workspace, api, user_id=TWEEPY_DEV, handle="tweepydev", direct_messages=True
    )

    page = connector(account, api).fetch(None)
    again = connector(account, api).fetch(page.cursor)

    assert (page.items, page.skipped) == ([], 0)
    assert "no sender_id on any of 2" in page.cursor["dms"]["unavailable"]
    assert again.cursor["dms"] == page.cursor["dms"]
    assert len(api.server.served("/2/dm_events")) == 1  # not asked again
    assert spent(workspace) == {"dm_events_read": 2 * DEFAULT_PRICES["dm_events_read"]}


def test_a_post_and_its_deletion_read_the_recorded_answers(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    created = recording("tweet_create")
    api = served["x"] = RecordedX(
        {
            ("POST", "/2/tweets"): "tweet_create",
            ("DELETE", "/2/tweets/1456012973835788293"): "tweet_delete",
        }
    )
    account = account_for(workspace, api, user_id=TWEEPY_DEV, handle="TweepyDev")
    brand = connector(account, api)

    ref = brand.publish(OutboundPost(text=created["request"]["body"]["text"]), idempotency_key="k")
    brand.delete(ref.remote_id)

    assert ref.remote_id == created["body"]["data"]["id"] == "1456012973835788293"
    assert ref.url == "https://x.com/TweepyDev/status/1456012973835788293"
    assert api.server.served("/2/tweets")[0].json() == created["request"]["body"]
    assert spent(workspace) == {
        "content_create": DEFAULT_PRICES["content_create"],
        "delete": DEFAULT_PRICES["delete"],
    }


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (
            "if you see an edited Tweet it's because we're testing the edit button\n\n"
            "this is happening and you'll be okay",
            "1565318587736285184",
        ),
        (  # X shortened both links to t.co: the look-up compares texts with links blanked
            "whoa, it works\n\nnow everyone can mix GIFs, videos, and images in one Tweet, "
            "available on iOS and Android https://blog.x.com/a https://blog.x.com/b",
            "1577730467436138524",
        ),
    ],
)
def test_a_create_that_failed_is_found_in_the_real_timeline_not_posted_twice(
    served: dict[str, RecordedX], workspace: Workspace, text: str, found: str
) -> None:
    api = served["x"] = RecordedX({("GET", f"/2/users/{TWITTER}/tweets"): "users_tweets"})
    account = account_for(workspace, api, user_id=TWITTER, handle="Twitter")
    api.server.script("/2/tweets", 503, {"title": "Service Unavailable"})

    ref = connector(account, api).publish(OutboundPost(text=text), idempotency_key="k")

    assert ref.remote_id == found
    assert len(api.server.served("/2/tweets")) == 1  # never sent a second time
    lookup = api.server.served(f"/2/users/{TWITTER}/tweets")[0]
    assert lookup.param("start_time")
    costs = spent(workspace)
    assert costs["posts_read"] == 2 * DEFAULT_PRICES["posts_read"]  # the page's two posts


def test_a_private_message_reads_the_recorded_answer(
    served: dict[str, RecordedX], workspace: Workspace
) -> None:
    sent = recording("dm_create_with_participant")
    path = sent["request"]["path"]
    api = served["x"] = RecordedX({("POST", path): "dm_create_with_participant"})
    account = account_for(workspace, api, user_id=TWEEPY_DEV, handle="tweepydev")

    ref = connector(account, api).send_private_message(
        OutboundPost(text="Testing 1", recipient="750362064426721281"), idempotency_key="k"
    )

    assert ref.remote_id == "dm/1585800613253812228"
    assert api.server.served(path)[0].json() == sent["request"]["body"]
    assert spent(workspace) == {"dm_create": DEFAULT_PRICES["dm_create"]}


def test_metrics_must_be_asked_for(served: dict[str, RecordedX], workspace: Workspace) -> None:
    """X's default answer of a post holds no counts: the connector asks for public_metrics,
    and an answer without them gives no metrics rather than zeros."""
    api = served["x"] = RecordedX({("GET", "/2/tweets/1293593516040269825"): "tweet_lookup"})
    account = account_for(workspace, api, user_id=TWEEPY_DEV, handle="tweepydev")

    assert connector(account, api).metrics("1293593516040269825") == {}
    assert api.server.served("/2/tweets/1293593516040269825")[0].param("post.fields") == (
        "public_metrics"
    )
    assert spent(workspace) == {"posts_read": DEFAULT_PRICES["posts_read"]}


def test_an_edited_post_keeps_the_post_it_edits() -> None:
    """Edits are new post ids; the first id of the history (either name) is the original."""
    mention = json.loads((RECORDED.parent / "mentions.json").read_text())["tweets"][0]
    brand = XConnector(AccountContext(workspace_id=0, handle="acme"))
    users = Expansions({})
    for name in ("edit_history_tweet_ids", "edit_history_post_ids"):
        edited = {k: v for k, v in mention.items() if not k.startswith("edit_history")}
        edited[name] = ["1861000000000000001", mention["id"]]

        assert brand.tweet_item(edited, users).raw["edit_of"] == "1861000000000000001"
    assert "edit_of" not in brand.tweet_item(mention, users).raw  # one version: not an edit
