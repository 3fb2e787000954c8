"""Listening: queries, the mentions they match, rollups kept as mentions arrive, crisis alerts."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.connectors.credentials import (
    UnreadableCredentialsError,
    decrypt_credentials,
    encrypt_credentials,
)
from relais.core.models import WorkspaceOwned
from relais.listening.addresses import mask_url


class QueryTag(models.TextChoices):
    BRAND = "brand", _("Brand")
    COMPETITOR = "competitor", _("Competitor")
    TOPIC = "topic", _("Topic")


class ListeningQuery(WorkspaceOwned):
    name = models.CharField(max_length=120)
    text = models.TextField()
    tag = models.CharField(max_length=12, choices=QueryTag.choices, default=QueryTag.BRAND)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Changed by every edit: matchers cached in worker processes compare it to know they are stale.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "active"])]

    def __str__(self) -> str:
        return self.name


class Mention(WorkspaceOwned):
    """A post matched by a query, with the post's filterable fields copied for cheap filtering."""

    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="mentions")
    post = models.ForeignKey("pipeline.Post", on_delete=models.CASCADE, related_name="mentions_of")
    network = models.CharField(max_length=32)
    language = models.CharField(max_length=8, blank=True)
    sentiment = models.CharField(max_length=10, blank=True)
    intent = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    author_handle = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["query", "post"], name="mention_unique_per_query")
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["query", "-created_at"]),
            models.Index(fields=["post"]),
        ]

    def __str__(self) -> str:
        return f"{self.query_id}:{self.post_id}"


class MentionRollup(WorkspaceOwned):
    """Mentions counted per 5-minute bucket and dimension; hours and days are sums of these."""

    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    network = models.CharField(max_length=32)
    language = models.CharField(max_length=8, blank=True)
    sentiment = models.CharField(max_length=10, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "bucket", "network", "language", "sentiment", "reason"],
                name="mention_rollup_unique_key",
            )
        ]
        indexes = [models.Index(fields=["workspace", "bucket"])]

    def __str__(self) -> str:
        return f"{self.query_id}@{self.bucket:%Y-%m-%d %H:%M}={self.count}"


class TermRollup(WorkspaceOwned):
    """Words of matched posts counted per hour, for emerging terms and alert explanations."""

    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    term = models.CharField(max_length=64)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "bucket", "term"], name="term_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["workspace", "bucket"])]

    def __str__(self) -> str:
        return f"{self.term}={self.count}"


class AuthorRollup(WorkspaceOwned):
    """Mentions per author per day, so top authors never need a scan of the mentions."""

    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    author = models.ForeignKey("pipeline.Author", on_delete=models.CASCADE, related_name="+")
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "bucket", "author"], name="author_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["workspace", "bucket"])]

    def __str__(self) -> str:
        return f"{self.author_id}={self.count}"


class AlertMetric(models.TextChoices):
    VOLUME = "volume", _("Volume")
    NEGATIVE_SHARE = "negative_share", _("Negative share")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Ongoing")
    CLOSED = "closed", _("Ended")


class Alert(WorkspaceOwned):
    """One crisis episode of one query on one metric: raised once, updated while it lasts."""

    query = models.ForeignKey(ListeningQuery, on_delete=models.CASCADE, related_name="alerts")
    metric = models.CharField(max_length=16, choices=AlertMetric.choices)
    status = models.CharField(max_length=8, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    started_at = models.DateTimeField(help_text="Start of the first unusual 5-minute bucket.")
    detected_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    observed = models.FloatField(help_text="Mentions (or negative share) when raised.")
    expected = models.FloatField(help_text="What the query's baseline predicted.")
    peak = models.FloatField()
    explanation = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "metric"],
                condition=models.Q(status="open"),
                name="alert_one_open_episode_per_metric",
            )
        ]
        indexes = [models.Index(fields=["workspace", "-detected_at"])]

    def __str__(self) -> str:
        return f"{self.query_id} {self.metric} from {self.started_at:%Y-%m-%d %H:%M}"


class DetectorState(WorkspaceOwned):
    """The query's baseline, recomputed from its rollups once an hour rather than every minute."""

    query = models.OneToOneField(
        ListeningQuery, on_delete=models.CASCADE, related_name="detector_state"
    )
    baseline = models.JSONField(default=dict)
    computed_for = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"baseline of {self.query_id}"


class ChannelKind(models.TextChoices):
    APPRISE = "apprise", _("E-mail or chat (Apprise URL)")
    WEBHOOK = "webhook", _("Signed webhook")


class AlertChannel(WorkspaceOwned):
    """Where alerts go. At most one message per `min_interval_seconds`, so alerts never flood."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    # The Apprise or webhook URL as a Fernet token (relais.connectors.credentials): such URLs
    # carry passwords and tokens. Read it with `target`; never shown in full, never logged.
    target_token = models.TextField(editable=False)
    min_interval_seconds = models.PositiveIntegerField(default=300)
    active = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        """The URL in clear, to send; UnreadableCredentialsError once SECRET_KEY changed."""
        return decrypt_credentials(self.target_token)["url"]

    @target.setter
    def target(self, url: str) -> None:
        self.target_token = encrypt_credentials({"url": url})

    @property
    def masked_target(self) -> str:
        return mask_url(self.target_token and self._readable_target())

    def _readable_target(self) -> str:
        try:
            return self.target
        except UnreadableCredentialsError:
            return ""

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def interval_minutes(self) -> int:
        return self.min_interval_seconds // 60


class WebhookSigningKey(WorkspaceOwned):
    """The per-workspace secret that signs webhook bodies (HMAC-SHA256)."""

    secret = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="one_signing_key_per_workspace")
        ]

    def __str__(self) -> str:
        return f"signing key of {self.workspace_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (rate limit)")


class AlertDelivery(WorkspaceOwned):
    """One notice (an alert opening or ending) to one channel, retried with backoff."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=8)  # "opened" or "closed"
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "event"], name="one_delivery_per_alert_event"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.alert_id}->{self.channel_id} {self.event} {self.status}"
