"""What networks deliver, stored once: authors and posts (with their enrichment)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.connectors.base import PostKind
from relais.core.models import WorkspaceOwned


class Author(WorkspaceOwned):
    """A person or organisation on one network; a Contact joins the same person across networks."""

    network = models.CharField(max_length=32)
    remote_id = models.CharField(max_length=255)
    handle = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    followers = models.PositiveIntegerField(null=True, blank=True)
    contact = models.ForeignKey(
        "inbox.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="authors"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "remote_id"], name="author_unique_per_network"
            )
        ]
        indexes = [models.Index(fields=["workspace", "network", "handle"])]

    def __str__(self) -> str:
        return f"@{self.handle}"


class Direction(models.TextChoices):
    INBOUND = "inbound", _("From a customer")
    OUTBOUND = "outbound", _("From the brand")


class Routing(models.TextChoices):
    PENDING = "pending", _("Pending")
    WAITING_PARENT = "waiting_parent", _("Waiting for the post it replies to")
    ROUTED = "routed", _("In a conversation")
    NOT_ADDRESSED = "not_addressed", _("Not addressed to the brand")


class Sentiment(models.TextChoices):
    NEGATIVE = "negative", _("negative")
    NEUTRAL = "neutral", _("neutral")
    POSITIVE = "positive", _("positive")


class Intent(models.TextChoices):
    COMPLAINT = "complaint", _("complaint")
    QUESTION = "question", _("question")
    REQUEST = "request", _("request")
    PRAISE = "praise", _("praise")
    PURCHASE_INTENT = "purchase_intent", _("purchase intent")
    SPAM = "spam", _("spam or advertising")
    OTHER = "other", _("other")


class Reason(models.TextChoices):
    """Why a customer complains (set for complaints only)."""

    OUTAGE_DELAY = "outage_delay", _("outage or delay")
    BILLING_PRICE = "billing_price", _("billing or price")
    PRODUCT_DEFECT = "product_defect", _("product defect or bug")
    DELIVERY = "delivery", _("delivery")
    STAFF_SERVICE = "staff_service", _("staff or service quality")
    ACCOUNT_ACCESS = "account_access", _("account or access")
    CANCELLATION_REFUND = "cancellation_refund", _("cancellation or refund")
    LOST_ITEM = "lost_item", _("lost item")
    OTHER = "other", _("other reason")


class Post(WorkspaceOwned):
    network = models.CharField(max_length=32)
    remote_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=[(k.value, k.value) for k in PostKind])
    direction = models.CharField(max_length=10, choices=Direction.choices, default="inbound")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="posts")
    account = models.ForeignKey(
        "connectors.ConnectedAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="posts",
        help_text="The brand account this post is addressed to or was sent from.",
    )
    text = models.TextField()
    lang = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)
    in_reply_to_remote_id = models.CharField(max_length=255, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    thread_root_remote_id = models.CharField(max_length=255, blank=True)
    mentions = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    routing = models.CharField(max_length=16, choices=Routing.choices, default="pending")
    idempotency_key = models.CharField(max_length=64, blank=True)
    sent_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Enrichment, filled before insert by the enrichers of relais/nlp (pipeline/enrichers.py).
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    sentiment_score = models.FloatField(null=True, blank=True)
    intent = models.CharField(max_length=20, choices=Intent.choices, blank=True)
    reason = models.CharField(max_length=24, choices=Reason.choices, blank=True)
    entities = models.JSONField(default=dict, blank=True)
    enriched_by = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "remote_id"], name="post_unique_per_network"
            ),
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="post_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["workspace", "network", "in_reply_to_remote_id"]),
            models.Index(fields=["workspace", "routing"]),
        ]

    def __str__(self) -> str:
        return f"{self.network}:{self.remote_id}"


class PendingBatch(WorkspaceOwned):
    """A batch of inbound items accepted from a connector and not yet stored as posts.

    The cursor that produced it is saved in the same transaction, so a crash anywhere loses
    nothing: the batch is processed (again) until it is stored, and storing is idempotent.
    """

    network = models.CharField(max_length=32)
    items = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"batch #{self.pk} ({len(self.items)} items)"
