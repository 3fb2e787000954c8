"""What agents and managers do in the care inbox.

Conversations (reply, note, status, assignment, tags), contacts (edit, tag, merge), teams,
assignment rules, agents' capacity, presence and leave, and the SLA policy. Status and
assignment lock the conversation row, so two agents acting at once end in one state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, membership_of, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability, role_allows
from relais.connectors.actions import do_mark_reconnect_needed
from relais.connectors.base import (
    ConnectorError,
    CredentialsExpiredError,
    OutboundPost,
    PostKind,
)
from relais.connectors.netguard import UnsafeDestinationError, check_destination
from relais.connectors.registry import connector_for
from relais.core import clock
from relais.core.errors import ConflictError, RelaisError, ValidationFailedError
from relais.core.events import publish_event
from relais.inbox.assignment import Rotation
from relais.inbox.export import contact_rows
from relais.inbox.models import (
    AgentState,
    AssignmentRule,
    CannedReply,
    Contact,
    Conversation,
    ConversationTag,
    Draft,
    InboxSettings,
    Message,
    Note,
    OutgoingReply,
    ReplyState,
    SlaPolicy,
    Status,
    Team,
    Viewer,
    WebhookEndpoint,
)
from relais.inbox.progress import PROGRESS_FIELDS, apply_message
from relais.inbox.webhooks import (
    EVENT_TYPES,
    new_secret,
    pending,
    queue_changes,
    record_change,
    stable_event_id,
)
from relais.pipeline.models import Author, Direction, Post, Routing

MAX_NOTE_LENGTH = 10_000
MAX_TAGS = 20
MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
TAG = re.compile(r"[^\w-]+")


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


class ConcurrentChangeError(ConflictError):
    """Someone changed the conversation between what the agent saw and what they did."""


class ApprovalPendingError(RelaisError):
    """The reply was kept and waits for a manager; nothing was sent yet."""


def do_send_reply(
    user: User,
    conversation: Conversation,
    text: str,
    *,
    idempotency_key: str,
    private: bool = False,
) -> Post:
    """Send a reply now and return the stored post, or raise (the reply is kept either way).

    The idempotency key (one per reply form) makes a double submit or a retry after a timeout
    send once: the network dedups on it and so does the unique key on the stored post.
    """
    already = Post.objects.in_workspace(conversation.workspace_id).filter(
        idempotency_key=idempotency_key
    )
    if existing := already.first():
        return existing
    reply = do_submit_reply(
        user, conversation, text, idempotency_key=idempotency_key, private=private
    )
    if reply.state == ReplyState.SENT and reply.post is not None:
        return reply.post
    if reply.state == ReplyState.AWAITING_APPROVAL:
        raise ApprovalPendingError(_("The reply waits for a manager's approval."))
    raise RelaisError(reply.error)


def approval_required(user: User, workspace_id: int) -> bool:
    settings = InboxSettings.objects.in_workspace(workspace_id).first()
    if settings is None or not settings.approval_required:
        return False
    membership = membership_of(user, workspace_id)
    return membership is None or not role_allows(membership.role, Capability.MANAGE_INBOX)


def do_submit_reply(
    user: User,
    conversation: Conversation,
    text: str,
    *,
    idempotency_key: str,
    private: bool = False,
) -> OutgoingReply:
    """Keep the reply, then send it (or leave it for approval). A refusal by the network
    leaves it ``failed`` with the reason, ready to retry; it never raises for that."""
    text = check_reply(user, conversation, text)
    waits = approval_required(user, conversation.workspace_id)
    with transaction.atomic():
        reply, created = OutgoingReply.objects.get_or_create(
            workspace_id=conversation.workspace_id,
            idempotency_key=idempotency_key,
            defaults={
                "conversation": conversation,
                "author": user,
                "text": text,
                "private": private,
                "state": ReplyState.AWAITING_APPROVAL if waits else ReplyState.SENDING,
            },
        )
        if created:
            Draft.objects.filter(conversation=conversation, user=user).delete()
            record_change(
                conversation.workspace_id,
                user,
                "conversation.reply_submitted",
                conversation,
                awaiting_approval=waits,
                private=private,
            )
            _publish(conversation)
    if reply.conversation_id != conversation.pk:
        raise ValidationFailedError(_("This reply key was used in another conversation."))
    if reply.state in {ReplyState.SENDING, ReplyState.FAILED}:
        _deliver(user, reply, conversation)
    return reply


def do_retry_reply(user: User, reply: OutgoingReply) -> OutgoingReply:
    check_capability(user, reply.workspace_id, Capability.REPLY)
    if reply.state != ReplyState.FAILED:
        raise ValidationFailedError(_("Only a failed reply can be sent again."))
    _deliver(user, reply, reply.conversation)
    return reply


def do_approve_reply(user: User, reply: OutgoingReply) -> OutgoingReply:
    check_capability(user, reply.workspace_id, Capability.MANAGE_INBOX)
    with transaction.atomic():
        claimed = OutgoingReply.objects.filter(
            pk=reply.pk, state=ReplyState.AWAITING_APPROVAL
        ).update(state=ReplyState.SENDING, approved_by=user)
        if not claimed:
            raise ValidationFailedError(_("This reply is no longer waiting for approval."))
        record_change(reply.workspace_id, user, "conversation.reply_approved", reply.conversation)
    reply.state, reply.approved_by = ReplyState.SENDING, user
    _deliver(user, reply, reply.conversation)
    return reply


def do_withdraw_reply(user: User, reply: OutgoingReply) -> str:
    """Take back a failed or waiting reply into its author's draft, to edit or drop it."""
    if reply.author_id != user.pk:
        check_capability(user, reply.workspace_id, Capability.MANAGE_INBOX)
    else:
        check_capability(user, reply.workspace_id, Capability.REPLY)
    with transaction.atomic():
        withdrawn = OutgoingReply.objects.filter(
            pk=reply.pk, state__in=[ReplyState.FAILED, ReplyState.AWAITING_APPROVAL]
        ).delete()[0]
        if not withdrawn:
            raise ValidationFailedError(_("This reply can no longer be withdrawn."))
        Draft.objects.update_or_create(
            workspace_id=reply.workspace_id,
            conversation_id=reply.conversation_id,
            user_id=reply.author_id,
            defaults={"text": reply.text},
        )
        record_change(reply.workspace_id, user, "conversation.reply_withdrawn", reply.conversation)
        _publish(reply.conversation)
    return reply.text


