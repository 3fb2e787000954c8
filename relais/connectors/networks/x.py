"""X (API v2): mentions, replies, posts, deletions and direct messages with the brand's own keys.

Authentication: OAuth 2.0 Authorization Code with PKCE (user context), with ``offline.access`` so
X issues a refresh token. X documents both this and OAuth 1.0a user context for creating posts,
reading mentions and direct messages; OAuth 2.0 is used because its scopes say exactly what Relais
may do (``tweet.read tweet.write users.read dm.read dm.write``), requests carry a plain bearer token
instead of a per-request signature, and a revoked or expired grant is one clear 401. The token
lives two hours; it is refreshed before it expires (and once after a 401), and the new pair is
stored at once through ``AccountContext.save_credentials`` since X rotates refresh tokens.
Bring your own keys: each workspace enters the client id (and secret, for a confidential client)
of its own X developer app, so its usage is billed to its own X account.

Credentials: ``client_id``, ``client_secret`` (may be empty: public client), ``access_token``,
``refresh_token``, ``expires_at`` (epoch seconds), ``user_id``.
Account settings: ``api_base`` (default from ``settings.RELAIS["X_API_BASE"]``, else
https://api.x.com) and ``direct_messages`` (false to leave DMs out).

Cost: X bills every call (pay-per-use: per resource read, per write request). Each call is
charged to a ``CostMeter`` (the workspace's monthly budget, ``relais/connectors/budget.py``)
before it is made: a write that does not fit the budget is refused, and reads stop once the
budget is spent. The price table is configuration (``settings.RELAIS["X_PRICES"]``), defaulting
to ``DEFAULT_PRICES`` below, copied from X's pricing page (see docs/connectors.md).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlencode

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

DEFAULT_API_BASE = "https://api.x.com"
DEFAULT_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
SCOPES = "tweet.read tweet.write users.read dm.read dm.write offline.access"
MAX_WEIGHTED_LENGTH = 280
PAGE_SIZE = 100  # the documented maximum of max_results for mentions and DM events
REFRESH_MARGIN = 120  # seconds before expiry when the token is refreshed
RETRY_WINDOW = timedelta(minutes=15)  # how far back a failed create looks for its first attempt

# Requests use the vocabulary of X's published OpenAPI document ("post": ``post.fields``,
# ``referenced_posts``), which its official SDK sends; the API also still answers the older "tweet"
# vocabulary of docs.x.com, so answers are read in both (see ``_references``, ``_included_posts``).
# In the published vocabulary the author and the referenced posts are expansions, not fields.
POST_FIELDS = "id,text,created_at,conversation_id,entities,lang,public_metrics"
POST_EXPANSIONS = "author_id,referenced_posts"
USER_FIELDS = "id,name,username,public_metrics"
DM_FIELDS = "id,text,event_type,created_at,dm_conversation_id"

# Micro-dollars (millionths of a US dollar) per unit, from https://docs.x.com/x-api/getting-started/pricing
# read on 2026-11-26: reads are charged per resource returned, writes per request.
DEFAULT_PRICES: dict[str, int] = {
    "posts_read": 5_000,  # Posts: Read, $0.005 per post returned
    "users_read": 10_000,  # User: Read, $0.010 per user returned
    "dm_events_read": 10_000,  # DM Event: Read, $0.010 per event returned
    "content_create": 15_000,  # Content: Create, $0.015 per post
    "content_create_with_url": 200_000,  # Content: Create (with URL), $0.200 per post
    "dm_create": 15_000,  # DM Interaction: Create, $0.015 per message
    "delete": 10_000,  # Interaction: Delete, $0.010 per request
}


def api_base(account_settings: Mapping[str, Any] | None = None) -> str:
    """The account's API address, else the deployment's, else X's own."""
    configured = (account_settings or {}).get("api_base") or settings.RELAIS.get("X_API_BASE")
    return str(configured or DEFAULT_API_BASE).rstrip("/")


def price_table() -> dict[str, int]:
    configured: Mapping[str, int] = settings.RELAIS.get("X_PRICES") or {}
    return {**DEFAULT_PRICES, **configured}


