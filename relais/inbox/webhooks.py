"""Signed webhooks that let an outside CRM follow contacts and conversations.

A change is recorded as one ``WebhookDelivery`` per subscribed endpoint in the transaction that
makes the change (a transactional outbox), so nothing is sent for a change that rolled back and
nothing is lost when a worker dies: the rows wait until a worker delivers them. Delivery runs in
Celery (after commit, and from the beat for retries), never in the agent's request or in the
pipeline. One worker at a time holds an endpoint's lease and sends its events oldest first; a
failure stops the endpoint until its next attempt, so the receiver sees them in order. A worker
killed after the receiver answered, before the row was marked, means the event goes again with
the same ``id``: receivers deduplicate on it.

Why rows per endpoint rather than a cursor over the audit trail: on PostgreSQL an id is taken at
insert time, so a transaction that commits later can hold a smaller id than a row the cursor
already passed, and that event would be skipped.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from relais.accounts.actions import record_audit
from relais.accounts.models import AuditEntry, User
from relais.connectors import webhooks_out
from relais.connectors.credentials import (
    UnreadableCredentialsError,
    decrypt_credentials,
    encrypt_credentials,
)
from relais.core import clock
from relais.core.events import publish_event
from relais.inbox.models import (
    KEY_CHANGED_ERROR,
    Contact,
    Conversation,
    WebhookDelivery,
    WebhookEndpoint,
)

CONVERSATION_EVENTS = (
    "conversation.created",
    "conversation.assigned",
    "conversation.status_changed",
    "conversation.tagged",
    "conversation.team_changed",
    "conversation.replied",
    "conversation.noted",
    "conversation.sla_breached",
)
CONTACT_EVENTS = ("contact.created", "contact.updated", "contact.merged")
EVENT_TYPES = CONVERSATION_EVENTS + CONTACT_EVENTS
# Audit actions told to receivers under another name: who assigned does not change the event.
EVENT_OF_ACTION = {"conversation.auto_assigned": "conversation.assigned"}
# Events that two workers may both record (routing, the beat): their id is derived from what
# happened, so the second is dropped by the unique (endpoint, event id).
STABLE_IDS = uuid.UUID("6f1d4c1e-2f5b-4d53-9a43-7d0c8f0b7a51")

LEASE = timedelta(seconds=90)
# No POST starts this close to the lease's end: one POST's connect, write and read timeouts
# (5 + 10 + 10 s) fit in it, so a lease never runs out while its holder is still sending.
LEASE_MARGIN = timedelta(seconds=30)
BATCH = 200
KEEP_DELIVERED = timedelta(days=7)


def stable_event_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(STABLE_IDS, ":".join(str(part) for part in parts))


@dataclass(frozen=True)
class Change:
    """One event about one conversation or contact."""

    type: str
    target_id: int
    at: datetime
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def record_change(
    workspace_id: int,
    actor: User | None,
    action: str,
    target: Conversation | Contact,
    *,
    event_id: uuid.UUID | None = None,
    queue: bool = True,
    **data: Any,
) -> Change | None:
    """Audit an inbox change and queue it for the endpoints that follow its kind of event.

    ``queue=False`` returns the change for the caller to queue with others in one go (a batch).
    """
    entry = record_audit(workspace_id, actor, action, target, **data)
    event_type = EVENT_OF_ACTION.get(action, action)
    if event_type not in EVENT_TYPES:
        return None
    change = Change(
        type=event_type,
        target_id=target.pk,
        at=entry.created_at,
        actor=actor.username if actor else None,
        data=data,
        event_id=event_id or uuid.uuid4(),
    )
    if queue:
        queue_changes(workspace_id, [change])
    return change


def record_created(
    workspace_id: int, conversation_ids: Sequence[int], contact_ids: Sequence[int], at: datetime
) -> None:
    """Routing's new conversations and contacts: audited and queued in bulk, once per batch."""
    changes = [
        Change("contact.created", pk, at, event_id=stable_event_id("contact.created", pk))
        for pk in contact_ids
    ] + [
        Change("conversation.created", pk, at, event_id=stable_event_id("conversation.created", pk))
        for pk in conversation_ids
    ]
    if not changes:
        return
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                workspace_id=workspace_id,
                action=change.type,
                target_type="Contact" if change.type.startswith("contact.") else "Conversation",
                target_id=str(change.target_id),
                data={},
            )
            for change in changes
        ]
    )
    queue_changes(workspace_id, changes)


def queue_changes(workspace_id: int, changes: Sequence[Change]) -> None:
    """One delivery row per (change, subscribed endpoint); delivery is enqueued after commit."""
    if not changes:
        return
    # Paused endpoints get their rows too: pausing holds delivery (``claim`` skips them), it
    # does not lose what happened meanwhile. The admin may discard what waits instead.
    endpoints = list(WebhookEndpoint.objects.in_workspace(workspace_id))
    wanted = [(c, e) for c in changes for e in endpoints if c.type in e.events]
    if not wanted:
        return
    conversations = _conversation_snapshots(
        workspace_id, {c.target_id for c, _e in wanted if c.type in CONVERSATION_EVENTS}
    )
    contacts = _contact_snapshots(
        workspace_id, {c.target_id for c, _e in wanted if c.type in CONTACT_EVENTS}
    )
    rows = []
    for change, endpoint in wanted:
        if change.type in CONVERSATION_EVENTS:
            subject = {
                "conversation": conversations.get(change.target_id, {"id": change.target_id})
            }
        else:
            subject = {"contact": contacts.get(change.target_id, {"id": change.target_id})}
        payload = {
            "id": str(change.event_id),
            "type": change.type,
            "occurred_at": change.at.isoformat(),
            "actor": change.actor,
            "change": change.data,
            **subject,
        }
        rows.append(
            WebhookDelivery(
                workspace_id=workspace_id,
                endpoint=endpoint,
                event_id=change.event_id,
                event_type=change.type,
                payload=payload,
            )
        )
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    endpoint_ids = sorted({e.pk for _c, e in wanted})
    transaction.on_commit(lambda: _enqueue(endpoint_ids))


