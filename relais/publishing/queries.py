"""Reads for the publishing pages, the API and the campaign report; all scoped to a workspace."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from relais.connectors.actions import METRIC_NAMES
from relais.connectors.models import ConnectedAccount
from relais.connectors.models import Engagement as NetworkEngagement
from relais.pipeline.models import Direction, Post
from relais.publishing.actions import RECURRENCE_STEP
from relais.publishing.audience import audience_graph
from relais.publishing.models import (
    Claim,
    Draft,
    DraftMedia,
    Forward,
    LinkClick,
    Offer,
    OfferReply,
    QueueSlot,
    Recurrence,
    Target,
    TargetStatus,
    TrackedLink,
)
from relais.publishing.reach import Reach, reach_of_counts


def drafts(workspace_id: int) -> QuerySet[Draft]:
    return (
        Draft.objects.in_workspace(workspace_id)
        .prefetch_related(
            Prefetch("targets", queryset=Target.objects.select_related("account").order_by("pk"))
        )
        .order_by("-updated_at")
    )


def draft(workspace_id: int, draft_id: int) -> Draft:
    found = drafts(workspace_id).filter(pk=draft_id).first()
    if found is None:
        raise Http404
    return found


def target(workspace_id: int, target_id: int) -> Target:
    found = Target.objects.in_workspace(workspace_id).filter(pk=target_id).first()
    if found is None:
        raise Http404
    return found


def media(workspace_id: int, media_id: int) -> DraftMedia:
    found = DraftMedia.objects.in_workspace(workspace_id).filter(pk=media_id).first()
    if found is None:
        raise Http404
    return found


def accounts(workspace_id: int) -> QuerySet[ConnectedAccount]:
    return ConnectedAccount.objects.in_workspace(workspace_id).order_by("network", "handle")


def queue_slots(workspace_id: int) -> QuerySet[QueueSlot]:
    return QueueSlot.objects.in_workspace(workspace_id)


def offers(workspace_id: int) -> QuerySet[Offer]:
    return (
        Offer.objects.in_workspace(workspace_id)
        .annotate(claim_count=Count("claims"))
        .order_by("-created_at")
    )


def offer(workspace_id: int, offer_id: int) -> Offer:
    found = Offer.objects.in_workspace(workspace_id).filter(pk=offer_id).first()
    if found is None:
        raise Http404
    return found


def offer_replies(workspace_id: int, offer_id: int) -> QuerySet[OfferReply]:
    """Keyword replies to the offer's posts, newest first, with who wrote them."""
    return (
        OfferReply.objects.in_workspace(workspace_id)
        .filter(offer_id=offer_id)
        .select_related("post__author", "claim")
        .order_by("-created_at", "-pk")
    )


def reach_of(forwards: list[Forward]) -> Reach:
    """Exact when every forwarder's followers are known (the sandbox graph), else a bound."""
    if forwards and all(f.simulated for f in forwards):
        nodes = np.asarray([int(f.forwarder_id) for f in forwards], dtype=np.int64)
        return audience_graph().reach(nodes)
    return reach_of_counts([f.followers for f in forwards])


@dataclass
class Tally:
    clicks: int = 0
    claims: int = 0
    revenue: Decimal = Decimal(0)
    simulated_claims: int = 0
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0

    def add_engagement(self, counts: dict[str, int]) -> None:
        for name in ENGAGEMENT:
            setattr(self, name, getattr(self, name) + counts.get(name, 0))

    @property
    def conversion(self) -> float | None:
        return self.claims / self.clicks if self.clicks else None


@dataclass
class PostLine:
    target: Target
    tally: Tally
    forwards: int
    reach: Reach
    simulated: bool


@dataclass
class OfferReport:
    offer: Offer
    posts: list[PostLine]
    total: Tally
    reach: Reach
    by_network: dict[str, Tally] = field(default_factory=dict)
    by_forwarder: dict[str, Tally] = field(default_factory=dict)
    by_day: dict[date, Tally] = field(default_factory=dict)


