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
