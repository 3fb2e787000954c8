"""How one new message moves a conversation: waiting time, priority, service levels, status.

Shared by routing (posts stored from networks) and by replies sent from Relais, so both keep
the same bookkeeping. Messages are applied in time order.
"""

from __future__ import annotations

from datetime import datetime

from relais.inbox import priority
from relais.inbox.models import Conversation, SlaPolicy, Status
from relais.inbox.sla import deadlines
from relais.pipeline.models import Direction, Post

PROGRESS_FIELDS = [
    "message_count",
    "last_message_at",
    "preview",
    "status",
    "waiting_since",
    "urgent_since",
    "priority_boost_minutes",
    "opened_at",
    "first_response_due",
    "resolution_due",
    "first_response_at",
    "first_response_seconds",
    "first_responder",
    "resolved_at",
    "resolution_breached_at",
]


def event_time(post: Post) -> datetime:
    """When the post was written: replayed posts keep their historical time in ``raw``."""
    original = post.raw.get("original_time") if isinstance(post.raw, dict) else None
    if original:
        try:
            return datetime.fromisoformat(str(original))
        except ValueError:
            pass
    return post.created_at


def apply_message(conversation: Conversation, post: Post, policy: SlaPolicy | None) -> None:
    if post.direction == Direction.INBOUND:
        _customer_wrote(conversation, post, policy)
    else:
        _brand_answered(conversation, post)


def _customer_wrote(conversation: Conversation, post: Post, policy: SlaPolicy | None) -> None:
    conversation.preview = post.text[:280]
    if conversation.opened_at is None:
        conversation.opened_at = event_time(post)
        conversation.first_response_due, conversation.resolution_due = deadlines(
            policy, post.created_at
        )
    if conversation.waiting_since is None:
        conversation.waiting_since = post.created_at
    conversation.priority_boost_minutes = max(
        conversation.priority_boost_minutes, priority.boost_minutes(post)
    )
    conversation.urgent_since = priority.urgent_since(
        conversation.waiting_since, conversation.priority_boost_minutes
    )
    if conversation.status == Status.RESOLVED:
        conversation.resolved_at = None
        conversation.resolution_due = deadlines(policy, post.created_at)[1]
        conversation.resolution_breached_at = None  # a new deadline, which may be breached anew
    if conversation.status in {Status.RESOLVED, Status.PENDING}:
        conversation.status = Status.OPEN  # the customer wrote again


def _brand_answered(conversation: Conversation, post: Post) -> None:
    conversation.waiting_since = None
    conversation.urgent_since = None
    if conversation.first_response_at is None and conversation.opened_at is not None:
        conversation.first_response_at = post.created_at
        conversation.first_response_seconds = max(
            0.0, (event_time(post) - conversation.opened_at).total_seconds()
        )
        conversation.first_responder_id = post.sent_by_id
