from celery import shared_task

from relais.core import clock
from relais.publishing.actions import do_publish_target, do_settle_forwards, due_target_ids
from relais.publishing.inbound import (
    do_answer_offer_reply,
    do_check_boosts,
    due_offer_reply_ids,
    targets_with_standing_boosts,
)


@shared_task(name="relais.publishing.publish_due")
def publish_due() -> int:
    """Publish every due target, settle the simulated forwards whose time has come, and answer
    the claim replies still waiting (a task lost after its commit is caught up here).

    Any number of workers may run this at once: each target and each reply is leased by one of
    them. Work is done here rather than fanned out as tasks.
    """
    now = clock.now()
    published = sum(1 for target_id in due_target_ids(now) if do_publish_target(target_id))
    do_settle_forwards(now)
    for reply_id in due_offer_reply_ids(now):
        do_answer_offer_reply(reply_id)
    return published


@shared_task(name="relais.publishing.answer_offer_replies")
def answer_offer_replies(reply_ids: list[int]) -> int:
    """Answer the claim replies a batch just stored, without waiting for the next publish run."""
    return sum(1 for reply_id in reply_ids if do_answer_offer_reply(reply_id))


@shared_task(name="relais.publishing.check_boosts")
def check_boosts() -> int:
    """Withdraw the boosts undone since the last check (networks that do not announce it)."""
    return sum(
        do_check_boosts(target_id) for target_id in targets_with_standing_boosts(clock.now())
    )
