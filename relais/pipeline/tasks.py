from datetime import timedelta

from celery import shared_task

from relais.accounts.models import Workspace
from relais.core import clock
from relais.core.events import prune_events
from relais.pipeline.actions import do_process_batch, do_route_orphans
from relais.pipeline.models import PendingBatch

STALE_BATCH_SECONDS = 30


@shared_task(name="relais.pipeline.process_batch")
def process_batch(batch_id: int) -> int:
    report = do_process_batch(batch_id)
    return report.created if report else 0


@shared_task(name="relais.pipeline.sweep")
def sweep() -> None:
    """Catch up on what a crash or a race left behind; every step is idempotent."""
    stale = clock.now() - timedelta(seconds=STALE_BATCH_SECONDS)
    for batch_id in PendingBatch.objects.filter(created_at__lt=stale).values_list("pk", flat=True)[
        :200
    ]:
        process_batch.delay(batch_id)
    for workspace_id in Workspace.objects.values_list("pk", flat=True):
        do_route_orphans(workspace_id)
    prune_events()
