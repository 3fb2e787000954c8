"""Reads that feed the crisis detector and explain its alerts, from rollups and mentions."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, Sum

from relais.listening.detection import BUCKET, HISTORY, RECENT, Counts, bucket_start
from relais.listening.matching import positive_terms
from relais.listening.models import ListeningQuery, Mention, MentionRollup, TermRollup
from relais.listening.query import parse_query
from relais.listening.rollups import terms_of

EXPLAIN_MENTIONS = 2000
EXPLAIN_TOP = 5


def bucket_counts(query_id: int, start: datetime, end: datetime) -> dict[datetime, Counts]:
    """Mentions per 5-minute bucket: all, negative, and with any sentiment."""
    rows = (
        MentionRollup.objects.filter(query_id=query_id, bucket__gte=start, bucket__lt=end)
        .values("bucket")
        .annotate(
            total=Sum("count"),
            negative=Sum("count", filter=Q(sentiment="negative")),
            rated=Sum("count", filter=~Q(sentiment="")),
        )
    )
    return {
        bucket_start(row["bucket"]): Counts(
            row["total"] or 0, row["negative"] or 0, row["rated"] or 0
        )
        for row in rows
        if row["total"]
    }


def history_counts(query_id: int, hour: datetime) -> dict[datetime, Counts]:
    return bucket_counts(query_id, hour - HISTORY, hour)


def recent_counts(query_id: int, now: datetime) -> dict[datetime, Counts]:
    current = bucket_start(now)
    return bucket_counts(query_id, current - RECENT, current + BUCKET)


def explain(query: ListeningQuery, start: datetime, end: datetime) -> dict[str, Any]:
    """What drives an episode: its reasons, the words rising against the week before, top posts."""
    mentions = list(
        Mention.objects.filter(query=query, created_at__gte=start, created_at__lt=end)
        .select_related("post", "post__author")
        .order_by("-created_at")[:EXPLAIN_MENTIONS]
    )
    reasons = Counter(m.reason for m in mentions if m.reason)
    own = frozenset(positive_terms(parse_query(query.text).root))
    terms: Counter[str] = Counter()
    for mention in mentions:
        terms.update(terms_of(mention.post.text, own))
    return {
        "mentions": len(mentions),
        "reasons": reasons.most_common(EXPLAIN_TOP),
        "terms": _rising_terms(query, terms, start, end),
        "post_ids": [
            m.post_id
            for m in sorted(
                mentions,
                key=lambda m: (-(m.post.author.followers or 0), m.created_at),
            )[:EXPLAIN_TOP]
        ],
    }


def _rising_terms(
    query: ListeningQuery, terms: Counter[str], start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """Episode terms ranked by how much more often they appear than in the week before."""
    candidates = [term for term, count in terms.most_common(200) if count >= 2]
    if not candidates:
        return []
    week_before = dict(
        TermRollup.objects.filter(
            query=query,
            bucket__gte=start - timedelta(days=7),
            bucket__lt=start - timedelta(hours=1),
            term__in=candidates,
        )
        .values("term")
        .annotate(total=Sum("count"))
        .values_list("term", "total")
    )
    episode_hours = max((end - start) / timedelta(hours=1), 1 / 12)
    scored = sorted(
        candidates,
        key=lambda term: -terms[term] / (1 + week_before.get(term, 0) / 167 * episode_hours),
    )
    return [(term, terms[term]) for term in scored[:EXPLAIN_TOP]]
