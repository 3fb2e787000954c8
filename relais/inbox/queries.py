"""Reading conversations, contacts, teams and rules, always within one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404

from relais.accounts.models import User
from relais.core import clock
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
    WebhookDelivery,
    WebhookEndpoint,
)
from relais.pipeline.models import Author

SORTS = ("priority", "recent")


@dataclass(frozen=True)
class InboxFilter:
    status: str = "unresolved"
    assignee: str = ""  # "me", "none", or a user id
    team: int | None = None
    breached: bool = False
    tag: str = ""
    mentions: bool = False
    sort: str = "priority"


def breached_q(now: datetime) -> Q:
    late_first = Q(first_response_at__isnull=True, first_response_due__lt=now)
    late_resolution = Q(resolution_due__lt=now)
    return ~Q(status=Status.RESOLVED) & (late_first | late_resolution)


def conversations(
    workspace_id: int, *, status: str = "", user: User | None = None, **filters: object
) -> QuerySet[Conversation]:
    chosen = InboxFilter(status=status, **filters)  # type: ignore[arg-type]
    rows = Conversation.objects.in_workspace(workspace_id).select_related(
        "customer", "account", "assignee", "team"
    )
    if chosen.status in Status.values:
        rows = rows.filter(status=chosen.status)
    elif chosen.status == "unresolved":
        rows = rows.exclude(status=Status.RESOLVED)
    if chosen.assignee == "me" and user is not None:
        rows = rows.filter(assignee=user)
    elif chosen.assignee == "none":
        rows = rows.filter(assignee__isnull=True)
    elif chosen.assignee.isdigit():
        rows = rows.filter(assignee_id=int(chosen.assignee))
    if chosen.team:
        rows = rows.filter(team_id=chosen.team)
    if chosen.breached:
        rows = rows.filter(breached_q(clock.now()))
    # EXISTS rather than IN or a join: the list still walks its index in order and probes
    # each entry, so the first page stops after a few hundred probes (no DISTINCT, no sort).
    if chosen.tag:
        tagged = ConversationTag.objects.in_workspace(workspace_id).filter(
            conversation=OuterRef("pk"), tag=chosen.tag.lower()
        )
        rows = rows.filter(Exists(tagged))
    if chosen.mentions and user is not None:
        mentioning = Note.objects.in_workspace(workspace_id).filter(
            conversation=OuterRef("pk"), mentions=user
        )
        rows = rows.filter(Exists(mentioning))
    if chosen.sort == "priority":
        return rows.order_by(F("urgent_since").asc(nulls_last=True), "-last_message_at", "-pk")
    return rows.order_by("-last_message_at", "-pk")


@dataclass(frozen=True, slots=True)
class ListRow:
    """What a row of the inbox list shows, read as plain values: building five model objects
    per row (conversation, customer, account, assignee, team) was a fifth of a list page."""

    pk: int
    status: str
    preview: str
    tags: list[str]
    message_count: int
    last_message_at: datetime
    urgent_since: datetime | None
    first_response_at: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    customer: str
    account: str
    assignee: str
    team: str


LIST_COLUMNS = (
    "pk",
    "status",
    "preview",
    "tags",
    "message_count",
    "last_message_at",
    "urgent_since",
    "first_response_at",
    "first_response_due",
    "resolution_due",
    "customer__name",
    "customer__handle",
    "account__handle",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "team__name",
)


def _list_row(values: tuple[Any, ...]) -> ListRow:
    (pk, status, preview, tags, count, last_message_at, urgent_since, first_response_at,
     first_response_due, resolution_due, name, handle, account, username, first, last,
     team) = values  # fmt: skip
    return ListRow(
        pk=pk,
        status=status,
        preview=preview,
        tags=tags,
        message_count=count,
        last_message_at=last_message_at,
        urgent_since=urgent_since,
        first_response_at=first_response_at,
        first_response_due=first_response_due,
        resolution_due=resolution_due,
        customer=name or handle,
        account=account,
        assignee=f"{first or ''} {last or ''}".strip() or username or "",
        team=team or "",
    )


@dataclass(frozen=True)
class ListPage:
    """One page of a list, without counting the whole list (a count reads every row)."""

    number: int
    object_list: list[ListRow]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def page_of(rows: QuerySet[Conversation], number: str | None, size: int) -> ListPage:
    """One page of a conversation list: ids first (in index order), then the rows.

    Sorting on ids alone, from an index that holds the list's order, reads only the page's
    entries; the rows are then fetched with their customer, account and assignee joined.
    Deep pages use OFFSET: the ids come from an index-only scan, so skipping a thousand
    entries costs under a millisecond (EXPLAIN ANALYZE, PostgreSQL and SQLite).
    """
    page = int(number) if number and number.isdigit() and int(number) > 0 else 1
    ids = list(rows.values_list("pk", flat=True)[(page - 1) * size : page * size + 1])
    found = {
        values[0]: _list_row(values)
        for values in rows.order_by().filter(pk__in=ids[:size]).values_list(*LIST_COLUMNS)
    }
    return ListPage(
        number=page,
        object_list=[found[pk] for pk in ids[:size] if pk in found],
        has_next=len(ids) > size,
    )


def conversation(workspace_id: int, conversation_id: int) -> Conversation:
    found = (
        Conversation.objects.in_workspace(workspace_id)
        .select_related("customer__contact", "account", "assignee", "team")
        .filter(pk=conversation_id)
        .first()
    )
    if found is None:
        raise Http404
    return found


def neighbours(
    rows: QuerySet[Conversation], current_id: int, window: int = 200
) -> tuple[int | None, int | None]:
    """The conversations before and after one in a list, for next/previous navigation."""
    ids = list(rows.values_list("pk", flat=True)[:window])
    if current_id not in ids:
        return None, ids[0] if ids else None
    index = ids.index(current_id)
    return (ids[index - 1] if index else None), (ids[index + 1] if index + 1 < len(ids) else None)


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


def unsent_replies(conversation: Conversation) -> list[OutgoingReply]:
    """Replies kept in the conversation that have not gone out: failed or awaiting approval."""
    return list(
        OutgoingReply.objects.in_workspace(conversation.workspace_id)
        .filter(conversation=conversation)
        .exclude(state=ReplyState.SENT)
        .select_related("author")
        .order_by("created_at")
    )


def outgoing_reply(workspace_id: int, conversation_id: int, reply_id: str) -> OutgoingReply:
    found = (
        OutgoingReply.objects.in_workspace(workspace_id)
        .filter(conversation_id=conversation_id, pk=reply_id if reply_id.isdigit() else 0)
        .select_related("conversation__account", "conversation__customer", "author")
        .first()
    )
    if found is None:
        raise Http404
    return found


def draft(conversation: Conversation, user: User) -> str:
    found = Draft.objects.filter(conversation=conversation, user=user).first()
    return found.text if found else ""


VIEWING_WINDOW = timedelta(seconds=30)
TYPING_WINDOW = timedelta(seconds=12)


@dataclass(frozen=True)
class Presence:
    name: str
    typing: bool


def others_here(conversation: Conversation, user: User) -> list[Presence]:
    """Colleagues with this conversation open right now, and whether they are typing."""
    now = clock.now()
    rows = (
        Viewer.objects.filter(conversation=conversation, seen_at__gte=now - VIEWING_WINDOW)
        .exclude(user=user)
        .select_related("user")
        .order_by("user__username")
    )
    return [
        Presence(
            name=row.user.get_full_name() or row.user.username,
            typing=row.typing_at is not None and row.typing_at >= now - TYPING_WINDOW,
        )
        for row in rows
    ]


def canned_replies(workspace_id: int) -> list[CannedReply]:
    return list(CannedReply.objects.in_workspace(workspace_id).order_by("title"))


def approval_required(workspace_id: int) -> bool:
    found = InboxSettings.objects.in_workspace(workspace_id).first()
    return bool(found and found.approval_required)


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


# Badges count up to this many and then show "1000+": counting exactly reads every matching
# row on each page load, which is most of the list's time at 100,000 conversations.
COUNT_CAP = 1000


def capped_counts(workspace_id: int) -> dict[str, int]:
    """The inbox's badges: each status, and ``breached``, counted up to ``COUNT_CAP``.

    One statement of capped subqueries, each an index range read up to its LIMIT: six
    separate counts cost six round trips, a third of the SQL time of a list page.
    """
    rows = Conversation.objects.in_workspace(workspace_id)
    counted = {status: rows.filter(status=status) for status in Status.values}
    counted["breached"] = rows.filter(breached_q(clock.now()))
    selects: list[str] = []
    params: list[Any] = []
    for subset in counted.values():
        sql, subset_params = subset.values("pk")[:COUNT_CAP].query.sql_with_params()
        selects.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")  # noqa: S608 - compiled by Django, values are parameters
        params.extend(subset_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects), params)
        return dict(zip(counted, cursor.fetchone(), strict=True))


def breached_count(workspace_id: int) -> int:
    """Unresolved conversations past a deadline, counted up to ``COUNT_CAP``."""
    late = Conversation.objects.in_workspace(workspace_id).filter(breached_q(clock.now()))
    return late.values("pk")[:COUNT_CAP].count()


def recent_breaches(workspace_id: int, since: datetime, limit: int = 5) -> list[Conversation]:
    """Unresolved conversations whose breach was announced since ``since``, latest first."""
    announced = Q(first_response_breached_at__gte=since) | Q(resolution_breached_at__gte=since)
    return list(
        Conversation.objects.in_workspace(workspace_id)
        .exclude(status=Status.RESOLVED)
        .filter(announced)
        .select_related("customer")
        .order_by("-last_message_at", "-pk")[:limit]
    )


# Contacts ------------------------------------------------------------------------------------


def contacts(workspace_id: int, search: str = "") -> QuerySet[Contact]:
    rows = Contact.objects.in_workspace(workspace_id)
    if search:
        rows = rows.filter(
            Q(display_name__icontains=search) | Q(authors__handle__icontains=search)
        ).distinct()
    return rows.annotate(
        identity_count=Count("authors", distinct=True),
        latest_conversation=Max("authors__conversations__id"),
    ).order_by("display_name", "pk")


def contact(workspace_id: int, contact_id: int) -> Contact:
    found = Contact.objects.in_workspace(workspace_id).filter(pk=contact_id).first()
    if found is None:
        raise Http404
    return found


def contact_of(workspace_id: int, conversation_id: int) -> Contact:
    """The contact of a conversation's customer (pages reach contacts this way)."""
    found = (
        Contact.objects.in_workspace(workspace_id)
        .filter(authors__conversations__id=conversation_id)
        .first()
    )
    if found is None:
        raise Http404
    return found


