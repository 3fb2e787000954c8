from celery import shared_task

from relais.sandbox.actions import do_tick_feed
from relais.sandbox.models import FeedState, SandboxFeed


@shared_task(name="relais.sandbox.tick_all")
def tick_all() -> int:
    """Fan out one tick per running replay (beat calls this every few seconds)."""
    feed_ids = list(
        SandboxFeed.objects.filter(state=FeedState.RUNNING).values_list("pk", flat=True)
    )
    for feed_id in feed_ids:
        tick_feed.delay(feed_id)
    return len(feed_ids)


@shared_task(name="relais.sandbox.tick_feed")
def tick_feed(feed_id: int) -> int:
    report = do_tick_feed(feed_id)
    if report is not None and report.has_more:
        tick_feed.delay(feed_id)  # a backlog (high speed, long pause) drains without waiting
    return report.accepted if report else 0
