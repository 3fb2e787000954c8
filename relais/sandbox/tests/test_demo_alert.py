"""The demo raises a real crisis alert minutes after seeding, from the airline set's real posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relais.core import clock
from relais.listening.actions import do_evaluate_alerts
from relais.listening.models import Alert, MentionRollup
from relais.pipeline.models import Post
from relais.sandbox.actions import (
    DEMO_AIRLINE_HISTORY,
    DEMO_AIRLINE_NOW,
    do_seed_demo,
    do_tick_feed,
)
from relais.sandbox.models import SandboxFeed

pytestmark = pytest.mark.django_db

SEEDED_AT = datetime(2026, 11, 26, 10, 7, 30, tzinfo=UTC)
SURGE_IN_DATA = datetime(2015, 2, 22, 19, 55, tzinfo=UTC)  # benchmarks/alerts.py's onset


@pytest.fixture
def at(monkeypatch):
    def set_now(moment):
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment

    return set_now


def original_time(post: Post) -> datetime:
    return datetime.fromisoformat(post.raw["original_time"])


def test_seeding_lays_down_fourteen_hours_of_real_history_ending_now(at):
    at(SEEDED_AT)
    workspace = do_seed_demo()
    posts = Post.objects.in_workspace(workspace.pk).order_by("created_at")
    assert posts.count() > 3000
    first, last = posts.first(), posts.last()
    assert first is not None
    assert last is not None
    assert SEEDED_AT - DEMO_AIRLINE_HISTORY <= first.created_at < SEEDED_AT - timedelta(hours=13)
    assert last.created_at <= SEEDED_AT
    assert original_time(last) <= DEMO_AIRLINE_NOW
    # Four times real time: the replay's gaps are the data's gaps divided by four.
    gap_in_replay = last.created_at - first.created_at
    gap_in_data = original_time(last) - original_time(first)
    assert abs(gap_in_data / gap_in_replay - 4) < 0.01
    assert MentionRollup.objects.filter(query__name="American Airlines").exists()


def test_the_american_airlines_surge_raises_an_alert_within_minutes(
    at, django_capture_on_commit_callbacks
):
    at(SEEDED_AT)
    workspace = do_seed_demo()
    feed = SandboxFeed.objects.get(workspace=workspace, dataset="airline")
    opened: list[Alert] = []
    minute = 0
    while not opened and minute < 30:
        minute += 1
        now = at(SEEDED_AT + timedelta(minutes=minute))
        with django_capture_on_commit_callbacks(execute=True):
            while (report := do_tick_feed(feed.pk)) and report.has_more:
                pass
        opened = do_evaluate_alerts(workspace.pk, now=now)
        if minute == 1:
            assert opened == []  # nothing before the surge reaches the replay
    assert [alert.query.name for alert in opened] == ["American Airlines"]
    assert minute <= 12
    alert = opened[0]
    # The episode starts where the surge starts in the data, give or take a bucket (20 minutes
    # of data at this speed), and its posts are the surge's real posts.
    started_in_data = DEMO_AIRLINE_NOW + (alert.started_at - SEEDED_AT) * 4
    assert abs(started_in_data - SURGE_IN_DATA) <= timedelta(minutes=25)
    posts = Post.objects.filter(pk__in=alert.explanation["post_ids"])
    assert posts.count() == 5
    assert all(original_time(post) >= SURGE_IN_DATA - timedelta(minutes=30) for post in posts)
