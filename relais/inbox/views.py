"""Pages of the care inbox. Thin: authorize (decorator), call a query or action, render."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable
from datetime import time, timedelta
from typing import Any, TypeVar, cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.models import User
from relais.accounts.roles import Capability, role_allows
from relais.core import clock
from relais.core.errors import RelaisError
from relais.core.models import WorkspaceOwned
from relais.inbox import actions, kpis, queries, suggest, variables
from relais.inbox.models import (
    AssignmentRule,
    CannedReply,
    Conversation,
    ReplyState,
    Status,
    Team,
    WebhookEndpoint,
)
from relais.inbox.webhooks import EVENT_TYPES

INBOX_PAGE_SIZE = 50
BREACH_NOTICE_WINDOW = timedelta(minutes=15)
CONTACTS_PAGE_SIZE = 50


def _filters(params: QueryDict) -> dict[str, Any]:
    team = params.get("team", "")
    sort = params.get("sort", "")
    return {
        "status": params.get("status", "unresolved"),
        "assignee": params.get("assignee", ""),
        "team": int(team) if team.isdigit() else None,
        "breached": params.get("breached") == "1",
        "tag": params.get("tag", "").strip().lower(),
        "mentions": params.get("mentions") == "1",
        "sort": sort if sort in queries.SORTS else "priority",
    }


def _rows_context(request: WorkspaceRequest) -> dict[str, object]:
    """What the list itself needs (the part live updates reload)."""
    filters = _filters(request.GET)
    rows = queries.conversations(request.workspace.pk, user=request.user, **filters)
    page = queries.page_of(rows, request.GET.get("page"), INBOX_PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "page": page,
        "conversations": page.object_list,
        "filters": filters,
        "status": filters["status"],
        "query": query.urlencode(),
    }


def _mark_seen(request: WorkspaceRequest) -> None:
    """Presence for round robin, at most every ``SEEN_EVERY`` per browser session.

    The session (saved on every page anyway) remembers the last heartbeat, so most page loads
    skip the action's two statements: two round trips to PostgreSQL on a busy server.
    """
    key = f"inbox_seen_{request.workspace.pk}"
    now = clock.now().timestamp()
    if 0 <= now - request.session.get(key, 0.0) < actions.SEEN_EVERY.total_seconds():
        return
    actions.do_mark_seen(request.user, request.workspace.pk)
    request.session[key] = now


@workspace_view()
def inbox(request: WorkspaceRequest) -> HttpResponse:
    _mark_seen(request)
    if request.session.get("inbox_query") != request.GET.urlencode():
        request.session["inbox_query"] = request.GET.urlencode()
    context = _rows_context(request)
    counts = queries.capped_counts(request.workspace.pk)
    context.update(
        statuses=Status.choices,
        status_counts=counts,
        count_cap=queries.COUNT_CAP,
        breached_count=counts["breached"],
        teams=queries.team_choices(request.workspace.pk),
        can_manage_inbox=role_allows(request.membership.role, Capability.MANAGE_INBOX),
    )
    return render(request, "web/inbox.html", context)


@workspace_view()
def sla_breach_notice(request: WorkspaceRequest) -> HttpResponse:
    """What the inbox shows when the beat announces breaches (live event ``sla.breached``)."""
    since = clock.now() - BREACH_NOTICE_WINDOW
    return render(
        request,
        "web/partials/sla_breach_notice.html",
        {
            "breaches": queries.recent_breaches(request.workspace.pk, since),
            "breached_count": queries.breached_count(request.workspace.pk),
            "count_cap": queries.COUNT_CAP,
        },
    )


@workspace_view()
def inbox_rows(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/partials/inbox_rows.html", _rows_context(request))


def _conversation_context(request: WorkspaceRequest, conversation_id: int) -> dict[str, object]:
    found = queries.conversation(request.workspace.pk, conversation_id)
    values = variables.values_for(found, request.user)
    return {
        "conversation": found,
        "thread": queries.thread(found),
        "unsent": queries.unsent_replies(found),
        "notes": queries.notes(found),
        "statuses": Status.choices,
        "members": queries.members(request.workspace.pk),
        "teams": queries.team_choices(request.workspace.pk),
        "reply_key": uuid.uuid4().hex,
        "can_reply": role_allows(request.membership.role, Capability.REPLY),
        "can_approve": role_allows(request.membership.role, Capability.MANAGE_INBOX),
        "canned": [
            (canned.title, variables.fill(canned.text, values))
            for canned in queries.canned_replies(request.workspace.pk)
        ],
    }


@workspace_view()
def conversation(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    _mark_seen(request)
    context = _conversation_context(request, conversation_id)
    found: Conversation = context["conversation"]  # type: ignore[assignment]
    context["draft"] = queries.draft(found, request.user)
    if context["can_reply"]:
        context["suggestions"] = suggest.suggest_for(
            found,
            request.user,
            thread=context["thread"],  # type: ignore[arg-type]
        )
    # Next/previous walk the list the agent last looked at, with its filters.
    inbox_query = request.session.get("inbox_query", "")
    listed = queries.conversations(
        request.workspace.pk, user=request.user, **_filters(QueryDict(inbox_query))
    )
    context["previous_id"], context["next_id"] = queries.neighbours(listed, conversation_id)
    context["inbox_query"] = inbox_query
    return render(request, "web/conversation.html", context)


@workspace_view()
def conversation_thread(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return render(
        request, "web/partials/thread.html", _conversation_context(request, conversation_id)
    )


def _back(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return redirect(
        "conversation", workspace_slug=request.workspace.slug, conversation_id=conversation_id
    )


def _conversation_action(
    request: WorkspaceRequest, conversation_id: int, act: Callable[[Any], object]
) -> HttpResponse:
    found = queries.conversation(request.workspace.pk, conversation_id)
    try:
        act(found)
    except RelaisError as error:
        messages.error(request, str(error))
    return _back(request, found.pk)


@workspace_view(Capability.REPLY)
@require_POST
def reply(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = queries.conversation(request.workspace.pk, conversation_id)
    try:
        sent = actions.do_submit_reply(
            request.user,
            found,
            request.POST.get("text", ""),
            idempotency_key=request.POST.get("reply_key") or uuid.uuid4().hex,
            private=request.POST.get("private") == "on",
        )
    except RelaisError as error:
        messages.error(request, str(error))
        context = _conversation_context(request, conversation_id)
        context["draft"] = request.POST.get("text", "")
        return render(request, "web/conversation.html", context, status=400)
    if sent.state == ReplyState.FAILED:
        messages.error(request, sent.error)
    elif sent.state == ReplyState.AWAITING_APPROVAL:
        messages.info(request, _("Your reply waits for a manager's approval."))
    return _back(request, found.pk)


def _reply_action(
    request: WorkspaceRequest, conversation_id: int, act: Callable[[Any], object]
) -> HttpResponse:
    found = queries.outgoing_reply(
        request.workspace.pk, conversation_id, request.POST.get("reply", "")
    )
    try:
        act(found)
    except RelaisError as error:
        messages.error(request, str(error))
    if found.state == ReplyState.FAILED:
        messages.error(request, found.error)
    return _back(request, conversation_id)


@workspace_view(Capability.REPLY)
@require_POST
def retry_reply(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return _reply_action(
        request, conversation_id, lambda r: actions.do_retry_reply(request.user, r)
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def approve_reply(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return _reply_action(
        request, conversation_id, lambda r: actions.do_approve_reply(request.user, r)
    )


@workspace_view(Capability.REPLY)
@require_POST
def withdraw_reply(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return _reply_action(
        request, conversation_id, lambda r: actions.do_withdraw_reply(request.user, r)
    )


@workspace_view(Capability.REPLY)
@require_POST
def save_draft(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = queries.conversation(request.workspace.pk, conversation_id)
    actions.do_save_draft(request.user, found, request.POST.get("text", ""))
    return HttpResponse(status=204)


@workspace_view()
@require_POST
def presence(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    """Heartbeat of an open page; answers with who else is here (the collision warning)."""
    found = queries.conversation(request.workspace.pk, conversation_id)
    if request.POST.get("leaving"):
        actions.do_leave_conversation(request.user, found)
        return HttpResponse(status=204)
    actions.do_mark_viewing(request.user, found)
    return render(
        request,
        "web/partials/presence.html",
        {"others": queries.others_here(found, request.user)},
    )


@workspace_view(Capability.REPLY)
@require_POST
def add_note(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    text = request.POST.get("text", "")
    return _conversation_action(
        request, conversation_id, lambda c: actions.do_add_note(request.user, c, text)
    )


@workspace_view(Capability.REPLY)
@require_POST
def change_status(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    status, expected = request.POST.get("status", ""), request.POST.get("expected", "")
    return _conversation_action(
        request,
        conversation_id,
        lambda c: actions.do_change_status(request.user, c, status, expected=expected or None),
    )


@workspace_view(Capability.REPLY)
@require_POST
def assign(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    assignee = _member(request, request.POST.get("assignee", ""))
    expected = request.POST.get("expected", "-")
    expected_id = (
        int(expected) if expected.isdigit() else None if expected == "" else actions.NOT_CHECKED
    )
    return _conversation_action(
        request,
        conversation_id,
        lambda c: actions.do_assign(request.user, c, assignee, expected_assignee_id=expected_id),
    )


def _member(request: WorkspaceRequest, user_id: str) -> User | None:
    if not user_id:
        return None
    found = (
        queries.members(request.workspace.pk).filter(pk=user_id).first()
        if user_id.isdigit()
        else None
    )
    if found is None:
        raise Http404
    return found


@workspace_view(Capability.REPLY)
@require_POST
def set_tags(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    tags = request.POST.get("tags", "")
    return _conversation_action(
        request, conversation_id, lambda c: actions.do_set_tags(request.user, c, tags)
    )


@workspace_view(Capability.REPLY)
@require_POST
def set_team(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    team = _team(request)
    return _conversation_action(
        request, conversation_id, lambda c: actions.do_set_team(request.user, c, team)
    )


def _team(request: WorkspaceRequest) -> Team | None:
    """The team chosen in the form; none when left empty."""
    return _posted(request, Team, "team") if request.POST.get("team") else None


# Contacts ------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write hands the line back, so CSV rows can be streamed."""

    def write(self, value: str) -> str:
        return value


