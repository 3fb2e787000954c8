"""Routing: which stored posts open or extend a conversation with the brand.

A post joins the conversation of the post it replies to. Otherwise a customer's post opens a
conversation when it is addressed to a connected brand account: it mentions the account, replies
to one of the account's posts, or is a private message to it. The brand's own posts only join
existing conversations (its historical replies are kept as the thread's history).

"The same subject" is the thread: every reply in a thread joins it, and a person's private
messages to an account form one conversation. A new public post opens a new conversation (the
contact's page shows them all); joining by time or topic would make the inbox depend on the
order in which concurrent workers store batches. A customer writing in a resolved or pending
conversation reopens it. Each customer gets a contact, and new conversations go through the
workspace's assignment rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Max, OuterRef, Subquery

from relais.connectors.base import PostKind
from relais.connectors.models import ConnectedAccount
from relais.core import clock
from relais.core.events import publish_event
from relais.inbox.assignment import auto_assign
from relais.inbox.models import Contact, Conversation, Message, SlaPolicy
from relais.inbox.progress import PROGRESS_FIELDS, apply_message
from relais.inbox.webhooks import queue_changes, record_change, record_created
from relais.pipeline.models import Author, Direction, Post, Routing


def route_posts(
    workspace_id: int,
    posts: Sequence[Post],
    accounts: dict[str, ConnectedAccount],
    *,
    now: datetime,
    orphans_ok: bool = False,
) -> int:
    """Route posts in place (their ``routing`` and ``account``); return how many joined one."""
    pending = sorted(
        (p for p in posts if p.routing == Routing.PENDING), key=lambda p: (p.created_at, p.pk)
    )
    if not pending:
        return 0
    conversation_of = _conversations_of_parents(workspace_id, pending)
    joined: list[tuple[Post, tuple[int, str]]] = []
    new_keys: dict[tuple[int, str], Post] = {}
    in_this_call = {post.pk: post for post in pending}
    for post in pending:
        if _must_wait(post, in_this_call, conversation_of, orphans_ok=orphans_ok):
            post.routing = Routing.WAITING_PARENT
            continue
        key = conversation_of.get(post.parent_id) if post.parent_id else None
        if key is None:
            key = _new_conversation_key(post, accounts)
            if key is not None:
                new_keys.setdefault(key, post)
        if key is None:
            post.routing = Routing.NOT_ADDRESSED
            continue
        post.routing = Routing.ROUTED
        if post.account_id is None:
            post.account_id = key[0]
        conversation_of[post.pk] = key
        joined.append((post, key))
    if joined:
        _store_messages(workspace_id, joined, new_keys)
    return len(joined)


def _must_wait(
    post: Post,
    in_this_call: dict[int, Post],
    conversation_of: dict[int | None, tuple[int, str]],
    *,
    orphans_ok: bool,
) -> bool:
    """A reply waits for its parent to be stored, and for the parent itself to be routed.

    Without the second rule, a reply whose parent is still waiting (its own parent is in a
    batch another worker has not committed yet) would open a conversation of its own.
    """
    if post.in_reply_to_remote_id and post.parent_id is None:
        return not orphans_ok
    if post.parent_id is None or post.parent_id in conversation_of:
        return False
    parent = in_this_call.get(post.parent_id) or post.parent
    return parent is not None and parent.routing == Routing.WAITING_PARENT


def _conversations_of_parents(
    workspace_id: int, posts: Sequence[Post]
) -> dict[int | None, tuple[int, str]]:
    parent_ids = {p.parent_id for p in posts if p.parent_id}
    rows = (
        Message.objects.in_workspace(workspace_id)
        .filter(post_id__in=parent_ids)
        .values_list("post_id", "conversation__account_id", "conversation__thread_key")
    )
    return {post_id: (account_id, thread_key) for post_id, account_id, thread_key in rows}


def _new_conversation_key(
    post: Post, accounts: dict[str, ConnectedAccount]
) -> tuple[int, str] | None:
    if post.direction == Direction.OUTBOUND:
        return None
    account = _addressed_account(post, accounts)
    if account is None:
        return None
    if post.kind == PostKind.PRIVATE_MESSAGE and not post.parent_id:
        return (account.pk, f"dm:{post.author.remote_id}")
    return (account.pk, post.thread_root_remote_id or post.remote_id)


def _addressed_account(
    post: Post, accounts: dict[str, ConnectedAccount]
) -> ConnectedAccount | None:
    if post.account_id is not None:
        return next((a for a in accounts.values() if a.pk == post.account_id), None)
    if post.parent is not None and post.parent.direction == Direction.OUTBOUND:
        parent_account = accounts.get(post.parent.author.handle.lower())
        if parent_account is not None:
            return parent_account
    if post.kind == PostKind.PRIVATE_MESSAGE and post.raw.get("recipient"):
        return accounts.get(str(post.raw["recipient"]).lower())
    for handle in post.mentions:
        if account := accounts.get(str(handle).lower()):
            return account
    return None


def _store_messages(
    workspace_id: int,
    joined: list[tuple[Post, tuple[int, str]]],
    new_keys: dict[tuple[int, str], Post],
) -> None:
    Conversation.objects.bulk_create(
        [
            Conversation(
                workspace_id=workspace_id,
                account_id=account_id,
                thread_key=thread_key,
                customer_id=first.author_id,
                preview=first.text[:280],
                last_message_at=first.created_at,
            )
            for (account_id, thread_key), first in new_keys.items()
        ],
        ignore_conflicts=True,
    )
    new_contacts = _ensure_contacts(workspace_id, {post.author_id for post in new_keys.values()})
    keys = {key for _post, key in joined}
    conversations = {
        (c.account_id, c.thread_key): c
        for c in Conversation.objects.in_workspace(workspace_id).filter(
            account_id__in={account_id for account_id, _ in keys},
            thread_key__in={thread_key for _, thread_key in keys},
        )
    }
    Message.objects.bulk_create(
        [
            Message(
                workspace_id=workspace_id,
                conversation=conversations[key],
                post=post,
                direction=post.direction,
                created_at=post.created_at,
            )
            for post, key in joined
        ],
        ignore_conflicts=True,
    )
    touched = {conversations[key].pk: conversations[key] for _post, key in joined}
    _refresh_conversations(workspace_id, touched, joined, conversations, new_contacts)


def _ensure_contacts(workspace_id: int, author_ids: set[int]) -> list[int]:
    """One contact per customer; safe when two workers meet the same new customer at once.

    Returns the new contacts' ids (both workers may return one they raced for: its event id is
    derived from the contact, so receivers get it once)."""
    missing = list(
        Author.objects.in_workspace(workspace_id)
        .filter(pk__in=author_ids, contact__isnull=True)
        .values_list("pk", "name", "handle")
    )
    if not missing:
        return []
    Contact.objects.bulk_create(
        [
            Contact(workspace_id=workspace_id, display_name=name or handle, origin_author_id=pk)
            for pk, name, handle in missing
        ],
        ignore_conflicts=True,
    )
    new_customers = [pk for pk, _name, _handle in missing]
    Author.objects.filter(pk__in=new_customers, contact__isnull=True).update(
        contact=Subquery(Contact.objects.filter(origin_author=OuterRef("pk")).values("pk")[:1])
    )
    return list(
        Contact.objects.filter(origin_author_id__in=new_customers)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _refresh_conversations(
    workspace_id: int,
    touched: dict[int, Conversation],
    joined: list[tuple[Post, tuple[int, str]]],
    conversations: dict[tuple[int, str], Conversation],
    new_contacts: list[int],
) -> None:
    """Recount rather than increment, so a batch processed twice leaves the same numbers."""
    opened = {pk: c for pk, c in touched.items() if c.message_count == 0}
    stats = (
        Message.objects.filter(conversation_id__in=touched)
        .values("conversation_id")
        .annotate(count=Count("id"), last=Max("created_at"))
    )
    for row in stats:
        conversation = touched[row["conversation_id"]]
        conversation.message_count = row["count"]
        conversation.last_message_at = row["last"]
    policy = SlaPolicy.objects.in_workspace(workspace_id).first()
    status_before = {pk: c.status for pk, c in touched.items()}
    first_posts: dict[int, Post] = {}
    for post, key in joined:
        conversation = conversations[key]
        apply_message(conversation, post, policy)
        first_posts.setdefault(conversation.pk, post)
    Conversation.objects.bulk_update(list(touched.values()), PROGRESS_FIELDS)
    record_created(workspace_id, sorted(opened), new_contacts, clock.now())
    if opened:
        auto_assign(workspace_id, [(c, first_posts[pk]) for pk, c in opened.items()])
    reopened = [
        record_change(
            workspace_id,
            None,
            "conversation.status_changed",
            conversation,
            queue=False,
            before=status_before[pk],
            after=conversation.status,
            reason="customer_wrote",
        )
        for pk, conversation in touched.items()
        if pk not in opened and conversation.status != status_before[pk]
    ]
    queue_changes(workspace_id, [change for change in reopened if change])
    publish_event(workspace_id, "conversations.changed", {"ids": sorted(touched)[:200]})
