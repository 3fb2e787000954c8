"""CRM webhooks: signed, in order per endpoint, retried, never lost; against a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import translation

from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.core import clock
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.inbox import actions, webhooks
from relais.inbox.models import (
    KEY_CHANGED_ERROR,
    Contact,
    Conversation,
    WebhookDelivery,
    WebhookEndpoint,
)
from relais.inbox.tests.receiver import CrmReceiver
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_receivers_allowed(settings: Any) -> None:
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}


@pytest.fixture
def receiver(local_receivers_allowed: None) -> Iterator[CrmReceiver]:
    crm = CrmReceiver()
    yield crm
    crm.close()


@pytest.fixture
def endpoint(receiver: CrmReceiver, owner, workspace) -> WebhookEndpoint:
    endpoint, secret = actions.do_create_webhook_endpoint(
        owner, workspace, receiver.url, list(webhooks.EVENT_TYPES)
    )
    receiver.secret = secret
    return endpoint


def ingest(workspace, *items) -> None:
    do_ingest_items(workspace.pk, "sandbox", list(items))


def deliver(endpoint: WebhookEndpoint) -> int:
    return webhooks.deliver_endpoint(endpoint.pk)


def make_due(endpoint: WebhookEndpoint) -> None:
    """What the passing of the backoff delay does (the clock is not faked)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        next_attempt_at=clock.now() - timedelta(seconds=1)
    )