def _deliver(user: User, reply: OutgoingReply, conversation: Conversation) -> None:
    try:
        post = _send_through_network(
            reply.author,
            conversation,
            reply.text,
            idempotency_key=reply.idempotency_key,
            private=reply.private,
        )
    except RelaisError as error:
        reply.state, reply.error = ReplyState.FAILED, str(error)[:500]
        with transaction.atomic():
            OutgoingReply.objects.filter(pk=reply.pk).update(
                state=reply.state, error=reply.error, attempts=F("attempts") + 1
            )
            record_change(
                conversation.workspace_id,
                user,
                "conversation.reply_failed",
                conversation,
                error=reply.error,
            )
            _publish(conversation)
        return
    reply.state, reply.error, reply.post = ReplyState.SENT, "", post
    OutgoingReply.objects.filter(pk=reply.pk).update(
        state=reply.state, error="", post=post, attempts=F("attempts") + 1
    )


def _send_through_network(
    user: User,
    conversation: Conversation,
    text: str,
    *,
    idempotency_key: str,
    private: bool,
) -> Post:
    """Send through the connector, then store the post in the thread."""
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
    except CredentialsExpiredError as exc:
        # Tell the admins now rather than at the next poll; the reply stays, failed, to retry.
        do_mark_reconnect_needed(conversation.account, exc)
        raise RelaisError(
            _("%(network)s refused @%(handle)s's credentials: an admin must reconnect the account.")
            % {"network": connector.display_name, "handle": conversation.account.handle}
        ) from exc
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
        _message, created = Message.objects.get_or_create(
            workspace_id=conversation.workspace_id,
            post=post,
            defaults={
                "conversation": conversation,
                "direction": Direction.OUTBOUND,
                "created_at": post.created_at,
            },
        )
        if created:
            _record_reply(conversation, post)
        record_change(
            conversation.workspace_id, user, "conversation.replied", conversation, private=private
        )
        publish_event(
            conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]}
        )
    return post


def _record_reply(conversation: Conversation, post: Post) -> None:
    current = Conversation.objects.select_for_update().get(pk=conversation.pk)
    apply_message(current, post, policy=None)
    current.message_count = current.messages.count()
    current.last_message_at = max(current.last_message_at, post.created_at)
    if current.status == Status.NEW:
        current.status = Status.OPEN
    current.save(update_fields=PROGRESS_FIELDS)


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


