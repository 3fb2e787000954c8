"""Reads of the listening module, scoped by workspace. Dashboards read rollups only."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDay, TruncHour
from django.http import Http404

from relais.core import clock
from relais.listening.models import (
    Alert,
    AlertChannel,
    AuthorRollup,
    ListeningQuery,
    Mention,
    MentionRollup,
    QueryTag,
    TermRollup,
)
from relais.pipeline.models import Author, Post

SEARCH_WORD = re.compile(r"\w+")
EMERGING_RECENT = timedelta(hours=24)
EMERGING_MIN_COUNT = 3


@dataclass(frozen=True)
class MentionFilters:
    query_id: int | None = None
    network: str = ""
    language: str = ""
    sentiment: str = ""
    intent: str = ""
    reason: str = ""
    author: str = ""
    since: date | None = None
    until: date | None = None
    search: str = ""

    @classmethod
    def from_params(cls, params: Any) -> MentionFilters:
        def text(name: str) -> str:
            return str(params.get(name, "")).strip()[:200]

        query = text("query")
        return cls(
            query_id=int(query) if query.isdigit() else None,
            network=text("network"),
            language=text("language").lower(),
            sentiment=text("sentiment"),
            intent=text("intent"),
            reason=text("reason"),
            author=text("author").removeprefix("@"),
            since=_date(text("since")),
            until=_date(text("until")),
            search=text("q"),
        )

    def as_params(self) -> dict[str, str]:
        values = {
            "query": str(self.query_id or ""),
            "network": self.network,
            "language": self.language,
            "sentiment": self.sentiment,
            "intent": self.intent,
            "reason": self.reason,
            "author": self.author,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.search,
        }
        return {name: value for name, value in values.items() if value}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def listening_queries(workspace_id: int, *, active_only: bool = False) -> QuerySet[ListeningQuery]:
    found = ListeningQuery.objects.in_workspace(workspace_id).order_by("-active", "name")
    return found.filter(active=True) if active_only else found


def listening_query(workspace_id: int, query_id: str | int | None) -> ListeningQuery:
    if not str(query_id or "").isdigit():
        raise Http404
    found = ListeningQuery.objects.in_workspace(workspace_id).filter(pk=int(str(query_id))).first()
    if found is None:
        raise Http404
    return found


def mentions(workspace_id: int, filters: MentionFilters) -> QuerySet[Mention]:
    found: QuerySet[Mention] = (
        Mention.objects.in_workspace(workspace_id)
        .select_related("post", "post__author", "query")
        .order_by("-created_at", "-pk")
    )
    exact = {
        "query_id": filters.query_id,
        "network": filters.network,
        "language": filters.language,
        "sentiment": filters.sentiment,
        "intent": filters.intent,
        "reason": filters.reason,
    }
    found = found.filter(**{field: value for field, value in exact.items() if value})
    if filters.author:
        found = found.filter(author_handle__iexact=filters.author)
    if filters.since:
        found = found.filter(created_at__date__gte=filters.since)
    if filters.until:
        found = found.filter(created_at__date__lte=filters.until)
    if filters.search:
        found = _full_text(found, workspace_id, filters.search)
    return found


def _full_text(found: QuerySet[Mention], workspace_id: int, search: str) -> QuerySet[Mention]:
    """Stemmed search in the database's own engine (see migration 0002)."""
    if connection.vendor == "postgresql":
        return found.filter(
            post_id__in=RawSQL(
                "SELECT id FROM pipeline_post WHERE workspace_id = %s AND "
                "(to_tsvector('english', text) || to_tsvector('french', text)) @@ "
                "(websearch_to_tsquery('english', %s) || websearch_to_tsquery('french', %s))",
                [workspace_id, search, search],
            )
        )
    words = SEARCH_WORD.findall(search)
    if not words:
        return found.none()
    # Each word quoted: user text is never read as FTS5 syntax; quoted words are still stemmed.
    expression = " ".join(f'"{word}"' for word in words)
    return found.filter(
        post_id__in=RawSQL(
            "SELECT rowid FROM listening_post_fts WHERE listening_post_fts MATCH %s", [expression]
        )
    )


def filter_choices(workspace_id: int) -> dict[str, list[str]]:
    """Values present in the rollups, for the filter menus."""
    rollups = MentionRollup.objects.in_workspace(workspace_id)
    return {
        field: sorted(value for value in rollups.values_list(field, flat=True).distinct() if value)
        for field in ("network", "language", "sentiment", "reason")
    }


# ---------------------------------------------------------------------------------------------
# Dashboard


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, days: int) -> Period:
        end = clock.now()
        return cls(end - timedelta(days=days), end)

    @property
    def by_hour(self) -> bool:
        return self.end - self.start <= timedelta(days=2)


def dashboard(workspace_id: int, period: Period, query_id: int | None = None) -> dict[str, Any]:
    rollups = MentionRollup.objects.in_workspace(workspace_id).filter(
        bucket__gte=period.start, bucket__lt=period.end
    )
    if query_id:
        rollups = rollups.filter(query_id=query_id)
    return {
        "volume": volume_over_time(rollups, period),
        "reasons": top_reasons(rollups),
        "authors": top_authors(workspace_id, period, query_id),
        "share_of_voice": share_of_voice(workspace_id, period),
        "emerging": emerging_terms(workspace_id, period, query_id),
        "total": rollups.aggregate(total=Sum("count"))["total"] or 0,
    }