def x_length(text: str) -> int:
    # counting.py is where every network's length rule lives; imported here, not at the top,
    # because it imports the registry, which imports this module.
    from relais.publishing.counting import x_length as weighted_length

    return weighted_length(text)


def has_link(text: str) -> bool:
    from relais.publishing.counting import URL

    return URL.search(text) is not None


def post_cost(text: str) -> int:
    """What creating a post (or reply) with this text costs, in micro-dollars."""
    prices = price_table()
    return prices["content_create_with_url" if has_link(text) else "content_create"]


def _comparable(text: str) -> str:
    """Text with its links blanked: X answers with every link shortened to t.co."""
    from relais.publishing.counting import URL

    return URL.sub("<link>", text).strip()


def format_usd(micros: int) -> str:
    return f"${micros / 1_000_000:.3f}"


# ---------------------------------------------------------------------------------------------
# Cost metering


class BudgetExhaustedError(ConnectorError):
    """The workspace's monthly budget for this network does not cover the call: nothing was sent."""


class CostMeter(Protocol):
    def ensure_open(self) -> None:
        """Raise ``BudgetExhaustedError`` when nothing is left to spend this month."""

    def reserve(self, operation: str, micros: int) -> None:
        """Charge a call whose cost is known before it is made, or refuse it if it does not fit."""

    def record(self, charges: Mapping[str, int]) -> None:
        """Charge one call whose cost is only known from its answer (reads: per resource),
        as micro-dollars per operation (``{"posts_read": 45000, "users_read": 40000}``)."""

    def refund(self, operation: str, micros: int) -> None:
        """Give back a reservation for a write X refused (X bills only what it accepted)."""


# ---------------------------------------------------------------------------------------------
# HTTP: X's errors and rate-limit headers


def problem_detail(response: httpx.Response) -> str:
    """X's own explanation: ``detail``/``title`` of a problem, or the first of ``errors``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if body.get("detail") or body.get("title"):
        return str(body.get("detail") or body.get("title"))[:500]
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("detail") or first.get("message") or "")[:500]
    return str(body.get("error_description") or body.get("error") or "")[:500]


def seconds_until_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until ``x-rate-limit-reset`` (epoch seconds of the window's end)."""
    if not value or not value.strip().isdigit():
        return None
    return max(0.0, float(value) - (time.time() if now is None else now))


