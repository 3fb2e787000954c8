"""Publishing: drafts and their per-account targets, queues, tracked links, offers and forwards."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.core.models import WorkspaceOwned


class TargetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Pending approval")
    APPROVED = "approved", _("Approved")
    SCHEDULED = "scheduled", _("Scheduled")
    PUBLISHED = "published", _("Published")
    FAILED = "failed", _("Failed")


class Recurrence(models.TextChoices):
    NONE = "", _("Once")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week")


class PublishingPolicy(WorkspaceOwned):
    """Who may approve posts (roles.py has no publishing capability) and the sandbox audience."""

    approver_roles = models.JSONField(default=list)
    # The simulated sandbox audience: of the people a forward newly reaches, this share clicks,
    # and this share of the clickers claims the offer. Stated on the campaign page.
    simulated_click_rate = models.FloatField(default=0.05)
    simulated_claim_rate = models.FloatField(default=0.2)
    # Real cascade delays are divided by this, so a demo shows hours of spreading in minutes.
    simulated_speed = models.FloatField(default=120.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="one_publishing_policy")]

    def __str__(self) -> str:
        return ", ".join(self.approver_roles)


class Draft(WorkspaceOwned):
    """What a person writes once; each target account gets its own adapted copy."""

    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    offer = models.ForeignKey(
        "Offer", null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts"
    )
    # The site's address when web links in the text become tracked short links (else empty).
    link_base = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.text[:60]


class Target(WorkspaceOwned):
    """One draft on one connected account: approval, schedule and publication happen here."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="targets")
    account = models.ForeignKey(
        "connectors.ConnectedAccount", on_delete=models.CASCADE, related_name="+"
    )
    text = models.TextField()
    # True once someone rewrote the text for this account; edits of the draft then leave it.
    adapted = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=TargetStatus.choices, default="draft")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    recurrence = models.CharField(max_length=10, choices=Recurrence.choices, blank=True)
    # One key per publication attempt of this target: a retry re-sends the same key, and the
    # network returns the post it already accepted instead of posting twice.
    idempotency_key = models.CharField(max_length=64, unique=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    remote_id = models.CharField(max_length=255, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "scheduled_at"]),
            # Inbound forwards and replies find the published post they answer by its remote id.
            models.Index(fields=["workspace", "remote_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.draft_id} on {self.account_id} ({self.status})"


class DraftComment(WorkspaceOwned):
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class QueueSlot(WorkspaceOwned):
    """A weekly time slot (workspace time zone) that queued posts fill in order."""

    weekday = models.PositiveSmallIntegerField()  # Monday is 0
    time = models.TimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "weekday", "time"], name="one_slot")
        ]
        ordering = ["weekday", "time"]

    def __str__(self) -> str:
        return f"{self.weekday} {self.time:%H:%M}"


class TrackedLink(WorkspaceOwned):
    code = models.CharField(max_length=16, unique=True)
    destination = models.URLField(max_length=2000)
    utm_source = models.CharField(max_length=64, blank=True)
    utm_medium = models.CharField(max_length=64, blank=True)
    utm_campaign = models.CharField(max_length=64, blank=True)
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="links"
    )
    offer = models.ForeignKey(
        "Offer", null=True, blank=True, on_delete=models.CASCADE, related_name="links"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class LinkClick(WorkspaceOwned):
    """One visitor's clicks on one link on one day; the visitor is a keyed hash, never an IP."""

    link = models.ForeignKey(TrackedLink, on_delete=models.CASCADE, related_name="clicks")
    day = models.DateField()
    visitor = models.CharField(max_length=32)
    forwarder = models.CharField(max_length=255, blank=True)
    simulated = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["link", "day", "visitor"], name="one_click_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.link_id} {self.day}"


class CodeMode(models.TextChoices):
    SHARED = "shared", _("One shared code")
    UNIQUE = "unique", _("A unique code per claim")


class Offer(WorkspaceOwned):
    product = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    stock = models.PositiveIntegerField()
    stock_left = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    code_mode = models.CharField(max_length=10, choices=CodeMode.choices, default="shared")
    shared_code = models.CharField(max_length=64, blank=True)
    # Words that claim a unit when a customer replies with them to the offer's post, comma
    # separated ("CLAIM, JE PRENDS"); empty: replies claim nothing.
    reply_keywords = models.CharField(max_length=200, blank=True)
    sold_out_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.product


class OfferCode(WorkspaceOwned):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=64)
    claimed = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "code"], name="one_code_per_offer")]

    def __str__(self) -> str:
        return self.code


