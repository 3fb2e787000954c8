"""The care inbox in the REST API: conversations, messages, notes, assignment, status, replies,
suggestions, contacts and teams, all scoped to the token's workspace."""

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from relais.accounts.actions import check_capability
from relais.accounts.roles import Capability
from relais.core import clock
from relais.core.api import request_token, run_action
from relais.inbox import actions, priority, queries, suggest
from relais.inbox.models import Contact, Conversation, ReplyState
from relais.pipeline.schemas import AuthorOut, PostOut

router = Router(tags=["inbox"])


class ConversationOut(Schema):
    id: int
    status: str
    network: str
    account_handle: str
    customer: AuthorOut
    contact_id: int | None
    preview: str
    message_count: int
    last_message_at: datetime
    assignee: str | None
    assignee_id: int | None
    team: str | None
    tags: list[str]
    priority: int
    waiting_since: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_seconds: float | None

    @staticmethod
    def resolve_network(obj: Conversation) -> str:
        return str(obj.account.network)

    @staticmethod
    def resolve_account_handle(obj: Conversation) -> str:
        return str(obj.account.handle)

    @staticmethod
    def resolve_contact_id(obj: Conversation) -> int | None:
        return obj.customer.contact_id

    @staticmethod
    def resolve_assignee(obj: Conversation) -> str | None:
        return obj.assignee.username if obj.assignee else None

    @staticmethod
    def resolve_team(obj: Conversation) -> str | None:
        return obj.team.name if obj.team else None

    @staticmethod
    def resolve_priority(obj: Conversation) -> int:
        return priority.score(obj.urgent_since, clock.now())


class MessageOut(Schema):
    direction: str
    post: PostOut


class NoteOut(Schema):
    id: int
    author: str
    text: str
    created_at: datetime
    mentions: list[str]

    @staticmethod
    def resolve_author(obj: Any) -> str:
        return str(obj.author.username)

    @staticmethod
    def resolve_mentions(obj: Any) -> list[str]:
        return [user.username for user in obj.mentions.all()]


class ReplyOut(Schema):
    id: int
    state: str
    error: str
    text: str
    private: bool
    author: str
    post_id: int | None

    @staticmethod
    def resolve_author(obj: Any) -> str:
        return str(obj.author.username)


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut]
    notes: list[NoteOut]
    unsent_replies: list[ReplyOut]

    @staticmethod
    def resolve_messages(obj: Conversation) -> Any:
        return queries.thread(obj)

    @staticmethod
    def resolve_notes(obj: Conversation) -> Any:
        return queries.notes(obj)

    @staticmethod
    def resolve_unsent_replies(obj: Conversation) -> Any:
        return queries.unsent_replies(obj)


class ConversationFilter(Schema):
    status: str = ""
    assignee: str = Field("", description='"me", "none" or a user id')
    team: int | None = None
    breached: bool = False
    tag: str = ""
    sort: str = Field("recent", description='"priority" or "recent"')


class ReplyIn(Schema):
    text: str
    private: bool = False
    idempotency_key: str


class StatusIn(Schema):
    status: str
    expected: str | None = Field(None, description="the status you saw; 409 if it changed")


class AssignIn(Schema):
    assignee_id: int | None
    expected_assignee_id: int | None = Field(
        -1, description="who you saw holding it (null: nobody); 409 if it changed"
    )


class NoteIn(Schema):
    text: str


class TagsIn(Schema):
    tags: list[str]


class ErrorOut(Schema):
    detail: str


ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    return queries.conversation(request_token(request).workspace_id, conversation_id)


@router.get("/conversations", response=list[ConversationOut])
@paginate(LimitOffsetPagination)
def list_conversations(request: HttpRequest, filters: Query[ConversationFilter]) -> Any:
    token = request_token(request)
    return queries.conversations(
        token.workspace_id,
        user=token.user,
        status=filters.status,
        assignee=filters.assignee,
        team=filters.team,
        breached=filters.breached,
        tag=filters.tag,
        sort=filters.sort if filters.sort in queries.SORTS else "recent",
    )


@router.get("/conversations/{conversation_id}", response={200: ConversationDetailOut, **ERRORS})
def get_conversation(request: HttpRequest, conversation_id: int) -> Any:
    return _conversation(request, conversation_id)


@router.post(
    "/conversations/{conversation_id}/reply",
    response={201: PostOut, 202: ReplyOut, **ERRORS},
    description="201 with the post when sent; 202 with the kept reply when it waits for "
    "approval or the network refused it (state failed, with the reason).",
)
def reply(request: HttpRequest, conversation_id: int, body: ReplyIn) -> Any:
    token = request_token(request)
    found = _conversation(request, conversation_id)
    sent = run_action(
        lambda: actions.do_submit_reply(
            token.user,
            found,
            body.text,
            idempotency_key=body.idempotency_key[:64],
            private=body.private,
        )
    )
    if sent.state == ReplyState.SENT and sent.post is not None:
        return Status(201, sent.post)
    return Status(202, sent)


