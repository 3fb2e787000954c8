"""Facebook Pages and Instagram professional accounts, both through Meta's Graph API.

One Page access token serves both: the Page's posts, their comments and its Messenger
conversations; and, for the Instagram account linked to the Page, its media, their comments and
its Instagram Direct conversations. Two connector classes share the HTTP, the error mapping and
the webhook parsing, which is what they have in common.

Account settings: ``page_id`` (and, for Instagram, ``ig_user_id`` and ``username``),
``graph_base`` (default from ``settings.RELAIS["FACEBOOK_GRAPH_BASE"]``, else
https://graph.facebook.com) and ``graph_version`` (default from
``settings.RELAIS["FACEBOOK_GRAPH_VERSION"]``, else ``DEFAULT_GRAPH_VERSION``): Meta retires each
version about two years after its release, so the version is configuration, not code.
Credentials: ``page_access_token`` (and ``app_secret`` when connected through the workspace's
own Meta app with Facebook Login). A Page token derived from a long-lived user token does not
expire, but it is invalidated when the admin changes password or removes the app: Graph then
answers error 190 and the account becomes *Reconnect needed*.

Connecting: paste a Page token, or Facebook Login (``start_login``/``finish_login``): Meta's
dialog at ``www.facebook.com/<version>/dialog/oauth`` (``settings.RELAIS["FACEBOOK_DIALOG_BASE"]``
or the form's address), the code traded for a user token, that one for a long-lived one, and
``/me/accounts`` lists the Pages the admin granted in the dialog, each with its Page token.

Meta pushes new comments and messages to the app's webhook (``relais/connectors/webhooks.py``);
polling (``fetch``) reads the same things and fills the gaps after an outage, so either path alone
loses nothing and together they store each item once (posts are unique by remote id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
from django.conf import settings

from relais.connectors.base import (
    AccountContext,
    Capability,
    Connector,
    ConnectorError,
    CredentialsExpiredError,
    FetchPage,
    InboundAuthor,
    InboundItem,
    Limits,
    OutboundPost,
    PostKind,
    PublishedRef,
    RateLimitedError,
    TransientNetworkError,
    UnsupportedError,
)
from relais.connectors.client import RETRYABLE_STATUSES, HttpClient, parse_retry_after
from relais.connectors.payloads import (
    MalformedPayloadError,
    json_object,
    log_malformed,
    parse_iso_time,
    required,
)

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_BASE = "https://graph.facebook.com"
DEFAULT_DIALOG_BASE = "https://www.facebook.com"
# Facebook Login permissions: read and answer the Page and its Instagram account, list the Pages.
LOGIN_SCOPES = (
    "pages_show_list,pages_read_engagement,pages_manage_posts,pages_manage_engagement,"
    "pages_manage_metadata,pages_messaging,instagram_basic,instagram_manage_comments,"
    "instagram_manage_messages,instagram_content_publish,business_management"
)
PAGE_FIELDS = "id,name,category,access_token,instagram_business_account{id,username}"
# The version whose object specs the contract tests check the requests against (the Graph API
# version of the facebook-business SDK they read them from).
DEFAULT_GRAPH_VERSION = "v26.0"
PAGE_SIZE = 25  # posts or conversations per read; each carries its newest comments or messages
NESTED_SIZE = 50

# Graph's error codes (Graph API "Handling errors" guide).
TOKEN_ERRORS = frozenset({102, 190})
# 9: "Application request limit reached", also Instagram's content publishing limit (2207042).
RATE_LIMIT_ERRORS = frozenset({4, 9, 17, 32, 613, *range(80001, 80015)})
TEMPORARY_ERRORS = frozenset({1, 2})
PERMISSION_ERRORS = frozenset({3, 10, *range(200, 300)})

PAGE_POST_FIELDS = (
    "id,message,created_time,from,permalink_url,"
    f"comments.filter(stream).order(reverse_chronological).limit({NESTED_SIZE})"
    "{id,message,created_time,from,parent}"
)
# ``attachments``: a photo or a video sent alone has no ``message`` text (recorded answers,
# tests/fixtures/facebook/recorded/fb_messages.json); its attachments say what it was.
CONVERSATION_FIELDS = (
    f"id,updated_time,messages.limit({NESTED_SIZE}){{id,message,created_time,from,attachments}}"
)
IG_MEDIA_FIELDS = (
    "id,caption,timestamp,username,permalink,like_count,comments_count,"
    f"comments.limit({NESTED_SIZE}){{id,text,timestamp,username,from,parent_id}}"
)


# Instagram content publishing (Graph API "Content Publishing" guide and IG User reference).
CAPTION_LIMIT = 2200  # characters of a caption
CAPTION_HASHTAGS = 30
CAPTION_MENTIONS = 20
DEFAULT_PUBLISHING_QUOTA = 25  # API-published posts per 24 hours, when Meta's answer omits it
CONTAINER_CHECKS = 6  # an image container is usually ready at once; videos take minutes
CONTAINER_CHECK_SECONDS = 5.0
PUBLISH_RETRY_WINDOW = timedelta(hours=1)  # how far back a retry looks for its own post
HASHTAG = re.compile(r"(?<![\w#])#\w+")
MENTION = re.compile(r"(?<![\w@])@[\w.]+")


def graph_address(account_settings: Mapping[str, Any] | None = None) -> str:
    """``https://graph.facebook.com/v26.0``: the account's choice, else the deployment's."""
    own = account_settings or {}
    base = own.get("graph_base") or settings.RELAIS.get("FACEBOOK_GRAPH_BASE") or DEFAULT_GRAPH_BASE
    version = (
        own.get("graph_version")
        or settings.RELAIS.get("FACEBOOK_GRAPH_VERSION")
        or DEFAULT_GRAPH_VERSION
    )
    return f"{str(base).rstrip('/')}/{str(version).strip('/')}"


