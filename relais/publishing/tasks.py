from celery import shared_task

from relais.core import clock
from relais.publishing.actions import do_publish_target, do_settle_forwards, due_target_ids


@shared_task(name="relais.publishing.publish_due")
def publish_due() -> int:
    """Publish every due target, then settle the simulated forwards whose time has come.

    Any number of workers may run this at once: each target is claimed by one of them. Work is
    done here rather than fanned out as tasks, so the run enqueues nothing itself (the embedded
    filesystem broker can hand a worker a message file it is still writing).
    """
    now = clock.now()
    published = sum(1 for target_id in due_target_ids(now) if do_publish_target(target_id))
    do_settle_forwards(now)
    return published
