from datetime import UTC, datetime

import pytest

from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.connectors.actions import (
    do_accept_bluesky_page,
    do_mark_reconnect_needed,
    do_poll_bluesky_account,
    release_lease,
    take_lease,
)
from relais.connectors.base import CredentialsExpiredError, PostKind
from relais.connectors.models import AccountStatus, ConnectedAccount, Engagement
from relais.connectors.networks.bluesky import BlueskyPage, EngagementEvent
from relais.connectors.registry import connector_for
from relais.core.models import LiveEvent
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db

BRAND_POST = "at://did:plc:brand/app.bsky.feed.post/1"
WHEN = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def account(workspace):
    return ConnectedAccount.objects.create(
        workspace=workspace, network="bluesky", handle="brand.test"
    )


def test_an_expired_credential_stops_the_account_and_tells_admins(account):
    do_mark_reconnect_needed(account, CredentialsExpiredError("refused"))

    account.refresh_from_db()
    assert account.status == AccountStatus.RECONNECT_NEEDED
    assert account.last_error == "refused"
    assert AuditEntry.objects.filter(action="account.reconnect_needed").exists()
    assert LiveEvent.objects.filter(kind="accounts.changed").exists()
    assert do_poll_bluesky_account(account.pk).accepted == 0  # no lease for an inactive account


def test_only_one_reader_holds_an_account(account):
    assert take_lease(account.pk)
    assert not take_lease(account.pk)
    release_lease(account.pk)
    assert take_lease(account.pk)


def test_a_page_moves_the_cursor_with_its_items(account, django_capture_on_commit_callbacks):
    item = make_item("at://did:plc:c/app.bsky.feed.post/9", "@brand.test hello")
    page = BlueskyPage([item], {"seq": 42})

    with django_capture_on_commit_callbacks(execute=True):
        do_accept_bluesky_page(account, page)

    account.refresh_from_db()
    assert account.cursor == {"seq": 42}
    assert Post.objects.filter(remote_id=item.remote_id).exists()


def test_engagements_are_counted_once_and_undone(account, django_capture_on_commit_callbacks):
    own = make_item(BRAND_POST, "our news", handle="brand.test")
    repost = EngagementEvent("at://c/app.bsky.feed.repost/1", "repost", BRAND_POST, "c", WHEN)
    like = EngagementEvent("at://c/app.bsky.feed.like/1", "like", BRAND_POST, "c", WHEN)

    with django_capture_on_commit_callbacks(execute=True):
        do_accept_bluesky_page(account, BlueskyPage([own], {"seq": 1}))
        do_accept_bluesky_page(account, BlueskyPage([], {"seq": 2}, engagements=[repost, like]))
        do_accept_bluesky_page(account, BlueskyPage([], {"seq": 2}, engagements=[repost]))
    post = Post.objects.get(remote_id=BRAND_POST)
    assert post.metrics == {"likes": 1, "reposts": 1, "replies": 0, "quotes": 0}

    # The brand's post delivered again (a replayed stream) keeps its counts.
    with django_capture_on_commit_callbacks(execute=True):
        do_accept_bluesky_page(account, BlueskyPage([own], {"seq": 3}))
        undo = EngagementEvent(repost.remote_id, "", undone=True)
        do_accept_bluesky_page(account, BlueskyPage([], {"seq": 4}, engagements=[undo]))
    post.refresh_from_db()
    assert post.metrics == {"likes": 1, "reposts": 0, "replies": 0, "quotes": 0}
    assert Engagement.objects.count() == 1
    assert post.kind == PostKind.POST


def test_credentials_from_another_secret_key_mean_reconnect(account):
    account.credentials = "written-under-another-key"

    connector = connector_for(account)

    with pytest.raises(CredentialsExpiredError, match="no app password"):
        connector.create_session()  # type: ignore[attr-defined]


def test_renewed_credentials_are_stored_encrypted(account):
    connector = connector_for(account)

    connector.account.save_credentials({"access_jwt": "new"})  # type: ignore[misc]

    account.refresh_from_db()
    assert "new" not in account.credentials
    assert connector_for(account).credentials == {"access_jwt": "new"}  # type: ignore[attr-defined]