def app_secret() -> str:
    return str(settings.RELAIS.get("FACEBOOK_APP_SECRET") or "")


def app_id() -> str:
    return str(settings.RELAIS.get("FACEBOOK_APP_ID") or "")


def dialog_base() -> str:
    """Where Meta's login dialog lives (configuration, so tests point it at a local server)."""
    return str(settings.RELAIS.get("FACEBOOK_DIALOG_BASE") or DEFAULT_DIALOG_BASE).rstrip("/")


def appsecret_proof(token: str, secret: str) -> str:
    """HMAC-SHA256 of the token keyed by the app secret: Graph's proof the call is the app's."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# HTTP: Graph's error objects


def graph_error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def seconds_to_regain_access(response: httpx.Response) -> float | None:
    """The wait ``X-Business-Use-Case-Usage`` announces (``estimated_time_to_regain_access``,
    minutes), the longest of its business use cases."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    if not header:
        return None
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    minutes = [
        float(case.get("estimated_time_to_regain_access") or 0)
        for cases in (usage.values() if isinstance(usage, dict) else [])
        for case in (cases if isinstance(cases, list) else [])
        if isinstance(case, dict)
    ]
    return max(minutes) * 60 if minutes else None


class GraphHttpClient(HttpClient):
    """The shared client, reading Graph's error codes (a rate limit is usually a 400 there)."""

    @staticmethod
    def _classify(method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        error = graph_error(response)
        code = error.get("code")
        message = str(error.get("error_user_msg") or error.get("message") or "")[:500]
        summary = f"{method} {url} answered {status}" + (
            f" (#{code}): {message}" if code else f": {message}" if message else ""
        )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if code in RATE_LIMIT_ERRORS or status == 429:
            return RateLimitedError(summary, retry_after or seconds_to_regain_access(response))
        if code in TOKEN_ERRORS or (status == 401 and not code):
            return CredentialsExpiredError(summary)
        if code in TEMPORARY_ERRORS or status in RETRYABLE_STATUSES:
            return TransientNetworkError(summary, retry_after)
        if code in PERMISSION_ERRORS or status == 403:
            return UnsupportedError(f"Meta refused it: {message}" if message else summary)
        return ConnectorError(f"Meta refused it: {message}" if message else summary)


# ---------------------------------------------------------------------------------------------
# Connecting with Facebook Login (the workspace's own Meta app)


@dataclass(frozen=True)
class PendingLogin:
    """Kept (encrypted) in the admin's session between Meta's dialog and the way back."""

    app_id: str
    app_secret: str
    redirect_uri: str
    state: str
    graph: str  # the versioned Graph address: https://graph.facebook.com/v26.0


def start_login(
    app: str, secret: str, *, redirect_uri: str, graph: str, dialog: str = ""
) -> tuple[str, PendingLogin]:
    """Meta's login dialog address for this app, and what to keep until the browser returns."""
    version = graph.rstrip("/").rsplit("/", 1)[-1]
    pending = PendingLogin(
        app_id=app.strip(),
        app_secret=secret.strip(),
        redirect_uri=redirect_uri,
        state=secrets.token_urlsafe(24),
        graph=graph.rstrip("/"),
    )
    query = urlencode(
        {
            "client_id": pending.app_id,
            "redirect_uri": redirect_uri,
            "state": pending.state,
            "scope": LOGIN_SCOPES,
            "response_type": "code",
        }
    )
    return f"{(dialog or dialog_base()).rstrip('/')}/{version}/dialog/oauth?{query}", pending


def finish_login(
    pending: PendingLogin, code: str, *, http: HttpClient | None = None
) -> list[dict[str, Any]]:
    """Trade the code for a user token, then a long-lived one, and list the Pages it manages
    (``/me/accounts``: each with its own Page token and linked Instagram account)."""
    client = http or GraphHttpClient(base_url=pending.graph)
    app = {"client_id": pending.app_id, "client_secret": pending.app_secret}
    short = _token(client, {**app, "redirect_uri": pending.redirect_uri, "code": code.strip()})
    exchange = {**app, "grant_type": "fb_exchange_token", "fb_exchange_token": short}
    user_token = _token(client, exchange)
    params = {"fields": PAGE_FIELDS, "limit": "100"}
    if pending.app_secret:
        params["appsecret_proof"] = appsecret_proof(user_token, pending.app_secret)
    headers = {"Authorization": f"Bearer {user_token}"}
    body = json_object(client.request("GET", "/me/accounts", params=params, headers=headers))
    return [p for p in body.get("data") or [] if isinstance(p, dict) and p.get("access_token")]


def _token(client: HttpClient, params: dict[str, str]) -> str:
    """``GET /oauth/access_token``: Meta's token endpoint (a code or a token to exchange)."""
    data = json_object(client.request("GET", "/oauth/access_token", params=params))
    if not data.get("access_token"):
        raise CredentialsExpiredError("Meta issued no access token")
    return str(data["access_token"])


# ---------------------------------------------------------------------------------------------
# Payloads


def parse_time(value: Any) -> datetime:
    """Graph's ``2026-11-20T09:00:03+0000``, Instagram's ISO 8601, or a webhook's epoch time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Messenger webhooks send milliseconds, feed changes seconds.
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    if isinstance(value, str) and value[-5:-4] in "+-":
        value = value[:-5] + value[-5:-2] + ":" + value[-2:]  # +0000 -> +00:00
    return parse_iso_time(value, "time")


def _newer(items: list[InboundItem], since: str | None) -> list[InboundItem]:
    """Items at or after the cursor (equal times are kept: storing them again is harmless)."""
    if not since:
        return items
    limit = datetime.fromisoformat(since)
    return [item for item in items if item.created_at >= limit]


def _next_cursor(items: list[InboundItem], since: str | None) -> dict[str, Any]:
    newest = max((item.created_at for item in items), default=None)
    if newest is None:
        return {"since": since} if since else {}
    return {"since": newest.isoformat()}


# ---------------------------------------------------------------------------------------------
# What both connectors share


class GraphConnector(Connector):
    """HTTP, token and messaging shared by the Page and the Instagram connectors."""

    platform: ClassVar[str]  # the ``platform`` of its conversations

    def __init__(self, account: AccountContext, *, http: HttpClient | None = None) -> None:
        super().__init__(account)
        self.address = graph_address(account.settings)
        self.http = http or GraphHttpClient(base_url=self.address)
        self.page_id = str(account.settings.get("page_id") or "")

    def _call(self, method: str, path: str, *, once: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One Graph call; ``once`` sends it without the client's retries (a write whose
        timeout may hide a success is looked up by the caller instead of being sent again)."""
        token = str(self.account.credentials.get("page_access_token") or "")
        if not token:
            raise CredentialsExpiredError(f"no Page access token for {self.account.handle}")
        params = dict(kwargs.pop("params", {}) or {})
        # A workspace connected through its own Meta app proves calls with that app's secret.
        if secret := str(self.account.credentials.get("app_secret") or "") or app_secret():
            params["appsecret_proof"] = appsecret_proof(token, secret)
        headers = {"Authorization": f"Bearer {token}"}
        attempts = self.http.max_attempts
        if once:
            self.http.max_attempts = 1
        try:
            response = self.http.request(method, path, params=params, headers=headers, **kwargs)
        finally:
            self.http.max_attempts = attempts
        return json_object(response)

    def _pages(self, path: str, params: dict[str, str], *, pages: int = 1) -> list[dict[str, Any]]:
        """Entries of an edge, following ``paging.cursors.after`` for up to ``pages`` pages."""
        entries: list[dict[str, Any]] = []
        for _page in range(pages):
            body = self._call("GET", path, params=params)
            entries += [e for e in body.get("data") or [] if isinstance(e, dict)]
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (body.get("paging") or {}).get("next"):
                break
            params = {**params, "after": after}
        return entries

    def _conversation_items(self, since: str | None) -> tuple[list[InboundItem], int]:
        """Messages of conversations updated since the cursor (``GET /{page}/conversations``)."""
        params = {
            "platform": self.platform,
            "fields": CONVERSATION_FIELDS,
            "limit": str(PAGE_SIZE),
        }
        items, skipped = [], 0
        for conversation in self._pages(f"/{self.page_id}/conversations", params):
            updated = conversation.get("updated_time")
            if since and updated and parse_time(updated) < datetime.fromisoformat(since):
                continue
            for message in (conversation.get("messages") or {}).get("data") or []:
                try:
                    items.append(self.message_item(message))
                except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                    log_malformed("Graph", message, exc)
                    skipped += 1
        return items, skipped

    def message_item(self, message: dict[str, Any]) -> InboundItem:
        sender = required(message, "from")
        author = self.person(sender)
        own = author.remote_id in {self.page_id, self.own_author().remote_id}
        text = str(message.get("message") or "")
        attachments = (message.get("attachments") or {}).get("data") or []
        if not text and attachments:
            # As a webhook names them: "[image, video]" (the major part of each MIME type).
            kinds = [
                str(a.get("mime_type") or "file").split("/")[0]
                for a in attachments
                if isinstance(a, dict)
            ]
            text = "[" + ", ".join(kinds) + "]" if kinds else ""
        return InboundItem(
            remote_id=str(required(message, "id")),
            kind=PostKind.PRIVATE_MESSAGE,
            author=self.own_author() if own else author,
            text=text,
            created_at=parse_time(message.get("created_time")),
            raw={} if own else {"recipient": self.account.handle.lower()},
        )

    def messaging_item(self, event: dict[str, Any]) -> InboundItem | None:
        """One webhook ``messaging`` event (a Messenger or Instagram Direct message)."""
        message = event.get("message")
        if not isinstance(message, dict):
            return None  # deliveries, reads, reactions, postbacks: nothing to store
        echo = bool(message.get("is_echo"))
        sender = str(required(required(event, "sender"), "id"))
        author = self.own_author() if echo else InboundAuthor(remote_id=sender, handle=sender)
        text = str(message.get("text") or "")
        if not text and message.get("attachments"):
            text = "[" + ", ".join(str(a.get("type")) for a in message["attachments"]) + "]"
        return InboundItem(
            remote_id=str(required(message, "mid")),
            kind=PostKind.PRIVATE_MESSAGE,
            author=author,
            text=text,
            created_at=parse_time(required(event, "timestamp")),
            raw={} if echo else {"recipient": self.account.handle.lower()},
        )

    def person(self, sender: dict[str, Any]) -> InboundAuthor:
        sender_id = str(required(sender, "id"))
        name = str(sender.get("name") or sender.get("username") or "")
        handle = str(sender.get("username") or sender_id).lower()
        return InboundAuthor(remote_id=sender_id, handle=handle, name=name)

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """``POST /{page}/messages``. Outside 24 hours after the person's last message, Meta
        refuses a standard message (error 10 / subcode 2018278): the error says so."""
        if not post.recipient:
            raise ConnectorError("a private message needs its recipient")
        body = {
            "recipient": {"id": post.recipient},
            "messaging_type": "RESPONSE",
            "message": {"text": post.text},
        }
        data = self._call("POST", f"/{self.page_id}/messages", json=body)
        return PublishedRef(
            remote_id=str(required(data, "message_id")), created_at=datetime.now(UTC)
        )

    def delete(self, remote_id: str) -> None:
        self._call("DELETE", f"/{quote(remote_id, safe='')}")

    def webhook_items(self, entry: dict[str, Any]) -> tuple[list[InboundItem], int]:
        """Items of one webhook ``entry`` addressed to this account; malformed parts logged."""
        items, skipped = [], 0
        parts = [("messaging", e) for e in entry.get("messaging") or []]
        # Instagram's comment changes carry no time of their own: the entry's is theirs.
        parts += [("change", {"time": entry.get("time"), **c}) for c in entry.get("changes") or []]
        for kind, part in parts:
            try:
                item = self.messaging_item(part) if kind == "messaging" else self.change_item(part)
            except (MalformedPayloadError, KeyError, TypeError, ValueError, AttributeError) as exc:
                log_malformed("Graph", part, exc)
                skipped += 1
                continue
            if item is not None:
                items.append(item)
        return items, skipped

    def change_item(self, change: dict[str, Any]) -> InboundItem | None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Facebook Pages


class FacebookPageConnector(GraphConnector):
    key: ClassVar[str] = "facebook"
    display_name: ClassVar[str] = "Facebook"
    platform: ClassVar[str] = "messenger"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INBOX,
            Capability.REPLY,
            Capability.PRIVATE_MESSAGES,
            Capability.PUBLISH,
            Capability.METRICS,
        }
    )
    # A Page post holds up to 63,206 characters; Messenger texts 2,000 (the stricter applies to
    # replies, which may be either).
    limits: ClassVar[Limits] = Limits(max_text_length=2000, max_media=10)

    def own_author(self) -> InboundAuthor:
        name = str(self.account.settings.get("name") or self.account.handle)
        return InboundAuthor(remote_id=self.page_id, handle=self.account.handle.lower(), name=name)

    def page(self) -> dict[str, Any]:
        """The Page the token speaks for, with its linked Instagram account if any."""
        fields = "id,name,category,instagram_business_account{id,username}"
        return self._call("GET", "/me", params={"fields": fields})

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        """The Page's recent posts and their newest comments, then its Messenger conversations,
        keeping what is newer than the cursor (``{"since": ISO time}``)."""
        since = (cursor or {}).get("since")
        items, skipped = [], 0
        params = {"fields": PAGE_POST_FIELDS, "limit": str(PAGE_SIZE)}
        for post in self._pages(f"/{self.page_id}/feed", params):
            try:
                items.append(self.post_item(post))
            except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                log_malformed("Graph", post, exc)
                skipped += 1
                continue
            for comment in (post.get("comments") or {}).get("data") or []:
                try:
                    items.append(self.comment_item(comment, str(post["id"])))
                except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                    log_malformed("Graph", comment, exc)
                    skipped += 1
        messages, unread = self._conversation_items(since)
        fresh = _newer(items + messages, since)
        fresh.sort(key=lambda item: item.created_at)  # parents before replies
        return FetchPage(
            fresh[:limit], _next_cursor(fresh[:limit], since), skipped=skipped + unread
        )

    def post_item(self, post: dict[str, Any]) -> InboundItem:
        author = self.person(required(post, "from"))
        own = author.remote_id == self.page_id
        return InboundItem(
            remote_id=str(required(post, "id")),
            kind=PostKind.POST,
            author=self.own_author() if own else author,
            text=str(post.get("message") or ""),
            created_at=parse_time(post.get("created_time")),
            mentions=() if own else (self.account.handle.lower(),),
            raw={"url": post.get("permalink_url") or ""},
        )

    def comment_item(self, comment: dict[str, Any], post_id: str) -> InboundItem:
        author = self.person(required(comment, "from"))
        parent = (comment.get("parent") or {}).get("id")
        return InboundItem(
            remote_id=str(required(comment, "id")),
            kind=PostKind.COMMENT,
            author=self.own_author() if author.remote_id == self.page_id else author,
            text=str(comment.get("message") or ""),
            created_at=parse_time(comment.get("created_time")),
            in_reply_to=str(parent or post_id),
            raw={"post_id": post_id},
        )

    def change_item(self, change: dict[str, Any]) -> InboundItem | None:
        """A ``feed`` change: a post or a comment added to the Page (edits and removals are not
        stored: the next poll reads the current text)."""
        if change.get("field") != "feed":
            return None
        value = required(change, "value")
        if value.get("verb") != "add" or value.get("item") not in {"comment", "post", "status"}:
            return None
        author = self.person(required(value, "from"))
        own = author.remote_id == self.page_id
        created = parse_time(required(value, "created_time"))
        post_id = str(required(value, "post_id"))
        if value["item"] == "comment":
            parent = str(value.get("parent_id") or post_id)
            return InboundItem(
                remote_id=str(required(value, "comment_id")),
                kind=PostKind.COMMENT,
                author=self.own_author() if own else author,
                text=str(value.get("message") or ""),
                created_at=created,
                in_reply_to=parent,
                raw={"post_id": post_id},
            )
        return InboundItem(
            remote_id=post_id,
            kind=PostKind.POST,
            author=self.own_author() if own else author,
            text=str(value.get("message") or ""),
            created_at=created,
            mentions=() if own else (self.account.handle.lower(),),
        )

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """A comment on the post, or an answer in the comment's thread (``POST /{id}/comments``)."""
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the post or comment it answers")
        path = f"/{quote(post.in_reply_to, safe='')}/comments"
        data = self._call("POST", path, data={"message": post.text})
        return PublishedRef(remote_id=str(required(data, "id")), created_at=datetime.now(UTC))

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        data = self._call("POST", f"/{self.page_id}/feed", data={"message": post.text})
        post_id = str(required(data, "id"))
        return PublishedRef(
            remote_id=post_id,
            created_at=datetime.now(UTC),
            url=f"https://www.facebook.com/{post_id}",
        )

    def metrics(self, remote_id: str) -> dict[str, int]:
        fields = (
            "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"
        )
        data = self._call("GET", f"/{quote(remote_id, safe='')}", params={"fields": fields})
        counts = {
            "likes": ((data.get("reactions") or {}).get("summary") or {}).get("total_count"),
            "replies": ((data.get("comments") or {}).get("summary") or {}).get("total_count"),
            "reposts": (data.get("shares") or {}).get("count", 0),
        }
        return {name: int(value) for name, value in counts.items() if isinstance(value, int)}