def offer_report(workspace_id: int, offer_id: int, now: datetime) -> OfferReport:
    """Posts, reach, clicks, claims and revenue of an offer: per post, network, forwarder, day."""
    found = offer(workspace_id, offer_id)
    links = {
        link.pk: link
        for link in TrackedLink.objects.in_workspace(workspace_id)
        .filter(offer=found)
        .select_related("target__account")
    }
    by_link: dict[int | None, Tally] = defaultdict(Tally)
    by_network: dict[str, Tally] = defaultdict(Tally)
    by_forwarder: dict[str, Tally] = defaultdict(Tally)
    by_day: dict[date, Tally] = defaultdict(Tally)
    total = Tally()
    clicks = LinkClick.objects.filter(link_id__in=links).values_list("link_id", "day", "forwarder")
    for link_id, day, forwarder in clicks:
        network = links[link_id].utm_source
        for tally in (by_link[link_id], by_network[network], by_forwarder[forwarder], by_day[day]):
            tally.clicks += 1
        total.clicks += 1
    for claim in Claim.objects.in_workspace(workspace_id).filter(offer=found):
        day = claim.created_at.date()
        for tally in (
            by_link[claim.link_id],
            by_network[claim.network],
            by_forwarder[claim.forwarder],
            by_day[day],
            total,
        ):
            tally.claims += 1
            tally.revenue += claim.amount
            tally.simulated_claims += int(claim.simulated)
    targets = [link.target for link in links.values() if link.target is not None]
    totals, events = engagement(workspace_id, targets)
    for link_id, link in links.items():
        if link.target is not None and link.target.pk in totals:
            counts = totals[link.target.pk]
            for tally in (by_link[link_id], by_network[link.target.account.network], total):
                tally.add_engagement(counts)
    for _target_id, name, day in events:
        by_day[day].add_engagement({name: 1})
    posts, every_forward = [], []
    for link_id, link in links.items():
        if link.target is None:
            continue
        forwards = list(
            link.target.forwards.filter(forwarded_at__lte=now, withdrawn_at__isnull=True)
        )
        every_forward += forwards
        simulated = bool(forwards) and all(f.simulated for f in forwards)
        posts.append(
            PostLine(link.target, by_link[link_id], len(forwards), reach_of(forwards), simulated)
        )
    return OfferReport(
        offer=found,
        posts=posts,
        total=total,
        reach=reach_of(every_forward),
        by_network=dict(sorted(by_network.items())),
        by_forwarder=dict(sorted(by_forwarder.items(), key=lambda kv: -kv[1].claims)),
        by_day=dict(sorted(by_day.items())),
    )


ENGAGEMENT = ("likes", "reposts", "replies", "quotes")
FORWARD_ENGAGEMENT = {"repost": "reposts", "boost": "reposts", "quote": "quotes"}


def engagement(
    workspace_id: int, targets: list[Target]
) -> tuple[dict[int, dict[str, int]], list[tuple[int, str, date]]]:
    """Likes, reposts, replies and quotes of published targets: totals, and the dated events.

    Totals are the network's counts kept on the stored post (``Post.metrics``); a count the
    network did not give is counted from what we stored. Events come from the engagements a
    network reports one by one (Bluesky), else from the stored replies and real forwards, so
    the days only hold what has a time.
    """
    published = {(t.account.network, t.remote_id): t.pk for t in targets if t.remote_id}
    if not published:
        return {}, []
    remote_ids = [remote_id for _network, remote_id in published]
    events = _reported_engagements(workspace_id, published, remote_ids)
    reported = {target_id for target_id, _name, _day in events}
    events += _stored_engagements(workspace_id, published, remote_ids, reported)
    counted: dict[int, dict[str, int]] = {
        pk: dict.fromkeys(ENGAGEMENT, 0) for pk in published.values()
    }
    for target_id, name, _day in events:
        counted[target_id][name] += 1
    posts = Post.objects.in_workspace(workspace_id).filter(remote_id__in=remote_ids)
    for network, remote_id, metrics in posts.values_list("network", "remote_id", "metrics"):
        owner = published.get((network, remote_id))
        if owner is not None and isinstance(metrics, dict):
            for name in ENGAGEMENT:
                if isinstance(metrics.get(name), int):
                    counted[owner][name] = metrics[name]
    return counted, events


def _reported_engagements(
    workspace_id: int, published: dict[tuple[str, str], int], remote_ids: list[str]
) -> list[tuple[int, str, date]]:
    rows = (
        NetworkEngagement.objects.in_workspace(workspace_id)
        .filter(subject_remote_id__in=remote_ids)
        .values_list("network", "subject_remote_id", "kind", "created_at")
    )
    return [
        (published[(network, subject)], METRIC_NAMES[kind], created.date())
        for network, subject, kind, created in rows
        if (network, subject) in published and kind in METRIC_NAMES
    ]


def _stored_engagements(
    workspace_id: int,
    published: dict[tuple[str, str], int],
    remote_ids: list[str],
    reported: set[int],
) -> list[tuple[int, str, date]]:
    """Replies and real forwards we stored, for the posts whose network reports no events."""
    events: list[tuple[int, str, date]] = []
    replies = (
        Post.objects.in_workspace(workspace_id)
        .filter(in_reply_to_remote_id__in=remote_ids, direction=Direction.INBOUND)
        .values_list("network", "in_reply_to_remote_id", "created_at")
    )
    for network, parent, created in replies:
        target_id = published.get((network, parent))
        if target_id is not None and target_id not in reported:
            events.append((target_id, "replies", created.date()))
    forwards = Forward.objects.in_workspace(workspace_id).filter(
        target_id__in=set(published.values()) - reported, simulated=False, withdrawn_at=None
    )
    for target_id, kind, when in forwards.values_list("target_id", "kind", "forwarded_at"):
        if kind in FORWARD_ENGAGEMENT:
            events.append((target_id, FORWARD_ENGAGEMENT[kind], when.date()))
    return events


@dataclass(frozen=True)
class CascadeDot:
    x: float
    y: float
    parent_x: float
    parent_y: float
    handle: str
    depth: int
    at: datetime
    withdrawn: bool


