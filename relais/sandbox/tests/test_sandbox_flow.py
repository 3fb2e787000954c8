import uuid
from collections import Counter

import pytest
from django.core.management import call_command

from relais.accounts.models import Workspace
from relais.inbox.actions import do_send_reply
from relais.inbox.models import Conversation
from relais.listening.models import Mention
from relais.pipeline.models import Post
from relais.sandbox.actions import do_seed_demo, do_start_feed, do_tick_feed
from relais.sandbox.models import FeedState, SandboxFeed, SandboxOutbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Tick a feed and run what it hands to workers, as committed work would."""

    def run(feed):
        with django_capture_on_commit_callbacks(execute=True):
            return do_tick_feed(feed.pk)

    return run


def drain(tick, feed):
    while (report := tick(feed)) and report.accepted:
        pass


def test_the_demo_workspace_is_seeded_once_with_sandbox_accounts_and_replays():
    workspace = do_seed_demo(airline_history=False)
    assert do_seed_demo() == workspace
    assert workspace.name == "Demo"
    assert workspace.is_sandbox
    from relais.connectors.models import ConnectedAccount

    handles = set(
        ConnectedAccount.objects.in_workspace(workspace.pk).values_list("handle", flat=True)
    )
    assert {"AmericanAir", "Freebox", "AppleSupport"} <= handles
    assert set(
        SandboxFeed.objects.in_workspace(workspace.pk).values_list("dataset", flat=True)
    ) == {
        "airline",
        "free",
        "twcs",
    }


def test_a_fast_replay_fills_the_inbox_with_real_threads_and_the_brands_history(tick):
    workspace = do_seed_demo(airline_history=False)
    feed = do_start_feed(workspace, "twcs", speed=1_000_000, max_gap=0.001)
    drain(tick, feed)
    feed.refresh_from_db()
    assert feed.state == FeedState.FINISHED
    assert feed.emitted == Post.objects.in_workspace(workspace.pk).count() == 5000
    conversations = Conversation.objects.in_workspace(workspace.pk)
    assert conversations.count() > 50
    with_history = conversations.filter(messages__direction="outbound").distinct().count()
    assert with_history > 30  # real brand replies kept as the thread's history


def test_an_agents_reply_is_accepted_by_the_sandbox_and_comes_back_once(
    workspace, brand_account, agent, tick
):
    from relais.conftest import make_item
    from relais.pipeline.actions import do_ingest_items

    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free panne totale")])
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    key = uuid.uuid4().hex
    post = do_send_reply(agent, conversation, "@camille On s'en occupe.", idempotency_key=key)
    assert (
        do_send_reply(agent, conversation, "@camille On s'en occupe.", idempotency_key=key) == post
    )
    assert SandboxOutbound.objects.count() == 1
    feed = do_start_feed(workspace, "free", speed=1, max_gap=1)
    tick(feed)  # delivers the sent reply back through the inbound flow
    assert Post.objects.in_workspace(workspace.pk).filter(remote_id=post.remote_id).count() == 1
    assert SandboxOutbound.objects.get().delivered
    conversation.refresh_from_db()
    assert conversation.message_count == 2


def test_the_replay_command_drives_a_workspace(capsys):
    do_seed_demo(airline_history=False)
    call_command("sandbox", "replay", "--workspace", "demo", "--dataset", "free", "--speed", "5")
    assert "replaying free into demo" in capsys.readouterr().out
    assert SandboxFeed.objects.get(dataset="free").speed == 5
    assert Workspace.objects.count() == 1


def test_the_demo_listens_to_its_brands_and_competitors(tick):
    workspace = do_seed_demo(airline_history=False)
    feed = do_start_feed(workspace, "airline", speed=1_000_000, max_gap=0.001)
    drain(tick, feed)

    mentions = Counter(
        Mention.objects.in_workspace(workspace.pk).values_list("query__name", flat=True)
    )
    assert set(mentions) >= {"American Airlines", "United", "Southwest", "JetBlue"}
    assert mentions["American Airlines"] > 1000
