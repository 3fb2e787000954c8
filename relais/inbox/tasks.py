"""Background work of the care inbox: CRM webhooks and service-level breaches."""

from celery import shared_task

from relais.core import clock
from relais.inbox.actions import do_announce_sla_breaches
from relais.inbox.webhooks import deliver_endpoint, due_endpoint_ids, prune_delivered


@shared_task(name="relais.inbox.deliver_webhooks")
def deliver_webhooks(endpoint_id: int) -> int:
    """Enqueued after a change commits; does nothing if another worker holds the endpoint."""
    return deliver_endpoint(endpoint_id)


@shared_task(name="relais.inbox.deliver_due_webhooks")
def deliver_due_webhooks() -> int:
    """The beat's sweep: retries whose time has come, and anything a lost task left behind.

    One task per endpoint, so a slow receiver does not hold up the others."""
    now = clock.now()
    prune_delivered(now)
    due = due_endpoint_ids(now)
    for endpoint_id in due:
        deliver_webhooks.delay(endpoint_id)
    return len(due)


@shared_task(name="relais.inbox.announce_sla_breaches")
def announce_sla_breaches() -> int:
    return do_announce_sla_breaches()