@pytest.mark.usefixtures("brand_account")
def test_changes_reach_the_receiver_signed_and_in_order(endpoint, receiver, workspace, agent):
    ingest(workspace, make_item("free:1", "@free plus de réseau depuis ce matin"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    contact = Contact.objects.in_workspace(workspace.pk).get()
    actions.do_assign(agent, conversation, agent)
    actions.do_change_status(agent, conversation, "pending")
    actions.do_set_tags(agent, conversation, "fibre")
    actions.do_update_contact(agent, contact, attributes={"client": "12345"})

    assert deliver(endpoint) == 6
    assert receiver.bad_signatures == 0
    assert receiver.types() == [
        "contact.created",
        "conversation.created",
        "conversation.assigned",
        "conversation.status_changed",
        "conversation.tagged",
        "contact.updated",
    ]
    assigned = receiver.accepted[2]
    assert assigned["actor"] == agent.username
    assert assigned["conversation"]["assignee"] == agent.username
    assert assigned["conversation"]["contact_id"] == contact.pk
    assert assigned["change"] == {"before": None, "assignee": agent.pk}
    assert receiver.accepted[-1]["contact"]["attributes"] == {"client": "12345"}
    assert receiver.accepted[-1]["contact"]["identities"][0]["handle"] == "camille"
    assert len({event["id"] for event in receiver.accepted}) == 6
    endpoint.refresh_from_db()
    assert not endpoint.failing
    assert endpoint.last_delivered_at is not None
    assert deliver(endpoint) == 0  # nothing sent twice


def test_a_failing_receiver_is_retried_later_in_order_with_the_same_event_id(
    endpoint, receiver, workspace, brand_account, agent
):
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    receiver.failures.extend([500])
    actions.do_change_status(agent, conversation, "open")

    assert deliver(endpoint) == 0  # the first event failed: the others wait behind it
    endpoint.refresh_from_db()
    assert endpoint.failing
    assert "500" in endpoint.last_error
    assert endpoint.next_attempt_at > clock.now()
    assert deliver(endpoint) == 0  # not due yet: nothing is attempted
    assert len(receiver.attempts) == 1

    make_due(endpoint)
    assert deliver(endpoint) == 3
    assert receiver.types() == [
        "contact.created",
        "conversation.created",
        "conversation.status_changed",
    ]
    assert receiver.attempts[0] == receiver.attempts[1] == receiver.accepted[0]["id"]
    endpoint.refresh_from_db()
    assert (endpoint.failing, endpoint.last_error, endpoint.next_attempt_at) == (False, "", None)
    first = WebhookDelivery.objects.get(event_id=receiver.accepted[0]["id"])
    assert first.attempts == 2


def test_a_lease_held_by_a_dead_worker_runs_out_and_nothing_is_lost(
    endpoint, receiver, workspace, brand_account
):
    ingest(workspace, make_item("free:1", "@free panne"))
    # A worker took the lease and died without releasing it: nobody else sends meanwhile.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(lease_until=clock.now() + webhooks.LEASE)
    assert deliver(endpoint) == 0
    assert webhooks.due_endpoint_ids(clock.now()) == []
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(lease_until=clock.now())
    assert webhooks.due_endpoint_ids(clock.now() + timedelta(seconds=1)) == [endpoint.pk]
    assert deliver(endpoint) == 2


def test_only_subscribed_events_are_queued_and_a_redelivered_batch_adds_none(
    owner, workspace, brand_account, receiver
):
    endpoint, _secret = actions.do_create_webhook_endpoint(
        owner, workspace, receiver.url, ["conversation.created"]
    )
    item = make_item("free:1", "@free panne")
    ingest(workspace, item)
    ingest(workspace, item)  # the same batch stored again (a redelivered task)
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    actions.do_set_tags(owner, conversation, "x")
    assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == [
        "conversation.created"
    ]
    assert WebhookDelivery.objects.get().endpoint == endpoint
    created = AuditEntry.objects.filter(action__in=["conversation.created", "contact.created"])
    assert sorted(created.values_list("action", flat=True)) == [
        "contact.created",
        "conversation.created",
    ]


def test_two_workers_recording_the_same_creation_queue_it_once(owner, workspace, receiver):
    endpoint, _secret = actions.do_create_webhook_endpoint(
        owner, workspace, receiver.url, ["contact.created"]
    )
    contact = Contact.objects.create(workspace=workspace, display_name="Camille")
    now = clock.now()
    webhooks.record_created(workspace.pk, [], [contact.pk], now)
    webhooks.record_created(workspace.pk, [], [contact.pk], now)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_an_endpoint_is_checked_when_saved(owner, agent, workspace, settings):
    with pytest.raises(ValidationFailedError, match="private address"):
        actions.do_create_webhook_endpoint(
            owner, workspace, "http://127.0.0.1:8080/hook", ["contact.created"]
        )
    with pytest.raises(ValidationFailedError, match="http"):
        actions.do_create_webhook_endpoint(
            owner, workspace, "ftp://crm.example", ["contact.created"]
        )
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    with pytest.raises(ValidationFailedError, match="Unknown events"):
        actions.do_create_webhook_endpoint(owner, workspace, "http://127.0.0.1/", ["post.sent"])
    with pytest.raises(ValidationFailedError, match="at least one"):
        actions.do_create_webhook_endpoint(owner, workspace, "http://127.0.0.1/", [])
    with pytest.raises(PermissionDeniedError):
        actions.do_create_webhook_endpoint(
            agent, workspace, "http://127.0.0.1/", ["contact.created"]
        )
    assert not WebhookEndpoint.objects.exists()


def test_the_secret_is_stored_encrypted_and_signs_the_body(endpoint, receiver):
    assert receiver.secret.startswith("whsec_")
    assert receiver.secret not in endpoint.secret
    assert webhooks.endpoint_secret(endpoint) == receiver.secret


def test_a_paused_endpoint_keeps_its_events_and_sends_them_in_order_when_resumed(
    endpoint, receiver, owner, workspace, brand_account
):
    actions.do_update_webhook_endpoint(owner, endpoint, active=False)
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    actions.do_set_tags(owner, conversation, "later")
    assert deliver(endpoint) == 0  # nothing goes out while paused
    assert receiver.attempts == []
    assert webhooks.due_endpoint_ids(clock.now()) == []  # the beat leaves it alone too
    actions.do_update_webhook_endpoint(owner, endpoint, active=True)
    assert deliver(endpoint) == 3
    assert receiver.types() == ["contact.created", "conversation.created", "conversation.tagged"]


@pytest.mark.usefixtures("brand_account")
def test_an_admin_may_discard_what_a_paused_endpoint_kept(
    endpoint, receiver, owner, agent, workspace
):
    ingest(workspace, make_item("free:1", "@free panne"))
    with pytest.raises(ValidationFailedError):  # a worker may be sending them right now
        actions.do_discard_webhook_events(owner, endpoint)
    actions.do_update_webhook_endpoint(owner, endpoint, active=False)
    with pytest.raises(PermissionDeniedError):
        actions.do_discard_webhook_events(agent, endpoint)
    assert actions.do_discard_webhook_events(owner, endpoint) == 2
    assert AuditEntry.objects.filter(action="webhook.discarded").get().data == {"events": 2}
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    actions.do_set_tags(owner, conversation, "after")
    actions.do_update_webhook_endpoint(owner, endpoint, active=True)
    assert deliver(endpoint) == 1
    assert receiver.types() == ["conversation.tagged"]


def test_delivered_events_are_pruned_after_a_week(endpoint, receiver, workspace, brand_account):
    ingest(workspace, make_item("free:1", "@free panne"))
    deliver(endpoint)
    assert webhooks.prune_delivered(clock.now()) == 0
    assert webhooks.prune_delivered(clock.now() + timedelta(days=8)) == 2


@pytest.mark.usefixtures("brand_account")
def test_a_customer_writing_again_reopens_and_tells_the_crm(endpoint, receiver, workspace, agent):
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    actions.do_change_status(agent, conversation, "resolved")
    ingest(workspace, make_item("free:2", "@free encore", minutes=60, in_reply_to="free:1"))
    deliver(endpoint)
    statuses = [
        e["change"] for e in receiver.accepted if e["type"] == "conversation.status_changed"
    ]
    assert statuses == [
        {"before": "new", "after": "resolved"},
        {"before": "resolved", "after": "open", "reason": "customer_wrote"},
    ]
    assert receiver.accepted[-1]["conversation"]["status"] == "open"


@pytest.mark.usefixtures("brand_account")
def test_a_secret_unreadable_after_a_key_change_shows_the_endpoint_failing(
    endpoint, receiver, workspace
):
    ingest(workspace, make_item("free:1", "@free panne"))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret="not-a-fernet-token")
    assert deliver(endpoint) == 0
    endpoint.refresh_from_db()
    assert "secret key changed" in endpoint.last_error
    assert endpoint.lease_until is None
    assert receiver.attempts == []
    with translation.override("fr"):  # stored in English, shown in the reader's language
        assert endpoint.error_message == translation.gettext(KEY_CHANGED_ERROR)
        endpoint.last_error = "HTTP 500"  # a receiver's own answer is shown as it came
        assert endpoint.error_message == "HTTP 500"
