from celery import shared_task

from relais.connectors.actions import (
    POLLED_NETWORKS,
    do_poll_account,
    do_poll_bluesky_account,
    do_recount_engagements,
)
from relais.connectors.models import AccountStatus, ConnectedAccount


@shared_task(name="relais.connectors.poll_bluesky_all")
def poll_bluesky_all() -> int:
    """Fan out one firehose read per active Bluesky account (skipped while a consumer runs)."""
    account_ids = list(
        ConnectedAccount.objects.filter(network="bluesky", status=AccountStatus.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    for account_id in account_ids:
        poll_bluesky_account.delay(account_id)
    return len(account_ids)


@shared_task(name="relais.connectors.poll_bluesky_account")
def poll_bluesky_account(account_id: int) -> int:
    report = do_poll_bluesky_account(account_id)
    if report.has_more:
        poll_bluesky_account.delay(account_id)  # a busy relay drains without waiting for beat
    return report.accepted


@shared_task(name="relais.connectors.recount_engagements")
def recount_engagements(workspace_id: int, network: str, subjects: list[str]) -> None:
    do_recount_engagements(workspace_id, network, subjects)


@shared_task(name="relais.connectors.poll_accounts")
def poll_accounts() -> int:
    """Fan out one fetch per active account of the networks read by polling."""
    account_ids = list(
        ConnectedAccount.objects.filter(
            network__in=POLLED_NETWORKS, status=AccountStatus.ACTIVE
        ).values_list("pk", flat=True)
    )
    for account_id in account_ids:
        poll_account.delay(account_id)
    return len(account_ids)


@shared_task(name="relais.connectors.poll_account")
def poll_account(account_id: int) -> int:
    report = do_poll_account(account_id)
    if report.has_more:
        poll_account.delay(account_id)
    return report.accepted


@shared_task(name="relais.connectors.process_stranded_webhook_events")
def process_stranded_webhook_events() -> int:
    """Events a network pushed that were stored but never read (a crash in between)."""
    from relais.connectors.webhooks import do_process_pending_webhook_events

    return do_process_pending_webhook_events()