def contact_links(workspace_id: int, contact_ids: list[int]) -> dict[int, int]:
    """A conversation of each contact, to link to its page."""
    return dict(
        Contact.objects.in_workspace(workspace_id)
        .filter(pk__in=contact_ids)
        .annotate(latest=Max("authors__conversations__id"))
        .values_list("pk", "latest")
    )


def identities(contact: Contact) -> list[Author]:
    return list(
        Author.objects.in_workspace(contact.workspace_id)
        .filter(contact=contact)
        .order_by("network", "handle")
    )


def contact_conversations(contact: Contact) -> QuerySet[Conversation]:
    return (
        Conversation.objects.in_workspace(contact.workspace_id)
        .filter(customer__contact=contact)
        .select_related("customer", "account", "assignee")
        .order_by("-last_message_at", "-pk")
    )


def contact_notes(contact: Contact) -> list[Note]:
    return list(
        Note.objects.in_workspace(contact.workspace_id)
        .filter(contact=contact)
        .select_related("author")
        .order_by("created_at")
    )


def merge_suggestions(
    workspace_id: int, contact: Contact | None = None, limit: int = 20
) -> list[list[Contact]]:
    """Groups of contacts that share a handle or a display name (case-insensitive)."""
    authors = Author.objects.in_workspace(workspace_id).filter(contact__isnull=False)
    if contact is not None:
        own = identities(contact)
        handles = {a.handle.lower() for a in own}
        names = {contact.display_name.lower()} | {a.name.lower() for a in own if a.name}
        authors = authors.annotate(h=Lower("handle"), n=Lower("name")).filter(
            Q(h__in=handles) | Q(n__in=names)
        )
        contact_ids = set(authors.values_list("contact_id", flat=True)) - {contact.pk}
        others = list(Contact.objects.in_workspace(workspace_id).filter(pk__in=contact_ids))
        return [[contact, *others]] if others else []
    groups: list[set[int]] = []
    for field in ("handle", "name"):
        shared = (
            authors.exclude(**{field: ""})
            .annotate(key=Lower(field))
            .values("key")
            .annotate(contacts=Count("contact", distinct=True))
            .filter(contacts__gt=1)
            .values_list("key", flat=True)[:limit]
        )
        for key in shared:
            ids = set(
                authors.annotate(key=Lower(field))
                .filter(key=key)
                .values_list("contact_id", flat=True)
            )
            if ids not in groups:
                groups.append(ids)
    by_id = Contact.objects.in_workspace(workspace_id).in_bulk({i for g in groups for i in g})
    return [sorted((by_id[i] for i in g), key=lambda c: c.pk) for g in groups[:limit]]


