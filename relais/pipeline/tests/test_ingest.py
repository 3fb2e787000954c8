from datetime import timedelta

import pytest

from relais.conftest import make_item
from relais.inbox.models import Conversation, Message
from relais.pipeline.actions import do_ingest_items, do_route_orphans
from relais.pipeline.models import Post, Routing

pytestmark = pytest.mark.django_db


def ingest(workspace, *items):
    return do_ingest_items(workspace.pk, "sandbox", list(items))


def test_a_redelivered_item_is_stored_once(workspace, brand_account):
    item = make_item("free:1", "@free ma box ne marche plus")
    first = ingest(workspace, item)
    again = ingest(workspace, item, item)
    assert (first.created, again.created) == (1, 0)
    assert Post.objects.in_workspace(workspace.pk).count() == 1
    assert Message.objects.in_workspace(workspace.pk).count() == 1


def test_a_mention_opens_a_conversation_and_the_thread_joins_it(workspace, brand_account):
    ingest(
        workspace,
        make_item("free:1", "@free plus d'internet depuis ce matin", minutes=0),
        make_item(
            "free:2",
            "@camille Bonjour, on regarde",
            handle="Freebox",
            minutes=5,
            in_reply_to="free:1",
        ),
        make_item("free:3", "@Freebox merci, toujours rien", minutes=9, in_reply_to="free:2"),
    )
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    directions = list(
        conversation.messages.order_by("created_at").values_list("direction", flat=True)
    )
    assert directions == ["inbound", "outbound", "inbound"]
    assert conversation.message_count == 3
    assert conversation.account == brand_account
    assert conversation.preview == "@Freebox merci, toujours rien"
    assert conversation.customer.handle == "camille"


def test_posts_not_addressed_to_the_brand_stay_out_of_the_inbox(workspace, brand_account):
    ingest(workspace, make_item("free:9", "@SFR vous êtes mieux ?"))
    post = Post.objects.in_workspace(workspace.pk).get()
    assert post.routing == Routing.NOT_ADDRESSED
    assert not Conversation.objects.in_workspace(workspace.pk).exists()


def test_a_reply_stored_before_its_parent_joins_the_thread_when_the_parent_arrives(
    workspace, brand_account
):
    ingest(
        workspace,
        make_item(
            "free:2", "@camille on regarde", handle="Freebox", minutes=5, in_reply_to="free:1"
        ),
    )
    assert Post.objects.get(remote_id="free:2").routing == Routing.WAITING_PARENT
    ingest(workspace, make_item("free:1", "@free panne fibre"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.message_count == 2
    child = Post.objects.select_related("parent").get(remote_id="free:2")
    assert child.parent is not None
    assert child.parent.remote_id == "free:1"


def test_a_whole_chain_stored_upside_down_joins_the_thread_when_its_root_arrives(
    workspace, brand_account
):
    ingest(
        workspace, make_item("free:3", "@Freebox toujours rien", minutes=9, in_reply_to="free:2")
    )
    ingest(
        workspace,
        make_item(
            "free:2", "@camille on regarde", handle="Freebox", minutes=5, in_reply_to="free:1"
        ),
    )
    ingest(workspace, make_item("free:1", "@free panne fibre"))

    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.message_count == 3
    assert not Post.objects.in_workspace(workspace.pk).filter(routing=Routing.WAITING_PARENT)


def test_a_reply_whose_parent_never_arrives_is_routed_after_the_grace_period(
    workspace, brand_account
):
    ingest(workspace, make_item("free:5", "@Freebox toujours en panne", in_reply_to="free:4"))
    assert do_route_orphans(workspace.pk, grace=timedelta(hours=1)) == 0
    assert do_route_orphans(workspace.pk, grace=timedelta(0)) == 1
    assert Conversation.objects.in_workspace(workspace.pk).get().thread_key == "free:4"


def test_a_brand_reply_given_up_on_joins_its_thread_when_the_parent_comes_late(
    workspace, brand_account
):
    """The brand's answer opens no conversation of its own: routed as an orphan it stays out
    of the inbox, until its parent arrives after the grace period and it is adopted."""
    ingest(
        workspace,
        make_item(
            "free:2", "@camille on regarde", handle="Freebox", minutes=5, in_reply_to="free:1"
        ),
    )
    do_route_orphans(workspace.pk, grace=timedelta(0))
    assert Post.objects.get(remote_id="free:2").routing == Routing.NOT_ADDRESSED

    ingest(workspace, make_item("free:1", "@free panne fibre"))

    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.message_count == 2
    assert Post.objects.get(remote_id="free:2").routing == Routing.ROUTED


def test_a_customer_writing_again_reopens_a_resolved_conversation(workspace, brand_account):
    ingest(workspace, make_item("free:1", "@free panne"))
    Conversation.objects.update(status="resolved")
    ingest(workspace, make_item("free:2", "@free ça recommence", minutes=60, in_reply_to="free:1"))
    assert Conversation.objects.get().status == "open"


def test_hostile_text_is_stored_exactly_as_received(workspace, brand_account):
    hostile = (
        '<script>alert(1)</script> <a href="javascript:alert(2)">x</a> \u202eevil ' + "😀" * 5000
    )
    ingest(workspace, make_item("free:6", "@free " + hostile))
    assert Post.objects.get(remote_id="free:6").text == "@free " + hostile


def test_each_workspace_keeps_its_own_copy_of_a_post(make_workspace):
    first, second = make_workspace(), make_workspace()
    item = make_item("free:1", "bonjour")
    do_ingest_items(first.pk, "sandbox", [item])
    do_ingest_items(second.pk, "sandbox", [item])
    assert Post.objects.in_workspace(first.pk).count() == 1
    assert Post.objects.in_workspace(second.pk).count() == 1
