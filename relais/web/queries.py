"""Reads for the home page and the stream, scoped by workspace."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from relais.accounts.models import Workspace
from relais.connectors.models import ConnectedAccount
from relais.inbox.models import Conversation, Message
from relais.inbox.queries import status_counts
from relais.pipeline.actions import pipeline_lag
from relais.pipeline.models import Post
from relais.sandbox.models import SandboxFeed

STREAM_FILTERS = ("lang", "sentiment", "intent", "reason", "direction")


def recent_posts(workspace_id: int, filters: dict[str, str] | None = None) -> QuerySet[Post]:
    """Newest first; ``filters`` keeps only posts whose field equals the value (known fields)."""
    wanted = {k: v for k, v in (filters or {}).items() if k in STREAM_FILTERS and v}
    return (
        Post.objects.in_workspace(workspace_id)
        .filter(**wanted)
        .select_related("author")
        .order_by("-created_at", "-pk")
    )


def workspace_counts(workspace_id: int) -> dict[str, Any]:
    return {
        "posts": Post.objects.in_workspace(workspace_id).count(),
        "conversations": Conversation.objects.in_workspace(workspace_id).count(),
        "messages": Message.objects.in_workspace(workspace_id).count(),
        "by_status": status_counts(workspace_id),
    }


def home_context(workspace: Workspace) -> dict[str, Any]:
    return {
        "counts": workspace_counts(workspace.pk),
        "lag": pipeline_lag(workspace.pk),
        "feeds": SandboxFeed.objects.in_workspace(workspace.pk).order_by("dataset"),
        "accounts": ConnectedAccount.objects.in_workspace(workspace.pk)
        .annotate(conversation_count=Count("conversations"))
        .order_by("network", "handle"),
    }