def _enqueue(endpoint_ids: list[int]) -> None:
    from relais.inbox.tasks import deliver_webhooks

    for endpoint_id in endpoint_ids:
        deliver_webhooks.delay(endpoint_id)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _conversation_snapshots(workspace_id: int, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    rows = (
        Conversation.objects.in_workspace(workspace_id)
        .filter(pk__in=set(ids))
        .select_related("customer", "account", "assignee", "team")
    )
    return {
        c.pk: {
            "id": c.pk,
            "status": c.status,
            "network": c.account.network,
            "account": c.account.handle,
            "customer": {
                "handle": c.customer.handle,
                "name": c.customer.name,
                "remote_id": c.customer.remote_id,
            },
            "contact_id": c.customer.contact_id,
            "assignee": c.assignee.username if c.assignee else None,
            "team": c.team.name if c.team else None,
            "tags": c.tags,
            "preview": c.preview,
            "message_count": c.message_count,
            "created_at": _when(c.created_at),
            "last_message_at": _when(c.last_message_at),
            "first_response_due": _when(c.first_response_due),
            "first_response_at": _when(c.first_response_at),
            "resolution_due": _when(c.resolution_due),
            "resolved_at": _when(c.resolved_at),
        }
        for c in rows
    }


def _contact_snapshots(workspace_id: int, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    rows = (
        Contact.objects.in_workspace(workspace_id)
        .filter(pk__in=set(ids))
        .prefetch_related("authors")
    )
    return {
        c.pk: {
            "id": c.pk,
            "display_name": c.display_name,
            "attributes": c.attributes,
            "tags": c.tags,
            "identities": sorted(
                (
                    {"network": a.network, "handle": a.handle, "remote_id": a.remote_id}
                    for a in c.authors.all()
                ),
                key=lambda identity: (identity["network"], identity["handle"]),
            ),
            "created_at": _when(c.created_at),
        }
        for c in rows
    }


# Secrets --------------------------------------------------------------------------------------


def new_secret() -> tuple[str, str]:
    """A signing secret and its encrypted form, which is what the endpoint row keeps."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    return secret, encrypt_credentials({"secret": secret})


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return str(decrypt_credentials(endpoint.secret)["secret"])


# Delivery -------------------------------------------------------------------------------------


def pending(endpoint_id: int) -> Any:
    return WebhookDelivery.objects.filter(endpoint_id=endpoint_id, delivered_at__isnull=True)


def claim(endpoint_id: int, now: datetime) -> WebhookEndpoint | None:
    """Take the endpoint's lease if it is free and due (a conditional UPDATE: one winner)."""
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    taken = WebhookEndpoint.objects.filter(free, due, pk=endpoint_id, active=True).update(
        lease_until=now + LEASE
    )
    return WebhookEndpoint.objects.get(pk=endpoint_id) if taken else None


def deliver_endpoint(endpoint_id: int) -> int:
    """Send an endpoint's pending events in order; return how many the receiver accepted."""
    endpoint = claim(endpoint_id, clock.now())
    if endpoint is None:
        return 0
    sent = 0
    try:
        try:
            secret = endpoint_secret(endpoint)
        except UnreadableCredentialsError:
            _record_failure(endpoint, KEY_CHANGED_ERROR)
            return 0
        for delivery in pending(endpoint_id).order_by("pk")[:BATCH]:
            if clock.now() > endpoint.lease_until - LEASE_MARGIN:  # type: ignore[operator]
                break  # the rest go in the next run, under a fresh lease
            if not _deliver_one(endpoint, delivery, secret):
                break
            sent += 1
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(lease_until=None)
    return sent


def _deliver_one(endpoint: WebhookEndpoint, delivery: WebhookDelivery, secret: str) -> bool:
    attempts = delivery.attempts + 1
    try:
        webhooks_out.post_signed(endpoint.url, delivery.payload, secret)
    except webhooks_out.DeliveryError as error:
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=attempts)
            _record_failure(endpoint, str(error))
        return False
    now = clock.now()
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=attempts, delivered_at=now)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=0, last_error="", next_attempt_at=None, last_delivered_at=now
        )
    endpoint.consecutive_failures = 0
    return True


def _record_failure(endpoint: WebhookEndpoint, error: str) -> None:
    """Show the endpoint as failing and schedule its next attempt, later after each failure."""
    failures = endpoint.consecutive_failures + 1
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=failures,
        last_error=error[:500],
        next_attempt_at=clock.now() + webhooks_out.retry_delay(failures),
    )
    publish_event(endpoint.workspace_id, "webhooks.changed", {"endpoint": endpoint.pk})


def due_endpoint_ids(now: datetime) -> list[int]:
    """Endpoints with something to send whose retry time has come and whose lease is free."""
    waiting = WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), delivered_at__isnull=True)
    return list(
        WebhookEndpoint.objects.filter(active=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Exists(waiting))
        .values_list("pk", flat=True)
    )


def prune_delivered(now: datetime) -> int:
    deleted, _ = WebhookDelivery.objects.filter(delivered_at__lt=now - KEEP_DELIVERED).delete()
    return deleted