def volume_over_time(rollups: QuerySet[MentionRollup], period: Period) -> list[dict[str, Any]]:
    trunc = TruncHour("bucket") if period.by_hour else TruncDay("bucket")
    rows = (
        rollups.annotate(slot=trunc)
        .values("slot")
        .annotate(
            total=Sum("count"),
            negative=Sum("count", filter=Q(sentiment="negative")),
            positive=Sum("count", filter=Q(sentiment="positive")),
        )
        .order_by("slot")
    )
    return [
        {
            "slot": row["slot"],
            "total": row["total"] or 0,
            "negative": row["negative"] or 0,
            "positive": row["positive"] or 0,
        }
        for row in rows
        if row["total"]
    ]


def top_reasons(rollups: QuerySet[MentionRollup], limit: int = 8) -> list[dict[str, Any]]:
    rows = (
        rollups.exclude(reason="")
        .values("reason")
        .annotate(total=Sum("count"))
        .filter(total__gt=0)
        .order_by("-total", "reason")[:limit]
    )
    return [{"reason": row["reason"], "total": row["total"]} for row in rows]


def top_authors(
    workspace_id: int, period: Period, query_id: int | None, limit: int = 10
) -> list[dict[str, Any]]:
    """The authors with the most followers among those who mentioned the queries."""
    rows = AuthorRollup.objects.in_workspace(workspace_id).filter(
        bucket__gte=period.start - timedelta(days=1), bucket__lt=period.end
    )
    if query_id:
        rows = rows.filter(query_id=query_id)
    counts = {
        row["author_id"]: row["total"]
        for row in rows.values("author_id").annotate(total=Sum("count")).filter(total__gt=0)
    }
    authors = (
        Author.objects.in_workspace(workspace_id)
        .filter(pk__in=list(counts))
        .order_by("-followers", "handle")[:limit]
    )
    return [
        {"author": author, "followers": author.followers or 0, "mentions": counts[author.pk]}
        for author in authors
    ]


def share_of_voice(workspace_id: int, period: Period) -> list[dict[str, Any]]:
    """Mentions of the brand's queries beside its competitors', with each one's share."""
    rows = list(
        MentionRollup.objects.in_workspace(workspace_id)
        .filter(
            bucket__gte=period.start,
            bucket__lt=period.end,
            query__tag__in=[QueryTag.BRAND, QueryTag.COMPETITOR],
        )
        .values("query_id", "query__name", "query__tag")
        .annotate(total=Sum("count"))
        .filter(total__gt=0)
        .order_by("-total")
    )
    grand_total = sum(row["total"] for row in rows) or 1
    return [
        {
            "name": row["query__name"],
            "tag": row["query__tag"],
            "total": row["total"],
            "percent": round(100 * row["total"] / grand_total, 1),
        }
        for row in rows
    ]


def emerging_terms(
    workspace_id: int, period: Period, query_id: int | None, limit: int = 12
) -> list[dict[str, Any]]:
    """Terms far more frequent in the last 24 hours of the period than in the days before."""
    recent_start = max(period.start, period.end - EMERGING_RECENT)
    rows = TermRollup.objects.in_workspace(workspace_id).filter(
        bucket__gte=period.start, bucket__lt=period.end
    )
    if query_id:
        rows = rows.filter(query_id=query_id)
    recent = dict(
        rows.filter(bucket__gte=recent_start)
        .values("term")
        .annotate(total=Sum("count"))
        .filter(total__gte=EMERGING_MIN_COUNT)
        .values_list("term", "total")
    )
    if not recent:
        return []
    before = dict(
        rows.filter(bucket__lt=recent_start, term__in=list(recent))
        .values("term")
        .annotate(total=Sum("count"))
        .values_list("term", "total")
    )
    earlier_days = max((recent_start - period.start) / timedelta(days=1), 1.0)
    recent_days = (period.end - recent_start) / timedelta(days=1)
    scored = []
    for term, count in recent.items():
        baseline = before.get(term, 0) / earlier_days * recent_days
        # Growth weighted by volume: a word going from 40 to 80 beats one going from 0 to 3.
        score = math.log((count + 1) / (baseline + 1)) * math.sqrt(count)
        if score > 0:
            scored.append(
                {"term": term, "count": count, "baseline": round(baseline, 1), "score": score}
            )
    scored.sort(key=lambda row: (-row["score"], row["term"]))
    return scored[:limit]


# ---------------------------------------------------------------------------------------------
# Alerts


def alerts(workspace_id: int) -> QuerySet[Alert]:
    return (
        Alert.objects.in_workspace(workspace_id)
        .select_related("query")
        .order_by("-detected_at", "-pk")
    )


def alert(workspace_id: int, alert_id: str | int | None) -> Alert:
    if not str(alert_id or "").isdigit():
        raise Http404
    found = alerts(workspace_id).filter(pk=int(str(alert_id))).first()
    if found is None:
        raise Http404
    return found


def channels(workspace_id: int) -> QuerySet[AlertChannel]:
    return (
        AlertChannel.objects.in_workspace(workspace_id)
        .annotate(failed=Count("deliveries", filter=Q(deliveries__status="failed")))
        .order_by("name")
    )


def channel(workspace_id: int, channel_id: str | int | None) -> AlertChannel:
    if not str(channel_id or "").isdigit():
        raise Http404
    found = AlertChannel.objects.in_workspace(workspace_id).filter(pk=int(str(channel_id))).first()
    if found is None:
        raise Http404
    return found


def alert_posts(workspace_id: int, found: Alert) -> list[Post]:
    """The posts named in the alert's explanation, in the order the explanation ranks them."""
    ids = [int(pk) for pk in found.explanation.get("post_ids", [])]
    posts = Post.objects.in_workspace(workspace_id).filter(pk__in=ids).select_related("author")
    by_id = {post.pk: post for post in posts}
    return [by_id[pk] for pk in ids if pk in by_id]
