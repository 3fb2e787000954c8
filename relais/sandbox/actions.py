"""Driving the sandbox: start, tick and stop replays, and seed the demo workspace."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, do_create_user, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability, Role
from relais.connectors.base import AccountContext
from relais.connectors.models import ConnectedAccount
from relais.connectors.networks.sandbox import SandboxConnector
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.pipeline.actions import do_accept_items, do_ingest_items
from relais.sandbox.dataset import DATASETS
from relais.sandbox.models import FeedState, SandboxFeed
from relais.sandbox.replay import ReplayCursor
from relais.sandbox.server import dataset_rows

LEASE = timedelta(seconds=60)
TICK_LIMIT = 2000  # rows accepted per tick; a feed with more due ticks again at once


@dataclass(frozen=True)
class TickReport:
    accepted: int
    has_more: bool
    finished: bool


def check_feed_settings(dataset: str, speed: float, max_gap: float) -> None:
    if dataset not in DATASETS:
        raise ValidationFailedError(
            _("Unknown sandbox dataset %(name)s (known: %(known)s).")
            % {"name": dataset, "known": ", ".join(sorted(DATASETS))}
        )
    if not 0 < speed <= 10_000_000:
        raise ValidationFailedError(_("The speed must be above 0."))
    if max_gap <= 0:
        raise ValidationFailedError(_("The longest pause must be above 0 seconds."))


def do_start_feed(
    workspace: Workspace,
    dataset: str,
    *,
    speed: float = 60.0,
    max_gap: float = 20.0,
    restart: bool = False,
    actor: User | None = None,
) -> SandboxFeed:
    """Start (or retune) a replay; ``restart`` plays the dataset again from its first row."""
    check_feed_settings(dataset, speed, max_gap)
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    with transaction.atomic():
        feed, _created = SandboxFeed.objects.get_or_create(workspace=workspace, dataset=dataset)
        feed.speed, feed.max_gap_seconds, feed.state = speed, max_gap, FeedState.RUNNING
        if restart:
            feed.cursor, feed.emitted = None, 0
        elif feed.cursor:  # keep the position, restart the clock from now
            feed.cursor = {**feed.cursor, "wall": None}
        feed.save()
        record_audit(workspace, actor, "sandbox.feed_started", feed, dataset=dataset, speed=speed)
    return feed


def do_pause_feed(feed: SandboxFeed, *, actor: User | None = None) -> None:
    with transaction.atomic():
        SandboxFeed.objects.filter(pk=feed.pk).update(state=FeedState.PAUSED)
        record_audit(feed.workspace_id, actor, "sandbox.feed_paused", feed)


def do_tick_feed(feed_id: int) -> TickReport | None:
    """Accept the rows now due; None when another worker holds this feed."""
    now = clock.now()
    taken = (
        SandboxFeed.objects.filter(pk=feed_id, state=FeedState.RUNNING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE)
    )
    if not taken:
        return None
    try:
        with transaction.atomic():
            feed = SandboxFeed.objects.get(pk=feed_id)
            page = _connector_for_feed(feed).fetch(feed.cursor, limit=TICK_LIMIT)
            do_accept_items(feed.workspace_id, SandboxConnector.key, page.items)
            feed.cursor = page.cursor
            feed.emitted += len(page.items)
            feed.skipped = page.skipped
            total = len(dataset_rows(feed.dataset).rows)
            finished = page.cursor["position"] >= total and not page.has_more
            if finished:
                feed.state = FeedState.FINISHED
            feed.save(update_fields=["cursor", "emitted", "skipped", "state", "updated_at"])
    finally:
        SandboxFeed.objects.filter(pk=feed_id).update(lease_until=None)
    return TickReport(len(page.items), page.has_more, finished)


def _connector_for_feed(feed: SandboxFeed) -> SandboxConnector:
    handle = next(iter(DATASETS[feed.dataset].brand_accounts)).handle
    return SandboxConnector(
        AccountContext(
            workspace_id=feed.workspace_id,
            handle=handle,
            settings={
                "dataset": feed.dataset,
                "speed": feed.speed,
                "max_gap": feed.max_gap_seconds,
            },
        )
    )


# The demo brand: which sandbox accounts it connects, per dataset (handle, aliases).
DEMO_ACCOUNTS: dict[str, list[tuple[str, list[str]]]] = {
    "airline": [("AmericanAir", [])],
    "free": [("Freebox", ["free"])],
    "twcs": [
        ("AppleSupport", []),
        ("AmazonHelp", []),
        ("Uber_Support", []),
        ("SpotifyCares", []),
        ("comcastcares", []),
    ],
}
# What the demo brand listens to: itself, the airlines it competes with (all in the airline set)
# and a topic that cuts across the sets. Tags are QueryTag values of relais.listening.
DEMO_QUERIES = [
    ("American Airlines", '@americanair OR "american airlines"', "brand"),
    ("Free", "@free OR @freebox OR freebox", "brand"),
    ("United", '@united OR "united airlines"', "competitor"),
    ("Southwest", "@southwestair OR southwest", "competitor"),
    ("JetBlue", "@jetblue OR jetblue", "competitor"),
    ("Outages", 'panne OR outage OR "no internet" OR "pas de connexion" OR "down again"', "topic"),
]
DEMO_USERS = [
    ("demo", "Demo Owner", Role.OWNER, "en"),
    ("agent", "Alex Agent", Role.AGENT, "en"),
    ("agente", "Camille Agente", Role.AGENT, "fr"),
]
# Five hours of history a minute, pauses at most 2 s: lively, and the Free and support sets flow.
DEMO_SPEED = 300.0
DEMO_MAX_GAP = 2.0
# The airline set plays at its own pace so that the crisis detector can work on it: four times
# real time with its pauses kept whole, so its 5-minute buckets hold 20 minutes of the real
# stream with the real rhythm. The detector needs 12 hours of history (in the replay's time,
# which is the time posts carry), so at seeding the replay is fast-forwarded: the 14 hours of
# replay that would lead up to DEMO_AIRLINE_NOW are delivered at once, with their replay times,
# and the replay goes on live from there. The American Airlines complaint surge of
# 22 February 2015 (19:55 UTC in the data) then arrives about four minutes after seeding, and
# the detector raises its alert from the real posts a few minutes later (benchmarks/alerts.py
# measures the same detector on the same set at real speed).
DEMO_AIRLINE_SPEED = 4.0
DEMO_AIRLINE_MAX_GAP = 3600.0
DEMO_AIRLINE_NOW = datetime(2015, 2, 22, 19, 40, tzinfo=UTC)
DEMO_AIRLINE_HISTORY = timedelta(hours=14)
DEMO_PASSWORD = "relais-demo"  # noqa: S105 -- the published demo login, printed by `make run`


def do_connect_sandbox_account(
    workspace: Workspace, dataset: str, handle: str, aliases: list[str], *, actor: User | None
) -> ConnectedAccount:
    check_feed_settings(dataset, 1, 1)
    with transaction.atomic():
        account, _created = ConnectedAccount.objects.update_or_create(
            workspace=workspace,
            network=SandboxConnector.key,
            handle=handle,
            defaults={
                "display_name": handle,
                "settings": {"dataset": dataset, "aliases": aliases},
            },
        )
        record_audit(workspace, actor, "account.connected", account, network="sandbox")
    return account


def do_seed_demo(
    *, speed: float = DEMO_SPEED, max_gap: float = DEMO_MAX_GAP, airline_history: bool = True
) -> Workspace:
    """Create (once) the "Demo" workspace, its people, its sandbox accounts and replays.

    ``airline_history`` fast-forwards the airline replay (see DEMO_AIRLINE_SPEED): about 3,900
    posts stored during seeding, a few seconds; tests that do not need it turn it off.
    """
    existing = Workspace.objects.filter(slug="demo").first()
    if existing is not None:
        return existing
    from relais.accounts.actions import do_add_member, do_create_workspace
    from relais.listening.actions import do_create_query

    users = {
        username: User.objects.filter(username=username).first()
        or do_create_user(username, DEMO_PASSWORD, first_name=name, language=language)
        for username, name, _role, language in DEMO_USERS
    }
    workspace = do_create_workspace("Demo", users["demo"], is_sandbox=True)
    for username, _name, role, _language in DEMO_USERS[1:]:
        do_add_member(workspace, users[username], role, actor=users["demo"])
    for name, text, tag in DEMO_QUERIES:
        do_create_query(users["demo"], workspace, name=name, text=text, tag=tag)
    for dataset, accounts in DEMO_ACCOUNTS.items():
        for handle, aliases in accounts:
            do_connect_sandbox_account(workspace, dataset, handle, aliases, actor=users["demo"])
        if dataset == "airline":
            feed = do_start_feed(
                workspace,
                dataset,
                speed=DEMO_AIRLINE_SPEED,
                max_gap=DEMO_AIRLINE_MAX_GAP,
                actor=users["demo"],
            )
            if airline_history:
                do_fast_forward_feed(feed, until=DEMO_AIRLINE_NOW, history=DEMO_AIRLINE_HISTORY)
        else:
            do_start_feed(workspace, dataset, speed=speed, max_gap=max_gap, actor=users["demo"])
    return workspace


def do_fast_forward_feed(feed: SandboxFeed, *, until: datetime, history: timedelta) -> int:
    """Play at once what the replay would have played during the last ``history`` of its time,
    had it been running so as to reach the row of ``until`` (historical time) now.

    Posts keep the times the replay gives them (in the past), exactly as if the replay had run,
    so rollups and the crisis detector's baseline see a real stretch of history. Rows before
    that stretch are skipped. Stored here and now rather than through workers, so the history is
    complete before anything evaluates it. Returns the posts delivered.
    """
    rows = dataset_rows(feed.dataset).rows
    first_time = until - history * feed.speed
    position = max(bisect.bisect_left([row.time for row in rows], first_time), 1)
    started = clock.now() - history
    # History seconds already waited towards the first row: it then falls where it would have.
    waited = (first_time - rows[position - 1].time).total_seconds()
    feed.cursor = ReplayCursor(position, max(waited, 0.0), started.isoformat()).to_json()
    # One reading of the clock for the whole stretch: a reading cut short by a limit would
    # deliver the rest with the time of the next reading, squeezing hours into one bucket.
    page = _connector_for_feed(feed).fetch(feed.cursor, limit=len(rows))
    for start in range(0, len(page.items), TICK_LIMIT):
        do_ingest_items(
            feed.workspace_id, SandboxConnector.key, page.items[start : start + TICK_LIMIT]
        )
    feed.cursor = page.cursor
    feed.emitted += len(page.items)
    feed.save(update_fields=["cursor", "emitted", "updated_at"])
    return len(page.items)
