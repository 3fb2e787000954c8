"""Conversations with customers, the posts they hold, notes, contacts, teams and SLA policies."""

from django.db import models
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from relais.core.models import WorkspaceOwned


class Contact(WorkspaceOwned):
    """One person across networks; authors on several networks point here.

    Routing creates one per author (``origin_author`` keeps that idempotent when two workers
    route the same author at once); merging moves every author of one contact to another.
    """

    display_name = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    origin_author = models.OneToOneField(
        "pipeline.Author", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "display_name"])]

    def __str__(self) -> str:
        return self.display_name


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    RESOLVED = "resolved", _("Resolved")


class Conversation(WorkspaceOwned):
    """A thread of posts addressed to one brand account, keyed by the thread's root post."""

    account = models.ForeignKey(
        "connectors.ConnectedAccount", on_delete=models.CASCADE, related_name="conversations"
    )
    thread_key = models.CharField(max_length=255)
    customer = models.ForeignKey(
        "pipeline.Author", on_delete=models.PROTECT, related_name="conversations"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default="new")
    assignee = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "inbox.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.JSONField(default=list, blank=True)
    preview = models.CharField(max_length=280, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Waiting and priority: ``waiting_since`` is the oldest customer message the brand has not
    # answered; ``urgent_since`` moves it earlier by the customer's weight (followers,
    # sentiment, intent), so ordering by it ranks by priority and the score grows with time.
    opened_at = models.DateTimeField(null=True, blank=True)  # the customer's first message
    waiting_since = models.DateTimeField(null=True, blank=True)
    urgent_since = models.DateTimeField(null=True, blank=True)
    priority_boost_minutes = models.PositiveIntegerField(default=0)
    # Service levels: deadlines set from the workspace's SLA policy, and what happened.
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_seconds = models.FloatField(null=True, blank=True)
    first_responder = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_seconds = models.FloatField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When a breach of each target was noticed and announced (once per breach; a reopened
    # conversation gets a new resolution deadline and may breach it again).
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "account", "thread_key"], name="one_conversation_per_thread"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-last_message_at"]),
            models.Index(fields=["workspace", "-last_message_at"]),
            # The inbox list reads ids in index order, never sorting: unresolved conversations
            # (the default view) by priority or by date, with the columns its filters test
            # (assignee, team, deadlines, and the status the condition tests) in the index, so
            # no table row is read to filter them.
            models.Index(
                fields=[
                    "workspace",
                    "urgent_since",
                    "-last_message_at",
                    "-id",
                    "assignee",
                    "team",
                    "first_response_at",
                    "first_response_due",
                    "resolution_due",
                    "status",
                ],
                condition=~models.Q(status="resolved"),
                name="inbox_unresolved_priority",
            ),
            models.Index(
                fields=["workspace", "-last_message_at", "-id", "status"],
                condition=~models.Q(status="resolved"),
                name="inbox_unresolved_recent",
            ),
            # Every status ("All") by priority: without it that list sorted every conversation.
            models.Index(
                fields=["workspace", "urgent_since", "-last_message_at", "-id"],
                name="inbox_all_priority",
            ),
            # One status (and the capped per-status counts) by priority.
            models.Index(
                fields=["workspace", "status", "urgent_since", "-last_message_at", "-id"],
                name="inbox_queue",
            ),
            models.Index(fields=["workspace", "assignee", "status"]),
            models.Index(fields=["workspace", "customer"]),
        ]

    def __str__(self) -> str:
        return f"conversation #{self.pk}"


class ConversationTag(WorkspaceOwned):
    """One tag of one conversation: what the inbox's tag filter reads through an index.

    ``Conversation.tags`` stays the list shown and sent to webhooks; ``do_set_tags`` writes both
    in one transaction. Matching a tag inside the JSON list meant reading every conversation.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="tag_rows"
    )
    tag = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "tag"], name="one_row_per_tag")
        ]
        indexes = [models.Index(fields=["workspace", "tag", "conversation"], name="inbox_tag")]

    def __str__(self) -> str:
        return f"{self.tag} on {self.conversation_id}"


class Message(WorkspaceOwned):
    """The link between a conversation and one of its posts (each post is in one conversation)."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    post = models.ForeignKey("pipeline.Post", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=10)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "post"], name="post_in_one_conversation")
        ]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self) -> str:
        return f"message {self.post_id} in {self.conversation_id}"


class Note(WorkspaceOwned):
    """An internal note on a conversation or a contact, never sent to the customer."""

    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    mentions = models.ManyToManyField("accounts.User", blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"note #{self.pk}"


class Team(WorkspaceOwned):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField("accounts.User", blank=True, related_name="care_teams")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="team_name")]

    def __str__(self) -> str:
        return self.name