class XHttpClient(HttpClient):
    """The shared client, reading X's rate-limit reset and its problem details.

    A 403 is not a revoked token on X: it answers 403 for an action the app's access does not
    allow (a tier without DMs, a duplicate post), so it is a plain error with X's reason.
    """

    @staticmethod
    def _classify(method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        detail = problem_detail(response)
        summary = f"{method} {url} answered {status}" + (f": {detail}" if detail else "")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            if retry_after is None:
                retry_after = seconds_until_reset(response.headers.get("x-rate-limit-reset"))
            return RateLimitedError(summary, retry_after)
        if status in RETRYABLE_STATUSES:
            return TransientNetworkError(summary, retry_after)
        if status == 401:
            return CredentialsExpiredError(summary)
        if status == 403:
            return UnsupportedError(f"X refused it: {detail}" if detail else summary)
        return ConnectorError(f"X refused it: {detail}" if detail else summary)


# ---------------------------------------------------------------------------------------------
# Connecting: OAuth 2.0 authorization code with PKCE


@dataclass(frozen=True)
class PendingAuthorization:
    """Kept (encrypted) in the admin's session between the redirect to X and the way back."""

    client_id: str
    client_secret: str
    redirect_uri: str
    code_verifier: str
    state: str
    api_base: str = DEFAULT_API_BASE


def start_authorization(
    client_id: str,
    client_secret: str,
    *,
    redirect_uri: str,
    api_base: str = DEFAULT_API_BASE,
    authorize_url: str = "",
) -> tuple[str, PendingAuthorization]:
    """Where to send the admin's browser to approve access, and what to keep until it returns.

    ``authorize_url``: X's approval page (default ``settings.RELAIS["X_AUTHORIZE_URL"]``, else
    x.com's), configuration like the API address so a test can play it on 127.0.0.1."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    pending = PendingAuthorization(
        client_id=client_id.strip(),
        client_secret=client_secret.strip(),
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        state=secrets.token_urlsafe(24),
        api_base=api_base.rstrip("/"),
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": pending.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": pending.state,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    authorize = authorize_url or str(
        settings.RELAIS.get("X_AUTHORIZE_URL") or DEFAULT_AUTHORIZE_URL
    )
    return f"{authorize}?{query}", pending


def exchange_code(
    pending: PendingAuthorization, code: str, *, http: HttpClient | None = None
) -> dict[str, Any]:
    """Trade the authorization code for tokens; returns the credentials to keep (encrypted)."""
    form = {
        "grant_type": "authorization_code",
        "code": code.strip(),
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.code_verifier,
        "client_id": pending.client_id,
    }
    tokens = _token_request(pending.client_id, pending.client_secret, form, pending.api_base, http)
    return {"client_id": pending.client_id, "client_secret": pending.client_secret, **tokens}


def _token_request(
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    base: str,
    http: HttpClient | None,
) -> dict[str, Any]:
    """``POST /2/oauth2/token``: a confidential client authenticates with HTTP Basic."""
    headers = {}
    if client_secret:
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    client = http or XHttpClient(base_url=base)
    data = json_object(client.request("POST", "/2/oauth2/token", data=form, headers=headers))
    if not data.get("access_token"):
        raise CredentialsExpiredError("X issued no access token")
    expires_in = int(data.get("expires_in") or 7200)
    return {
        "access_token": str(data["access_token"]),
        "refresh_token": str(data.get("refresh_token") or form.get("refresh_token") or ""),
        "expires_at": int(time.time()) + expires_in,
        "scope": str(data.get("scope") or ""),
    }


# ---------------------------------------------------------------------------------------------
# Payloads


def _metrics(tweet: dict[str, Any]) -> dict[str, int]:
    public = tweet.get("public_metrics") or {}
    # X's published OpenAPI document says repost_count; older answers said retweet_count.
    names = {
        "like_count": "likes",
        "retweet_count": "reposts",
        "repost_count": "reposts",
        "reply_count": "replies",
        "quote_count": "quotes",
    }
    return {
        name: int(public[key]) for key, name in names.items() if isinstance(public.get(key), int)
    }


def _references(post: dict[str, Any]) -> list[dict[str, Any]]:
    """``referenced_posts`` (published vocabulary), else ``referenced_tweets`` (older answers)."""
    references = post.get("referenced_posts") or post.get("referenced_tweets") or []
    return [r for r in references if isinstance(r, dict)]


def _edit_history(post: dict[str, Any]) -> list[str]:
    """The ids of a post's versions, oldest first: ``edit_history_post_ids`` in the published
    document, ``edit_history_tweet_ids`` in every recorded answer (tests/fixtures/x/recorded)."""
    history = post.get("edit_history_post_ids") or post.get("edit_history_tweet_ids") or []
    return [str(i) for i in history] if isinstance(history, list) else []


class FieldsIgnoredError(ConnectorError):
    """X answered with none of the fields asked for: its default shape (``id``, ``text``,
    ``edit_history_tweet_ids``, as recorded), which is what it returns for a request whose
    fields and expansions it did not apply. Nothing is read and the cursor stays, instead of
    every post being dropped as malformed one by one."""


def _require_requested(kind: str, rows: list[dict[str, Any]], key: str) -> None:
    if rows and not any(row.get(key) for row in rows):
        keys = sorted({k for row in rows for k in row})
        raise FieldsIgnoredError(
            f"X answered the {kind} without the fields Relais asked for: no {key} on any of "
            f"{len(rows)} (only {', '.join(keys)}); nothing was read"
        )


def _included_posts(body: dict[str, Any]) -> list[Any]:
    includes = body.get("includes") or {}
    return list(includes.get("posts") or includes.get("tweets") or [])


@dataclass(frozen=True)
class Expansions:
    users: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Expansions:
        users = (body.get("includes") or {}).get("users") or []
        return cls({str(u["id"]): u for u in users if isinstance(u, dict) and u.get("id")})


def _ids_newer(a: str, b: str) -> bool:
    """Post and event ids are snowflakes: a larger number is newer."""
    return int(a) > int(b)


# ---------------------------------------------------------------------------------------------
# The connector


class XConnector(Connector):
    key: ClassVar[str] = "x"
    display_name: ClassVar[str] = "X"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INBOX,
            Capability.REPLY,
            Capability.PRIVATE_MESSAGES,  # needs dm.read/dm.write and an access level with DMs
            Capability.PUBLISH,
            Capability.METRICS,
        }
    )
    # The mentions timeline allows 180 requests per 15 minutes per user: 12 a minute.
    limits: ClassVar[Limits] = Limits(
        max_text_length=MAX_WEIGHTED_LENGTH, max_media=4, requests_per_minute=12
    )
    metered: ClassVar[bool] = True  # the registry hands it the workspace's budget

    def __init__(
        self,
        account: AccountContext,
        *,
        http: HttpClient | None = None,
        meter: CostMeter | None = None,
    ) -> None:
        super().__init__(account)
        self.base = api_base(account.settings)
        self.http = http or XHttpClient(base_url=self.base)
        self.meter = meter
        self.credentials = dict(account.credentials)
        self.prices = price_table()

    # -- identity and text --------------------------------------------------------------------

    def own_author(self) -> InboundAuthor:
        handle = self.account.handle.lower()
        user_id = str(self.credentials.get("user_id") or handle)
        return InboundAuthor(remote_id=user_id, handle=handle, name=handle)

    def text_length(self, text: str) -> int:
        return x_length(text)

    def me(self) -> dict[str, Any]:
        """The user the token acts for (``GET /2/users/me``)."""
        self._require_meter().ensure_open()
        body = json_object(self._call("GET", "/2/users/me", params={"user.fields": USER_FIELDS}))
        self._charge_read(users_read=1)
        return dict(required(body, "data"))

    # -- HTTP with token refresh and metering ----------------------------------------------

    def _require_meter(self) -> CostMeter:
        if self.meter is None:
            raise ConnectorError("X calls are paid: this connector has no budget to charge")
        return self.meter

    def _charge_read(self, **counts: int) -> None:
        """Charge one read by the resources its answer holds, per X's price of each kind."""
        charges = {op: self.prices[op] * count for op, count in counts.items() if count}
        if charges:
            self._require_meter().record(charges)

    @contextmanager
    def _paid(self, operation: str) -> Iterator[None]:
        """Reserve a write's price before sending it; give it back if X surely refused it."""
        meter, cost = self._require_meter(), self.prices[operation]
        meter.reserve(operation, cost)
        try:
            yield
        except RateLimitedError:
            meter.refund(operation, cost)
            raise
        except TransientNetworkError:
            raise  # a timeout or a 5xx may hide a success: it stays charged
        except ConnectorError:
            meter.refund(operation, cost)
            raise

    def _call(self, method: str, path: str, *, once: bool = False, **kwargs: Any) -> httpx.Response:
        if not self.credentials.get("access_token"):
            raise CredentialsExpiredError(f"no X access token for @{self.account.handle}")
        if time.time() >= float(self.credentials.get("expires_at") or 0) - REFRESH_MARGIN:
            self._refresh()
        try:
            return self._send(method, path, once=once, **kwargs)
        except CredentialsExpiredError:
            # Revoked, or expired early: one refresh tells which; a refused refresh is final.
            self._refresh()
            return self._send(method, path, once=once, **kwargs)

    def _send(self, method: str, path: str, *, once: bool, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.credentials['access_token']}"}
        if not once:
            return self.http.request(method, path, headers=headers, **kwargs)
        attempts, self.http.max_attempts = self.http.max_attempts, 1
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        finally:
            self.http.max_attempts = attempts

    def _refresh(self) -> None:
        refresh_token = self.credentials.get("refresh_token")
        if not refresh_token:
            raise CredentialsExpiredError(f"the X token of @{self.account.handle} expired")
        client_id = str(self.credentials.get("client_id") or "")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        }
        try:
            tokens = _token_request(
                client_id,
                str(self.credentials.get("client_secret") or ""),
                form,
                self.base,
                self.http,
            )
        except ConnectorError as exc:
            if exc.status_code in {400, 401}:  # invalid_grant: revoked or already used
                raise CredentialsExpiredError(f"X refused to renew the token: {exc}") from exc
            raise
        self.credentials.update(tokens)
        if self.account.save_credentials is not None:
            self.account.save_credentials(dict(self.credentials))

    def user_id(self) -> str:
        if not self.credentials.get("user_id"):
            self.credentials["user_id"] = str(required(self.me(), "id"))
            if self.account.save_credentials is not None:
                self.account.save_credentials(dict(self.credentials))
        return str(self.credentials["user_id"])

    # -- reading ------------------------------------------------------------------------------

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        """Mentions newer than the cursor, then direct messages newer than the cursor.

        The cursor: ``{"mentions": {"since_id", "until_id"?, "newest_id"?}, "dms": {...}}``. A
        read cut short by ``limit`` keeps ``until_id`` (the oldest post read) so the next poll
        reads the rest of the gap before moving ``since_id`` up to ``newest_id``.
        """
        cursor = dict(cursor or {})
        self._require_meter().ensure_open()
        items: list[InboundItem] = []
        skipped = 0
        mentions, mention_cursor, more = self._read_mentions(cursor.get("mentions") or {}, limit)
        for tweet, expansions in mentions:
            try:
                items.append(self.tweet_item(tweet, expansions))
            except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                log_malformed("X", tweet, exc)
                skipped += 1
        next_cursor = {**cursor, "mentions": mention_cursor}
        if self.account.settings.get("direct_messages", True) and not more:
            dm_items, dm_cursor, dm_skipped = self._read_direct_messages(cursor.get("dms") or {})
            items += dm_items
            skipped += dm_skipped
            next_cursor["dms"] = dm_cursor
        return FetchPage(items, next_cursor, has_more=more, skipped=skipped)

    def _read_mentions(
        self, cursor: dict[str, Any], limit: int
    ) -> tuple[list[tuple[dict[str, Any], Expansions]], dict[str, Any], bool]:
        since = cursor.get("since_id")
        until = cursor.get("until_id")
        newest = cursor.get("newest_id")
        read: list[tuple[dict[str, Any], Expansions]] = []
        token = None
        while len(read) < limit:
            params = {
                "max_results": str(max(5, min(PAGE_SIZE, limit - len(read)))),
                "post.fields": POST_FIELDS,
                "expansions": POST_EXPANSIONS,
                "user.fields": USER_FIELDS,
            }
            if since:
                params["since_id"] = str(since)
            if until:
                params["until_id"] = str(until)
            if token:
                params["pagination_token"] = token
            self._require_meter().ensure_open()
            body = json_object(
                self._call("GET", f"/2/users/{self.user_id()}/mentions", params=params)
            )
            page = [t for t in body.get("data") or [] if isinstance(t, dict)]
            self._charge_read(
                posts_read=len(page) + len(_included_posts(body)),
                users_read=len((body.get("includes") or {}).get("users") or []),
            )
            _require_requested("mentions", page, "author_id")
            meta = body.get("meta") or {}
            if page and not newest:
                newest = str(meta.get("newest_id") or page[0].get("id"))
            expansions = Expansions.of(body)
            read += [(tweet, expansions) for tweet in page]
            token = meta.get("next_token")
            if not since or not token or not page:
                token = None  # the first poll starts from the newest page only
                break
        read.reverse()  # pages come newest first; parents go before their replies
        if token and read:
            # Cut short: keep reading the same gap, below the oldest post already read.
            gap = {"since_id": since, "until_id": str(read[0][0]["id"]), "newest_id": newest}
            return read, gap, True
        newest = newest or since  # nothing new: the cursor stays where it was
        return read, ({"since_id": str(newest)} if newest else {}), False

    def _read_direct_messages(
        self, cursor: dict[str, Any]
    ) -> tuple[list[InboundItem], dict[str, Any], int]:
        """Message events newer than the cursor's ``newest_id`` (``GET /2/dm_events``).

        The endpoint has no ``since_id``: pages are read newest first until a known event.
        An access level without DMs answers 403; that is remembered and DMs are left alone.
        """
        if cursor.get("unavailable"):
            return [], cursor, 0
        known = cursor.get("newest_id")
        events: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}
        token = None
        while True:
            params = {
                "max_results": str(PAGE_SIZE),
                "event_types": "MessageCreate",
                "dm_event.fields": DM_FIELDS,
                "expansions": "sender_id",
                "user.fields": USER_FIELDS,
            }
            if token:
                params["pagination_token"] = token
            self._require_meter().ensure_open()
            try:
                body = json_object(self._call("GET", "/2/dm_events", params=params))
            except UnsupportedError as exc:
                logger.warning(
                    "direct messages of @%s are not readable: %s", self.account.handle, exc
                )
                return [], {"unavailable": str(exc)[:300]}, 0
            page = [e for e in body.get("data") or [] if isinstance(e, dict)]
            self._charge_read(
                dm_events_read=len(page),
                users_read=len((body.get("includes") or {}).get("users") or []),
            )
            try:
                _require_requested("direct messages", page, "sender_id")
            except FieldsIgnoredError as exc:
                # Like an access level without DMs: remembered and shown, mentions keep flowing.
                logger.warning("direct messages of @%s: %s", self.account.handle, exc)
                return [], {"unavailable": str(exc)[:300]}, 0
            users.update(Expansions.of(body).users)
            fresh = [e for e in page if not known or _ids_newer(str(e.get("id") or 0), str(known))]
            events += fresh
            token = (body.get("meta") or {}).get("next_token")
            if not known or len(fresh) < len(page) or not token:
                break
        items, skipped = [], 0
        for event in reversed(events):
            try:
                if item := self.dm_item(event, users):
                    items.append(item)
            except (MalformedPayloadError, KeyError, TypeError, ValueError) as exc:
                log_malformed("X", event, exc)
                skipped += 1
        newest = str(events[0]["id"]) if events else known
        return items, ({"newest_id": newest} if newest else {}), skipped

    def author(self, user_id: str, users: dict[str, dict[str, Any]]) -> InboundAuthor:
        user = users.get(user_id) or {}
        handle = str(user.get("username") or user_id).lower()
        followers = (user.get("public_metrics") or {}).get("followers_count")
        return InboundAuthor(
            remote_id=user_id,
            handle=handle,
            name=str(user.get("name") or handle),
            followers=followers if isinstance(followers, int) else None,
        )

    def tweet_item(self, tweet: dict[str, Any], expansions: Expansions) -> InboundItem:
        tweet_id = str(required(tweet, "id"))
        references = {str(ref.get("type")): str(ref.get("id")) for ref in _references(tweet)}
        in_reply_to = references.get("replied_to")
        if in_reply_to:
            kind = PostKind.REPLY
        elif "quoted" in references:
            kind = PostKind.QUOTE
        elif "retweeted" in references:
            kind = PostKind.REPOST
        else:
            kind = PostKind.POST
        history = _edit_history(tweet)  # an edit is a new post id; the first is the original
        mentions = tuple(
            str(m["username"]).lower()
            for m in (tweet.get("entities") or {}).get("mentions") or []
            if isinstance(m, dict) and m.get("username")
        )
        return InboundItem(
            remote_id=tweet_id,
            kind=kind,
            author=self.author(str(required(tweet, "author_id")), expansions.users),
            text=str(tweet.get("text") or ""),
            created_at=parse_iso_time(tweet.get("created_at")),
            in_reply_to=in_reply_to,
            mentions=mentions,
            lang=str(tweet["lang"]) if tweet.get("lang") not in (None, "", "und") else None,
            metrics=_metrics(tweet),
            raw={
                "conversation_id": tweet.get("conversation_id"),
                "url": f"https://x.com/i/web/status/{tweet_id}",
                **({"quoted": references["quoted"]} if "quoted" in references else {}),
                **({"edit_of": history[0]} if history and history[0] != tweet_id else {}),
            },
        )

    def dm_item(
        self, event: dict[str, Any], users: dict[str, dict[str, Any]]
    ) -> InboundItem | None:
        if event.get("event_type", "MessageCreate") != "MessageCreate":
            return None
        sender = str(required(event, "sender_id"))
        own = self.own_author()
        raw: dict[str, Any] = {"dm_conversation_id": event.get("dm_conversation_id")}
        if sender != own.remote_id:
            raw["recipient"] = own.handle
        return InboundItem(
            remote_id=f"dm/{required(event, 'id')}",
            kind=PostKind.PRIVATE_MESSAGE,
            author=own if sender == own.remote_id else self.author(sender, users),
            text=str(event.get("text") or ""),
            created_at=parse_iso_time(event.get("created_at")),
            raw=raw,
        )

    # -- acting -------------------------------------------------------------------------------

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the post it answers")
        body = {"text": post.text, "reply": {"in_reply_to_tweet_id": post.in_reply_to}}
        return self._create_post(body, idempotency_key)

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        body: dict[str, Any] = {"text": post.text}
        if post.in_reply_to:
            body["reply"] = {"in_reply_to_tweet_id": post.in_reply_to}
        return self._create_post(body, idempotency_key)

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """``POST /2/dm_conversations/with/:participant_id/messages`` (the one-to-one thread)."""
        if not post.recipient:
            raise ConnectorError("a private message needs its recipient")
        path = f"/2/dm_conversations/with/{quote(post.recipient, safe='')}/messages"
        with self._paid("dm_create"):
            response = self._call("POST", path, json={"text": post.text})
        data = required(json_object(response), "data")
        return PublishedRef(
            remote_id=f"dm/{required(data, 'dm_event_id')}", created_at=datetime.now(UTC)
        )

    def delete(self, remote_id: str) -> None:
        with self._paid("delete"):
            self._call("DELETE", f"/2/tweets/{quote(remote_id, safe='')}")

    def metrics(self, remote_id: str) -> dict[str, int]:
        """Likes, reposts, replies and quotes of one post, as counted now."""
        self._require_meter().ensure_open()
        params = {"post.fields": "public_metrics"}
        response = self._call("GET", f"/2/tweets/{quote(remote_id, safe='')}", params=params)
        self._charge_read(posts_read=1)
        return _metrics(required(json_object(response), "data"))

    def _create_post(self, body: dict[str, Any], idempotency_key: str) -> PublishedRef:
        """Create a post once: X keeps no idempotency key, so a failed attempt is looked up.

        The create is sent without the client's automatic retries; when it fails in a way that
        may hide a success (a timeout, a 5xx), the account's recent posts are searched for the
        same text before trying again, so a retry never posts twice.
        """
        operation = "content_create_with_url" if has_link(body["text"]) else "content_create"
        with self._paid(operation):
            try:
                response = self._call("POST", "/2/tweets", json=body, once=True)
            except RateLimitedError:
                raise
            except TransientNetworkError as exc:
                if existing := self._recent_identical_post(body):
                    logger.info("send %s already on X as %s", idempotency_key, existing.remote_id)
                    return existing
                logger.info("send %s failed (%s); trying once more", idempotency_key, exc)
                response = self._call("POST", "/2/tweets", json=body, once=True)
        data = required(json_object(response), "data")
        tweet_id = str(required(data, "id"))
        return PublishedRef(
            remote_id=tweet_id,
            created_at=datetime.now(UTC),
            url=f"https://x.com/{self.account.handle}/status/{tweet_id}",
        )

    def _recent_identical_post(self, body: dict[str, Any]) -> PublishedRef | None:
        start = (datetime.now(UTC) - RETRY_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {
            "max_results": "5",
            "start_time": start,
            "post.fields": "id,text,created_at",
            "expansions": "referenced_posts",
        }
        response = self._call("GET", f"/2/users/{self.user_id()}/tweets", params=params)
        answer = json_object(response)
        tweets = [t for t in answer.get("data") or [] if isinstance(t, dict)]
        self._charge_read(posts_read=len(tweets) + len(_included_posts(answer)))
        wanted_parent = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        for tweet in tweets:
            parents = [r.get("id") for r in _references(tweet) if r.get("type") == "replied_to"]
            same_text = _comparable(str(tweet.get("text") or "")) == _comparable(body["text"])
            if same_text and (parents[:1] or [None])[0] == wanted_parent:
                # Only id and text are sure to be there (X's default shape, as recorded).
                created = tweet.get("created_at")
                return PublishedRef(
                    remote_id=str(tweet["id"]),
                    created_at=parse_iso_time(created) if created else datetime.now(UTC),
                    url=f"https://x.com/{self.account.handle}/status/{tweet['id']}",
                )
        return None