def do_change_status(
    user: User, conversation: Conversation, status: str, *, expected: str | None = None
) -> bool:
    """Set the status; False when it already was. ``expected`` is the status the agent saw:
    if someone changed it meanwhile, refuse rather than overwrite their decision."""
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    new_status = check_status(status)
    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if current.status == new_status:
            _copy_state(current, conversation)
            return False
        if expected and current.status != expected:
            raise ConcurrentChangeError(
                _("Someone changed this conversation to %(status)s meanwhile.")
                % {"status": current.get_status_display()}
            )
        before = current.status
        current.status = new_status
        if new_status == Status.RESOLVED:
            current.resolved_at = clock.now()
            current.resolved_by = user
            current.resolution_seconds = (current.resolved_at - current.created_at).total_seconds()
        else:
            current.resolved_at = None
        current.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_seconds"])
        record_change(
            conversation.workspace_id,
            user,
            "conversation.status_changed",
            conversation,
            before=before,
            after=new_status.value,
        )
        _publish(conversation)
    _copy_state(current, conversation)
    return True


def _copy_state(source: Conversation, target: Conversation) -> None:
    for field in ("status", "assignee_id", "team_id", "tags", "resolved_at"):
        setattr(target, field, getattr(source, field))


def _publish(conversation: Conversation) -> None:
    publish_event(conversation.workspace_id, "conversations.changed", {"ids": [conversation.pk]})


NOT_CHECKED = -1


def do_assign(
    user: User,
    conversation: Conversation,
    assignee: User | None,
    *,
    expected_assignee_id: int | None = NOT_CHECKED,
) -> bool:
    """Take a conversation (any agent) or give it to someone (managers); False if unchanged.

    ``expected_assignee_id`` is who the agent saw holding it (None: nobody): when two agents
    take the same conversation at once, the second is told who was faster.
    """
    if assignee is not None and assignee.pk == user.pk:
        check_capability(user, conversation.workspace_id, Capability.REPLY)
    else:
        check_capability(user, conversation.workspace_id, Capability.MANAGE_INBOX)
    if assignee is not None and membership_of(assignee, conversation.workspace_id) is None:
        raise ValidationFailedError(_("This person is not a member of the workspace."))
    assignee_id = assignee.pk if assignee else None
    with transaction.atomic():
        # No join here: PostgreSQL re-reads a row it waited to lock, but not the rows joined
        # to it, so a joined assignee would be the one from before the wait.
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if current.assignee_id == assignee_id:
            _copy_state(current, conversation)
            return False
        if expected_assignee_id not in {NOT_CHECKED, current.assignee_id}:
            holder = User.objects.filter(pk=current.assignee_id or 0).first()
            raise ConcurrentChangeError(
                _("%(name)s took this conversation meanwhile.")
                % {"name": holder.get_full_name() or holder.username}
                if holder
                else _("Someone unassigned this conversation meanwhile.")
            )
        Conversation.objects.filter(pk=conversation.pk).update(assignee=assignee)
        record_change(
            conversation.workspace_id,
            user,
            "conversation.assigned",
            conversation,
            before=current.assignee_id,
            assignee=assignee_id,
        )
        _publish(conversation)
    conversation.assignee = assignee
    return True