@router.post(
    "/conversations/{conversation_id}/replies/{reply_id}/retry",
    response={200: ReplyOut, **ERRORS},
)
def retry_reply(request: HttpRequest, conversation_id: int, reply_id: int) -> Any:
    found = queries.outgoing_reply(
        request_token(request).workspace_id, conversation_id, str(reply_id)
    )
    return run_action(lambda: actions.do_retry_reply(request_token(request).user, found))


@router.post(
    "/conversations/{conversation_id}/replies/{reply_id}/approve",
    response={200: ReplyOut, **ERRORS},
)
def approve_reply(request: HttpRequest, conversation_id: int, reply_id: int) -> Any:
    found = queries.outgoing_reply(
        request_token(request).workspace_id, conversation_id, str(reply_id)
    )
    return run_action(lambda: actions.do_approve_reply(request_token(request).user, found))


@router.post("/conversations/{conversation_id}/status", response={200: ConversationOut, **ERRORS})
def change_status(request: HttpRequest, conversation_id: int, body: StatusIn) -> Any:
    found = _conversation(request, conversation_id)
    run_action(
        lambda: actions.do_change_status(
            request_token(request).user, found, body.status, expected=body.expected
        )
    )
    return _conversation(request, conversation_id)


@router.post("/conversations/{conversation_id}/assign", response={200: ConversationOut, **ERRORS})
def assign(request: HttpRequest, conversation_id: int, body: AssignIn) -> Any:
    token = request_token(request)
    found = _conversation(request, conversation_id)
    assignee = None
    if body.assignee_id is not None:
        assignee = queries.members(token.workspace_id).filter(pk=body.assignee_id).first()
        if assignee is None:
            raise Http404
    expected = actions.NOT_CHECKED if body.expected_assignee_id == -1 else body.expected_assignee_id
    run_action(
        lambda: actions.do_assign(token.user, found, assignee, expected_assignee_id=expected)
    )
    return _conversation(request, conversation_id)


@router.get("/conversations/{conversation_id}/notes", response={200: list[NoteOut], **ERRORS})
def list_notes(request: HttpRequest, conversation_id: int) -> Any:
    return queries.notes(_conversation(request, conversation_id))


@router.post("/conversations/{conversation_id}/notes", response={201: NoteOut, **ERRORS})
def add_note(request: HttpRequest, conversation_id: int, body: NoteIn) -> Any:
    found = _conversation(request, conversation_id)
    return Status(
        201, run_action(lambda: actions.do_add_note(request_token(request).user, found, body.text))
    )


@router.put("/conversations/{conversation_id}/tags", response={200: ConversationOut, **ERRORS})
def set_tags(request: HttpRequest, conversation_id: int, body: TagsIn) -> Any:
    found = _conversation(request, conversation_id)
    run_action(lambda: actions.do_set_tags(request_token(request).user, found, body.tags))
    return _conversation(request, conversation_id)


@router.get(
    "/conversations/{conversation_id}/suggestions",
    response={200: list[str], **ERRORS},
    description="The three most relevant of the brand's past replies, adapted.",
)
def suggestions(request: HttpRequest, conversation_id: int) -> Any:
    return suggest.suggest_for(_conversation(request, conversation_id), request_token(request).user)


# Contacts ------------------------------------------------------------------------------------


class IdentityOut(Schema):
    network: str
    handle: str
    name: str
    followers: int | None


class ContactOut(Schema):
    id: int
    display_name: str
    attributes: dict[str, str]
    tags: list[str]
    created_at: datetime


class ContactDetailOut(ContactOut):
    identities: list[IdentityOut]
    conversation_ids: list[int]
    notes: list[NoteOut]

    @staticmethod
    def resolve_identities(obj: Contact) -> Any:
        return queries.identities(obj)

    @staticmethod
    def resolve_conversation_ids(obj: Contact) -> list[int]:
        return list(queries.contact_conversations(obj).values_list("pk", flat=True)[:500])

    @staticmethod
    def resolve_notes(obj: Contact) -> Any:
        return queries.contact_notes(obj)


class ContactIn(Schema):
    display_name: str | None = None
    attributes: dict[str, str] | None = None
    tags: list[str] | None = None


class MergeIn(Schema):
    merged_id: int = Field(description="the contact folded into this one (then deleted)")


@router.get("/contacts", response=list[ContactOut])
@paginate(LimitOffsetPagination)
def list_contacts(request: HttpRequest, q: str = "") -> Any:
    return queries.contacts(request_token(request).workspace_id, q.strip())


@router.get("/contacts/{contact_id}", response={200: ContactDetailOut, **ERRORS})
def get_contact(request: HttpRequest, contact_id: int) -> Any:
    return queries.contact(request_token(request).workspace_id, contact_id)


@router.patch("/contacts/{contact_id}", response={200: ContactDetailOut, **ERRORS})
def update_contact(request: HttpRequest, contact_id: int, body: ContactIn) -> Any:
    found = queries.contact(request_token(request).workspace_id, contact_id)
    return run_action(
        lambda: actions.do_update_contact(
            request_token(request).user,
            found,
            display_name=body.display_name,
            attributes=body.attributes,
            tags=body.tags,
        )
    )