class AgentState(WorkspaceOwned):
    """What automatic assignment knows of an agent: capacity, leave, when last seen and given."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    capacity = models.PositiveIntegerField(default=10)
    on_leave = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_agent_state")
        ]

    def __str__(self) -> str:
        return f"agent {self.user_id}"


class AssignmentRule(WorkspaceOwned):
    """New conversations whose first post matches every filled criterion go to ``team``.

    Empty criteria match anything; rules are tried in ``position`` order, the first match wins.
    """

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    network = models.CharField(max_length=32, blank=True)
    language = models.CharField(max_length=8, blank=True)
    keyword = models.CharField(max_length=100, blank=True)
    intent = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE)
    auto_assign = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class SlaPolicy(WorkspaceOwned):
    """A workspace's targets, counted in business time in its time zone."""

    first_response_minutes = models.PositiveIntegerField(default=60)
    resolution_minutes = models.PositiveIntegerField(default=24 * 60)
    time_zone = models.CharField(max_length=64, default="UTC")
    business_start = models.TimeField(null=True, blank=True)  # empty: round the clock
    business_end = models.TimeField(null=True, blank=True)
    business_days = models.JSONField(default=list, blank=True)  # 0 = Monday; empty: every day

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="one_sla_policy")]

    def __str__(self) -> str:
        return f"SLA of workspace {self.workspace_id}"


class InboxSettings(WorkspaceOwned):
    """Workspace-wide inbox options."""

    approval_required = models.BooleanField(
        default=False, help_text="Agents' replies wait for a manager's approval before going out."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="one_inbox_settings")]

    def __str__(self) -> str:
        return f"inbox settings of workspace {self.workspace_id}"


class CannedReply(WorkspaceOwned):
    """A saved answer; {customer_name}, {agent_name} and {ticket} are filled when inserted."""

    title = models.CharField(max_length=100)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.title


class ReplyState(models.TextChoices):
    SENDING = "sending", _("Sending")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    FAILED = "failed", _("Failed")
    SENT = "sent", _("Sent")


class OutgoingReply(WorkspaceOwned):
    """A reply written in Relais, kept from the moment it is submitted.

    It stays in the conversation when the network refuses it (with the reason, for a retry with
    the same idempotency key) or while it waits for approval, so nothing typed is lost.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="outgoing_replies"
    )
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    private = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=ReplyState.choices)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    approved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    post = models.ForeignKey(
        "pipeline.Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="outgoing_reply_key"
            )
        ]
        indexes = [models.Index(fields=["conversation", "state"])]

    def __str__(self) -> str:
        return f"reply {self.idempotency_key} ({self.state})"


class Draft(WorkspaceOwned):
    """What an agent is typing, saved as they type so closing the page loses nothing."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_draft_per_agent")
        ]

    def __str__(self) -> str:
        return f"draft of {self.user_id} on {self.conversation_id}"


class Viewer(WorkspaceOwned):
    """Who has a conversation open, and who is typing in it, for the collision warning."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()
    typing_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_viewer_row")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} viewing {self.conversation_id}"


# Kept in English in ``last_error`` (a worker has no reader's language) and translated when
# shown; the other errors there are the receiver's own words.
KEY_CHANGED_ERROR = gettext_noop(
    "The signing secret cannot be read (the server's secret key changed): "
    "delete this webhook and register it again."
)


class WebhookEndpoint(WorkspaceOwned):
    """An outside system (a CRM) told of contact and conversation changes by signed POSTs.

    Deliveries go out in order: while the oldest pending one fails, the endpoint waits until
    ``next_attempt_at`` and the later ones wait behind it. ``lease_until`` makes one worker
    deliver to an endpoint at a time; a worker that dies leaves the lease to run out.
    """

    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    secret = models.TextField()  # encrypted with the deployment's key; shown once, at creation
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.url

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def error_message(self) -> str:
        """``last_error`` in the reader's language when it is one of Relais's own messages."""
        return gettext(self.last_error) if self.last_error == KEY_CHANGED_ERROR else self.last_error


class WebhookDelivery(WorkspaceOwned):
    """One event for one endpoint, written in the transaction of the change it tells of.

    ``event_id`` is the same on every attempt (and for two workers recording the same creation),
    so the receiver can drop a redelivery.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="one_delivery_per_event")
        ]
        indexes = [models.Index(fields=["endpoint", "delivered_at", "id"], name="webhook_queue")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"
