"""SLA breach alerts: noticed by the beat, told once per breach (live event and webhook)."""

from datetime import timedelta

import pytest
from django.urls import reverse

from relais.conftest import T0, make_item
from relais.core.models import LiveEvent
from relais.inbox import actions
from relais.inbox.models import Conversation, WebhookDelivery
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


def ingest(workspace, *items):
    do_ingest_items(workspace.pk, "sandbox", list(items))


@pytest.fixture
def endpoint(owner, workspace, settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    endpoint, _secret = actions.do_create_webhook_endpoint(
        owner, workspace, "http://127.0.0.1:9/crm", ["conversation.sla_breached"]
    )
    return endpoint


def announce(minutes: float) -> int:
    return actions.do_announce_sla_breaches(T0 + timedelta(minutes=minutes))


def test_each_breach_is_told_once_and_a_reopened_conversation_can_breach_again(
    workspace, brand_account, owner, endpoint
):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=30, resolution_minutes=120)
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert announce(29) == 0
    assert announce(31) == 1  # first response late
    assert announce(40) == 0  # already told
    assert announce(121) == 1  # resolution late
    assert announce(500) == 0
    actions.do_change_status(owner, conversation, "resolved")
    ingest(workspace, make_item("free:2", "@free revenu", minutes=600, in_reply_to="free:1"))
    assert announce(700) == 0
    assert announce(721) == 1  # the new resolution deadline

    events = [d.payload for d in WebhookDelivery.objects.order_by("pk")]
    assert [e["change"]["deadline"] for e in events] == [
        "first_response",
        "resolution",
        "resolution",
    ]
    assert len({e["id"] for e in events}) == 3
    assert all(e["conversation"]["id"] == conversation.pk for e in events)
    live = LiveEvent.objects.in_workspace(workspace.pk).filter(kind="sla.breached")
    assert [e.payload["ids"] for e in live] == [[conversation.pk]] * 3


def test_an_answered_or_resolved_conversation_is_not_announced(workspace, brand_account, owner):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=30, resolution_minutes=120)
    ingest(
        workspace,
        make_item("free:1", "@free panne"),
        make_item("free:3", "@free facture", handle="lea"),
    )
    answered = Conversation.objects.get(thread_key="free:1")
    Conversation.objects.filter(pk=answered.pk).update(first_response_at=T0)
    actions.do_change_status(owner, Conversation.objects.get(thread_key="free:3"), "resolved")
    assert announce(1000) == 1  # only the answered one's resolution deadline
    breached = Conversation.objects.get(pk=answered.pk)
    assert breached.first_response_breached_at is None
    assert breached.resolution_breached_at is not None


def test_two_runs_at_once_tell_a_breach_once(workspace, brand_account, owner, endpoint):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=30, resolution_minutes=120)
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.get()
    # The other run marked it between this run's read and its update.
    actions._announce(workspace.pk, "first_response", [(conversation.pk, T0)], T0)
    assert actions._announce(workspace.pk, "first_response", [(conversation.pk, T0)], T0) == 0
    assert WebhookDelivery.objects.count() == 1


def test_the_inbox_shows_the_breaches_just_announced(
    client, workspace, brand_account, owner, agent
):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=30, resolution_minutes=120)
    ingest(workspace, make_item("free:1", "@free plus de réseau"))
    client.force_login(agent)
    notice = reverse("sla_breach_notice", args=[workspace.slug])
    assert "plus de réseau" not in client.get(notice).content.decode()
    actions.do_announce_sla_breaches()  # now: long after the 2024 deadlines
    page = client.get(notice).content.decode()
    assert "Service level breached" in page
    assert "plus de réseau" in page
    inbox = client.get(reverse("inbox", args=[workspace.slug])).content.decode()
    assert 'hx-trigger="sse:sla.breached"' in inbox
