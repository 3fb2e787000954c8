from celery import shared_task

from relais.listening.actions import do_backfill_query, do_deliver_notices, do_evaluate_alerts
from relais.listening.models import ListeningQuery


@shared_task(name="relais.listening.backfill_query")
def backfill_query(query_id: int) -> int:
    return do_backfill_query(query_id)


@shared_task(name="relais.listening.deliver_notices")
def deliver_notices(workspace_id: int) -> int:
    return do_deliver_notices(workspace_id)


@shared_task(name="relais.listening.evaluate_alerts")
def evaluate_alerts() -> int:
    """Every minute: detect for each workspace that listens, then send what is due."""
    opened = 0
    workspace_ids = (
        ListeningQuery.objects.filter(active=True).values_list("workspace_id", flat=True).distinct()
    )
    for workspace_id in workspace_ids:
        opened += len(do_evaluate_alerts(workspace_id))
        do_deliver_notices(workspace_id)
    return opened