def cascade_picture(
    target: Target, now: datetime, width: int = 760, row: int = 48, limit: int = 1500
) -> tuple[list[CascadeDot], int]:
    """Forwards on a timeline (x: time since the post, y: depth), each linked to its parent.

    Withdrawn forwards stay on the picture (marked): a forward under one still came through it.
    """
    forwards = list(
        Forward.objects.filter(target=target, forwarded_at__lte=now).order_by("forwarded_at")[
            :limit
        ]
    )
    if not forwards or target.published_at is None:
        return [], row
    start = target.published_at
    span = max((forwards[-1].forwarded_at - start).total_seconds(), 1.0)
    where: dict[int, tuple[float, float]] = {}
    dots = []
    for forward in forwards:
        x = 20 + (width - 40) * (forward.forwarded_at - start).total_seconds() / span
        y = row / 2 + forward.depth * row
        parent_x, parent_y = where.get(forward.parent_id or 0, (20.0, row / 2))
        where[forward.pk] = (x, y)
        dots.append(
            CascadeDot(
                x,
                y,
                parent_x,
                parent_y,
                forward.handle,
                forward.depth,
                forward.forwarded_at,
                withdrawn=forward.withdrawn_at is not None,
            )
        )
    height = int(row * (max(d.depth for d in dots) + 1.5))
    return dots, height


@dataclass(frozen=True)
class CalendarEntry:
    """A post on the calendar: a scheduled target, or a coming repeat of a recurring one."""

    target: Target
    at: datetime
    repeat: bool = False  # a projected occurrence: created when the previous one is published

    @property
    def movable(self) -> bool:
        return not self.repeat and self.target.status == TargetStatus.SCHEDULED


@dataclass(frozen=True)
class CalendarDay:
    day: date
    in_month: bool
    entries: list[CalendarEntry]


def calendar_entries(workspace_id: int, start: datetime, end: datetime) -> list[CalendarEntry]:
    """Posts between ``start`` and ``end`` (failed ones left out), with the repeats to come."""
    posts = (
        Target.objects.in_workspace(workspace_id)
        .filter(scheduled_at__lt=end)
        .filter(Q(scheduled_at__gte=start) | Q(status=TargetStatus.SCHEDULED) & ~Q(recurrence=""))
        .exclude(status=TargetStatus.FAILED)
        .select_related("account")
    )
    entries = []
    for post in posts:
        assert post.scheduled_at is not None
        if post.scheduled_at >= start:
            entries.append(CalendarEntry(post, post.scheduled_at))
        if post.status == TargetStatus.SCHEDULED and (
            step := RECURRENCE_STEP.get(Recurrence(post.recurrence))
        ):
            entries += _repeats(post, post.scheduled_at, step, start, end)
    return sorted(entries, key=lambda entry: (entry.at, entry.target.pk))


def _repeats(
    post: Target, first: datetime, step: timedelta, start: datetime, end: datetime
) -> list[CalendarEntry]:
    skipped = max(1, -(-(start - first) // step))  # the first repeat at or after ``start``
    repeats = []
    when = first + skipped * step
    while when < end:
        repeats.append(CalendarEntry(post, when, repeat=True))
        when += step
    return repeats


def month_calendar(workspace_id: int, time_zone: str, first: date) -> list[list[CalendarDay]]:
    """Weeks (Monday first) covering the month of ``first``, with the posts of each local day."""
    zone = ZoneInfo(time_zone)
    start = first - timedelta(days=first.weekday())
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = following + timedelta(days=(7 - following.weekday()) % 7)
    by_day = _by_local_day(workspace_id, zone, start, end)
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    return [
        [CalendarDay(d, d.month == first.month, by_day[d]) for d in days[week : week + 7]]
        for week in range(0, len(days), 7)
    ]


@dataclass(frozen=True)
class WeekHour:
    hour: int
    cells: list[tuple[date, list[CalendarEntry]]]


def week_calendar(workspace_id: int, time_zone: str, monday: date) -> list[WeekHour]:
    """The week starting ``monday`` as 24 rows of hours by 7 local days."""
    zone = ZoneInfo(time_zone)
    days = [monday + timedelta(days=n) for n in range(7)]
    by_day = _by_local_day(workspace_id, zone, monday, monday + timedelta(days=7))
    by_slot: dict[tuple[date, int], list[CalendarEntry]] = defaultdict(list)
    for day in days:
        for entry in by_day[day]:
            by_slot[(day, entry.at.astimezone(zone).hour)].append(entry)
    return [WeekHour(hour, [(day, by_slot[(day, hour)]) for day in days]) for hour in range(24)]


def _by_local_day(
    workspace_id: int, zone: ZoneInfo, first: date, end: date
) -> dict[date, list[CalendarEntry]]:
    start_at = datetime.combine(first, time(), tzinfo=zone)
    end_at = datetime.combine(end, time(), tzinfo=zone)
    by_day: dict[date, list[CalendarEntry]] = defaultdict(list)
    for entry in calendar_entries(workspace_id, start_at, end_at):
        by_day[entry.at.astimezone(zone).date()].append(entry)
    return by_day
