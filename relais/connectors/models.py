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
    # Encrypted by the connectors issue's credential store; empty for the sandbox.
    credentials = models.TextField(blank=True)
    settings = models.JSONField(default=dict, blank=True)
    cursor = models.JSONField(null=True, blank=True)
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
