"""A brand's account on a network, connected to a workspace."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.core.models import WorkspaceOwned


class AccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    RECONNECT_NEEDED = "reconnect_needed", _("Reconnect needed")
    DISABLED = "disabled", _("Disabled")


class ConnectedAccount(WorkspaceOwned):
    network = models.CharField(_("network"), max_length=32)
    handle = models.CharField(_("handle"), max_length=255)
    display_name = models.CharField(_("display name"), max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=AccountStatus.choices, default="active")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Fernet token (relais.connectors.credentials); never shown in forms, admin or logs.
    credentials = models.TextField(blank=True, editable=False)
    settings = models.JSONField(default=dict, blank=True)
    # Where this account's stream resumes (per network: a firehose seq, a since_id...).
    cursor = models.JSONField(null=True, blank=True)
    # Held by whoever reads the account's stream (a poll task or the long-running consumer), so
    # two readers never move one cursor.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "handle"], name="one_connection_per_handle"
            )
        ]

    def __str__(self) -> str:
        return f"@{self.handle} ({self.network})"

    def __repr__(self) -> str:
        return f"<ConnectedAccount {self.pk} {self.network} @{self.handle} {self.status}>"


class EngagementKind(models.TextChoices):
    LIKE = "like", _("Like")
    REPOST = "repost", _("Repost")
    REPLY = "reply", _("Reply")
    QUOTE = "quote", _("Quote")


class Engagement(WorkspaceOwned):
    """One like, repost, reply or quote of a brand post, as the network reported it.

    Networks without a counting service (a PDS without an AppView) only tell us each event;
    counting stored events keeps the totals right when a stream is replayed or an event is undone.
    """

    account = models.ForeignKey(ConnectedAccount, on_delete=models.CASCADE, related_name="+")
    network = models.CharField(max_length=32)
    remote_id = models.CharField(max_length=512)  # the like/repost/post record itself
    subject_remote_id = models.CharField(max_length=512)  # the brand post it engages with
    actor_remote_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=EngagementKind.choices)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "remote_id"], name="engagement_once"
            )
        ]
        indexes = [models.Index(fields=["workspace", "network", "subject_remote_id"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.subject_remote_id}"


class ApiBudget(WorkspaceOwned):
    """What a workspace allows itself to spend each month on a paid API (X bills every call)."""

    network = models.CharField(max_length=32)
    # Millionths of a US dollar, so charges add up exactly with integer arithmetic.
    monthly_limit_micros = models.BigIntegerField(_("monthly budget"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "network"], name="one_budget_per_network")
        ]

    def __str__(self) -> str:
        return f"{self.network} budget {self.monthly_limit_micros / 1_000_000:.2f} USD/month"


class ApiUsage(WorkspaceOwned):
    """What a workspace spent on a paid API in one calendar month (UTC), call by call."""

    network = models.CharField(max_length=32)
    month = models.DateField()  # the first day of the month
    spent_micros = models.BigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    # Spend per operation (``{"posts_read": 15000, ...}``), for the accounts page.
    by_operation = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "month"], name="one_usage_row_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.month:%Y-%m}: {self.spent_micros / 1_000_000:.3f} USD"


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    UNMATCHED = "unmatched", _("No connected account")


class WebhookEvent(models.Model):
    """A notification a network pushed to Relais, kept as received before anything reads it.

    Deployment-wide, not a workspace's: a Meta app has one callback for every page it serves,
    and which workspace an event belongs to is only known once it is read. Nothing is dropped:
    an event that cannot be read is kept as ``rejected`` with the reason, to study or replay.
    """

    network = models.CharField(max_length=32)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    body = models.TextField()  # the raw request body, as signed
    signature = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    items = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.network} webhook event {self.pk} ({self.status})"
