"""Tracked short links: resolve a code fast, and count one click per visitor per link per day.

A visitor is an HMAC of the day, the client address and its user agent under the site's secret:
the same person counts once a day, no address is stored, and tomorrow's hash cannot be linked to
today's. Crawlers and link-preview bots are not counted.

Clicks are written by a background thread in batches (one INSERT ... ON CONFLICT DO NOTHING per
quarter second), never on the redirect's path: a database write there cost ~10 ms per click on
SQLite (benchmarks/redirect.py). So that a web process killed outright, or a database that refuses
a batch, loses nothing, each click is first appended to the process's journal file (one short
write; the kernel keeps it when the process dies). A journal is dropped once its clicks are in
the database; journals left by dead processes are replayed by the next recorder (the unique key
makes a replay harmless).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
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
RECOVER_EVERY = 240  # flushes between looks for dead processes' journals (a minute)
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


class ClickJournal:
    """An append-only file of clicks not yet in the database, locked while its process lives.

    The lock (``flock``) is what tells a live journal from a dead process's one: the kernel
    releases it when the process ends, however it ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, click: LinkClick) -> None:
        line = [click.workspace_id, click.link_id, click.day.isoformat(), click.visitor]
        os.write(self._fd, (json.dumps([*line, click.forwarder]) + "\n").encode())

    def discard(self) -> None:
        """Its clicks are in the database."""
        self.path.unlink(missing_ok=True)
        os.close(self._fd)


class ClickRecorder:
    """Journals clicks, then writes them in batches from its own thread."""

    def __init__(self, journal_dir: Path | None = None, interval: float = FLUSH_SECONDS) -> None:
        self.interval = interval
        self.synchronous = False  # write on the caller's thread (tests that check one click)
        self._journal_dir = journal_dir
        self._pending: list[LinkClick] = []
        self._journal: ClickJournal | None = None
        self._unwritten: list[ClickJournal] = []  # journals of batches the database refused
        self._journals_opened = 0
        self._lock = threading.Lock()  # guards the pending clicks and the open journal
        self._flush_lock = threading.Lock()  # one batch written at a time
        self._thread: threading.Thread | None = None

    @property
    def journal_dir(self) -> Path:
        if self._journal_dir is None:
            self._journal_dir = Path(settings.DATA_DIR) / "clicks"
        self._journal_dir.mkdir(parents=True, exist_ok=True)
        return self._journal_dir

    @journal_dir.setter
    def journal_dir(self, path: Path) -> None:
        self._journal_dir = path

    def add(self, click: LinkClick) -> None:
        if self.synchronous:
            _write_clicks([click])
            return
        with self._lock:
            if self._journal is None:
                self._journal = self._new_journal()
            self._journal.append(click)
            self._pending.append(click)
        self.start()

    def start(self) -> None:
        """Run the writer thread (which first replays journals of dead processes)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="click-recorder", daemon=True
                )
                self._thread.start()

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                journal, self._journal = self._journal, None
            if journal is not None:
                self._unwritten.append(journal)
            try:
                _write_clicks(batch)
            except Exception:
                with self._lock:  # written with the next batch; the journals keep them meanwhile
                    self._pending[:0] = batch
                raise
            for written in self._unwritten:
                written.discard()
            self._unwritten = []
            return len(batch)

    def recover(self) -> int:
        """Write the clicks of journals whose process is gone, then drop those journals."""
        recovered = 0
        for path in sorted(self.journal_dir.glob("*.jsonl")):
            recovered += _replay_journal(path)
        return recovered

    def _new_journal(self) -> ClickJournal:
        self._journals_opened += 1
        name = f"{os.getpid()}-{threading.get_ident()}-{self._journals_opened}.jsonl"
        return ClickJournal(self.journal_dir / name)

    def _run(self) -> None:
        cycles = 0
        while True:
            time.sleep(self.interval)
            try:
                if cycles % RECOVER_EVERY == 0:
                    self.recover()
                self.flush()
            except Exception:
                logger.exception("clicks could not be written yet; they stay in the journal")
            finally:
                connection.close()
            cycles += 1


def _write_clicks(batch: list[LinkClick]) -> None:
    """Insert the clicks; those of a link deleted since are dropped (its clicks went with it)."""
    if not batch:
        return
    existing = set(
        TrackedLink.objects.filter(pk__in={c.link_id for c in batch}).values_list("pk", flat=True)
    )
    kept = [click for click in batch if click.link_id in existing]
    LinkClick.objects.bulk_create(kept, ignore_conflicts=True)


def _replay_journal(path: Path) -> int:
    """A dead process's journal into the database; 0 when a live process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0  # another recorder replayed it meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        with os.fdopen(os.dup(fd), "rb") as journal:
            clicks = [_journalled_click(line) for line in journal]
        found = [click for click in clicks if click is not None]
        _write_clicks(found)
        path.unlink(missing_ok=True)
        return len(found)
    finally:
        os.close(fd)


def _journalled_click(line: bytes) -> LinkClick | None:
    """A journal line; a line cut short by the kill that left the journal is skipped."""
    try:
        workspace_id, link_id, day, visitor, forwarder = json.loads(line)
        return LinkClick(
            workspace_id=workspace_id,
            link_id=link_id,
            day=date.fromisoformat(day),
            visitor=visitor,
            forwarder=forwarder,
        )
    except (TypeError, ValueError):
        logger.warning("skipped a damaged click journal line: %r", line[:200])
        return None


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