# ---------------------------------------------------------------------------------------------
# Instagram professional accounts (through the Page they are linked to)


class InstagramConnector(GraphConnector):
    key: ClassVar[str] = "instagram"
    display_name: ClassVar[str] = "Instagram"
    platform: ClassVar[str] = "instagram"
    # A published post is one image Meta fetches from Relais' public address with its caption
    # (``publish``); text alone cannot be published on Instagram.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INBOX,
            Capability.REPLY,
            Capability.PRIVATE_MESSAGES,
            Capability.METRICS,
            Capability.PUBLISH,
            Capability.IMAGES,
        }
    )
    # A comment or a caption holds up to 2,200 characters, a Direct message 1,000: the
    # stricter is checked. One image per post (a carousel is not built).
    limits: ClassVar[Limits] = Limits(max_text_length=1000, max_media=1)
    requires_image: ClassVar[bool] = True

    def __init__(
        self,
        account: AccountContext,
        *,
        http: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(account, http=http)
        self.ig_user_id = str(account.settings.get("ig_user_id") or "")
        self.sleep = sleep

    def own_author(self) -> InboundAuthor:
        handle = self.account.handle.lower()
        return InboundAuthor(remote_id=self.ig_user_id, handle=handle, name=handle)

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        """The account's recent media and their comments, then its Direct conversations."""
        since = (cursor or {}).get("since")
        items, skipped = [], 0
        params = {"fields": IG_MEDIA_FIELDS, "limit": str(PAGE_SIZE)}
        for media in self._pages(f"/{self.ig_user_id}/media", params):
            try:
                items.append(self.media_item(media))
            except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                log_malformed("Graph", media, exc)
                skipped += 1
                continue
            for comment in (media.get("comments") or {}).get("data") or []:
                try:
                    items.append(self.comment_item(comment, str(media["id"])))
                except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                    log_malformed("Graph", comment, exc)
                    skipped += 1
        messages, unread = self._conversation_items(since)
        fresh = _newer(items + messages, since)
        fresh.sort(key=lambda item: item.created_at)
        return FetchPage(
            fresh[:limit], _next_cursor(fresh[:limit], since), skipped=skipped + unread
        )

    def media_item(self, media: dict[str, Any]) -> InboundItem:
        """The brand's own media (only its own are listed): the threads comments hang from."""
        likes, comments = media.get("like_count"), media.get("comments_count")
        metrics = {"likes": likes} if isinstance(likes, int) else {}
        if isinstance(comments, int):
            metrics["replies"] = comments
        return InboundItem(
            remote_id=str(required(media, "id")),
            kind=PostKind.POST,
            author=self.own_author(),
            text=str(media.get("caption") or ""),
            created_at=parse_time(media.get("timestamp")),
            metrics=metrics,
            raw={"url": media.get("permalink") or ""},
        )

    def comment_item(self, comment: dict[str, Any], media_id: str) -> InboundItem:
        sender = comment.get("from") or {
            "id": comment.get("username"),
            "username": comment.get("username"),
        }
        author = self.person(sender)
        own = author.handle == self.own_author().handle
        return InboundItem(
            remote_id=str(required(comment, "id")),
            kind=PostKind.COMMENT,
            author=self.own_author() if own else author,
            text=str(comment.get("text") or ""),
            created_at=parse_time(comment.get("timestamp")),
            in_reply_to=str(comment.get("parent_id") or media_id),
            raw={"media_id": media_id},
        )

    def change_item(self, change: dict[str, Any]) -> InboundItem | None:
        """A ``comments`` change (a comment on the brand's media) or a ``mentions`` change."""
        field = change.get("field")
        value = required(change, "value")
        if field == "comments":
            media_id = str(required(required(value, "media"), "id"))
            comment = {
                "id": required(value, "id"),
                "text": value.get("text"),
                "from": required(value, "from"),
                "parent_id": value.get("parent_id"),
                # Comment changes carry no time; the entry's is used by the caller when missing.
                "timestamp": value.get("timestamp") or change.get("time"),
            }
            return self.comment_item(comment, media_id)
        if field == "mentions":
            # The brand was @mentioned in a comment or caption: only ids are sent; the comment
            # is read by the next poll of its media when it is on the brand's media.
            logger.info("Instagram mention of %s: %s", self.account.handle, json.dumps(value))
        return None

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """An answer in a comment's thread (``POST /{comment}/replies``)."""
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the comment it answers")
        path = f"/{quote(post.in_reply_to, safe='')}/replies"
        data = self._call("POST", path, data={"message": post.text})
        return PublishedRef(remote_id=str(required(data, "id")), created_at=datetime.now(UTC))

    def metrics(self, remote_id: str) -> dict[str, int]:
        data = self._call(
            "GET", f"/{quote(remote_id, safe='')}", params={"fields": "like_count,comments_count"}
        )
        counts = {"likes": data.get("like_count"), "replies": data.get("comments_count")}
        return {name: int(value) for name, value in counts.items() if isinstance(value, int)}

    # -- content publishing: container, status, publish ------------------------------------

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """The post's first image with its text as caption (a carousel is not built)."""
        if not post.media:
            raise ConnectorError("an Instagram post needs an image")
        image = post.media[0]
        if image.mime_type != "image/jpeg":
            raise ConnectorError("Instagram publishes JPEG images only")
        if not image.url:
            raise ConnectorError(
                "Instagram fetches the image from Relais: set RELAIS_PUBLIC_URL to the address "
                "the internet reaches this server at"
            )
        return self.publish_image(image.url, post.text, idempotency_key=idempotency_key)

    def publish_image(self, image_url: str, caption: str, *, idempotency_key: str) -> PublishedRef:
        """Publish one image (JPEG at a public address Meta fetches) with its caption.

        Meta keeps no idempotency key, so the account's recent media are searched for the same
        caption first: a retry after a timeout finds the post the first attempt made. The
        publishing limit (API-published posts per 24 hours) is checked before a container is
        made, and the publish itself is sent once, its timeout answered by a look-up.
        """
        check_caption(caption)
        if urlsplit(image_url).scheme not in {"http", "https"}:
            raise ConnectorError("Instagram needs the image at a public http(s) address")
        if existing := self._recent_media_with(caption):
            logger.info(
                "publish %s already on Instagram as %s", idempotency_key, existing.remote_id
            )
            return existing
        self._check_publishing_quota()
        form = {"image_url": image_url, "caption": caption}
        container = str(required(self._call("POST", f"/{self.ig_user_id}/media", data=form), "id"))
        self._wait_until_ready(container)
        return self._publish_container(container, caption, idempotency_key)

    def publishing_quota(self) -> tuple[int, int]:
        """API-published posts of the last 24 hours, and how many Meta allows."""
        body = self._call(
            "GET",
            f"/{self.ig_user_id}/content_publishing_limit",
            params={"fields": "quota_usage,config"},
        )
        rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
        usage = rows[0].get("quota_usage") if rows else 0
        total = ((rows[0].get("config") or {}) if rows else {}).get("quota_total")
        return int(usage or 0), int(total or DEFAULT_PUBLISHING_QUOTA)

    def _check_publishing_quota(self) -> None:
        usage, total = self.publishing_quota()
        if usage >= total:
            raise RateLimitedError(
                f"@{self.account.handle} published {usage} posts through the API in 24 hours, "
                f"Instagram's limit ({total}): try again later"
            )

    def _wait_until_ready(self, container: str) -> None:
        """Poll the container until Meta has fetched and checked the image (``FINISHED``)."""
        for check in range(CONTAINER_CHECKS):
            code, status = self._container_state(container)
            if code in {"FINISHED", "PUBLISHED"}:
                return
            if code in {"ERROR", "EXPIRED"}:
                raise ConnectorError(f"Instagram could not use the image ({code}): {status}")
            if check < CONTAINER_CHECKS - 1:
                self.sleep(CONTAINER_CHECK_SECONDS)
        raise TransientNetworkError(f"Instagram is still preparing container {container}")

    def _container_state(self, container: str) -> tuple[str, str]:
        data = self._call(
            "GET", f"/{quote(container, safe='')}", params={"fields": "status_code,status"}
        )
        return str(data.get("status_code") or ""), str(data.get("status") or "")

    def _publish_container(self, container: str, caption: str, key: str) -> PublishedRef:
        path = f"/{self.ig_user_id}/media_publish"
        try:
            data = self._call("POST", path, data={"creation_id": container}, once=True)
        except RateLimitedError:
            raise
        except TransientNetworkError as exc:
            if existing := self._recent_media_with(caption):
                logger.info("publish %s went through as %s", key, existing.remote_id)
                return existing
            if self._container_state(container)[0] == "PUBLISHED":
                # Published, but not listed yet: the next attempt finds it by its caption.
                message = f"container {container} published, not listed yet"
                raise TransientNetworkError(message) from exc
            logger.info("publish %s failed (%s); trying once more", key, exc)
            data = self._call("POST", path, data={"creation_id": container}, once=True)
        media_id = str(required(data, "id"))
        return PublishedRef(remote_id=media_id, created_at=datetime.now(UTC))

    def _recent_media_with(self, caption: str) -> PublishedRef | None:
        """The account's media of the last hour carrying exactly this caption, if any."""
        params = {"fields": "id,caption,timestamp,permalink", "limit": "10"}
        body = self._call("GET", f"/{self.ig_user_id}/media", params=params)
        oldest = datetime.now(UTC) - PUBLISH_RETRY_WINDOW
        for media in body.get("data") or []:
            if not isinstance(media, dict) or media.get("caption") != caption:
                continue
            created = parse_time(media.get("timestamp"))
            if created >= oldest:
                return PublishedRef(
                    remote_id=str(media["id"]), created_at=created, url=media.get("permalink") or ""
                )
        return None


def check_caption(caption: str) -> None:
    """Instagram's caption limits: 2,200 characters, 30 hashtags, 20 @mentions."""
    if len(caption) > CAPTION_LIMIT:
        raise ConnectorError(
            f"an Instagram caption holds at most {CAPTION_LIMIT} characters ({len(caption)})"
        )
    if len(HASHTAG.findall(caption)) > CAPTION_HASHTAGS:
        raise ConnectorError(f"an Instagram caption holds at most {CAPTION_HASHTAGS} hashtags")
    if len(MENTION.findall(caption)) > CAPTION_MENTIONS:
        raise ConnectorError(f"an Instagram caption holds at most {CAPTION_MENTIONS} @mentions")