def check_team(workspace_id: int, team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.in_workspace(workspace_id).filter(pk=team_id).first()
    if team is None:
        raise ValidationFailedError(_("Unknown team."))
    return team


def do_set_team(user: User, conversation: Conversation, team: Team | None) -> None:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    if team is not None and team.workspace_id != conversation.workspace_id:
        raise ValidationFailedError(_("Unknown team."))
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(team=team)
        record_change(
            conversation.workspace_id,
            user,
            "conversation.team_changed",
            conversation,
            team=team.pk if team else None,
        )
        _publish(conversation)
    conversation.team = team


def clean_tags(tags: list[str] | str) -> list[str]:
    """Tags are short lower-case words; given as a list or a comma-separated string."""
    raw = tags.split(",") if isinstance(tags, str) else tags
    cleaned: list[str] = []
    for tag in raw:
        word = TAG.sub("-", tag.strip().lower()).strip("-")[:40]
        if word and word not in cleaned:
            cleaned.append(word)
    if len(cleaned) > MAX_TAGS:
        raise ValidationFailedError(_("At most %(count)d tags.") % {"count": MAX_TAGS})
    return cleaned


def do_set_tags(user: User, conversation: Conversation, tags: list[str] | str) -> list[str]:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    cleaned = clean_tags(tags)
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(tags=cleaned)
        _write_tag_rows(conversation, cleaned)
        record_change(
            conversation.workspace_id, user, "conversation.tagged", conversation, tags=cleaned
        )
        _publish(conversation)
    conversation.tags = cleaned
    return cleaned


def _write_tag_rows(conversation: Conversation, tags: list[str]) -> None:
    """Keep the rows the tag filter reads equal to the conversation's list."""
    rows = ConversationTag.objects.in_workspace(conversation.workspace_id)
    rows.filter(conversation=conversation).exclude(tag__in=tags).delete()
    ConversationTag.objects.bulk_create(
        [
            ConversationTag(
                workspace_id=conversation.workspace_id, conversation=conversation, tag=tag
            )
            for tag in tags
        ],
        ignore_conflicts=True,
    )


def check_note(workspace_id: int, text: str) -> tuple[str, list[User]]:
    """The note's text and the members it mentions (by @username)."""
    text = text.strip()
    if not text:
        raise ValidationFailedError(_("A note cannot be empty."))
    if len(text) > MAX_NOTE_LENGTH:
        raise ValidationFailedError(
            _("A note is limited to %(limit)d characters.") % {"limit": MAX_NOTE_LENGTH}
        )
    names = {name.lower() for name in MENTION.findall(text)}
    mentioned = [
        member
        for member in User.objects.filter(memberships__workspace_id=workspace_id)
        if member.username.lower() in names
    ]
    return text, mentioned


def do_add_note(user: User, conversation: Conversation, text: str) -> Note:
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    text, mentioned = check_note(conversation.workspace_id, text)
    with transaction.atomic():
        note = Note.objects.create(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            author=user,
            text=text,
        )
        note.mentions.set(mentioned)
        record_change(
            conversation.workspace_id,
            user,
            "conversation.noted",
            conversation,
            mentions=[m.pk for m in mentioned],
        )
        _publish(conversation)
    return note


# Contacts ------------------------------------------------------------------------------------


def do_add_contact_note(user: User, contact: Contact, text: str) -> Note:
    check_capability(user, contact.workspace_id, Capability.REPLY)
    text, mentioned = check_note(contact.workspace_id, text)
    with transaction.atomic():
        note = Note.objects.create(
            workspace_id=contact.workspace_id, contact=contact, author=user, text=text
        )
        note.mentions.set(mentioned)
        record_change(contact.workspace_id, user, "contact.noted", contact)
    return note


def check_attributes(attributes: dict[str, Any]) -> dict[str, str]:
    cleaned = {}
    for key, value in attributes.items():
        name = str(key).strip()[:60]
        if name:
            cleaned[name] = str(value).strip()[:500]
    if len(cleaned) > 50:
        raise ValidationFailedError(_("A contact holds at most 50 attributes."))
    return cleaned


def do_update_contact(
    user: User,
    contact: Contact,
    *,
    display_name: str | None = None,
    attributes: dict[str, Any] | None = None,
    tags: list[str] | str | None = None,
) -> Contact:
    check_capability(user, contact.workspace_id, Capability.REPLY)
    changed: dict[str, Any] = {}
    if display_name is not None:
        name = display_name.strip()[:255]
        if not name:
            raise ValidationFailedError(_("A contact needs a name."))
        changed["display_name"] = name
    if attributes is not None:
        changed["attributes"] = check_attributes(attributes)
    if tags is not None:
        changed["tags"] = clean_tags(tags)
    with transaction.atomic():
        Contact.objects.filter(pk=contact.pk).update(**changed)
        record_change(
            contact.workspace_id, user, "contact.updated", contact, fields=sorted(changed)
        )
    for field, value in changed.items():
        setattr(contact, field, value)
    return contact


def do_merge_contacts(user: User, keep: Contact, merged: Contact) -> Contact:
    """Fold ``merged`` into ``keep``: identities, notes, tags; ``keep``'s attributes win."""
    check_capability(user, keep.workspace_id, Capability.REPLY)
    if keep.workspace_id != merged.workspace_id or keep.pk == merged.pk:
        raise ValidationFailedError(_("Choose two different contacts of this workspace."))
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update()
            .filter(pk__in=[keep.pk, merged.pk])
            .order_by("pk")
        }
        if len(locked) != 2:
            raise ValidationFailedError(_("This contact was already merged."))
        target, source = locked[keep.pk], locked[merged.pk]
        Author.objects.filter(contact=source).update(contact=target)
        Note.objects.filter(contact=source).update(contact=target)
        target.attributes = {**source.attributes, **target.attributes}
        target.tags = clean_tags(target.tags + [t for t in source.tags if t not in target.tags])
        target.save(update_fields=["attributes", "tags"])
        source.delete()
        record_change(
            keep.workspace_id,
            user,
            "contact.merged",
            target,
            merged=merged.pk,
            merged_name=merged.display_name,
        )
    return target


# Teams, rules, agents, SLA -------------------------------------------------------------------


def check_team_name(workspace: Workspace, name: str) -> str:
    name = name.strip()[:100]
    if not name:
        raise ValidationFailedError(_("A team needs a name."))
    if Team.objects.in_workspace(workspace.pk).filter(name=name).exists():
        raise ValidationFailedError(_("There is already a team with this name."))
    return name


