"""Conversations with customers, the posts they hold, notes, and contacts."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from relais.core.models import WorkspaceOwned


class Contact(WorkspaceOwned):
    """One person across networks; authors on several networks point here."""

    display_name = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

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
    preview = models.CharField(max_length=280, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "account", "thread_key"], name="one_conversation_per_thread"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-last_message_at"]),
            models.Index(fields=["workspace", "-last_message_at"]),
        ]

    def __str__(self) -> str:
        return f"conversation #{self.pk}"


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
    """An internal note on a conversation, never sent to the customer."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"note #{self.pk}"
