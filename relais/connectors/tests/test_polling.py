"""Accounts read by polling (feeds, Mastodon): cursor moved with the items, failures held back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from relais.accounts.models import AuditEntry, User, Workspace
from relais.connectors.actions import do_connect_feed, do_poll_account
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.streams import streamed_accounts
from relais.connectors.tasks import poll_accounts
from relais.connectors.tests.feedserver import FeedServer
from relais.core import clock
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed(
    feeds: FeedServer, workspace: Workspace, owner: User, django_capture_on_commit_callbacks
) -> ConnectedAccount:
    feeds.files["/feed.rss"] = "press.rss"
    # Accepted items are stored by a task that starts once the transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        return do_connect_feed(workspace, feeds.url("/feed.rss"), actor=owner)


def test_connecting_a_feed_keeps_what_it_holds_and_its_validators(feed, workspace):
    assert feed.network == "rss"
    assert Post.objects.in_workspace(workspace.pk).filter(network="rss").count() == 3
    assert feed.cursor is not None
    assert {"etag", "modified"} <= set(feed.cursor)
    assert AuditEntry.objects.filter(workspace=workspace, action="account.connected").exists()


def test_a_poll_of_an_unchanged_feed_stores_nothing_new(feed, feeds, workspace):
    report = do_poll_account(feed.pk)

    assert report.accepted == 0
    assert feeds.statuses("/feed.rss") == [200, 304]
    assert Post.objects.in_workspace(workspace.pk).count() == 3


def test_a_changed_feed_brings_only_its_new_entries(
    feed, feeds, workspace, django_capture_on_commit_callbacks
):
    feeds.files["/feed.rss"] = "press_updated.rss"

    with django_capture_on_commit_callbacks(execute=True):
        report = do_poll_account(feed.pk)

    assert report.accepted > 0
    remote_ids = list(Post.objects.in_workspace(workspace.pk).values_list("remote_id", flat=True))
    assert len(remote_ids) == len(set(remote_ids))
    feed.refresh_from_db()
    assert feed.last_error == ""
    assert feed.lease_until is None


def test_a_rate_limited_feed_is_left_alone_for_the_wait_asked(feed, feeds):
    cursor = feed.cursor
    for _attempt in range(4):  # the client's own retries, then the poll gives up
        feeds.fail("/feed.rss", 429, {"Retry-After": "900"})

    do_poll_account(feed.pk)

    feed.refresh_from_db()
    assert feed.cursor == cursor
    assert "429" in feed.last_error
    assert feed.lease_until is not None
    assert feed.lease_until > clock.now() + timedelta(seconds=800)
    before = len(feeds.requests)
    assert do_poll_account(feed.pk).accepted == 0
    assert len(feeds.requests) == before  # skipped while held


def test_the_beat_polls_active_feeds_only(feed, feeds, workspace, owner):
    feeds.files["/blog.atom"] = "blog.atom"
    other = do_connect_feed(workspace, feeds.url("/blog.atom"), actor=owner)
    ConnectedAccount.objects.filter(pk=other.pk).update(status=AccountStatus.RECONNECT_NEEDED)

    assert poll_accounts.delay().get() == 1


def test_an_address_that_is_not_a_feed_is_refused_clearly(feeds, workspace, owner):
    feeds.files["/page.html"] = "not_a_feed.html"

    with pytest.raises(ValidationFailedError, match="does not serve a feed"):
        do_connect_feed(workspace, feeds.url("/page.html"), actor=owner)
    with pytest.raises(ValidationFailedError, match="full address"):
        do_connect_feed(workspace, "javascript:alert(1)", actor=owner)
    assert not ConnectedAccount.objects.in_workspace(workspace.pk).filter(network="rss")


def test_only_account_managers_connect_feeds(feeds, workspace, agent):
    feeds.files["/feed.rss"] = "press.rss"

    with pytest.raises(PermissionDeniedError):
        do_connect_feed(workspace, feeds.url("/feed.rss"), actor=agent)


def test_the_accounts_page_follows_a_feed(client, feeds, workspace, owner):
    feeds.files["/feed.rss"] = "press.rss"
    client.force_login(owner)

    response = client.post(
        reverse("connect_feed", args=[workspace.slug]), {"url": feeds.url("/feed.rss")}
    )

    assert response.status_code == 302
    page = client.get(reverse("accounts", args=[workspace.slug])).content.decode()
    assert feeds.url("/feed.rss") in page


def test_the_long_running_reader_leaves_appview_accounts_to_the_poll(workspace: Workspace) -> None:
    def account(handle: str, network: str, cursor: dict[str, object] | None) -> int:
        return ConnectedAccount.objects.create(
            workspace=workspace, network=network, handle=handle, cursor=cursor
        ).pk

    firehose = account("a.test", "bluesky", {"source": "firehose", "seq": 3})
    fresh = account("b.test", "bluesky", None)
    account("c.test", "bluesky", {"source": "notifications"})
    mastodon = account("brand@example.social", "mastodon", {"min_id": "9"})
    account("https://blog.example/feed", "rss", None)

    assert sorted(streamed_accounts(["bluesky", "mastodon"])) == sorted(
        [(firehose, "bluesky"), (fresh, "bluesky"), (mastodon, "mastodon")]
    )
