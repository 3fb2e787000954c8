"""Reads for the publishing pages, the API and the campaign report; all scoped to a workspace."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from relais.connectors.models import ConnectedAccount
from relais.publishing.audience import audience_graph
from relais.publishing.models import (
    Claim,
    Draft,
    Forward,
    LinkClick,
    Offer,
    QueueSlot,
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
    posts, every_forward = [], []
    for link_id, link in links.items():
        if link.target is None:
            continue
        forwards = list(link.target.forwards.filter(forwarded_at__lte=now))
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


@dataclass(frozen=True)
class CascadeDot:
    x: float
    y: float
    parent_x: float
    parent_y: float
    handle: str
    depth: int
    at: datetime


def cascade_picture(
    target: Target, now: datetime, width: int = 760, row: int = 48, limit: int = 1500
) -> tuple[list[CascadeDot], int]:
    """Forwards on a timeline (x: time since the post, y: depth), each linked to its parent."""
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
                x, y, parent_x, parent_y, forward.handle, forward.depth, forward.forwarded_at
            )
        )
    height = int(row * (max(d.depth for d in dots) + 1.5))
    return dots, height


@dataclass(frozen=True)
class CalendarDay:
    day: date
    in_month: bool
    targets: list[Target]


def month_calendar(workspace_id: int, time_zone: str, first: date) -> list[list[CalendarDay]]:
    """Weeks (Monday first) covering the month of ``first``, with the posts of each local day."""
    zone = ZoneInfo(time_zone)
    start = first - timedelta(days=first.weekday())
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = following + timedelta(days=(7 - following.weekday()) % 7)
    posts = (
        Target.objects.in_workspace(workspace_id)
        .filter(
            scheduled_at__gte=datetime.combine(start, time(), tzinfo=zone),
            scheduled_at__lt=datetime.combine(end, time(), tzinfo=zone),
        )
        .exclude(status=TargetStatus.FAILED)
        .select_related("account")
        .order_by("scheduled_at")
    )
    by_day: dict[date, list[Target]] = defaultdict(list)
    for post in posts:
        assert post.scheduled_at is not None
        by_day[post.scheduled_at.astimezone(zone).date()].append(post)
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    return [
        [CalendarDay(d, d.month == first.month, by_day[d]) for d in days[week : week + 7]]
        for week in range(0, len(days), 7)
    ]