def do_create_team(user: User, workspace: Workspace, name: str) -> Team:
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    name = check_team_name(workspace, name)
    with transaction.atomic():
        team = Team.objects.create(workspace=workspace, name=name)
        record_audit(workspace, user, "team.created", team, name=name)
    return team


def do_set_team_members(user: User, team: Team, members: list[User]) -> None:
    check_capability(user, team.workspace_id, Capability.MANAGE_INBOX)
    if any(membership_of(member, team.workspace_id) is None for member in members):
        raise ValidationFailedError(_("This person is not a member of the workspace."))
    with transaction.atomic():
        team.members.set(members)
        record_audit(
            team.workspace_id, user, "team.members_set", team, members=[m.pk for m in members]
        )


def do_delete_team(user: User, team: Team) -> None:
    check_capability(user, team.workspace_id, Capability.MANAGE_INBOX)
    with transaction.atomic():
        record_audit(team.workspace_id, user, "team.deleted", team, name=team.name)
        team.delete()


RULE_FIELDS = ("network", "language", "keyword", "intent", "reason")


def do_create_rule(
    user: User,
    workspace: Workspace,
    name: str,
    *,
    team: Team | None,
    auto_assign: bool = True,
    **criteria: str,
) -> AssignmentRule:
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    if unknown := set(criteria) - set(RULE_FIELDS):
        raise ValidationFailedError(_("Unknown criteria: %(names)s") % {"names": sorted(unknown)})
    if team is not None and team.workspace_id != workspace.pk:
        raise ValidationFailedError(_("Unknown team."))
    name = name.strip()[:100] or _("Rule")
    last = AssignmentRule.objects.in_workspace(workspace.pk).order_by("-position").first()
    with transaction.atomic():
        rule = AssignmentRule.objects.create(
            workspace=workspace,
            name=name,
            position=(last.position + 1) if last else 0,
            team=team,
            auto_assign=auto_assign,
            **{key: value.strip() for key, value in criteria.items()},
        )
        record_audit(workspace, user, "assignment_rule.created", rule, name=name)
    return rule


def do_delete_rule(user: User, rule: AssignmentRule) -> None:
    check_capability(user, rule.workspace_id, Capability.MANAGE_INBOX)
    with transaction.atomic():
        record_audit(rule.workspace_id, user, "assignment_rule.deleted", rule, name=rule.name)
        rule.delete()


def agent_state(workspace_id: int, user: User) -> AgentState:
    state, _created = AgentState.objects.get_or_create(workspace_id=workspace_id, user=user)
    return state


SEEN_EVERY = timedelta(seconds=30)  # presence counts in minutes: no write on every page load


def do_mark_seen(user: User, workspace_id: int) -> None:
    """Presence for round robin. Not audited: it is a heartbeat, not a decision."""
    now = clock.now()
    mine = AgentState.objects.in_workspace(workspace_id).filter(user=user)
    if mine.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - SEEN_EVERY)).update(
        last_seen_at=now
    ):
        return
    if not mine.exists():
        AgentState.objects.get_or_create(
            workspace_id=workspace_id, user=user, defaults={"last_seen_at": now}
        )


def do_set_capacity(user: User, workspace: Workspace, agent: User, capacity: int) -> None:
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    if not 0 <= capacity <= 1000:
        raise ValidationFailedError(_("The capacity must be between 0 and 1000."))
    with transaction.atomic():
        state = agent_state(workspace.pk, agent)
        AgentState.objects.filter(pk=state.pk).update(capacity=capacity)
        record_audit(workspace, user, "agent.capacity_set", agent, capacity=capacity)


def do_set_on_leave(user: User, workspace: Workspace, agent: User, on_leave: bool) -> int:
    """Put an agent on leave (or back): their open conversations go back to their team's
    rotation, or to nobody. Returns how many conversations were handed over."""
    if agent.pk != user.pk:
        check_capability(user, workspace, Capability.MANAGE_INBOX)
    else:
        check_capability(user, workspace, Capability.REPLY)
    with transaction.atomic():
        state = agent_state(workspace.pk, agent)
        AgentState.objects.filter(pk=state.pk).update(on_leave=on_leave)
        handed: list[int] = []
        if on_leave:
            handed = _hand_over(workspace.pk, agent)
        record_audit(
            workspace, user, "agent.leave_set", agent, on_leave=on_leave, handed_over=handed
        )
        if handed:
            publish_event(workspace.pk, "conversations.changed", {"ids": handed[:200]})
    return len(handed)