@router.post("/contacts/{contact_id}/merge", response={200: ContactDetailOut, **ERRORS})
def merge_contacts(request: HttpRequest, contact_id: int, body: MergeIn) -> Any:
    workspace_id = request_token(request).workspace_id
    keep = queries.contact(workspace_id, contact_id)
    merged = queries.contact(workspace_id, body.merged_id)
    return run_action(lambda: actions.do_merge_contacts(request_token(request).user, keep, merged))


@router.post("/contacts/{contact_id}/notes", response={201: NoteOut, **ERRORS})
def add_contact_note(request: HttpRequest, contact_id: int, body: NoteIn) -> Any:
    found = queries.contact(request_token(request).workspace_id, contact_id)
    return Status(
        201,
        run_action(
            lambda: actions.do_add_contact_note(request_token(request).user, found, body.text)
        ),
    )


class TeamOut(Schema):
    id: int
    name: str
    members: list[str]

    @staticmethod
    def resolve_members(obj: Any) -> list[str]:
        return [user.username for user in obj.members.all()]


@router.get("/teams", response=list[TeamOut])
def list_teams(request: HttpRequest) -> Any:
    return queries.teams(request_token(request).workspace_id)


# CRM webhooks (workspace admins) --------------------------------------------------------------


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    failing: bool
    consecutive_failures: int
    last_error: str
    next_attempt_at: datetime | None
    last_delivered_at: datetime | None
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="the signing secret, returned this once")


class WebhookIn(Schema):
    url: str
    events: list[str] = Field(description="event types, e.g. conversation.assigned")


class WebhookPatch(Schema):
    events: list[str] | None = None
    active: bool | None = None


class DeliveryOut(Schema):
    event_id: str
    event_type: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None

    @staticmethod
    def resolve_event_id(obj: Any) -> str:
        return str(obj.event_id)


def _webhook_admin(request: HttpRequest, endpoint_id: int | None = None) -> Any:
    """Refuse (403) a token whose user may not manage webhooks; the endpoint when asked."""
    token = request_token(request)
    run_action(lambda: check_capability(token.user, token.workspace_id, Capability.MANAGE_ACCOUNTS))
    if endpoint_id is None:
        return None
    return queries.webhook_endpoint(token.workspace_id, endpoint_id)


@router.get("/webhooks", response={200: list[WebhookOut], **ERRORS})
def list_webhooks(request: HttpRequest) -> Any:
    _webhook_admin(request)
    return queries.webhook_endpoints(request_token(request).workspace_id)


@router.post("/webhooks", response={201: WebhookCreatedOut, **ERRORS})
def create_webhook(request: HttpRequest, body: WebhookIn) -> Any:
    token = request_token(request)
    endpoint, secret = run_action(
        lambda: actions.do_create_webhook_endpoint(
            token.user, token.workspace, body.url, body.events
        )
    )
    endpoint.secret = secret  # the response carries the clear secret, once
    return Status(201, endpoint)


@router.patch("/webhooks/{endpoint_id}", response={200: WebhookOut, **ERRORS})
def update_webhook(request: HttpRequest, endpoint_id: int, body: WebhookPatch) -> Any:
    endpoint = _webhook_admin(request, endpoint_id)
    return run_action(
        lambda: actions.do_update_webhook_endpoint(
            request_token(request).user, endpoint, events=body.events, active=body.active
        )
    )


@router.post("/webhooks/{endpoint_id}/retry", response={200: WebhookOut, **ERRORS})
def retry_webhook(request: HttpRequest, endpoint_id: int) -> Any:
    endpoint = _webhook_admin(request, endpoint_id)
    run_action(lambda: actions.do_retry_webhook_endpoint(request_token(request).user, endpoint))
    return queries.webhook_endpoint(endpoint.workspace_id, endpoint.pk)


@router.post("/webhooks/{endpoint_id}/discard", response={200: WebhookOut, **ERRORS})
def discard_webhook_events(request: HttpRequest, endpoint_id: int) -> Any:
    """Drop the events a paused endpoint keeps, instead of sending them when it resumes."""
    endpoint = _webhook_admin(request, endpoint_id)
    run_action(lambda: actions.do_discard_webhook_events(request_token(request).user, endpoint))
    return queries.webhook_endpoint(endpoint.workspace_id, endpoint.pk)


@router.delete("/webhooks/{endpoint_id}", response={204: None, **ERRORS})
def delete_webhook(request: HttpRequest, endpoint_id: int) -> Any:
    endpoint = _webhook_admin(request, endpoint_id)
    run_action(lambda: actions.do_delete_webhook_endpoint(request_token(request).user, endpoint))
    return Status(204, None)


@router.get("/webhooks/{endpoint_id}/deliveries", response={200: list[DeliveryOut], **ERRORS})
def list_deliveries(request: HttpRequest, endpoint_id: int) -> Any:
    """The latest 50 events for this endpoint, newest first."""
    return queries.webhook_deliveries(_webhook_admin(request, endpoint_id))
