"""RSS and Atom feeds: blogs and press, listened to with conditional GET.

Account settings: ``url`` (the feed's address; the account's handle when absent). The cursor keeps
the feed's ``ETag`` and ``Last-Modified`` validators, so an unchanged feed costs a 304 and no
parsing, and the hashes of the entries already delivered, so an entry is delivered once even when
the feed is re-sent whole. Parsing is feedparser's (RSS 0.9x/1.0/2.0 and Atom).

A feed that cannot be parsed is logged with its raw body, skipped, and reported in the page's
``error`` (kept in the cursor, so an unchanged broken feed is still reported after a 304). An
entry without an id or link, or with neither title nor summary, is logged and skipped.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import feedparser
import httpx

from relais.connectors.base import (
    AccountContext,
    Capability,
    Connector,
    FetchPage,
    InboundAuthor,
    InboundItem,
    Limits,
    PostKind,
)
from relais.connectors.client import HttpClient
from relais.connectors.networks.mastodon import html_to_text
from relais.core import clock

logger = logging.getLogger(__name__)

SEEN_KEPT = 1000  # entry hashes remembered; feeds carry far fewer entries than this
RAW_LOGGED = 65_536  # bytes of a malformed feed kept in the log
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)


@dataclass(frozen=True)
class FeedPage(FetchPage):
    """A feed poll; ``error`` says why a feed was skipped (shown to admins), else empty."""

    error: str = ""


def entry_key(entry: dict[str, Any]) -> str:
    """A short stable hash of an entry's identity: its id (guid), else link, title or summary."""
    identity = entry.get("id") or entry.get("link") or entry.get("title") or entry.get("summary")
    return hashlib.sha256(str(identity).encode()).hexdigest()[:20]


class RssConnector(Connector):
    key: ClassVar[str] = "rss"
    display_name: ClassVar[str] = "RSS / Atom"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.LISTEN})
    limits: ClassVar[Limits] = Limits(max_text_length=0)

    def __init__(self, account: AccountContext, *, http: HttpClient | None = None) -> None:
        super().__init__(account)
        self.url = str(account.settings.get("url") or account.handle)
        self.http = http or HttpClient()

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FeedPage:
        cursor = dict(cursor or {})
        headers = {"Accept": ACCEPT}
        if cursor.get("etag"):
            headers["If-None-Match"] = str(cursor["etag"])
        if cursor.get("modified"):
            headers["If-Modified-Since"] = str(cursor["modified"])
        response = self.http.request("GET", self.url, headers=headers, follow_redirects=True)
        if response.status_code == 304:  # unchanged, and so is what was wrong with it
            return FeedPage([], cursor, error=str(cursor.get("error") or ""))
        parsed = feedparser.parse(
            response.content,
            response_headers={
                "content-type": response.headers.get("content-type", ""),
                "content-location": str(response.url),
            },
        )
        seen: list[str] = list(cursor.get("seen") or [])
        validators = _validators(response)
        if _unreadable(parsed):
            error = self._log_malformed(response.content, parsed.get("bozo_exception"))
            return FeedPage(
                [], {"seen": seen, **validators, "error": error}, skipped=1, error=error
            )
        if parsed.bozo:  # a wrong charset or content type: what was read is whole
            logger.info("feed %s read despite: %s", self.url, parsed.bozo_exception)
        known = set(seen)
        fresh: list[tuple[str, Any]] = []
        for entry in parsed.entries:
            key = entry_key(entry)
            if key not in known:
                known.add(key)
                fresh.append((key, entry))
        items: list[InboundItem] = []
        skipped = 0
        for key, entry in fresh[:limit]:
            seen.append(key)
            try:
                items.append(self._item(entry, parsed.feed))
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning(
                    "skipped an entry of the feed %s (%s); entry=%r", self.url, exc, entry
                )
                skipped += 1
        has_more = len(fresh) > limit
        next_cursor: dict[str, Any] = {"seen": seen[-max(SEEN_KEPT, 2 * len(parsed.entries)) :]}
        if not has_more:  # validators only once every entry of this version was delivered
            next_cursor.update(validators)
        items.sort(key=lambda item: item.created_at)  # oldest first, as every connector delivers
        return FeedPage(items, next_cursor, has_more=has_more, skipped=skipped)

    def _log_malformed(self, body: bytes, error: Any) -> str:
        """Log the raw feed with what is wrong with it; returns the message for admins."""
        message = f"the feed at {self.url} is malformed: {error or 'it is not RSS or Atom'}"
        logger.warning("%s; raw body (%d bytes)=%r", message, len(body), body[:RAW_LOGGED])
        return message

    def _item(self, entry: Any, feed: Any) -> InboundItem:
        remote_id = str(entry.get("id") or entry.get("link") or "")
        title = _plain(entry, "title")
        summary = _summary(entry)
        if not remote_id or not (title or summary):
            raise ValueError("an entry needs an id or link, and a title or summary")
        detail = entry.get("author_detail") or {}
        author_name = str(
            detail.get("name") or entry.get("author") or feed.get("title") or self.url
        )
        author_id = str(
            detail.get("email")
            or detail.get("href")
            or f"{feed.get('link') or self.url}#{author_name}"
        )
        return InboundItem(
            remote_id=remote_id,
            kind=PostKind.POST,
            author=InboundAuthor(remote_id=author_id, handle=author_name, name=author_name),
            text="\n\n".join(part for part in (title, summary) if part),
            created_at=_entry_time(entry),
            lang=_language(entry, feed),
            raw={"feed": self.url, "link": str(entry.get("link") or ""), "title": title},
        )


def _unreadable(parsed: Any) -> bool:
    """Not a feed, or not well-formed XML.

    feedparser reads on through broken XML, but what it reads from a truncated document may be a
    partial entry (a cut-off text, a link instead of the guid that comes after it) that would then
    count as delivered. Such a feed is skipped until it is whole. Only the charset and
    content-type complaints feedparser does not care about let a feed through.
    """
    if not parsed.version and not parsed.entries:
        return True
    return bool(parsed.bozo) and not isinstance(
        parsed.get("bozo_exception"), feedparser.ThingsNobodyCaresAboutButMe
    )


def _validators(response: httpx.Response) -> dict[str, str]:
    validators = {}
    if etag := response.headers.get("ETag"):
        validators["etag"] = etag
    if modified := response.headers.get("Last-Modified"):
        validators["modified"] = modified
    return validators


def _plain(entry: Any, field: str) -> str:
    """A text field as plain text; feedparser says whether it holds HTML (and sanitized it)."""
    value = str(entry.get(field) or "")
    kind = (entry.get(f"{field}_detail") or {}).get("type", "")
    return html_to_text(value) if "html" in kind else value.strip()


def _summary(entry: Any) -> str:
    """The entry's summary; an Atom entry with only a body has its body copied there, untyped."""
    if entry.get("summary_detail"):
        return _plain(entry, "summary")
    contents = entry.get("content") or [{}]
    value = str(contents[0].get("value") or entry.get("summary") or "")
    return value.strip() if contents[0].get("type") == "text/plain" else html_to_text(value)


def _entry_time(entry: Any) -> datetime:
    """Published (else updated) time; an undated entry counts as seen now."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return clock.now()


def _language(entry: Any, feed: Any) -> str | None:
    detail = entry.get("title_detail") or {}
    language = detail.get("language") or feed.get("language")
    return str(language).split("-")[0].lower() if language else None