class Claim(WorkspaceOwned):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="claims")
    link = models.ForeignKey(
        TrackedLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="claims"
    )
    code = models.CharField(max_length=64)
    network = models.CharField(max_length=32, blank=True)
    forwarder = models.CharField(max_length=255, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    simulated = models.BooleanField(default=False)
    # A keyed hash of the claimant (see links.claimant_hash): one unit per person per offer.
    claimant = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["offer", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "claimant"],
                condition=~models.Q(claimant=""),
                name="one_claim_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}: {self.code}"


class Forward(WorkspaceOwned):
    """A repost, quote or boost of a published target, and whom it was forwarded from."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="forwards")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    network = models.CharField(max_length=32)
    forwarder_id = models.CharField(max_length=255)
    handle = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, default="repost")
    # The forward's own post on its network (a real repost, quote or boost), so a quote of this
    # quote is known to come from this forwarder.
    post_remote_id = models.CharField(max_length=512, blank=True)
    followers = models.PositiveIntegerField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=1)
    forwarded_at = models.DateTimeField(db_index=True)
    simulated = models.BooleanField(default=False)
    # A simulated forward's clicks and claims are drawn once its time has come.
    settled = models.BooleanField(default=True)
    # Set when the forwarder undid it (a deleted repost or quote, an undone boost). The row
    # stays for the cascade's history; reach and engagement count only standing forwards.
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target", "forwarder_id"], name="one_forward_each")
        ]

    def __str__(self) -> str:
        return f"{self.handle} <- {self.parent_id or self.target_id}"


class ReplyOutcome(models.TextChoices):
    CLAIMED = "claimed", _("Claimed")
    REFUSED = "refused", _("Refused")


class ReplyState(models.TextChoices):
    PENDING = "pending", _("To answer")
    SENT = "sent", _("Answered")
    FAILED = "failed", _("Answer failed")


class OfferReply(WorkspaceOwned):
    """A customer's reply to an offer's post that says a claim keyword, and our answer to it.

    Stored by the pipeline in the same transaction as the reply (an outbox): the claim and the
    answer happen afterwards, once per reply, whichever worker gets to it first.
    """

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="replies")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="offer_replies")
    post = models.OneToOneField(
        "pipeline.Post", on_delete=models.CASCADE, related_name="offer_reply"
    )
    claim = models.ForeignKey(
        Claim, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    outcome = models.CharField(max_length=10, choices=ReplyOutcome.choices, blank=True)
    answer = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=ReplyState.choices, default="pending")
    idempotency_key = models.CharField(max_length=64, unique=True)
    answer_remote_id = models.CharField(max_length=512, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"reply {self.post_id} to offer {self.offer_id} ({self.state})"


class LinkPreview(WorkspaceOwned):
    """What a web page says about itself (OpenGraph), fetched once per address and workspace."""

    url = models.CharField(max_length=2000)
    title = models.CharField(max_length=300, blank=True)
    description = models.CharField(max_length=1000, blank=True)
    image_url = models.CharField(max_length=2000, blank=True)
    site_name = models.CharField(max_length=200, blank=True)
    # Why there is no preview (the page refused, was too big, was not HTML...); empty when found.
    error = models.CharField(max_length=500, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "url"], name="one_preview_per_url")
        ]

    def __str__(self) -> str:
        return self.url[:80]


class DraftMedia(WorkspaceOwned):
    """An image attached to a draft, with the text that describes it (alt) for screen readers."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="media")
    filename = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=64)
    data = models.BinaryField()
    alt = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.filename
