"""Reading conversations, always within one workspace."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404

from relais.inbox.models import Conversation, Message, Note, Status


def conversations(workspace_id: int, *, status: str = "") -> QuerySet[Conversation]:
    rows = (
        Conversation.objects.in_workspace(workspace_id)
        .select_related("customer", "account", "assignee")
        .order_by("-last_message_at", "-pk")
    )
    if status in Status.values:
        rows = rows.filter(status=status)
    elif status == "unresolved":
        rows = rows.exclude(status=Status.RESOLVED)
    return rows


def conversation(workspace_id: int, conversation_id: int) -> Conversation:
    found = (
        Conversation.objects.in_workspace(workspace_id)
        .select_related("customer", "account", "assignee")
        .filter(pk=conversation_id)
        .first()
    )
    if found is None:
        raise Http404
    return found


def thread(conversation: Conversation) -> list[Message]:
    return list(
        Message.objects.in_workspace(conversation.workspace_id)
        .filter(conversation=conversation)
        .select_related("post__author", "post__sent_by")
        .order_by("created_at", "pk")
    )


def notes(conversation: Conversation) -> list[Note]:
    return list(
        Note.objects.in_workspace(conversation.workspace_id)
        .filter(conversation=conversation)
        .select_related("author")
        .order_by("created_at")
    )


def status_counts(workspace_id: int) -> dict[str, int]:
    counts = dict.fromkeys(Status.values, 0)
    rows = (
        Conversation.objects.in_workspace(workspace_id)
        .values("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    counts.update(dict(rows))
    return counts