def _hand_over(workspace_id: int, agent: User, *, reason: str = "leave") -> list[int]:
    held = list(
        Conversation.objects.in_workspace(workspace_id)
        .select_for_update(of=("self",))
        .filter(assignee=agent)
        .exclude(status=Status.RESOLVED)
        .select_related("team")
        .order_by("urgent_since", "pk")
    )
    rotation = Rotation(workspace_id)
    changes = []
    for conversation in held:
        new_assignee = rotation.next_agent(conversation.team) if conversation.team else None
        Conversation.objects.filter(pk=conversation.pk).update(assignee_id=new_assignee)
        changes.append(
            record_change(
                workspace_id,
                None,
                "conversation.assigned",
                conversation,
                queue=False,
                before=agent.pk,
                assignee=new_assignee,
                reason=reason,
            )
        )
    queue_changes(workspace_id, [change for change in changes if change])
    return [c.pk for c in held]


def check_sla_policy(
    *,
    first_response_minutes: int,
    resolution_minutes: int,
    time_zone: str,
    business_start: time | None,
    business_end: time | None,
    business_days: list[int],
) -> None:
    if not 1 <= first_response_minutes <= 100_000 or not 1 <= resolution_minutes <= 1_000_000:
        raise ValidationFailedError(_("Targets are counted in minutes, at least 1."))
    if time_zone not in available_timezones():
        raise ValidationFailedError(_("Unknown time zone: %(zone)s") % {"zone": time_zone})
    ZoneInfo(time_zone)
    if (business_start is None) != (business_end is None):
        raise ValidationFailedError(_("Give both the opening and the closing time, or neither."))
    if any(day not in range(7) for day in business_days):
        raise ValidationFailedError(_("Business days are numbered 0 (Monday) to 6 (Sunday)."))


def do_set_sla_policy(
    user: User,
    workspace: Workspace,
    *,
    first_response_minutes: int,
    resolution_minutes: int,
    time_zone: str = "UTC",
    business_start: time | None = None,
    business_end: time | None = None,
    business_days: list[int] | None = None,
) -> SlaPolicy:
    """Set the workspace's targets; they apply to conversations opened from now on."""
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    days = sorted(set(business_days or []))
    check_sla_policy(
        first_response_minutes=first_response_minutes,
        resolution_minutes=resolution_minutes,
        time_zone=time_zone,
        business_start=business_start,
        business_end=business_end,
        business_days=days,
    )
    with transaction.atomic():
        policy, _created = SlaPolicy.objects.update_or_create(
            workspace=workspace,
            defaults={
                "first_response_minutes": first_response_minutes,
                "resolution_minutes": resolution_minutes,
                "time_zone": time_zone,
                "business_start": business_start,
                "business_end": business_end,
                "business_days": days,
            },
        )
        record_audit(
            workspace,
            user,
            "sla_policy.set",
            policy,
            first_response_minutes=first_response_minutes,
            resolution_minutes=resolution_minutes,
            time_zone=time_zone,
        )
    return policy


# Drafts, presence, canned replies, approval ---------------------------------------------------

MAX_DRAFT_LENGTH = 10_000
TYPING_EVENT_EVERY = timedelta(seconds=5)
VIEWING_EVENT_EVERY = timedelta(seconds=20)


def do_save_draft(user: User, conversation: Conversation, text: str) -> None:
    """Keep what an agent types (saved as they type) and tell others they are typing.

    Not audited: a draft is the agent's own scratch space until it is submitted.
    """
    check_capability(user, conversation.workspace_id, Capability.REPLY)
    text = text[:MAX_DRAFT_LENGTH]
    just_sent = OutgoingReply.objects.filter(
        conversation=conversation,
        author=user,
        text=text.strip(),
        created_at__gte=clock.now() - timedelta(minutes=1),
    )
    if just_sent.exists():
        return  # a save that raced the submit must not bring the sent text back
    with transaction.atomic():
        if text.strip():
            Draft.objects.update_or_create(
                workspace_id=conversation.workspace_id,
                conversation=conversation,
                user=user,
                defaults={"text": text},
            )
        else:
            Draft.objects.filter(conversation=conversation, user=user).delete()
        _note_presence(user, conversation, typing=bool(text.strip()))


def do_mark_viewing(user: User, conversation: Conversation) -> None:
    """Heartbeat of an open conversation page (not audited)."""
    with transaction.atomic():
        _note_presence(user, conversation, typing=False)


def do_leave_conversation(user: User, conversation: Conversation) -> None:
    with transaction.atomic():
        if Viewer.objects.filter(conversation=conversation, user=user).delete()[0]:
            publish_event(conversation.workspace_id, "presence.changed", {"ids": [conversation.pk]})


