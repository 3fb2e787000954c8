"""What agents do to conversations: reply, note, change status, assign."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, membership_of, record_audit
from relais.accounts.models import User
from relais.accounts.roles import Capability
from relais.connectors.base import ConnectorError, OutboundPost, PostKind
from relais.connectors.registry import connector_for
from relais.core.errors import RelaisError, ValidationFailedError
from relais.core.events import publish_event
from relais.inbox.models import Conversation, Message, Note, Status
from relais.pipeline.models import Author, Direction, Post, Routing

MAX_NOTE_LENGTH = 10_000


def check_reply(user: User, conversation: Conversation, text: str) -> str:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    text = text.strip()
    if not text:
        raise ValidationFailedError(_("Write a reply before sending it."))
    connector = connector_for(conversation.account)
    length, limit = connector.text_length(text), connector.limits.max_text_length
    if length > limit:
        raise ValidationFailedError(
            _("This reply is %(length)d characters long; %(network)s allows %(limit)d.")
            % {"length": length, "network": connector.display_name, "limit": limit}
        )
    return text


def do_send_reply(
    user: User,
    conversation: Conversation,
    text: str,
    *,
    idempotency_key: str,
    private: bool = False,
) -> Post:
    """Send a reply through the network, then store it in the thread.

    The idempotency key (one per reply form) makes a double submit or a retry after a timeout
    send once: the network dedups on it and so does the unique key on the stored post.
    """
    text = check_reply(user, conversation, text)
    already = Post.objects.in_workspace(conversation.workspace_id).filter(
        idempotency_key=idempotency_key
    )
    if existing := already.first():
        return existing
    replied_to = _last_customer_post(conversation)
    connector = connector_for(conversation.account)
    outbound = OutboundPost(
        text=text,
        kind=PostKind.PRIVATE_MESSAGE if private else PostKind.REPLY,
        in_reply_to=None if private else replied_to.remote_id,
        recipient=replied_to.author.remote_id if private else None,
    )
    try:
        if private:
            sent = connector.send_private_message(outbound, idempotency_key=idempotency_key)
        else:
            sent = connector.reply(outbound, idempotency_key=idempotency_key)
    except ConnectorError as exc:
        raise RelaisError(
            _("%(network)s did not accept the reply: %(error)s")
            % {"network": connector.display_name, "error": exc}
        ) from exc
    with transaction.atomic():
        brand = connector.own_author()
        author, _created = Author.objects.get_or_create(
            workspace_id=conversation.workspace_id,
            network=conversation.account.network,
            remote_id=brand.remote_id,
            defaults={"handle": brand.handle, "name": brand.name},
        )
        post, _created = Post.objects.get_or_create(
            workspace_id=conversation.workspace_id,
            network=conversation.account.network,
            remote_id=sent.remote_id,
            defaults={
                "kind": outbound.kind.value,
                "direction": Direction.OUTBOUND,
                "author": author,
                "account": conversation.account,
                "text": text,
                "created_at": sent.created_at,
                "in_reply_to_remote_id": outbound.in_reply_to or "",
                "parent": None if private else replied_to,
                "thread_root_remote_id": conversation.thread_key,
                "routing": Routing.ROUTED,
                "idempotency_key": idempotency_key,
                "sent_by": user,
                "raw": {"recipient": outbound.recipient} if private else {},
            },
        )
        Message.objects.get_or_create(
            workspace_id=conversation.workspace_id,
            post=post,
            defaults={
                "conversation": conversation,
                "direction": Direction.OUTBOUND,
                "created_at": post.created_at,
            },
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            message_count=conversation.messages.count(),
            last_message_at=post.created_at,
            status=Status.OPEN if conversation.status == Status.NEW else conversation.status,
        )
        record_audit(
            conversation.workspace_id, user, "conversation.replied", conversation, private=private
        )
        publish_event(
            conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]}
        )
    return post


def _last_customer_post(conversation: Conversation) -> Post:
    message = (
        conversation.messages.filter(direction=Direction.INBOUND)
        .select_related("post__author")
        .order_by("-created_at", "-pk")
        .first()
    )
    if message is None:
        raise ValidationFailedError(_("This conversation has no customer message to answer."))
    return message.post


def check_status(status: str) -> Status:
    if status not in Status.values:
        raise ValidationFailedError(_("Unknown status: %(status)s") % {"status": status})
    return Status(status)


def do_change_status(user: User, conversation: Conversation, status: str) -> None:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    new_status = check_status(status)
    if new_status == conversation.status:
        return
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(status=new_status)
        record_audit(
            conversation.workspace_id,
            user,
            "conversation.status_changed",
            conversation,
            before=conversation.status,
            after=new_status.value,
        )
        publish_event(
            conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]}
        )
    conversation.status = new_status


def do_assign(user: User, conversation: Conversation, assignee: User | None) -> None:
    """Take a conversation (any agent) or give it to someone (managers)."""
    if assignee is not None and assignee.pk == user.pk:
        check_capability(user, conversation.workspace_id, Capability.REPLY)
    else:
        check_capability(user, conversation.workspace_id, Capability.MANAGE_INBOX)
    if assignee is not None and membership_of(assignee, conversation.workspace_id) is None:
        raise ValidationFailedError(_("This person is not a member of the workspace."))
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(assignee=assignee)
        record_audit(
            conversation.workspace_id,
            user,
            "conversation.assigned",
            conversation,
            assignee=assignee.pk if assignee else None,
        )
        publish_event(
            conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]}
        )
    conversation.assignee = assignee


def do_add_note(user: User, conversation: Conversation, text: str) -> Note:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    text = text.strip()
    if not text:
        raise ValidationFailedError(_("A note cannot be empty."))
    if len(text) > MAX_NOTE_LENGTH:
        raise ValidationFailedError(
            _("A note is limited to %(limit)d characters.") % {"limit": MAX_NOTE_LENGTH}
        )
    with transaction.atomic():
        note = Note.objects.create(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            author=user,
            text=text,
        )
        record_audit(conversation.workspace_id, user, "conversation.noted", conversation)
        publish_event(
            conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]}
        )
    return note