# Teams, rules, agents, SLA -------------------------------------------------------------------


def teams(workspace_id: int) -> list[Team]:
    return list(
        Team.objects.in_workspace(workspace_id).prefetch_related("members").order_by("name")
    )


def team_choices(workspace_id: int) -> list[Team]:
    """Teams for a filter menu: names only, without their members."""
    return list(Team.objects.in_workspace(workspace_id).only("pk", "name").order_by("name"))


def rules(workspace_id: int) -> list[AssignmentRule]:
    return list(
        AssignmentRule.objects.in_workspace(workspace_id)
        .select_related("team")
        .order_by("position", "pk")
    )


def members(workspace_id: int) -> QuerySet[User]:
    return User.objects.filter(memberships__workspace_id=workspace_id).order_by("username")


def agent_states(workspace_id: int) -> dict[int, AgentState]:
    return {s.user_id: s for s in AgentState.objects.in_workspace(workspace_id)}


def sla_policy(workspace_id: int) -> SlaPolicy | None:
    return SlaPolicy.objects.in_workspace(workspace_id).first()


def open_loads(workspace_id: int) -> dict[int, int]:
    return dict(
        Conversation.objects.in_workspace(workspace_id)
        .exclude(status=Status.RESOLVED)
        .filter(assignee__isnull=False)
        .values("assignee_id")
        .annotate(count=Count("id"))
        .values_list("assignee_id", "count")
    )


def webhook_endpoints(workspace_id: int) -> list[WebhookEndpoint]:
    """The workspace's CRM webhooks, each with how many events wait to go out."""
    waiting = Count("deliveries", filter=Q(deliveries__delivered_at__isnull=True))
    return list(
        WebhookEndpoint.objects.in_workspace(workspace_id)
        .annotate(waiting=waiting)
        .order_by("created_at", "pk")
    )


def webhook_endpoint(workspace_id: int, endpoint_id: int) -> WebhookEndpoint:
    found = WebhookEndpoint.objects.in_workspace(workspace_id).filter(pk=endpoint_id).first()
    if found is None:
        raise Http404
    return found


def webhook_deliveries(endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-pk")[:limit])