def _note_presence(user: User, conversation: Conversation, *, typing: bool) -> None:
    """Record the heartbeat; publish an event only when others would see a change."""
    now = clock.now()
    viewer = Viewer.objects.filter(conversation=conversation, user=user).first()
    if viewer is None:
        Viewer.objects.create(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            user=user,
            seen_at=now,
            typing_at=now if typing else None,
        )
        changed = True
    else:
        changed = now - viewer.seen_at > VIEWING_EVENT_EVERY
        if typing:
            changed = (
                changed or viewer.typing_at is None or now - viewer.typing_at > (TYPING_EVENT_EVERY)
            )
        Viewer.objects.filter(pk=viewer.pk).update(
            seen_at=now, typing_at=now if typing else viewer.typing_at
        )
    if changed:
        publish_event(conversation.workspace_id, "presence.changed", {"ids": [conversation.pk]})


def check_canned_reply(title: str, text: str) -> tuple[str, str]:
    title, text = title.strip()[:100], text.strip()
    if not title or not text:
        raise ValidationFailedError(_("A canned reply needs a title and a text."))
    return title, text


def do_create_canned_reply(user: User, workspace: Workspace, title: str, text: str) -> CannedReply:
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    title, text = check_canned_reply(title, text)
    with transaction.atomic():
        canned = CannedReply.objects.create(workspace=workspace, title=title, text=text)
        record_audit(workspace, user, "canned_reply.created", canned, title=title)
    return canned


def do_delete_canned_reply(user: User, canned: CannedReply) -> None:
    check_capability(user, canned.workspace_id, Capability.MANAGE_INBOX)
    with transaction.atomic():
        record_audit(canned.workspace_id, user, "canned_reply.deleted", canned, title=canned.title)
        canned.delete()


def do_set_approval_required(user: User, workspace: Workspace, required: bool) -> None:
    check_capability(user, workspace, Capability.MANAGE_INBOX)
    with transaction.atomic():
        InboxSettings.objects.update_or_create(
            workspace=workspace, defaults={"approval_required": required}
        )
        record_audit(workspace, user, "inbox.approval_set", workspace, required=required)


def do_export_contacts(actor: User, workspace: Workspace) -> Iterator[list[str]]:
    """Contacts as CSV rows; exporting people's data is for managers and is audited."""
    check_capability(actor, workspace, Capability.MANAGE_INBOX)
    with transaction.atomic():
        record_audit(workspace, actor, "contacts.exported")
    return contact_rows(workspace.pk)


def do_release_member_conversations(workspace_id: int, member: User) -> int:
    """Hand a departing member's open conversations back, as leave does; returns how many.

    For the action that removes a membership (or takes away the right to reply): call it in the
    same transaction, after the membership is gone or changed, so the rotation cannot pick the
    member again.
    """
    with transaction.atomic():
        handed = _hand_over(workspace_id, member, reason="removed")
        if handed:
            publish_event(workspace_id, "conversations.changed", {"ids": handed[:200]})
    return len(handed)


# Service-level breaches -----------------------------------------------------------------------

BREACHES_PER_RUN = 500


def do_announce_sla_breaches(now: datetime | None = None) -> int:
    """Notice the conversations that passed a deadline since the last run (the beat's job) and
    tell once per breach: a live event for open pages and ``conversation.sla_breached`` for
    webhooks. The mark is set by a conditional UPDATE, so two runs at once announce once."""
    now = now or clock.now()
    announced = 0
    for target in ("first_response", "resolution"):
        late = Q(**{f"{target}_due__lt": now, f"{target}_breached_at__isnull": True})
        if target == "first_response":
            late &= Q(first_response_at__isnull=True)
        rows = (
            Conversation.objects.exclude(status=Status.RESOLVED)
            .filter(late)
            .order_by(f"{target}_due")
            .values_list("pk", "workspace_id", f"{target}_due")[:BREACHES_PER_RUN]
        )
        by_workspace: dict[int, list[tuple[int, datetime]]] = {}
        for pk, workspace_id, due in rows:
            by_workspace.setdefault(workspace_id, []).append((pk, due))
        for workspace_id, breaches in by_workspace.items():
            announced += _announce(workspace_id, target, breaches, now)
    return announced


def _announce(
    workspace_id: int, target: str, breaches: list[tuple[int, datetime]], now: datetime
) -> int:
    marked: list[int] = []
    changes = []
    with transaction.atomic():
        for pk, due in breaches:
            claimed = Conversation.objects.filter(
                pk=pk, **{f"{target}_breached_at__isnull": True}
            ).update(**{f"{target}_breached_at": now})
            if not claimed:
                continue
            changes.append(
                record_change(
                    workspace_id,
                    None,
                    "conversation.sla_breached",
                    Conversation(pk=pk, workspace_id=workspace_id),
                    event_id=stable_event_id("sla_breached", pk, target, due.isoformat()),
                    queue=False,
                    deadline=target,
                    due=due.isoformat(),
                )
            )
            marked.append(pk)
        queue_changes(workspace_id, [change for change in changes if change])
        if marked:
            publish_event(workspace_id, "sla.breached", {"ids": marked[:200], "target": target})
            publish_event(workspace_id, "conversations.changed", {"ids": marked[:200]})
    return len(marked)


