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
        indexes = [models.Index(fields=["status", "scheduled_at"])]

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
    followers = models.PositiveIntegerField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=1)
    forwarded_at = models.DateTimeField(db_index=True)
    simulated = models.BooleanField(default=False)
    # A simulated forward's clicks and claims are drawn once its time has come.
    settled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target", "forwarder_id"], name="one_forward_each")
        ]

    def __str__(self) -> str:
        return f"{self.handle} <- {self.parent_id or self.target_id}"
