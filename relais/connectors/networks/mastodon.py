"""Mastodon, and every fediverse server that speaks Mastodon's client API (REST, OAuth 2).

Account settings: ``instance`` (the server's base URL, e.g. https://mastodon.social), ``domain``
(the account's WebFinger domain, when it differs from the instance's host), ``hashtags`` (tags to
listen to) and ``visibility`` (of the posts it publishes; default public).
Credentials: ``instance``, ``client_id``, ``client_secret`` (the app registered on that server,
``POST /api/v1/apps``) and ``access_token`` (from the OAuth authorization-code flow). The instance
is kept with the token so the token is only ever sent to the server that issued it.

Authors and mentions are identified by their full ``user@domain`` address (an account id is only
meaningful on one server); statuses by the brand's server's id, which replies need. Nothing here
sniffs the server's version: only endpoints and fields that Mastodon-compatible servers share are
used, and a field a server leaves out is treated as absent.

Inbox: notifications (mentions, direct messages, favourites, boosts); listening: the hashtag
timelines of the followed tags. Both are read with ``min_id``, the documented forward cursor.
Where the server offers the streaming API, its events (``/api/v1/streaming/user/notification``
and ``/api/v1/streaming/hashtag``) only wake the reader up (``relais stream``): the read itself
stays the cursor-driven fetch, so a dropped stream or a missed event loses nothing and the beat's
poll remains the safety net.

The REST calls are Mastodon.py's (``open_api``), with a ``requests`` session whose transport
adapter (``relais.connectors.requests_bridge``) sends every request through ``HttpClient``: the
project's timeouts, retries, network guard and error mapping apply, and Mastodon.py never sniffs
the server's version (an explicit ``mastodon_version``, ``api_version`` setting). Payloads are
read from the server's own JSON as the bridge received it, not from Mastodon.py's typed copies.
The streams stay on ``HttpClient.stream_lines`` (``listen``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import regex
from django.conf import settings
from mastodon import Mastodon, MastodonError

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
)
from relais.connectors.client import RETRYABLE_STATUSES, HttpClient, parse_retry_after
from relais.connectors.payloads import (
    MalformedPayloadError,
    json_object,
    log_malformed,
    parse_iso_time,
    required,
)
from relais.connectors.requests_bridge import HttpClientAdapter, bridged_session

logger = logging.getLogger(__name__)

T = TypeVar("T")
# The Mastodon API level Relais speaks, told to Mastodon.py instead of asking the server (whose
# version string may be Pleroma's, Akkoma's or GoToSocial's). Configuration: the account's
# ``api_version`` setting, else RELAIS["MASTODON_API_VERSION"], else this.
DEFAULT_API_VERSION = "4.5.0"
USER_AGENT = "Relais"
DEFAULT_SCOPES = "read write"  # the coarse scopes: every compatible server knows them
OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"
# "quote" exists since Mastodon 4.5 (API version 7); a server that refuses an unknown type is
# asked again without it (``fetch``).
NOTIFICATION_TYPES = ("mention", "favourite", "reblog", "quote")
QUOTE_STATES_SHOWN = frozenset({"accepted"})  # a pending or revoked quote shows no post
REFUSED_PARAMETER = frozenset({400, 422})
PAGE_SIZE = 40  # the documented default page of notifications (the maximum is 80)
TAG_PAGE_SIZE = 40  # the maximum page of a hashtag timeline
VISIBILITIES = ("public", "unlisted", "private", "direct")
MAX_CHARACTERS = 500
URL_WEIGHT = 23  # every link counts as 23 characters, whatever its length
WAKING_EVENTS = frozenset({"notification", "update"})  # what a stream says that the fetch reads


# ---------------------------------------------------------------------------------------------
# Text: HTML content to plain text, and length as the server counts it


class _TextExtractor(HTMLParser):
    """Plain text of a status's HTML: paragraphs and line breaks kept, every tag dropped.

    Link text is kept whole: Mastodon hides parts of long links in ``invisible`` spans, but the
    spans together hold the full address. With ``hide_quote_inline``, the ``quote-inline``
    paragraph (Mastodon 4.5's "RE: <link>" for clients that do not show quotes) is left out.
    """

    BLOCKS = frozenset({"p", "div", "blockquote", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6"})
    SKIPPED = frozenset({"script", "style", "template"})

    def __init__(self, *, hide_quote_inline: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.hide_quote_inline = hide_quote_inline
        self.hidden: list[str] = []  # the open tags of a hidden quote-inline element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden or (
            self.hide_quote_inline and "quote-inline" in (dict(attrs).get("class") or "").split()
        ):
            if tag not in {"br", "img", "hr", "wbr"}:
                self.hidden.append(tag)
        elif tag in self.SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag in self.hidden:
                del self.hidden[len(self.hidden) - 1 - self.hidden[::-1].index(tag) :]
        elif tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not (self.skipping or self.hidden):
            self.parts.append(data)

    def _break(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n\n"):
            self.parts.append("\n\n")

    def text(self) -> str:
        return re.sub(r"\n{3,}", "\n\n", "".join(self.parts)).strip()


def html_to_text(html: str, *, hide_quote_inline: bool = False) -> str:
    """Readable plain text from sanitized HTML; nothing in it is ever rendered or run."""
    extractor = _TextExtractor(hide_quote_inline=hide_quote_inline)
    extractor.feed(html)
    extractor.close()
    return extractor.text()


_GRAPHEME = regex.compile(r"\X")
_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?'\")\]]")
# Mastodon's mention syntax: @user or @user@domain, not preceded by a word character or a slash.
_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)(?:@[\w.-]+\w)?", re.IGNORECASE
)


def mastodon_length(text: str) -> int:
    """Length as Mastodon's validator counts it.

    Graphemes, with every link counted as 23 characters and a remote mention by its username only
    (``@user@example.com`` counts as ``@user``), so writing to someone on another server costs no
    more than writing to a neighbour.
    """
    countable = _URL.sub("x" * URL_WEIGHT, text)
    countable = _MENTION.sub(lambda match: "@" + match.group(1), countable)
    return len(_GRAPHEME.findall(countable))


# ---------------------------------------------------------------------------------------------
# HTTP: errors as Mastodon reports them


def server_message(response: httpx.Response) -> str:
    """The ``error`` (and ``error_description``) a Mastodon-compatible server answered with."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get(key)) for key in ("error", "error_description") if body.get(key)]
    return ": ".join(parts)[:500]


def seconds_until_reset(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``X-RateLimit-Reset`` (an ISO 8601 time; epoch seconds also read)."""
    if not value:
        return None
    value = value.strip()
    now = now or datetime.now(UTC)
    try:
        when = (
            datetime.fromtimestamp(float(value), UTC)
            if value.replace(".", "", 1).isdigit()
            else datetime.fromisoformat(value)
        )
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class MastodonHttpClient(HttpClient):
    """The shared client, reading Mastodon's rate-limit header and its error messages."""

    @staticmethod
    def _classify(method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        message = server_message(response)
        summary = f"{method} {url} answered {status}" + (f": {message}" if message else "")
        # Mastodon sends X-RateLimit-Reset rather than Retry-After; a proxy may add the latter.
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            if retry_after is None:
                retry_after = seconds_until_reset(response.headers.get("X-RateLimit-Reset"))
            return RateLimitedError(summary, retry_after)
        if status in RETRYABLE_STATUSES:
            return TransientNetworkError(summary, retry_after)
        if status in {401, 403}:
            return CredentialsExpiredError(summary)
        if status == 422:
            return ConnectorError(f"the server refused it: {message}" if message else summary)
        return ConnectorError(summary)


# ---------------------------------------------------------------------------------------------
# Mastodon.py, speaking through HttpClient


class RelaisMastodon(Mastodon):
    """Mastodon.py as Relais uses it.

    Before reading a hashtag timeline Mastodon.py asks the server's instance settings
    (``GET /api/v2/instance``) whether the feed is open, only to warn; Relais reads the timeline
    and takes the server's answer (a 401 or 422 is an error like any other), one request less
    per poll.
    """

    def timeline_is_available(
        self,
        timeline: str = "public",
        local: bool = False,
        remote: bool = False,
        with_auth: bool = False,
        fail_hard: bool = False,
    ) -> bool:
        return True


def configured_api_version(account_settings: dict[str, Any] | None = None) -> str:
    """The Mastodon API version to assume: the account's, the deployment's, or the default."""
    configured = getattr(settings, "RELAIS", {}).get("MASTODON_API_VERSION")
    version = str((account_settings or {}).get("api_version") or configured or DEFAULT_API_VERSION)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        logger.warning(
            "Mastodon API version %r is not x.y.z: %s used", version, DEFAULT_API_VERSION
        )
        return DEFAULT_API_VERSION
    return version


def open_api(
    instance: str,
    http: HttpClient,
    *,
    version: str = "",
    access_token: str = "",
    client_id: str = "",
    client_secret: str = "",
) -> tuple[Mastodon, HttpClientAdapter]:
    """Mastodon.py on ``instance``, every request sent through ``http``.

    ``version_check_mode="created"`` with an explicit version: Mastodon.py never asks the server
    for its version, refuses only methods newer than the version declared, and picks endpoints
    by it (``/api/v2/media`` since 3.1.4). With "none" it would assume 1.0.0 for those choices.
    ``ratelimit_method="throw"``: HttpClient already waited and retried; Mastodon.py never sleeps.
    """
    session, bridge = bridged_session(http)
    api = RelaisMastodon(
        api_base_url=instance,
        session=session,
        version_check_mode="created",
        mastodon_version=version or configured_api_version(),
        ratelimit_method="throw",
        user_agent=USER_AGENT,
    )
    # Set after construction: given to the constructor, a client id or token that names an
    # existing file would be read from that file (Mastodon.py's credential files).
    api.client_id = client_id or None
    api.client_secret = client_secret or None
    api.access_token = access_token or None
    return api, bridge


def _answer(bridge: HttpClientAdapter) -> httpx.Response:
    answer = bridge.last_answer()
    if answer is None:  # pragma: no cover - every call that returns has been answered
        raise ConnectorError("Mastodon.py returned without an answer from the server")
    return answer


# ---------------------------------------------------------------------------------------------
# Connecting: app registration and the OAuth authorization-code flow


def normalize_instance(address: str) -> str:
    """``mastodon.social`` or ``https://mastodon.social/`` -> ``https://mastodon.social``."""
    address = address.strip()
    if not address:
        raise ValueError("no server address")
    if "://" not in address:
        address = f"https://{address}"
    parts = urlsplit(address)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError(f"not a server address: {address!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class AppRegistration:
    """The client an instance issued to this deployment; kept encrypted like a password."""

    instance: str
    client_id: str
    client_secret: str = ""
    redirect_uri: str = OUT_OF_BAND
    scopes: str = DEFAULT_SCOPES


def register_app(
    instance: str,
    *,
    client_name: str,
    redirect_uri: str = OUT_OF_BAND,
    website: str = "",
    scopes: str = DEFAULT_SCOPES,
    http: HttpClient | None = None,
) -> AppRegistration:
    """Register Relais on one server (``POST /api/v1/apps``); each server needs its own."""
    instance = normalize_instance(instance)
    session, bridge = bridged_session(http or MastodonHttpClient(base_url=instance))
    try:
        Mastodon.create_app(
            client_name,
            scopes=scopes.split(),
            redirect_uris=redirect_uri,
            website=website or None,
            api_base_url=instance,
            session=session,
            user_agent=USER_AGENT,
        )
    except (MastodonError, KeyError, TypeError) as exc:
        # An error answer is HttpClient's error; an answer without the fields is read below.
        if bridge.failure() is not None or bridge.last_answer() is None:
            raise bridge.connector_error(exc) from exc
    data = json_object(_answer(bridge))
    if not data.get("client_id"):
        raise ConnectorError(f"{instance} registered no client: {json.dumps(data)[:500]}")
    return AppRegistration(
        instance=instance,
        client_id=str(data["client_id"]),
        client_secret=str(data.get("client_secret") or ""),
        redirect_uri=redirect_uri,
        scopes=scopes,
    )


def authorize_url(app: AppRegistration, *, state: str) -> str:
    """Where to send the admin's browser to approve access (``GET /oauth/authorize``).

    Built by Mastodon.py without asking the server (``skip_server_info``); the ``force_login``
    and ``lang`` it adds with empty defaults (``False``, ``None``) are left out.
    """
    http = MastodonHttpClient()  # nothing is sent: the address is built here
    try:
        api, _bridge = open_api(app.instance, http, client_id=app.client_id)
        url = api.auth_request_url(
            redirect_uris=app.redirect_uri,
            scopes=app.scopes.split(),
            state=state,
            skip_server_info=True,
        )
    finally:
        http.close()
    address, _mark, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in {"force_login", "lang"}]
    return f"{address}?{urlencode(kept)}"


def exchange_code(
    app: AppRegistration, code: str, *, http: HttpClient | None = None
) -> dict[str, Any]:
    """Trade the authorization code for a token; returns the credentials to keep (encrypted).

    Mastodon.py's ``log_in`` reads the server's OAuth metadata first (Mastodon 4.3+, RFC 8414;
    a 404 elsewhere) for its token endpoint, then posts the code.
    """
    api, bridge = open_api(
        app.instance,
        http or MastodonHttpClient(base_url=app.instance),
        client_id=app.client_id,
        client_secret=app.client_secret,
    )
    try:
        api.log_in(
            code=code.strip(),
            redirect_uri=app.redirect_uri,
            scopes=app.scopes.split(),
            allow_http=app.instance.startswith("http://"),
        )
    except (MastodonError, KeyError) as exc:
        if bridge.failure() is not None or bridge.last_answer() is None:
            raise bridge.connector_error(exc) from exc  # an error answer, or none at all
        if not isinstance(exc, KeyError):
            # The answer held no token, or granted fewer scopes than asked.
            raise CredentialsExpiredError(
                f"{app.instance} issued no usable access token: {exc}"
            ) from exc
        # A KeyError after an answer: a token answer without ``scope`` (optional in OAuth).
    data = json_object(_answer(bridge))
    if not data.get("access_token"):
        raise CredentialsExpiredError(f"{app.instance} issued no access token")
    return {
        "instance": app.instance,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "access_token": str(data["access_token"]),
        "scope": str(data.get("scope") or app.scopes),
    }


# ---------------------------------------------------------------------------------------------
# Notifications as inbound items


def _page_link(page: Any, rel: str, key: str) -> str:
    """A cursor Mastodon.py read from the page's ``Link`` header (``rel`` is next or prev)."""
    info = getattr(page, f"_pagination_{rel}", None)
    value = info.get(key) if isinstance(info, dict) else None
    return "" if value is None else str(value)


def _metrics(status: dict[str, Any]) -> dict[str, int]:
    names = {"favourites_count": "likes", "reblogs_count": "reposts", "replies_count": "replies"}
    return {
        name: int(status[key]) for key, name in names.items() if isinstance(status.get(key), int)
    }


@dataclass(frozen=True)
class ForwardRead:
    """Entries of one timeline read forward from a cursor, oldest first."""

    payloads: list[Any]
    newest: str
    has_more: bool

    def __bool__(self) -> bool:
        return bool(self.newest)


class MastodonConnector(Connector):
    key: ClassVar[str] = "mastodon"
    display_name: ClassVar[str] = "Mastodon"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.LISTEN,
            Capability.INBOX,
            Capability.REPLY,
            Capability.PRIVATE_MESSAGES,
            Capability.PUBLISH,
            Capability.METRICS,
        }
    )
    # 300 requests per 5 minutes per account is Mastodon's documented default.
    limits: ClassVar[Limits] = Limits(
        max_text_length=MAX_CHARACTERS, max_media=4, requests_per_minute=60
    )

    def __init__(self, account: AccountContext, *, http: HttpClient | None = None) -> None:
        super().__init__(account)
        # Counting text needs no server: a connector without one only fails when it calls out.
        address = account.credentials.get("instance") or account.settings.get("instance")
        self.instance = normalize_instance(str(address)) if address else ""
        self.domain = str(account.settings.get("domain") or urlsplit(self.instance).hostname or "")
        self.http = http or MastodonHttpClient(base_url=self.instance)
        self._api: tuple[Mastodon, HttpClientAdapter] | None = None
        self.hashtags = [
            str(tag).strip().lstrip("#").lower()
            for tag in account.settings.get("hashtags") or []
            if str(tag).strip().lstrip("#")
        ]

    # -- identity ---------------------------------------------------------------------------

    def qualified(self, acct: str) -> str:
        """``user`` (someone on the brand's server) -> ``user@domain``; remote ones are kept."""
        acct = acct.strip().lstrip("@").lower()
        return acct if "@" in acct else f"{acct}@{self.domain}"

    def own_author(self) -> InboundAuthor:
        handle = self.qualified(self.account.handle)
        return InboundAuthor(remote_id=handle, handle=handle, name=handle)

    def text_length(self, text: str) -> int:
        return mastodon_length(text)

    def verify_credentials(self) -> dict[str, Any]:
        """The account the token acts for (``GET /api/v1/accounts/verify_credentials``)."""
        _me, answer = self._call(lambda api: api.account_verify_credentials())
        return json_object(answer)

    def _call(self, operation: Callable[[Mastodon], T]) -> tuple[T, httpx.Response]:
        """Run one Mastodon.py call; its result (for pagination) and the server's own answer.

        A failure is raised as the connector error HttpClient mapped it to (a 401 is
        ``CredentialsExpiredError``, a 429 ``RateLimitedError`` with its wait), whatever
        exception Mastodon.py made of it.
        """
        if self._api is None:
            token = self.account.credentials.get("access_token")
            if not token or not self.instance:
                raise CredentialsExpiredError(
                    f"no server or access token for {self.account.handle}"
                )
            self._api = open_api(
                self.instance,
                self.http,
                version=configured_api_version(self.account.settings),
                access_token=str(token),
            )
        api, bridge = self._api
        bridge.forget()  # nothing of an earlier call is taken for this one's
        try:
            result = operation(api)
        except (MastodonError, ValueError) as exc:  # ValueError: an argument it refuses
            raise bridge.connector_error(exc) from exc
        return result, _answer(bridge)

    # -- streaming: wake-up signals for the fetch ---------------------------------------------

    def streaming_offered(self) -> bool:
        """The documented health check of the streaming API answers OK on this server."""
        try:
            response = self.http.request("GET", "/api/v1/streaming/health")
        except ConnectorError:
            return False
        return response.text.strip() == "OK"

    def streams(self) -> list[tuple[str, dict[str, str]]]:
        """The streams whose events mean the fetch has something new: notifications, tags."""
        return [("/api/v1/streaming/user/notification", {})] + [
            ("/api/v1/streaming/hashtag", {"tag": tag}) for tag in self.hashtags
        ]

    def listen(self, path: str, params: dict[str, str], wake: Callable[[str], None]) -> None:
        """Follow one stream, calling ``wake`` with each event that the fetch would read.

        Returns when the server closes the stream; network errors and refusals are raised as
        connector errors (a revoked token as ``CredentialsExpiredError``).
        """
        token = self.account.credentials.get("access_token")
        if not token or not self.instance:
            raise CredentialsExpiredError(f"no server or access token for {self.account.handle}")
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        with self.http.stream_lines("GET", path, params=params, headers=headers) as lines:
            for event, _data in server_sent_events(lines):
                if event in WAKING_EVENTS:
                    wake(event)

    # -- listening --------------------------------------------------------------------------

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        """Notifications, then statuses of the followed hashtags, newer than the cursor.

        The cursor holds one ``min_id`` per source: ``{"min_id": ..., "tags": {tag: ...}}``,
        and ``"quotes": false`` once the server refused the ``quote`` notification type.
        """
        cursor = cursor or {}
        items: list[InboundItem] = []
        skipped = 0
        notifications, quotes = self._read_notifications(cursor, limit)
        for notification in notifications.payloads:
            try:
                items += self._items_for(notification)
            except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                log_malformed("Mastodon", notification, exc)
                skipped += 1
        next_cursor: dict[str, Any] = {"min_id": notifications.newest} if notifications else {}
        if not quotes:
            next_cursor["quotes"] = False
        has_more = notifications.has_more
        tags: dict[str, str] = {}
        for tag in self.hashtags:
            timeline = self._read_forward(
                lambda api, tag=tag, **page: api.timeline_hashtag(quote(tag, safe=""), **page),
                (cursor.get("tags") or {}).get(tag),
                limit,
                TAG_PAGE_SIZE,
            )
            for status in timeline.payloads:
                try:
                    items.append(self.status_item(status))
                except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                    log_malformed("Mastodon", status, exc)
                    skipped += 1
            if timeline:
                tags[tag] = timeline.newest
            has_more = has_more or timeline.has_more
        if tags:
            next_cursor["tags"] = tags
        return FetchPage(items, next_cursor, has_more, skipped)

    def _read_notifications(self, cursor: dict[str, Any], limit: int) -> tuple[ForwardRead, bool]:
        """Notifications newer than the cursor, and whether the server takes the quote type.

        Servers speaking Mastodon's API differ on unknown ``types[]``: Mastodon before 4.5
        ignores them, some others answer 400 or 422. Those are asked again without "quote".
        """
        quotes = cursor.get("quotes", True) is not False
        kinds = (
            NOTIFICATION_TYPES if quotes else tuple(k for k in NOTIFICATION_TYPES if k != "quote")
        )
        try:
            read = self._read_forward(
                lambda api, **page: api.notifications(types=list(kinds), **page),
                cursor.get("min_id"),
                limit,
                PAGE_SIZE,
            )
        except ConnectorError as exc:
            if not quotes or exc.status_code not in REFUSED_PARAMETER:
                raise
            logger.info("%s refused the quote notification type: %s", self.instance, exc)
            return self._read_notifications({**cursor, "quotes": False}, limit)[0], False
        return read, quotes

    def _read_forward(
        self, read: Callable[..., Any], after: Any, limit: int, page_size: int
    ) -> ForwardRead:
        """Pages of a timeline newer than ``after``, oldest first.

        Without ``after`` the newest page is read and the cursor starts there. With it, pages are
        read forward with ``min_id`` (each holds the entries immediately newer than it), so nothing
        between two polls is skipped however many arrived.
        """
        newest = str(after or "")
        payloads: list[Any] = []
        has_more = False
        while len(payloads) < limit:
            size = min(page_size, limit - len(payloads))
            cursor = {"min_id": newest} if newest else {}
            result, answer = self._call(functools.partial(read, limit=size, **cursor))
            page = _payload_list(answer)
            if not page:
                break
            # A page comes newest first; entries go oldest first so parents precede replies.
            payloads += reversed(page)
            first_poll = not newest
            newest = _page_link(result, "prev", "min_id") or _newest_id(page) or newest
            has_more = len(page) >= size and not first_poll
            if not has_more:
                break
        return ForwardRead(payloads, newest, has_more)

    def _items_for(self, notification: dict[str, Any]) -> list[InboundItem]:
        kind = required(notification, "type")
        required(notification, "id")
        if kind not in NOTIFICATION_TYPES:
            return []  # a server that ignores ``types[]`` sends follows and polls too
        subject = self.status_item(required(notification, "status"), notification)
        if kind != "reblog":
            # A mention or a quote (the quoting status); or, favourited, the brand's status
            # with its new counts.
            return [subject]
        account = required(notification, "account")
        boost = InboundItem(
            # The boost's own status id is not in the notification: name it by its parts.
            remote_id=f"{subject.remote_id}/reblogged_by/{required(account, 'id')}",
            kind=PostKind.REPOST,
            author=self.author(account),
            text="",
            created_at=parse_iso_time(notification.get("created_at")),
            raw={"notification": str(notification["id"]), "subject": subject.remote_id},
        )
        return [subject, boost]

    def author(self, account: dict[str, Any]) -> InboundAuthor:
        handle = self.qualified(str(required(account, "acct")))
        followers = account.get("followers_count")
        return InboundAuthor(
            remote_id=handle,
            handle=handle,
            name=str(account.get("display_name") or account.get("username") or handle),
            followers=followers if isinstance(followers, int) else None,
        )

    def status_item(
        self, status: dict[str, Any], notification: dict[str, Any] | None = None
    ) -> InboundItem:
        status_id = str(required(status, "id"))
        visibility = str(status.get("visibility") or "public")
        in_reply_to = status.get("in_reply_to_id")
        if visibility == "direct":
            kind = PostKind.PRIVATE_MESSAGE
        else:
            kind = PostKind.REPLY if in_reply_to else PostKind.POST
        quoted = quoted_status_id(status)
        # A shown quote makes the "RE: <link>" fallback paragraph redundant.
        text = html_to_text(str(status.get("content") or ""), hide_quote_inline=bool(quoted))
        if spoiler := str(status.get("spoiler_text") or "").strip():
            text = f"{spoiler}\n\n{text}" if text else spoiler
        mentions = tuple(
            self.qualified(str(required(mention, "acct")))
            for mention in status.get("mentions") or []
        )
        raw: dict[str, Any] = {
            "uri": status.get("uri"),
            "url": status.get("url"),
            "visibility": visibility,
        }
        if quoted:
            raw["quoted"] = quoted
            if kind == PostKind.POST:
                kind = PostKind.QUOTE
        if notification is not None:
            raw["notification"] = {"id": str(notification["id"]), "type": notification["type"]}
        brand = self.own_author().handle
        if kind == PostKind.PRIVATE_MESSAGE and brand in mentions:
            raw["recipient"] = brand
        return InboundItem(
            remote_id=status_id,
            kind=kind,
            author=self.author(required(status, "account")),
            text=text,
            created_at=parse_iso_time(status.get("created_at")),
            in_reply_to=str(in_reply_to) if in_reply_to else None,
            mentions=mentions,
            lang=str(status["language"]) if status.get("language") else None,
            metrics=_metrics(status),
            raw=raw,
        )

    # -- acting -----------------------------------------------------------------------------

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """Answer a status where it was said: same visibility, its author addressed."""
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the status it answers")
        parent = self.get_status(post.in_reply_to)
        visibility = str(parent.get("visibility") or "public")
        if visibility not in VISIBILITIES:
            # A scope of its own (local-only, a list): keep it off the public timelines.
            visibility = "unlisted"
        author = self.qualified(str(required(required(parent, "account"), "acct")))
        addressed = [] if author == self.own_author().handle else [author]
        return self._create_status(
            _addressed(post.text, addressed),
            visibility=visibility,
            in_reply_to=post.in_reply_to,
            idempotency_key=idempotency_key,
        )

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """A direct status: only the people it mentions see it, so the recipient is mentioned."""
        if not post.recipient:
            raise ConnectorError("a private message needs its recipient")
        return self._create_status(
            _addressed(post.text, [self.qualified(post.recipient)]),
            visibility="direct",
            in_reply_to=post.in_reply_to,
            idempotency_key=idempotency_key,
        )

    def publish(
        self, post: OutboundPost, *, idempotency_key: str, media_ids: Sequence[str] = ()
    ) -> PublishedRef:
        visibility = str(self.account.settings.get("visibility") or "public")
        return self._create_status(
            post.text,
            visibility=visibility,
            in_reply_to=post.in_reply_to,
            media_ids=media_ids,
            idempotency_key=idempotency_key,
        )

    def delete(self, remote_id: str) -> None:
        self._call(lambda api: api.status_delete(quote(remote_id, safe="")))

    def get_status(self, remote_id: str) -> dict[str, Any]:
        _status, answer = self._call(lambda api: api.status(quote(remote_id, safe="")))
        return json_object(answer)

    def metrics(self, remote_id: str) -> dict[str, int]:
        """Likes (favourites), reposts (boosts) and replies of one status, as counted now."""
        return _metrics(self.get_status(remote_id))

    def boosters(self, remote_id: str, *, most: int = 2000) -> set[str] | None:
        """Everyone who boosts the status now (qualified handles), or None past ``most``."""
        first = self._call(lambda api: api.status_reblogged_by(quote(remote_id, safe="")))
        return self._list_accounts(first, lambda account: account, most)

    def quoters(self, remote_id: str, *, most: int = 2000) -> set[str] | None:
        """Who quotes the brand's status now (``GET /api/v1/statuses/:id/quotes``, Mastodon
        4.5+, the accepted quotes of one's own status). None on a server without it."""
        try:
            first = self._call(lambda api: api.status_quotes(quote(remote_id, safe="")))
        except ConnectorError as exc:
            if exc.retryable or exc.status_code not in (400, 404, 501):
                raise
            return None
        return self._list_accounts(first, lambda status: status.get("account") or {}, most)

    def _list_accounts(
        self,
        first: tuple[Any, httpx.Response],
        account_of: Callable[[dict[str, Any]], dict[str, Any]],
        most: int,
    ) -> set[str] | None:
        """The handles on a paged listing, or None past ``most``.

        Pages are followed through their ``Link`` header until one is empty or has no next: a
        server whose pages are smaller than asked is still read whole (an account missed here
        would withdraw a standing forward).
        """
        handles: set[str] = set()
        result, answer = first
        while True:
            page = _payload_list(answer)
            handles |= {self.qualified(str(required(account_of(row), "acct"))) for row in page}
            if not page or not _page_link(result, "next", "max_id"):
                return handles
            if len(handles) >= most:
                return None
            result, answer = self._call(
                functools.partial(Mastodon.fetch_next, previous_page=result)
            )

    def upload_media(
        self, content: bytes, *, filename: str, content_type: str, description: str = ""
    ) -> str:
        """Upload an image or video (``POST /api/v2/media``); returns the id to publish with.

        Large files may still be processing (202) when this returns; the server accepts their id
        in a status once it is done, and answers 422 before that.
        """
        _media, answer = self._call(
            lambda api: api.media_post(
                content,
                mime_type=content_type,
                description=description or None,
                file_name=filename,
            )
        )
        return str(required(json_object(answer), "id"))

    def _create_status(
        self,
        text: str,
        *,
        visibility: str,
        idempotency_key: str,
        in_reply_to: str | None = None,
        media_ids: Sequence[str] = (),
    ) -> PublishedRef:
        # The server keeps the key for an hour: a retry after a timeout gets the first status
        # back instead of posting twice.
        _status, answer = self._call(
            lambda api: api.status_post(
                text,
                in_reply_to_id=in_reply_to or None,
                media_ids=list(media_ids) or None,
                visibility=visibility,
                idempotency_key=idempotency_key,
            )
        )
        status = json_object(answer)
        return PublishedRef(
            remote_id=str(required(status, "id")),
            created_at=parse_iso_time(status.get("created_at")),
            url=str(status.get("url") or ""),
        )


def quoted_status_id(status: dict[str, Any]) -> str:
    """The status a status quotes ('' if none), in the shapes servers send.

    Mastodon 4.5: ``quote`` is a Quote (``quoted_status``) or a ShallowQuote
    (``quoted_status_id``) with a ``state``; only an accepted quote shows the quoted post.
    Pleroma, Akkoma and Fedibird: ``quote_id``, or ``quote`` as the quoted status itself.
    """
    found = status.get("quote")
    if isinstance(found, dict) and "state" in found:
        if found["state"] not in QUOTE_STATES_SHOWN:
            return ""
        inner = found.get("quoted_status")
        quoted = inner.get("id") if isinstance(inner, dict) else found.get("quoted_status_id")
        return str(quoted or "")
    if isinstance(found, dict) and found.get("id"):
        return str(found["id"])
    return str(status.get("quote_id") or "")


def server_sent_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each event in a text/event-stream; comments (heartbeats) skipped."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _colon, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


def _payload_list(response: httpx.Response) -> list[Any]:
    """A page of a timeline; anything else is logged whole and fails this poll clearly."""
    try:
        payload = response.json()
    except ValueError:
        payload = response.text
    if not isinstance(payload, list):
        log_malformed(
            "Mastodon", payload, MalformedPayloadError(f"{response.request.url.path}: not a list")
        )
        raise ConnectorError(f"{response.request.url.path} answered something that is not a list")
    return payload


def _newest_id(page: list[Any]) -> str:
    """The newest id of a page when the server sent no ``Link`` header.

    Ids are opaque strings; Mastodon's are numbers, which order as numbers. Otherwise trust the
    documented order, newest first.
    """
    ids = [str(entry.get("id") or "") for entry in page if isinstance(entry, dict)]
    if ids and all(i.isdigit() for i in ids):
        return max(ids, key=int)
    return ids[0] if ids else ""


def _addressed(text: str, handles: Iterable[str]) -> str:
    """Prefix the mentions a status needs to reach its people, unless the text has them."""
    written = {f"{match.group(0).lstrip('@').lower()}" for match in _MENTION.finditer(text)}
    missing = [
        handle
        for handle in handles
        if handle.lower() not in written and handle.split("@")[0].lower() not in written
    ]
    return " ".join([*(f"@{handle}" for handle in missing), text])
