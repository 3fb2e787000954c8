"""The sandbox network's own state: replay clocks and the posts brands sent into it."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.core.models import WorkspaceOwned


class FeedState(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    FINISHED = "finished", _("Finished")


class SandboxFeed(WorkspaceOwned):
    """A replay of one shipped dataset into a workspace, on a compressed clock."""

    dataset = models.CharField(max_length=32)
    speed = models.FloatField(default=60.0, help_text="Seconds of real history per second.")
    max_gap_seconds = models.FloatField(
        default=20.0, help_text="Quiet spells in the history are shortened to at most this."
    )
    state = models.CharField(max_length=10, choices=FeedState.choices, default="running")
    cursor = models.JSONField(null=True, blank=True)
    emitted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "dataset"], name="one_feed_per_dataset")
        ]

    def __str__(self) -> str:
        return f"{self.dataset} replay ({self.state})"


class SandboxOutbound(WorkspaceOwned):
    """A post a brand sent to the sandbox; it comes back through the inbound flow."""

    remote_id = models.CharField(max_length=64, unique=True)
    dataset = models.CharField(max_length=32)
    author_handle = models.CharField(max_length=255)
    kind = models.CharField(max_length=20)
    text = models.TextField()
    in_reply_to = models.CharField(max_length=255, blank=True)
    recipient = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    delivered = models.BooleanField(default=False, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="sandbox_send_once_per_key"
            )
        ]

    def __str__(self) -> str:
        return self.remote_id