# CRM webhooks ---------------------------------------------------------------------------------

MAX_WEBHOOK_ENDPOINTS = 10


def check_webhook_endpoint(url: str, events: list[str]) -> tuple[str, list[str]]:
    url = url.strip()
    if len(url) > 500:
        raise ValidationFailedError(_("This address is too long (500 characters at most)."))
    if unknown := set(events) - set(EVENT_TYPES):
        raise ValidationFailedError(_("Unknown events: %(names)s") % {"names": sorted(unknown)})
    if not events:
        raise ValidationFailedError(_("Choose at least one event to send."))
    try:
        check_destination(url)
    except UnsafeDestinationError as error:
        raise ValidationFailedError(str(error)) from error
    return url, [event for event in EVENT_TYPES if event in events]


def do_create_webhook_endpoint(
    user: User, workspace: Workspace, url: str, events: list[str]
) -> tuple[WebhookEndpoint, str]:
    """Register a receiver; returns it with its signing secret, which is shown this once."""
    check_capability(user, workspace, Capability.MANAGE_ACCOUNTS)
    url, events = check_webhook_endpoint(url, events)
    if WebhookEndpoint.objects.in_workspace(workspace.pk).count() >= MAX_WEBHOOK_ENDPOINTS:
        raise ValidationFailedError(
            _("A workspace has at most %(count)d webhooks.") % {"count": MAX_WEBHOOK_ENDPOINTS}
        )
    secret, stored = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace, url=url, events=events, secret=stored
        )
        record_audit(workspace, user, "webhook.created", endpoint, url=url, events=events)
    return endpoint, secret


def do_update_webhook_endpoint(
    user: User,
    endpoint: WebhookEndpoint,
    *,
    events: list[str] | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change what an endpoint receives, pause it or resume it (a resumed one is tried now)."""
    check_capability(user, endpoint.workspace_id, Capability.MANAGE_ACCOUNTS)
    changed: dict[str, Any] = {}
    if events is not None:
        changed["events"] = check_webhook_endpoint(endpoint.url, events)[1]
    if active is not None:
        changed["active"] = active
        if active:
            changed["next_attempt_at"] = None
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**changed)
        record_audit(
            endpoint.workspace_id, user, "webhook.updated", endpoint, fields=sorted(changed)
        )
        if active:
            transaction.on_commit(lambda: _deliver_soon(endpoint.pk))
    for name, value in changed.items():
        setattr(endpoint, name, value)
    return endpoint


def do_retry_webhook_endpoint(user: User, endpoint: WebhookEndpoint) -> None:
    """Try a failing endpoint now rather than at its next scheduled attempt."""
    check_capability(user, endpoint.workspace_id, Capability.MANAGE_ACCOUNTS)
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(next_attempt_at=None)
        record_audit(endpoint.workspace_id, user, "webhook.retried", endpoint)
        transaction.on_commit(lambda: _deliver_soon(endpoint.pk))


def do_discard_webhook_events(user: User, endpoint: WebhookEndpoint) -> int:
    """Drop what a paused endpoint has waiting, when the admin does not want it sent on resume.

    Only while paused: on an active endpoint a worker may be sending these very rows.
    """
    check_capability(user, endpoint.workspace_id, Capability.MANAGE_ACCOUNTS)
    with transaction.atomic():
        paused = (
            WebhookEndpoint.objects.select_for_update()
            .filter(pk=endpoint.pk, active=False)
            .exists()
        )
        if not paused:
            raise ValidationFailedError(_("Pause the webhook before discarding its events."))
        discarded, _kinds = pending(endpoint.pk).delete()
        record_audit(endpoint.workspace_id, user, "webhook.discarded", endpoint, events=discarded)
    return discarded


def do_delete_webhook_endpoint(user: User, endpoint: WebhookEndpoint) -> None:
    check_capability(user, endpoint.workspace_id, Capability.MANAGE_ACCOUNTS)
    with transaction.atomic():
        record_audit(endpoint.workspace_id, user, "webhook.deleted", endpoint, url=endpoint.url)
        endpoint.delete()


def _deliver_soon(endpoint_id: int) -> None:
    from relais.inbox.tasks import deliver_webhooks

    deliver_webhooks.delay(endpoint_id)
