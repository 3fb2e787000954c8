"""Reading connected accounts for pages."""

from django.db.models import Case, IntegerField, QuerySet, Value, When

from relais.connectors.models import AccountStatus, ConnectedAccount


def connected_accounts(workspace_id: int) -> QuerySet[ConnectedAccount]:
    """Accounts needing a reconnection first: an admin should see them before anything else."""
    return (
        ConnectedAccount.objects.in_workspace(workspace_id)
        .defer("credentials")
        .annotate(
            attention=Case(
                When(status=AccountStatus.RECONNECT_NEEDED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("attention", "network", "handle")
    )


def watched_threads(account: ConnectedAccount, *, limit: int = 50_000) -> list[str]:
    """Thread roots of the account's most recent conversations, oldest first."""
    from relais.inbox.models import Conversation

    keys = (
        Conversation.objects.in_workspace(account.workspace_id)
        .filter(account=account)
        .order_by("-last_message_at")
        .values_list("thread_key", flat=True)[:limit]
    )
    return list(reversed(keys))
