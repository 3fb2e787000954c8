"""Tracked short links: resolve a code fast, and count one click per visitor per link per day.

A visitor is an HMAC of the day, the client address and its user agent under the site's secret:
the same person counts once a day, no address is stored, and tomorrow's hash cannot be linked to
today's. Crawlers and link-preview bots are not counted.

Clicks are written by a background thread in batches (one INSERT ... ON CONFLICT DO NOTHING per
quarter second), never on the redirect's path: a database write there cost ~10 ms per click on
SQLite (benchmarks/redirect.py). The price: a web process killed outright loses the clicks of its
last quarter second; a normal stop writes them.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from relais.publishing.models import LinkClick, TrackedLink

BOT_AGENT = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|quora link|whatsapp|"
    r"telegram|skypeuri|bitlybot|curl|wget|python-requests|httpclient|headless|mastodon|"
    r"bluesky|cardyb|go-http-client|okhttp|monitor|uptime",
    re.IGNORECASE,
)
CACHE_SIZE = 10_000
FORWARDER_PARAM = "via"
FLUSH_SECONDS = 0.25
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedLink:
    link_id: int
    workspace_id: int
    location: str


_resolved: dict[str, ResolvedLink] = {}


def with_utm(destination: str, source: str, medium: str, campaign: str) -> str:
    """The destination with UTM parameters added (parameters already there are kept)."""
    parts = urlsplit(destination)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in (
        ("utm_source", source),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
    ):
        if value:
            query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def cached(code: str) -> ResolvedLink | None:
    """The link if this process already resolved it (no database access: safe on an event loop)."""
    return _resolved.get(code)


def resolve(code: str) -> ResolvedLink | None:
    """A link's redirect target; links never change, so a process keeps what it resolved."""
    if found := _resolved.get(code):
        return found
    link = TrackedLink.objects.filter(code=code).first()
    if link is None:
        return None
    found = ResolvedLink(
        link.pk,
        link.workspace_id,
        with_utm(link.destination, link.utm_source, link.utm_medium, link.utm_campaign),
    )
    if len(_resolved) >= CACHE_SIZE:
        _resolved.clear()
    _resolved[code] = found
    return found


def is_bot(user_agent: str) -> bool:
    return not user_agent or BOT_AGENT.search(user_agent) is not None


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def visitor_hash(scope: date | str, address: str, user_agent: str) -> str:
    """A keyed hash of a visitor within a scope (a day for clicks, an offer for claims)."""
    scope_text = scope.isoformat() if isinstance(scope, date) else scope
    message = f"{scope_text}|{address}|{user_agent}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:32]


def claimant_hash(offer_id: int, request: HttpRequest) -> str:
    user_agent = str(request.META.get("HTTP_USER_AGENT", ""))
    return visitor_hash(f"offer-{offer_id}", client_address(request), user_agent)


class ClickRecorder:
    """Collects clicks in memory and writes them in batches from its own thread."""

    def __init__(self, interval: float = FLUSH_SECONDS) -> None:
        self.interval = interval
        self.synchronous = False  # write on the caller's thread (tests that check one click)
        self._pending: list[LinkClick] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, click: LinkClick) -> None:
        if self.synchronous:
            self._write([click])
            return
        with self._lock:
            self._pending.append(click)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="click-recorder", daemon=True
                )
                self._thread.start()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        self._write(batch)
        return len(batch)

    def _write(self, batch: list[LinkClick]) -> None:
        if batch:
            LinkClick.objects.bulk_create(batch, ignore_conflicts=True)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:
                logger.exception("clicks could not be written")
            finally:
                connection.close()


recorder = ClickRecorder()
atexit.register(recorder.flush)


def record_click(
    link: ResolvedLink, address: str, user_agent: str, day: date, forwarder: str
) -> bool:
    """Queue the click unless it is a bot's; the unique key drops this visitor's repeats today."""
    if is_bot(user_agent):
        return False
    recorder.add(
        LinkClick(
            workspace_id=link.workspace_id,
            link_id=link.link_id,
            day=day,
            visitor=visitor_hash(day, address, user_agent),
            forwarder=forwarder[:255],
        )
    )
    return True


def redirect_location(link: ResolvedLink, forwarder: str) -> str:
    """Where the visitor goes: the destination with its UTM, and who forwarded it to them."""
    if not forwarder:
        return link.location
    joiner = "&" if "?" in link.location else "?"
    return link.location + joiner + urlencode({FORWARDER_PARAM: forwarder})