@workspace_view(Capability.MANAGE_INBOX)
def contacts_csv(request: WorkspaceRequest) -> StreamingHttpResponse:
    rows = actions.do_export_contacts(request.user, request.workspace)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    filename = f"relais-contacts-{request.workspace.slug}-{clock.now():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@workspace_view()
def contacts(request: WorkspaceRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    rows = queries.contacts(request.workspace.pk, search)
    page = Paginator(rows, CONTACTS_PAGE_SIZE).get_page(request.GET.get("page"))
    suggestions = queries.merge_suggestions(request.workspace.pk)
    return render(
        request,
        "web/contacts.html",
        {
            "page": page,
            "contacts": page.object_list,
            "search": search,
            "suggestions": suggestions,
            "can_export": role_allows(request.membership.role, Capability.MANAGE_INBOX),
            "links": queries.contact_links(
                request.workspace.pk, [c.pk for group in suggestions for c in group]
            ),
        },
    )


@workspace_view()
def contact(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = queries.contact_of(request.workspace.pk, conversation_id)
    suggestions = queries.merge_suggestions(request.workspace.pk, found)
    return render(
        request,
        "web/contact.html",
        {
            "contact": found,
            "identities": queries.identities(found),
            "conversations": queries.contact_conversations(found)[:200],
            "notes": queries.contact_notes(found),
            "suggestions": suggestions,
            "links": queries.contact_links(
                request.workspace.pk, [c.pk for group in suggestions for c in group]
            ),
            "conversation_id": conversation_id,
            "can_reply": role_allows(request.membership.role, Capability.REPLY),
        },
    )


def _contact_action(
    request: WorkspaceRequest, conversation_id: int, act: Callable[[Any], object]
) -> HttpResponse:
    found = queries.contact_of(request.workspace.pk, conversation_id)
    try:
        act(found)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(
        "contact", workspace_slug=request.workspace.slug, conversation_id=conversation_id
    )


@workspace_view(Capability.REPLY)
@require_POST
def contact_update(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    keys = request.POST.getlist("attribute_key")
    values = request.POST.getlist("attribute_value")
    attributes = {k: v for k, v in zip(keys, values, strict=False) if k.strip() and v.strip()}
    return _contact_action(
        request,
        conversation_id,
        lambda c: actions.do_update_contact(
            request.user,
            c,
            display_name=request.POST.get("display_name", c.display_name),
            attributes=attributes,
            tags=request.POST.get("tags", ""),
        ),
    )


@workspace_view(Capability.REPLY)
@require_POST
def contact_note(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    text = request.POST.get("text", "")
    return _contact_action(
        request, conversation_id, lambda c: actions.do_add_contact_note(request.user, c, text)
    )


@workspace_view(Capability.REPLY)
@require_POST
def contact_merge(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    other_id = request.POST.get("other", "")
    if not other_id.isdigit():
        raise Http404
    other = queries.contact(request.workspace.pk, int(other_id))
    return _contact_action(
        request, conversation_id, lambda c: actions.do_merge_contacts(request.user, c, other)
    )


# Care settings (managers) --------------------------------------------------------------------


def _settings_context(request: WorkspaceRequest) -> dict[str, object]:
    workspace_id = request.workspace.pk
    states = queries.agent_states(workspace_id)
    loads = queries.open_loads(workspace_id)
    agents = [
        {"user": member, "state": states.get(member.pk), "load": loads.get(member.pk, 0)}
        for member in queries.members(workspace_id)
    ]
    can_manage_webhooks = role_allows(request.membership.role, Capability.MANAGE_ACCOUNTS)
    return {
        "teams": queries.teams(workspace_id),
        "rules": queries.rules(workspace_id),
        "agents": agents,
        "members": queries.members(workspace_id),
        "policy": queries.sla_policy(workspace_id),
        "canned": queries.canned_replies(workspace_id),
        "approval_required": queries.approval_required(workspace_id),
        "weekdays": sorted(WEEKDAYS_ABBR.items()),
        "can_manage_webhooks": can_manage_webhooks,
        "webhooks": queries.webhook_endpoints(workspace_id) if can_manage_webhooks else [],
        "webhook_events": EVENT_TYPES,
    }


@workspace_view(Capability.MANAGE_INBOX)
def care_settings(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/care_settings.html", _settings_context(request))


def _settings_action(request: WorkspaceRequest, act: Callable[[], object]) -> HttpResponse:
    try:
        act()
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(reverse("care_settings", args=[request.workspace.slug]))


Owned = TypeVar("Owned", bound=WorkspaceOwned)


def _posted(request: WorkspaceRequest, model: type[Owned], field: str) -> Owned:
    """The row of this workspace whose id the form posted in ``field``, or 404."""
    value = request.POST.get(field, "")
    found = (
        model.objects.in_workspace(request.workspace.pk).filter(pk=value).first()
        if value.isdigit()
        else None
    )
    if found is None:
        raise Http404
    return cast(Owned, found)


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def team_create(request: WorkspaceRequest) -> HttpResponse:
    name = request.POST.get("name", "")
    return _settings_action(
        request, lambda: actions.do_create_team(request.user, request.workspace, name)
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def team_members(request: WorkspaceRequest) -> HttpResponse:
    team = _posted(request, Team, "team")
    chosen = [_member(request, user_id) for user_id in request.POST.getlist("members")]
    return _settings_action(
        request,
        lambda: actions.do_set_team_members(request.user, team, [m for m in chosen if m]),
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def team_delete(request: WorkspaceRequest) -> HttpResponse:
    team = _posted(request, Team, "team")
    return _settings_action(request, lambda: actions.do_delete_team(request.user, team))


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def rule_create(request: WorkspaceRequest) -> HttpResponse:
    team = _team(request)
    criteria = {field: request.POST.get(field, "") for field in actions.RULE_FIELDS}
    return _settings_action(
        request,
        lambda: actions.do_create_rule(
            request.user,
            request.workspace,
            request.POST.get("name", ""),
            team=team,
            auto_assign=request.POST.get("auto_assign") == "on",
            **criteria,
        ),
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def rule_delete(request: WorkspaceRequest) -> HttpResponse:
    rule = _posted(request, AssignmentRule, "rule")
    return _settings_action(request, lambda: actions.do_delete_rule(request.user, rule))


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def agent_update(request: WorkspaceRequest) -> HttpResponse:
    agent = _member(request, request.POST.get("agent", ""))
    if agent is None:
        raise Http404
    capacity = request.POST.get("capacity", "")
    on_leave = request.POST.get("on_leave") == "on"

    def update() -> None:
        if capacity.isdigit():
            actions.do_set_capacity(request.user, request.workspace, agent, int(capacity))
        actions.do_set_on_leave(request.user, request.workspace, agent, on_leave)

    return _settings_action(request, update)


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def sla_set(request: WorkspaceRequest) -> HttpResponse:
    post = request.POST

    def minutes(name: str) -> int:
        value = post.get(name, "")
        return int(value) if value.isdigit() else 0

    def clock_time(name: str) -> time | None:
        value = post.get(name, "")
        try:
            return time.fromisoformat(value) if value else None
        except ValueError:
            return None

    return _settings_action(
        request,
        lambda: actions.do_set_sla_policy(
            request.user,
            request.workspace,
            first_response_minutes=minutes("first_response_minutes"),
            resolution_minutes=minutes("resolution_minutes"),
            time_zone=post.get("time_zone", "UTC").strip() or "UTC",
            business_start=clock_time("business_start"),
            business_end=clock_time("business_end"),
            business_days=[int(d) for d in post.getlist("business_days") if d.isdigit()],
        ),
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def canned_create(request: WorkspaceRequest) -> HttpResponse:
    title, text = request.POST.get("title", ""), request.POST.get("text", "")
    return _settings_action(
        request,
        lambda: actions.do_create_canned_reply(request.user, request.workspace, title, text),
    )


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def canned_delete(request: WorkspaceRequest) -> HttpResponse:
    canned = _posted(request, CannedReply, "canned")
    return _settings_action(request, lambda: actions.do_delete_canned_reply(request.user, canned))


@workspace_view(Capability.MANAGE_INBOX)
@require_POST
def approval_set(request: WorkspaceRequest) -> HttpResponse:
    required = request.POST.get("approval_required") == "on"
    return _settings_action(
        request,
        lambda: actions.do_set_approval_required(request.user, request.workspace, required),
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def webhook_create(request: WorkspaceRequest) -> HttpResponse:
    """On success the page is rendered here, not redirected to: the secret is shown once."""
    try:
        endpoint, secret = actions.do_create_webhook_endpoint(
            request.user,
            request.workspace,
            request.POST.get("url", ""),
            request.POST.getlist("events"),
        )
    except RelaisError as error:
        messages.error(request, str(error))
        return redirect(reverse("care_settings", args=[request.workspace.slug]))
    context = _settings_context(request)
    context.update(new_webhook=endpoint, new_secret=secret)
    return render(request, "web/care_settings.html", context)


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def webhook_update(request: WorkspaceRequest) -> HttpResponse:
    endpoint = _posted(request, WebhookEndpoint, "webhook")
    events = request.POST.getlist("events")
    active = request.POST.get("active") == "on"
    return _settings_action(
        request,
        lambda: actions.do_update_webhook_endpoint(
            request.user, endpoint, events=events, active=active
        ),
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def webhook_retry(request: WorkspaceRequest) -> HttpResponse:
    endpoint = _posted(request, WebhookEndpoint, "webhook")
    return _settings_action(
        request, lambda: actions.do_retry_webhook_endpoint(request.user, endpoint)
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def webhook_delete(request: WorkspaceRequest) -> HttpResponse:
    endpoint = _posted(request, WebhookEndpoint, "webhook")
    return _settings_action(
        request, lambda: actions.do_delete_webhook_endpoint(request.user, endpoint)
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def webhook_discard(request: WorkspaceRequest) -> HttpResponse:
    endpoint = _posted(request, WebhookEndpoint, "webhook")
    return _settings_action(
        request, lambda: actions.do_discard_webhook_events(request.user, endpoint)
    )


PERIODS = {"1": 1, "7": 7, "30": 30, "365": 365}


@workspace_view(Capability.MANAGE_INBOX)
def care_kpis(request: WorkspaceRequest) -> HttpResponse:
    days = request.GET.get("days", "7")
    days = days if days in PERIODS else "7"
    now = clock.now()
    report = kpis.care_report(
        request.workspace.pk, now - timedelta(days=PERIODS[days]), now + timedelta(seconds=1), now
    )
    return render(
        request,
        "web/care_kpis.html",
        {"report": report, "days": days, "periods": list(PERIODS)},
    )
