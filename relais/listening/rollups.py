"""Counting mentions as they are written: rollups incremented in bulk, never recounted.

Increments are summed in Python per key, then written with one
``INSERT ... ON CONFLICT (key) DO UPDATE SET count = count + excluded.count`` per chunk, which
SQLite (3.24+) and PostgreSQL both run atomically: concurrent workers add up instead of
overwriting each other. A negative increment moves a count away (re-enrichment corrections).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, models

from relais.listening.models import AuthorRollup, MentionRollup, TermRollup
from relais.listening.query import tokenize

BUCKET = timedelta(minutes=5)
UPSERT_CHUNK = 300
TERMS_PER_POST = 20
MIN_TERM_LENGTH = 4

# Words too common in French or English posts to say anything about what is emerging.
STOP_WORDS = frozenset(
    [
        "about",
        "after",
        "again",
        "also",
        "been",
        "before",
        "being",
        "cannot",
        "could",
        "didn",
        "does",
        "doing",
        "don",
        "down",
        "each",
        "even",
        "from",
        "have",
        "having",
        "here",
        "into",
        "just",
        "know",
        "like",
        "more",
        "most",
        "much",
        "must",
        "need",
        "only",
        "other",
        "over",
        "same",
        "should",
        "some",
        "still",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "very",
        "want",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "would",
        "your",
        "yours",
        "http",
        "https",
        "www",
        "aussi",
        "avec",
        "avoir",
        "bien",
        "cette",
        "comme",
        "dans",
        "depuis",
        "donc",
        "elle",
        "elles",
        "encore",
        "être",
        "fait",
        "faire",
        "mais",
        "même",
        "moins",
        "nous",
        "pour",
        "plus",
        "quand",
        "quel",
        "quelle",
        "sans",
        "sont",
        "sous",
        "suis",
        "tout",
        "tous",
        "toute",
        "toutes",
        "très",
        "vous",
        "votre",
        "vos",
        "leur",
        "leurs",
        "était",
        "avez",
        "avait",
        "peut",
        "rien",
        "merci",
    ]
)


def bucket_of(moment: datetime, width: timedelta = BUCKET) -> datetime:
    """The start of the bucket holding `moment` (aware, UTC, aligned on the epoch)."""
    seconds = int(width.total_seconds())
    timestamp = int(moment.timestamp())
    return datetime.fromtimestamp(timestamp - timestamp % seconds, tz=UTC)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def terms_of(text: str, excluded: frozenset[str] = frozenset()) -> list[str]:
    """The distinct telling words and hashtags of a post, in order of appearance."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        if token in excluded or token in STOP_WORDS or token[0] == "@":
            continue
        if token[0] == "#" or (token.isalpha() and len(token) >= MIN_TERM_LENGTH):
            seen.setdefault(token[:64], None)
            if len(seen) == TERMS_PER_POST:
                break
    return list(seen)


@dataclass(frozen=True, slots=True)
class CountedMention:
    """What a mention contributes to the rollups."""

    workspace_id: int
    query_id: int
    author_id: int
    created_at: datetime
    network: str
    language: str
    sentiment: str
    reason: str
    terms: tuple[str, ...]


def add_to_rollups(mentions: Iterable[CountedMention], sign: int = 1) -> None:
    """Add (sign=1) or remove (sign=-1) mentions from every rollup."""
    _write(_Increments().add(mentions, sign))


def move_in_rollups(before: Sequence[CountedMention], after: Sequence[CountedMention]) -> None:
    """Move mentions from their old dimensions to their new ones, netting out per key."""
    _write(_Increments().add(before, -1).add(after, 1))


class _Increments:
    def __init__(self) -> None:
        self.volume: Counter[tuple[Any, ...]] = Counter()
        self.terms: Counter[tuple[Any, ...]] = Counter()
        self.authors: Counter[tuple[Any, ...]] = Counter()

    def add(self, mentions: Iterable[CountedMention], sign: int) -> _Increments:
        for m in mentions:
            bucket = bucket_of(m.created_at)
            key = (m.workspace_id, m.query_id, bucket, m.network, m.language, m.sentiment)
            self.volume[(*key, m.reason)] += sign
            hour = hour_of(m.created_at)
            for term in m.terms:
                self.terms[(m.workspace_id, m.query_id, hour, term)] += sign
            self.authors[(m.workspace_id, m.query_id, day_of(m.created_at), m.author_id)] += sign
        return self


def _write(increments: _Increments) -> None:
    upsert_increments(
        MentionRollup,
        ["workspace_id", "query_id", "bucket", "network", "language", "sentiment", "reason"],
        increments.volume,
    )
    upsert_increments(TermRollup, ["workspace_id", "query_id", "bucket", "term"], increments.terms)
    upsert_increments(
        AuthorRollup, ["workspace_id", "query_id", "bucket", "author_id"], increments.authors
    )


def upsert_increments(
    model: type[models.Model], columns: list[str], increments: Counter[tuple[Any, ...]]
) -> None:
    """Add each increment to the row of its key, creating rows that do not exist yet."""
    rows = [(*key, delta) for key, delta in increments.items() if delta]
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    key_columns = [column for column in columns if column != "workspace_id"]
    names = ", ".join(quote(column) for column in [*columns, "count"])
    conflict = ", ".join(quote(column) for column in key_columns)
    placeholders = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    for start in range(0, len(rows), UPSERT_CHUNK):
        chunk = rows[start : start + UPSERT_CHUNK]
        # Only quoted model identifiers are interpolated; every value is a parameter.
        sql = (
            f"INSERT INTO {table} ({names}) VALUES {', '.join([placeholders] * len(chunk))} "  # noqa: S608
            f"ON CONFLICT ({conflict}) DO UPDATE SET {quote('count')} = "
            f"{table}.{quote('count')} + EXCLUDED.{quote('count')}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [_adapt(value) for row in chunk for value in row])


def _adapt(value: Any) -> Any:
    """Datetimes as the ORM stores them, so raw keys meet ORM-written keys in the unique index."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
